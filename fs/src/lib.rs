//! Atomic file writes: a reader sees the old file or the new one, never half of
//! one, and after a crash the file is one of the two.
//!
//! The content goes to a temporary file in the target's directory (so the rename
//! stays on one filesystem), created with the permissions given, synced, and
//! renamed over the target; then the directory is synced so the rename itself
//! survives a power loss. The temporary file is removed on any error.

#![warn(unreachable_pub)]

use std::fs::{File, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Permissions for files only the agent's own user may read (state, keys).
pub const PRIVATE: u32 = 0o600;
/// Permissions for files anyone may read (profiles, reports).
pub const PUBLIC: u32 = 0o644;

/// Writes `content` to `path` atomically, the file getting `mode` (e.g.
/// [`PRIVATE`]). The directory must exist.
pub fn write_atomic(path: &Path, content: &[u8], mode: u32) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a file name", path.display()),
        )
    })?;
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(name);
    let mut tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .permissions(Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    tmp.write_all(content)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // The rename is durable only once the directory is.
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_file_is_replaced_whole_with_the_permissions_given() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("verified.json");
        write_atomic(&path, b"first", PRIVATE).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        write_atomic(&path, b"second", PUBLIC).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        // No temporary file is left beside it.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["verified.json"]);
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.yaml");
        write_atomic(&path, b"old", PUBLIC).unwrap();
        // A directory cannot be renamed over by a file: the write fails.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir(&blocked).unwrap();
        std::fs::create_dir(blocked.join("inner")).unwrap();
        assert!(write_atomic(&blocked, b"new", PUBLIC).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["blocked", "profile.yaml"]);
        // A path without a file name is refused, not written.
        assert!(write_atomic(Path::new("/"), b"x", PUBLIC).is_err());
        // A missing directory is an error too.
        assert!(write_atomic(&dir.path().join("no/such.json"), b"x", PUBLIC).is_err());
    }
}
