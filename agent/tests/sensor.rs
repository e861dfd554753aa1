//! The sensor on its own, on the real kernel (root only; skips, saying why,
//! elsewhere): syscalls decoded from the raw `sys_enter` hook are the x86_64
//! ones, and a 32-bit syscall (`int 0x80`, numbered as on i386) is not read by
//! its x86_64 number.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[allow(dead_code)]
mod common;

use imprint_agent::sensor::{Sensor, read_ring};
use imprint_agent_ebpf::{Header, Record};

#[test]
fn compat_syscalls_are_not_decoded_by_their_x86_64_numbers() {
    if std::env::consts::ARCH != "x86_64" {
        common::support::skip_other_arch("32-bit x86 syscalls (int 0x80) exist only on x86_64");
        return;
    }
    if let Some(why) = common::skip_reason() {
        common::support::skip(why);
        return;
    }
    let _serial = common::SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let attacks = common::build_attacks(dir.path());

    let mut sensor = Sensor::start().unwrap();
    let ring = sensor.take_ring().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let records: Arc<Mutex<Vec<(Header, Record)>>> = Arc::default();
    let (s, r) = (stop.clone(), records.clone());
    let reader = std::thread::spawn(move || {
        read_ring(ring, s, Duration::from_millis(20), |h, record| {
            r.lock().unwrap().push((h, record));
        })
    });

    // i386's ioperm (101) and fadvise64_64 (272): x86_64's ptrace and unshare; and
    // i386's 257 with openat's registers pointing at a file.
    let target = dir.path().join("target.txt");
    std::fs::write(&target, "x").unwrap();
    let compat = Command::new(&attacks)
        .arg("compat")
        .arg(&target)
        .spawn()
        .unwrap();
    let compat_pid = compat.id();
    assert!(compat.wait_with_output().unwrap().status.success());
    // A real open of that file afterwards is reported: the 32-bit call seeded no dedup.
    let reader_of = Command::new("/bin/busybox")
        .arg("cat")
        .arg(&target)
        .output()
        .unwrap();
    assert!(reader_of.status.success());
    // The control: a real ptrace(2), which is reported.
    let control = Command::new(&attacks).arg("ptrace").spawn().unwrap();
    let control_pid = control.id();
    assert!(control.wait_with_output().unwrap().status.success());

    let target_path = target.display().to_string();
    let opened_by = |records: &[(Header, Record)]| -> Vec<u32> {
        records
            .iter()
            .filter(|(_, r)| matches!(r, Record::Open { path, .. } if *path == target_path))
            .map(|(h, _)| h.pid)
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let records = records.lock().unwrap();
        let seen = records
            .iter()
            .any(|(h, r)| h.pid == control_pid && matches!(r, Record::Ptrace { .. }))
            && opened_by(&records).iter().any(|p| *p != compat_pid);
        drop(records);
        if seen {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the control ptrace, or the real open of {target_path}, was not seen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    let records = records.lock().unwrap();
    let misread: Vec<&Record> = records
        .iter()
        .filter(|(h, r)| {
            h.pid == compat_pid && matches!(r, Record::Ptrace { .. } | Record::Unshare { .. })
        })
        .map(|(_, r)| r)
        .collect();
    assert!(
        misread.is_empty(),
        "32-bit syscalls read as x86_64 ones: {misread:?}"
    );
    assert!(
        !opened_by(&records).contains(&compat_pid),
        "a 32-bit call was read as an open"
    );
    // The compat process itself was seen (its exec), so its absence above means something.
    assert!(
        records
            .iter()
            .any(|(h, r)| h.pid == compat_pid && matches!(r, Record::Exec { .. })),
        "the compat process's exec was not seen"
    );
}

/// The sensor loaded, with its records collected until `finish`.
struct Recording {
    sensor: Sensor,
    stop: Arc<AtomicBool>,
    records: Arc<Mutex<Vec<(Header, Record)>>>,
    reader: std::thread::JoinHandle<imprint_agent::sensor::ReadStats>,
}

impl Recording {
    fn start() -> Recording {
        let mut sensor = Sensor::start().unwrap();
        let ring = sensor.take_ring().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let records: Arc<Mutex<Vec<(Header, Record)>>> = Arc::default();
        let (s, r) = (stop.clone(), records.clone());
        let reader = std::thread::spawn(move || {
            read_ring(ring, s, Duration::from_millis(20), |h, record| {
                r.lock().unwrap().push((h, record));
            })
        });
        Recording {
            sensor,
            stop,
            records,
            reader,
        }
    }

    /// Waits until `want` holds of the records (10 s at most).
    fn wait_for(&self, what: &str, want: impl Fn(&[(Header, Record)]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !want(&self.records.lock().unwrap()) {
            assert!(Instant::now() < deadline, "not seen: {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn finish(self) -> Vec<(Header, Record)> {
        self.stop.store(true, Ordering::Relaxed);
        self.reader.join().unwrap();
        std::mem::take(&mut *self.records.lock().unwrap())
    }
}

fn opens_of(records: &[(Header, Record)], wanted: &str) -> Vec<(String, bool)> {
    records
        .iter()
        .filter_map(|(h, r)| match r {
            Record::Open { path, relative, .. } if path == wanted => {
                Some((h.comm.clone(), *relative))
            }
            _ => None,
        })
        .collect()
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(out.status.success(), "{program} {args:?}: {out:?}");
}

/// Relative names are reported as the files they name: against the working
/// directory (`cd / && cat etc/shadow`), a directory fd, and a server that
/// chdir'd and then writes by a relative name.
#[test]
fn relative_opens_are_reported_against_their_working_directory_or_directory_fd() {
    if let Some(why) = common::skip_reason() {
        common::support::skip(why);
        return;
    }
    let _serial = common::SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("srv/data");
    std::fs::create_dir_all(&work).unwrap();
    let recording = Recording::start();

    run(
        "/bin/sh",
        &["-c", "cd / && exec /bin/cat etc/shadow > /dev/null"],
    );
    let script = format!(
        "import os\nos.chdir({work:?})\nfd = os.open('state.json', os.O_WRONLY | os.O_CREAT, 0o600)\nos.close(fd)\nd = os.open('/etc', os.O_RDONLY)\nos.close(os.open('hostname', os.O_RDONLY, dir_fd=d))\n",
        work = work.display().to_string()
    );
    run("python3", &["-c", &script]);
    let written = work.join("state.json").display().to_string();
    recording.wait_for("the relative opens", |r| {
        !opens_of(r, "/etc/shadow").is_empty()
            && !opens_of(r, &written).is_empty()
            && !opens_of(r, "/etc/hostname").is_empty()
    });
    let records = recording.finish();
    assert!(
        opens_of(&records, "/etc/shadow").contains(&("cat".into(), true)),
        "{:?}",
        opens_of(&records, "/etc/shadow")
    );
    assert!(opens_of(&records, &written).iter().any(|(_, rel)| *rel));
    assert!(
        opens_of(&records, "/etc/hostname")
            .iter()
            .any(|(c, rel)| c.starts_with("python") && *rel)
    );
    // No relative name reaches user space unresolved.
    let unresolved: Vec<&String> = records
        .iter()
        .filter_map(|(_, r)| match r {
            Record::Open { path, .. } if !path.starts_with('/') => Some(path),
            _ => None,
        })
        .collect();
    assert!(unresolved.is_empty(), "relative paths left: {unresolved:?}");
}

/// The dedup key is keyed and per program: the kernel's hash is SipHash-2-4
/// under this load's random key (so nobody outside can craft a collision), and
/// one program's open does not hide the same open by another.
#[test]
fn dedup_is_keyed_and_does_not_let_one_program_hide_another() {
    if let Some(why) = common::skip_reason() {
        common::support::skip(why);
        return;
    }
    let _serial = common::SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("secret.txt");
    std::fs::write(&target, "x\n").unwrap();
    let target = target.display().to_string();
    let recording = Recording::start();
    let other_key = Sensor::start().unwrap().dedup_key();
    assert_ne!(
        recording.sensor.dedup_key(),
        other_key,
        "the key is random per load"
    );

    run("/bin/cat", &[&target]);
    run("/usr/bin/head", &["-n1", &target]);
    recording.wait_for("both programs' opens", |r| {
        let comms: Vec<String> = opens_of(r, &target).into_iter().map(|(c, _)| c).collect();
        comms.iter().any(|c| c == "cat") && comms.iter().any(|c| c == "head")
    });
    #[allow(deprecated)] // std's SipHasher is SipHash-2-4: the reference here.
    let expected = {
        use std::hash::Hasher;
        let [k0, k1] = recording.sensor.dedup_key();
        let mut h = std::hash::SipHasher::new_with_keys(k0, k1);
        h.write(&[0u8; 16]);
        h.write(target.as_bytes());
        h.finish()
    };
    let hashes = recording.sensor.dedup_hashes();
    assert!(
        hashes.contains(&(4, expected)),
        "no dedup entry of {target} hashed with SipHash-2-4 under the load's key"
    );
    recording.finish();
}

/// Records lost to a full ring buffer are counted by cgroup, so the agent can
/// name the container they came from: nobody reads the ring while a process
/// makes 40,000 distinct (failing) opens, far more than 8 MiB of records.
#[test]
fn ring_buffer_drops_are_counted_by_cgroup() {
    if let Some(why) = common::skip_reason() {
        common::support::skip(why);
        return;
    }
    let _serial = common::SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut sensor = Sensor::start().unwrap();
    let script = "import os\nfor i in range(40000):\n    try:\n        os.close(os.open('/nonexistent/imprint-drop-%d' % i, os.O_RDONLY))\n    except OSError:\n        pass\n";
    let child = Command::new("python3")
        .args(["-c", script])
        .output()
        .unwrap();
    assert!(child.status.success(), "{child:?}");
    let by_cgroup = sensor.take_drops_by_cgroup();
    let counted: u64 = by_cgroup.iter().map(|(_, n)| n).sum();
    assert!(counted >= 10_000, "drops by cgroup: {by_cgroup:?}");
    assert!(sensor.drops() >= counted, "the per-type count agrees");
    // The cgroup of this test (and of python, its child) is among them.
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let path = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("a cgroup v2 line");
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root = imprint_agent::attribution::cgroup2_mount(&mountinfo).unwrap();
    let inode = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(root.join(path.trim_start_matches('/')))
            .unwrap()
            .ino()
    };
    assert!(
        by_cgroup.iter().any(|(c, n)| *c == inode && *n >= 10_000),
        "cgroup {inode} ({path}) not among {by_cgroup:?}"
    );
    // Taken: counted once (what this test did since, into the still-full ring, is new).
    let again: u64 = (sensor.take_drops_by_cgroup().iter())
        .filter(|(c, _)| *c == inode)
        .map(|(_, n)| n)
        .sum();
    assert!(again < 1_000, "{again} drops counted again");
}
