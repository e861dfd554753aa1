use super::*;
use crate::event::ProcessRef;
use imprint_schema::Protocol;

fn event(kind: EventKind) -> Event {
    Event {
        time: "2026-11-26T12:00:00Z".parse().unwrap(),
        container_id: "c1".into(),
        image_digest: Some(
            "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                .parse()
                .unwrap(),
        ),
        image_ref: None,
        node: None,
        namespace: Some("shop".into()),
        pod: None,
        pid: 7,
        comm: None,
        kind,
    }
}

fn fired(rules: &RuleSet, kind: EventKind) -> Vec<String> {
    let mut ids = Vec::new();
    rules.check(&event(kind), |rule, _| ids.push(rule.id.clone()));
    ids
}

fn exec(path: &str, argv: &[&str], socket: bool) -> EventKind {
    EventKind::Exec {
        path: path.into(),
        argv: argv.iter().map(|s| s.to_string()).collect(),
        parent: Some(ProcessRef { pid: 1, path: None }),
        stdin_socket: socket,
        stdout_socket: false,
    }
}

#[test]
fn the_builtin_catalogue_recognises_each_behaviour() {
    let rules = RuleSet::builtin();
    let flags = |n: &[&str]| OpenFlags::from_names(n.iter().copied()).unwrap();
    for (kind, id) in [
        (exec("/bin/sh", &["sh", "-i"], true), "reverse-shell"),
        (exec("/bin/busybox", &["sh"], true), "reverse-shell"),
        (exec("/memfd:payload", &["x"], false), "fileless-exec"),
        (
            exec("/tmp/x/miner", &["miner"], false),
            "exec-from-temporary-directory",
        ),
        (
            exec("/dev/shm/a", &["a"], false),
            "exec-from-temporary-directory",
        ),
        (
            EventKind::ModuleLoad {
                syscall: "finit_module".into(),
                name: None,
            },
            "kernel-module-load",
        ),
        (
            EventKind::Bpf {
                command: "BPF_PROG_LOAD".into(),
            },
            "bpf-program-load",
        ),
        (
            EventKind::Ptrace {
                request: "PTRACE_ATTACH".into(),
                target_pid: 9,
            },
            "ptrace-attach",
        ),
        (
            EventKind::Unshare {
                flags: vec!["CLONE_NEWUSER".into()],
            },
            "namespace-escape",
        ),
        (
            EventKind::Symlink {
                target: "/etc/shadow".into(),
                link_path: "/tmp/s".into(),
            },
            "sensitive-file-link",
        ),
        (
            EventKind::Link {
                target: "/etc/sudoers".into(),
                link_path: "/tmp/s".into(),
            },
            "sensitive-file-link",
        ),
        (
            EventKind::Open {
                path: "/proc/1/environ".into(),
                flags: flags(&["O_RDONLY"]),
            },
            "process-environment-read",
        ),
        (
            EventKind::Open {
                path: "/var/run/secrets/kubernetes.io/serviceaccount/token".into(),
                flags: flags(&["O_RDONLY"]),
            },
            "service-account-token-read",
        ),
        (
            EventKind::Open {
                path: "/etc/ld.so.preload".into(),
                flags: flags(&["O_WRONLY", "O_CREAT"]),
            },
            "dynamic-linker-preload",
        ),
        (
            exec(
                "/usr/bin/env",
                &["env", "LD_PRELOAD=/tmp/x.so", "ls"],
                false,
            ),
            "ld-preload-argument",
        ),
        (
            EventKind::Dns {
                name: "pool.minexmr.com".into(),
                qtype: None,
            },
            "crypto-mining-pool-dns",
        ),
        (
            EventKind::Connect {
                address: "1.2.3.4".parse().unwrap(),
                port: 3333,
                protocol: Protocol::Tcp,
            },
            "crypto-mining-pool-port",
        ),
        (
            exec("/usr/local/bin/kubectl", &["kubectl", "get", "pods"], false),
            "kubernetes-client-in-container",
        ),
        (EventKind::MemfdCreate { name: "x".into() }, "memfd-create"),
    ] {
        let ids = fired(&rules, kind.clone());
        assert!(
            ids.contains(&id.to_string()),
            "{id}: {kind:?} fired {ids:?}"
        );
    }
}

