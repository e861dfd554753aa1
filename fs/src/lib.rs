//! Files the agent and the CLI keep: atomic writes, private directories, and
//! opening state without following a planted symbolic link.
//!
//! [`write_atomic`]: a reader sees the old file or the new one, never half of
//! one, and after a crash the file is one of the two. The content goes to a
//! temporary file in the target's directory (so the rename stays on one
//! filesystem), created exclusively (`O_EXCL`: never through a link) under an
//! unpredictable name with the permissions given, synced, and renamed over the
//! target, which replaces a symbolic link there rather than writing through
//! it; then the directory is synced so the rename itself survives a power loss.
//! The temporary file is removed on any error.
//!
//! [`create_private_dir`] makes the agent's own directories (state, cache,
//! spools) 0700 and refuses one that is a symbolic link; [`open_no_follow`],
//! [`read_no_follow`] and [`open_append`] open a file only if its last component is not a link
//! (`O_NOFOLLOW`), and only a regular file. Directories above the last
//! component are followed: an administrator may link `/var/lib` elsewhere.

#![warn(unreachable_pub)]

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use rustix::fs::OFlags;

/// Permissions for files only the agent's own user may read (state, keys).
pub const PRIVATE: u32 = 0o600;
/// Permissions for files anyone may read (profiles, reports).
pub const PUBLIC: u32 = 0o644;
/// Permissions for directories only the agent's own user may enter.
pub const PRIVATE_DIR: u32 = 0o700;

/// Random characters in a temporary file's name (62 possibilities each).
const TEMP_RANDOM_CHARS: usize = 12;

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
        .rand_bytes(TEMP_RANDOM_CHARS)
        .permissions(Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    tmp.write_all(content)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // The rename is durable only once the directory is.
    File::open(dir)?.sync_all()
}

/// Creates `path` (and missing parents) as a directory only its owner may
/// enter, 0700. One that exists loses what it allows its group and others;
/// one that is a symbolic link, or not a directory, is refused.
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    if let Err(e) = DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR)
        .create(path)
    {
        // A dangling link fails here; one to a directory passes and fails below.
        return Err(in_path(path, e));
    }
    // Opened without following, then checked and changed through the handle:
    // nothing can be swapped in between.
    let dir = OpenOptions::new()
        .read(true)
        .custom_flags(flags(OFlags::NOFOLLOW | OFlags::DIRECTORY))
        .open(path)
        .map_err(|e| in_path(path, e))?;
    let mode = dir.metadata()?.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        dir.set_permissions(Permissions::from_mode(mode & PRIVATE_DIR))?;
    }
    Ok(())
}

/// Opens the regular file `path` for reading, not through a symbolic link (a
/// link there is an error), nor a FIFO or device.
pub fn open_no_follow(path: &Path) -> io::Result<File> {
    // O_NONBLOCK: a FIFO planted there does not hang the open.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(flags(OFlags::NOFOLLOW | OFlags::NONBLOCK))
        .open(path)
        .map_err(|e| in_path(path, e))?;
    regular(&file, path)?;
    Ok(file)
}

/// The content of the regular file `path`, opened as [`open_no_follow`] does.
pub fn read_no_follow(path: &Path) -> io::Result<Vec<u8>> {
    let mut content = Vec::new();
    open_no_follow(path)?.read_to_end(&mut content)?;
    Ok(content)
}

/// Opens the regular file `path` for appending, creating it with `mode`; a
/// symbolic link there is an error, not followed. A file that exists loses the
/// permission bits `mode` does not have (an old 0644 log becomes 0600).
pub fn open_append(path: &Path, mode: u32) -> io::Result<File> {
    // O_NONBLOCK: a FIFO without a reader fails the open rather than hanging it.
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(mode)
        .custom_flags(flags(OFlags::NOFOLLOW | OFlags::NONBLOCK))
        .open(path)
        .map_err(|e| in_path(path, e))?;
    regular(&file, path)?;
    let current = file.metadata()?.permissions().mode() & 0o7777;
    if current & !mode != 0 {
        file.set_permissions(Permissions::from_mode(current & mode))?;
    }
    Ok(file)
}

/// `flags` for `OpenOptionsExt::custom_flags`.
fn flags(flags: OFlags) -> i32 {
    flags.bits() as i32
}

fn regular(file: &File, path: &Path) -> io::Result<()> {
    if file.metadata()?.is_file() {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{}: not a regular file", path.display()),
    ))
}

/// A failure to open because `path` is a symbolic link, said plainly: the
/// kernel says `ELOOP` (`O_NOFOLLOW`) or `ENOTDIR` (with `O_DIRECTORY`).
fn in_path(path: &Path, e: io::Error) -> io::Error {
    let link = e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error())
        || std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if !link {
        return e;
    }
    io::Error::new(
        e.kind(),
        format!("{}: a symbolic link, not followed", path.display()),
    )
}

#[cfg(test)]
mod tests;
