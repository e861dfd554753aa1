//! Reading revocations: the layers of the image's `.att` tag and its bundle
//! referrers, each bounded at [`signing::MAX_LAYERS_PER_TAG`], the statements of
//! the revocation type among them, verified with the policy's revokers.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use imprint_schema::Digest;

use super::{
    REVOCATION_PREDICATE_TYPE, RejectedRevocation, RevocationClaim, RevocationClaims,
    RevocationError, RevocationPredicate, Revocations, VerifiedRevocation,
    check_revocation_statement,
};
use crate::layout;
use crate::policy::{self, Policy};
use crate::registry::{Reference, Registry, RegistryError, at_digest, parse_any_manifest};
use crate::signing::{self, Bundle, Envelope, Statement};
use crate::verify::{Rejection, bundle_statement};

/// A revocation as stored, before it is judged.
pub(super) enum Stored {
    /// A DSSE envelope, a layer of the `.att` tag.
    Envelope(Envelope),
    /// A sigstore bundle's bytes, the layer of a referrer.
    Bundle(Vec<u8>),
}

/// One thing found that is, or says it is, a revocation.
struct Candidate {
    source: String,
    stored: Result<Stored, Rejection>,
}

/// What was found where revocations are kept, and how much was left unread.
#[derive(Default)]
struct Candidates {
    found: Vec<Candidate>,
    unexamined: usize,
}

impl Registry {
    /// The revocations of `image_digest`'s artifacts in `repository`, verified
    /// with `policy`'s revokers ([`Policy::revokers`]): the layers of the image's
    /// `.att` tag and its bundle referrers, at most
    /// [`signing::MAX_LAYERS_PER_TAG`] of each (the rest counted in
    /// [`Revocations::unexamined`]). Statements of other predicate types (the
    /// image's own attestations) are not judged. No profile condition applies.
    ///
    /// A registry that cannot be read is an error, not "no revocations"; a caller
    /// wanting one deadline for the whole wraps it in [`Registry::within_deadline`].
    pub async fn revocations(
        &self,
        repository: &Reference,
        image_digest: &Digest,
        policy: &Policy,
    ) -> Result<Revocations, RegistryError> {
        let candidates = self.revocation_candidates(repository, image_digest).await?;
        let revokers = policy.revoking_policy();
        let mut revocations = Revocations {
            unexamined: candidates.unexamined,
            ..Revocations::default()
        };
        for Candidate { source, stored } in candidates.found {
            let judged = stored
                .map_err(RevocationError::from)
                .and_then(|s| verify_stored(&revokers, image_digest, s));
            match judged {
                Ok((predicate, authority)) => revocations.verified.push(VerifiedRevocation {
                    artifact: predicate.revoked_artifact,
                    image_digest: predicate.image_digest,
                    authority,
                    reason: predicate.reason,
                    source,
                }),
                Err(e) => revocations.rejected.push(RejectedRevocation {
                    source,
                    error: e.to_string(),
                }),
            }
        }
        Ok(revocations)
    }

    /// The revocations of `image_digest`'s artifacts in `repository` as they claim
    /// to be, **not verified**: what `imprint discover` lists. Read as
    /// [`Registry::revocations`] reads them.
    pub async fn revocation_claims(
        &self,
        repository: &Reference,
        image_digest: &Digest,
    ) -> Result<RevocationClaims, RegistryError> {
        let candidates = self.revocation_candidates(repository, image_digest).await?;
        let mut claims = RevocationClaims {
            unexamined: candidates.unexamined,
            ..RevocationClaims::default()
        };
        for Candidate { source, stored } in candidates.found {
            let read = stored
                .map_err(RevocationError::from)
                .and_then(|s| read_unverified(image_digest, s));
            match read {
                Ok(predicate) => claims.claims.push(RevocationClaim {
                    artifact: predicate.revoked_artifact,
                    reason: predicate.reason,
                    source,
                }),
                Err(e) => claims.unreadable.push(RejectedRevocation {
                    source,
                    error: e.to_string(),
                }),
            }
        }
        Ok(claims)
    }