#[test]
fn ordinary_behaviour_fires_nothing() {
    let rules = RuleSet::builtin();
    let flags = |n: &[&str]| OpenFlags::from_names(n.iter().copied()).unwrap();
    for kind in [
        exec("/bin/sh", &["sh", "-c", "ls"], false),
        exec("/usr/bin/python3", &["python3", "app.py"], false),
        EventKind::Open {
            path: "/etc/ld.so.preload".into(),
            flags: flags(&["O_RDONLY"]),
        },
        EventKind::Open {
            path: "/proc/self/status".into(),
            flags: flags(&["O_RDONLY"]),
        },
        EventKind::Dns {
            name: "api.github.com".into(),
            qtype: None,
        },
        EventKind::Connect {
            address: "1.2.3.4".parse().unwrap(),
            port: 443,
            protocol: Protocol::Tcp,
        },
        EventKind::Ptrace {
            request: "PTRACE_TRACEME".into(),
            target_pid: 0,
        },
        EventKind::Symlink {
            target: "/usr/lib/x.so.1".into(),
            link_path: "/usr/lib/x.so".into(),
        },
        EventKind::Bpf {
            command: "BPF_MAP_LOOKUP_ELEM".into(),
        },
    ] {
        assert_eq!(
            fired(&rules, kind.clone()),
            Vec::<String>::new(),
            "{kind:?}"
        );
    }
}

#[test]
fn user_files_add_replace_disable_and_except() {
    let user = RuleFile::parse(
        r#"apiVersion: imprint.dev/v1
kind: RuleSet
rules:
  - id: curl-anywhere
    description: curl ran
    severity: low
    when: {event: [exec], basename: [curl]}
  - id: kubernetes-client-in-container
    description: replaced
    severity: low
    when: {event: [exec], basename: [helm]}
disable: [memfd-create]
exceptions:
  - {rule: reverse-shell, namespaces: [shop]}
  - {rule: crypto-mining-pool-dns, images: ["sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]}
"#,
        "user.yaml",
    )
    .unwrap();
    let builtin = RuleFile::parse(DEFAULT_RULES, "default.yaml").unwrap();
    let rules = RuleSet::build(&[builtin, user]);
    assert_eq!(
        fired(&rules, exec("/usr/bin/curl", &["curl"], false)),
        vec!["curl-anywhere"]
    );
    assert!(fired(&rules, exec("/usr/bin/kubectl", &["kubectl"], false)).is_empty());
    assert_eq!(
        fired(&rules, exec("/usr/bin/helm", &["helm"], false)),
        vec!["kubernetes-client-in-container"]
    );
    assert!(fired(&rules, EventKind::MemfdCreate { name: "x".into() }).is_empty());
    assert!(
        fired(&rules, exec("/bin/sh", &["sh"], true)).is_empty(),
        "excepted in namespace shop"
    );
    assert!(
        fired(
            &rules,
            EventKind::Dns {
                name: "pool.minexmr.com".into(),
                qtype: None
            }
        )
        .is_empty()
    );
}

#[test]
fn malformed_rule_files_are_named() {
    for (text, needle) in [
        (
            "apiVersion: imprint.dev/v1\nkind: Nope\n",
            "not imprint.dev/v1/RuleSet",
        ),
        (
            "apiVersion: imprint.dev/v1\nkind: RuleSet\nrules:\n  - {id: x, description: d, severity: low, when: {event: [teleport]}}\n",
            "unknown event type \"teleport\"",
        ),
        (
            "apiVersion: imprint.dev/v1\nkind: RuleSet\nrules:\n  - {id: x, description: d, severity: low, when: {event: [exec], path: [\"/tmp*\"]}}\n",
            "rules[0] (x): when.path",
        ),
        (
            "apiVersion: imprint.dev/v1\nkind: RuleSet\nrules:\n  - {id: x, description: d, severity: awful, when: {event: [exec]}}\n",
            "severity",
        ),
        (
            "apiVersion: imprint.dev/v1\nkind: RuleSet\nrules:\n  - {id: x, description: d, severity: low, when: {event: [open], openFlagsAny: [O_BOGUS]}}\n",
            "rules[0] (x): when.openFlagsAny: unknown open flag \"O_BOGUS\"",
        ),
        (
            "apiVersion: imprint.dev/v1\nkind: RuleSet\nsurprise: 1\n",
            "surprise",
        ),
    ] {
        let err = RuleFile::parse(text, "r.yaml").unwrap_err().to_string();
        assert!(err.starts_with("r.yaml: "), "{err}");
        assert!(err.contains(needle), "{needle}: {err}");
    }
}
