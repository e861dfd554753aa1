//! What the sensor costs, measured against a baseline in the same run (root only):
//!
//! 1. an open/close loop without the sensor, then with it (dedup holds: the same
//!    path), as ns per iteration and the slowdown ratio;
//! 2. an exec loop (`/bin/true`), without and with;
//! 3. a burst of opens of distinct paths (nothing to dedup) as fast as one core
//!    can: the events/s that reach user space and how many were lost;
//! 4. the agent's resident memory with 100 containers running (podman), when
//!    podman is installed.
//!
//! Run: `cargo bench -p imprint-agent --bench overhead` (as root). Numbers vary by
//! machine; the ratios are what to compare. `IMPRINT_BENCH_ROUNDS=N` sets the
//! rounds (default 5); `IMPRINT_BENCH_OPEN_ONLY=1` runs only the open/close loop,
//! to compare variants of the kernel programs quickly.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use imprint_agent::sensor::{Sensor, read_ring};
use imprint_agent_ebpf::Record;

fn open_loop(iterations: u32) -> Duration {
    let start = Instant::now();
    for _ in 0..iterations {
        drop(std::fs::File::open("/etc/hostname").unwrap());
    }
    start.elapsed()
}

fn exec_loop(iterations: u32) -> Duration {
    let start = Instant::now();
    for _ in 0..iterations {
        std::process::Command::new("/bin/true").status().unwrap();
    }
    start.elapsed()
}

fn per_iteration(d: Duration, n: u32) -> f64 {
    d.as_nanos() as f64 / n as f64
}

/// The sensor, with a reader thread counting records (and opens under `prefix`).
struct Running {
    sensor: Sensor,
    stop: Arc<AtomicBool>,
    records: Arc<AtomicU64>,
    marked: Arc<AtomicU64>,
    reader: Option<std::thread::JoinHandle<()>>,
}

fn start_sensor(prefix: &'static str) -> Running {
    let mut sensor = Sensor::start().expect("the sensor starts (run as root, with tracefs)");
    let ring = sensor.take_ring().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let records = Arc::new(AtomicU64::new(0));
    let marked = Arc::new(AtomicU64::new(0));
    let (s, r, m) = (stop.clone(), records.clone(), marked.clone());
    let reader = std::thread::spawn(move || {
        read_ring(ring, s, Duration::from_millis(20), |_, record| {
            r.fetch_add(1, Ordering::Relaxed);
            if let Record::Open { path, .. } = &record
                && path.starts_with(prefix)
            {
                m.fetch_add(1, Ordering::Relaxed);
            }
        });
    });
    Running {
        sensor,
        stop,
        records,
        marked,
        reader: Some(reader),
    }
}

