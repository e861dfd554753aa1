use super::*;
use imprint_engine::EventKind;

const DIGEST: &str = "sha256:4709d554cbb09e0954311aa74d26c10a1ee213941debe882f18757dd802fb443";

fn event(second: i64, container: &str, kind: EventKind) -> Event {
    Event {
        time: Timestamp::from_second(1_800_000_000 + second).unwrap(),
        container_id: container.into(),
        image_digest: DIGEST.parse().ok(),
        image_ref: None,
        node: None,
        namespace: None,
        pod: None,
        pid: 10,
        comm: None,
        kind,
    }
}

fn exec(path: &str) -> EventKind {
    EventKind::Exec {
        path: path.into(),
        argv: vec![],
        parent: None,
        stdin_socket: false,
        stdout_socket: false,
    }
}

#[test]
fn a_profile_is_finished_once_its_period_has_passed() {
    let mut session = LearnSession::new(SignedDuration::from_secs(60));
    assert!(session.observe(&event(0, "c1", EventKind::ContainerStart)));
    assert!(session.observe(&event(1, "c1", exec("/bin/cat"))));
    assert!(
        session
            .finish_due(Timestamp::from_second(1_800_000_030).unwrap())
            .is_empty()
    );
    let done = session.finish_due(Timestamp::from_second(1_800_000_061).unwrap());
    assert_eq!(done.len(), 1);
    let p = &done[0];
    assert_eq!(p.image.digest, DIGEST);
    assert_eq!(p.learning.completeness, Completeness::Complete);
    assert_eq!(
        p.learning
            .end
            .unwrap()
            .duration_since(p.learning.start.unwrap()),
        SignedDuration::from_secs(60)
    );
    assert_eq!(p.execs[0].path, "/bin/cat");
    // Finished once; later events of that image are not used.
    assert!(
        session
            .finish_due(Timestamp::from_second(1_800_000_100).unwrap())
            .is_empty()
    );
    assert!(!session.observe(&event(90, "c1", exec("/bin/ls"))));
    assert_eq!(session.learning(), 0);
}

#[test]
fn a_container_running_before_learning_makes_the_profile_partial() {
    let mut session = LearnSession::new(SignedDuration::from_secs(10));
    session.observe(&event(0, "c1", exec("/bin/sh")));
    let done = session.finish_due(Timestamp::from_second(1_800_000_010).unwrap());
    assert_eq!(done[0].learning.completeness, Completeness::Partial);
}

#[test]
fn snapshots_are_partial_until_the_period_is_over() {
    let mut session = LearnSession::new(SignedDuration::from_secs(100));
    session.observe(&event(0, "c1", EventKind::ContainerStart));
    let snapshot = session.snapshot(Timestamp::from_second(1_800_000_050).unwrap());
    assert_eq!(snapshot[0].learning.completeness, Completeness::Partial);
    assert_eq!(session.learning(), 1);
}

#[test]
fn the_state_log_replays_and_survives_a_torn_line() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut log, replayed, skipped) = StateLog::open(dir.path(), |_| {}).unwrap();
        assert_eq!((replayed, skipped), (0, 0));
        log.append(&event(0, "c1", EventKind::ContainerStart))
            .unwrap();
        log.append(&event(1, "c1", exec("/bin/cat"))).unwrap();
        log.flush().unwrap();
    }
    // A crash mid-write leaves half a line.
    let path = dir.path().join("events.jsonl");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{\"time\":\"2027-");
    std::fs::write(&path, text).unwrap();
    let mut seen = Vec::new();
    let (mut log, replayed, skipped) = StateLog::open(dir.path(), |e| seen.push(e)).unwrap();
    assert_eq!((replayed, skipped), (2, 1));
    assert_eq!(seen[1].kind, exec("/bin/cat"));
    // What is appended after the torn line reads back.
    log.append(&event(2, "c1", exec("/bin/ls"))).unwrap();
    log.flush().unwrap();
    let (_, replayed, skipped) = StateLog::open(dir.path(), |_| {}).unwrap();
    assert_eq!((replayed, skipped), (3, 1));
}

#[test]
fn the_state_log_is_private_and_not_written_through_a_planted_link() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    {
        let (mut log, _, _) = StateLog::open(&state, |_| {}).unwrap();
        log.append(&event(0, "c1", EventKind::ContainerStart))
            .unwrap();
        log.flush().unwrap();
    }
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join("events.jsonl")), 0o600);

    // A link where the log goes, to a file someone wants filled: refused.
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    symlink(&victim, other.join("events.jsonl")).unwrap();
    let e = StateLog::open(&other, |_| panic!("nothing is replayed through a link"))
        .err()
        .expect("refused");
    assert!(
        e.to_string().contains("a symbolic link, not followed"),
        "{e}"
    );
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");

    // A state directory that is a link: refused, nothing created where it points.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    symlink(&elsewhere, dir.path().join("linked")).unwrap();
    assert!(StateLog::open(&dir.path().join("linked"), |_| {}).is_err());
    assert!(std::fs::read_dir(&elsewhere).unwrap().next().is_none());
}
