use super::*;
use crate::event::ProcessRef;

const IMG: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const IMG2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

fn at(second: i64, container: &str, image: &str, kind: EventKind) -> Event {
    Event {
        time: Timestamp::from_second(1_780_000_000 + second).unwrap(),
        container_id: container.into(),
        image_digest: image.parse().ok(),
        image_ref: Some("registry.test/app:1".into()),
        node: Some("node-a".into()),
        namespace: None,
        pod: None,
        pid: 10,
        comm: None,
        kind,
    }
}

fn exec(path: &str, argv: &[&str]) -> EventKind {
    EventKind::Exec {
        path: path.into(),
        argv: argv.iter().map(|s| s.to_string()).collect(),
        parent: Some(ProcessRef { pid: 1, path: None }),
        stdin_socket: false,
        stdout_socket: false,
    }
}

fn open(path: &str, flags: &[&str]) -> EventKind {
    EventKind::Open {
        path: path.into(),
        flags: OpenFlags::from_names(flags.iter().copied()).unwrap(),
    }
}

#[test]
fn one_profile_per_image_with_all_categories() {
    let mut l = Learner::new(LearnerConfig::default());
    let events = [
        at(0, "c1", IMG, EventKind::ContainerStart),
        at(1, "c1", IMG, exec("/bin/cat", &["cat", "/etc/passwd"])),
        at(2, "c1", IMG, open("/etc/passwd", &["O_RDONLY"])),
        at(3, "c1", IMG, open("/etc//passwd", &["O_CLOEXEC"])),
        at(
            4,
            "c1",
            IMG,
            EventKind::Syscall {
                name: "openat".into(),
            },
        ),
        at(
            5,
            "c1",
            IMG,
            EventKind::Capability {
                name: "CAP_NET_RAW".into(),
            },
        ),
        at(
            6,
            "c1",
            IMG,
            EventKind::Connect {
                address: "127.0.0.1".parse().unwrap(),
                port: 8080,
                protocol: Protocol::Tcp,
            },
        ),
        at(
            7,
            "c1",
            IMG,
            EventKind::Accept {
                address: "::ffff:10.0.0.9".parse().unwrap(),
                port: 80,
                protocol: Protocol::Tcp,
            },
        ),
        at(
            8,
            "c1",
            IMG,
            EventKind::Dns {
                name: "Example.COM.".into(),
                qtype: None,
            },
        ),
        at(9, "c9", IMG2, open("/x", &["O_RDONLY"])),
    ];
    for e in &events {
        l.observe(e);
    }
    let profiles = l.profiles();
    assert_eq!(profiles.len(), 2);
    let p = &profiles[0];
    assert_eq!(p.image.digest, IMG);
    assert_eq!(p.image.reference.as_deref(), Some("registry.test/app:1"));
    assert_eq!(
        p.execs,
        vec![Exec {
            path: "/bin/cat".into(),
            args: Some(vec!["/etc/passwd".into()])
        }]
    );
    assert_eq!(p.opens.len(), 1);
    assert_eq!(p.opens[0].flags.names(), ["O_CLOEXEC", "O_RDONLY"]);
    assert_eq!(p.syscalls, ["openat"]);
    assert_eq!(p.capabilities, ["NET_RAW"]);
    let egress: Vec<String> = p.network.egress.iter().map(|e| format!("{e:?}")).collect();
    assert_eq!(p.network.egress.len(), 2, "{egress:?}");
    assert!(
        p.network
            .egress
            .iter()
            .any(|e| e.cidr.as_deref() == Some("127.0.0.1/32") && e.port == Some(8080))
    );
    assert!(
        p.network
            .egress
            .iter()
            .any(|e| e.dns.as_deref() == Some("example.com"))
    );
    assert_eq!(p.network.ingress[0].cidr.as_deref(), Some("10.0.0.9/32"));
    assert_eq!(p.learning.completeness, Completeness::Complete);
    assert_eq!(p.learning.observed_containers, 1);
    assert_eq!(p.learning.nodes, ["node-a"]);
    assert_eq!(
        p.learning.end.unwrap().as_second() - p.learning.start.unwrap().as_second(),
        8
    );
    assert!(imprint_schema::validate(p).is_empty());
    // The second image's container was already running: partial.
    assert_eq!(profiles[1].learning.completeness, Completeness::Partial);
    assert_eq!(l.stats().events, 10);
    assert_eq!(l.stats().unusable, 0);
}

