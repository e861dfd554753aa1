//! What cosign writes and reads, as pure data: simple-signing payloads, DSSE
//! envelopes around in-toto statements, key-based sigstore bundles v0.3, and the
//! manifests that carry them (`sha256-<hex>.sig` / `.att` tags, bundle referrers).
//!
//! Nothing here does I/O; [`Registry::verify`](crate::Registry::verify) fetches and
//! [`crate::policy`] decides.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use imprint_schema::Digest;
use serde::{Deserialize, Serialize};

use crate::keys::{KeyError, SigningKey, VerifyingKey};
use crate::layout::{self, Descriptor, Manifest};

/// Media type of cosign's simple-signing payload layer.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Layer annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// Media type of a DSSE envelope layer in a cosign `.att` manifest.
pub const DSSE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// Layer annotation naming an attestation's predicate type.
pub const PREDICATE_TYPE_ANNOTATION: &str = "predicateType";
/// DSSE payload type of an in-toto statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The predicate type of imprint's learning attestation.
pub const PROFILE_PREDICATE_TYPE: &str = "https://imprint.dev/attestation/profile/v1";
/// The predicate type cosign v3 signs images with, inside a bundle.
pub const COSIGN_SIGN_PREDICATE_TYPE: &str = "https://sigstore.dev/cosign/sign/v1";
/// Media type (and artifact type) of a sigstore bundle v0.3.
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// Annotation on a bundle referrer: `dsse-envelope` or `message-signature`.
pub const BUNDLE_CONTENT_ANNOTATION: &str = "dev.sigstore.bundle.content";
/// Annotation on a bundle referrer: the predicate type inside.
pub const BUNDLE_PREDICATE_TYPE_ANNOTATION: &str = "dev.sigstore.bundle.predicateType";
/// The `type` of a cosign simple-signing payload.
pub const SIMPLE_SIGNING_TYPE: &str = "cosign container image signature";
/// Media type of the image config cosign puts in signature manifests.
pub const IMAGE_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";

/// Largest payload, envelope or bundle read (they are small; a big one is hostile).
pub const MAX_SIGNED_BLOB_BYTES: u64 = 256 << 10;
/// Largest signature annotation (a DER ECDSA signature is ~100 base64 bytes).
pub const MAX_SIGNATURE_ANNOTATION_BYTES: usize = 8 << 10;
/// Most signature or attestation layers read from one tag.
pub const MAX_LAYERS_PER_TAG: usize = 256;

/// Why a signature or attestation does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Malformed content.
    #[error("{0}")]
    Malformed(String),
    /// The signature is over something else than the artifact.
    #[error("signed for {signed}, not for {expected}")]
    OtherDigest {
        /// What the payload names.
        signed: String,
        /// The artifact.
        expected: String,
    },
    /// No key accepts the signature.
    #[error("no trusted key verifies the signature ({0})")]
    NoKey(String),
    /// Signed JSON in which one object names a key twice: parsers differ on
    /// which value counts (the first, the last, or an error), so none does.
    #[error("{what}: {detail} (a repeated key is refused: parsers differ on which one counts)")]
    DuplicateKey {
        /// What was read: `bundle` or `statement`.
        what: &'static str,
        /// The key, with line and column.
        detail: String,
    },
    /// A bundle holding more than one content: sigstore's verifier reads one of
    /// them, and which one is not something the reader of the statement could know.
    #[error(
        "the bundle holds {} where it may hold one: the signature check and the statement could come from different contents",
        .0.join(" and ")
    )]
    AmbiguousBundle(Vec<String>),
}

/// The tag cosign stores signatures of `digest` under.
pub fn signature_tag(digest: &Digest) -> String {
    format!("{}.sig", digest.tag_form())
}

/// The tag cosign stores attestations of `digest` under.
pub fn attestation_tag(digest: &Digest) -> String {
    format!("{}.att", digest.tag_form())
}

/// cosign's simple-signing payload for `repository@digest`. cosign writes the
/// repository (no tag or digest) as `docker-reference`.
pub fn simple_signing_payload(repository: &str, digest: &Digest) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "critical": {
            "identity": {"docker-reference": repository},
            "image": {"docker-manifest-digest": digest},
            "type": SIMPLE_SIGNING_TYPE,
        },
        "optional": null,
    }))
    .expect("payloads serialize")
}

