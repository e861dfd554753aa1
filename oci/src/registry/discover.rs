//! Discovery: the referrers of a subject, and the profile artifacts among them.
//!
//! A referrers list is read bounded in bytes
//! ([`super::RegistryOptions::max_listing_bytes`]) and examined for at most
//! [`MAX_REFERRERS_EXAMINED`] entries; what is beyond is counted, not fetched.

use std::cmp::Reverse;

use imprint_schema::Digest;

use super::{Reference, Registry, RegistryError, at_digest, at_tag};
use crate::layout::{self, Descriptor, Limits, Listing, Manifest};
use crate::manifests::Resource;

/// How many entries of a referrers list [`Registry::discover`] examines (fetches
/// and checks), after duplicates are dropped. A subject with more is an alert
/// ([`Discovery::unexamined`]): someone may be flooding the list to push the
/// genuine artifact out of reach.
pub const MAX_REFERRERS_EXAMINED: usize = 64;

/// How far in the future a claimed `created` may be (clock skew) and still look
/// like an artifact's: a profile's `created` is the end of its learning, past.
const CREATED_SKEW: jiff::SignedDuration = jiff::SignedDuration::from_hours(1);

/// What discovery found for a subject.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    /// Profile artifacts whose fetched manifest names the subject, by digest.
    pub artifacts: Vec<Discovered>,
    /// Entries of the referrers list that did not check out, with why.
    pub rejected: Vec<(String, String)>,
    /// Distinct entries of the list beyond [`MAX_REFERRERS_EXAMINED`], neither
    /// fetched nor checked. Not zero is an alert, not a quiet skip: a genuine
    /// artifact may be among them.
    pub unexamined: usize,
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

/// What examining one entry of the list found.
enum Examined {
    /// A profile artifact of the subject.
    Artifact(Discovered),
    /// Another kind of referrer (a signature, an SBOM): not ours.
    Other,
    /// Not what it claims, with why.
    Rejected(String),
}

impl Registry {
    /// The referrers list of `subject` in `repository`: the referrers API's answer,
    /// or, when the API answers 404 (an HTML 404 from a proxy too), the OCI 1.1
    /// fallback tag `sha256-<hex>`; no tag is an empty list. Both are read bounded
    /// by [`super::RegistryOptions::max_listing_bytes`] ([`RegistryError::TooLarge`]
    /// beyond), within the operation deadline. Its fields are claims, to be
    /// checked against each manifest; entries that are not descriptors are set
    /// aside in [`Listing::rejected`]. The order is the registry's.
    pub async fn referrers(
        &self,
        repository: &Reference,
        subject: &Digest,
    ) -> Result<Listing, RegistryError> {
        let subject_ref = at_digest(repository, subject);
        let api = self
            .get_listing("list referrers of", &subject_ref, Resource::Referrers)
            .await?;
        let (listed, at) = match api {
            Some(answer) => (answer, subject_ref),
            None => {
                let tag = at_tag(repository, layout::fallback_tag(subject));
                let index = self
                    .get_listing("read referrers tag", &tag, Resource::Manifest)
                    .await?;
                match index {
                    Some(index) => (index, tag),
                    None => return Ok(Listing::default()),
                }
            }
        };
        let layout_error = |source| RegistryError::Layout {
            reference: at.whole(),
            source,
        };
        let value = serde_json::from_slice(&listed.bytes).map_err(|e| {
            layout_error(layout::LayoutError::Manifest(format!(
                "the referrers list is not JSON: {e}"
            )))
        })?;
        Listing::parse(value).map_err(layout_error)
    }

    /// Lists the profile artifacts whose subject is `subject` in `repository`,
    /// through the referrers API or the fallback tag, within the operation
    /// deadline. The list's own fields are not trusted: each examined entry's
    /// manifest is fetched and must be a profile artifact that names `subject`.
    /// At most [`MAX_REFERRERS_EXAMINED`] entries are examined, in the order
    /// [`examination_order`] gives; the rest are counted in
    /// [`Discovery::unexamined`].
    pub async fn discover(
        &self,
        repository: &Reference,
        subject: &Digest,
    ) -> Result<Discovery, RegistryError> {
        let subject_ref = at_digest(repository, subject);
        let work = self.discover_unbounded(repository, subject);
        self.within_deadline("discover", &subject_ref, work).await
    }

