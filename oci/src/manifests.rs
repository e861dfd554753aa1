//! Manifest GET and PUT, and the referrers GET, on the registry's HTTP API,
//! beside `oci-client`.
//!
//! `oci-client` reads a manifest response whole before anyone can bound it, and its
//! manifest PUT cannot carry `If-Match`. Manifests are where a hostile registry can
//! hurt (an endless body, a tag rewritten under us), so these requests are made
//! here (a referrers answer is an image index, read the same bounded way): the body is read chunk by chunk against the limit, and a PUT can be made
//! conditional on the ETag the registry gave for what was read. Authentication
//! reuses the client's token exchange ([`oci_client::Client::auth`]).
//!
//! Errors are the client's own error type, so retry and not-found logic is shared.

use std::collections::HashMap;
use std::time::Duration;

use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use tokio::sync::Mutex;

/// A manifest as read: bounded, with the headers that matter.
#[derive(Debug, Clone)]
pub(crate) struct FetchedManifest {
    /// The body.
    pub bytes: Vec<u8>,
    /// `Docker-Content-Digest`, when sent.
    pub digest_header: Option<String>,
    /// `ETag`, when sent, as sent (quotes included).
    pub etag: Option<String>,
}

/// The outcome of a bounded manifest read.
#[derive(Debug, Clone)]
pub(crate) enum Fetch {
    /// The manifest.
    Found(FetchedManifest),
    /// The registry has no such manifest.
    Absent,
    /// The body was larger than the limit; reading stopped there.
    TooLarge,
}

/// What a GET reads: a manifest (`/v2/<name>/manifests/<tag or digest>`) or the
/// referrers API's image index of a subject (`/v2/<name>/referrers/<digest>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    /// The manifest the reference names.
    Manifest,
    /// The referrers of the manifest the reference names by digest.
    Referrers,
}

/// What a PUT must find on the registry to succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Precondition {
    /// Nothing: overwrite.
    None,
    /// The tag still holds what this ETag named (`If-Match`).
    IfMatch(String),
    /// The tag does not exist yet (`If-None-Match: *`).
    Absent,
}

/// How a PUT can fail for want of its precondition: the registry answered 412.
pub(crate) fn is_precondition_failed(e: &OciDistributionError) -> bool {
    matches!(e, OciDistributionError::ServerError { code: 412, .. })
}

/// Manifest requests with bounded reads and conditional writes.
pub(crate) struct ManifestClient {
    http: reqwest::Client,
    plain_http_hosts: Vec<String>,
    /// Authorization header value per (registry, repository, push?); `None` for
    /// registries that asked for none.
    authorization: Mutex<HashMap<(String, String, bool), Option<String>>>,
}

/// The settings a [`ManifestClient`] shares with the `oci-client` beside it.
pub(crate) struct ManifestClientConfig<'a> {
    /// Hosts reached over plain HTTP.
    pub plain_http_hosts: Vec<String>,
    /// Extra trusted CA certificates, PEM.
    pub ca_certificates: &'a [Vec<u8>],
    /// Connect and read timeout.
    pub timeout: Duration,
}

