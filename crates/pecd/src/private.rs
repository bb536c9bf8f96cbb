//! What pecd keeps is private to the user it runs as: the store holds messages and
//! password hashes, the certificate directory the signing key. Files it creates are
//! `0600` and directories `0700`; an existing data directory open to others is closed,
//! and a private key readable by anyone is refused.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, bail};

/// Makes every file and directory this process creates from now on private to its
/// user (umask `077`). Called first thing by `main`.
pub fn restrict_umask() {
    // SAFETY: umask only changes the process's file creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

/// Creates the data directory `0700`, or closes an existing one to group and others
/// (a directory nobody else can enter protects everything below it). Returns the mode
/// it had when it had to be changed, for the caller to warn about.
pub fn data_dir(path: &Path) -> anyhow::Result<Option<u32>> {
    if !path.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        return Ok(None);
    }
    let mode = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .permissions()
        .mode()
        & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(None);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7700))
        .with_context(|| format!("cannot restrict the permissions of {}", path.display()))?;
    Ok(Some(mode))
}

/// The warning about a data directory whose permissions [`data_dir`] had to change.
pub fn loosened_warning(path: &Path, mode: u32) -> String {
    format!(
        "the data directory {} was open to other users (mode {mode:04o}): it holds messages \
         and password hashes; its mode is now {:04o}",
        path.display(),
        mode & 0o7700
    )
}

/// Refuses a private key file that users other than its owner and group can read or
/// write: a key anyone on the machine can read signs for anyone.
pub fn check_key(path: &Path) -> anyhow::Result<()> {
    let mode = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .permissions()
        .mode()
        & 0o7777;
    if mode & 0o007 != 0 {
        bail!(
            "the private key {} is accessible to every user of this machine (mode {mode:04o}); \
             restrict it, e.g. chmod 600 {}",
            path.display(),
            path.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn data_directories_are_private() {
        let tmp = tempfile::tempdir().unwrap();
        let fresh = tmp.path().join("a/b");
        assert_eq!(data_dir(&fresh).unwrap(), None);
        assert_eq!(mode(&fresh), 0o700);

        let open = tmp.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(data_dir(&open).unwrap(), Some(0o755));
        assert_eq!(mode(&open), 0o700);
        assert_eq!(
            data_dir(&open).unwrap(),
            None,
            "nothing to change the second time"
        );
    }

    #[test]
    fn keys_readable_by_everyone_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let key = tmp.path().join("sign.key");
        std::fs::write(&key, "k").unwrap();
        for (m, ok) in [(0o600, true), (0o640, true), (0o644, false), (0o602, false)] {
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(m)).unwrap();
            assert_eq!(check_key(&key).is_ok(), ok, "mode {m:o}");
        }
    }
}