    /// [`Registry::discover`] without its deadline (each request has its own).
    async fn discover_unbounded(
        &self,
        repository: &Reference,
        subject: &Digest,
    ) -> Result<Discovery, RegistryError> {
        let listed = self.referrers(repository, subject).await?;
        let (examined, unexamined) = examination_order(listed.manifests, subject, &self.limits);
        let mut discovery = Discovery {
            rejected: listed.rejected,
            unexamined,
            ..Discovery::default()
        };
        for entry in examined {
            match self.examine(repository, subject, &entry).await {
                Examined::Artifact(found) => discovery.artifacts.push(found),
                Examined::Other => {}
                Examined::Rejected(why) => discovery.rejected.push((entry.digest.to_string(), why)),
            }
        }
        Ok(discovery)
    }

    /// Fetches the manifest `entry` names and checks it is a profile artifact of
    /// `subject`.
    async fn examine(
        &self,
        repository: &Reference,
        subject: &Digest,
        entry: &Descriptor,
    ) -> Examined {
        let r = at_digest(repository, &entry.digest);
        let fetched = match self
            .get_manifest("fetch referrer", &r, &[layout::MANIFEST_MEDIA_TYPE])
            .await
        {
            Err(e) => return Examined::Rejected(e.to_string()),
            Ok(None) => return Examined::Rejected("the registry has no such manifest".into()),
            Ok(Some(fetched)) => fetched,
        };
        // Other referrers (signatures, attestations) are not profiles: skipped, by
        // what their fetched manifest says.
        let other_type = serde_json::from_slice::<Manifest>(&fetched.bytes).is_ok_and(|m| {
            m.artifact_type
                .as_deref()
                .is_some_and(|t| t != crate::PROFILE_MEDIA_TYPE)
        });
        if other_type {
            return Examined::Other;
        }
        let manifest =
            match layout::parse_manifest(&fetched.bytes, Some(&entry.digest), &self.limits) {
                Ok(m) => m,
                Err(e) => return Examined::Rejected(e.to_string()),
            };
        let named = manifest.subject.as_ref().map(|s| &s.digest);
        if named != Some(subject) {
            return Examined::Rejected(format!("its subject is {named:?}, not {subject}"));
        }
        Examined::Artifact(Discovered {
            digest: entry.digest.clone(),
            size: fetched.bytes.len() as u64,
            created: manifest
                .annotations
                .get(layout::ANNOTATION_CREATED)
                .cloned(),
        })
    }
}

/// The entries of a listing to examine, at most [`MAX_REFERRERS_EXAMINED`], and
/// how many distinct entries are left beyond them.
///
/// The registry's order is the attacker's: whoever floods the list (a hostile
/// registry, or a pusher writing the fallback tag) chooses it. So entries are
/// ranked by the claims every genuine profile entry makes — first that it is a
/// profile artifact (`artifactType`), then that it names this subject
/// (`dev.imprint.image.digest`), then a size a manifest can have, then a
/// `created` that is a time not in the future — and, among equals, newest
/// claimed `created` first, as the resolver tries them, so what the bound cuts
/// is what would be tried last; then the registry's order. Signatures, SBOMs and
/// junk thus never take a genuine profile's place. A flood that copies every
/// claim of a genuine entry can still push it out: that is why the remainder is
/// counted and reported rather than dropped quietly.
pub(crate) fn examination_order(
    entries: Vec<Descriptor>,
    subject: &Digest,
    limits: &Limits,
) -> (Vec<Descriptor>, usize) {
    let mut seen = std::collections::BTreeSet::new();
    let mut distinct: Vec<Descriptor> = entries
        .into_iter()
        .filter(|d| seen.insert(d.digest.clone()))
        .collect();
    let latest_plausible = jiff::Timestamp::now() + CREATED_SKEW;
    let subject = subject.to_string();
    distinct.sort_by_cached_key(|d| {
        let created = (d.annotations.get(layout::ANNOTATION_CREATED))
            .and_then(|c| c.parse::<jiff::Timestamp>().ok())
            .filter(|c| *c <= latest_plausible);
        let names_subject = d.annotations.get(layout::ANNOTATION_IMAGE_DIGEST) == Some(&subject);
        (
            d.artifact_type.as_deref() != Some(crate::PROFILE_MEDIA_TYPE),
            !names_subject,
            !(d.size > 0 && d.size <= limits.max_manifest_bytes),
            Reverse(created),
        )
    });
    let unexamined = distinct.len().saturating_sub(MAX_REFERRERS_EXAMINED);
    distinct.truncate(MAX_REFERRERS_EXAMINED);
    (distinct, unexamined)
}

#[cfg(test)]
mod tests;
