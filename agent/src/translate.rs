//! Kernel records → the documented event model (`engine::EventKind`). Pure.

use imprint_agent_ebpf::{Endpoint, Record, SocketType};
use imprint_engine::EventKind;
use imprint_engine::event::ProcessRef;
use imprint_schema::Protocol;
use imprint_schema::names::{OpenFlags, capability_name};

/// The `PTRACE_*` names of the requests that matter to detection.
fn ptrace_request(request: u64) -> String {
    match request {
        0 => "PTRACE_TRACEME".into(),
        1 => "PTRACE_PEEKTEXT".into(),
        2 => "PTRACE_PEEKDATA".into(),
        4 => "PTRACE_POKETEXT".into(),
        5 => "PTRACE_POKEDATA".into(),
        16 => "PTRACE_ATTACH".into(),
        17 => "PTRACE_DETACH".into(),
        0x4206 => "PTRACE_SEIZE".into(),
        other => other.to_string(),
    }
}

/// `bpf(2)` command names.
fn bpf_command(command: u64) -> String {
    const NAMES: [&str; 13] = [
        "BPF_MAP_CREATE",
        "BPF_MAP_LOOKUP_ELEM",
        "BPF_MAP_UPDATE_ELEM",
        "BPF_MAP_DELETE_ELEM",
        "BPF_MAP_GET_NEXT_KEY",
        "BPF_PROG_LOAD",
        "BPF_OBJ_PIN",
        "BPF_OBJ_GET",
        "BPF_PROG_ATTACH",
        "BPF_PROG_DETACH",
        "BPF_PROG_TEST_RUN",
        "BPF_PROG_GET_NEXT_ID",
        "BPF_MAP_GET_NEXT_ID",
    ];
    NAMES
        .get(command as usize)
        .map_or_else(|| command.to_string(), |n| n.to_string())
}

const NAMESPACE_FLAGS: [(u64, &str); 8] = [
    (0x0002_0000, "CLONE_NEWNS"),
    (0x0200_0000, "CLONE_NEWCGROUP"),
    (0x0400_0000, "CLONE_NEWUTS"),
    (0x0800_0000, "CLONE_NEWIPC"),
    (0x1000_0000, "CLONE_NEWUSER"),
    (0x2000_0000, "CLONE_NEWPID"),
    (0x4000_0000, "CLONE_NEWNET"),
    (0x0000_0080, "CLONE_NEWTIME"),
];

fn namespace_flags(flags: u64) -> Vec<String> {
    NAMESPACE_FLAGS
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, name)| name.to_string())
        .collect()
}

fn protocol(t: SocketType, port: u16) -> Protocol {
    match t {
        SocketType::Stream => Protocol::Tcp,
        SocketType::Datagram => Protocol::Udp,
        // Unknown: DNS is UDP by default, everything else TCP.
        SocketType::Other(_) if port == 53 => Protocol::Udp,
        SocketType::Other(_) => Protocol::Tcp,
    }
}

