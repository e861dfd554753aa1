//! Writing a signed revocation of a profile artifact (see [`crate::revocation`]).

use super::{Reference, Registry, RegistryError, Written};
use crate::keys::SigningKey;
use crate::revocation::{RevocationPredicate, revocation_statement};

/// What [`Registry::revoke`] wrote.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Revoked {
    /// Where the revocation is (the image's `.att` tag, or a bundle referrer).
    #[serde(flatten)]
    pub written: Written,
    /// What it says.
    pub predicate: RevocationPredicate,
}

impl Registry {
    /// Revokes the profile artifact `artifact` names: pulls it (it must be a
    /// profile artifact, checked whole) to learn its image digest, then writes, in
    /// the artifact's repository, a revocation signed with `key` whose subject is
    /// that image digest: a layer of the image's `.att` tag, or with `bundle` a
    /// sigstore bundle referrer of the image.
    pub async fn revoke(
        &self,
        artifact: &Reference,
        key: &SigningKey,
        reason: Option<String>,
        bundle: bool,
        created: jiff::Timestamp,
    ) -> Result<Revoked, RegistryError> {
        let pulled = self.pull_artifact(artifact).await?;
        // A pulled artifact has a subject, and it is the profile's image.
        let subject = (pulled.manifest.subject.clone()).expect("pulled artifacts have a subject");
        let predicate = RevocationPredicate {
            revoked_artifact: pulled.digest,
            image_digest: subject.digest.clone(),
            reason,
        };
        let repository_name = format!("{}/{}", artifact.registry(), artifact.repository());
        let statement = revocation_statement(&repository_name, &predicate);
        let written = self
            .write_statement(artifact, &subject, &statement, key, bundle, created)
            .await?;
        Ok(Revoked { written, predicate })
    }
}
