//! Reading from a registry: manifests, bounded and checked blobs, profile
//! artifacts (through the cache or not), references resolved to descriptors, and
//! the layers of cosign's signature tags.

use futures_util::StreamExt;

use imprint_schema::Digest;

use super::{Reference, Registry, RegistryError, at_digest, at_tag, pinned_digest};
use crate::layout::{self, Descriptor, Index, Manifest};
use crate::manifests::{Fetch, FetchedManifest, Resource};
use crate::signing;

/// A pulled profile artifact, checked.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The manifest digest.
    pub digest: Digest,
    /// The manifest bytes as served.
    pub manifest_bytes: Vec<u8>,
    /// The parsed manifest.
    pub manifest: Manifest,
    /// The canonical profile layer's bytes.
    pub profile_bytes: Vec<u8>,
    /// The profile.
    pub profile: imprint_schema::Profile,
    /// The tar+gzip layer's bytes (absent when served from a cache that lacked it).
    pub tarball: Option<Vec<u8>>,
}

/// Parses a signature-side manifest (not a profile artifact): bounded, and by
/// digest when one is expected.
pub(crate) fn parse_any_manifest(
    bytes: &[u8],
    expected: Option<&Digest>,
) -> Result<Manifest, layout::LayoutError> {
    if let Some(expected) = expected
        && !expected.matches(bytes)
    {
        return Err(layout::LayoutError::DigestMismatch {
            what: "manifest".into(),
            expected: expected.to_string(),
            actual: Digest::sha256_of(bytes).to_string(),
        });
    }
    let manifest: Manifest = serde_json::from_slice(bytes)
        .map_err(|e| layout::LayoutError::Manifest(format!("not an OCI manifest: {e}")))?;
    if manifest.schema_version != 2 {
        return Err(layout::LayoutError::Manifest(format!(
            "schemaVersion {} is not 2",
            manifest.schema_version
        )));
    }
    Ok(manifest)
}

impl Registry {
    /// Reads the manifest `reference` names, bounded by the manifest limit, with
    /// retries; `None` when the registry has none.
    pub(crate) async fn get_manifest(
        &self,
        operation: &'static str,
        reference: &Reference,
        accept: &[&str],
    ) -> Result<Option<FetchedManifest>, RegistryError> {
        let limit = self.limits.max_manifest_bytes;
        let what = ("manifest", Resource::Manifest);
        self.get_bounded(operation, reference, what, accept, limit)
            .await
    }

    /// Reads a referrers list: the referrers API's answer (`Resource::Referrers`)
    /// or a fallback-tag index (`Resource::Manifest`), bounded by
    /// [`super::RegistryOptions::max_listing_bytes`]; `None` on a 404.
    pub(crate) async fn get_listing(
        &self,
        operation: &'static str,
        reference: &Reference,
        resource: Resource,
    ) -> Result<Option<FetchedManifest>, RegistryError> {
        let accept = [layout::INDEX_MEDIA_TYPE];
        let what = match resource {
            Resource::Referrers => "referrers list (referrers API)",
            Resource::Manifest => "referrers list (fallback tag)",
        };
        let limit = self.max_listing_bytes;
        self.get_bounded(operation, reference, (what, resource), &accept, limit)
            .await
    }

    /// Reads `resource` of `reference` (`what` it is, for errors), at most `limit`
    /// bytes, with retries, within the operation deadline.
    async fn get_bounded(
        &self,
        operation: &'static str,
        reference: &Reference,
        (what, resource): (&str, Resource),
        accept: &[&str],
        limit: u64,
    ) -> Result<Option<FetchedManifest>, RegistryError> {
        let fetched = self
            .retry(operation, reference, || {
                let (client, auth) = (&self.client, &self.auth);
                self.manifests
                    .get(client, auth, reference, resource, accept, limit)
            })
            .await?;
        match fetched {
            Fetch::Found(m) => Ok(Some(m)),
            Fetch::Absent => Ok(None),
            Fetch::TooLarge => Err(RegistryError::TooLarge {
                what: what.to_string(),
                reference: reference.whole(),
                limit,
            }),
        }
    }

    /// [`Registry::get_manifest`] for a manifest that must exist; returns it with
    /// its digest, checked against the reference's digest and the registry's
    /// `Docker-Content-Digest`.
    async fn get_existing_manifest(
        &self,
        operation: &'static str,
        reference: &Reference,
        accept: &[&str],
    ) -> Result<(FetchedManifest, Digest), RegistryError> {
        let fetched = self
            .get_manifest(operation, reference, accept)
            .await?
            .ok_or_else(|| {
                Self::request(operation, reference)(
                    oci_client::errors::OciDistributionError::ImageManifestNotFoundError(
                        "the registry has no such manifest".into(),
                    ),
                )
            })?;
        // A pinned digest is checked with its own algorithm; otherwise the
        // registry's Docker-Content-Digest, when it is a digest at all.
        let pinned = pinned_digest(reference)?;
        let header = (fetched.digest_header.as_deref()).and_then(|d| Digest::parse(d).ok());
        let claimed = pinned.or(header);
        if let Some(expected) = &claimed
            && !expected.matches(&fetched.bytes)
        {
            return Err(RegistryError::Layout {
                reference: reference.whole(),
                source: layout::LayoutError::DigestMismatch {
                    what: "manifest".into(),
                    expected: expected.to_string(),
                    actual: Digest::sha256_of(&fetched.bytes).to_string(),
                },
            });
        }
        let actual = claimed.unwrap_or_else(|| Digest::sha256_of(&fetched.bytes));
        Ok((fetched, actual))
    }

