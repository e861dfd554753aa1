//! Signatures and attestations in a real `docker-registry`, and every way a
//! hostile registry or signer can try to pass one off: each case must fail with a
//! message that names it.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use imprint_oci::layout::{self, Descriptor, MANIFEST_MEDIA_TYPE};
use imprint_oci::policy::{Policy, Verdict};
use imprint_oci::signing::{self, Envelope, Statement};
use imprint_oci::{KeyAlgorithm, SigningKey};
use imprint_oci::{Reference, Registry, RegistryOptions, parse_reference};
use imprint_schema::{Completeness, Digest, Profile};

use imprint_test_support::{self as support, TestRegistry, push_test_image};

struct World {
    reg: TestRegistry,
    client: Registry,
    repository: Reference,
    key: SigningKey,
    /// Two profile artifacts of one image.
    a: Digest,
    b: Digest,
}

fn created() -> jiff::Timestamp {
    "2026-11-26T00:00:00Z".parse().unwrap()
}

async fn world(repo: &str) -> Option<World> {
    let reg = TestRegistry::start()?;
    let probe = parse_reference(&format!("{}/probe:x", reg.addr)).unwrap();
    let client = Registry::new(&RegistryOptions::default(), &[&probe]).unwrap();
    let image_digest = push_test_image(&reg.addr, repo);
    let image = parse_reference(&format!("{}/{repo}@{image_digest}", reg.addr)).unwrap();
    let subject = client.resolve(&image).await.unwrap();
    let repository = parse_reference(&format!("{}/{repo}", reg.addr)).unwrap();
    let mut digests = Vec::new();
    for syscall in ["read", "write"] {
        let mut p = Profile::new(image_digest.clone());
        p.learning.completeness = Completeness::Complete;
        p.learning.start = Some("2026-11-24T00:00:00Z".parse().unwrap());
        p.learning.end = Some("2026-11-25T06:00:00Z".parse().unwrap());
        p.syscalls = vec![syscall.into()];
        let artifact = layout::build(&p, &subject, created()).unwrap();
        digests.push(
            client
                .push_artifact(&repository, &artifact, None)
                .await
                .unwrap(),
        );
    }
    Some(World {
        reg,
        client,
        repository,
        key: SigningKey::generate(KeyAlgorithm::EcdsaP256),
        b: digests.pop().unwrap(),
        a: digests.pop().unwrap(),
    })
}

impl World {
    fn at(&self, digest: &Digest) -> Reference {
        self.repository.clone_with_digest(digest.to_string())
    }

    fn policy(&self, attested: bool) -> Policy {
        Policy::for_key(self.key.verifying_key(), attested)
    }

    async fn verify(&self, digest: &Digest, policy: &Policy) -> Verdict {
        self.client
            .verify(&self.repository, digest, policy)
            .await
            .unwrap()
    }

    /// Writes a cosign tag for `digest` with these layers (blobs pushed first).
    async fn put_tag(&self, tag: String, layers: Vec<(Descriptor, Vec<u8>)>) {
        let mut descriptors = Vec::new();
        for (descriptor, blob) in layers {
            self.client
                .push_blob(&self.repository, &blob)
                .await
                .unwrap();
            descriptors.push(descriptor);
        }
        let (manifest, config) = signing::tag_manifest(descriptors);
        self.client
            .push_blob(&self.repository, &config)
            .await
            .unwrap();
        let tagged = Reference::with_tag(
            self.repository.registry().into(),
            self.repository.repository().into(),
            tag,
        );
        self.client
            .push_manifest(&tagged, &manifest, MANIFEST_MEDIA_TYPE)
            .await
            .unwrap();
    }

    /// A `.sig` layer for `payload` signed by `key`.
    fn sig_layer(key: &SigningKey, payload: &[u8]) -> (Descriptor, Vec<u8>) {
        let mut d = Descriptor::of(signing::SIMPLE_SIGNING_MEDIA_TYPE, payload);
        d.annotations = BTreeMap::from([(
            signing::SIGNATURE_ANNOTATION.to_string(),
            STANDARD.encode(key.sign(payload)),
        )]);
        (d, payload.to_vec())
    }

