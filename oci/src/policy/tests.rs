use super::*;
use crate::keys::{KeyAlgorithm, SigningKey};
use crate::signing::{
    Envelope, IN_TOTO_PAYLOAD_TYPE, LearningWindow, ProfilePredicate, simple_signing_payload,
};

const DIGEST: &str = "sha256:2b3a2bfa0d8c5f1a6a70b2c3e0b1d6a9c8a7e6f5d4c3b2a1908f7e6d5c4b3a29";

fn digest() -> Digest {
    DIGEST.parse().unwrap()
}

fn write_policy(dir: &Path, key: &SigningKey, body: &str) -> Result<Policy, PolicyError> {
    std::fs::write(dir.join("cosign.pub"), key.verifying_key().to_pem()).unwrap();
    let text = format!(
        "apiVersion: imprint.dev/v1\nkind: VerificationPolicy\nauthorities:\n  - name: ci\n    key: {{path: cosign.pub}}\n{body}"
    );
    let path = dir.join("policy.yaml");
    std::fs::write(&path, &text).unwrap();
    Policy::load(&path, text.as_bytes())
}

fn predicate(completeness: &str, hours: i64, builder: &str) -> serde_json::Value {
    let start = jiff::Timestamp::from_second(1_700_000_000).unwrap();
    serde_json::to_value(ProfilePredicate {
        image_digest: Digest::sha256_of(b"image"),
        profile_layer_digest: Digest::sha256_of(b"layer"),
        learning: LearningWindow {
            start: Some(start),
            end: Some(start + jiff::SignedDuration::from_hours(hours)),
            completeness: completeness.into(),
            observed_containers: 2,
        },
        builder: crate::signing::Builder { id: builder.into() },
        version: 7,
    })
    .unwrap()
}

#[test]
fn conditions_name_what_fails() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate(KeyAlgorithm::EcdsaP256);
    let policy = write_policy(
        dir.path(),
        &key,
        "attestations:\n  conditions:\n    completeness: complete\n    minLearningDuration: 24h\n    builderIdRegExp: ^https://ci\\.example/acme/\n",
    )
    .unwrap();
    let statement = |p| Statement::new("r", &digest(), PROFILE_PREDICATE_TYPE, p);
    let passing = statement(predicate("complete", 24, "https://ci.example/acme/run/1"));
    policy.check_statement(&passing).unwrap();
    assert_eq!(policy.attested_version(&passing), Some(7));
    // Attested before versions existed: version 0.
    let mut old = predicate("complete", 24, "https://ci.example/acme/run/1");
    old.as_object_mut().unwrap().remove("version");
    assert_eq!(policy.attested_version(&statement(old)), Some(0));
    for (p, needle) in [
        (
            predicate("partial", 48, "https://ci.example/acme/1"),
            "completeness is \"partial\"",
        ),
        (
            predicate("complete", 2, "https://ci.example/acme/1"),
            "learned for 7200s",
        ),
        (
            predicate("complete", 48, "https://evil.example/acme/1"),
            "builder id",
        ),
    ] {
        let err = policy.check_statement(&statement(p)).unwrap_err();
        assert!(err.to_string().contains(needle), "{needle}: {err}");
    }
    let wrong_type = Statement::new(
        "r",
        &digest(),
        "https://slsa.dev/provenance/v1",
        serde_json::json!({}),
    );
    assert!(
        policy
            .check_statement(&wrong_type)
            .unwrap_err()
            .to_string()
            .contains("predicateType")
    );
}

#[test]
fn signatures_and_envelopes_check_against_the_policys_keys() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate(KeyAlgorithm::EcdsaP256);
    let policy = write_policy(dir.path(), &key, "").unwrap();
    let payload = simple_signing_payload("r/app", &digest());
    let signature = key.sign(&payload);
    assert_eq!(
        check_signature(&policy, &digest(), &payload, &signature).unwrap(),
        "ci"
    );
    let stranger = SigningKey::generate(KeyAlgorithm::EcdsaP256);
    assert!(matches!(
        check_signature(&policy, &digest(), &payload, &stranger.sign(&payload)),
        Err(SignatureError::NoKey(_))
    ));
    let statement = Statement::new(
        "r/app",
        &digest(),
        PROFILE_PREDICATE_TYPE,
        predicate("complete", 30, "x"),
    );
    let envelope = Envelope::sign(
        IN_TOTO_PAYLOAD_TYPE,
        &serde_json::to_vec(&statement).unwrap(),
        &key,
    );
    let (checked, authority) = check_envelope(&policy, &digest(), &envelope).unwrap();
    assert_eq!((checked, authority.as_str()), (statement, "ci"));
    let mut retyped = envelope.clone();
    retyped.payload_type = "application/json".into();
    assert!(
        check_envelope(&policy, &digest(), &retyped)
            .unwrap_err()
            .to_string()
            .contains("payloadType")
    );
}