    /// The descriptor of the manifest `reference` names (digest, media type, size),
    /// as the registry serves it: what a profile's `subject` must be.
    pub async fn resolve(&self, reference: &Reference) -> Result<Descriptor, RegistryError> {
        let accepted = [
            layout::MANIFEST_MEDIA_TYPE,
            layout::INDEX_MEDIA_TYPE,
            layout::DOCKER_MANIFEST_MEDIA_TYPE,
            layout::DOCKER_MANIFEST_LIST_MEDIA_TYPE,
        ];
        let (fetched, actual) = self
            .get_existing_manifest("resolve", reference, &accepted)
            .await?;
        let bytes = fetched.bytes;
        let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| {
                v.get("mediaType")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| layout::MANIFEST_MEDIA_TYPE.to_string());
        Ok(Descriptor {
            media_type,
            digest: actual,
            size: bytes.len() as u64,
            artifact_type: None,
            annotations: Default::default(),
            platform: None,
        })
    }

    /// The platform manifest a reference names: the manifest itself, or, for a
    /// multi-platform index, the entry for `platform` (`os/arch[/variant]`), read
    /// again from the registry so its descriptor is the registry's, not the index's.
    pub async fn resolve_platform(
        &self,
        reference: &Reference,
        platform: Option<&str>,
    ) -> Result<Descriptor, RegistryError> {
        let top = self.resolve(reference).await?;
        if top.media_type != layout::INDEX_MEDIA_TYPE
            && top.media_type != layout::DOCKER_MANIFEST_LIST_MEDIA_TYPE
        {
            return Ok(top);
        }
        let by_digest = at_digest(reference, &top.digest);
        let (fetched, _) = self
            .get_existing_manifest("read index", &by_digest, &[top.media_type.as_str()])
            .await?;
        let bytes = fetched.bytes;
        let index: Index = serde_json::from_slice(&bytes).map_err(|e| RegistryError::Layout {
            reference: by_digest.whole(),
            source: layout::LayoutError::Manifest(e.to_string()),
        })?;
        let available: Vec<String> = index
            .manifests
            .iter()
            .filter_map(|m| m.platform.as_ref().map(|p| p.to_profile_string()))
            .collect();
        let Some(wanted) = platform else {
            return Err(RegistryError::Platform {
                reference: reference.whole(),
                message: format!(
                    "it is a multi-platform index ({}); choose one with --platform or the profile's image.platform",
                    available.join(", ")
                ),
            });
        };
        let entry = index
            .manifests
            .iter()
            .find(|m| {
                m.platform
                    .as_ref()
                    .is_some_and(|p| p.to_profile_string() == wanted)
            })
            .ok_or_else(|| RegistryError::Platform {
                reference: reference.whole(),
                message: format!(
                    "no {wanted} manifest in the index ({})",
                    available.join(", ")
                ),
            })?;
        self.resolve(&at_digest(reference, &entry.digest)).await
    }

    /// Reads a blob, refusing more than `limit` bytes whatever the registry declares.
    pub(crate) async fn pull_blob_bounded(
        &self,
        repository: &Reference,
        descriptor: &Descriptor,
        limit: u64,
    ) -> Result<Vec<u8>, RegistryError> {
        let too_large = || RegistryError::TooLarge {
            what: format!("blob {}", descriptor.digest),
            reference: repository.whole(),
            limit,
        };
        if descriptor.size > limit {
            return Err(too_large());
        }
        // The body is read within the deadline too: the request's own retries
        // bound only getting the stream.
        let read = async {
            let mut stream = self
                .retry("pull blob from", repository, || {
                    self.client
                        .pull_blob_stream(repository, descriptor.digest.as_str())
                })
                .await?;
            if stream.content_length.is_some_and(|n| n > limit) {
                return Err(too_large());
            }
            let mut data = Vec::with_capacity(descriptor.size as usize);
            while let Some(chunk) = stream.stream.next().await {
                let chunk = chunk.map_err(|e| {
                    Self::request("pull blob from", repository)(
                        oci_client::errors::OciDistributionError::IoError(e),
                    )
                })?;
                if data.len() as u64 + chunk.len() as u64 > limit {
                    return Err(too_large());
                }
                data.extend_from_slice(&chunk);
            }
            Ok(data)
        };
        self.within_deadline("pull blob from", repository, read)
            .await
    }

