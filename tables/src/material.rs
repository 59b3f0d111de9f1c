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
    /// True when the file sits in a `Keychains` folder (its home).
    pub in_keychains_folder: bool,
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
