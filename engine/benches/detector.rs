//! Detector throughput with 100 loaded profiles on a realistic event mix, against a
//! naive detector (linear scans of each profile's lists, profile found by a scan)
//! measured in the same run; and the memory a loaded profile takes.
//!
//! `cargo bench -p imprint-engine --bench detector`
//!
//! Each profile has 20 execs, 200 opens (some `*`/`**` patterns), 60 syscalls, 4
//! capabilities, 10 egress CIDRs and 5 DNS names. Nine events in ten are allowed
//! by their image's profile; the rest deviate. Behaviour rules are off in both, so
//! the comparison is of profile checks alone.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use imprint_engine::event::{Event, EventKind};
use imprint_engine::{Detector, RuleSet};
use imprint_schema::{Exec, Open, Peer, Protocol};
use imprint_schema::{OpenFlags, Profile};

/// Resident memory of this process, in bytes (`/proc/self/statm`).
fn resident_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .unwrap_or(0)
        * 4096
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const SYSCALLS: [&str; 80] = [
    "read",
    "write",
    "open",
    "close",
    "stat",
    "fstat",
    "lstat",
    "poll",
    "lseek",
    "mmap",
    "mprotect",
    "munmap",
    "brk",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "ioctl",
    "pread64",
    "pwrite64",
    "readv",
    "writev",
    "access",
    "pipe",
    "select",
    "sched_yield",
    "mremap",
    "msync",
    "mincore",
    "madvise",
    "dup",
    "dup2",
    "pause",
    "nanosleep",
    "getpid",
    "sendfile",
    "socket",
    "connect",
    "accept",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "shutdown",
    "bind",
    "listen",
    "getsockname",
    "getpeername",
    "socketpair",
    "setsockopt",
    "getsockopt",
    "clone",
    "fork",
    "execve",
    "exit",
    "wait4",
    "kill",
    "uname",
    "fcntl",
    "flock",
    "fsync",
    "truncate",
    "getdents",
    "getcwd",
    "chdir",
    "rename",
    "mkdir",
    "rmdir",
    "unlink",
    "readlink",
    "chmod",
    "umask",
    "gettimeofday",
    "getrlimit",
    "getuid",
    "getgid",
    "setuid",
    "openat",
    "futex",
    "epoll_wait",
    "ptrace",
];

fn profile(i: usize) -> Profile {
    let mut p = Profile::new(format!("sha256:{:064x}", i + 1).parse().unwrap());
    for e in 0..20u32 {
        p.execs.push(Exec {
            path: format!("/usr/bin/tool{e}"),
            args: (e.is_multiple_of(2)).then(|| vec!["--serve".into(), format!("--port={e}")]),
        });
    }
    let rw = OpenFlags::from_names(["O_RDWR", "O_CREAT", "O_RDONLY", "O_CLOEXEC"]).unwrap();
    let ro = OpenFlags::from_names(["O_RDONLY", "O_CLOEXEC"]).unwrap();
    for o in 0..190u32 {
        p.opens.push(Open {
            path: format!("/app/data/dir{}/file{o}.dat", o % 12),
            flags: if o.is_multiple_of(3) { rw } else { ro },
        });
    }
    for pattern in [
        "/proc/*/stat",
        "/proc/*/status",
        "/tmp/**",
        "/app/cache/**",
        "/usr/lib/**",
        "/etc/**",
        "/dev/*",
        "/sys/fs/cgroup/**",
        "/var/log/app/*",
        "/app/static/**",
    ] {
        p.opens.push(Open {
            path: pattern.into(),
            flags: rw,
        });
    }
    p.syscalls = SYSCALLS[..60].iter().map(|s| s.to_string()).collect();
    p.capabilities = vec![
        "CHOWN".into(),
        "NET_BIND_SERVICE".into(),
        "SETUID".into(),
        "SETGID".into(),
    ];
    for n in 0..10 {
        p.network.egress.push(Peer {
            dns: None,
            cidr: Some(format!("10.{n}.0.0/16")),
            port: Some(5432 + n as u16),
            protocol: Some(Protocol::Tcp),
        });
    }
    for n in 0..5 {
        p.network.egress.push(Peer {
            dns: Some(format!("svc{n}.example.com")),
            cidr: None,
            port: None,
            protocol: None,
        });
    }
    p
}