/// The one value among an object's keys equal to `name` ignoring ASCII case, as
/// Go's `encoding/json` (and so cosign) reads it; two differing values are refused.
fn field_ignoring_case<'a>(
    object: &'a serde_json::Map<String, serde_json::Value>,
    name: &str,
    path: &str,
) -> Result<Option<&'a serde_json::Value>, SignatureError> {
    let mut found: Option<&serde_json::Value> = None;
    for (k, v) in object {
        if k.eq_ignore_ascii_case(name) {
            if found.is_some_and(|f| f != v) {
                return Err(SignatureError::Malformed(format!(
                    "payload: {path}.{name} appears twice with different values"
                )));
            }
            found = Some(v);
        }
    }
    Ok(found)
}

/// Checks that a simple-signing payload names `digest`; returns the
/// `docker-reference` it names. Keys match ignoring case, as in cosign (so the
/// legacy `Docker-manifest-digest` is read).
pub fn check_simple_signing_payload(
    payload: &[u8],
    digest: &Digest,
) -> Result<String, SignatureError> {
    let value: serde_json::Value = serde_json::from_slice(payload)
        .map_err(|e| SignatureError::Malformed(format!("payload is not JSON: {e}")))?;
    let object = |v: Option<&serde_json::Value>, path: &str| {
        v.and_then(|v| v.as_object()).cloned().ok_or_else(|| {
            SignatureError::Malformed(format!("payload: {path} is missing or not an object"))
        })
    };
    let root = object(Some(&value), "payload")?;
    let critical = object(field_ignoring_case(&root, "critical", "")?, "critical")?;
    let kind = field_ignoring_case(&critical, "type", "critical")?.and_then(|v| v.as_str());
    if kind != Some(SIMPLE_SIGNING_TYPE) {
        return Err(SignatureError::Malformed(format!(
            "payload: critical.type is {kind:?}, not {SIMPLE_SIGNING_TYPE:?}"
        )));
    }
    let image = object(
        field_ignoring_case(&critical, "image", "critical")?,
        "critical.image",
    )?;
    let signed = field_ignoring_case(&image, "docker-manifest-digest", "critical.image")?
        .and_then(|v| v.as_str())
        .ok_or_else(|| {
            SignatureError::Malformed(
                "payload: critical.image.docker-manifest-digest is missing".into(),
            )
        })?;
    if signed != digest.as_str() {
        return Err(SignatureError::OtherDigest {
            signed: signed.to_string(),
            expected: digest.to_string(),
        });
    }
    let identity = field_ignoring_case(&critical, "identity", "critical")?
        .and_then(|v| v.as_object())
        .and_then(|o| field_ignoring_case(o, "docker-reference", "critical.identity").ok()?)
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string();
    Ok(identity)
}

/// DSSE's pre-authentication encoding: what is actually signed.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// A DSSE envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// The payload's type.
    pub payload_type: String,
    /// The payload, base64.
    pub payload: String,
    /// Signatures over the PAE.
    pub signatures: Vec<EnvelopeSignature>,
}

/// One DSSE signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// Key hint (may be empty).
    #[serde(default)]
    pub keyid: String,
    /// The signature, base64.
    pub sig: String,
}

impl Envelope {
    /// Signs `payload` as `payload_type`.
    pub fn sign(payload_type: &str, payload: &[u8], key: &SigningKey) -> Envelope {
        Envelope {
            payload_type: payload_type.to_string(),
            payload: STANDARD.encode(payload),
            signatures: vec![EnvelopeSignature {
                keyid: String::new(),
                sig: STANDARD.encode(key.sign(&pae(payload_type, payload))),
            }],
        }
    }

    /// Parses one, bounded.
    pub fn parse(bytes: &[u8]) -> Result<Envelope, SignatureError> {
        if bytes.len() as u64 > MAX_SIGNED_BLOB_BYTES {
            return Err(SignatureError::Malformed(format!(
                "DSSE envelope is larger than {MAX_SIGNED_BLOB_BYTES} bytes"
            )));
        }
        serde_json::from_slice(bytes)
            .map_err(|e| SignatureError::Malformed(format!("not a DSSE envelope: {e}")))
    }