#[test]
fn short_window_is_partial() {
    let mut l = Learner::new(LearnerConfig {
        learning_period: Some(SignedDuration::from_hours(24)),
        ..LearnerConfig::default()
    });
    l.observe(&at(0, "c1", IMG, EventKind::ContainerStart));
    l.observe(&at(
        60,
        "c1",
        IMG,
        EventKind::Syscall {
            name: "read".into(),
        },
    ));
    assert_eq!(l.profiles()[0].learning.completeness, Completeness::Partial);
    l.observe(&at(
        86_400,
        "c1",
        IMG,
        EventKind::Syscall {
            name: "read".into(),
        },
    ));
    assert_eq!(
        l.profiles()[0].learning.completeness,
        Completeness::Complete
    );
}

#[test]
fn dynamic_paths_collapse_at_the_threshold() {
    let mut l = Learner::new(LearnerConfig::default());
    l.observe(&at(0, "c1", IMG, EventKind::ContainerStart));
    // 50 distinct children stay literal, the 51st collapses the directory.
    for i in 0..50 {
        l.observe(&at(
            1,
            "c1",
            IMG,
            open(&format!("/proc/{i}/stat"), &["O_RDONLY"]),
        ));
    }
    assert_eq!(l.profiles()[0].opens.len(), 50);
    l.observe(&at(2, "c1", IMG, open("/proc/50/stat", &["O_RDONLY"])));
    let opens = &l.profiles()[0].opens;
    assert_eq!(opens.len(), 1);
    assert_eq!(opens[0].path, "/proc/*/stat");
}

#[test]
fn per_prefix_override_applies() {
    let mut config = LearnerConfig::default();
    config.collapse.overrides.push(("/tmp".into(), 2));
    let mut l = Learner::new(config);
    for name in ["a", "b", "c"] {
        l.observe(&at(
            0,
            "c1",
            IMG,
            open(&format!("/tmp/{name}"), &["O_RDWR"]),
        ));
        l.observe(&at(
            0,
            "c1",
            IMG,
            open(&format!("/var/{name}"), &["O_RDWR"]),
        ));
    }
    let paths: Vec<String> = l.profiles()[0]
        .opens
        .iter()
        .map(|o| o.path.clone())
        .collect();
    assert_eq!(paths, ["/tmp/*", "/var/a", "/var/b", "/var/c"]);
}

#[test]
fn too_many_arg_variants_become_any_args() {
    let mut config = LearnerConfig::default();
    config.limits.max_arg_variants = 3;
    let mut l = Learner::new(config);
    for i in 0..3 {
        l.observe(&at(
            0,
            "c1",
            IMG,
            exec("/bin/sleep", &["sleep", &i.to_string()]),
        ));
    }
    assert_eq!(l.profiles()[0].execs.len(), 3);
    l.observe(&at(0, "c1", IMG, exec("/bin/sleep", &["sleep", "99"])));
    assert_eq!(
        l.profiles()[0].execs,
        vec![Exec {
            path: "/bin/sleep".into(),
            args: None
        }]
    );
}

#[test]
fn bounds_are_reported_as_truncated_and_partial() {
    let mut config = LearnerConfig::default();
    config.limits.max_execs = 2;
    config.limits.max_syscalls = 1;
    let mut l = Learner::new(config);
    l.observe(&at(0, "c1", IMG, EventKind::ContainerStart));
    for p in ["/bin/a", "/bin/b", "/bin/c"] {
        l.observe(&at(0, "c1", IMG, exec(p, &[])));
    }
    l.observe(&at(
        0,
        "c1",
        IMG,
        EventKind::Syscall {
            name: "read".into(),
        },
    ));
    l.observe(&at(
        0,
        "c1",
        IMG,
        EventKind::Syscall {
            name: "write".into(),
        },
    ));
    let p = &l.profiles()[0];
    assert_eq!(p.execs.len(), 2);
    assert_eq!(p.learning.truncated, [Category::Execs, Category::Syscalls]);
    assert_eq!(p.learning.completeness, Completeness::Partial);
    assert_eq!(l.stats().dropped, 2);
    assert!(imprint_schema::validate(p).is_empty());
}

