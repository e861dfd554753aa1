//! Moving profile artifacts to and from a registry, on `oci-client`.
//!
//! Everything pulled is checked by [`crate::layout`] before it is believed: the
//! manifest's digest when pulled by digest, sizes against bounds before and while
//! reading, and every blob's digest. Plain HTTP is used only for loopback registries
//! or hosts the caller names as insecure.

use std::time::Duration;

use futures_util::StreamExt;
use oci_client::Client;
pub use oci_client::Reference;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;

use crate::layout::{self, Artifact, Descriptor, Index, Limits, Manifest};
use crate::manifests::{
    Fetch, FetchedManifest, ManifestClient, ManifestClientConfig, Precondition,
};

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The reference does not parse.
    #[error("{reference:?} is not an image reference: {message}")]
    Reference {
        /// The input.
        reference: String,
        /// Why.
        message: String,
    },
    /// The registry refused or failed a request, or could not be reached.
    #[error("{operation} {reference}: {source}")]
    Request {
        /// What was being done.
        operation: &'static str,
        /// On what.
        reference: String,
        /// The client's error.
        source: oci_client::errors::OciDistributionError,
    },
    /// A multi-platform image without a usable platform choice.
    #[error("{reference}: {message}")]
    Platform {
        /// The image.
        reference: String,
        /// What is missing.
        message: String,
    },
    /// The registry returned more than the bound allows.
    #[error("{what} from {reference} is larger than the limit of {limit} bytes")]
    TooLarge {
        /// What.
        what: String,
        /// From where.
        reference: String,
        /// The bound.
        limit: u64,
    },
    /// The client could not be set up (a CA certificate that does not parse).
    #[error("registry client: {0}")]
    Config(String),
    /// The content is not a valid profile artifact.
    #[error("{reference}: {source}")]
    Layout {
        /// Where it came from.
        reference: String,
        /// What is wrong.
        source: layout::LayoutError,
    },
}

/// How to reach registries.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Hosts (`host:port`) to reach over plain HTTP even though they are not loopback.
    pub insecure_hosts: Vec<String>,
    /// Timeout for connecting and for each read.
    pub timeout: Duration,
    /// Size bounds for what is pulled.
    pub limits: Limits,
    /// Retries of a request that failed for a transient reason (transport error,
    /// 5xx, 429), with exponential backoff.
    pub retries: u32,
    /// The first backoff; it doubles at each retry.
    pub backoff: Duration,
    /// Extra trusted CA certificates (PEM), beside the system roots. With any, every
    /// registry is reached over TLS, loopback ones too.
    pub ca_certificates: Vec<Vec<u8>>,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            insecure_hosts: Vec::new(),
            timeout: Duration::from_secs(30),
            limits: Limits::default(),
            retries: 3,
            backoff: Duration::from_millis(200),
            ca_certificates: Vec::new(),
        }
    }
}

/// Whether a failed request is worth another try: the transport failed, the registry
/// had a server error, or asked us to slow down.
fn is_transient(e: &oci_client::errors::OciDistributionError) -> bool {
    use oci_client::errors::{OciDistributionError as E, OciErrorCode};
    match e {
        E::RequestError(_) | E::IoError(_) => true,
        E::ServerError { code, .. } => *code >= 500 || *code == 429,
        E::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|err| matches!(err.code, OciErrorCode::Toomanyrequests)),
        _ => false,
    }
}

/// Whether `host` (with an optional port) is a loopback address or `localhost`.
pub fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A pulled profile artifact, checked.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The manifest digest.
    pub digest: String,
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

/// A registry client for profile artifacts.
pub struct Registry {
    pub(crate) client: Client,
    manifests: ManifestClient,
    pub(crate) auth: RegistryAuth,
    pub(crate) limits: Limits,
    retries: u32,
    backoff: Duration,
}

/// Parses an image reference (`registry/repo[:tag][@digest]`).
pub fn parse_reference(reference: &str) -> Result<Reference, RegistryError> {
    reference
        .parse::<Reference>()
        .map_err(|e| RegistryError::Reference {
            reference: reference.to_string(),
            message: e.to_string(),
        })
}

