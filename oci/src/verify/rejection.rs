//! Why one signature or attestation found in a registry was not accepted.

use imprint_schema::Digest;

use crate::bundle_verify::BundleError;
use crate::policy::ConditionFailed;
use crate::registry::RegistryError;
use crate::signing::SignatureError;

/// Why a signature or attestation did not verify, or did not meet the policy.
/// A verdict's findings carry its text.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    /// Reading it from the registry failed, or what was read is not what its
    /// descriptor names.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A simple-signing layer without cosign's signature annotation.
    #[error("no signature annotation")]
    NoSignatureAnnotation,
    /// A signature annotation larger than any real signature.
    #[error("signature annotation of {size} bytes, more than the limit of {limit}")]
    AnnotationTooLarge {
        /// Its size.
        size: usize,
        /// The bound.
        limit: usize,
    },
    /// Something that must be base64 is not.
    #[error("{what} is not base64: {source}")]
    NotBase64 {
        /// What it is.
        what: &'static str,
        /// The decoder's complaint.
        source: base64::DecodeError,
    },
    /// A layer of another media type than its form requires.
    #[error("media type {found:?} is not {expected}")]
    MediaType {
        /// The layer's.
        found: String,
        /// The form's.
        expected: &'static str,
    },
    /// The signature, envelope or statement does not verify.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// The statement verified but fails a condition of the policy.
    #[error(transparent)]
    Condition(#[from] ConditionFailed),
    /// The sigstore bundle does not verify.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// A referrer whose subject is not the artifact verified.
    #[error("its subject is {}, not {expected}", named.as_ref().map_or("missing".to_string(), |d| d.to_string()))]
    OtherSubject {
        /// The subject it names.
        named: Option<Digest>,
        /// The artifact.
        expected: Digest,
    },
    /// A bundle referrer with other than one layer.
    #[error("a bundle referrer has one layer, this one has {0}")]
    LayerCount(usize),
    /// A bundle holding a message signature, which imprint does not write.
    #[error("the bundle holds a message signature, not a DSSE envelope")]
    MessageSignature,
    /// A verified DSSE payload that is not an in-toto statement.
    #[error("DSSE payloadType is {0:?}, not {expected:?}", expected = crate::signing::IN_TOTO_PAYLOAD_TYPE)]
    PayloadType(String),
    /// A bundle listed as a signature whose statement is something else.
    #[error("listed as a signature, but its predicateType is {0:?}")]
    NotASignature(String),
    /// A keyless bundle, and a policy with no keyless identity.
    #[error("the bundle is keyless (a certificate) and the policy names no keyless identity")]
    NoKeylessIdentity,
    /// A keyless identity whose subject expression does not compile.
    #[error("authority {authority}: {source}")]
    IdentityPattern {
        /// The authority's name.
        authority: String,
        /// The compiler's complaint.
        source: regex::Error,
    },
    /// No keyless identity accepts the bundle: each one's reason.
    #[error("{}", .0.join("; "))]
    NoIdentityAccepts(Vec<String>),
    /// A tag holding more layers than are examined.
    #[error("{skipped} more layers beyond the limit of {limit} were not examined")]
    TooManyLayers {
        /// How many were left.
        skipped: usize,
        /// How many are examined.
        limit: usize,
    },
}
