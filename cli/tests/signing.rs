//! The CI → production flow end to end against a real `docker-registry`: key
//! generate, push, sign, attest, verify (with a key and with a policy), pull
//! --verify; and an independent verifier (Python `cryptography`) checking what
//! imprint wrote.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use imprint_test_support::{TestRegistry, push_test_image, skip};

#[allow(dead_code)]
mod common;
use common::{assert_exit, text};

/// Runs imprint with COSIGN_PASSWORD set and no credentials around.
fn imprint(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    imprint_with_password("s3cret-pw", args)
}

fn imprint_with_password(password: &str, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imprint"))
        .args(args.iter().map(|a| a.as_ref()))
        .env("COSIGN_PASSWORD", password)
        .env("HOME", "/nonexistent")
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn write_profile(dir: &Path, digest: &imprint_schema::Digest, hours: i64) -> PathBuf {
    let mut p = imprint_schema::Profile::new(digest.clone());
    p.learning.completeness = imprint_schema::Completeness::Complete;
    let start: jiff::Timestamp = "2026-11-25T00:00:00Z".parse().unwrap();
    p.learning.start = Some(start);
    p.learning.end = Some(start + jiff::SignedDuration::from_hours(hours));
    p.learning.observed_containers = 3;
    p.syscalls = vec!["read".into(), "execve".into()];
    let path = dir.join(format!("profile-{hours}.yaml"));
    std::fs::write(&path, imprint_schema::to_yaml(&p)).unwrap();
    path
}

struct Setup {
    reg: TestRegistry,
    dir: tempfile::TempDir,
    image_digest: imprint_schema::Digest,
}

fn setup(repo: &str) -> Option<Setup> {
    let reg = TestRegistry::start()?;
    let image_digest = push_test_image(&reg.addr, repo);
    Some(Setup {
        reg,
        dir: tempfile::tempdir().unwrap(),
        image_digest,
    })
}

impl Setup {
    fn push(&self, repo: &str, hours: i64) -> String {
        let profile = write_profile(self.dir.path(), &self.image_digest, hours);
        let image = format!("{}/{repo}@{}", self.reg.addr, self.image_digest);
        let out = imprint(&[&"push", &profile, &"--image", &image]);
        assert_exit(&out, 0);
        text(&out.stdout).trim().to_string()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn policy(&self, body: &str) -> PathBuf {
        // One file per policy; the key path in it is relative to the file.
        let n = std::fs::read_dir(self.dir.path()).unwrap().count();
        let path = self.path(&format!("policy-{n}.yaml"));
        std::fs::write(
            &path,
            format!(
                "apiVersion: imprint.dev/v1\nkind: VerificationPolicy\nauthorities:\n  - name: ci\n    key: {{path: cosign.pub}}\n{body}"
            ),
        )
        .unwrap();
        path
    }
}

fn generate_key(s: &Setup, prefix: &str, algorithm: &str) -> (PathBuf, PathBuf) {
    let prefix = s.path(prefix);
    let out = imprint(&[
        &"key",
        &"generate",
        &"--algorithm",
        &algorithm,
        &"--output-key-prefix",
        &prefix,
    ]);
    assert_exit(&out, 0);
    (
        PathBuf::from(format!("{}.key", prefix.display())),
        PathBuf::from(format!("{}.pub", prefix.display())),
    )
}

/// `imprint key public-key`, as `cosign public-key`: the `.pub` generate wrote, to
/// stdout or `--outfile`; a wrong password or a public key given as the key are
/// named; a key cosign generated (empty password) reads.
#[test]
fn public_key_gives_back_the_generated_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("release");
    let out = imprint(&[&"key", &"generate", &"--output-key-prefix", &prefix]);
    assert_exit(&out, 0);
    let key = dir.path().join("release.key");
    let public = std::fs::read_to_string(dir.path().join("release.pub")).unwrap();

    let out = imprint(&[&"key", &"public-key", &"--key", &key]);
    assert_exit(&out, 0);
    assert_eq!(text(&out.stdout), public);
    let file = dir.path().join("out.pub");
    let out = imprint(&[&"key", &"public-key", &"--key", &key, &"--outfile", &file]);
    assert_exit(&out, 0);
    assert!(out.stdout.is_empty());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), public);

    let out = imprint_with_password("wrong", &[&"key", &"public-key", &"--key", &key]);
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("release.key"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let pub_path = dir.path().join("release.pub");
    let out = imprint(&[&"key", &"public-key", &"--key", &pub_path]);
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("release.pub"),
        "{}",
        text(&out.stderr)
    );
    let missing = dir.path().join("missing.key");
    let out = imprint(&[&"key", &"public-key", &"--key", &missing]);
    assert_exit(&out, 2);

    let cosign = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance/cosign-keys/tests/data/keys/cosign_generated_encrypted_empty_private.key");
    if cosign.exists() {
        let out = imprint_with_password("", &[&"key", &"public-key", &"--key", &cosign]);
        assert_exit(&out, 0);
        let pem = text(&out.stdout);
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
        imprint_oci::VerifyingKey::from_pem(pem.as_bytes()).unwrap();
    } else {
        skip(format!(
            "{} absent (../shared is not beside the checkout)",
            cosign.display()
        ));
    }
}

