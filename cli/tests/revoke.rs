//! `imprint revoke` end to end against a real `docker-registry`: a revocation by a
//! trusted revoker fails `verify` and `pull --verify`, one by anyone else is
//! reported and changes nothing, `revocations.authorities` decides who revokes, a
//! revocation made for another image is refused, and `discover` lists them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use imprint_test_support::{TestRegistry, push_test_image};

#[allow(dead_code)]
mod common;
use common::{assert_exit, text};

const REVOCATION_TYPE: &str = "https://imprint.dev/attestation/revocation/v1";

/// Runs imprint with COSIGN_PASSWORD set and no credentials around.
fn imprint(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imprint"))
        .args(args.iter().map(|a| a.as_ref()))
        .env("COSIGN_PASSWORD", "s3cret-pw")
        .env("HOME", "/nonexistent")
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// A registry with an image, a directory, and the `ci` key pair.
struct Setup {
    reg: TestRegistry,
    dir: tempfile::TempDir,
    image_digest: imprint_schema::Digest,
    ci_key: PathBuf,
}

fn setup() -> Option<Setup> {
    let reg = TestRegistry::start()?;
    let image_digest = push_test_image(&reg.addr, "shop/web");
    let dir = tempfile::tempdir().unwrap();
    let ci_key = generate_key(dir.path(), "ci");
    Some(Setup {
        reg,
        dir,
        image_digest,
        ci_key,
    })
}

/// Writes `NAME.key` and `NAME.pub` in `dir`; returns the private key.
fn generate_key(dir: &Path, name: &str) -> PathBuf {
    let prefix = dir.join(name);
    assert_exit(
        &imprint(&[&"key", &"generate", &"--output-key-prefix", &prefix]),
        0,
    );
    dir.join(format!("{name}.key"))
}

impl Setup {
    fn image(&self) -> String {
        format!("{}/shop/web@{}", self.reg.addr, self.image_digest)
    }

    /// Pushes a profile learned for `hours`, signed and attested by `ci`.
    fn push_signed(&self, hours: i64) -> String {
        let mut p = imprint_schema::Profile::new(self.image_digest.clone());
        p.learning.completeness = imprint_schema::Completeness::Complete;
        let start: jiff::Timestamp = "2026-11-25T00:00:00Z".parse().unwrap();
        p.learning.start = Some(start);
        p.learning.end = Some(start + jiff::SignedDuration::from_hours(hours));
        p.syscalls = vec!["read".into(), "execve".into()];
        let path = self.dir.path().join(format!("profile-{hours}.yaml"));
        std::fs::write(&path, imprint_schema::to_yaml(&p)).unwrap();
        let out = imprint(&[&"push", &path, &"--image", &self.image()]);
        assert_exit(&out, 0);
        let artifact = text(&out.stdout).trim().to_string();
        assert_exit(&imprint(&[&"sign", &artifact, &"--key", &self.ci_key]), 0);
        let out = imprint(&[
            &"attest",
            &artifact,
            &"--key",
            &self.ci_key,
            &"--from-profile",
            &"--builder-id",
            &"https://ci.example/run/1",
        ]);
        assert_exit(&out, 0);
        artifact
    }

    /// A policy trusting `ci` (and `security` when its key exists), then `body`.
    fn policy(&self, name: &str, body: &str) -> PathBuf {
        let mut authorities = "  - name: ci\n    key: {path: ci.pub}\n".to_string();
        if self.dir.path().join("security.pub").exists() {
            authorities.push_str("  - name: security\n    key: {path: security.pub}\n");
        }
        let path = self.dir.path().join(name);
        std::fs::write(
            &path,
            format!(
                "apiVersion: imprint.dev/v1\nkind: VerificationPolicy\nauthorities:\n{authorities}{body}"
            ),
        )
        .unwrap();
        path
    }

    fn verify(&self, artifact: &str, policy: &Path) -> Output {
        imprint(&[&"verify", &artifact, &"--policy", &policy])
    }

    fn verify_json(&self, artifact: &str, policy: &Path, code: i32) -> serde_json::Value {
        let out = imprint(&[
            &"verify",
            &artifact,
            &"--policy",
            &policy,
            &"--output",
            &"json",
        ]);
        assert_exit(&out, code);
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn digest_of(artifact: &str) -> &str {
    artifact.rsplit_once('@').unwrap().1
}

/// The attack the feature exists for: a profile signed with a key since found
/// compromised keeps verifying until revoked. After `revoke`, `verify` and
/// `pull --verify` fail naming the revoker; the image's other profile still
/// verifies; `discover` lists the revocation as an unverified claim.
#[test]
fn a_revocation_by_a_trusted_key_fails_verify_and_pull() {
    let Some(s) = setup() else { return };
    let revoked = s.push_signed(30);
    let kept = s.push_signed(40);
    let policy = s.policy("policy.yaml", "");
    assert_exit(&s.verify(&revoked, &policy), 0);

    let out = imprint(&[
        &"revoke",
        &revoked,
        &"--key",
        &s.ci_key,
        &"--reason",
        &"ci key leaked",
    ]);
    assert_exit(&out, 0);
    // Stored with the image's attestations, in the artifact's repository.
    let tag = s.image_digest.as_str().replace(':', "-");
    assert_eq!(
        text(&out.stdout).trim(),
        format!("{}/shop/web:{tag}.att", s.reg.addr)
    );

    let out = s.verify(&revoked, &policy);
    assert_exit(&out, 1);
    let said = text(&out.stderr);
    assert!(said.contains("revoked by ci"), "{said}");
    assert!(said.contains("ci key leaked"), "{said}");
    let verdict = s.verify_json(&revoked, &policy, 1);
    assert_eq!(verdict["verified"], false, "{verdict}");
    assert_eq!(verdict["signatures"][0]["verified"], true, "{verdict}");
    let by = &verdict["revocations"]["verified"][0];
    assert_eq!(by["artifact"], digest_of(&revoked), "{verdict}");
    assert_eq!(by["authority"], "ci", "{verdict}");
    // --key trusts the key to revoke too.
    let public = s.dir.path().join("ci.pub");
    let out = imprint(&[&"verify", &revoked, &"--key", &public]);
    assert_exit(&out, 1);

    // The revocation names one artifact: the image's other profile still verifies.
    let verdict = s.verify_json(&kept, &policy, 0);
    assert_eq!(verdict["verified"], true, "{verdict}");
    assert_eq!(
        verdict["revocations"]["verified"].as_array().unwrap().len(),
        1
    );

    let pulled = s.dir.path().join("pulled.json");
    let out = imprint(&[
        &"pull",
        &revoked,
        &"-o",
        &pulled,
        &"--verify",
        &"--policy",
        &policy,
    ]);
    assert_exit(&out, 1);
    assert!(text(&out.stderr).contains("revoked by ci"));
    assert!(!pulled.exists());

    let out = imprint(&[&"discover", &s.image()]);
    assert_exit(&out, 0);
    let listed = text(&out.stdout);
    let claim = listed
        .lines()
        .find(|l| l.starts_with("revocation of"))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(claim.contains(digest_of(&revoked)), "{claim}");
    assert!(claim.contains("unverified: use imprint verify"), "{claim}");
    let out = imprint(&[&"discover", &s.image(), &"--output", &"json"]);
    assert_exit(&out, 0);
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entries = listed.as_array().unwrap();
    assert_eq!(entries.len(), 2, "{listed}");
    for entry in entries {
        let claimed = entry["revocationClaims"].as_array().map_or(0, Vec::len);
        let expected = usize::from(entry["digest"] == digest_of(&revoked));
        assert_eq!(claimed, expected, "{listed}");
    }
}

/// Anyone who can write the repository can write a revocation: one signed by a
/// key the policy does not trust (as a `.att` layer or a bundle) is reported and
/// revokes nothing; the same as a bundle by the trusted key revokes.
#[test]
fn a_revocation_by_an_untrusted_key_is_reported_and_revokes_nothing() {
    let Some(s) = setup() else { return };
    let artifact = s.push_signed(30);
    let policy = s.policy("policy.yaml", "");
    let stranger = generate_key(s.dir.path(), "stranger");
    for bundle in [false, true] {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> =
            vec![&"revoke", &artifact, &"--key", &stranger];
        if bundle {
            args.push(&"--bundle");
        }
        assert_exit(&imprint(&args), 0);
    }
    let out = s.verify(&artifact, &policy);
    assert_exit(&out, 0);
    let said = text(&out.stderr);
    assert!(said.contains("not accepted"), "{said}");
    let verdict = s.verify_json(&artifact, &policy, 0);
    let rejected = verdict["revocations"]["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2, "{verdict}");
    assert!(
        rejected[1]["source"]
            .as_str()
            .unwrap()
            .starts_with("referrer "),
        "{verdict}"
    );
    for r in rejected {
        assert!(
            r["error"].as_str().unwrap().contains("no trusted key"),
            "{verdict}"
        );
    }

    let out = imprint(&[&"revoke", &artifact, &"--key", &s.ci_key, &"--bundle"]);
    assert_exit(&out, 0);
    let out = s.verify(&artifact, &policy);
    assert_exit(&out, 1);
    assert!(text(&out.stderr).contains("revoked by ci"));
}

/// `revocations.authorities` names who may revoke: naming only `security`, a
/// revocation by `ci` (trusted for profiles, and perhaps the leaked key) does
/// not revoke, one by `security` does. An unknown name is refused.
#[test]
fn only_the_named_revocation_authorities_revoke() {
    let Some(s) = setup() else { return };
    let security = generate_key(s.dir.path(), "security");
    let artifact = s.push_signed(30);
    let policy = s.policy("policy.yaml", "revocations:\n  authorities: [security]\n");
    assert_exit(&imprint(&[&"revoke", &artifact, &"--key", &s.ci_key]), 0);
    let verdict = s.verify_json(&artifact, &policy, 0);
    let rejected = &verdict["revocations"]["rejected"];
    assert_eq!(rejected.as_array().unwrap().len(), 1, "{verdict}");

    assert_exit(&imprint(&[&"revoke", &artifact, &"--key", &security]), 0);
    let out = s.verify(&artifact, &policy);
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("revoked by security"),
        "{}",
        text(&out.stderr)
    );

    let unknown = s.policy("unknown.yaml", "revocations:\n  authorities: [ops]\n");
    let out = s.verify(&artifact, &unknown);
    assert_exit(&out, 1);
    let said = text(&out.stderr);
    assert!(said.contains("revocations.authorities[0]"), "{said}");
    assert!(said.contains("\"ops\""), "{said}");
}

/// A revocation is about the image it is stored under: one whose predicate names
/// another image digest than its subject (signed by the trusted key, written with
/// `attest --type`) is refused; the image's attestations of other types are not
/// revocations and are not judged.
#[test]
fn a_revocation_for_another_image_is_refused() {
    let Some(s) = setup() else { return };
    let artifact = s.push_signed(30);
    let policy = s.policy("policy.yaml", "");
    let other_image = imprint_schema::Digest::sha256_of(b"another image");
    let predicate = s.dir.path().join("forged.json");
    std::fs::write(
        &predicate,
        serde_json::json!({
            "revokedArtifact": digest_of(&artifact),
            "imageDigest": other_image,
        })
        .to_string(),
    )
    .unwrap();
    let sbom = s.dir.path().join("sbom.json");
    std::fs::write(&sbom, "{\"packages\": []}").unwrap();
    for (file, kind) in [
        (&predicate, REVOCATION_TYPE),
        (&sbom, "https://spdx.dev/Document"),
    ] {
        let out = imprint(&[
            &"attest",
            &s.image(),
            &"--key",
            &s.ci_key,
            &"--predicate",
            file,
            &"--type",
            &kind,
        ]);
        assert_exit(&out, 0);
    }
    let verdict = s.verify_json(&artifact, &policy, 0);
    let rejected = verdict["revocations"]["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1, "{verdict}");
    let error = rejected[0]["error"].as_str().unwrap();
    assert!(error.contains(other_image.as_str()), "{error}");
    assert!(error.contains("imageDigest"), "{error}");
    assert!(
        verdict["revocations"]["verified"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}
