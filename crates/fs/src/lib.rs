//! Durable, private file writes, shared by the coordinator, the node and the
//! sandbox's component cache.
//!
//! A file that is renamed into place is written to a temporary file in the
//! same directory (created new, owner-only), flushed with `fsync`, renamed
//! over the destination, and then the directory itself is `fsync`ed so the
//! rename survives a crash. Readers see the old file or the new one, never a
//! truncated mix: before this, `client.toml` was truncated and rewritten in
//! place on every coordinator start, and a crash there lost the admin token.
//!
//! **Invariant:** every file the project renames into place goes through
//! [`write_atomic`] or [`persist`]; files are created with mode 0600
//! whatever the umask (tokens, keys and tenants' data live in them).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The permission bits of every file written here: owner read and write.
pub const PRIVATE_MODE: u32 = 0o600;

/// Writes `bytes` to `path` atomically and durably, mode 0600.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("client.toml");
/// suanli_fs::write_atomic(&path, b"token = \"x\"").unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"token = \"x\"");
/// ```
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let (tmp, mut file) = create_temp(path)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| persist(&tmp, file, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// A new, empty, owner-only temporary file next to `dest` (same directory,
/// so the final rename never crosses file systems). Its name is unique
/// within this process and across processes (pid and a counter).
pub fn create_temp(dest: &Path) -> std::io::Result<(PathBuf, File)> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let tmp = dest.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()));
    let file = create_private(&tmp)?;
    Ok((tmp, file))
}

/// Creates `path` (which must not exist) with mode 0600, enforced with
/// `set_permissions` too in case a umask or ACL widened it.
pub fn create_private(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, PRIVATE_MODE);
    let file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(PRIVATE_MODE))?;
    }
    Ok(file)
}

/// Takes an exclusive lock on `dir/lock` (created with mode 0600), held
/// while the returned file is open, so two processes never work on one data
/// directory (a coordinator and `admin restore`, or two coordinators).
/// `Ok(None)` when another process holds it. The lock is advisory and dies
/// with its process, so a crash never leaves a directory locked.
pub fn lock_dir(dir: &Path) -> std::io::Result<Option<File>> {
    let path = dir.join("lock");
    let file = match create_private(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::OpenOptions::new().write(true).open(&path)?
        }
        Err(e) => return Err(e),
    };
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Finishes a temporary file written by the caller: `fsync`s it, renames it
/// to `dest` and `fsync`s `dest`'s directory.
pub fn persist(tmp: &Path, file: File, dest: &Path) -> std::io::Result<()> {
    file.sync_all()?;
    drop(file);
    rename_durable(tmp, dest)
}

/// Renames `from` to `to`, then `fsync`s the directory of `to` so the new
/// name is on disk (a rename alone may be lost in a crash).
pub fn rename_durable(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::rename(from, to)?;
    sync_dir(to.parent().unwrap_or(Path::new(".")))
}

/// `fsync` of a directory (its entries). A no-op where directories cannot be
/// opened as files (Windows).
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_directory_cannot_be_locked_again_until_the_holder_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock_dir(dir.path()).unwrap().expect("free at first");
        // Another open file description: as another process would see it.
        assert!(lock_dir(dir.path()).unwrap().is_none(), "held");
        drop(held);
        assert!(lock_dir(dir.path()).unwrap().is_some(), "free again");
    }

    #[test]
    fn replaces_whole_files_private_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.toml");
        std::fs::write(&path, b"an old, longer file that must not leak through").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, PRIVATE_MODE);
        }
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["client.toml"]);
    }

    #[test]
    fn temp_files_are_unique_and_never_reuse_an_existing_name() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("blob");
        let (a, _) = create_temp(&dest).unwrap();
        let (b, _) = create_temp(&dest).unwrap();
        assert_ne!(a, b);
        assert!(
            create_private(&a).is_err(),
            "create_new refuses an existing file"
        );
    }
}