    /// The payload, when one of the signatures verifies with one of `keys`;
    /// returns it with the index of the key.
    pub fn verify(&self, keys: &[VerifyingKey]) -> Result<(Vec<u8>, usize), SignatureError> {
        let payload = STANDARD
            .decode(&self.payload)
            .map_err(|e| SignatureError::Malformed(format!("DSSE payload is not base64: {e}")))?;
        if self.signatures.is_empty() {
            return Err(SignatureError::Malformed(
                "DSSE envelope has no signature".into(),
            ));
        }
        let message = pae(&self.payload_type, &payload);
        let mut last = KeyError::BadSignature;
        for signature in &self.signatures {
            let sig = STANDARD.decode(&signature.sig).map_err(|e| {
                SignatureError::Malformed(format!("DSSE signature is not base64: {e}"))
            })?;
            for (i, key) in keys.iter().enumerate() {
                match key.verify(&message, &sig) {
                    Ok(()) => return Ok((payload, i)),
                    Err(e) => last = e,
                }
            }
        }
        Err(SignatureError::NoKey(last.to_string()))
    }
}

/// An in-toto Statement v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Statement {
    /// [`STATEMENT_TYPE`].
    #[serde(rename = "_type")]
    pub statement_type: String,
    /// What the statement is about.
    pub subject: Vec<Subject>,
    /// The predicate's type.
    pub predicate_type: String,
    /// The predicate.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub predicate: serde_json::Value,
}

/// A statement's subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// A name (the repository).
    #[serde(default)]
    pub name: String,
    /// Digests by algorithm (`sha256` → hex).
    pub digest: BTreeMap<String, String>,
}

impl Statement {
    /// A statement about `repository@digest`.
    pub fn new(
        repository: &str,
        digest: &Digest,
        predicate_type: &str,
        predicate: serde_json::Value,
    ) -> Statement {
        let (algorithm, hex) = (digest.algorithm().name(), digest.hex());
        Statement {
            statement_type: STATEMENT_TYPE.to_string(),
            subject: vec![Subject {
                name: repository.to_string(),
                digest: BTreeMap::from([(algorithm.to_string(), hex.to_string())]),
            }],
            predicate_type: predicate_type.to_string(),
            predicate,
        }
    }

    /// Parses a statement and checks that it is about `digest`.
    /// A key repeated in any object is refused: the verifier's check of the
    /// subject and the policy's reading of the predicate must see one value.
    pub fn parse_for(payload: &[u8], digest: &Digest) -> Result<Statement, SignatureError> {
        let statement: Statement = serde_json::from_slice(payload)
            .map_err(|e| SignatureError::Malformed(format!("not an in-toto statement: {e}")))?;
        unique_keys::check(payload).map_err(|e| SignatureError::DuplicateKey {
            what: "statement",
            detail: e.to_string(),
        })?;
        if statement.statement_type != STATEMENT_TYPE
            && statement.statement_type != "https://in-toto.io/Statement/v0.1"
        {
            return Err(SignatureError::Malformed(format!(
                "statement _type is {:?}, not {STATEMENT_TYPE:?}",
                statement.statement_type
            )));
        }
        let (algorithm, hex) = (digest.algorithm().name(), digest.hex());
        let about = statement
            .subject
            .iter()
            .any(|s| s.digest.get(algorithm).is_some_and(|h| h == hex));
        if !about {
            let named: Vec<String> = statement
                .subject
                .iter()
                .flat_map(|s| s.digest.iter().map(|(a, h)| format!("{a}:{h}")))
                .collect();
            return Err(SignatureError::OtherDigest {
                signed: if named.is_empty() {
                    "no subject".to_string()
                } else {
                    named.join(", ")
                },
                expected: digest.to_string(),
            });
        }
        Ok(statement)
    }
}

