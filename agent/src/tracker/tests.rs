use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, RwLock};

use k8s_openapi::api::core::v1::Pod;

use super::*;
use crate::pods::{PodIndex, SharedPods};

const ID: &str = "4c2b1f8a9d7e6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b";
const DIGEST: &str = "sha256:5b0fd3b4c0c1b0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5";

/// A cgroup hierarchy in a temporary directory, and a tracker over it that asks
/// only a pod index (no runtime).
struct Fixture {
    root: tempfile::TempDir,
    pods: SharedPods,
    tracker: Tracker,
    start: Timestamp,
}

impl Fixture {
    fn new(with_cluster: bool) -> Fixture {
        let root = tempfile::tempdir().unwrap();
        let pods: SharedPods = Arc::new(RwLock::new(PodIndex::default()));
        let mut resolver = ImageResolver::new(Vec::new());
        if with_cluster {
            resolver = resolver.with_cluster(pods.clone());
        }
        let tracker = Tracker::new(CgroupIndex::new(root.path()), resolver, None, false);
        Fixture {
            root,
            pods,
            tracker,
            start: "2026-11-27T10:00:00Z".parse().unwrap(),
        }
    }

    /// A container cgroup created after the tracker (a new container); its id.
    fn start_container(&self) -> u64 {
        self.start_container_with(ID)
    }

    fn start_container_with(&self, id: &str) -> u64 {
        let dir = self
            .root
            .path()
            .join(format!("kubepods/pod1/cri-containerd-{id}.scope"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::metadata(&dir).unwrap().ino()
    }

    /// The kubelet writes the container's id into its pod's status.
    fn pod_status_written(&self) {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-7d9f", "namespace": "shop"},
            "status": {"containerStatuses": [{
                "name": "web", "ready": true, "restartCount": 0,
                "image": "registry.example/shop/web:2.4.1",
                "imageID": format!("registry.example/shop/web@{DIGEST}"),
                "containerID": format!("containerd://{ID}"),
            }]}
        }))
        .unwrap();
        self.pods.write().unwrap().apply(&pod);
    }

    fn at(&self, ms: i64) -> Timestamp {
        self.start + jiff::SignedDuration::from_millis(ms)
    }

    fn feed(&mut self, cgroup_id: u64, pid: u32, record: Record, ms: i64) -> Vec<Event> {
        let header = Header {
            pid,
            tid: pid,
            pid_ns: 0,
            cgroup_id,
            time_ns: 0,
            comm: "sh".into(),
        };
        let time = self.at(ms);
        self.tracker.events(&header, &record, time)
    }
}

fn exec(filename: &str, exe: &str, argv: &[&str]) -> Record {
    Record::Exec {
        filename: filename.into(),
        exe: exe.into(),
        argv: argv.iter().map(|a| a.to_string()).collect(),
        parent_pid: 1,
        stdin_socket: false,
        stdout_socket: false,
    }
}

fn open(path: &str) -> Record {
    Record::Open {
        path: path.into(),
        flags: 0,
        relative: false,
        truncated: false,
    }
}

fn runc_init() -> Record {
    exec("/proc/self/exe", "/usr/bin/runc", &["runc", "init"])
}

fn entrypoint() -> Record {
    exec(
        "/bin/server",
        "/bin/server",
        &["/bin/server", "--port", "80"],
    )
}

fn kinds(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(|e| e.kind.type_name()).collect()
}

#[test]
fn events_before_the_pod_status_are_held_and_replayed_in_order() {
    let mut f = Fixture::new(true);
    let cgroup = f.start_container();
    assert!(f.feed(cgroup, 10, runc_init(), 0).is_empty());
    assert!(f.feed(cgroup, 10, entrypoint(), 5).is_empty());
    assert!(f.feed(cgroup, 10, open("/etc/server.conf"), 6).is_empty());
    assert_eq!(f.tracker.unresolved(), 0);

    f.pod_status_written();
    let events = f.feed(cgroup, 10, open("/srv/index.html"), 1500);
    // The runtime's init stays dropped; the entrypoint starts the container.
    assert_eq!(
        kinds(&events),
        ["container_start", "exec", "open", "open"],
        "{events:#?}"
    );
    assert!(events.windows(2).all(|w| w[0].time <= w[1].time));
    assert_eq!(events[1].time, f.at(5));
    for event in &events {
        assert_eq!(event.image_digest.as_ref().unwrap(), DIGEST);
        assert_eq!(event.container_id, ID);
        assert_eq!(event.namespace.as_deref(), Some("shop"));
        assert_eq!(event.pod.as_deref(), Some("web-7d9f"));
    }
    assert!(matches!(&events[3].kind, EventKind::Open { path, .. } if path == "/srv/index.html"));
    assert_eq!(f.tracker.unresolved(), 0);
    assert!(f.tracker.release_held(f.at(60_000)).is_empty());
}

