use std::os::unix::fs::{PermissionsExt, symlink};

use super::*;

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn the_file_is_replaced_whole_with_the_permissions_given() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("verified.json");
    write_atomic(&path, b"first", PRIVATE).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"first");
    assert_eq!(mode(&path), 0o600);
    write_atomic(&path, b"second", PUBLIC).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"second");
    assert_eq!(mode(&path), 0o644);
    // No temporary file is left beside it.
    assert_eq!(names(dir.path()), ["verified.json"]);
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
    assert_eq!(names(dir.path()), ["blocked", "profile.yaml"]);
    // A path without a file name is refused, not written.
    assert!(write_atomic(Path::new("/"), b"x", PUBLIC).is_err());
    // A missing directory is an error too.
    assert!(write_atomic(&dir.path().join("no/such.json"), b"x", PUBLIC).is_err());
}

/// A directory holding a file someone wants overwritten, and a link to it.
struct Planted {
    dir: tempfile::TempDir,
}

impl Planted {
    fn new() -> Planted {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("victim"), b"precious").unwrap();
        std::fs::set_permissions(dir.path().join("victim"), Permissions::from_mode(0o644)).unwrap();
        symlink(dir.path().join("victim"), dir.path().join("link")).unwrap();
        Planted { dir }
    }

    fn link(&self) -> std::path::PathBuf {
        self.dir.path().join("link")
    }

    fn assert_victim_untouched(&self) {
        let victim = self.dir.path().join("victim");
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(mode(&victim), 0o644);
    }
}

#[test]
fn an_atomic_write_replaces_a_link_rather_than_writing_through_it() {
    let planted = Planted::new();
    write_atomic(&planted.link(), b"state", PRIVATE).unwrap();
    planted.assert_victim_untouched();
    let meta = std::fs::symlink_metadata(planted.link()).unwrap();
    assert!(meta.file_type().is_file(), "the link is replaced by a file");
    assert_eq!(mode(&planted.link()), 0o600);
    assert_eq!(std::fs::read(planted.link()).unwrap(), b"state");
}

#[test]
fn private_directories_are_0700_and_a_link_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("state/spool/webhook");
    create_private_dir(&nested).unwrap();
    assert_eq!(mode(&nested), 0o700);
    assert_eq!(mode(&dir.path().join("state")), 0o700);
    // Again: nothing changes, nothing fails.
    create_private_dir(&nested).unwrap();
    // One made with looser permissions is tightened.
    let loose = dir.path().join("loose");
    std::fs::create_dir(&loose).unwrap();
    std::fs::set_permissions(&loose, Permissions::from_mode(0o777)).unwrap();
    create_private_dir(&loose).unwrap();
    assert_eq!(mode(&loose), 0o700);

    // A link to a directory: refused, and the directory it names is untouched.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::set_permissions(&elsewhere, Permissions::from_mode(0o755)).unwrap();
    let link = dir.path().join("linked-state");
    symlink(&elsewhere, &link).unwrap();
    let e = create_private_dir(&link).unwrap_err().to_string();
    assert!(
        e.contains("linked-state: a symbolic link, not followed"),
        "{e}"
    );
    assert_eq!(mode(&elsewhere), 0o755);
    // A dangling link: refused, nothing created where it points.
    let dangling = dir.path().join("dangling");
    symlink(dir.path().join("nowhere"), &dangling).unwrap();
    let e = create_private_dir(&dangling).unwrap_err().to_string();
    assert!(e.contains("a symbolic link"), "{e}");
    assert!(!dir.path().join("nowhere").exists());
    // A file: refused.
    std::fs::write(dir.path().join("file"), b"").unwrap();
    assert!(create_private_dir(&dir.path().join("file")).is_err());
}

#[test]
fn reading_state_does_not_follow_a_link_nor_hang_on_a_fifo() {
    let planted = Planted::new();
    let e = read_no_follow(&planted.link()).unwrap_err();
    assert!(
        e.to_string().contains("a symbolic link, not followed"),
        "{e}"
    );
    let real = planted.dir.path().join("victim");
    assert_eq!(read_no_follow(&real).unwrap(), b"precious");
    let missing = read_no_follow(&planted.dir.path().join("missing")).unwrap_err();
    assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    let fifo = planted.dir.path().join("fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
        0,
    )
    .unwrap();
    let e = read_no_follow(&fifo).unwrap_err().to_string();
    assert!(e.contains("not a regular file"), "{e}");
}

#[test]
fn appending_does_not_follow_a_link_and_tightens_permissions() {
    let planted = Planted::new();
    let e = open_append(&planted.link(), PRIVATE).unwrap_err();
    assert!(
        e.to_string().contains("a symbolic link, not followed"),
        "{e}"
    );
    planted.assert_victim_untouched();

    let dir = planted.dir.path();
    let log = dir.join("events.jsonl");
    open_append(&log, PRIVATE)
        .unwrap()
        .write_all(b"one\n")
        .unwrap();
    assert_eq!(mode(&log), 0o600);
    open_append(&log, PRIVATE)
        .unwrap()
        .write_all(b"two\n")
        .unwrap();
    assert_eq!(std::fs::read(&log).unwrap(), b"one\ntwo\n");
    // A log an older version left readable to all is made private.
    let old = dir.join("old.jsonl");
    std::fs::write(&old, b"x\n").unwrap();
    std::fs::set_permissions(&old, Permissions::from_mode(0o666)).unwrap();
    open_append(&old, PRIVATE).unwrap();
    assert_eq!(mode(&old), 0o600);
    // A public file keeps what it has within its mode: never widened.
    open_append(&old, PUBLIC).unwrap();
    assert_eq!(mode(&old), 0o600);
    // A directory is not a file to append to.
    assert!(open_append(dir, PRIVATE).is_err());
}