fn events(n: usize, images: usize) -> Vec<Event> {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let ro = OpenFlags::from_names(["O_RDONLY", "O_CLOEXEC"]).unwrap();
    (0..n)
        .map(|_| {
            let image = rng.below(images);
            let allowed = rng.below(10) != 0;
            let kind = match rng.below(20) {
                0..=9 => EventKind::Open {
                    path: if allowed {
                        match rng.below(4) {
                            0 => format!("/proc/{}/stat", rng.below(30000)),
                            1 => format!("/tmp/upload-{}/part", rng.below(1000)),
                            _ => {
                                let o = rng.below(190);
                                format!("/app/data/dir{}/file{o}.dat", o % 12)
                            }
                        }
                    } else {
                        format!("/root/.ssh/id_{}", rng.below(5))
                    },
                    flags: ro,
                },
                10..=14 => EventKind::Syscall {
                    name: SYSCALLS[if allowed {
                        rng.below(60)
                    } else {
                        60 + rng.below(20)
                    }]
                    .into(),
                },
                15..=16 => {
                    let n = rng.below(10);
                    EventKind::Connect {
                        address: if allowed {
                            std::net::Ipv4Addr::new(10, n as u8, 1, rng.below(250) as u8).into()
                        } else {
                            std::net::Ipv4Addr::new(203, 0, 113, rng.below(250) as u8).into()
                        },
                        port: 5432 + n as u16,
                        protocol: Protocol::Tcp,
                    }
                }
                17 => EventKind::Dns {
                    name: if allowed {
                        format!("svc{}.example.com", rng.below(5))
                    } else {
                        "evil.example.net".into()
                    },
                    qtype: None,
                },
                _ => {
                    let e = rng.below(20);
                    EventKind::Exec {
                        path: if allowed {
                            format!("/usr/bin/tool{e}")
                        } else {
                            "/usr/bin/nc".into()
                        },
                        argv: if e.is_multiple_of(2) {
                            vec![format!("tool{e}"), "--serve".into(), format!("--port={e}")]
                        } else {
                            vec![format!("tool{e}")]
                        },
                        parent: None,
                        stdin_socket: false,
                        stdout_socket: false,
                    }
                }
            };
            Event {
                time: "2026-11-26T12:00:00Z".parse().unwrap(),
                container_id: format!("c{image}"),
                image_digest: format!("sha256:{:064x}", image + 1).parse().ok(),
                image_ref: None,
                node: None,
                namespace: None,
                pod: None,
                pid: 100,
                comm: None,
                kind,
            }
        })
        .collect()
}

/// The obvious implementation: find the profile by scanning, then scan its lists.
fn naive(profiles: &[Profile], event: &Event) -> bool {
    let Some(p) = profiles
        .iter()
        .find(|p| Some(&p.image.digest) == event.image_digest.as_ref())
    else {
        return false;
    };
    match &event.kind {
        EventKind::Exec { path, argv, .. } => !p.execs.iter().any(|e| {
            e.path == *path
                && e.args
                    .as_ref()
                    .is_none_or(|a| a.as_slice() == argv.get(1..).unwrap_or(&[]))
        }),
        EventKind::Open { path, flags } => !p
            .opens
            .iter()
            .any(|o| imprint_schema::pattern::matches(&o.path, path) && o.flags.contains(*flags)),
        EventKind::Syscall { name } => !p.syscalls.contains(name),
        EventKind::Connect { address, port, .. } => {
            let ip = *address;
            !p.network.egress.iter().any(|peer| {
                peer.cidr
                    .as_ref()
                    .is_some_and(|c| c.parse::<ipnet::IpNet>().unwrap().contains(&ip))
                    && peer.port.is_none_or(|p| p == *port)
            })
        }
        EventKind::Dns { name, .. } => !p
            .network
            .egress
            .iter()
            .any(|peer| peer.dns.as_deref() == Some(name)),
        _ => false,
    }
}

fn bench(c: &mut Criterion) {
    const IMAGES: usize = 100;
    let profiles: Vec<Profile> = (0..IMAGES).map(profile).collect();
    let mut detector = Detector::new(RuleSet::default());
    for p in &profiles {
        detector.load(p);
    }
    // Memory: the resident growth from loading 2,000 more (distinct) profiles.
    {
        let many: Vec<Profile> = (IMAGES..IMAGES + 2000).map(profile).collect();
        let before = resident_bytes();
        let mut big = Detector::new(RuleSet::default());
        for p in &many {
            big.load(p);
        }
        let per_profile = resident_bytes().saturating_sub(before) / many.len();
        println!(
            "memory per loaded profile: about {:.1} KiB ({} entries each; resident growth over 2,000 profiles)",
            per_profile as f64 / 1024.0,
            20 + 200 + 60 + 4 + 15
        );
        black_box(big.profiles());
    }
    let stream = events(200_000, IMAGES);

    // The two must agree on what deviates.
    let mut out = Vec::new();
    let (mut fast, mut slow) = (0, 0);
    for e in &stream {
        out.clear();
        detector.check(e, &mut out);
        fast += out.len();
        slow += naive(&profiles, e) as usize;
    }
    assert_eq!(fast, slow, "the detector and the naive scan disagree");
    println!("{fast} of {} events deviate", stream.len());

    let mut group = c.benchmark_group("detector");
    group.throughput(Throughput::Elements(stream.len() as u64));
    group.sample_size(10);
    group.bench_function("imprint, 100 profiles", |b| {
        let mut out = Vec::with_capacity(8);
        b.iter(|| {
            let mut n = 0;
            for e in &stream {
                out.clear();
                detector.check(black_box(e), &mut out);
                n += out.len();
            }
            black_box(n)
        })
    });
    group.bench_function("naive scan, 100 profiles", |b| {
        b.iter(|| {
            let mut n = 0;
            for e in &stream {
                n += naive(black_box(&profiles), black_box(e)) as usize;
            }
            black_box(n)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
