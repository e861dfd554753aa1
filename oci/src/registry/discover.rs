//! Discovery: the referrers of a subject, and the profile artifacts among them.

use imprint_schema::Digest;

use super::{Reference, Registry, RegistryError, at_digest};
use crate::layout::{self, Listing, Manifest};

/// What discovery found for a subject.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    /// Profile artifacts whose fetched manifest names the subject, by digest.
    pub artifacts: Vec<Discovered>,
    /// Entries of the referrers list that did not check out, with why.
    pub rejected: Vec<(String, String)>,
}

/// One discovered profile artifact.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Discovered {
    /// The artifact's manifest digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// Its `org.opencontainers.image.created` annotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

impl Registry {
    /// The referrers list of `subject` in `repository`: the referrers API, or the
    /// fallback tag where the registry lacks it. Its fields are claims, to be
    /// checked against each manifest; entries that are not descriptors are set
    /// aside in [`Listing::rejected`].
    pub async fn referrers(
        &self,
        repository: &Reference,
        subject: &Digest,
    ) -> Result<Listing, RegistryError> {
        let subject_ref = at_digest(repository, subject);
        self.client
            .store_auth_if_needed(repository.resolve_registry(), &self.auth)
            .await;
        let listed = self
            .retry(|| self.client.pull_referrers(&subject_ref, None))
            .await
            .map_err(Self::request("list referrers of", &subject_ref))?;
        let value = serde_json::to_value(&listed).unwrap_or_default();
        Listing::parse(value).map_err(|source| RegistryError::Layout {
            reference: subject_ref.whole(),
            source,
        })
    }

    /// Lists the profile artifacts whose subject is `subject` in `repository`,
    /// through the referrers API or the fallback tag. The list's own fields are not
    /// trusted: each entry's manifest is fetched and must be a profile artifact that
    /// names `subject`.
    pub async fn discover(
        &self,
        repository: &Reference,
        subject: &Digest,
    ) -> Result<Discovery, RegistryError> {
        let listed = self.referrers(repository, subject).await?;
        let mut discovery = Discovery {
            rejected: listed.rejected,
            ..Discovery::default()
        };
        let mut seen = std::collections::BTreeSet::new();
        for entry in listed.manifests {
            if !seen.insert(entry.digest.clone()) {
                continue;
            }
            let r = at_digest(repository, &entry.digest);
            let checked = match self
                .get_manifest("fetch referrer", &r, &[layout::MANIFEST_MEDIA_TYPE])
                .await
            {
                Err(e) => Err(e.to_string()),
                Ok(None) => Err("the registry has no such manifest".to_string()),
                // Other referrers (signatures, attestations) are not profiles:
                // skipped, by what their fetched manifest says.
                Ok(Some(fetched))
                    if serde_json::from_slice::<Manifest>(&fetched.bytes).is_ok_and(|m| {
                        m.artifact_type
                            .as_deref()
                            .is_some_and(|t| t != crate::PROFILE_MEDIA_TYPE)
                    }) =>
                {
                    continue;
                }
                Ok(Some(fetched)) => {
                    layout::parse_manifest(&fetched.bytes, Some(&entry.digest), &self.limits)
                        .map_err(|e| e.to_string())
                        .and_then(|m| {
                            let named = m.subject.as_ref().map(|s| &s.digest);
                            if named == Some(subject) {
                                Ok((m, fetched.bytes.len() as u64))
                            } else {
                                Err(format!("its subject is {named:?}, not {subject}"))
                            }
                        })
                }
            };
            match checked {
                Ok((manifest, size)) => discovery.artifacts.push(Discovered {
                    digest: entry.digest,
                    size,
                    created: manifest
                        .annotations
                        .get(layout::ANNOTATION_CREATED)
                        .cloned(),
                }),
                Err(why) => discovery.rejected.push((entry.digest.to_string(), why)),
            }
        }
        Ok(discovery)
    }
}