    /// [`Registry::pull_artifact`] through a content-addressed cache: a reference by
    /// digest whose manifest and blobs are cached is served from disk, checked again
    /// exactly as a pull is; what a pull verified is stored.
    pub async fn pull_artifact_cached(
        &self,
        reference: &Reference,
        cache: &crate::cache::BlobCache,
    ) -> Result<Pulled, RegistryError> {
        let limits = &self.limits;
        if let Some(digest) = pinned_digest(reference)?
            && let Some(bytes) = cache.get(&digest, limits.max_manifest_bytes)
            && let Ok(manifest) = layout::parse_manifest(&bytes, Some(&digest), limits)
        {
            let config = cache.get(&manifest.config.digest, limits.max_layer_bytes);
            let layers: Option<Vec<Vec<u8>>> = manifest
                .layers
                .iter()
                .map(|l| cache.get(&l.digest, limits.max_layer_bytes))
                .collect();
            if let (Some(config), Some(mut layers)) = (config, layers)
                && let Ok(profile) = layout::open(&manifest, &config, &layers, limits)
            {
                let tarball = layers.pop();
                return Ok(Pulled {
                    digest,
                    manifest_bytes: bytes,
                    manifest,
                    profile_bytes: layers.swap_remove(0),
                    profile,
                    tarball,
                });
            }
        }
        let pulled = self.pull_artifact(reference).await?;
        // The cache is an optimisation: failing to write it is not failing the pull.
        let _ = cache.put(&pulled.manifest_bytes);
        let _ = cache.put(layout::EMPTY_CONFIG);
        let _ = cache.put(&pulled.profile_bytes);
        if let Some(tarball) = &pulled.tarball {
            let _ = cache.put(tarball);
        }
        Ok(pulled)
    }

    /// Pulls a profile artifact and checks all of it (see [`layout::open`]), within
    /// the operation deadline.
    pub async fn pull_artifact(&self, reference: &Reference) -> Result<Pulled, RegistryError> {
        self.within_deadline("pull", reference, self.pull_artifact_unbounded(reference))
            .await
    }

    /// [`Registry::pull_artifact`] without its deadline (each request has its own).
    async fn pull_artifact_unbounded(
        &self,
        reference: &Reference,
    ) -> Result<Pulled, RegistryError> {
        let layout_error = |source| RegistryError::Layout {
            reference: reference.whole(),
            source,
        };
        let (fetched, expected) = self
            .get_existing_manifest("pull", reference, &[layout::MANIFEST_MEDIA_TYPE])
            .await?;
        let bytes = fetched.bytes;
        let manifest =
            layout::parse_manifest(&bytes, Some(&expected), &self.limits).map_err(layout_error)?;
        let limit = self.limits.max_layer_bytes;
        let config = self
            .pull_blob_bounded(reference, &manifest.config, limit)
            .await?;
        let mut layers = Vec::with_capacity(manifest.layers.len());
        for layer in &manifest.layers {
            layers.push(self.pull_blob_bounded(reference, layer, limit).await?);
        }
        let profile =
            layout::open(&manifest, &config, &layers, &self.limits).map_err(layout_error)?;
        let tarball = layers.pop();
        Ok(Pulled {
            digest: expected,
            manifest_bytes: bytes,
            manifest,
            profile_bytes: layers.swap_remove(0),
            profile,
            tarball,
        })
    }

    /// Reads a blob no larger than `limit` and checks its digest.
    pub(crate) async fn pull_checked_blob(
        &self,
        repository: &Reference,
        descriptor: &Descriptor,
        limit: u64,
    ) -> Result<Vec<u8>, RegistryError> {
        let data = (self.pull_blob_bounded(repository, descriptor, limit)).await?;
        layout::check_blob(
            &format!("blob {}", descriptor.digest),
            descriptor,
            &data,
            limit,
        )
        .map_err(|source| RegistryError::Layout {
            reference: repository.whole(),
            source,
        })?;
        Ok(data)
    }

    /// The layers of a cosign tag (none when there is no tag), at most
    /// [`signing::MAX_LAYERS_PER_TAG`] of them, with how many more were left
    /// unexamined: a tag flooded with signatures is not a reason to read a
    /// thousand blobs.
    pub(crate) async fn tag_layers(
        &self,
        repository: &Reference,
        tag: String,
    ) -> Result<Option<(String, Vec<Descriptor>, usize)>, RegistryError> {
        let tagged = at_tag(repository, tag.clone());
        let fetched = self
            .get_manifest("read", &tagged, &[layout::MANIFEST_MEDIA_TYPE])
            .await?;
        let Some(fetched) = fetched else {
            return Ok(None);
        };
        let manifest =
            parse_any_manifest(&fetched.bytes, None).map_err(|source| RegistryError::Layout {
                reference: tagged.whole(),
                source,
            })?;
        let mut layers = manifest.layers;
        let skipped = layers.len().saturating_sub(signing::MAX_LAYERS_PER_TAG);
        layers.truncate(signing::MAX_LAYERS_PER_TAG);
        Ok(Some((tag, layers, skipped)))
    }
}