impl ManifestClient {
    /// A client; fails only when a CA certificate does not parse.
    pub(crate) fn new(
        config: &ManifestClientConfig<'_>,
    ) -> Result<ManifestClient, OciDistributionError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.timeout)
            .read_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::limited(5))
            .user_agent(concat!("imprint/", env!("CARGO_PKG_VERSION")));
        let mut roots = Vec::new();
        for pem in config.ca_certificates {
            roots.extend(
                reqwest::Certificate::from_pem_bundle(pem)
                    .map_err(|e| OciDistributionError::GenericError(Some(e.to_string())))?,
            );
        }
        if !roots.is_empty() {
            builder = builder.tls_certs_merge(roots);
        }
        Ok(ManifestClient {
            http: builder
                .build()
                .map_err(OciDistributionError::RequestError)?,
            plain_http_hosts: config.plain_http_hosts.clone(),
            authorization: Mutex::new(HashMap::new()),
        })
    }

    fn url(&self, reference: &Reference, resource: Resource) -> String {
        let registry = reference.resolve_registry();
        let scheme = if self.plain_http_hosts.iter().any(|h| h == registry) {
            "http"
        } else {
            "https"
        };
        let target = reference.digest().or(reference.tag()).unwrap_or("latest");
        let endpoint = match resource {
            Resource::Manifest => "manifests",
            Resource::Referrers => "referrers",
        };
        format!(
            "{scheme}://{registry}/v2/{}/{endpoint}/{target}",
            reference.repository()
        )
    }

    /// Sends a request built by `build`, authenticating once when the registry
    /// answers 401.
    async fn send(
        &self,
        oci: &Client,
        auth: &RegistryAuth,
        reference: &Reference,
        push: bool,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, OciDistributionError> {
        let key = (
            reference.resolve_registry().to_string(),
            reference.repository().to_string(),
            push,
        );
        let cached = self.authorization.lock().await.get(&key).cloned();
        let with = |header: &Option<String>| {
            let request = build(&self.http);
            match header {
                Some(h) => request.header(reqwest::header::AUTHORIZATION, h),
                None => request,
            }
        };
        let first = with(&cached.clone().flatten()).send().await?;
        if first.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(first);
        }
        let operation = if push {
            RegistryOperation::Push
        } else {
            RegistryOperation::Pull
        };
        let header = match oci.auth(reference, auth, operation).await? {
            Some(token) => Some(format!("Bearer {token}")),
            None => match auth {
                RegistryAuth::Basic(user, password) => {
                    use base64::Engine as _;
                    let pair = format!("{user}:{password}");
                    Some(format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(pair)
                    ))
                }
                _ => None,
            },
        };
        if header.is_none() || header == cached.flatten() {
            return Ok(first);
        }
        self.authorization.lock().await.insert(key, header.clone());
        Ok(with(&header).send().await?)
    }

    /// Reads the `resource` of `reference` (a manifest, or a referrers index),
    /// refusing a body over `limit` bytes whatever the registry declares. Any 404,
    /// an HTML one too, is [`Fetch::Absent`].
    pub(crate) async fn get(
        &self,
        oci: &Client,
        auth: &RegistryAuth,
        reference: &Reference,
        resource: Resource,
        accept: &[&str],
        limit: u64,
    ) -> Result<Fetch, OciDistributionError> {
        let url = self.url(reference, resource);
        let accept = accept.join(", ");
        let mut response = self
            .send(oci, auth, reference, false, |c| {
                c.get(&url).header(reqwest::header::ACCEPT, &accept)
            })
            .await?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(Fetch::Absent);
        }
        if !status.is_success() {
            return Err(server_error(status, &url, response).await);
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let digest_header = header("docker-content-digest");
        let etag = header("etag");
        if response.content_length().is_some_and(|n| n > limit) {
            return Ok(Fetch::TooLarge);
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if bytes.len() as u64 + chunk.len() as u64 > limit {
                return Ok(Fetch::TooLarge);
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Fetch::Found(FetchedManifest {
            bytes,
            digest_header,
            etag,
        }))
    }

    /// Writes a manifest under `reference` (a tag or a digest), on `precondition`.
    pub(crate) async fn put(
        &self,
        oci: &Client,
        auth: &RegistryAuth,
        reference: &Reference,
        bytes: &[u8],
        media_type: &str,
        precondition: &Precondition,
    ) -> Result<(), OciDistributionError> {
        let url = self.url(reference, Resource::Manifest);
        let response = self
            .send(oci, auth, reference, true, |c| {
                let request = c
                    .put(&url)
                    .header(reqwest::header::CONTENT_TYPE, media_type)
                    .body(bytes.to_vec());
                match precondition {
                    Precondition::None => request,
                    Precondition::IfMatch(etag) => request.header(reqwest::header::IF_MATCH, etag),
                    Precondition::Absent => request.header(reqwest::header::IF_NONE_MATCH, "*"),
                }
            })
            .await?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        Err(server_error(status, &url, response).await)
    }
}

/// A failed response as the client's error: the registry's error envelope when it
/// sent one, else the status with the start of the body.
async fn server_error(
    status: reqwest::StatusCode,
    url: &str,
    response: reqwest::Response,
) -> OciDistributionError {
    // Bound what is read of an error body too.
    let mut body = Vec::new();
    let mut response = response;
    while let Ok(Some(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() > 64 * 1024 {
            break;
        }
    }
    if let Ok(envelope) = serde_json::from_slice::<oci_client::errors::OciEnvelope>(&body)
        && !envelope.errors.is_empty()
        && status != reqwest::StatusCode::TOO_MANY_REQUESTS
        && !status.is_server_error()
    {
        return OciDistributionError::RegistryError {
            envelope,
            url: url.to_string(),
        };
    }
    let text = String::from_utf8_lossy(&body);
    let text: String = text.chars().take(200).collect();
    OciDistributionError::ServerError {
        code: status.as_u16(),
        url: url.to_string(),
        message: if text.trim_start().starts_with('<') {
            "the response is HTML, not a registry's".to_string()
        } else {
            text
        },
    }
}