#[test]
fn raw_open_bound_compacts_instead_of_growing() {
    let mut config = LearnerConfig::default();
    config.limits.max_raw_opens = 100;
    let mut l = Learner::new(config);
    for i in 0..10_000 {
        l.observe(&at(
            0,
            "c1",
            IMG,
            open(&format!("/tmp/upload-{i}"), &["O_WRONLY", "O_CREAT"]),
        ));
    }
    l.observe(&at(0, "c1", IMG, open("/tmp/upload-x", &["O_TRUNC"])));
    let image = &l.images[IMG];
    assert!(image.opens.exact.len() + image.opens.patterns.len() <= 100);
    let p = &l.profiles()[0];
    assert_eq!(p.opens.len(), 1);
    assert_eq!(p.opens[0].path, "/tmp/*");
    assert_eq!(p.opens[0].flags.names(), ["O_CREAT", "O_TRUNC", "O_WRONLY"]);
    assert!(p.learning.truncated.is_empty());
}

#[test]
fn unusable_fields_are_counted_not_learned() {
    let mut l = Learner::new(LearnerConfig::default());
    l.observe(&at(0, "c1", IMG, open("relative.txt", &["O_RDONLY"])));
    l.observe(&at(
        0,
        "c1",
        IMG,
        EventKind::Capability { name: "FLY".into() },
    ));
    l.observe(&at(
        0,
        "c1",
        IMG,
        EventKind::Dns {
            name: "bad name".into(),
            qtype: None,
        },
    ));
    l.observe(&at(0, "c1", IMG, EventKind::Syscall { name: "Bad".into() }));
    assert_eq!(l.stats().unusable, 4);
    assert_eq!(l.profiles()[0].entry_count(), 0);
}

#[test]
fn many_peers_on_a_port_become_any_peer() {
    let mut l = Learner::new(LearnerConfig::default());
    for i in 0..60 {
        l.observe(&at(
            0,
            "c1",
            IMG,
            EventKind::Accept {
                address: format!("10.0.0.{i}").parse().unwrap(),
                port: 8080,
                protocol: Protocol::Tcp,
            },
        ));
    }
    let ingress = &l.profiles()[0].network.ingress;
    assert_eq!(
        ingress,
        &vec![Peer {
            dns: None,
            cidr: None,
            port: Some(8080),
            protocol: Some(Protocol::Tcp)
        }]
    );
}

#[test]
fn odd_but_legal_paths_stay_valid_patterns() {
    let mut l = Learner::new(LearnerConfig::default());
    l.observe(&at(0, "c1", IMG, open("/tmp/a*b/c", &["O_RDONLY"])));
    l.observe(&at(0, "c1", IMG, exec("/opt/**/run", &["run"])));
    l.observe(&at(
        0,
        "c1",
        IMG,
        open(&format!("/{}", "x".repeat(5000)), &["O_RDONLY"]),
    ));
    l.observe(&at(0, "c1", IMG, exec("/bin/echo", &["echo", "a\0b"])));
    l.observe(&at(0, "c1", "latest", open("/etc/hosts", &["O_RDONLY"])));
    assert_eq!(l.stats().unusable, 3);
    let profiles = l.profiles();
    assert_eq!(profiles.len(), 1);
    let p = &profiles[0];
    assert_eq!(p.opens[0].path, "/tmp/*/c");
    assert_eq!(p.execs[0].path, "/opt/*/run");
    assert!(
        imprint_schema::validate(p).is_empty(),
        "{:?}",
        imprint_schema::validate(p)
    );
}
