use super::*;
use crate::event::ProcessRef;

const DIGEST: &str = "sha256:5b0fd3b4c0c1b0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5";

fn profile() -> Profile {
    let yaml = format!(
        r#"apiVersion: imprint.dev/v1
kind: Profile
image: {{digest: "{DIGEST}"}}
learning: {{completeness: complete}}
execs:
  - {{path: /bin/sh, args: ["-c", "serve"]}}
  - {{path: /usr/bin/app}}
  - {{path: "/opt/tools/*/run"}}
opens:
  - {{path: /etc/passwd, flags: [O_RDONLY]}}
  - {{path: "/var/cache/app/**", flags: [O_RDWR, O_CREAT]}}
syscalls: [read, write, openat]
capabilities: [NET_BIND_SERVICE]
network:
  egress:
    - {{cidr: 10.0.0.0/8, port: 5432, protocol: TCP}}
    - {{dns: "*.example.com"}}
  ingress:
    - {{cidr: 0.0.0.0/0, port: 8080, protocol: TCP}}
"#
    );
    imprint_schema::parse_profile(yaml.as_bytes()).unwrap()
}

fn event(kind: EventKind) -> Event {
    Event {
        time: "2026-11-26T12:00:00Z".parse().unwrap(),
        container_id: "c1".into(),
        image_digest: Some(DIGEST.parse().unwrap()),
        image_ref: None,
        node: None,
        namespace: None,
        pod: None,
        pid: 42,
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

fn anomalies(detector: &Detector, kind: EventKind) -> Vec<String> {
    let mut out = Vec::new();
    detector.check(&event(kind), &mut out);
    out.into_iter()
        .filter(|a| a.source == Source::Anomaly)
        .map(|a| a.rule)
        .collect()
}

#[test]
fn what_the_profile_allows_raises_nothing() {
    let mut d = Detector::new(RuleSet::default());
    d.load(&profile());
    let flags = |names: &[&str]| OpenFlags::from_names(names.iter().copied()).unwrap();
    for kind in [
        exec("/bin/sh", &["sh", "-c", "serve"]),
        exec("/usr/bin/app", &["app", "--anything"]),
        exec("/opt/tools/v2/run", &["run"]),
        EventKind::Open {
            path: "/etc/passwd".into(),
            flags: flags(&["O_RDONLY"]),
        },
        EventKind::Open {
            path: "/var/cache/app/a/b".into(),
            flags: flags(&["O_RDWR"]),
        },
        EventKind::Syscall {
            name: "openat".into(),
        },
        EventKind::Capability {
            name: "NET_BIND_SERVICE".into(),
        },
        EventKind::Connect {
            address: "10.1.2.3".parse().unwrap(),
            port: 5432,
            protocol: Protocol::Tcp,
        },
        EventKind::Accept {
            address: "192.0.2.1".parse().unwrap(),
            port: 8080,
            protocol: Protocol::Tcp,
        },
        EventKind::Dns {
            name: "api.example.com".into(),
            qtype: None,
        },
    ] {
        assert_eq!(
            anomalies(&d, kind.clone()),
            Vec::<String>::new(),
            "{kind:?}"
        );
    }
    // A name the sensor could not make absolute, or truncated, is never allowed.
    for path in ["relative/path", "[truncated]/etc/hostname"] {
        let kind = EventKind::Open {
            path: path.into(),
            flags: flags(&["O_RDONLY"]),
        };
        assert_eq!(anomalies(&d, kind), ["anomaly.open"], "{path}");
    }
}

#[test]
fn each_kind_of_deviation_has_its_rule() {
    let mut d = Detector::new(RuleSet::default());
    d.load(&profile());
    let flags = |names: &[&str]| OpenFlags::from_names(names.iter().copied()).unwrap();
    for (kind, rule) in [
        (exec("/bin/sh", &["sh", "-c", "id"]), "anomaly.exec"),
        (exec("/usr/bin/curl", &["curl"]), "anomaly.exec"),
        (
            EventKind::Open {
                path: "/etc/shadow".into(),
                flags: flags(&["O_RDONLY"]),
            },
            "anomaly.open",
        ),
        (
            EventKind::Open {
                path: "/etc/passwd".into(),
                flags: flags(&["O_WRONLY"]),
            },
            "anomaly.open",
        ),
        (
            EventKind::Syscall {
                name: "ptrace".into(),
            },
            "anomaly.syscall",
        ),
        (
            EventKind::Capability {
                name: "SYS_ADMIN".into(),
            },
            "anomaly.capability",
        ),
        (
            EventKind::Connect {
                address: "10.1.2.3".parse().unwrap(),
                port: 22,
                protocol: Protocol::Tcp,
            },
            "anomaly.egress",
        ),
        (
            EventKind::Connect {
                address: "8.8.8.8".parse().unwrap(),
                port: 5432,
                protocol: Protocol::Tcp,
            },
            "anomaly.egress",
        ),
        (
            EventKind::Accept {
                address: "192.0.2.1".parse().unwrap(),
                port: 22,
                protocol: Protocol::Tcp,
            },
            "anomaly.ingress",
        ),
        (
            EventKind::Dns {
                name: "evil.example.net".into(),
                qtype: None,
            },
            "anomaly.dns",
        ),
        (
            EventKind::Dns {
                name: "a.b.example.com".into(),
                qtype: None,
            },
            "anomaly.dns",
        ),
    ] {
        assert_eq!(
            anomalies(&d, kind.clone()),
            vec![rule.to_string()],
            "{kind:?}"
        );
    }
}

#[test]
fn containers_without_a_profile_get_rules_only_and_profiles_unload() {
    let mut d = Detector::new(RuleSet::builtin());
    let mut out = Vec::new();
    d.check(&event(exec("/usr/bin/curl", &["curl"])), &mut out);
    assert!(out.is_empty());
    d.load(&profile());
    assert!(d.has_profile(&DIGEST.parse().unwrap()));
    d.check(&event(exec("/usr/bin/curl", &["curl"])), &mut out);
    assert_eq!(out.len(), 1);
    assert!(d.unload(&DIGEST.parse().unwrap()));
    assert_eq!(d.profiles(), 0);
}
