use super::*;
use crate::keys::{KeyAlgorithm, SigningKey};
use sha2::Digest as _;

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

/// A key-based bundle whose DSSE envelope verifies, as JSON to doctor.
fn signed_bundle_json() -> (serde_json::Value, SigningKey) {
    let key = SigningKey::generate(KeyAlgorithm::EcdsaP256);
    let statement = Statement::new(
        "r",
        &digest(),
        PROFILE_PREDICATE_TYPE,
        serde_json::json!({}),
    );
    let payload = serde_json::to_vec(&statement).unwrap();
    let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &payload, &key);
    let bundle = Bundle::for_envelope(envelope, &key.verifying_key());
    (serde_json::to_value(&bundle).unwrap(), key)
}

/// A message signature as cosign writes one: a digest and a signature over it.
fn message_signature(key: &SigningKey) -> serde_json::Value {
    let digest = sha2::Sha256::digest(b"the artifact");
    serde_json::json!({
        "messageDigest": {"algorithm": "SHA2_256", "digest": STANDARD.encode(digest)},
        "signature": STANDARD.encode(key.sign(b"the artifact")),
    })
}

#[test]
fn a_bundle_with_a_dsse_envelope_and_a_message_signature_is_refused() {
    let (mut bundle, key) = signed_bundle_json();
    // The envelope alone parses, and verifies with the key.
    let alone = serde_json::to_vec(&bundle).unwrap();
    let parsed = Bundle::parse(&alone).unwrap();
    let envelope = parsed.dsse_envelope.unwrap();
    envelope.verify(&[key.verifying_key()]).unwrap();
    // The same with a message signature beside it, in either order and in the
    // proto field spelling protojson readers also accept.
    let signature = message_signature(&key);
    bundle["messageSignature"] = signature.clone();
    let both = serde_json::to_string(&bundle).unwrap();
    let message_first = format!(
        r#"{{"messageSignature":{signature},{}"#,
        both.strip_prefix('{')
            .unwrap()
            .replace(&format!(r#","messageSignature":{signature}"#), "")
    );
    assert!(message_first.find("messageSignature") < message_first.find("dsseEnvelope"));
    let mut snake = bundle.clone();
    snake.as_object_mut().unwrap().remove("messageSignature");
    snake["message_signature"] = signature;
    for text in [both, message_first, serde_json::to_string(&snake).unwrap()] {
        let err = Bundle::parse(text.as_bytes()).unwrap_err();
        assert!(
            matches!(&err, SignatureError::AmbiguousBundle(found) if found.len() == 2),
            "{text}: {err}"
        );
        assert!(err.to_string().contains("dsseEnvelope and "), "{err}");
    }
    // A null message signature counts: readers differ on null against absent.
    bundle["messageSignature"] = serde_json::Value::Null;
    let err = Bundle::parse(&serde_json::to_vec(&bundle).unwrap()).unwrap_err();
    assert!(matches!(err, SignatureError::AmbiguousBundle(_)), "{err}");
}

#[test]
fn a_bundle_with_a_repeated_key_is_refused_at_any_depth() {
    let (bundle, key) = signed_bundle_json();
    let text = serde_json::to_string(&bundle).unwrap();
    let envelope = serde_json::to_string(&bundle["dsseEnvelope"]).unwrap();
    // A second envelope, signed too, under the same key.
    let statement = Statement::new("r", &other(), PROFILE_PREDICATE_TYPE, serde_json::json!({}));
    let forged = serde_json::to_string(&Envelope::sign(
        IN_TOTO_PAYLOAD_TYPE,
        &serde_json::to_vec(&statement).unwrap(),
        &key,
    ))
    .unwrap();
    let two_envelopes = text.replacen(
        &format!(r#""dsseEnvelope":{envelope}"#),
        &format!(r#""dsseEnvelope":{envelope},"dsseEnvelope":{forged}"#),
        1,
    );
    // serde's derive alone refuses the repeated field; the check says why first.
    let derived = serde_json::from_str::<Bundle>(&two_envelopes).unwrap_err();
    assert!(
        derived
            .to_string()
            .contains("duplicate field `dsseEnvelope`"),
        "{derived}"
    );
    // The same key escaped is the same key; deep in verification material too.
    let escaped = text.replacen(
        &format!(r#""dsseEnvelope":{envelope}"#),
        &format!(r#""dsseEnvelope":{envelope},"dsse\u0045nvelope":{forged}"#),
        1,
    );
    let hint = r#""hint":"#;
    let deep = text.replacen(hint, r#""hint":"other","hint":"#, 1);
    assert_ne!(deep, text);
    for (doctored, key) in [
        (two_envelopes, "dsseEnvelope"),
        (escaped, "dsseEnvelope"),
        (deep, "hint"),
    ] {
        let err = Bundle::parse(doctored.as_bytes()).unwrap_err();
        assert!(
            matches!(&err, SignatureError::DuplicateKey { what: "bundle", .. }),
            "{doctored}: {err}"
        );
        assert!(
            err.to_string().contains(&format!("duplicate key {key:?}")),
            "{err}"
        );
        assert!(err.to_string().contains("line 1 column"), "{err}");
        assert!(check_bundle_unambiguous(doctored.as_bytes()).is_err());
    }
}

#[test]
fn a_bundle_with_no_content_is_refused() {
    let (mut bundle, _) = signed_bundle_json();
    bundle.as_object_mut().unwrap().remove("dsseEnvelope");
    let err = Bundle::parse(&serde_json::to_vec(&bundle).unwrap()).unwrap_err();
    assert!(
        err.to_string().contains("neither a DSSE envelope nor"),
        "{err}"
    );
}

#[test]
fn a_statement_with_a_repeated_key_is_refused() {
    let statement = Statement::new(
        "r",
        &digest(),
        PROFILE_PREDICATE_TYPE,
        serde_json::json!({}),
    );
    let text = serde_json::to_string(&statement).unwrap();
    Statement::parse_for(text.as_bytes(), &digest()).unwrap();
    // The subject names this artifact and another under one algorithm: a
    // verifier keeping the first and a reader keeping the last would differ.
    let sha = format!(r#""sha256":"{}""#, digest().hex());
    let twice = text.replace(&sha, &format!(r#"{sha},"sha256":"{}""#, other().hex()));
    assert_ne!(twice, text);
    let err = Statement::parse_for(twice.as_bytes(), &digest()).unwrap_err();
    assert!(
        matches!(
            &err,
            SignatureError::DuplicateKey {
                what: "statement",
                ..
            }
        ),
        "{err}"
    );
    // A repeated predicate key, deep inside.
    let predicate = Statement::new(
        "r",
        &digest(),
        PROFILE_PREDICATE_TYPE,
        serde_json::json!({"learning": {"completeness": "partial"}}),
    );
    let text = serde_json::to_string(&predicate).unwrap().replace(
        r#""completeness":"partial""#,
        r#""completeness":"partial","completeness":"complete""#,
    );
    let err = Statement::parse_for(text.as_bytes(), &digest()).unwrap_err();
    assert!(
        err.to_string().contains(r#"duplicate key "completeness""#),
        "{err}"
    );
    // Not JSON stays a plain malformed statement.
    let err = Statement::parse_for(b"{", &digest()).unwrap_err();
    assert!(
        err.to_string().contains("not an in-toto statement"),
        "{err}"
    );
}
