//! What counts as keychain material on disk.
//!
//! Credential material: the file keychains (`login.keychain`,
//! `login.keychain-db`, any `*.keychain` / `*.keychain-db` in a `Keychains`
//! folder, `/Library/Keychains/System.keychain`, `/Network/Library/Keychains`),
//! the data-protection keychain (`~/Library/Keychains/<UUID>/keychain-2.db`
//! and its `-wal`/`-shm`), and `/private/var/db/SystemKey` (the key that
//! unlocks System.keychain). `/System/Library/Keychains/*` holds Apple's
//! public root certificates: reading it is not credential access.
//! Staged copies keep their tell-tale names (`login.keychain-db`,
//! `keychain-2.db`) wherever they land, so those names count anywhere.

use crate::text::basename;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaterialKind {
    /// login.keychain / login.keychain-db.
    LoginKeychain,
    /// Another file keychain (`*.keychain`, `*.keychain-db`) in a Keychains folder.
    FileKeychain,
    /// /Library/Keychains/System.keychain.
    SystemKeychain,
    /// The data-protection (iCloud / local items) keychain database.
    DataProtection,
    /// /private/var/db/SystemKey.
    SystemKey,
}

impl MaterialKind {
    pub fn label(self) -> &'static str {
        match self {
            MaterialKind::LoginKeychain => "login keychain",
            MaterialKind::FileKeychain => "keychain file",
            MaterialKind::SystemKeychain => "System keychain",
            MaterialKind::DataProtection => "data-protection keychain",
            MaterialKind::SystemKey => "SystemKey (System keychain master key)",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Material {
    pub kind: MaterialKind,
    /// True when the file sits in a folder named `Keychains` (anywhere).
    pub in_keychains_folder: bool,
}

impl Material {
    /// Whether `path` (this material's path) is a live keychain location
    /// rather than a copy, a mount or a snapshot of one.
    pub fn at_home(&self, path: &str) -> bool {
        is_live_location(path)
    }
}

/// The live keychain locations of a Mac: a user's (or root's)
/// `Library/Keychains` folder and its data-protection subfolder,
/// `/Library/Keychains`, `/Network/Library/Keychains`, and SystemKey. The
/// same names under `/Volumes/…`, a snapshot mount, `/tmp/…` or any other
/// folder that happens to be called `Keychains` are copies: keychain
/// material that lands there has left its home, whatever name it passed
/// through.
pub fn is_live_location(path: &str) -> bool {
    if path.split('/').any(|c| c == "." || c == "..") {
        return false;
    }
    let p = path
        .strip_prefix("/System/Volumes/Data")
        .filter(|r| r.starts_with('/'))
        .unwrap_or(path);
    let p = p
        .strip_prefix("/private")
        .filter(|r| r.starts_with("/var/"))
        .unwrap_or(p);
    if p == "/var/db/SystemKey" {
        return true;
    }
    let dir = match p.rfind('/') {
        Some(i) => &p[..i],
        None => return false,
    };
    let under = |prefix: &str| {
        dir == prefix
            || dir
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/') && rest[1..].find('/').is_none())
    };
    if under("/Library/Keychains")
        || under("/Network/Library/Keychains")
        || under("/var/root/Library/Keychains")
    {
        return true;
    }
    // /Users/<name>/Library/Keychains[/<UUID>]
    if let Some(rest) = dir.strip_prefix("/Users/") {
        let mut parts = rest.split('/');
        let user = parts.next().unwrap_or("");
        let lib = parts.next();
        let kc = parts.next();
        let sub = parts.next();
        let extra = parts.next();
        return !user.is_empty()
            && lib == Some("Library")
            && kc == Some("Keychains")
            && extra.is_none()
            && sub.is_none_or(|s| !s.is_empty());
    }
    false
}

/// Classify a path. `None` for anything that is not keychain material.
pub fn classify(path: &str) -> Option<Material> {
    let p = path
        .strip_prefix("/private")
        .filter(|r| r.starts_with("/var/") || r.starts_with("/tmp/") || r.starts_with("/etc/"))
        .unwrap_or(path);
    if p.starts_with("/System/Library/Keychains/")
        || p.starts_with("/System/Volumes/") && p.contains("/System/Library/Keychains/")
    {
        return None;
    }
    if p == "/var/db/SystemKey" {
        return Some(Material {
            kind: MaterialKind::SystemKey,
            in_keychains_folder: false,
        });
    }
    let name = basename(p);
    let in_folder = in_keychains_folder(p);
    if name == "login.keychain" || name == "login.keychain-db" {
        return Some(Material {
            kind: MaterialKind::LoginKeychain,
            in_keychains_folder: in_folder,
        });
    }
    if name.starts_with("keychain-2.db") {
        return Some(Material {
            kind: MaterialKind::DataProtection,
            in_keychains_folder: in_folder,
        });
    }
    if p.ends_with("/Library/Keychains/System.keychain")
        || p.ends_with("/Library/Keychains/System.keychain-db")
    {
        return Some(Material {
            kind: MaterialKind::SystemKeychain,
            in_keychains_folder: true,
        });
    }
    let keychain_suffix = name.ends_with(".keychain") || name.ends_with(".keychain-db");
    // `security create-keychain CI` stores `CI-db` in the Keychains folder.
    let db_suffix = name.ends_with("-db") && name.len() > 3 && !name.starts_with('.');
    if (keychain_suffix || (db_suffix && in_folder))
        && (in_folder || p.contains("/Network/Library/Keychains/"))
    {
        return Some(Material {
            kind: MaterialKind::FileKeychain,
            in_keychains_folder: true,
        });
    }
    None
}

/// Whether any directory component of the path is named `Keychains`.
pub fn in_keychains_folder(path: &str) -> bool {
    let dir = match path.rfind('/') {
        Some(i) => &path[..i],
        None => return false,
    };
    dir.split('/').any(|c| c == "Keychains")
}

/// Paths where stolen material is staged before exfiltration.
pub fn is_staging_path(path: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "/tmp/",
        "/private/tmp/",
        "/var/tmp/",
        "/private/var/tmp/",
        "/Users/Shared/",
        "/private/var/folders/",
        "/var/folders/",
        "/Library/Caches/",
        "/Volumes/",
        "/dev/shm/",
    ];
    PREFIXES.iter().any(|p| path.starts_with(p))
        || (path.starts_with("/Users/") && path.contains("/Library/Caches/"))
        || path.contains("/.Trash/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_material() {
        for p in [
            "/Users/alice/Library/Keychains/login.keychain-db",
            "/Users/alice/Library/Keychains/login.keychain",
            "/Users/alice/Library/Keychains/0A1B2C3D-1111-2222-3333-444455556666/keychain-2.db",
            "/Users/alice/Library/Keychains/0A1B2C3D-1111-2222-3333-444455556666/keychain-2.db-wal",
            "/Library/Keychains/System.keychain",
            "/private/var/db/SystemKey",
            "/var/db/SystemKey",
            "/Users/alice/Library/Keychains/ci.keychain-db",
            "/Library/Managed Installs/Keychains/munki.keychain",
            "/Network/Library/Keychains/corp.keychain",
            "/tmp/salmonela/Kch/login.keychain-db",
            "/Users/alice/Library/Keychains/fastlane_tmp_keychain-db",
            "/Users/alice/Library/Keychains/CI-db",
        ] {
            assert!(classify(p).is_some(), "{p}");
        }
    }

    #[test]
    fn rejects_roots_and_lookalikes() {
        for p in [
            "/System/Library/Keychains/SystemRootCertificates.keychain",
            "/System/Library/Keychains/X509Anchors",
            "/Users/alice/notes/keychain.txt",
            "/tmp/k.db",
            "/Users/alice/Documents/old.keychain",
            "/Users/alice/Library/Keychains/.fl12345678",
        ] {
            assert!(classify(p).is_none(), "{p}");
        }
    }

    #[test]
    fn live_locations_versus_copies_mounts_and_snapshots() {
        for p in [
            "/Users/alice/Library/Keychains/login.keychain-db",
            "/System/Volumes/Data/Users/alice/Library/Keychains/login.keychain-db",
            "/Users/alice/Library/Keychains/6E3D0F7A-9B1C-5C2E-8F4A-1D2B3C4D5E6F/keychain-2.db",
            "/Library/Keychains/System.keychain",
            "/private/var/db/SystemKey",
            "/private/var/root/Library/Keychains/login.keychain-db",
        ] {
            assert!(is_live_location(p), "{p}");
        }
        for p in [
            "/Volumes/Backup/Users/alice/Library/Keychains/login.keychain-db",
            "/private/tmp/snap/Users/alice/Library/Keychains/login.keychain-db",
            "/private/tmp/x/Keychains/login.keychain-db",
            "/Users/alice/Documents/Keychains/login.keychain-db",
            "/Users/alice/Library/Keychains/a/b/login.keychain-db",
            "/Users/Shared/Library/Keychains/../x",
        ] {
            assert!(!is_live_location(p), "{p}");
        }
    }

    #[test]
    fn staged_copies_are_out_of_their_folder() {
        let m = classify("/tmp/salmonela/Kch/login.keychain-db").unwrap();
        assert!(!m.in_keychains_folder);
        assert!(is_staging_path("/tmp/salmonela/Kch/login.keychain-db"));
        assert!(is_staging_path("/Users/alice/Library/Caches/x"));
        assert!(!is_staging_path(
            "/Users/alice/Library/Keychains/login.keychain-db"
        ));
    }
}