    /// The digest of the image the artifact `artifact` in `repository` is bound
    /// to (its manifest's `subject`), the manifest checked against its digest:
    /// where the artifact's revocations are looked for.
    pub async fn artifact_subject(
        &self,
        repository: &Reference,
        artifact: &Digest,
    ) -> Result<Digest, RegistryError> {
        let at = at_digest(repository, artifact);
        let layout_error = |source| RegistryError::Layout {
            reference: at.whole(),
            source,
        };
        let fetched = (self
            .get_manifest("read", &at, &[layout::MANIFEST_MEDIA_TYPE])
            .await?)
            .ok_or_else(|| {
                layout_error(layout::LayoutError::Manifest(
                    "the registry has no such manifest".into(),
                ))
            })?;
        let manifest = parse_any_manifest(&fetched.bytes, Some(artifact)).map_err(layout_error)?;
        let subject = manifest.subject.ok_or_else(|| {
            layout_error(layout::LayoutError::Manifest(
                "no subject: a profile artifact must name its image".into(),
            ))
        })?;
        Ok(subject.digest)
    }

    /// Everything in the image's `.att` tag and bundle referrers that is, or is
    /// marked as, a revocation.
    async fn revocation_candidates(
        &self,
        repository: &Reference,
        image_digest: &Digest,
    ) -> Result<Candidates, RegistryError> {
        let mut candidates = Candidates::default();
        self.tag_candidates(repository, image_digest, &mut candidates)
            .await?;
        self.bundle_candidates(repository, image_digest, &mut candidates)
            .await?;
        Ok(candidates)
    }

