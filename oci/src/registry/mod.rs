//! Moving profile artifacts to and from a registry, on `oci-client`.
//!
//! Everything pulled is checked by [`crate::layout`] before it is believed: the
//! manifest's digest when pulled by digest, sizes against bounds before and while
//! reading, and every blob's digest. Plain HTTP is used only for loopback registries
//! or hosts the caller names as insecure.
//!
//! The client (construction, credentials, retries, timeouts) is here; each verb has
//! its own file: [`Registry::push_artifact`], [`Registry::sign`] and
//! [`Registry::attest`] write (and [`Registry::revoke`]), [`Registry::pull_artifact`]
//! and [`Registry::resolve`] read, [`Registry::discover`] lists referrers.

mod discover;
mod pull;
mod push;
mod revoke;

use std::time::Duration;

use imprint_schema::Digest;
use oci_client::Client;
pub use oci_client::Reference;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;

use crate::layout::{self, Limits};
use crate::manifests::{ManifestClient, ManifestClientConfig};

pub use discover::{Discovered, Discovery, MAX_REFERRERS_EXAMINED};
pub use pull::Pulled;
pub(crate) use pull::parse_any_manifest;
pub use push::Written;
pub use revoke::Revoked;

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
    /// The registry refused or failed a request, or could not be reached. The
    /// client's message quotes URLs; their credentials are redacted here.
    #[error("{operation} {reference}: {}", crate::redact::redact_urls(&source.to_string()))]
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
    /// An operation did not finish within [`RegistryOptions::operation_deadline`]
    /// (a registry that answers slowly, drips its bytes, or never ends).
    #[error("{operation} {reference}: not finished within the deadline of {after:?}")]
    Deadline {
        /// What was being done.
        operation: &'static str,
        /// On what.
        reference: String,
        /// The deadline that passed.
        after: Duration,
    },
    /// A reference pins something that is not a digest.
    #[error("{reference}: {source}")]
    Digest {
        /// The reference.
        reference: String,
        /// What is wrong with its digest.
        source: imprint_schema::DigestError,
    },
}

/// How to reach registries.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Hosts (`host:port`) to reach over plain HTTP even though they are not loopback.
    pub insecure_hosts: Vec<String>,
    /// Timeout for connecting and for each read: a registry that stops sending
    /// fails the request.
    pub timeout: Duration,
    /// Bound on a whole operation ([`Registry::discover`], [`Registry::pull_artifact`],
    /// each request with its retries, and what a caller wraps in
    /// [`Registry::within_deadline`]): a registry that sends one byte just before
    /// each read timeout still ends it, with [`RegistryError::Deadline`].
    pub operation_deadline: Duration,
    /// Bound on a referrers list as read (the referrers API's answer or a
    /// fallback-tag index), in bytes; 100,000 descriptors are about 20 MiB. How
    /// many of its entries are examined is bounded apart from this
    /// ([`MAX_REFERRERS_EXAMINED`]).
    pub max_listing_bytes: u64,
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
            operation_deadline: Duration::from_secs(120),
            max_listing_bytes: DEFAULT_MAX_LISTING_BYTES,
            limits: Limits::default(),
            retries: 3,
            backoff: Duration::from_millis(200),
            ca_certificates: Vec::new(),
        }
    }
}

/// Default [`RegistryOptions::max_listing_bytes`] (32 MiB).
pub const DEFAULT_MAX_LISTING_BYTES: u64 = 32 << 20;

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
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A registry client for profile artifacts.
pub struct Registry {
    pub(crate) client: Client,
    manifests: ManifestClient,
    pub(crate) auth: RegistryAuth,
    pub(crate) limits: Limits,
    max_listing_bytes: u64,
    retries: u32,
    backoff: Duration,
    deadline: Duration,
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
            max_listing_bytes: options.max_listing_bytes,
            retries: options.retries,
            backoff: options.backoff,
            deadline: options.operation_deadline,
        })
    }

    /// Uses these credentials.
    pub fn with_auth(mut self, auth: RegistryAuth) -> Registry {
        self.auth = auth;
        self
    }

    /// Runs `work` (`operation` on `reference`) within the operation deadline
    /// ([`RegistryOptions::operation_deadline`]): when it passes, `work` is dropped
    /// (its connections closed) and the answer is [`RegistryError::Deadline`].
    ///
    /// [`Registry::discover`] and [`Registry::pull_artifact`] bound themselves; a
    /// caller composing other calls ([`Registry::verify`], say) wraps them so the
    /// whole ends in one deadline rather than one per request.
    pub async fn within_deadline<T>(
        &self,
        operation: &'static str,
        reference: &Reference,
        work: impl std::future::Future<Output = Result<T, RegistryError>>,
    ) -> Result<T, RegistryError> {
        tokio::time::timeout(self.deadline, work)
            .await
            .unwrap_or_else(|_| {
                Err(RegistryError::Deadline {
                    operation,
                    reference: reference.whole(),
                    after: self.deadline,
                })
            })
    }

    /// Runs a request (`operation` on `reference`) again, with backoff, while it
    /// fails transiently, all within the operation deadline. Every request imprint
    /// makes is idempotent (content-addressed pushes, reads), so this is safe. A
    /// retry whose backoff would end past the deadline is not made: the failure
    /// it would have retried is the answer.
    pub(crate) async fn retry<T, F, Fut>(
        &self,
        operation: &'static str,
        reference: &Reference,
        mut op: F,
    ) -> Result<T, RegistryError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, oci_client::errors::OciDistributionError>>,
    {
        let ends = tokio::time::Instant::now() + self.deadline;
        let attempts = async {
            let mut delay = self.backoff;
            let mut attempt = 0;
            loop {
                match op().await {
                    Err(e)
                        if attempt < self.retries
                            && is_transient(&e)
                            && tokio::time::Instant::now() + delay < ends =>
                    {
                        attempt += 1;
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(10));
                    }
                    other => return other.map_err(Self::request(operation, reference)),
                }
            }
        };
        self.within_deadline(operation, reference, attempts).await
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
}

/// `repository` at `tag`.
pub(crate) fn at_tag(repository: &Reference, tag: String) -> Reference {
    Reference::with_tag(
        repository.registry().to_string(),
        repository.repository().to_string(),
        tag,
    )
}

/// `repository` at `digest`.
pub(crate) fn at_digest(repository: &Reference, digest: &Digest) -> Reference {
    Reference::with_digest(
        repository.registry().to_string(),
        repository.repository().to_string(),
        digest.to_string(),
    )
}

/// The digest a reference pins, parsed; `None` for a reference by tag. The
/// reference parser only checks the digest's shape loosely.
pub(crate) fn pinned_digest(reference: &Reference) -> Result<Option<Digest>, RegistryError> {
    reference
        .digest()
        .map(Digest::parse)
        .transpose()
        .map_err(|source| RegistryError::Digest {
            reference: reference.whole(),
            source,
        })
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