    /// An `.att` layer holding `envelope_bytes`.
    fn att_layer(envelope_bytes: &[u8]) -> (Descriptor, Vec<u8>) {
        let mut d = Descriptor::of(signing::DSSE_MEDIA_TYPE, envelope_bytes);
        d.annotations = BTreeMap::from([(
            signing::PREDICATE_TYPE_ANNOTATION.to_string(),
            signing::PROFILE_PREDICATE_TYPE.to_string(),
        )]);
        (d, envelope_bytes.to_vec())
    }

    /// Pushes `bundle` as a bundle referrer of `subject` (the registry has no
    /// referrers API: the fallback index lists it).
    async fn put_bundle_referrer(&self, subject: &Digest, bundle: &[u8], predicate_type: &str) {
        let descriptor = self.client.resolve(&self.at(subject)).await.unwrap();
        let manifest = signing::bundle_manifest(bundle, &descriptor, predicate_type, created());
        self.client
            .push_blob(&self.repository, layout::EMPTY_CONFIG)
            .await
            .unwrap();
        self.client
            .push_blob(&self.repository, bundle)
            .await
            .unwrap();
        let digest = self
            .client
            .push_manifest(&self.repository, &manifest, MANIFEST_MEDIA_TYPE)
            .await
            .unwrap();
        let mut entry = Descriptor::of(MANIFEST_MEDIA_TYPE, &manifest);
        entry.artifact_type = Some(signing::BUNDLE_MEDIA_TYPE.into());
        assert_eq!(entry.digest, digest);
        self.client
            .update_fallback_index(&self.repository, subject, entry)
            .await
            .unwrap();
    }

    /// A key-based bundle whose DSSE envelope is a valid attestation of
    /// `subject`, signed by the world's key, as JSON to doctor.
    fn attestation_bundle(&self, subject: &Digest) -> serde_json::Value {
        let statement = Statement::new(
            "r",
            subject,
            signing::PROFILE_PREDICATE_TYPE,
            self.predicate(),
        );
        let envelope = Envelope::sign(
            signing::IN_TOTO_PAYLOAD_TYPE,
            &serde_json::to_vec(&statement).unwrap(),
            &self.key,
        );
        let bundle = signing::Bundle::for_envelope(envelope, &self.key.verifying_key());
        serde_json::to_value(bundle).unwrap()
    }

    fn predicate(&self) -> serde_json::Value {
        serde_json::json!({
            "imageDigest": format!("sha256:{}", "a".repeat(64)),
            "profileLayerDigest": format!("sha256:{}", "b".repeat(64)),
            "learning": {"start": "2026-11-24T00:00:00Z", "end": "2026-11-25T06:00:00Z",
                         "completeness": "complete", "observedContainers": 1},
            "builder": {"id": "https://ci.example/acme/1"},
        })
    }
}

#[track_caller]
fn assert_fails(verdict: &Verdict, needle: &str) {
    assert!(
        !verdict.verified,
        "verified, expected failure with {needle:?}"
    );
    let all = verdict.failures.join("\n");
    assert!(all.contains(needle), "{needle:?} not in {all}");
}

#[tokio::test]
async fn signatures_verify_and_accumulate_on_one_tag() {
    let Some(w) = world("sig/append").await else {
        return;
    };
    let other = SigningKey::generate(KeyAlgorithm::Ed25519);
    w.client
        .sign(&w.at(&w.a), &w.key, false, created())
        .await
        .unwrap();
    w.client
        .sign(&w.at(&w.a), &other, false, created())
        .await
        .unwrap();
    // Signing twice with one key adds nothing new (the ECDSA signature differs,
    // so it is a second layer, as with cosign).
    let verdict = w.verify(&w.a, &w.policy(false)).await;
    assert!(verdict.verified, "{:?}", verdict.failures);
    assert_eq!(verdict.signatures.len(), 2);
    assert_eq!(verdict.signatures.iter().filter(|f| f.verified).count(), 1);
    // Only Ed25519 trusted: the other layer verifies.
    let ed = Policy::for_key(other.verifying_key(), false);
    assert!(w.verify(&w.a, &ed).await.verified);
}