    /// The `.att` tag's DSSE layers whose annotation or statement names the
    /// revocation type. A tag that is not a manifest is a rejected candidate (a
    /// writer of the repository could have put anything there), not an error.
    async fn tag_candidates(
        &self,
        repository: &Reference,
        image_digest: &Digest,
        candidates: &mut Candidates,
    ) -> Result<(), RegistryError> {
        let tag = signing::attestation_tag(image_digest);
        let (tag, layers, skipped) = match self.tag_layers(repository, tag.clone()).await {
            Ok(Some(found)) => found,
            Ok(None) => return Ok(()),
            Err(e @ RegistryError::Layout { .. }) => {
                candidates.found.push(Candidate {
                    source: format!("tag {tag}"),
                    stored: Err(e.into()),
                });
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        candidates.unexamined += skipped;
        for (i, layer) in layers.iter().enumerate() {
            if layer.media_type != signing::DSSE_MEDIA_TYPE {
                continue;
            }
            let blob = self
                .pull_checked_blob(repository, layer, signing::MAX_SIGNED_BLOB_BYTES)
                .await;
            let annotated = (layer.annotations.get(signing::PREDICATE_TYPE_ANNOTATION))
                .is_some_and(|t| t == REVOCATION_PREDICATE_TYPE);
            let stored = match blob {
                Err(e) => Err(Rejection::from(e)),
                Ok(bytes) => match Envelope::parse(&bytes) {
                    Ok(envelope) if annotated || states_revocation(&envelope) => {
                        Ok(Stored::Envelope(envelope))
                    }
                    Ok(_) => continue,
                    Err(e) => Err(e.into()),
                },
            };
            // An unreadable layer counts only when it is marked as a revocation.
            if stored.is_err() && !annotated {
                continue;
            }
            let source = format!("tag {tag} layer {i}");
            candidates.found.push(Candidate { source, stored });
        }
        Ok(())
    }

    /// The image's bundle referrers not marked as another predicate type, at most
    /// [`signing::MAX_LAYERS_PER_TAG`] of them.
    async fn bundle_candidates(
        &self,
        repository: &Reference,
        image_digest: &Digest,
        candidates: &mut Candidates,
    ) -> Result<(), RegistryError> {
        let listed = self.referrers(repository, image_digest).await?;
        let mut seen = BTreeSet::new();
        let mut examined = 0;
        for entry in &listed.manifests {
            if !seen.insert(entry.digest.clone())
                || !marked_as_revocation_bundle(entry.artifact_type.as_deref(), &entry.annotations)
            {
                continue;
            }
            if examined == signing::MAX_LAYERS_PER_TAG {
                candidates.unexamined += 1;
                continue;
            }
            examined += 1;
            let stored = match self
                .revocation_bundle(repository, image_digest, &entry.digest)
                .await
            {
                Ok(Some(bytes)) => Ok(Stored::Bundle(bytes)),
                Ok(None) => continue,
                Err(e) => Err(e),
            };
            let source = format!("referrer {}", entry.digest);
            candidates.found.push(Candidate { source, stored });
        }
        Ok(())
    }

    /// The bundle of the referrer `digest`: its manifest checked (digest, subject
    /// the image, one bundle layer) and its layer read; `None` when it is gone or
    /// is no revocation bundle.
    async fn revocation_bundle(
        &self,
        repository: &Reference,
        image_digest: &Digest,
        digest: &Digest,
    ) -> Result<Option<Vec<u8>>, Rejection> {
        let at = at_digest(repository, digest);
        let accept = [layout::MANIFEST_MEDIA_TYPE];
        let Some(fetched) = self.get_manifest("fetch referrer", &at, &accept).await? else {
            return Ok(None);
        };
        let manifest = parse_any_manifest(&fetched.bytes, Some(digest)).map_err(|source| {
            RegistryError::Layout {
                reference: at.whole(),
                source,
            }
        })?;
        if !marked_as_revocation_bundle(manifest.artifact_type.as_deref(), &manifest.annotations) {
            return Ok(None);
        }
        let named = manifest.subject.as_ref().map(|s| &s.digest);
        if named != Some(image_digest) {
            return Err(Rejection::OtherSubject {
                named: named.cloned(),
                expected: image_digest.clone(),
            });
        }
        let [layer] = manifest.layers.as_slice() else {
            return Err(Rejection::LayerCount(manifest.layers.len()));
        };
        if layer.media_type != signing::BUNDLE_MEDIA_TYPE {
            return Err(Rejection::MediaType {
                found: layer.media_type.clone(),
                expected: signing::BUNDLE_MEDIA_TYPE,
            });
        }
        let bytes = self
            .pull_checked_blob(repository, layer, signing::MAX_SIGNED_BLOB_BYTES)
            .await?;
        Ok(Some(bytes))
    }
}

/// Whether a referrer (as listed, or its manifest) is a bundle not marked as
/// another predicate type. The marks are claims, so they only decide what is
/// read; what counts is the verified statement.
fn marked_as_revocation_bundle(
    artifact_type: Option<&str>,
    annotations: &BTreeMap<String, String>,
) -> bool {
    artifact_type == Some(signing::BUNDLE_MEDIA_TYPE)
        && (annotations.get(signing::BUNDLE_PREDICATE_TYPE_ANNOTATION))
            .is_none_or(|t| t == REVOCATION_PREDICATE_TYPE)
}

/// Whether an (unverified) envelope's statement names the revocation type.
fn states_revocation(envelope: &Envelope) -> bool {
    (STANDARD.decode(&envelope.payload).ok())
        .and_then(|p| serde_json::from_slice::<serde_json::Value>(&p).ok())
        .is_some_and(|s| s["predicateType"] == REVOCATION_PREDICATE_TYPE)
}

/// Verifies a stored revocation with the revokers (`revokers` is the policy
/// restricted to them) and checks its statement. Returns it with the authority.
pub(super) fn verify_stored(
    revokers: &Policy,
    image_digest: &Digest,
    stored: Stored,
) -> Result<(RevocationPredicate, String), RevocationError> {
    let (statement, authority) = match stored {
        Stored::Envelope(envelope) => policy::check_envelope(revokers, image_digest, &envelope)?,
        Stored::Bundle(bytes) => bundle_statement(revokers, image_digest, &bytes)?,
    };
    let predicate = check_revocation_statement(&statement, image_digest)?;
    Ok((predicate, authority))
}

/// Reads a stored revocation's statement without verifying any signature.
pub(super) fn read_unverified(
    image_digest: &Digest,
    stored: Stored,
) -> Result<RevocationPredicate, RevocationError> {
    let envelope = match stored {
        Stored::Envelope(envelope) => envelope,
        Stored::Bundle(bytes) => (Bundle::parse(&bytes)?.dsse_envelope)
            .ok_or(RevocationError::Rejected(Rejection::MessageSignature))?,
    };
    let payload = STANDARD
        .decode(&envelope.payload)
        .map_err(|source| Rejection::NotBase64 {
            what: "DSSE payload",
            source,
        })?;
    let statement = Statement::parse_for(&payload, image_digest)?;
    check_revocation_statement(&statement, image_digest)
}
