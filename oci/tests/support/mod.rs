//! Test support shared by the tests that need a real registry.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use imprint_oci::layout::{Descriptor, MANIFEST_MEDIA_TYPE};
use imprint_oci::registry::{Registry, parse_reference};

/// A `docker-registry` process serving from a temporary directory.
pub struct TestRegistry {
    child: Child,
    /// `127.0.0.1:<port>`.
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl TestRegistry {
    /// Starts one; `None` (with a message) where docker-registry is not installed.
    pub fn start() -> Option<TestRegistry> {
        TestRegistry::start_with_config("")
    }

    /// Starts one with extra top-level config (such as an `auth:` section).
    pub fn start_with_config(extra: &str) -> Option<TestRegistry> {
        let binary = PathBuf::from("/usr/bin/docker-registry");
        if !binary.exists() {
            eprintln!("skipped: /usr/bin/docker-registry absent (bash .ci/setup installs it)");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{extra}",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let registry = TestRegistry {
            child,
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while !registry.ready() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not answer on {}",
                registry.addr
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(registry)
    }

    fn ready(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(&self.addr) else {
            return false;
        };
        let request = format!(
            "GET /v2/ HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        let mut response = String::new();
        s.write_all(request.as_bytes()).is_ok()
            && s.read_to_string(&mut response).is_ok()
            && (response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.1 401"))
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pushes a one-layer OCI image and returns its manifest digest.
pub async fn push_test_image(client: &Registry, addr: &str, repo: &str) -> String {
    let repository = parse_reference(&format!("{addr}/{repo}:1.0")).unwrap();
    // Content differs per repository, so each test image has its own digest.
    let layer = format!("not really a tarball, but the blob of {repo}").into_bytes();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [imprint_schema::document::sha256_digest(&layer)]}
    }))
    .unwrap();
    client.push_blob(&repository, &config).await.unwrap();
    client.push_blob(&repository, &layer).await.unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": Descriptor::of("application/vnd.oci.image.config.v1+json", &config),
        "layers": [Descriptor::of("application/vnd.oci.image.layer.v1.tar", &layer)],
    }))
    .unwrap();
    client
        .push_manifest(&repository, &manifest, MANIFEST_MEDIA_TYPE)
        .await
        .unwrap()
}
