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