impl Running {
    fn finish(mut self) -> (u64, u64, u64) {
        std::thread::sleep(Duration::from_millis(300));
        self.stop.store(true, Ordering::Relaxed);
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        (
            self.records.load(Ordering::Relaxed),
            self.marked.load(Ordering::Relaxed),
            self.sensor.drops(),
        )
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn agent_rss_with_containers(count: usize) {
    let conf = std::env::temp_dir().join("imprint-bench-containers.conf");
    std::fs::write(
        &conf,
        "[containers]\nnetns = \"host\"\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n[engine]\ncgroup_manager = \"cgroupfs\"\nruntime = \"runc\"\n",
    )
    .unwrap();
    let podman = |args: &[&str]| {
        std::process::Command::new("podman")
            .env("CONTAINERS_CONF", &conf)
            .args(args)
            .output()
    };
    if podman(&["--version"]).is_err() || !std::path::Path::new("/bin/busybox").exists() {
        imprint_test_support::skip(format!(
            "agent RSS with {count} containers: podman or busybox-static absent"
        ));
        return;
    }
    // A busybox image from a tar of the static binary.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rootfs/bin");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::copy("/bin/busybox", root.join("busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", root.join("sleep")).unwrap();
    std::os::unix::fs::symlink("busybox", root.join("sh")).unwrap();
    let tar = dir.path().join("rootfs.tar");
    std::process::Command::new("tar")
        .arg("-C")
        .arg(dir.path().join("rootfs"))
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    podman(&[
        "import",
        tar.to_str().unwrap(),
        "localhost/imprint-bench:rss",
    ])
    .unwrap();
    let state = dir.path().join("state");
    let mut agent = std::process::Command::new(env!("CARGO_BIN_EXE_imprint-agent"))
        .args(["--mode", "learn", "--learning-period", "1h", "--out"])
        .arg(dir.path().join("out"))
        .arg("--state-dir")
        .arg(&state)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let before = rss_kib(agent.id());
    let label = format!("imprint-bench-{}", std::process::id());
    for i in 0..count {
        podman(&[
            "run",
            "-d",
            "--label",
            &label,
            "--name",
            &format!("{label}-{i}"),
            "localhost/imprint-bench:rss",
            "/bin/sh",
            "-c",
            "while true; do sleep 1; done",
        ])
        .unwrap();
    }
    std::thread::sleep(Duration::from_secs(5));
    let after = rss_kib(agent.id());
    let _ = podman(&["rm", "-f", "-t", "0", "--filter", &format!("label={label}")]);
    let _ = agent.kill();
    let _ = agent.wait();
    println!(
        "agent RSS: {} MiB idle, {} MiB with {count} containers running (target ≤ 64 MiB)",
        before.map_or("?".into(), |k| format!("{:.1}", k as f64 / 1024.0)),
        after.map_or("?".into(), |k| format!("{:.1}", k as f64 / 1024.0)),
    );
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return; // `cargo test` runs benches once without --bench: nothing to do.
    }
    if !rustix::process::geteuid().is_root() {
        imprint_test_support::skip("overhead: not root (the sensor needs root)");
        return;
    }
    const OPENS: u32 = 300_000;
    const EXECS: u32 = 1_000;

    let rounds: usize = std::env::var("IMPRINT_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5)
        .max(1);
    let open_only = std::env::var_os("IMPRINT_BENCH_OPEN_ONLY").is_some();

    // Warm caches. Then rounds of (without, with): the sensor is loaded and
    // unloaded each round. Reported: the fastest of each side, and the median of
    // the rounds' own ratios (each pair measured back to back, so drift in the
    // machine's speed cancels out).
    open_loop(20_000);
    let (mut open_base, mut open_with) = (Duration::MAX, Duration::MAX);
    let (mut exec_base, mut exec_with) = (Duration::MAX, Duration::MAX);
    let mut open_ratios = Vec::new();
    for _ in 0..rounds {
        let base = open_loop(OPENS);
        if !open_only {
            exec_base = exec_base.min(exec_loop(EXECS));
        }
        let running = start_sensor("/nonexistent/imprint-bench-");
        let with = open_loop(OPENS);
        if !open_only {
            exec_with = exec_with.min(exec_loop(EXECS));
        }
        running.finish();
        open_ratios.push(with.as_secs_f64() / base.as_secs_f64());
        open_base = open_base.min(base);
        open_with = open_with.min(with);
    }
    open_ratios.sort_by(f64::total_cmp);
    let median_ratio = open_ratios[open_ratios.len() / 2];
    let (ob, ow) = (
        per_iteration(open_base, OPENS),
        per_iteration(open_with, OPENS),
    );
    println!(
        "open/close loop: {ob:.0} ns/iter without the sensor, {ow:.0} ns/iter with it: {:.2}× ({:+.1}%); median of {rounds} paired rounds {median_ratio:.2}× ({:+.1}%)",
        ow / ob,
        (ow / ob - 1.0) * 100.0,
        (median_ratio - 1.0) * 100.0
    );
    if open_only {
        return;
    }

    let running = start_sensor("/nonexistent/imprint-bench-");

    // Distinct paths, nothing to dedup, as fast as this thread opens.
    const BURST: u32 = 500_000;
    let start = Instant::now();
    for i in 0..BURST {
        let _ = std::fs::File::open(format!("/nonexistent/imprint-bench-{i}"));
    }
    let burst = start.elapsed();
    let (records, marked, drops) = running.finish();

    let (eb, ew) = (
        per_iteration(exec_base, EXECS),
        per_iteration(exec_with, EXECS),
    );
    println!(
        "exec loop (/bin/true): {:.0} µs/iter without, {:.0} µs/iter with: {:.2}×",
        eb / 1000.0,
        ew / 1000.0,
        ew / eb
    );
    println!(
        "burst of {BURST} distinct opens in {:.2} s ({:.0} opens/s): {marked} reached user space, {} lost ({drops} drops counted by the kernel); {records} records in all",
        burst.as_secs_f64(),
        BURST as f64 / burst.as_secs_f64(),
        BURST as u64 - marked.min(BURST as u64),
    );
    agent_rss_with_containers(100);
}
