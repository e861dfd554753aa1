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
    policy
        .check_statement(&statement(predicate(
            "complete",
            24,
            "https://ci.example/acme/run/1",
        )))
        .unwrap();
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
    };
    let verdict = Verdict::decide(&policy, &digest(), vec![ok("sig")], vec![ok("att")]);
    assert!(verdict.verified);
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
