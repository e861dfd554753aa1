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

fn correlator() -> Correlator {
    Correlator::new(
        SignedDuration::from_secs(60),
        SignedDuration::from_secs(300),
    )
}

const FLOOD: u32 = 100_000;

#[test]
fn a_flood_of_distinct_subjects_is_sent_folded_and_bounded() {
    let mut c = correlator();
    let Outcome::Opened(id) = c.push(alert("anomaly.open", "/tmp/0", "c1", 5, 0)) else {
        panic!()
    };
    for n in 1..FLOOD {
        // Every new kind is sent, even once the incident cannot remember it.
        let outcome = c.push(alert("anomaly.open", &format!("/tmp/{n}"), "c1", 5, 1));
        assert_eq!(outcome, Outcome::Joined(id.clone()), "/tmp/{n}");
    }
    // A kind remembered without a timeline entry is still held back as a repeat;
    // one past what is remembered is sent again.
    let remembered = format!("/tmp/{}", MAX_SEEN - 1);
    let forgotten = format!("/tmp/{}", MAX_SEEN);
    assert_eq!(
        c.push(alert("anomaly.open", &remembered, "c1", 5, 2)),
        Outcome::Suppressed(id.clone())
    );
    assert_eq!(
        c.push(alert("anomaly.open", &forgotten, "c1", 5, 2)),
        Outcome::Joined(id.clone())
    );
    // What is folded still raises the severity and moves the end.
    assert_eq!(
        c.push(alert("reverse-shell", "/tmp/last", "c1", 5, 3)),
        Outcome::Joined(id.clone())
    );
    {
        let open = &c.open["c1"][0];
        assert_eq!(open.seen.len(), MAX_SEEN);
        assert_eq!(open.pids, FxHashSet::from_iter([5]));
    }
    let closed = c.expire(at(100));
    assert_eq!(closed.len(), 1);
    let incident = &closed[0];
    assert_eq!(incident.timeline.len(), MAX_TIMELINE);
    assert_eq!(
        incident.timeline[MAX_TIMELINE - 1].alert.subject,
        "/tmp/255"
    );
    // The flood past the timeline, the two repeats, the critical one.
    assert_eq!(
        incident.folded_alerts,
        u64::from(FLOOD) - MAX_TIMELINE as u64 + 3
    );
    assert_eq!(incident.severity, Severity::Critical);
    assert_eq!(incident.end, at(3));
    let json = serde_json::to_value(incident).unwrap();
    assert_eq!(json["foldedAlerts"], incident.folded_alerts);
    assert!(json.get("foldedProcesses").is_none(), "zero is left out");
}

#[test]
fn a_flood_of_processes_of_one_lineage_is_bounded_and_counted() {
    let mut c = correlator();
    // One shell forks a hundred thousand children; each alerts.
    c.observe(&exec_event(10, 1, "/bin/sh"));
    let Outcome::Opened(id) = c.push(alert("anomaly.exec", "/bin/sh", "c1", 10, 0)) else {
        panic!()
    };
    for pid in 11..11 + FLOOD {
        c.observe(&exec_event(pid, 10, "/bin/x"));
        let outcome = c.push(alert("anomaly.exec", "/bin/x", "c1", pid, 1));
        assert!(
            matches!(&outcome, Outcome::Joined(i) | Outcome::Suppressed(i) if *i == id),
            "{outcome:?}"
        );
    }
    let open = &c.open["c1"];
    assert_eq!(open.len(), 1, "one lineage is one incident");
    assert_eq!(open[0].pids.len(), MAX_INCIDENT_PROCESSES);
    let incident = &open[0].incident;
    assert_eq!(incident.processes.len(), MAX_INCIDENT_PROCESSES);
    // 1 and 10 came with the first alert; each child past the bound is folded.
    let in_tree = MAX_INCIDENT_PROCESSES as u64 - 2;
    assert_eq!(incident.folded_processes, u64::from(FLOOD) - in_tree);
    assert_eq!(incident.timeline.len(), 2);
    assert_eq!(incident.timeline[1].count, u64::from(FLOOD));
    let json = serde_json::to_value(incident).unwrap();
    assert_eq!(json["foldedProcesses"], incident.folded_processes);
    assert!(json.get("foldedAlerts").is_none(), "zero is left out");
}

#[test]
fn a_flood_of_unrelated_processes_keeps_the_open_incidents_bounded() {
    let mut c = correlator();
    // Unrelated processes in one container, then in as many containers.
    for pid in 0..FLOOD {
        let outcome = c.push(alert("anomaly.exec", "/bin/x", "c1", 100 + pid, 0));
        assert!(matches!(outcome, Outcome::Opened(_)), "{outcome:?}");
    }
    assert_eq!(c.open_incidents().len(), MAX_OPEN_PER_CONTAINER);
    // The ones closed early come back from expire, before any window passed.
    let early = c.expire(at(1));
    assert_eq!(early.len(), (FLOOD as usize) - MAX_OPEN_PER_CONTAINER);
    drop(early);
    for n in 0..FLOOD {
        let outcome = c.push(alert("anomaly.exec", "/bin/x", &format!("k{n}"), 7, 1));
        assert!(matches!(outcome, Outcome::Opened(_)), "{outcome:?}");
    }
    assert_eq!(c.open_incidents().len(), MAX_OPEN);
    assert!(c.open.len() <= MAX_OPEN);
    // The quietest go first: c1's (second 0) before any of the new containers.
    let early = c.expire(at(2));
    assert_eq!(
        early.len() + MAX_OPEN,
        FLOOD as usize + MAX_OPEN_PER_CONTAINER
    );
    assert!(
        early[..MAX_OPEN_PER_CONTAINER]
            .iter()
            .all(|i| i.container_id == "c1")
    );
    // Incidents past their window make room before any open one is closed early.
    let later = c.push(alert("anomaly.exec", "/bin/x", "late", 7, 200));
    assert!(matches!(later, Outcome::Opened(_)));
    assert_eq!(c.open_incidents().len(), 1);
    assert_eq!(c.expire(at(201)).len(), MAX_OPEN);
}
