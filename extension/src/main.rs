//! `keychain-access`: the osquery extension and offline CLI.
fn main() {
    println!("keychain-access {}", env!("CARGO_PKG_VERSION"));
}
