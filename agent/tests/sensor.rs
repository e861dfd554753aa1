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
