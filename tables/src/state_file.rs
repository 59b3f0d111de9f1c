//! Opening the files the tools keep state in (the extension's buffer
//! database, the Sentinel queue, its lock and side files) so that a local
//! user cannot turn a process running as root against the Mac.
//!
//! The rules, one helper for every state file:
//!
//! * the folder holding a state file must be owned by the running user and
//!   writable by nobody else (a shared folder such as `/tmp` is refused:
//!   anyone could plant or swap names in it). The folders above may be
//!   symbolic links (`/var` and `/tmp` are on macOS); the folder itself is
//!   checked where it resolves to;
//! * the final component is opened with `O_NOFOLLOW`: a symbolic link there
//!   is refused, never followed, so no file is created, truncated or
//!   chmodded where a planted link points;
//! * an existing file must be a regular file owned by the running user; a
//!   mode that lets others read it is fixed through the open descriptor
//!   (`fchmod`), never through the path.
//!
//! The effective uid comes from the kernel (`geteuid(2)` through `rustix`),
//! never from a probe file.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Why a state file or folder was refused.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {msg}")]
pub struct StateFileError {
    pub path: PathBuf,
    pub msg: String,
}

impl StateFileError {
    fn new(path: &Path, msg: impl Into<String>) -> Self {
        StateFileError {
            path: path.to_path_buf(),
            msg: msg.into(),
        }
    }

    fn io(path: &Path, what: &str, e: &io::Error) -> Self {
        if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
            return StateFileError::new(
                path,
                "is a symbolic link; state files are never opened through a link \
                 (remove it, or point the setting at the real file)",
            );
        }
        StateFileError::new(path, format!("{what}: {e}"))
    }
}

/// The effective uid of this process, from the kernel.
pub fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// `O_NOFOLLOW | O_CLOEXEC`, for `OpenOptionsExt::custom_flags`.
pub fn nofollow_flags() -> i32 {
    (rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::CLOEXEC).bits() as i32
}