#[test]
fn a_verdict_requires_what_the_policy_requires() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate(KeyAlgorithm::EcdsaP256);
    let policy = write_policy(dir.path(), &key, "").unwrap();
    let ok = |source: &str| Finding {
        source: source.into(),
        verified: true,
        authority: Some("ci".into()),
        error: None,
        version: Some(3),
        evidence: None,
    };
    let verdict = Verdict::decide(&policy, &digest(), vec![ok("sig")], vec![ok("att")]);
    assert!(verdict.verified);
    // The version is the highest a verified attestation gives: not a failed one's.
    assert_eq!(verdict.version, 3);
    // Signed but not attested.
    let verdict = Verdict::decide(&policy, &digest(), vec![ok("sig")], vec![]);
    assert!(!verdict.verified);
    assert!(
        verdict.failures[0].contains("no attestation"),
        "{:?}",
        verdict.failures
    );
    // A failing attestation is explained.
    let bad = Finding {
        source: "tag x.att layer 0".into(),
        verified: false,
        authority: None,
        error: Some("completeness is \"partial\"".into()),
        version: Some(9),
        evidence: None,
    };
    let verdict = Verdict::decide(&policy, &digest(), vec![ok("sig")], vec![bad]);
    assert!(
        verdict.failures[0].contains("tag x.att layer 0: completeness"),
        "{:?}",
        verdict.failures
    );
}

#[test]
fn malformed_policies_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate(KeyAlgorithm::EcdsaP256);
    for (body, needle) in [
        (
            "attestations:\n  conditions:\n    minLearningDuration: 24x\n",
            "minLearningDuration",
        ),
        (
            "attestations:\n  conditions:\n    builderIdRegExp: \"(\"\n",
            "builderIdRegExp",
        ),
        (
            "attestations:\n  conditions:\n    completeness: mostly\n",
            "completeness",
        ),
        ("surprise: 1\n", "surprise"),
        (
            "signatures: {required: false}\nattestations: {required: false}\n",
            "trust anything",
        ),
    ] {
        let err = write_policy(dir.path(), &key, body).unwrap_err();
        assert!(err.to_string().contains(needle), "{needle}: {err}");
    }
    let path = dir.path().join("p.yaml");
    let err = Policy::load(&path, b"apiVersion: imprint.dev/v1\nkind: VerificationPolicy\nauthorities:\n  - key: {path: missing.pub}\n").unwrap_err();
    assert!(err.to_string().contains("missing.pub"), "{err}");
    let err = Policy::load(
        &path,
        b"apiVersion: imprint.dev/v1\nkind: VerificationPolicy\nauthorities: []\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("at least one"), "{err}");
}

#[test]
fn durations_parse_like_go_and_kubernetes_users_write_them() {
    assert_eq!(parse_duration("24h").unwrap().as_secs(), 86400);
    assert_eq!(parse_duration("1h30m").unwrap().as_secs(), 5400);
    assert_eq!(parse_duration("2d").unwrap().as_secs(), 172800);
    assert!(parse_duration("").is_err());
    assert!(parse_duration("10").is_err());
    assert!(parse_duration("h").is_err());
}

#[test]
fn profile_repositories_admit_only_what_their_globs_name() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate(KeyAlgorithm::EcdsaP256);
    let absent = write_policy(dir.path(), &key, "").unwrap();
    assert!(
        absent.profile_repositories.is_none(),
        "no key: any repository"
    );
    let policy = write_policy(
        dir.path(),
        &key,
        "profiles:\n  repositories: [\"registry.example/shop/**\", \"127.0.0.1:5000/profiles/*\"]\n",
    )
    .unwrap();
    let globs = policy.profile_repositories.unwrap();
    for allowed in [
        "registry.example/shop/web",
        "registry.example/shop/team/api",
        "Registry.Example/shop/web",
        "127.0.0.1:5000/profiles/web",
    ] {
        assert!(globs.allows(allowed), "{allowed} is allowed");
    }
    for refused in [
        "registry.example/tenant/web",
        "registry.example/shopping/web",
        "evil.example/shop/web",
        "127.0.0.1:5000/profiles/a/b",
        "127.0.0.1:5001/profiles/web",
    ] {
        assert!(!globs.allows(refused), "{refused} is refused");
    }
}