#[tokio::test]
async fn a_signature_copied_from_another_artifact_is_refused() {
    let Some(w) = world("sig/copied").await else {
        return;
    };
    // Sign A, then put A's signature layer under B's tag.
    let payload = signing::simple_signing_payload("r", &w.a);
    w.put_tag(
        signing::signature_tag(&w.b),
        vec![World::sig_layer(&w.key, &payload)],
    )
    .await;
    assert_fails(
        &w.verify(&w.b, &w.policy(false)).await,
        &format!("signed for {}", w.a),
    );
}

#[tokio::test]
async fn a_payload_naming_another_digest_is_refused_even_with_the_right_key() {
    let Some(w) = world("sig/otherdigest").await else {
        return;
    };
    let payload = signing::simple_signing_payload(
        "r",
        &"sha256:0000000000000000000000000000000000000000000000000000000000000000"
            .parse()
            .unwrap(),
    );
    w.put_tag(
        signing::signature_tag(&w.a),
        vec![World::sig_layer(&w.key, &payload)],
    )
    .await;
    assert_fails(
        &w.verify(&w.a, &w.policy(false)).await,
        "signed for sha256:0000",
    );
}

#[tokio::test]
async fn the_legacy_capitalisation_cosign_accepts_is_accepted() {
    let Some(w) = world("sig/legacy").await else {
        return;
    };
    let payload = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"r"}},"image":{{"Docker-manifest-digest":"{}"}},"type":"cosign container image signature"}},"optional":null}}"#,
        w.a
    );
    w.put_tag(
        signing::signature_tag(&w.a),
        vec![World::sig_layer(&w.key, payload.as_bytes())],
    )
    .await;
    let verdict = w.verify(&w.a, &w.policy(false)).await;
    assert!(verdict.verified, "{:?}", verdict.failures);
}

#[tokio::test]
async fn a_wrong_key_and_a_tampered_signature_are_refused() {
    let Some(w) = world("sig/wrongkey").await else {
        return;
    };
    let stranger = SigningKey::generate(KeyAlgorithm::EcdsaP256);
    w.client
        .sign(&w.at(&w.a), &stranger, false, created())
        .await
        .unwrap();
    assert_fails(
        &w.verify(&w.a, &w.policy(false)).await,
        "no trusted key verifies",
    );
    // A signature annotation that is not base64, and one over other bytes.
    let payload = signing::simple_signing_payload("r", &w.b);
    let (mut garbled, blob) = World::sig_layer(&w.key, &payload);
    garbled
        .annotations
        .insert(signing::SIGNATURE_ANNOTATION.into(), "%%%".into());
    let (mut swapped, _) = World::sig_layer(&w.key, &payload);
    swapped.annotations.insert(
        signing::SIGNATURE_ANNOTATION.into(),
        STANDARD.encode(w.key.sign(b"something else")),
    );
    w.put_tag(
        signing::signature_tag(&w.b),
        vec![(garbled, blob.clone()), (swapped, blob)],
    )
    .await;
    let verdict = w.verify(&w.b, &w.policy(false)).await;
    assert_fails(&verdict, "not base64");
    assert_fails(&verdict, "signature does not verify");
}