/// What a path from the sensor is judged as: `.`, `..` and repeated slashes
/// folded lexically (`..` never climbs above `/`), and `/proc/self/root/…`,
/// `/proc/thread-self/root/…` and `/proc/<pid>/root/…` read as the `/…` they
/// open. Symlinks are not followed (the sensor reads names, not the files they
/// reach; making a symlink is its own event). A name that did not fit the
/// sensor's buffer is only a prefix of what was opened: it is marked
/// `[truncated]`, so it is never learned and never matches a profile.
pub fn judged_path(path: &str, truncated: bool) -> String {
    if !path.starts_with('/') {
        return path.to_string();
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    // Each process's root is its container's: /proc/<pid>/root is `/` there.
    while parts.len() >= 3
        && parts[0] == "proc"
        && parts[2] == "root"
        && (parts[1] == "self"
            || parts[1] == "thread-self"
            || parts[1].bytes().all(|b| b.is_ascii_digit()))
    {
        parts.drain(..3);
    }
    let joined = format!("/{}", parts.join("/"));
    if truncated {
        format!("[truncated]{joined}")
    } else {
        joined
    }
}

/// The first question of a DNS query: (name, type).
pub fn dns_question(payload: &[u8]) -> Option<(String, Option<String>)> {
    // Header: 12 bytes; QDCOUNT at 4..6 must be ≥ 1; QR bit (0x80 of byte 2) clear.
    if payload.len() < 12 || payload[2] & 0x80 != 0 {
        return None;
    }
    if u16::from_be_bytes([payload[4], payload[5]]) == 0 {
        return None;
    }
    let mut at = 12;
    let mut labels: Vec<String> = Vec::new();
    loop {
        let len = *payload.get(at)? as usize;
        at += 1;
        if len == 0 {
            break;
        }
        // Compression pointers do not occur in questions of queries.
        if len > 63 {
            return None;
        }
        let label = payload.get(at..at + len)?;
        if !label
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
        {
            return None;
        }
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        at += len;
    }
    if labels.is_empty() {
        return None;
    }
    let qtype = payload
        .get(at..at + 2)
        .map(|t| match u16::from_be_bytes([t[0], t[1]]) {
            1 => "A".to_string(),
            28 => "AAAA".to_string(),
            5 => "CNAME".to_string(),
            15 => "MX".to_string(),
            16 => "TXT".to_string(),
            33 => "SRV".to_string(),
            12 => "PTR".to_string(),
            65 => "HTTPS".to_string(),
            other => other.to_string(),
        });
    Some((labels.join("."), qtype))
}

/// The address as users write it: IPv4-mapped IPv6 (`::ffff:10.0.0.1`, what a
/// dual-stack socket reports) as plain IPv4.
fn address(e: &Endpoint) -> std::net::IpAddr {
    e.ip.to_canonical()
}

/// The path of what an exec ran: the name given to execve, unless that name is a
/// self-reference (`/proc/self/exe`, `/dev/fd/N`, `/proc/self/fd/N`, as busybox and
/// runtimes re-exec themselves), which says nothing; then the executable's own
/// path as the kernel knows it.
pub fn executed_path(filename: &str, exe: &str) -> String {
    let self_reference = filename == "/proc/self/exe"
        || filename.starts_with("/dev/fd/")
        || filename.starts_with("/proc/self/fd/");
    if self_reference && !exe.is_empty() {
        exe.to_string()
    } else {
        filename.to_string()
    }
}

/// Whether an exec is a container runtime's own init (runc re-executing itself as
/// `runc init`, from `/proc/self/exe` or a sealed memfd copy), not the container's
/// entrypoint.
pub fn is_runtime_init(filename: &str, exe: &str, argv: &[String]) -> bool {
    let init_argument = argv.get(1).is_some_and(|a| a == "init");
    let runtime_binary = exe.contains("runc")
        || argv
            .first()
            .is_some_and(|a| a.ends_with("runc") || a.starts_with("runc:"))
        || filename == "/proc/self/exe"
        || filename.starts_with("/dev/fd/");
    init_argument && runtime_binary
}

/// The event a kernel record stands for; `None` for records the model does not
/// carry (a DNS payload that is not a query).
pub fn event_kind(record: &Record, parent_path: Option<String>) -> Option<EventKind> {
    Some(match record {
        Record::Exec {
            filename,
            exe,
            argv,
            parent_pid,
            stdin_socket,
            stdout_socket,
        } => EventKind::Exec {
            path: executed_path(filename, exe),
            argv: argv.clone(),
            parent: Some(ProcessRef {
                pid: *parent_pid,
                path: parent_path,
            }),
            stdin_socket: *stdin_socket,
            stdout_socket: *stdout_socket,
        },
        Record::Fork { child_pid } => EventKind::Fork {
            child_pid: *child_pid,
        },
        Record::Exit { code } => EventKind::Exit {
            code: (*code >> 8) as i32 & 0xff,
        },
        Record::Open {
            path,
            flags,
            truncated,
            ..
        } => EventKind::Open {
            path: judged_path(path, *truncated),
            flags: OpenFlags::from_linux_bits(*flags as u32),
        },
        Record::Syscall { nr } => EventKind::Syscall {
            name: imprint_agent_ebpf::arch::syscall_name(*nr)
                .map_or_else(|| format!("syscall_{nr}"), str::to_string),
        },
        Record::Capability { cap, .. } => EventKind::Capability {
            name: capability_name(*cap as u32).map_or_else(|| format!("CAP_{cap}"), str::to_string),
        },
        Record::Connect(e, t) => EventKind::Connect {
            address: address(e),
            port: e.port,
            protocol: protocol(*t, e.port),
        },
        Record::Accept(e, t) => EventKind::Accept {
            address: address(e),
            port: e.port,
            protocol: protocol(*t, e.port),
        },
        Record::Bind(e, t) => EventKind::Bind {
            address: address(e),
            port: e.port,
            protocol: protocol(*t, e.port),
        },
        Record::Dns { payload, .. } => {
            let (name, qtype) = dns_question(payload)?;
            EventKind::Dns { name, qtype }
        }
        Record::MemfdCreate { name, .. } => EventKind::MemfdCreate { name: name.clone() },
        Record::Ptrace { request, target } => EventKind::Ptrace {
            request: ptrace_request(*request),
            target_pid: *target as u32,
        },
        Record::ModuleLoad { from_fd } => EventKind::ModuleLoad {
            syscall: if *from_fd {
                "finit_module".into()
            } else {
                "init_module".into()
            },
            name: None,
        },
        Record::Bpf { command } => EventKind::Bpf {
            command: bpf_command(*command),
        },
        Record::Unshare { flags } => EventKind::Unshare {
            flags: namespace_flags(*flags),
        },
        Record::Setns { nstype } => EventKind::Setns {
            nstype: namespace_flags(*nstype).into_iter().next(),
        },
        Record::Symlink { target, link } => EventKind::Symlink {
            target: target.clone(),
            link_path: link.clone(),
        },
        Record::Link { target, link } => EventKind::Link {
            target: target.clone(),
            link_path: link.clone(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `name` of type A, as a stub resolver sends it.
    fn query(name: &str) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        q
    }

    #[test]
    fn dns_questions_are_read_and_responses_ignored() {
        assert_eq!(
            dns_question(&query("Payments.Example.com")),
            Some(("payments.example.com".into(), Some("A".into())))
        );
        let mut response = query("x.example");
        response[2] |= 0x80;
        assert_eq!(dns_question(&response), None);
        assert_eq!(dns_question(&[0; 5]), None);
        let mut bad = query("a.b");
        bad[13] = b'/';
        assert_eq!(dns_question(&bad), None);
    }

    #[test]
    fn self_references_resolve_to_the_executable() {
        assert_eq!(
            executed_path("/proc/self/exe", "/bin/busybox"),
            "/bin/busybox"
        );
        assert_eq!(
            executed_path("/dev/fd/6", "/memfd:runc_cloned:/proc/self/exe"),
            "/memfd:runc_cloned:/proc/self/exe"
        );
        assert_eq!(executed_path("/bin/sh", "/bin/busybox"), "/bin/sh");
        assert_eq!(executed_path("/proc/self/exe", ""), "/proc/self/exe");
        let argv = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(is_runtime_init(
            "/dev/fd/6",
            "/memfd:runc_cloned:/proc/self/exe",
            &argv(&["runc", "init"])
        ));
        assert!(is_runtime_init(
            "/proc/self/exe",
            "/usr/bin/runc",
            &argv(&["runc", "init"])
        ));
        assert!(!is_runtime_init(
            "/bin/sh",
            "/bin/busybox",
            &argv(&["sh", "-c", "init"])
        ));
        assert!(!is_runtime_init(
            "/sbin/init",
            "/sbin/init",
            &argv(&["/sbin/init"])
        ));
    }

    #[test]
    fn judged_paths_fold_dots_and_proc_roots() {
        let cases = [
            ("/app/cache/../../etc/shadow", "/etc/shadow"),
            ("/app/./cache//x", "/app/cache/x"),
            ("/../../etc/passwd", "/etc/passwd"),
            ("/proc/self/root/etc/shadow", "/etc/shadow"),
            (
                "/proc/1/root/proc/thread-self/root/etc/shadow",
                "/etc/shadow",
            ),
            ("/proc/self/rootx/etc", "/proc/self/rootx/etc"),
            ("/proc/self/status", "/proc/self/status"),
            ("/tmp/", "/tmp"),
            ("/", "/"),
            ("relative/x", "relative/x"),
        ];
        for (given, judged) in cases {
            assert_eq!(judged_path(given, false), judged, "{given}");
        }
        assert_eq!(
            judged_path("/app/cache/aaa/..", true),
            "[truncated]/app/cache"
        );
    }

    /// `/app/cache/../../etc/shadow`, against a profile allowing `/app/cache/**`:
    /// judged as `/etc/shadow`, a deviation; a real cache file is allowed.
    #[test]
    fn dot_dot_does_not_escape_an_allowed_directory() {
        let digest = "sha256:5b0fd3b4c0c1b0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5";
        let yaml = format!(
            "apiVersion: imprint.dev/v1\nkind: Profile\nimage: {{digest: \"{digest}\"}}\nlearning: {{completeness: complete}}\nopens:\n  - {{path: \"/app/cache/**\", flags: [O_RDONLY]}}\n"
        );
        let mut detector = imprint_engine::Detector::new(Default::default());
        detector.load(&imprint_schema::parse_profile(yaml.as_bytes()).unwrap());
        let judge = |path: &str| {
            let record = Record::Open {
                path: path.into(),
                flags: 0,
                relative: false,
                truncated: false,
            };
            let event = imprint_engine::Event {
                time: "2026-12-02T12:00:00Z".parse().unwrap(),
                container_id: "c1".into(),
                image_digest: Some(digest.parse().unwrap()),
                image_ref: None,
                node: None,
                namespace: None,
                pod: None,
                pid: 7,
                comm: Some("cat".into()),
                kind: event_kind(&record, None).unwrap(),
            };
            let mut alerts = Vec::new();
            detector.check(&event, &mut alerts);
            alerts
                .into_iter()
                .map(|a| format!("{} {}", a.rule, a.subject))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            judge("/app/cache/../../etc/shadow"),
            ["anomaly.open /etc/shadow O_RDONLY"]
        );
        assert!(judge("/app/cache/./pages/1").is_empty());
    }

    #[test]
    fn records_become_model_events() {
        let kind = event_kind(&Record::Syscall { nr: 59 }, None).unwrap();
        assert_eq!(
            kind,
            EventKind::Syscall {
                name: "execve".into()
            }
        );
        let kind = event_kind(
            &Record::Capability {
                cap: 21,
                verdict: 0,
            },
            None,
        )
        .unwrap();
        assert_eq!(
            kind,
            EventKind::Capability {
                name: "SYS_ADMIN".into()
            }
        );
        let kind = event_kind(
            &Record::Open {
                path: "/etc/passwd".into(),
                flags: 0o2000000, // O_CLOEXEC
                relative: false,
                truncated: false,
            },
            None,
        )
        .unwrap();
        let EventKind::Open { flags, .. } = kind else {
            panic!()
        };
        assert_eq!(flags.names(), vec!["O_CLOEXEC", "O_RDONLY"]);
        let kind = event_kind(
            &Record::Unshare {
                flags: 0x4000_0000 | 0x1000_0000,
            },
            None,
        )
        .unwrap();
        assert_eq!(
            kind,
            EventKind::Unshare {
                flags: vec!["CLONE_NEWUSER".into(), "CLONE_NEWNET".into()]
            }
        );
        let kind = event_kind(
            &Record::Connect(
                Endpoint {
                    ip: "10.0.0.1".parse().unwrap(),
                    port: 53,
                },
                SocketType::Datagram,
            ),
            None,
        )
        .unwrap();
        assert_eq!(
            kind,
            EventKind::Connect {
                address: "10.0.0.1".parse().unwrap(),
                port: 53,
                protocol: Protocol::Udp
            }
        );
        assert_eq!(
            event_kind(&Record::Exit { code: 3 << 8 }, None).unwrap(),
            EventKind::Exit { code: 3 }
        );
    }
}
