//! The version `imprint attest` gives a profile: `--version N`, or one more than
//! the newest version the signing key can verify among the image digest's
//! profile artifacts. The signer decides the order; an unverified listing never
//! does (a registry writer without the key cannot raise or lower it).

use imprint_oci::policy::Policy;
use imprint_oci::{Reference, Registry, RegistryError, SigningKey};
use imprint_schema::Digest;

/// One more than the newest version `key` verifies among the profiles of
/// `image` in `repository` (1 when it verifies none).
pub async fn next_version(
    registry: &Registry,
    repository: &Reference,
    image: &Digest,
    key: &SigningKey,
) -> Result<u64, RegistryError> {
    let policy = Policy::for_key(key.verifying_key(), true);
    let found = registry.discover(repository, image).await?;
    let mut newest: Option<u64> = None;
    for artifact in &found.artifacts {
        let verdict = registry
            .verify(repository, &artifact.digest, &policy)
            .await?;
        if verdict.verified {
            newest = newest.max(Some(verdict.version));
        }
    }
    Ok(newest.map_or(1, |v| v.saturating_add(1)))
}