/// The predicate of imprint's learning attestation: how a profile was learned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfilePredicate {
    /// The image digest the profile describes.
    pub image_digest: Digest,
    /// The digest of the artifact's canonical profile layer.
    pub profile_layer_digest: Digest,
    /// The learning window.
    pub learning: LearningWindow,
    /// Who learned it.
    pub builder: Builder,
    /// The profile's place in the order of the image digest's profiles: the
    /// signer's choice, compared before the creation time. Attestations made
    /// before versions existed read as 0.
    #[serde(default)]
    pub version: u64,
}

/// When and how completely a profile was learned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LearningWindow {
    /// Start (RFC 3339).
    pub start: Option<jiff::Timestamp>,
    /// End (RFC 3339).
    pub end: Option<jiff::Timestamp>,
    /// `complete` or `partial`.
    pub completeness: String,
    /// Containers observed.
    #[serde(default)]
    pub observed_containers: u64,
}

/// The builder: the CI run that learned the profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Builder {
    /// A URI naming the run.
    pub id: String,
}

impl ProfilePredicate {
    /// The predicate for a pulled profile artifact, at `version`.
    pub fn for_artifact(
        manifest: &Manifest,
        profile: &imprint_schema::Profile,
        builder_id: &str,
        version: u64,
    ) -> ProfilePredicate {
        let layer = manifest
            .layers
            .first()
            .map(|l| l.digest.clone())
            // Layer 0 is the canonical profile, so this is its digest too.
            .unwrap_or_else(|| imprint_schema::digest(profile));
        let completeness = serde_json::to_value(profile.learning.completeness)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        ProfilePredicate {
            image_digest: profile.image.digest.clone(),
            profile_layer_digest: layer,
            learning: LearningWindow {
                start: profile.learning.start,
                end: profile.learning.end,
                completeness,
                observed_containers: profile.learning.observed_containers,
            },
            builder: Builder {
                id: builder_id.to_string(),
            },
            version,
        }
    }
}

/// The content keys of a bundle, in the JSON name and the proto field name:
/// protojson readers (sigstore-go, so cosign) accept both spellings.
const BUNDLE_CONTENT_KEYS: [&str; 4] = [
    "dsseEnvelope",
    "dsse_envelope",
    "messageSignature",
    "message_signature",
];

/// Refuses a bundle two parsers could read differently: one with a key repeated
/// in any object, or with more than one content (a DSSE envelope and a message
/// signature). sigstore's verifier takes the first content it meets and imprint
/// reads the envelope, so such a bundle could pass a check of one and be used
/// for the other.
pub fn check_bundle_unambiguous(bytes: &[u8]) -> Result<(), SignatureError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| SignatureError::Malformed(format!("not a sigstore bundle: {e}")))?;
    // Well-formed JSON now, so the only complaint left is a repeated key.
    unique_keys::check(bytes).map_err(|e| SignatureError::DuplicateKey {
        what: "bundle",
        detail: e.to_string(),
    })?;
    // A null content counts too: readers differ on whether it is absent.
    let found: Vec<String> = BUNDLE_CONTENT_KEYS
        .iter()
        .filter(|key| value.get(**key).is_some())
        .map(|key| key.to_string())
        .collect();
    if found.len() > 1 {
        return Err(SignatureError::AmbiguousBundle(found));
    }
    Ok(())
}

/// A sigstore bundle v0.3 (the parts imprint writes and reads).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    /// [`BUNDLE_MEDIA_TYPE`] (or an older bundle media type, refused on reading).
    pub media_type: String,
    /// Key hint or certificate, and transparency log entries.
    pub verification_material: serde_json::Value,
    /// A DSSE envelope (attestations, and cosign v3 signatures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dsse_envelope: Option<Envelope>,
    /// A plain signature over a digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_signature: Option<serde_json::Value>,
}

impl Bundle {
    /// A key-based bundle around `envelope`, with no transparency log entry (the
    /// key is the trust, as with `cosign sign --key --tlog-upload=false`).
    pub fn for_envelope(envelope: Envelope, key: &VerifyingKey) -> Bundle {
        Bundle {
            media_type: BUNDLE_MEDIA_TYPE.to_string(),
            verification_material: serde_json::json!({
                "publicKey": {"hint": key.hint()},
                "tlogEntries": [],
            }),
            dsse_envelope: Some(envelope),
            message_signature: None,
        }
    }