impl Registry {
    /// A client for the registries `references` name: loopback ones over HTTP.
    pub fn new(
        options: &RegistryOptions,
        references: &[&Reference],
    ) -> Result<Registry, RegistryError> {
        let mut http: Vec<String> = options.insecure_hosts.clone();
        if options.ca_certificates.is_empty() {
            http.extend(
                references
                    .iter()
                    .map(|r| r.resolve_registry().to_string())
                    .filter(|h| is_loopback_host(h)),
            );
        }
        let manifests = ManifestClient::new(&ManifestClientConfig {
            plain_http_hosts: http.clone(),
            ca_certificates: &options.ca_certificates,
            timeout: options.timeout,
        })
        .map_err(|e| RegistryError::Config(e.to_string()))?;
        let config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(http),
            extra_root_certificates: options
                .ca_certificates
                .iter()
                .map(|pem| oci_client::client::Certificate {
                    encoding: oci_client::client::CertificateEncoding::Pem,
                    data: pem.clone(),
                })
                .collect(),
            read_timeout: Some(options.timeout),
            connect_timeout: Some(options.timeout),
            ..ClientConfig::default()
        };
        Ok(Registry {
            client: Client::new(config),
            manifests,
            auth: RegistryAuth::Anonymous,
            limits: options.limits,
            retries: options.retries,
            backoff: options.backoff,
        })
    }

    /// Uses these credentials.
    pub fn with_auth(mut self, auth: RegistryAuth) -> Registry {
        self.auth = auth;
        self
    }

    /// Runs a request again, with backoff, while it fails transiently. Every request
    /// imprint makes is idempotent (content-addressed pushes, reads), so this is safe.
    pub(crate) async fn retry<T, F, Fut>(
        &self,
        mut op: F,
    ) -> Result<T, oci_client::errors::OciDistributionError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, oci_client::errors::OciDistributionError>>,
    {
        let mut delay = self.backoff;
        let mut attempt = 0;
        loop {
            match op().await {
                Err(e) if attempt < self.retries && is_transient(&e) => {
                    attempt += 1;
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
                other => return other,
            }
        }
    }

    pub(crate) fn request(
        operation: &'static str,
        reference: &Reference,
    ) -> impl FnOnce(oci_client::errors::OciDistributionError) -> RegistryError {
        let reference = reference.whole();
        move |source| RegistryError::Request {
            operation,
            reference,
            source,
        }
    }

    /// Reads the manifest `reference` names, bounded by the manifest limit, with
    /// retries; `None` when the registry has none.
    pub(crate) async fn get_manifest(
        &self,
        operation: &'static str,
        reference: &Reference,
        accept: &[&str],
    ) -> Result<Option<FetchedManifest>, RegistryError> {
        let limit = self.limits.max_manifest_bytes;
        let fetched = self
            .retry(|| {
                self.manifests
                    .get(&self.client, &self.auth, reference, accept, limit)
            })
            .await
            .map_err(Self::request(operation, reference))?;
        match fetched {
            Fetch::Found(m) => Ok(Some(m)),
            Fetch::Absent => Ok(None),
            Fetch::TooLarge => Err(RegistryError::TooLarge {
                what: "manifest".into(),
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
    ) -> Result<(FetchedManifest, String), RegistryError> {
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
        let actual = imprint_schema::document::sha256_digest(&fetched.bytes);
        let claimed = reference.digest().or(fetched
            .digest_header
            .as_deref()
            .filter(|d| d.starts_with("sha256:")));
        if let Some(expected) = claimed
            && expected != actual
        {
            return Err(RegistryError::Layout {
                reference: reference.whole(),
                source: layout::LayoutError::DigestMismatch {
                    what: "manifest".into(),
                    expected: expected.to_string(),
                    actual,
                },
            });
        }
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
        let by_digest = reference.clone_with_digest(top.digest.clone());
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
        self.resolve(&reference.clone_with_digest(entry.digest.clone()))
            .await
    }

    /// Uploads a blob to `repository` (its digest is checked by the registry).
    pub async fn push_blob(
        &self,
        repository: &Reference,
        data: &[u8],
    ) -> Result<String, RegistryError> {
        let digest = imprint_schema::document::sha256_digest(data);
        self.client
            .store_auth_if_needed(repository.resolve_registry(), &self.auth)
            .await;
        self.retry(|| self.client.push_blob(repository, data.to_vec(), &digest))
            .await
            .map_err(Self::request("push blob to", repository))?;
        Ok(digest)
    }

    /// Uploads a manifest under `reference` (a tag, or the repository alone to push
    /// by digest) and returns its digest.
    pub async fn push_manifest(
        &self,
        reference: &Reference,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<String, RegistryError> {
        self.push_manifest_if(reference, bytes, media_type, &Precondition::None)
            .await
    }

    /// [`Registry::push_manifest`] on a precondition: a 412 from the registry is
    /// an error that [`crate::manifests::is_precondition_failed`] recognises.
    pub async fn push_manifest_if(
        &self,
        reference: &Reference,
        bytes: &[u8],
        media_type: &str,
        precondition: &Precondition,
    ) -> Result<String, RegistryError> {
        let digest = imprint_schema::document::sha256_digest(bytes);
        let target = match reference.tag() {
            Some(_) => reference.clone(),
            None => reference.clone_with_digest(digest.clone()),
        };
        if media_type.parse::<http::HeaderValue>().is_err() {
            return Err(RegistryError::Reference {
                reference: media_type.to_string(),
                message: "not a valid media type header".into(),
            });
        }
        self.retry(|| {
            self.manifests.put(
                &self.client,
                &self.auth,
                &target,
                bytes,
                media_type,
                precondition,
            )
        })
        .await
        .map_err(Self::request("push manifest to", &target))?;
        Ok(digest)
    }

    /// Pushes a profile artifact: its blobs, then its manifest by digest, then its
    /// entry in the subject's fallback referrers index, then (when `tag` is given)
    /// the tag. Returns the artifact digest. Blobs first, so a failure
    /// half-way leaves no manifest that names missing content.
    pub async fn push_artifact(
        &self,
        repository: &Reference,
        artifact: &Artifact,
        tag: Option<&str>,
    ) -> Result<String, RegistryError> {
        self.push_blob(repository, &artifact.config.data).await?;
        for layer in &artifact.layers {
            self.push_blob(repository, &layer.data).await?;
        }
        let by_digest = Reference::with_digest(
            repository.registry().to_string(),
            repository.repository().to_string(),
            artifact.digest.clone(),
        );
        let digest = self
            .push_manifest(
                &by_digest,
                &artifact.manifest_bytes,
                layout::MANIFEST_MEDIA_TYPE,
            )
            .await?;
        let subject = &artifact
            .manifest
            .subject
            .as_ref()
            .expect("built artifacts have a subject")
            .digest;
        self.update_fallback_index(repository, subject, layout::referrer_descriptor(artifact))
            .await?;
        if let Some(tag) = tag {
            let tagged = Reference::with_tag(
                repository.registry().to_string(),
                repository.repository().to_string(),
                tag.to_string(),
            );
            self.push_manifest(
                &tagged,
                &artifact.manifest_bytes,
                layout::MANIFEST_MEDIA_TYPE,
            )
            .await?;
        }
        Ok(digest)
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
        let mut stream = self
            .retry(|| {
                self.client
                    .pull_blob_stream(repository, descriptor.digest.as_str())
            })
            .await
            .map_err(Self::request("pull blob from", repository))?;
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
        if let Some(digest) = reference.digest()
            && let Some(bytes) = cache.get(digest, limits.max_manifest_bytes)
            && let Ok(manifest) = layout::parse_manifest(&bytes, Some(digest), limits)
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
                    digest: digest.to_string(),
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

    /// Pulls a profile artifact and checks all of it (see [`layout::open`]).
    pub async fn pull_artifact(&self, reference: &Reference) -> Result<Pulled, RegistryError> {
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
}

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
    pub digest: String,
    /// Its size.
    pub size: u64,
    /// Its `org.opencontainers.image.created` annotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

impl Registry {
    /// Reads the fallback-tag index of `subject` in `repository` with the
    /// precondition that a write of it must meet: `If-Match` its ETag, or, when
    /// there is none yet, `If-None-Match: *`.
    async fn fallback_index(
        &self,
        tag: &Reference,
    ) -> Result<(Index, Precondition), RegistryError> {
        match self
            .get_manifest("read referrers tag", tag, &[layout::INDEX_MEDIA_TYPE])
            .await?
        {
            None => Ok((Index::new(), Precondition::Absent)),
            Some(fetched) => {
                let etag = fetched.etag.clone().unwrap_or_else(|| {
                    format!(
                        "\"{}\"",
                        imprint_schema::document::sha256_digest(&fetched.bytes)
                    )
                });
                // A tag that holds something else is replaced, not trusted.
                let index = serde_json::from_slice(&fetched.bytes).unwrap_or_default();
                Ok((index, Precondition::IfMatch(etag)))
            }
        }
    }

    /// Adds `artifact` to the OCI 1.1 fallback referrers index of its subject
    /// (`sha256-<hex>` tag), for registries without the referrers API.
    ///
    /// Read-modify-write made safe with `If-Match` on the ETag read (or
    /// `If-None-Match: *` when creating the tag): when another pusher changed the
    /// tag in between, the registry answers 412 and the update is redone on the new
    /// index, a few times. Registries that ignore the condition (distribution 2.8
    /// does) leave the race to the caller, as with every OCI 1.1 client.
    pub async fn update_fallback_index(
        &self,
        repository: &Reference,
        subject: &str,
        entry: Descriptor,
    ) -> Result<(), RegistryError> {
        const ATTEMPTS: u32 = 5;
        let tag = Reference::with_tag(
            repository.registry().to_string(),
            repository.repository().to_string(),
            layout::fallback_tag(subject),
        );
        let mut attempt = 1;
        loop {
            let (mut index, precondition) = self.fallback_index(&tag).await?;
            if index.manifests.iter().any(|d| d.digest == entry.digest) {
                return Ok(());
            }
            index.manifests.push(entry.clone());
            let bytes = serde_json::to_vec(&index).expect("indexes serialize");
            match self
                .push_manifest_if(&tag, &bytes, layout::INDEX_MEDIA_TYPE, &precondition)
                .await
            {
                Err(RegistryError::Request { source, .. })
                    if crate::manifests::is_precondition_failed(&source) && attempt < ATTEMPTS =>
                {
                    attempt += 1;
                    tokio::time::sleep(self.backoff).await;
                }
                Err(RegistryError::Request {
                    source, reference, ..
                }) if crate::manifests::is_precondition_failed(&source) => {
                    return Err(RegistryError::Request {
                        operation: "update the referrers tag (it kept changing under us)",
                        reference,
                        source,
                    });
                }
                other => return other.map(|_| ()),
            }
        }
    }

    /// The referrers list of `subject` in `repository`: the referrers API, or the
    /// fallback tag where the registry lacks it. Its fields are claims, to be
    /// checked against each manifest.
    pub async fn referrers(
        &self,
        repository: &Reference,
        subject: &str,
    ) -> Result<Index, RegistryError> {
        let subject_ref = Reference::with_digest(
            repository.registry().to_string(),
            repository.repository().to_string(),
            subject.to_string(),
        );
        self.client
            .store_auth_if_needed(repository.resolve_registry(), &self.auth)
            .await;
        let listed = self
            .retry(|| self.client.pull_referrers(&subject_ref, None))
            .await
            .map_err(Self::request("list referrers of", &subject_ref))?;
        Ok(serde_json::to_value(&listed)
            .and_then(serde_json::from_value)
            .unwrap_or_default())
    }

    /// Lists the profile artifacts whose subject is `subject` in `repository`,
    /// through the referrers API or the fallback tag. The list's own fields are not
    /// trusted: each entry's manifest is fetched and must be a profile artifact that
    /// names `subject`.
    pub async fn discover(
        &self,
        repository: &Reference,
        subject: &str,
    ) -> Result<Discovery, RegistryError> {
        let subject_ref = Reference::with_digest(
            repository.registry().to_string(),
            repository.repository().to_string(),
            subject.to_string(),
        );
        let listed = self.referrers(repository, subject).await?;
        let mut discovery = Discovery::default();
        let mut seen = std::collections::BTreeSet::new();
        for entry in listed.manifests {
            if !seen.insert(entry.digest.clone()) {
                continue;
            }
            if !imprint_schema::validate::is_digest(&entry.digest) {
                discovery
                    .rejected
                    .push((entry.digest, "not a digest".to_string()));
                continue;
            }
            let r = subject_ref.clone_with_digest(entry.digest.clone());
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
                            let named = m.subject.as_ref().map(|s| s.digest.as_str());
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
                Err(why) => discovery.rejected.push((entry.digest, why)),
            }
        }
        Ok(discovery)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in [
            "127.0.0.1:5000",
            "localhost:5000",
            "localhost",
            "[::1]:5000",
            "127.1.2.3",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "registry.example:5000",
            "10.0.0.1:5000",
            "[2001:db8::1]:443",
            "localhost.evil.com",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }
}
