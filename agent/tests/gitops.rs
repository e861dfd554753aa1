//! A rehearsal of the GitOps path on one host, with the real registry and
//! kernel: CI pushes, signs and attests two profile versions; "Flux" (a script
//! doing what source-controller does for `gitops-examples/flux/`: resolve the
//! pinned digest, verify the cosign signature with the public key, extract the
//! tar+gzip layer) delivers the older one into the agent's `--profile-dir`; the
//! agent enforces exactly that version, and only after its own verification.
//! Root only; skips, saying why, elsewhere.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

#[allow(dead_code)]
mod common;
use common::{Agent, Env, publish, setup, trusted_key, wait_until, webhook_receiver};

use imprint_oci::{KeyAlgorithm, SigningKey};

/// Runs the Flux-like fetch; the extracted files, or the script's refusal.
fn flux_fetch(
    registry: &str,
    repository: &str,
    digest: &str,
    key: &Path,
    out: &Path,
) -> Result<String, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gitops/flux_fetch.py");
    let output = Command::new("python3")
        .arg(script)
        .args([registry, repository, digest])
        .arg(key)
        .arg(out)
        .output()
        .unwrap();
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

#[test]
fn a_profile_delivered_through_gitops_is_enforced_only_after_the_agents_own_verification() {
    let Some(Env {
        serial: _serial,
        registry,
        podman,
    }) = setup()
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (image, digest) = podman.push_busybox(&registry.addr, "shop/gitops", "gitops");
    let (key, public) = trusted_key(dir.path());

    // v1 allows only the shell; v2, pushed later (so discovery's newest), allows
    // busybox too. Git pins v1.
    let write = |name: &str, execs: &[&str]| {
        let mut p = imprint_schema::Profile::new(digest.parse().unwrap());
        for e in execs {
            p.execs.push(imprint_schema::Exec {
                path: (*e).into(),
                args: None,
            });
        }
        let path = dir.path().join(name);
        std::fs::write(&path, imprint_schema::to_yaml(&p)).unwrap();
        path
    };
    let v1 = publish(
        &registry.addr,
        "shop/gitops",
        &write("v1.yaml", &["/bin/sh"]),
        Some(&key),
    );
    // Discovery orders by the creation annotation (seconds): v2 is a second newer.
    std::thread::sleep(Duration::from_millis(1100));
    let v2 = publish(
        &registry.addr,
        "shop/gitops",
        &write("v2.yaml", &["/bin/sh", "/bin/busybox"]),
        Some(&key),
    );

    // Flux's fetch refuses a stranger's key, and accepts ours.
    let stranger = dir.path().join("stranger.pub");
    std::fs::write(
        &stranger,
        SigningKey::generate(KeyAlgorithm::EcdsaP256)
            .verifying_key()
            .to_pem(),
    )
    .unwrap();
    let delivered = dir.path().join("delivered");
    let refused = flux_fetch(
        &registry.addr,
        "shop/gitops",
        &v1,
        &stranger,
        &dir.path().join("nowhere"),
    )
    .unwrap_err();
    assert!(refused.contains("no signature verifies"), "{refused}");
    let staged = dir.path().join("flux-out");
    let files = flux_fetch(&registry.addr, "shop/gitops", &v1, &public, &staged).unwrap();
    assert_eq!(files.trim(), "profile.yaml");
    let extracted = std::fs::read_to_string(staged.join("profile.yaml")).unwrap();
    assert!(extracted.contains("kind: Profile") && extracted.contains("name: sha256-"));

    // First, Git delivers a profile nobody signed (v1 with an extra exec): the
    // agent does not enforce it, nor v2 in its place.
    std::fs::create_dir_all(&delivered).unwrap();
    std::fs::write(
        delivered.join("profile.yaml"),
        extracted.replace("- path: /bin/sh", "- path: /bin/sh\n- path: /bin/nc"),
    )
    .unwrap();
    let (webhook, received) = webhook_receiver();
    let agent = Agent::spawn(&[
        "--mode".into(),
        "enforce".into(),
        "--key".into(),
        public.clone().into(),
        "--profile-dir".into(),
        delivered.clone().into(),
        "--webhook-url".into(),
        format!("http://{webhook}/").into(),
        "--state-dir".into(),
        dir.path().join("state").into(),
        "--refresh".into(),
        "2".into(),
    ]);
    let run = |script: &str| {
        podman.run(&[
            "run",
            "--rm",
            "--tls-verify=false",
            &image,
            "/bin/sh",
            "-c",
            script,
        ])
    };
    run("true");
    agent.wait_for_log(&format!("{digest}: unsigned"), Duration::from_secs(30));
    assert!(
        agent.log().contains("is not the delivered one"),
        "{}",
        agent.log()
    );
    assert!(
        !agent.log().contains("imprint-agent: enforcing "),
        "{}",
        agent.log()
    );

    // Then the genuine extracted file: enforced, v1 and not the newer v2, and
    // an exec v1 lacks alerts.
    std::fs::write(delivered.join("profile.yaml"), &extracted).unwrap();
    agent.wait_for_log(
        &format!("enforcing {}/shop/gitops@{v1} for {digest}", registry.addr),
        Duration::from_secs(30),
    );
    assert!(
        !agent
            .log()
            .contains(&format!("enforcing {}/shop/gitops@{v2}", registry.addr)),
        "{}",
        agent.log()
    );
    run("/bin/busybox id > /dev/null");
    wait_until("an anomaly against v1", Duration::from_secs(30), || {
        received.lock().unwrap().iter().any(|(_, batch)| {
            batch.as_array().is_some_and(|a| {
                a.iter().any(|x| {
                    x["rule"] == "anomaly.exec"
                        && x["imageDigest"] == digest.as_str()
                        && x["subject"].as_str().is_some_and(|s| s.contains("busybox"))
                })
            })
        })
    });

    // Two deliveries that disagree (v1 and v2 for one digest): neither is chosen.
    std::fs::copy(dir.path().join("v2.yaml"), delivered.join("other.yaml")).unwrap();
    agent.wait_for_log(
        &format!("no longer enforcing a profile for {digest}: delivery-conflict"),
        Duration::from_secs(30),
    );
    std::fs::remove_file(delivered.join("other.yaml")).unwrap();
    let enforcing_v1 = format!("enforcing {}/shop/gitops@{v1} for {digest}", registry.addr);
    wait_until("v1 enforced again", Duration::from_secs(30), || {
        agent.log().matches(&enforcing_v1).count() == 2
    });

    // Git stops delivering it: discovery's choice (the newest, v2) takes over.
    std::fs::remove_file(delivered.join("profile.yaml")).unwrap();
    agent.wait_for_log(
        &format!("enforcing {}/shop/gitops@{v2} for {digest}", registry.addr),
        Duration::from_secs(30),
    );
    drop(agent);
}