#[test]
fn a_quiet_container_is_released_on_the_loops_turn() {
    let mut f = Fixture::new(true);
    let cgroup = f.start_container();
    assert!(f.feed(cgroup, 10, entrypoint(), 0).is_empty());
    assert!(
        f.tracker.release_held(f.at(200)).is_empty(),
        "not named yet"
    );
    f.pod_status_written();
    // Looked at no more than every 100 ms.
    assert!(f.tracker.release_held(f.at(250)).is_empty());
    let events = f.tracker.release_held(f.at(300));
    assert_eq!(kinds(&events), ["container_start", "exec"]);
    // Released once: later events follow on directly.
    assert!(f.tracker.release_held(f.at(1000)).is_empty());
    assert_eq!(kinds(&f.feed(cgroup, 10, open("/x"), 1100)), ["open"]);
}

#[test]
fn held_events_are_judged_without_an_image_when_no_status_names_the_container() {
    let mut f = Fixture::new(true);
    let cgroup = f.start_container();
    f.feed(cgroup, 10, runc_init(), 0);
    f.feed(cgroup, 10, entrypoint(), 5);
    f.feed(cgroup, 10, open("/a"), 10);
    assert_eq!(f.tracker.unresolved(), 0);
    // Past the hold, on the loop's turn: released for the rules, with no image
    // (the runtime's init is still not the container's own).
    let events = f.tracker.release_held(f.at(31_000));
    assert_eq!(kinds(&events), ["container_start", "exec", "open"]);
    assert!(
        events
            .iter()
            .all(|e| e.image_digest.is_none() && e.container_id == ID)
    );
    assert_eq!(f.tracker.unresolved(), 3);
    // Nothing more is held for it: its next event is judged at once.
    let events = f.feed(cgroup, 10, open("/b"), 31_100);
    assert_eq!(kinds(&events), ["open"]);
    assert!(events[0].image_digest.is_none());
    // A late status names it: its later events carry the image.
    f.pod_status_written();
    let events = f.feed(cgroup, 10, open("/c"), 32_000);
    assert_eq!(kinds(&events), ["open"]);
    assert_eq!(events[0].image_digest.as_ref().unwrap().as_str(), DIGEST);
}

#[test]
fn a_container_given_up_before_its_entrypoint_starts_at_its_next_exec() {
    let mut f = Fixture::new(true);
    let cgroup = f.start_container();
    f.feed(cgroup, 10, runc_init(), 0);
    assert!(f.tracker.release_held(f.at(31_000)).is_empty());
    f.pod_status_written();
    // Still the runtime's setup as far as anyone can tell: nothing until an exec.
    assert!(f.feed(cgroup, 10, open("/c"), 32_000).is_empty());
    assert_eq!(
        kinds(&f.feed(cgroup, 11, entrypoint(), 33_000)),
        ["container_start", "exec"]
    );
}

#[test]
fn an_event_past_the_hold_gives_the_container_up_at_once() {
    let mut f = Fixture::new(true);
    let cgroup = f.start_container();
    f.feed(cgroup, 10, entrypoint(), 0);
    let events = f.feed(cgroup, 10, open("/late"), 30_000);
    assert_eq!(kinds(&events), ["container_start", "exec", "open"]);
    assert_eq!(f.tracker.unresolved(), 2);
    f.pod_status_written();
    assert!(f.tracker.release_held(f.at(30_200)).is_empty());
}

#[test]
fn without_a_pod_watcher_an_unknown_image_is_judged_at_once() {
    let mut f = Fixture::new(false);
    let cgroup = f.start_container();
    let events = f.feed(cgroup, 10, entrypoint(), 0);
    assert_eq!(kinds(&events), ["container_start", "exec"]);
    assert!(events.iter().all(|e| e.image_digest.is_none()));
    assert_eq!(f.tracker.unresolved(), 1);
    assert!(f.tracker.release_held(f.at(1000)).is_empty());
}

