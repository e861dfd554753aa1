//! One-layer OCI test images pushed over the registry's HTTP API (distribution
//! spec: a blob upload session, then the manifest), independent of the client
//! the tests exercise.

use std::io::{Read, Write};
use std::net::TcpStream;

use sha2::{Digest, Sha256};

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
    /// The manifest's digest, `sha256:<hex>`.
    pub digest: String,
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
pub fn push_test_image(addr: &str, repo: &str) -> String {
    push_image(addr, repo, "1.0", "amd64")
}

/// Pushes [`TestImage::new`]`(repo, arch)` under `repo:tag` (plain HTTP, no
/// authentication) and returns its manifest digest.
pub fn push_image(addr: &str, repo: &str, tag: &str, arch: &str) -> String {
    let image = TestImage::new(repo, arch);
    let registry = Pusher { addr };
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

/// `sha256:<hex>` of some bytes.
fn sha256_digest(data: &[u8]) -> String {
    let hex: String = Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// An OCI descriptor of some bytes.
fn descriptor(media_type: &str, data: &[u8]) -> serde_json::Value {
    serde_json::json!({"mediaType": media_type, "digest": sha256_digest(data), "size": data.len()})
}

/// A registry on loopback, spoken to over plain HTTP.
struct Pusher<'a> {
    addr: &'a str,
}

impl Pusher<'_> {
    /// Uploads a blob: a session (POST), then its content with its digest (PUT).
    fn blob(&self, repo: &str, data: &[u8]) {
        let path = format!("/v2/{repo}/blobs/uploads/");
        let session = self.request("POST", &path, "application/octet-stream", &[]);
        session.expect(202, "POST", &path);
        let location = session
            .header("location")
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

    /// One HTTP/1.1 request on its own connection.
    fn request(&self, method: &str, path: &str, content_type: &str, body: &[u8]) -> Response {
        let mut stream = TcpStream::connect(self.addr)
            .unwrap_or_else(|e| panic!("connect to the registry at {}: {e}", self.addr));
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.addr,
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        Response::parse(&raw)
    }
}

/// A response's status line and headers (the body is not needed).
struct Response {
    status: u16,
    head: String,
}

impl Response {
    fn parse(raw: &[u8]) -> Response {
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(raw.len());
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Response { status, head }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    fn expect(&self, status: u16, method: &str, path: &str) {
        assert_eq!(self.status, status, "{method} {path}: {}", self.head);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_head_is_read_with_its_headers() {
        let response = Response::parse(
            b"HTTP/1.1 202 Accepted\r\nLocation: /v2/a/blobs/uploads/x?_state=s\r\n\r\nbody",
        );
        assert_eq!(response.status, 202);
        assert_eq!(
            response.header("LOCATION"),
            Some("/v2/a/blobs/uploads/x?_state=s")
        );
        assert_eq!(response.header("Docker-Content-Digest"), None);
    }
}
