#![no_main]
//! Fuzz target `es_line`: see tables/tests/props/mod.rs for the properties.

#[path = "../../tables/tests/props/mod.rs"]
mod props;

use keychain_access_tables::Scanner;
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;

thread_local! {
    // Built once (tuning and patterns compile once); reset for every input.
    static SCANNER: RefCell<Scanner> = RefCell::new(props::scanner());
}

fuzz_target!(|data: &[u8]| {
    SCANNER.with(|s| props::check_es_line(&mut s.borrow_mut(), data));
});