#[test]
fn a_process_of_another_pid_namespace_outside_container_cgroups_is_a_container() {
    let mut f = Fixture::new(false);
    // A cgroup that names no container, as one a process made and moved to.
    let dir = f.root.path().join("escaped");
    std::fs::create_dir_all(&dir).unwrap();
    let cgroup = std::fs::metadata(&dir).unwrap().ino();
    let header = Header {
        pid: 77,
        tid: 77,
        pid_ns: f.tracker.host_pid_ns.wrapping_add(1),
        cgroup_id: cgroup,
        time_ns: 0,
        comm: "cat".into(),
    };
    let events = f.tracker.events(&header, &open("/etc/shadow"), f.at(0));
    assert_eq!(kinds(&events), ["open"]);
    let expected = format!("pidns-{}", header.pid_ns);
    assert_eq!(events[0].container_id, expected);
    assert!(events[0].image_digest.is_none());
    // The host's own pid namespace there is the host.
    let host = Header {
        pid_ns: f.tracker.host_pid_ns,
        ..header
    };
    assert!(
        f.tracker
            .events(&host, &open("/etc/shadow"), f.at(1))
            .is_empty()
    );
    assert_eq!(f.tracker.host_events(), 1);
}

#[test]
fn a_flood_keeps_what_was_held_first_and_crowds_out_no_other_container() {
    const OTHER: &str = "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b";
    let mut f = Fixture::new(true);
    let noisy = f.start_container();
    f.feed(noisy, 10, entrypoint(), 0);
    for i in 0..MAX_HELD + 10 {
        f.feed(noisy, 10, open(&format!("/f{i}")), 1);
    }
    // The bound per container: the entrypoint and the first opens are kept.
    assert_eq!(f.tracker.held, MAX_HELD_PER_CONTAINER);
    // What did not fit was judged at once without the image, and counted for it.
    let over = (MAX_HELD + 10 + 1 - MAX_HELD_PER_CONTAINER) as u64;
    assert_eq!(f.tracker.unresolved(), over);
    assert_eq!(f.tracker.take_unheld(), [(ID.to_string(), over)]);
    assert!(f.tracker.take_unheld().is_empty(), "taken once");
    // Another new container still has room for its entrypoint.
    let quiet = f.start_container_with(OTHER);
    f.feed(quiet, 20, entrypoint(), 2);
    assert_eq!(f.tracker.held, MAX_HELD_PER_CONTAINER + 1);
    // Once named, the noisy one's held events come back in order, entrypoint first.
    f.pod_status_written();
    let events = f.tracker.release_held(f.at(200));
    assert_eq!(events.len(), MAX_HELD_PER_CONTAINER + 1);
    assert_eq!(kinds(&events[..3]), ["container_start", "exec", "open"]);
    assert!(matches!(&events[2].kind, EventKind::Open { path, .. } if path == "/f0"));
    assert!(events.iter().all(|e| e.container_id == ID));
    assert_eq!(f.tracker.held, 1, "the other container is still held");
}

#[test]
fn a_full_hold_makes_room_from_the_container_holding_the_most() {
    let mut f = Fixture::new(true);
    let containers = MAX_HELD / MAX_HELD_PER_CONTAINER;
    for c in 0..containers {
        let cgroup = f.start_container_with(&format!("{c:064x}"));
        for i in 0..MAX_HELD_PER_CONTAINER {
            f.feed(cgroup, 10, open(&format!("/f{i}")), 0);
        }
    }
    assert_eq!(f.tracker.held, MAX_HELD);
    // A new container's entrypoint is still held: the largest holder gave up
    // its newest event, judged now (with no image), and is told so.
    let late = format!("{:064x}", containers + 1);
    let cgroup = f.start_container_with(&late);
    let judged = f.feed(cgroup, 20, entrypoint(), 1);
    assert_eq!(
        judged.len(),
        0,
        "a plain open before an exec is the runtime's: {judged:?}"
    );
    assert_eq!(f.tracker.held, MAX_HELD);
    assert!(f.tracker.containers[&late].held.len() == 1);
    let unheld = f.tracker.take_unheld();
    assert_eq!(unheld.len(), 1);
    assert_eq!(unheld[0].1, 1);
    assert_ne!(unheld[0].0, late);
}
