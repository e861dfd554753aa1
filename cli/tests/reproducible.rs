//! `imprint push` is reproducible: the artifact's created time comes from the
//! profile (the end of learning), `--created`, `SOURCE_DATE_EPOCH` or the Unix
//! epoch, never from the clock, so the same profile gives the same digest. Against
//! a real `docker-registry` (skipped, with a message, where it is not installed).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use imprint_test_support::{TestRegistry, push_test_image};

#[allow(dead_code)]
mod common;
use common::{assert_exit, text};

/// Runs `imprint` with `SOURCE_DATE_EPOCH` set to `epoch` (unset for `None`).
fn imprint_at(epoch: Option<&str>, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_imprint"));
    command
        .args(args.iter().map(|a| a.as_ref()))
        .stdin(Stdio::null());
    match epoch {
        Some(value) => command.env("SOURCE_DATE_EPOCH", value),
        None => command.env_remove("SOURCE_DATE_EPOCH"),
    };
    command.output().expect("run imprint")
}

/// An imported profile: no learning window.
fn write_imported_profile(dir: &Path, digest: &imprint_schema::Digest) -> PathBuf {
    let mut p = imprint_schema::Profile::new(digest.clone());
    p.syscalls = vec!["read".into(), "write".into()];
    assert!(p.learning.start.is_none() && p.learning.end.is_none());
    let path = dir.join("imported.yaml");
    std::fs::write(&path, imprint_schema::to_yaml(&p)).unwrap();
    path
}

/// Pushes and returns the artifact digest.
fn push(epoch: Option<&str>, profile: &Path, image: &str, extra: &[&str]) -> String {
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> =
        vec![&"push", &profile, &"--image", &image, &"--output", &"json"];
    for e in extra {
        args.push(e);
    }
    let out = imprint_at(epoch, &args);
    assert_exit(&out, 0);
    let pushed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    pushed["digest"].as_str().unwrap().to_string()
}

/// The created annotation of each artifact of `image_digest`, by artifact digest.
fn created_times(addr: &str, repo: &str, image_digest: &str) -> Vec<(String, String)> {
    let out = imprint_at(
        None,
        &[
            &"discover",
            &format!("{addr}/{repo}@{image_digest}"),
            &"--output",
            &"json",
        ],
    );
    assert_exit(&out, 0);
    let found: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    found
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["digest"].as_str().unwrap().to_string(),
                a["created"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect()
}

/// Sleeps into the next wall-clock second: the created annotation has a
/// resolution of one second, so a time taken from the clock would now differ.
fn wait_for_the_clock_to_move() {
    let before = jiff::Timestamp::now().as_second();
    while jiff::Timestamp::now().as_second() == before {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn an_imported_profile_pushed_twice_has_one_digest_and_no_clock_time() {
    let Some(reg) = TestRegistry::start() else {
        return;
    };
    let repo = "repro/web";
    let image_digest = push_test_image(&reg.addr, repo);
    let dir = tempfile::tempdir().unwrap();
    let profile = write_imported_profile(dir.path(), &image_digest);
    let image = format!("{}/{repo}:1.0", reg.addr);

    let first = push(None, &profile, &image, &[]);
    wait_for_the_clock_to_move();
    let second = push(None, &profile, &image, &[]);
    assert_eq!(first, second, "the clock changed the artifact");
    let times = created_times(&reg.addr, repo, image_digest.as_str());
    assert_eq!(
        times,
        vec![(first.clone(), "1970-01-01T00:00:00Z".to_string())]
    );

    // SOURCE_DATE_EPOCH is honoured, and reproducible too.
    let from_epoch = push(Some("1764000000"), &profile, &image, &[]);
    wait_for_the_clock_to_move();
    assert_eq!(push(Some("1764000000"), &profile, &image, &[]), from_epoch);
    assert_ne!(from_epoch, first);

    // --created is that time, and wins over SOURCE_DATE_EPOCH.
    let flagged = push(
        Some("1764000000"),
        &profile,
        &image,
        &["--created", "2026-01-02T03:04:05Z"],
    );
    let times = created_times(&reg.addr, repo, image_digest.as_str());
    let created_of = |digest: &str| {
        times
            .iter()
            .find(|(d, _)| d == digest)
            .map(|(_, c)| c.clone())
            .unwrap_or_else(|| panic!("{digest} not discovered in {times:?}"))
    };
    assert_eq!(created_of(&from_epoch), "2025-11-24T16:00:00Z");
    assert_eq!(created_of(&flagged), "2026-01-02T03:04:05Z");
    assert_eq!(created_of(&first), "1970-01-01T00:00:00Z");
    assert_eq!(times.len(), 3, "{times:?}");
}

#[test]
fn a_malformed_source_date_epoch_or_created_is_refused_by_name_before_any_push() {
    let Some(reg) = TestRegistry::start() else {
        return;
    };
    let repo = "repro/bad";
    let image_digest = push_test_image(&reg.addr, repo);
    let dir = tempfile::tempdir().unwrap();
    let profile = write_imported_profile(dir.path(), &image_digest);
    let image = format!("{}/{repo}:1.0", reg.addr);
    for bad in ["yesterday", "1.5", "-1", ""] {
        let out = imprint_at(Some(bad), &[&"push", &profile, &"--image", &image]);
        assert_exit(&out, 1);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!("SOURCE_DATE_EPOCH={bad:?} is not a time")),
            "{stderr}"
        );
    }
    let out = imprint_at(
        None,
        &[&"push", &profile, &"--image", &image, &"--created", &"soon"],
    );
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("--created"),
        "{}",
        text(&out.stderr)
    );
    assert!(created_times(&reg.addr, repo, image_digest.as_str()).is_empty());
}

#[test]
fn a_learned_profile_takes_its_learning_end_whatever_the_flag_or_variable() {
    let Some(reg) = TestRegistry::start() else {
        return;
    };
    let repo = "repro/learned";
    let image_digest = push_test_image(&reg.addr, repo);
    let dir = tempfile::tempdir().unwrap();
    let mut p = imprint_schema::Profile::new(image_digest.clone());
    p.learning.start = Some("2026-11-25T12:00:00Z".parse().unwrap());
    p.learning.end = Some("2026-11-26T12:00:00Z".parse().unwrap());
    p.syscalls = vec!["read".into()];
    let profile = dir.path().join("learned.yaml");
    std::fs::write(&profile, imprint_schema::to_yaml(&p)).unwrap();
    let image = format!("{}/{repo}:1.0", reg.addr);

    let plain = push(None, &profile, &image, &[]);
    let out = imprint_at(
        Some("1764000000"),
        &[
            &"push",
            &profile,
            &"--image",
            &image,
            &"--created",
            &"2026-01-02T03:04:05Z",
        ],
    );
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains("--created is not used"),
        "{}",
        text(&out.stderr)
    );
    let times = created_times(&reg.addr, repo, image_digest.as_str());
    assert_eq!(times, vec![(plain, "2026-11-26T12:00:00Z".to_string())]);
}