#[tokio::test]
async fn a_tampered_layer_from_the_registry_is_refused() {
    let Some(w) = world("sig/tampered").await else {
        return;
    };
    w.client
        .sign(&w.at(&w.a), &w.key, false, created())
        .await
        .unwrap();
    // A proxy that serves other bytes for every blob.
    let proxy = support::FaultProxy::start(&w.reg.addr, |line, _| {
        if line.contains("/blobs/") {
            support::Fault::Serve("application/octet-stream", || {
                b"{\"tampered\":true}".to_vec()
            })
        } else {
            support::Fault::Forward
        }
    });
    let probe = parse_reference(&format!("{}/probe:x", proxy.addr)).unwrap();
    let client = Registry::new(&RegistryOptions::default(), &[&probe]).unwrap();
    let repository = parse_reference(&format!("{}/sig/tampered", proxy.addr)).unwrap();
    let verdict = client
        .verify(&repository, &w.a, &w.policy(false))
        .await
        .unwrap();
    // oci-client checks blob digests as it streams them, and says so.
    assert_fails(&verdict, "Invalid digest");
}

#[tokio::test]
async fn oversized_annotations_and_a_thousand_signatures_are_bounded() {
    let Some(w) = world("sig/flood").await else {
        return;
    };
    let payload = signing::simple_signing_payload("r", &w.a);
    let (mut huge, blob) = World::sig_layer(&w.key, &payload);
    huge.annotations
        .insert(signing::SIGNATURE_ANNOTATION.into(), "A".repeat(100_000));
    w.put_tag(signing::signature_tag(&w.a), vec![(huge, blob)])
        .await;
    assert_fails(
        &w.verify(&w.a, &w.policy(false)).await,
        "more than the limit of 8192",
    );

    // A thousand junk signatures (distinct annotations over one payload blob).
    let mut layers = Vec::new();
    for i in 0..1000 {
        let mut d = Descriptor::of(signing::SIMPLE_SIGNING_MEDIA_TYPE, &payload);
        d.annotations = BTreeMap::from([(
            signing::SIGNATURE_ANNOTATION.to_string(),
            STANDARD.encode(format!("junk {i}")),
        )]);
        layers.push((d, payload.clone()));
    }
    w.put_tag(signing::signature_tag(&w.b), layers).await;
    let verdict = w.verify(&w.b, &w.policy(false)).await;
    assert_fails(
        &verdict,
        "744 more layers beyond the limit of 256 were not examined",
    );
    assert_eq!(verdict.signatures.len(), 257);
}

#[tokio::test]
async fn attestations_are_checked_for_subject_type_and_integrity() {
    let Some(w) = world("att/hostile").await else {
        return;
    };
    w.client
        .sign(&w.at(&w.a), &w.key, false, created())
        .await
        .unwrap();
    let policy = w.policy(true);
    // Signed but not attested.
    assert_fails(&w.verify(&w.a, &policy).await, "no attestation of type");

    // A wrong predicate type, properly signed.
    w.client
        .attest(
            &w.at(&w.a),
            &w.key,
            "https://slsa.dev/provenance/v1",
            serde_json::json!({}),
            false,
            created(),
        )
        .await
        .unwrap();
    assert_fails(
        &w.verify(&w.a, &policy).await,
        "predicateType is \"https://slsa.dev/provenance/v1\"",
    );

    // A statement about B under A's .att tag.
    let about_b = Statement::new("r", &w.b, signing::PROFILE_PREDICATE_TYPE, w.predicate());
    let envelope = Envelope::sign(
        signing::IN_TOTO_PAYLOAD_TYPE,
        &serde_json::to_vec(&about_b).unwrap(),
        &w.key,
    );
    let about_b_bytes = serde_json::to_vec(&envelope).unwrap();
    // A truncated envelope.
    let truncated = about_b_bytes[..about_b_bytes.len() / 2].to_vec();
    w.put_tag(
        signing::attestation_tag(&w.a),
        vec![
            World::att_layer(&about_b_bytes),
            World::att_layer(&truncated),
        ],
    )
    .await;
    let verdict = w.verify(&w.a, &policy).await;
    assert_fails(&verdict, &format!("signed for sha256:{}", w.b.hex()));
    assert_fails(&verdict, "not a DSSE envelope");

    // And the real thing verifies.
    w.client
        .attest(
            &w.at(&w.a),
            &w.key,
            signing::PROFILE_PREDICATE_TYPE,
            w.predicate(),
            false,
            created(),
        )
        .await
        .unwrap();
    let verdict = w.verify(&w.a, &policy).await;
    assert!(verdict.verified, "{:?}", verdict.failures);
}

