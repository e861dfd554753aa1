//! One-layer OCI test images pushed over the registry's HTTP API (distribution
//! spec: a blob upload session, then the manifest), independent of the client
//! the tests exercise.

use imprint_schema::Digest;

const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";

/// A one-layer OCI image's content: its config and layer blobs and its manifest.
pub struct TestImage {
    /// The image config blob (`application/vnd.oci.image.config.v1+json`).
    pub config: Vec<u8>,
    /// The one layer blob (not really a tarball).
    pub layer: Vec<u8>,
    /// The manifest, of media type [`TestImage::MANIFEST_MEDIA_TYPE`].
    pub manifest: Vec<u8>,
    /// The manifest's digest.
    pub digest: Digest,
}

impl TestImage {
    /// The manifest's media type.
    pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

    /// The image for `arch` in `repo`; content differs per repository and
    /// architecture, so each has its own digest.
    pub fn new(repo: &str, arch: &str) -> TestImage {
        let layer = format!("not really a tarball, but the {arch} blob of {repo}").into_bytes();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": arch, "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [sha256_digest(&layer)]}
        }))
        .unwrap();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": TestImage::MANIFEST_MEDIA_TYPE,
            "config": descriptor(CONFIG_MEDIA_TYPE, &config),
            "layers": [descriptor(LAYER_MEDIA_TYPE, &layer)],
        }))
        .unwrap();
        let digest = sha256_digest(&manifest);
        TestImage {
            config,
            layer,
            manifest,
            digest,
        }
    }
}

/// Pushes a one-layer amd64 OCI image as `repo:1.0` to the registry at `addr`
/// (`127.0.0.1:<port>`, plain HTTP, no authentication) and returns its manifest
/// digest.
pub fn push_test_image(addr: &str, repo: &str) -> Digest {
    push_image(addr, repo, "1.0", "amd64")
}

/// Pushes [`TestImage::new`]`(repo, arch)` under `repo:tag` (plain HTTP, no
/// authentication) and returns its manifest digest.
pub fn push_image(addr: &str, repo: &str, tag: &str, arch: &str) -> Digest {
    // On a thread of its own: callers may be async tests, inside a runtime.
    std::thread::scope(|scope| {
        scope
            .spawn(|| push_on_this_thread(addr, repo, tag, arch))
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

fn push_on_this_thread(addr: &str, repo: &str, tag: &str, arch: &str) -> Digest {
    let image = TestImage::new(repo, arch);
    let registry = Pusher::new(addr);
    registry.blob(repo, &image.config);
    registry.blob(repo, &image.layer);
    let path = format!("/v2/{repo}/manifests/{tag}");
    let response = registry.request(
        "PUT",
        &path,
        TestImage::MANIFEST_MEDIA_TYPE,
        &image.manifest,
    );
    response.expect(201, "PUT", &path);
    image.digest
}

/// The digest of some bytes.
fn sha256_digest(data: &[u8]) -> Digest {
    Digest::sha256_of(data)
}

/// An OCI descriptor of some bytes.
fn descriptor(media_type: &str, data: &[u8]) -> serde_json::Value {
    serde_json::json!({"mediaType": media_type, "digest": sha256_digest(data), "size": data.len()})
}

/// A registry on loopback, spoken to over plain HTTP (reqwest, on a runtime of
/// its own so the tests' helpers stay blocking).
struct Pusher<'a> {
    addr: &'a str,
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl<'a> Pusher<'a> {
    fn new(addr: &'a str) -> Pusher<'a> {
        Pusher {
            addr,
            client: reqwest::Client::new(),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime starts"),
        }
    }

    /// Uploads a blob: a session (POST), then its content with its digest (PUT).
    fn blob(&self, repo: &str, data: &[u8]) {
        let path = format!("/v2/{repo}/blobs/uploads/");
        let session = self.request("POST", &path, "application/octet-stream", &[]);
        session.expect(202, "POST", &path);
        let location = session
            .location
            .as_deref()
            .unwrap_or_else(|| panic!("POST {path}: no Location"));
        // An absolute URL names this registry (or the proxy in front of it): keep its path.
        let location = match location.split_once("://") {
            Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
            None => location,
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{separator}digest={}", sha256_digest(data));
        let response = self.request("PUT", &put, "application/octet-stream", data);
        response.expect(201, "PUT", &put);
    }

    /// One request; its status and `Location`.
    fn request(&self, method: &str, path: &str, content_type: &str, body: &[u8]) -> Response {
        let url = format!("http://{}{path}", self.addr);
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let request = self
            .client
            .request(method.clone(), &url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body.to_vec());
        let response = self
            .runtime
            .block_on(request.send())
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let status = response.status().as_u16();
        let text = self.runtime.block_on(response.text()).unwrap_or_default();
        Response {
            status,
            location,
            text,
        }
    }
}

/// What the tests need of a response.
struct Response {
    status: u16,
    location: Option<String>,
    text: String,
}

impl Response {
    fn expect(&self, status: u16, method: &str, path: &str) {
        assert_eq!(self.status, status, "{method} {path}: {}", self.text);
    }
}