    /// Parses one, bounded, and checks its media type and that it holds exactly
    /// one content, read the same by any parser ([`check_bundle_unambiguous`]).
    pub fn parse(bytes: &[u8]) -> Result<Bundle, SignatureError> {
        if bytes.len() as u64 > MAX_SIGNED_BLOB_BYTES {
            return Err(SignatureError::Malformed(format!(
                "bundle is larger than {MAX_SIGNED_BLOB_BYTES} bytes"
            )));
        }
        check_bundle_unambiguous(bytes)?;
        let bundle: Bundle = serde_json::from_slice(bytes)
            .map_err(|e| SignatureError::Malformed(format!("not a sigstore bundle: {e}")))?;
        if bundle.media_type != BUNDLE_MEDIA_TYPE {
            return Err(SignatureError::Malformed(format!(
                "bundle media type {:?} is not {BUNDLE_MEDIA_TYPE:?}",
                bundle.media_type
            )));
        }
        if bundle.dsse_envelope.is_none() && bundle.message_signature.is_none() {
            return Err(SignatureError::Malformed(
                "the bundle holds neither a DSSE envelope nor a message signature".into(),
            ));
        }
        Ok(bundle)
    }
}

/// cosign's image config for a signature manifest (verifiers ignore it; registries
/// and tools that list images expect a config).
pub fn signature_config(layers: &[Descriptor]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "",
        "config": {},
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {
            "type": "layers",
            "diff_ids": layers.iter().map(|l| l.digest.clone()).collect::<Vec<_>>(),
        },
    }))
    .expect("configs serialize")
}

/// A cosign `.sig` / `.att` manifest over `layers`, with its config blob.
pub fn tag_manifest(layers: Vec<Descriptor>) -> (Vec<u8>, Vec<u8>) {
    let config = signature_config(&layers);
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(layout::MANIFEST_MEDIA_TYPE.to_string()),
        artifact_type: None,
        config: Descriptor::of(IMAGE_CONFIG_MEDIA_TYPE, &config),
        layers,
        subject: None,
        annotations: BTreeMap::new(),
    };
    (
        serde_json::to_vec(&manifest).expect("manifests serialize"),
        config,
    )
}

/// The layers of an existing `.sig`/`.att` manifest with `layer` added, unless an
/// identical layer (same digest and annotations) is already there.
pub fn append_layer(existing: Option<&Manifest>, layer: Descriptor) -> Vec<Descriptor> {
    let mut layers: Vec<Descriptor> = existing.map(|m| m.layers.clone()).unwrap_or_default();
    if !layers
        .iter()
        .any(|l| l.digest == layer.digest && l.annotations == layer.annotations)
    {
        layers.push(layer);
    }
    layers
}

/// A bundle referrer manifest: the bundle as its one layer, `subject` the artifact.
pub fn bundle_manifest(
    bundle_bytes: &[u8],
    subject: &Descriptor,
    predicate_type: &str,
    created: jiff::Timestamp,
) -> Vec<u8> {
    let subject = Descriptor {
        media_type: subject.media_type.clone(),
        digest: subject.digest.clone(),
        size: subject.size,
        artifact_type: None,
        annotations: BTreeMap::new(),
        platform: None,
    };
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(layout::MANIFEST_MEDIA_TYPE.to_string()),
        artifact_type: Some(BUNDLE_MEDIA_TYPE.to_string()),
        config: Descriptor::of(crate::EMPTY_CONFIG_MEDIA_TYPE, layout::EMPTY_CONFIG),
        layers: vec![Descriptor::of(BUNDLE_MEDIA_TYPE, bundle_bytes)],
        subject: Some(subject),
        annotations: BTreeMap::from([
            (
                BUNDLE_CONTENT_ANNOTATION.to_string(),
                "dsse-envelope".to_string(),
            ),
            (
                BUNDLE_PREDICATE_TYPE_ANNOTATION.to_string(),
                predicate_type.to_string(),
            ),
            (
                layout::ANNOTATION_CREATED.to_string(),
                created.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            ),
        ]),
    };
    serde_json::to_vec(&manifest).expect("manifests serialize")
}

mod unique_keys;

#[cfg(test)]
mod tests;
