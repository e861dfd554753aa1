//! Signed revocations, as the resolver keeps them.
//!
//! A revocation is signed by a revoking authority of the policy and names one
//! profile artifact of an image digest (`imprint revoke`; read by
//! `Registry::revocations` from the image's attestations). Every one the
//! resolver verifies is remembered (verified.json), so deleting it from the
//! registry does not bring the profile back. A revoked artifact is never
//! enforced: not from discovery, not from the cache at a restart, and not when
//! Git pins it (status `revoked`). Revoking the newest artifact is one of the
//! explicit acts that let the resolver go back to an older one.

use std::collections::BTreeMap;

use imprint_oci::policy::Policy;
use imprint_oci::{Reference, Registry, VerifiedRevocation};
use imprint_schema::Digest;

/// A revoked artifact, as remembered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RevokedArtifact {
    /// The image digest it describes.
    pub(super) image_digest: Digest,
    /// Who revoked it.
    pub(super) authority: String,
    /// The reason given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) reason: Option<String>,
}

impl RevokedArtifact {
    fn describe(&self, artifact: &Digest) -> String {
        match &self.reason {
            Some(reason) => format!("{artifact} is revoked by {} ({reason})", self.authority),
            None => format!("{artifact} is revoked by {}", self.authority),
        }
    }
}

/// What one lookup learns beside its outcome: the revocations it verified
/// (beside those remembered), and the signature tags and listings it found
/// holding more than is examined (a flood that may hide a signature: an alert).
pub(super) struct Learned<'a> {
    known: &'a BTreeMap<Digest, RevokedArtifact>,
    pub(super) found: BTreeMap<Digest, RevokedArtifact>,
    pub(super) flooded: Vec<String>,
}

impl<'a> Learned<'a> {
    /// A lookup's view, starting from what is remembered.
    pub(super) fn new(known: &'a BTreeMap<Digest, RevokedArtifact>) -> Learned<'a> {
        Learned {
            known,
            found: BTreeMap::new(),
            flooded: Vec::new(),
        }
    }

    /// Reads and verifies the revocations of `image` in `repository`. A place
    /// that cannot say is no reason to forget any: what was verified stays.
    pub(super) async fn read(
        &mut self,
        registry: &Registry,
        repository: &Reference,
        image: &Digest,
        policy: &Policy,
    ) {
        match registry.revocations(repository, image, policy).await {
            Ok(revocations) => {
                if revocations.unexamined > 0 {
                    eprintln!(
                        "imprint-agent: {image}: {} revocation layers or referrers in {}/{} beyond those examined",
                        revocations.unexamined,
                        repository.registry(),
                        repository.repository()
                    );
                }
                for verified in revocations.verified {
                    self.remember(verified);
                }
            }
            Err(e) => eprintln!("imprint-agent: {image}: revocations not read: {e}"),
        }
    }

    fn remember(&mut self, verified: VerifiedRevocation) {
        let VerifiedRevocation {
            artifact,
            image_digest,
            authority,
            reason,
            ..
        } = verified;
        if self.known.contains_key(&artifact) {
            return;
        }
        let revoked = RevokedArtifact {
            image_digest,
            authority,
            reason,
        };
        self.found.entry(artifact).or_insert(revoked);
    }

    /// Why `artifact` is revoked, if it is.
    pub(super) fn revoking(&self, artifact: &Digest) -> Option<String> {
        (self.known.get(artifact))
            .or_else(|| self.found.get(artifact))
            .map(|r| r.describe(artifact))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(name: &str) -> Digest {
        Digest::sha256_of(name.as_bytes())
    }

    #[test]
    fn a_remembered_or_newly_verified_revocation_revokes_and_only_new_ones_are_found() {
        let known = BTreeMap::from([(
            d("old"),
            RevokedArtifact {
                image_digest: d("image"),
                authority: "ci".into(),
                reason: Some("key rotated".into()),
            },
        )]);
        let mut revoked = Learned::new(&known);
        revoked.remember(VerifiedRevocation {
            artifact: d("new"),
            image_digest: d("image"),
            authority: "security".into(),
            reason: None,
            source: "tag sha256-….att layer 0".into(),
        });
        revoked.remember(VerifiedRevocation {
            artifact: d("old"),
            image_digest: d("image"),
            authority: "ci".into(),
            reason: None,
            source: "tag sha256-….att layer 1".into(),
        });
        let old = revoked.revoking(&d("old")).unwrap();
        assert!(old.contains("revoked by ci (key rotated)"), "{old}");
        assert!(revoked.revoking(&d("new")).unwrap().contains("security"));
        assert_eq!(revoked.revoking(&d("other")), None);
        assert_eq!(revoked.found.keys().collect::<Vec<_>>(), [&d("new")]);
    }
}
