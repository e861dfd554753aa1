use super::*;
use crate::alert::Source;
use crate::event::ProcessRef;

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + second).unwrap()
}

fn alert(rule: &str, subject: &str, container: &str, pid: u32, second: i64) -> Alert {
    Alert {
        rule: rule.into(),
        source: Source::Anomaly,
        severity: if rule == "reverse-shell" {
            Severity::Critical
        } else {
            Severity::High
        },
        mitre: vec![],
        message: String::new(),
        subject: subject.into(),
        time: at(second),
        container_id: container.into(),
        image_digest: Some(
            "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                .parse()
                .unwrap(),
        ),
        node: None,
        pid,
        comm: None,
    }
}

fn exec_event(pid: u32, parent: u32, path: &str) -> Event {
    Event {
        time: at(0),
        container_id: "c1".into(),
        image_digest: Some(
            "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                .parse()
                .unwrap(),
        ),
        image_ref: None,
        node: None,
        namespace: None,
        pod: None,
        pid,
        comm: None,
        kind: EventKind::Exec {
            path: path.into(),
            argv: vec![],
            parent: Some(ProcessRef {
                pid: parent,
                path: None,
            }),
            stdin_socket: false,
            stdout_socket: false,
        },
    }
}

#[test]
fn one_lineage_in_one_container_is_one_incident() {
    let mut c = Correlator::new(
        SignedDuration::from_secs(60),
        SignedDuration::from_secs(300),
    );
    // sh (10) → nc (11); sh (10) → cat (12); an unrelated process 20.
    c.observe(&exec_event(10, 1, "/bin/sh"));
    c.observe(&exec_event(11, 10, "/bin/nc"));
    c.observe(&exec_event(12, 10, "/bin/cat"));
    c.observe(&exec_event(20, 1, "/usr/bin/app"));
    let first = c.push(alert("anomaly.exec", "/bin/sh", "c1", 10, 0));
    let Outcome::Opened(id) = first else {
        panic!("{first:?}")
    };
    assert_eq!(
        c.push(alert("reverse-shell", "/bin/nc", "c1", 11, 5)),
        Outcome::Joined(id.clone())
    );
    // Another process tree, another incident.
    assert!(matches!(
        c.push(alert("anomaly.exec", "/usr/bin/app", "c1", 20, 6)),
        Outcome::Opened(_)
    ));
    // Another container, another incident.
    assert!(matches!(
        c.push(alert("anomaly.exec", "/bin/sh", "c2", 10, 7)),
        Outcome::Opened(_)
    ));
    let open = c.open_incidents();
    let incident = open.iter().find(|i| i.id == id).unwrap();
    assert_eq!(incident.severity, Severity::Critical);
    assert_eq!(incident.timeline.len(), 2);
    let pids: Vec<u32> = incident.processes.iter().map(|p| p.pid).collect();
    assert!(
        pids.contains(&10) && pids.contains(&11) && pids.contains(&1),
        "{pids:?}"
    );
    assert_eq!(
        incident
            .processes
            .iter()
            .find(|p| p.pid == 11)
            .unwrap()
            .path
            .as_deref(),
        Some("/bin/nc")
    );
}

#[test]
fn repeats_are_counted_within_the_cooldown_and_incidents_close_after_the_window() {
    let mut c = Correlator::new(SignedDuration::from_secs(60), SignedDuration::from_secs(30));
    let Outcome::Opened(id) = c.push(alert("anomaly.open", "/etc/x", "c1", 5, 0)) else {
        panic!()
    };
    for s in 1..10 {
        assert_eq!(
            c.push(alert("anomaly.open", "/etc/x", "c1", 5, s)),
            Outcome::Suppressed(id.clone())
        );
    }
    // After the cooldown the repeat is sent again, still in the same incident.
    assert_eq!(
        c.push(alert("anomaly.open", "/etc/x", "c1", 5, 40)),
        Outcome::Joined(id.clone())
    );
    assert!(c.expire(at(60)).is_empty());
    let closed = c.expire(at(101));
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].timeline[0].count, 11);
    assert_eq!(closed[0].end, at(40));
    // A new alert after the window starts a new incident.
    assert!(matches!(
        c.push(alert("anomaly.open", "/etc/x", "c1", 5, 200)),
        Outcome::Opened(_)
    ));
}
