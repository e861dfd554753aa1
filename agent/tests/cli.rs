//! The agent's command line and configuration, checked before anything starts
//! (no root needed).

use std::process::Command;

fn agent(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_imprint-agent"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn configuration_mistakes_are_named_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.yaml");
    std::fs::write(
        &config,
        "apiVersion: imprint.dev/v1\nkind: AgentConfig\nmode: enforce\noutputs: {alertmanager: {url: am:9093}}\n",
    )
    .unwrap();
    let out = agent(&["--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("agent.yaml: outputs.alertmanager.url"),
        "{err}"
    );

    // No mode at all.
    let out = agent(&["--state-dir", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no mode"));

    // Enforce without any trust.
    let out = agent(&[
        "--mode",
        "enforce",
        "--state-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--policy FILE or at least one --key"));

    // A key file that is not a key.
    let bad = dir.path().join("cosign.pub");
    std::fs::write(&bad, "not a key").unwrap();
    let out = agent(&["--mode", "enforce", "--key", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cosign.pub"));

    // Learn without a place to write.
    let out = agent(&[
        "--mode",
        "learn",
        "--state-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--out"));
}

#[test]
fn enforce_settings_are_checked_before_sensing_starts() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("cosign.pub");
    std::fs::write(
        &key,
        imprint_oci::SigningKey::generate(imprint_oci::KeyAlgorithm::EcdsaP256)
            .verifying_key()
            .to_pem(),
    )
    .unwrap();
    let state = dir.path().join("state");
    let base = [
        "--mode",
        "enforce",
        "--key",
        key.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ];
    let run = |extra: &[&str], env: &[(&str, &str)]| {
        let out = Command::new(env!("CARGO_BIN_EXE_imprint-agent"))
            .args(base)
            .args(extra)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let missing = dir.path().join("missing");
    let err = run(&["--profile-dir", missing.to_str().unwrap()], &[]);
    assert!(
        err.contains("--profile-dir") && err.contains("not a directory"),
        "{err}"
    );
    let err = run(
        &["--kubernetes", "--node", "node-1"],
        &[("KUBECONFIG", missing.to_str().unwrap())],
    );
    assert!(
        err.contains("--kubernetes") && err.contains("KUBECONFIG"),
        "{err}"
    );
    let err = run(
        &[
            "--syslog-url",
            "tls://syslog.example:6514",
            "--syslog-ca",
            missing.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        err.contains("--syslog-url") && err.contains("missing"),
        "{err}"
    );
    let err = run(&["--syslog-url", "syslog.example:514"], &[]);
    assert!(err.contains("udp://HOST:PORT"), "{err}");
    let err = run(&["--exit-when-learned"], &[]);
    assert!(
        err.contains("--exit-when-learned is for --mode learn"),
        "{err}"
    );
    // The learn mode has no profile directory.
    let out = agent(&[
        "--mode",
        "learn",
        "--out",
        dir.path().to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "--profile-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--profile-dir is for --mode enforce"));
}

/// The flag reference in `docs/agent.md` is `imprint-agent --help` as it prints
/// now (100 columns). Regenerate: `IMPRINT_BLESS=1 cargo test -p imprint-agent --test cli help`.
#[test]
fn flag_reference_in_docs_matches_help() {
    const START: &str = "<!-- imprint-agent --help: start -->\n```text\n";
    const END: &str = "```\n<!-- imprint-agent --help: end -->";
    let out = Command::new(env!("CARGO_BIN_EXE_imprint-agent"))
        .arg("--help")
        .env("COLUMNS", "100")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8(out.stdout).unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/agent.md");
    let doc = std::fs::read_to_string(&path).expect("docs/agent.md");
    let (Some(start), Some(end)) = (doc.find(START), doc.find(END)) else {
        panic!("docs/agent.md has no fenced block between {START:?} and {END:?}");
    };
    let published = &doc[start + START.len()..end];
    if std::env::var_os("IMPRINT_BLESS").is_some() {
        let blessed = format!("{}{help}{}", &doc[..start + START.len()], &doc[end..]);
        std::fs::write(&path, blessed).unwrap();
    } else {
        assert!(
            published == help,
            "docs/agent.md's flag reference is out of date with imprint-agent --help; \
             run IMPRINT_BLESS=1 cargo test -p imprint-agent --test cli help"
        );
    }
}
