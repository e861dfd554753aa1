//! Signed revocation of a profile artifact.
//!
//! A revocation is an in-toto statement whose subject is the **image digest** (so it
//! is found from the image, as profiles are) and whose predicate names the revoked
//! artifact. It is signed as a DSSE envelope and stored as cosign stores any
//! attestation of that image: a layer of the image's `sha256-<hex>.att` tag in the
//! profiles repository, or a sigstore bundle referrer of the image.
//!
//! [`Registry::revoke`](crate::Registry::revoke) writes one;
//! [`Registry::revocations`](crate::Registry::revocations) reads and verifies them
//! with the policy's revoking authorities
//! ([`Policy::revokers`](crate::policy::Policy::revokers));
//! [`Registry::revocation_claims`](crate::Registry::revocation_claims) lists them
//! unverified. The profile conditions (completeness, learning duration) never apply.

use imprint_schema::Digest;
use serde::{Deserialize, Serialize};

use crate::signing::Statement;
use crate::verify::Rejection;

mod read;

/// The predicate type of a revocation.
pub const REVOCATION_PREDICATE_TYPE: &str = "https://imprint.dev/attestation/revocation/v1";

/// The predicate of a revocation: which artifact, of which image, is revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RevocationPredicate {
    /// The profile artifact (manifest digest) that must no longer be enforced.
    pub revoked_artifact: Digest,
    /// The image digest the artifact describes: the statement's subject.
    pub image_digest: Digest,
    /// Why, for people (a compromised key, a wrong profile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Why a statement found where revocations are kept is not an accepted revocation.
#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    /// Reading, parsing or verifying the envelope or bundle failed.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// A statement of another predicate type (annotated as a revocation).
    #[error("predicateType is {0:?}, not {REVOCATION_PREDICATE_TYPE:?}")]
    NotARevocation(String),
    /// The predicate is not a revocation predicate.
    #[error("the revocation predicate does not parse: {0}")]
    Predicate(#[source] serde_json::Error),
    /// The predicate names another image than the statement is about: it was
    /// made for another image's artifact, and is refused rather than applied here.
    #[error("the predicate's imageDigest is {named}, but the statement's subject is {subject}")]
    OtherImage {
        /// The predicate's `imageDigest`.
        named: Digest,
        /// The image digest the statement was read for.
        subject: Digest,
    },
}

impl From<crate::signing::SignatureError> for RevocationError {
    fn from(e: crate::signing::SignatureError) -> Self {
        RevocationError::Rejected(e.into())
    }
}

/// Checks that `statement`, already parsed for `image_digest` (its subject, see
/// [`Statement::parse_for`]), is a revocation of an artifact of that image, and
/// returns its predicate.
pub fn check_revocation_statement(
    statement: &Statement,
    image_digest: &Digest,
) -> Result<RevocationPredicate, RevocationError> {
    if statement.predicate_type != REVOCATION_PREDICATE_TYPE {
        return Err(RevocationError::NotARevocation(
            statement.predicate_type.clone(),
        ));
    }
    let predicate: RevocationPredicate =
        serde_json::from_value(statement.predicate.clone()).map_err(RevocationError::Predicate)?;
    if predicate.image_digest != *image_digest {
        return Err(RevocationError::OtherImage {
            named: predicate.image_digest,
            subject: image_digest.clone(),
        });
    }
    Ok(predicate)
}

/// The statement of a revocation of `predicate.revoked_artifact`, about
/// `repository@predicate.image_digest` (`repository` as `registry/name`).
pub fn revocation_statement(repository: &str, predicate: &RevocationPredicate) -> Statement {
    Statement::new(
        repository,
        &predicate.image_digest,
        REVOCATION_PREDICATE_TYPE,
        serde_json::to_value(predicate).expect("predicates serialize"),
    )
}

/// A revocation verified by a revoking authority of the policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedRevocation {
    /// The revoked profile artifact.
    pub artifact: Digest,
    /// The image digest it describes.
    pub image_digest: Digest,
    /// The authority that signed the revocation.
    pub authority: String,
    /// The reason it gives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Where it was found (`tag sha256-….att layer 1`, `referrer sha256:…`).
    pub source: String,
}

/// Something where revocations are kept that claims to be one and is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectedRevocation {
    /// Where it was found.
    pub source: String,
    /// Why it is not accepted.
    pub error: String,
}

/// The revocations of an image digest's artifacts, read and judged under a policy.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Revocations {
    /// Revocations signed by a revoking authority of the policy.
    pub verified: Vec<VerifiedRevocation>,
    /// Revocations that did not verify (an untrusted signer, another image), with why.
    pub rejected: Vec<RejectedRevocation>,
    /// Layers of the `.att` tag and bundle referrers beyond the examination bound
    /// ([`crate::signing::MAX_LAYERS_PER_TAG`] each), not read. Not zero is an
    /// alert: a genuine revocation may be among them.
    pub unexamined: usize,
}

impl Revocations {
    /// The first verified revocation of `artifact`, if it is revoked.
    pub fn revoking(&self, artifact: &Digest) -> Option<&VerifiedRevocation> {
        self.verified.iter().find(|r| r.artifact == *artifact)
    }
}

/// A revocation as it claims to be, not verified (`imprint discover` has no policy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevocationClaim {
    /// The artifact it claims to revoke.
    pub artifact: Digest,
    /// The reason it gives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Where it was found.
    pub source: String,
}

/// The revocation claims found for an image digest, unverified.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevocationClaims {
    /// Statements of the revocation type about the image.
    pub claims: Vec<RevocationClaim>,
    /// What is marked as a revocation but does not read as one.
    pub unreadable: Vec<RejectedRevocation>,
    /// Not read, past the bound (see [`Revocations::unexamined`]).
    pub unexamined: usize,
}

#[cfg(test)]
mod tests;