/// The folder a state file lives in (`.` for a bare name).
pub fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Refuse a folder that others could tamper with: it must be a directory
/// owned by the running user, not writable by group or others.
pub fn check_dir(dir: &Path) -> Result<(), StateFileError> {
    let meta = std::fs::metadata(dir).map_err(|e| StateFileError::io(dir, "cannot stat", &e))?;
    if !meta.is_dir() {
        return Err(StateFileError::new(dir, "not a directory"));
    }
    let uid = effective_uid();
    if meta.uid() != uid {
        return Err(StateFileError::new(
            dir,
            format!(
                "owned by uid {}, not by the running user (uid {uid}); state belongs in a \
                 folder of its own, e.g. /var/osquery",
                meta.uid()
            ),
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(StateFileError::new(
            dir,
            format!(
                "mode {:o} is writable by group or others (a shared folder); use a folder of \
                 its own with chmod 700 or 755",
                meta.mode() & 0o7777
            ),
        ));
    }
    Ok(())
}

/// Refuse a file the process reads and acts on as root (the extension's
/// config, which names commands to run; a tuning file; `forward`'s config)
/// when someone other than the running user or root could have written it:
/// the file must be owned by the running user or root and not writable by
/// group or others, and so must the folder it is in (unless that folder is
/// sticky, like /tmp, where others cannot replace a file they do not own).
pub fn check_trusted_input(path: &Path) -> Result<(), StateFileError> {
    let uid = effective_uid();
    let real =
        std::fs::canonicalize(path).map_err(|e| StateFileError::io(path, "cannot read", &e))?;
    let meta = std::fs::metadata(&real).map_err(|e| StateFileError::io(path, "cannot stat", &e))?;
    if !meta.is_file() {
        return Err(StateFileError::new(path, "not a regular file"));
    }
    let trusted_owner = |owner: u32| owner == uid || owner == 0;
    if !trusted_owner(meta.uid()) {
        return Err(StateFileError::new(
            path,
            format!(
                "owned by uid {}, not by the running user (uid {uid}) or root; it configures \
                 what this process does, so only they may own it",
                meta.uid()
            ),
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(StateFileError::new(
            path,
            format!(
                "mode {:o} is writable by group or others; use chmod 644 or 600",
                meta.mode() & 0o7777
            ),
        ));
    }
    let dir = parent_dir(&real);
    let dmeta = std::fs::metadata(dir).map_err(|e| StateFileError::io(dir, "cannot stat", &e))?;
    let sticky = dmeta.mode() & 0o1000 != 0;
    if !trusted_owner(dmeta.uid()) || (dmeta.mode() & 0o022 != 0 && !sticky) {
        return Err(StateFileError::new(
            path,
            format!(
                "its folder {} (uid {}, mode {:o}) lets others replace it; keep it in a folder \
                 only the running user or root can write",
                dir.display(),
                dmeta.uid(),
                dmeta.mode() & 0o7777
            ),
        ));
    }
    Ok(())
}

/// Create `dir` (and missing parents, 0700) when it does not exist, then
/// check it with [`check_dir`].
pub fn ensure_dir(dir: &Path) -> Result<(), StateFileError> {
    if std::fs::symlink_metadata(dir).is_err() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| StateFileError::io(dir, "cannot create", &e))?;
    }
    check_dir(dir)
}

/// Open (creating it 0600 when `create`) the state file at `path` for
/// reading and writing, after checking its folder; a symbolic link as the
/// final component is refused. An existing file readable by others is set
/// to 0600 through the descriptor.
pub fn open(path: &Path, create: bool) -> Result<File, StateFileError> {
    check_dir(parent_dir(path))?;
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .mode(0o600)
        .custom_flags(nofollow_flags())
        .open(path)
        .map_err(|e| StateFileError::io(path, "cannot open", &e))?;
    check_open_file(path, &f)?;
    Ok(f)
}

/// Tighten an existing side file (SQLite's `-wal`, `-shm`) the same way,
/// without creating it: absent is fine, a symbolic link is refused.
pub fn harden_existing(path: &Path) -> Result<(), StateFileError> {
    match OpenOptions::new()
        .read(true)
        .custom_flags(nofollow_flags())
        .open(path)
    {
        Ok(f) => check_open_file(path, &f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StateFileError::io(path, "cannot open", &e)),
    }
}

fn check_open_file(path: &Path, f: &File) -> Result<(), StateFileError> {
    let meta = f
        .metadata()
        .map_err(|e| StateFileError::io(path, "cannot stat", &e))?;
    if !meta.is_file() {
        return Err(StateFileError::new(path, "not a regular file"));
    }
    let uid = effective_uid();
    if meta.uid() != uid {
        return Err(StateFileError::new(
            path,
            format!(
                "owned by uid {}, not by the running user (uid {uid})",
                meta.uid()
            ),
        ));
    }
    if meta.mode() & 0o077 != 0 {
        log::warn!(
            "{} was mode {:o}; setting 0600",
            path.display(),
            meta.mode() & 0o777
        );
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| StateFileError::io(path, "cannot chmod 600", &e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn private_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("kca-state-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        d
    }

    #[test]
    fn effective_uid_is_the_owner_of_a_new_file() {
        let d = private_dir("uid");
        let f = d.join("f");
        std::fs::write(&f, "").unwrap();
        assert_eq!(std::fs::metadata(&f).unwrap().uid(), effective_uid());
        // No probe file anywhere: the temp folder holds no `.kca-uid-*`.
        let probes = std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!(".kca-uid-{}", std::process::id()))
            })
            .count();
        assert_eq!(probes, 0);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn trusted_inputs_are_writable_only_by_us_or_root() {
        let d = private_dir("trusted");
        let f = d.join("config.json");
        std::fs::write(&f, "{}").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        check_trusted_input(&f).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o664)).unwrap();
        assert!(check_trusted_input(&f)
            .unwrap_err()
            .msg
            .contains("writable"));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        // A folder others can write (not sticky): the file can be swapped.
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(check_trusted_input(&f).unwrap_err().msg.contains("replace"));
        // Sticky (as /tmp): others cannot replace our file.
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o1777)).unwrap();
        check_trusted_input(&f).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn refuses_a_symlink_and_leaves_its_target_alone() {
        let d = private_dir("link");
        let target = d.join("victim");
        std::fs::write(&target, "keep me").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
        let link = d.join("queue.db");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = open(&link, true).unwrap_err();
        assert!(e.msg.contains("symbolic link"), "{e}");
        assert!(harden_existing(&link).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
        let mode = std::fs::metadata(&target).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o644, "target not chmodded");
        // A dangling link creates nothing where it points.
        let dangling = d.join("lock");
        std::os::unix::fs::symlink(d.join("created-through-link"), &dangling).unwrap();
        assert!(open(&dangling, true).is_err());
        assert!(!d.join("created-through-link").exists());
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn refuses_shared_folders_and_fixes_modes_through_the_descriptor() {
        let d = private_dir("dirs");
        let shared = d.join("shared");
        std::fs::create_dir(&shared).unwrap();
        // Not sticky: the case Linux's fs.protected_symlinks does not cover.
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = open(&shared.join("q.db"), true).unwrap_err();
        assert!(e.msg.contains("writable by group or others"), "{e}");
        assert!(!shared.join("q.db").exists());
        // A folder reached through a symlinked parent is fine.
        let via = d.join("via");
        std::os::unix::fs::symlink(&d, &via).unwrap();
        let f = via.join("state.db");
        std::fs::write(&f, "x").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        open(&f, false).unwrap();
        assert_eq!(std::fs::metadata(&f).unwrap().mode() & 0o777, 0o600);
        // ensure_dir creates 0700.
        let made = d.join("a/b");
        ensure_dir(&made).unwrap();
        assert_eq!(std::fs::metadata(&made).unwrap().mode() & 0o777, 0o700);
        std::fs::remove_dir_all(d).unwrap();
    }
}