#[test]
fn malformed_profile_repositories_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate(KeyAlgorithm::EcdsaP256);
    for (body, needle) in [
        (
            "profiles:\n  repositories: []\n",
            "profiles.repositories is empty",
        ),
        (
            "profiles:\n  repositories: [\"registry.example/shop*/web\"]\n",
            "profiles.repositories[0] \"registry.example/shop*/web\"",
        ),
        (
            "profiles:\n  repositories: [a/b, \"/registry.example/shop\"]\n",
            "profiles.repositories[1] \"/registry.example/shop\": write registry/repository",
        ),
        (
            "profiles:\n  repositories: [shop]\n",
            "write registry/repository",
        ),
        ("profiles: {repos: [a/b]}\n", "repos"),
    ] {
        let err = write_policy(dir.path(), &key, body)
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{body:?}: {err}");
    }
}

/// Loads a policy whose one authority is keyless with this subject expression.
fn keyless_policy(dir: &Path, subject: &str) -> Result<Policy, PolicyError> {
    std::fs::write(dir.join("trusted_root.json"), b"{}").unwrap();
    let text = format!(
        "apiVersion: imprint.dev/v1\nkind: VerificationPolicy\nauthorities:\n  - name: github\n    keyless:\n      issuer: https://token.actions.githubusercontent.com\n      subjectRegExp: '{subject}'\n      trustedRoot: trusted_root.json\n"
    );
    let path = dir.join("policy.yaml");
    std::fs::write(&path, &text).unwrap();
    Policy::load(&path, text.as_bytes())
}

#[test]
fn keyless_subject_expressions_must_be_anchored_at_both_ends() {
    let dir = tempfile::tempdir().unwrap();
    let one = r"^https://github\.com/acme/shop/\.github/workflows/learn\.yaml@refs/heads/main$";
    for anchored in [
        one,
        r"^(https://github\.com/acme/shop/\.github/workflows/learn\.yaml@refs/heads/main)$",
        r"\Ahttps://github\.com/acme/shop/\.github/workflows/learn\.yaml@refs/tags/v1\z",
        // Alternatives each anchored at both ends are anchored as a whole.
        r"^https://github\.com/acme/a/\.github/workflows/l\.yaml@refs/heads/main$|^https://github\.com/acme/b/\.github/workflows/l\.yaml@refs/heads/main$",
        r"^https://github\.com/acme/shop/\.github/workflows/learn\.yaml@refs/heads/(main|release)$",
    ] {
        let policy = keyless_policy(dir.path(), anchored);
        assert!(policy.is_ok(), "{anchored}: {}", policy.unwrap_err());
    }
    for (open, end) in [
        // The organisation-wide prefix the examples used to show.
        (r"^https://github\.com/acme/", "the end"),
        (r"https://github\.com/acme/shop/x$", "the start"),
        (r"github\.com/acme", "either end"),
        // Looks anchored, is not: `^a|b$` is `(^a)|(b$)`.
        (
            r"^https://github\.com/acme/a|https://github\.com/acme/b$",
            "either end",
        ),
        (
            r"^https://github\.com/acme/a$|https://github\.com/acme/b",
            "either end",
        ),
        // Line anchors match after any newline in the subject.
        (r"(?m)^https://github\.com/acme/a$", "either end"),
        // An optional anchor is no anchor.
        (r"^https://github\.com/acme/a$?", "the end"),
        // An escaped dollar is a character.
        (r"^https://github\.com/acme/a\$", "the end"),
    ] {
        let err = keyless_policy(dir.path(), open).unwrap_err().to_string();
        for needle in [
            "authorities[0] (github).keyless.subjectRegExp",
            "is not anchored at",
            end,
        ] {
            assert!(err.contains(needle), "{open}: {needle:?} not in {err}");
        }
    }
    // An expression that does not compile is still named as such.
    let err = keyless_policy(dir.path(), "^(unclosed$")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("keyless.subjectRegExp") && err.contains("unclosed"),
        "{err}"
    );
}