#[test]
fn sign_attest_verify_and_pull_with_verification() {
    let Some(s) = setup("shop/api") else { return };
    let (key, public) = generate_key(&s, "cosign", "ecdsa-p256");
    let mode = std::fs::metadata(&key).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    // A second generate does not overwrite the key.
    let out = imprint(&[
        &"key",
        &"generate",
        &"--output-key-prefix",
        &s.path("cosign"),
    ]);
    assert_exit(&out, 2);
    assert!(text(&out.stderr).contains("--force"));

    let artifact = s.push("shop/api", 30);
    // Signing by tag is refused: what is signed must not move.
    let out = imprint(&[
        &"sign",
        &format!("{}/shop/api:latest", s.reg.addr),
        &"--key",
        &key,
    ]);
    assert_exit(&out, 1);
    assert!(text(&out.stderr).contains("by digest"));

    // Verification before anything is signed fails, naming why.
    let out = imprint(&[&"verify", &artifact, &"--key", &public]);
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("no signature found"),
        "{}",
        text(&out.stderr)
    );

    let out = imprint(&[&"sign", &artifact, &"--key", &key]);
    assert_exit(&out, 0);
    let digest = artifact.rsplit_once('@').unwrap().1.to_string();
    assert_eq!(
        text(&out.stdout).trim(),
        format!("{}/shop/api:{}.sig", s.reg.addr, digest.replace(':', "-"))
    );
    let out = imprint(&[&"verify", &artifact, &"--key", &public]);
    assert_exit(&out, 0);
    assert_eq!(text(&out.stdout).trim(), format!("verified {digest}"));

    // Signed but not attested: a policy that requires an attestation fails.
    let policy = s.policy("");
    let out = imprint(&[&"verify", &artifact, &"--policy", &policy]);
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("no attestation"),
        "{}",
        text(&out.stderr)
    );

    // --print-predicate: the predicate for `cosign attest` (keyless), no key, nothing written.
    let out = imprint(&[
        &"attest",
        &artifact,
        &"--from-profile",
        &"--print-predicate",
        &"--builder-id",
        &"https://ci.example/acme/shop/runs/6",
    ]);
    assert_exit(&out, 0);
    let predicate: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        predicate["builder"]["id"],
        "https://ci.example/acme/shop/runs/6"
    );
    assert!(
        predicate["imageDigest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert!(
        predicate["profileLayerDigest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    let out = imprint(&[&"verify", &artifact, &"--policy", &policy]);
    assert_exit(&out, 1);
    let out = imprint(&[&"attest", &artifact, &"--from-profile"]);
    assert_exit(&out, 2);
    assert!(text(&out.stderr).contains("--key"), "{}", text(&out.stderr));

    // Without a builder id outside CI, --from-profile says what to pass.
    let out = imprint(&[&"attest", &artifact, &"--key", &key, &"--from-profile"]);
    assert_exit(&out, 1);
    assert!(text(&out.stderr).contains("--builder-id"));
    let out = imprint(&[
        &"attest",
        &artifact,
        &"--key",
        &key,
        &"--from-profile",
        &"--builder-id",
        &"https://ci.example/acme/shop/runs/7",
    ]);
    assert_exit(&out, 0);

    let strict = s.policy(
        "attestations:\n  conditions:\n    completeness: complete\n    minLearningDuration: 24h\n    builderIdRegExp: ^https://ci\\.example/acme/\n",
    );
    let out = imprint(&[
        &"verify",
        &artifact,
        &"--policy",
        &strict,
        &"--output",
        &"json",
    ]);
    assert_exit(&out, 0);
    let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdict["verified"], true);
    assert_eq!(verdict["digest"], digest.as_str());
    assert_eq!(verdict["signatures"][0]["authority"], "ci");
    assert_eq!(verdict["attestations"][0]["verified"], true);

    // A stricter policy names the failing condition.
    let stricter = s.policy("attestations:\n  conditions:\n    minLearningDuration: 48h\n");
    let out = imprint(&[&"verify", &artifact, &"--policy", &stricter]);
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("learned for 108000s, the policy requires at least 172800s"),
        "{}",
        text(&out.stderr)
    );
    let builder = s.policy(
        "attestations:\n  conditions:\n    builderIdRegExp: ^https://ci\\.example/other/\n",
    );
    let out = imprint(&[&"verify", &artifact, &"--policy", &builder]);
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("builder id"),
        "{}",
        text(&out.stderr)
    );

    // Another key: nothing verifies.
    let (_, stranger) = generate_key(&s, "stranger", "ed25519");
    let out = imprint(&[&"verify", &artifact, &"--key", &stranger]);
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("no signature verifies"),
        "{}",
        text(&out.stderr)
    );

    // pull --verify writes only what verifies.
    let pulled = s.path("pulled.json");
    let out = imprint(&[
        &"pull",
        &artifact,
        &"-o",
        &pulled,
        &"--verify",
        &"--policy",
        &stricter,
    ]);
    assert_exit(&out, 1);
    assert!(!pulled.exists());
    assert!(text(&out.stderr).contains("not written"));
    let out = imprint(&[
        &"pull",
        &artifact,
        &"-o",
        &pulled,
        &"--verify",
        &"--policy",
        &strict,
    ]);
    assert_exit(&out, 0);
    assert!(pulled.exists());
    let out = imprint(&[&"pull", &artifact, &"-o", &pulled, &"--policy", &strict]);
    assert_exit(&out, 2);

    // An independent verifier accepts the .sig and the .att.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/verify_cosign.py");
    let python = Command::new("python3")
        .arg(&script)
        .arg(&s.reg.addr)
        .arg("shop/api")
        .arg(&digest)
        .arg(&public)
        .output();
    match python {
        Ok(out) if text(&out.stderr).contains("No module named 'cryptography'") => {
            skip("Python cryptography absent (bash .ci/setup installs it)")
        }
        Ok(out) => {
            assert_exit(&out, 0);
            assert!(text(&out.stdout).contains("signature verified"));
            assert!(
                text(&out.stdout)
                    .contains("attestation verified: https://imprint.dev/attestation/profile/v1")
            );
        }
        Err(e) => skip(format!("python3 absent ({e})")),
    }
}

