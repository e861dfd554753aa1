//! Sigstore bundles checked against an offline `trusted_root.json`: keyless
//! (a Fulcio certificate, its SCT, the Rekor entry and its inclusion proof,
//! checkpoint or signed timestamp, RFC 3161 timestamps) and key-based with a
//! transparency-log entry. The cryptography and the log protocol are the
//! sigstore project's own Rust verifier (`sigstore-verify`); this module maps
//! imprint's trust (an issuer and a subject expression) onto it.

use sigstore_verify::trust_root::TrustedRoot;
use sigstore_verify::types::{Artifact, Bundle, DerPublicKey, Sha256Hash, SignatureContent};
use sigstore_verify::{PublicKeyVerificationPolicy, VerificationPolicy, Verifier};

use imprint_schema::{Digest, DigestAlgorithm};

use crate::keys::VerifyingKey;
use crate::signing::{self, SignatureError};

/// Why a sigstore bundle does not verify.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The bundle or the trusted root is not UTF-8 text.
    #[error("{0} is not UTF-8")]
    NotUtf8(&'static str),
    /// The bundle does not parse as a sigstore bundle.
    #[error("not a sigstore bundle: {0}")]
    NotABundle(String),
    /// The bundle could be read two ways (a repeated key, two contents).
    #[error("{0}")]
    Ambiguous(SignatureError),
    /// The trusted root does not parse, or gives no verifier.
    #[error("trusted root: {0}")]
    TrustedRoot(String),
    /// The signed digest is not SHA-256, the only hash bundles sign here.
    #[error("{0} is not a sha256 digest")]
    NotSha256(Digest),
    /// The key does not parse for the sigstore verifier.
    #[error("the key: {0}")]
    Key(String),
    /// The sigstore verifier refused the bundle.
    #[error("{0}")]
    Refused(String),
    /// The certificate names no subject.
    #[error("the certificate names no subject")]
    NoSubject,
    /// The certificate's subject is not the identity the policy names.
    #[error("certificate subject {identity:?} does not match {pattern:?}")]
    OtherSubject {
        /// The certificate's subject.
        identity: String,
        /// The expression it had to match.
        pattern: String,
    },
}

/// What a bundle is checked against.
pub enum BundleTrust<'a> {
    /// A public key; the bundle's transparency-log entry is verified against
    /// `trusted_root`.
    Key {
        /// The key.
        key: &'a VerifyingKey,
        /// The trusted root JSON.
        trusted_root: &'a [u8],
    },
    /// A keyless identity: a certificate from the root's Fulcio, for `issuer`,
    /// whose subject (SAN) matches `subject`.
    Keyless {
        /// The OIDC issuer.
        issuer: &'a str,
        /// The subject expression.
        subject: &'a regex::Regex,
        /// The trusted root JSON.
        trusted_root: &'a [u8],
    },
}

/// What was signed: the bytes, or their sha256 (`sha256:<hex>`).
pub enum Signed<'a> {
    /// The artifact's bytes.
    Bytes(&'a [u8]),
    /// The artifact's digest.
    Digest(&'a Digest),
}

/// Who signed a verified bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// The certificate's subject, or `key` for key-based bundles.
    pub identity: String,
    /// The certificate's OIDC issuer, when keyless.
    pub issuer: Option<String>,
    /// The DSSE envelope's payload, from the parse the signature was checked
    /// on; `None` for a message signature.
    pub dsse: Option<VerifiedPayload>,
}

/// A DSSE payload as the verifier read and checked it: what a statement is
/// taken from, so that it is the content the signature covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPayload {
    /// The envelope's `payloadType`.
    pub payload_type: String,
    /// The payload, decoded.
    pub payload: Vec<u8>,
}

/// The verified bundle's DSSE payload, if it holds one.
fn verified_payload(bundle: &Bundle) -> Option<VerifiedPayload> {
    match &bundle.content {
        SignatureContent::DsseEnvelope(envelope) => Some(VerifiedPayload {
            payload_type: envelope.payload_type.clone(),
            payload: envelope.payload.as_bytes().to_vec(),
        }),
        _ => None,
    }
}

/// Verifies a bundle (`bundle.sigstore.json`) over `signed` under `trust`. A
/// bundle other parsers could read differently (a repeated key, a DSSE envelope
/// and a message signature) is refused before the verifier sees it.
pub fn verify_bundle(
    bundle_json: &[u8],
    signed: Signed<'_>,
    trust: &BundleTrust<'_>,
) -> Result<Signer, BundleError> {
    signing::check_bundle_unambiguous(bundle_json).map_err(BundleError::Ambiguous)?;
    let text = std::str::from_utf8(bundle_json).map_err(|_| BundleError::NotUtf8("the bundle"))?;
    let bundle = Bundle::from_json(text).map_err(|e| BundleError::NotABundle(e.to_string()))?;
    let root_json = match trust {
        BundleTrust::Key { trusted_root, .. } | BundleTrust::Keyless { trusted_root, .. } => {
            trusted_root
        }
    };
    let root = TrustedRoot::from_json(
        std::str::from_utf8(root_json).map_err(|_| BundleError::NotUtf8("the trusted root"))?,
    )
    .map_err(|e| BundleError::TrustedRoot(e.to_string()))?;
    let verifier = Verifier::new(&root).map_err(|e| BundleError::TrustedRoot(e.to_string()))?;
    let artifact = match signed {
        Signed::Bytes(bytes) => Artifact::from_blob(bytes),
        Signed::Digest(digest) => {
            if digest.algorithm() != DigestAlgorithm::Sha256 {
                return Err(BundleError::NotSha256(digest.clone()));
            }
            let hash = Sha256Hash::from_hex(digest.hex())
                .map_err(|e| BundleError::Refused(format!("{digest}: {e}")))?;
            Artifact::from_digest(hash)
        }
    };
    match trust {
        BundleTrust::Key { key, .. } => {
            let pem = key.to_pem();
            let public =
                DerPublicKey::from_pem(&pem).map_err(|e| BundleError::Key(e.to_string()))?;
            verifier
                .verify_with_key(
                    artifact,
                    &bundle,
                    &public,
                    &PublicKeyVerificationPolicy::default(),
                )
                .map_err(|e| BundleError::Refused(e.to_string()))?;
            Ok(Signer {
                identity: "key".to_string(),
                issuer: None,
                dsse: verified_payload(&bundle),
            })
        }
        BundleTrust::Keyless {
            issuer, subject, ..
        } => {
            let result = verifier
                .verify(
                    artifact,
                    &bundle,
                    &VerificationPolicy::any_identity().require_issuer(*issuer),
                )
                .map_err(|e| BundleError::Refused(e.to_string()))?;
            let identity = result
                .identity()
                .map(|i| i.as_str().to_string())
                .ok_or(BundleError::NoSubject)?;
            if !subject.is_match(&identity) {
                return Err(BundleError::OtherSubject {
                    identity,
                    pattern: subject.as_str().to_string(),
                });
            }
            Ok(Signer {
                identity,
                issuer: result.issuer().map(str::to_string),
                dsse: verified_payload(&bundle),
            })
        }
    }
}
