use super::*;
use crate::keys::{KeyAlgorithm, SigningKey};

const DIGEST: &str = "sha256:2b3a2bfa0d8c5f1a6a70b2c3e0b1d6a9c8a7e6f5d4c3b2a1908f7e6d5c4b3a29";
fn digest() -> Digest {
    DIGEST.parse().unwrap()
}

fn other() -> Digest {
    OTHER.parse().unwrap()
}

const OTHER: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

#[test]
fn simple_signing_payload_is_cosigns() {
    let payload = simple_signing_payload("localhost:5000/app", &digest());
    let v: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        v["critical"]["identity"]["docker-reference"],
        "localhost:5000/app"
    );
    assert_eq!(v["critical"]["image"]["docker-manifest-digest"], DIGEST);
    assert_eq!(v["critical"]["type"], SIMPLE_SIGNING_TYPE);
    assert!(v["optional"].is_null());
    assert_eq!(
        check_simple_signing_payload(&payload, &digest()).unwrap(),
        "localhost:5000/app"
    );
}

#[test]
fn payloads_for_another_digest_or_malformed_are_refused() {
    let payload = simple_signing_payload("r/app", &other());
    assert!(matches!(
        check_simple_signing_payload(&payload, &digest()),
        Err(SignatureError::OtherDigest { .. })
    ));
    let cases: [(&str, &str); 5] = [
        ("[]", "payload is missing or not an object"),
        ("{}", "critical is missing"),
        (
            r#"{"critical":{"type":"atomic container signature","image":{"docker-manifest-digest":"x"}}}"#,
            "critical.type",
        ),
        (
            r#"{"critical":{"type":"cosign container image signature","image":{}}}"#,
            "docker-manifest-digest is missing",
        ),
        ("not json", "not JSON"),
    ];
    for (payload, needle) in cases {
        let err = check_simple_signing_payload(payload.as_bytes(), &digest()).unwrap_err();
        assert!(err.to_string().contains(needle), "{payload}: {err}");
    }
}

#[test]
fn the_legacy_capitalisation_is_read_as_cosign_reads_it() {
    let legacy = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"r/app"}},"image":{{"Docker-manifest-digest":"{DIGEST}"}},"type":"cosign container image signature"}},"optional":null}}"#
    );
    check_simple_signing_payload(legacy.as_bytes(), &digest()).unwrap();
    // Two spellings that disagree are ambiguous: refused.
    let ambiguous = format!(
        r#"{{"critical":{{"image":{{"Docker-manifest-digest":"{DIGEST}","docker-manifest-digest":"{OTHER}"}},"type":"cosign container image signature"}}}}"#
    );
    let err = check_simple_signing_payload(ambiguous.as_bytes(), &digest()).unwrap_err();
    assert!(err.to_string().contains("appears twice"), "{err}");
}

#[test]
fn pae_matches_the_dsse_specification() {
    // The example from the DSSE protocol document.
    assert_eq!(
        pae("http://example.com/HelloWorld", b"hello world"),
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
    );
}

#[test]
fn envelopes_verify_only_with_the_right_key_and_content() {
    let key = SigningKey::generate(KeyAlgorithm::EcdsaP256);
    let statement = Statement::new(
        "r/app",
        &digest(),
        PROFILE_PREDICATE_TYPE,
        serde_json::json!({}),
    );
    let payload = serde_json::to_vec(&statement).unwrap();
    let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &payload, &key);
    let (verified, index) = envelope.verify(&[key.verifying_key()]).unwrap();
    assert_eq!((verified.as_slice(), index), (payload.as_slice(), 0));
    assert_eq!(
        Statement::parse_for(&verified, &digest()).unwrap(),
        statement
    );

    // Another key.
    let other = SigningKey::generate(KeyAlgorithm::Ed25519).verifying_key();
    assert!(matches!(
        envelope.verify(&[other]),
        Err(SignatureError::NoKey(_))
    ));
    // The payload changed under the signature.
    let mut tampered = envelope.clone();
    tampered.payload = STANDARD.encode(b"{}");
    assert!(tampered.verify(&[key.verifying_key()]).is_err());
    // The payload type changed (PAE covers it).
    let mut retyped = envelope.clone();
    retyped.payload_type = "text/plain".into();
    assert!(retyped.verify(&[key.verifying_key()]).is_err());
    // Truncated signature, and none at all.
    let mut truncated = envelope.clone();
    truncated.signatures[0].sig.truncate(20);
    assert!(truncated.verify(&[key.verifying_key()]).is_err());
    let mut unsigned = envelope.clone();
    unsigned.signatures.clear();
    assert!(
        unsigned
            .verify(&[key.verifying_key()])
            .unwrap_err()
            .to_string()
            .contains("no signature")
    );
    // A truncated envelope document.
    let bytes = serde_json::to_vec(&envelope).unwrap();
    assert!(Envelope::parse(&bytes[..bytes.len() / 2]).is_err());
}

#[test]
fn statements_about_other_artifacts_are_refused() {
    let statement = Statement::new(
        "r/app",
        &other(),
        PROFILE_PREDICATE_TYPE,
        serde_json::json!({}),
    );
    let payload = serde_json::to_vec(&statement).unwrap();
    let err = Statement::parse_for(&payload, &digest()).unwrap_err();
    assert!(matches!(err, SignatureError::OtherDigest { .. }), "{err}");
    let no_subject =
        br#"{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"x"}"#;
    let err = Statement::parse_for(no_subject, &digest()).unwrap_err();
    assert!(err.to_string().contains("no subject"), "{err}");
}

#[test]
fn appending_a_signature_keeps_the_others_and_is_idempotent() {
    let a = Descriptor::of(SIMPLE_SIGNING_MEDIA_TYPE, b"a");
    let b = Descriptor::of(SIMPLE_SIGNING_MEDIA_TYPE, b"b");
    let first = append_layer(None, a.clone());
    let (bytes, config) = tag_manifest(first);
    let manifest: Manifest = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        manifest.config.digest,
        imprint_schema::Digest::sha256_of(&config)
    );
    let both = append_layer(Some(&manifest), b.clone());
    assert_eq!(both, vec![a.clone(), b]);
    assert_eq!(append_layer(Some(&manifest), a.clone()), vec![a]);
}

#[test]
fn bundles_parse_only_as_v0_3() {
    let key = SigningKey::generate(KeyAlgorithm::EcdsaP256);
    let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, b"{}", &key);
    let bundle = Bundle::for_envelope(envelope, &key.verifying_key());
    let bytes = serde_json::to_vec(&bundle).unwrap();
    assert_eq!(Bundle::parse(&bytes).unwrap(), bundle);
    let mut old = bundle.clone();
    old.media_type = "application/vnd.dev.sigstore.bundle+json;version=0.1".into();
    let err = Bundle::parse(&serde_json::to_vec(&old).unwrap()).unwrap_err();
    assert!(err.to_string().contains("bundle media type"), "{err}");
    let huge = vec![b' '; (MAX_SIGNED_BLOB_BYTES + 1) as usize];
    assert!(
        Bundle::parse(&huge)
            .unwrap_err()
            .to_string()
            .contains("larger")
    );
}
