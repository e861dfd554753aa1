//! Learner throughput on a realistic event mix, against a naive learner measured in
//! the same run.
//!
//! `cargo bench -p imprint-engine --bench learner`
//!
//! The mix is what reaches user space from a busy web container after in-kernel
//! dedup is off (the worst case): mostly opens (config files, libraries, /proc/<pid>
//! and temp files), then syscalls, connects, DNS, accepts and execs, over 20
//! containers of 4 images.

use std::collections::{BTreeMap, BTreeSet};
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use imprint_engine::event::{Event, EventKind, ProcessRef};
use imprint_engine::{Learner, LearnerConfig};
use imprint_schema::OpenFlags;
use imprint_schema::Protocol;

/// A small deterministic generator (xorshift), so runs compare.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn mix(n: usize) -> Vec<Event> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let images: Vec<imprint_schema::Digest> = (0..4)
        .map(|i| format!("sha256:{:064x}", i + 1).parse().unwrap())
        .collect();
    let files = [
        "/etc/ld.so.cache",
        "/etc/hosts",
        "/etc/resolv.conf",
        "/etc/passwd",
        "/etc/nsswitch.conf",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/x86_64-linux-gnu/libssl.so.3",
        "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
        "/app/config/settings.toml",
        "/app/static/index.html",
        "/etc/ssl/certs/ca-certificates.crt",
        "/usr/share/zoneinfo/UTC",
        "/dev/null",
        "/dev/urandom",
    ];
    let syscalls = [
        "read",
        "write",
        "openat",
        "close",
        "fstat",
        "mmap",
        "futex",
        "epoll_wait",
        "sendto",
        "recvfrom",
    ];
    let flags = [
        OpenFlags::from_names(["O_RDONLY", "O_CLOEXEC"]).unwrap(),
        OpenFlags::from_names(["O_RDWR", "O_CREAT", "O_TRUNC"]).unwrap(),
        OpenFlags::from_names(["O_RDONLY"]).unwrap(),
    ];
    let t0 = jiff::Timestamp::from_second(1_795_000_000).unwrap();
    (0..n)
        .map(|i| {
            let container = rng.below(20);
            let image = &images[(container % 4) as usize];
            let roll = rng.below(100);
            let kind = match roll {
                0..=44 => EventKind::Open {
                    path: files[rng.below(files.len() as u64) as usize].to_string(),
                    flags: flags[rng.below(3) as usize],
                },
                45..=54 => EventKind::Open {
                    path: format!("/proc/{}/stat", rng.below(5000)),
                    flags: flags[2],
                },
                55..=59 => EventKind::Open {
                    path: format!("/tmp/upload-{:08x}", rng.next() as u32),
                    flags: flags[1],
                },
                60..=79 => EventKind::Syscall {
                    name: syscalls[rng.below(syscalls.len() as u64) as usize].to_string(),
                },
                80..=87 => EventKind::Connect {
                    address: std::net::Ipv4Addr::new(10, 96, 0, rng.below(8) as u8).into(),
                    port: [5432, 6379, 443][rng.below(3) as usize],
                    protocol: Protocol::Tcp,
                },
                88..=91 => EventKind::Dns {
                    name: [
                        "db.svc.cluster.local",
                        "cache.svc.cluster.local",
                        "api.example.com",
                    ][rng.below(3) as usize]
                        .to_string(),
                    qtype: None,
                },
                92..=96 => EventKind::Accept {
                    address: std::net::Ipv4Addr::new(
                        10,
                        244,
                        rng.below(4) as u8,
                        rng.below(250) as u8,
                    )
                    .into(),
                    port: 8080,
                    protocol: Protocol::Tcp,
                },
                _ => EventKind::Exec {
                    path: ["/bin/sh", "/usr/bin/gzip", "/usr/bin/curl"][rng.below(3) as usize]
                        .to_string(),
                    argv: vec!["sh".into(), "-c".into(), format!("job-{}", rng.below(8))],
                    parent: Some(ProcessRef { pid: 1, path: None }),
                    stdin_socket: false,
                    stdout_socket: false,
                },
            };
            Event {
                time: t0 + jiff::SignedDuration::from_millis(i as i64),
                container_id: format!("{container:064x}"),
                image_digest: Some(image.clone()),
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

/// The straightforward learner one writes first: a formatted string key per event in
/// ordered sets, no collapsing during ingestion.
fn naive_learn(events: &[Event]) -> usize {
    let mut images: BTreeMap<Option<imprint_schema::Digest>, BTreeSet<String>> = BTreeMap::new();
    for e in events {
        let key = match &e.kind {
            EventKind::Open { path, flags } => format!("open {path} {flags:?}"),
            EventKind::Exec { path, argv, .. } => format!("exec {path} {argv:?}"),
            EventKind::Syscall { name } => format!("syscall {name}"),
            EventKind::Connect {
                address,
                port,
                protocol,
            } => format!("connect {address} {port} {protocol:?}"),
            EventKind::Accept {
                address,
                port,
                protocol,
            } => format!("accept {address} {port} {protocol:?}"),
            EventKind::Dns { name, .. } => format!("dns {name}"),
            other => other.type_name().to_string(),
        };
        images
            .entry(e.image_digest.clone())
            .or_default()
            .insert(key);
    }
    images.values().map(BTreeSet::len).sum()
}

fn bench(c: &mut Criterion) {
    let events = mix(200_000);
    let mut group = c.benchmark_group("learner");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.sample_size(20);
    group.bench_function("imprint_observe", |b| {
        b.iter(|| {
            let mut l = Learner::new(LearnerConfig::default());
            for e in &events {
                l.observe(e);
            }
            black_box(l.stats().events)
        })
    });
    group.bench_function("naive_btreeset_of_strings", |b| {
        b.iter(|| black_box(naive_learn(&events)))
    });
    group.finish();

    let mut group = c.benchmark_group("learner_build");
    group.sample_size(10);
    let mut l = Learner::new(LearnerConfig::default());
    for e in &events {
        l.observe(e);
    }
    group.bench_function("profiles_with_collapse", |b| {
        b.iter(|| black_box(l.profiles().len()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