#[test]
fn bundles_verify_without_cosign_tags() {
    let Some(s) = setup("shop/worker") else {
        return;
    };
    let (key, public) = generate_key(&s, "cosign", "ed25519");
    assert_eq!(public, s.path("cosign.pub"));
    let artifact = s.push("shop/worker", 26);
    for args in [
        vec!["sign", "--bundle"],
        vec![
            "attest",
            "--bundle",
            "--from-profile",
            "--builder-id",
            "https://ci.example/acme/1",
        ],
    ] {
        let mut full: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&args[0], &artifact, &"--key", &key];
        for a in &args[1..] {
            full.push(a);
        }
        let out = imprint(&full);
        assert_exit(&out, 0);
        assert!(
            text(&out.stdout).contains("@sha256:"),
            "{}",
            text(&out.stdout)
        );
    }
    let policy = s.policy(
        "attestations:\n  conditions:\n    completeness: complete\n    minLearningDuration: 24h\n",
    );
    let out = imprint(&[
        &"verify",
        &artifact,
        &"--policy",
        &policy,
        &"--output",
        &"json",
    ]);
    assert_exit(&out, 0);
    let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let source = verdict["signatures"][0]["source"].as_str().unwrap();
    assert!(source.starts_with("referrer sha256:"), "{source}");
    // A predicate from a file: imprint's type is checked for shape; others pass as given.
    let bad = s.path("bad-predicate.json");
    std::fs::write(&bad, r#"{"imageDigest": 5}"#).unwrap();
    let out = imprint(&[&"attest", &artifact, &"--key", &key, &"--predicate", &bad]);
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("not imprint's learning predicate"),
        "{}",
        text(&out.stderr)
    );
    let slsa = s.path("slsa.json");
    std::fs::write(&slsa, r#"{"buildDefinition": {"buildType": "x"}}"#).unwrap();
    let out = imprint(&[
        &"attest",
        &artifact,
        &"--key",
        &key,
        &"--predicate",
        &slsa,
        &"--type",
        &"https://slsa.dev/provenance/v1",
        &"--bundle",
    ]);
    assert_exit(&out, 0);
    // The policy wants imprint's predicate: the SLSA one is listed, and refused by type.
    let out = imprint(&[
        &"verify",
        &artifact,
        &"--policy",
        &policy,
        &"--output",
        &"json",
    ]);
    assert_exit(&out, 0);
    let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let refused: Vec<&str> = verdict["attestations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["error"].as_str())
        .collect();
    assert!(
        refused
            .iter()
            .any(|e| e.contains("predicateType is \"https://slsa.dev/provenance/v1\"")),
        "{refused:?}"
    );

    // An independent verifier (sigstore-js) accepts both bundles.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/sigstore-js");
    if !dir.join("node_modules/@sigstore/verify").is_dir() {
        skip(format!(
            "sigstore-js not installed in {} (bash .ci/setup runs npm ci there)",
            dir.display()
        ));
    } else {
        let digest = artifact.rsplit_once('@').unwrap().1;
        let out = Command::new("node")
            .arg(dir.join("verify-bundles.js"))
            .args([s.reg.addr.as_str(), "shop/worker", digest])
            .arg(&public)
            .output()
            .expect("node runs");
        assert_exit(&out, 0);
        let said = text(&out.stdout);
        assert!(
            said.contains("(https://sigstore.dev/cosign/sign/v1)"),
            "{said}"
        );
        assert!(
            said.contains("(https://imprint.dev/attestation/profile/v1)"),
            "{said}"
        );
    }
    // The bundles are referrers, yet discover still lists only the profile.
    let image = format!("{}/shop/worker@{}", s.reg.addr, s.image_digest);
    let out = imprint(&[&"discover", &image, &"--output", &"json"]);
    assert_exit(&out, 0);
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert!(
        !text(&out.stderr).contains("ignored referrer"),
        "{}",
        text(&out.stderr)
    );
}

/// `imprint attest` gives each profile the next version its key can verify for
/// the image digest (1 for the first), or `--version N`; `verify` reports it.
#[test]
fn attest_gives_each_new_profile_the_next_version_the_key_verifies() {
    let Some(s) = setup("shop/versions") else {
        return;
    };
    let (key, public) = generate_key(&s, "cosign", "ecdsa-p256");
    let attest = |artifact: &str, extra: &[&str]| {
        let out = imprint(&[&"sign", &artifact, &"--key", &key]);
        assert_exit(&out, 0);
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> =
            vec![&"attest", &artifact, &"--key", &key, &"--from-profile"];
        args.extend([
            &"--builder-id" as &dyn AsRef<std::ffi::OsStr>,
            &"https://ci.example/v",
        ]);
        for e in extra {
            args.push(e);
        }
        assert_exit(&imprint(&args), 0);
        let out = imprint(&[
            &"verify",
            &artifact,
            &"--key",
            &public,
            &"--output",
            &"json",
        ]);
        assert_exit(&out, 0);
        let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        verdict["version"].as_u64().unwrap()
    };
    let first = s.push("shop/versions", 30);
    assert_eq!(attest(&first, &[]), 1);
    let second = s.push("shop/versions", 31);
    assert_eq!(attest(&second, &[]), 2);
    // An artifact signed by a stranger's key does not count toward the next one.
    let (stranger_key, _) = generate_key(&s, "stranger", "ed25519");
    let third = s.push("shop/versions", 32);
    let out = imprint(&[&"sign", &third, &"--key", &stranger_key]);
    assert_exit(&out, 0);
    let out = imprint(&[
        &"attest",
        &third,
        &"--key",
        &stranger_key,
        &"--from-profile",
        &"--builder-id",
        &"https://ci.example/v",
        &"--version",
        &"99",
    ]);
    assert_exit(&out, 0);
    let fourth = s.push("shop/versions", 33);
    assert_eq!(attest(&fourth, &[]), 3);
    // The signer may choose.
    let fifth = s.push("shop/versions", 34);
    assert_eq!(attest(&fifth, &["--version", "7"]), 7);
}