#[tokio::test]
async fn a_bundle_referrer_of_another_artifact_or_key_is_refused() {
    let Some(w) = world("bundle/hostile").await else {
        return;
    };
    let stranger = SigningKey::generate(KeyAlgorithm::EcdsaP256);
    w.client
        .sign(&w.at(&w.a), &stranger, true, created())
        .await
        .unwrap();
    let verdict = w.verify(&w.a, &w.policy(false)).await;
    assert_fails(&verdict, "no trusted key verifies");
    assert!(verdict.signatures[0].source.starts_with("referrer sha256:"));
    w.client
        .sign(&w.at(&w.a), &w.key, true, created())
        .await
        .unwrap();
    assert!(w.verify(&w.a, &w.policy(false)).await.verified);
    // B has no bundle of its own; A's do not count for it.
    assert_fails(
        &w.verify(&w.b, &w.policy(false)).await,
        "no signature found",
    );
}

#[tokio::test]
async fn an_unreachable_registry_is_an_error_not_a_verdict() {
    let Some(w) = world("sig/gone").await else {
        return;
    };
    let addr = support::free_loopback_addr();
    let probe = parse_reference(&format!("{addr}/probe:x")).unwrap();
    let options = RegistryOptions {
        retries: 0,
        timeout: std::time::Duration::from_secs(2),
        ..RegistryOptions::default()
    };
    let client = Registry::new(&options, &[&probe]).unwrap();
    let repository = parse_reference(&format!("{addr}/sig/gone")).unwrap();
    assert!(
        client
            .verify(&repository, &w.a, &w.policy(false))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_keyless_bundle_is_checked_against_the_policys_identities() {
    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "../../shared/conformance/sigstore-conformance/bundle-verify/happy-path-intoto-in-dsse-v3",
    );
    if !shared.is_dir() {
        support::skip(format!("{} absent", shared.display()));
        return;
    }
    let Some(w) = world("bundle/keyless").await else {
        return;
    };
    // A real keyless bundle (Fulcio certificate, Rekor entry), about another
    // artifact, pushed as a referrer of A.
    let bundle = std::fs::read(shared.join("bundle.sigstore.json")).unwrap();
    let subject = w.client.resolve(&w.at(&w.a)).await.unwrap();
    let manifest = signing::bundle_manifest(
        &bundle,
        &subject,
        signing::PROFILE_PREDICATE_TYPE,
        created(),
    );
    w.client
        .push_blob(&w.repository, layout::EMPTY_CONFIG)
        .await
        .unwrap();
    w.client.push_blob(&w.repository, &bundle).await.unwrap();
    let digest = w
        .client
        .push_manifest(&w.repository, &manifest, MANIFEST_MEDIA_TYPE)
        .await
        .unwrap();
    let mut entry = Descriptor::of(MANIFEST_MEDIA_TYPE, &manifest);
    entry.artifact_type = Some(signing::BUNDLE_MEDIA_TYPE.into());
    assert_eq!(entry.digest, digest);
    w.client
        .update_fallback_index(&w.repository, &w.a, entry)
        .await
        .unwrap();

    // A key-only policy cannot judge it.
    let verdict = w.verify(&w.a, &w.policy(true)).await;
    assert_fails(&verdict, "the policy names no keyless identity");

    // A keyless policy checks it with sigstore's verifier, which refuses it: it is
    // about another artifact.
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance/cosign-keys/trust_root/prod/trusted_root.json");
    std::fs::copy(root, dir.path().join("trusted_root.json")).unwrap();
    let text = "apiVersion: imprint.dev/v1\nkind: VerificationPolicy\nauthorities:\n  - name: beacon\n    keyless:\n      issuer: https://token.actions.githubusercontent.com\n      subjectRegExp: ^https://github\\.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/\\.github/workflows/extremely-dangerous-oidc-beacon\\.yml@refs/heads/main$\n      trustedRoot: trusted_root.json\nsignatures: {required: false}\n";
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, text).unwrap();
    let policy = Policy::load(&path, text.as_bytes()).unwrap();
    let verdict = w.verify(&w.a, &policy).await;
    assert!(!verdict.verified);
    let error = verdict.attestations[0].error.clone().unwrap();
    assert!(error.starts_with("beacon: "), "{error}");
    assert!(!error.contains("names no keyless"), "{error}");
    eprintln!("keyless refusal: {error}");
}

#[tokio::test]
async fn a_bundle_holding_a_signed_envelope_and_a_message_signature_is_refused() {
    let Some(w) = world("bundle/two-contents").await else {
        return;
    };
    let policy = w.policy(true);
    for subject in [&w.a, &w.b] {
        w.client
            .sign(&w.at(subject), &w.key, false, created())
            .await
            .unwrap();
    }
    // The envelope alone is a valid attestation of A.
    let bundle = w.attestation_bundle(&w.a);
    w.put_bundle_referrer(
        &w.a,
        &serde_json::to_vec(&bundle).unwrap(),
        signing::PROFILE_PREDICATE_TYPE,
    )
    .await;
    let verdict = w.verify(&w.a, &policy).await;
    assert!(verdict.verified, "{:?}", verdict.failures);

    // The same envelope, validly signed for B, beside a message signature: a
    // verifier reading the first content would check the message signature and
    // the statement would come from the envelope. Refused, whatever the order.
    let mut both = w.attestation_bundle(&w.b);
    let message = serde_json::json!({
        "messageDigest": {"algorithm": "SHA2_256", "digest": STANDARD.encode([7u8; 32])},
        "signature": STANDARD.encode(w.key.sign(b"something else")),
    });
    both["messageSignature"] = message.clone();
    let text = serde_json::to_string(&both).unwrap();
    let message_first = format!(
        r#"{{"messageSignature":{message},{}"#,
        text.strip_prefix('{')
            .unwrap()
            .replace(&format!(r#","messageSignature":{message}"#), "")
    );
    for doctored in [text, message_first] {
        w.put_bundle_referrer(&w.b, doctored.as_bytes(), signing::PROFILE_PREDICATE_TYPE)
            .await;
    }
    let verdict = w.verify(&w.b, &policy).await;
    assert_eq!(verdict.attestations.len(), 2, "{:?}", verdict.attestations);
    for finding in &verdict.attestations {
        let error = finding.error.as_deref().unwrap_or("verified");
        assert!(
            error.contains("the bundle holds dsseEnvelope and messageSignature"),
            "{error}"
        );
    }
    assert_fails(&verdict, "could come from different contents");
}

#[tokio::test]
async fn a_bundle_naming_its_envelope_twice_is_refused() {
    let Some(w) = world("bundle/two-envelopes").await else {
        return;
    };
    w.client
        .sign(&w.at(&w.b), &w.key, false, created())
        .await
        .unwrap();
    // Two signed envelopes under one key: one about A (which a reader keeping
    // the first would refuse), one about B (which a reader keeping the last
    // would take).
    let about_a = w.attestation_bundle(&w.a);
    let about_b = w.attestation_bundle(&w.b);
    let text = serde_json::to_string(&about_a).unwrap();
    let first = serde_json::to_string(&about_a["dsseEnvelope"]).unwrap();
    let last = serde_json::to_string(&about_b["dsseEnvelope"]).unwrap();
    let doctored = text.replacen(
        &format!(r#""dsseEnvelope":{first}"#),
        &format!(r#""dsseEnvelope":{first},"dsseEnvelope":{last}"#),
        1,
    );
    assert_ne!(doctored, text);
    w.put_bundle_referrer(&w.b, doctored.as_bytes(), signing::PROFILE_PREDICATE_TYPE)
        .await;
    let verdict = w.verify(&w.b, &w.policy(true)).await;
    assert_fails(
        &verdict,
        r#"bundle: duplicate key "dsseEnvelope" at line 1"#,
    );
}

/// The attack the one-content rule stops, on sigstore's own parser: a real
/// keyless bundle whose message signature verifies, with a forged DSSE envelope
/// added. sigstore's parser reads the message signature (and verifies it);
/// imprint's reads the envelope. `verify_bundle` refuses the bundle.
#[test]
fn sigstore_and_imprint_would_read_different_contents_of_a_bundle_holding_both() {
    let suite = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance/sigstore-conformance/bundle-verify");
    if !suite.is_dir() {
        support::skip(format!("{} absent", suite.display()));
        return;
    }
    let genuine = std::fs::read(suite.join("happy-path-v0.3/bundle.sigstore.json")).unwrap();
    let artifact = std::fs::read(suite.join("a.txt")).unwrap();
    let root =
        std::fs::read(suite.join("../../cosign-keys/trust_root/prod/trusted_root.json")).unwrap();
    let subject = regex::Regex::new(
        r"^https://github\.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/\.github/workflows/extremely-dangerous-oidc-beacon\.yml@refs/heads/main$",
    )
    .unwrap();
    let trust = imprint_oci::BundleTrust::Keyless {
        issuer: "https://token.actions.githubusercontent.com",
        subject: &subject,
        trusted_root: &root,
    };
    let verify = |bytes: &[u8]| {
        imprint_oci::verify_bundle(bytes, imprint_oci::Signed::Bytes(&artifact), &trust)
    };
    let signer = verify(&genuine).unwrap();
    assert_eq!(signer.dsse, None, "a message signature has no DSSE payload");

    // Add a forged envelope (no valid signature) with a statement of our own,
    // after the message signature.
    let statement = serde_json::json!({
        "_type": signing::STATEMENT_TYPE,
        "subject": [{"name": "a.txt", "digest": {"sha256": "00"}}],
        "predicateType": signing::PROFILE_PREDICATE_TYPE,
        "predicate": {"learning": {"completeness": "complete"}},
    });
    let envelope = serde_json::json!({
        "payloadType": signing::IN_TOTO_PAYLOAD_TYPE,
        "payload": STANDARD.encode(serde_json::to_vec(&statement).unwrap()),
        "signatures": [{"sig": STANDARD.encode(b"forged")}],
    });
    let text = std::str::from_utf8(&genuine).unwrap().trim_end();
    let forged = format!(
        r#"{}, "dsseEnvelope": {envelope}}}"#,
        text.strip_suffix('}').unwrap()
    )
    .into_bytes();
    // The divergence is real: sigstore's parser takes the message signature,
    // imprint's the envelope.
    let theirs =
        sigstore_verify::types::Bundle::from_json(std::str::from_utf8(&forged).unwrap()).unwrap();
    assert!(matches!(
        theirs.content,
        sigstore_verify::types::SignatureContent::MessageSignature(_)
    ));
    // ... and verifies it: without the rule, this bundle passes sigstore's check.
    let root_text = std::str::from_utf8(&root).unwrap();
    let trusted = sigstore_verify::trust_root::TrustedRoot::from_json(root_text).unwrap();
    sigstore_verify::Verifier::new(&trusted)
        .unwrap()
        .verify(
            sigstore_verify::types::Artifact::from_blob(&artifact),
            &theirs,
            &sigstore_verify::VerificationPolicy::any_identity()
                .require_issuer("https://token.actions.githubusercontent.com"),
        )
        .unwrap();
    let ours: serde_json::Value = serde_json::from_slice(&forged).unwrap();
    assert!(ours.get("dsseEnvelope").is_some());
    // And the bundle is refused, by name, before any verifier reads it.
    let err = verify(&forged).unwrap_err();
    assert!(
        matches!(err, imprint_oci::BundleError::Ambiguous(_)),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("dsseEnvelope and messageSignature"),
        "{err}"
    );
    let err = signing::Bundle::parse(&forged).unwrap_err();
    assert!(
        err.to_string()
            .contains("dsseEnvelope and messageSignature"),
        "{err}"
    );
}
