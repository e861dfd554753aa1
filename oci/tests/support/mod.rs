//! Test support shared by the tests that need a real registry.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use imprint_oci::layout::{Descriptor, MANIFEST_MEDIA_TYPE};
use imprint_oci::registry::{Registry, parse_reference};

/// `127.0.0.1:<port>` with a port that was free a moment ago (and nothing listens on).
pub fn free_loopback_addr() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

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
        TestRegistry::start_full(extra, "")
    }

    /// Starts one serving TLS with this certificate and key (PEM files).
    pub fn start_tls(certificate: &std::path::Path, key: &std::path::Path) -> Option<TestRegistry> {
        TestRegistry::start_full(
            "",
            &format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                certificate.display(),
                key.display()
            ),
        )
    }

    fn start_full(extra: &str, http_extra: &str) -> Option<TestRegistry> {
        let binary = PathBuf::from("/usr/bin/docker-registry");
        if !binary.exists() {
            eprintln!("skipped: /usr/bin/docker-registry absent (bash .ci/setup installs it)");
            return None;
        }
        let addr = free_loopback_addr();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{http_extra}{extra}",
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
            && response.starts_with("HTTP/1.")
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
    push_image(client, addr, repo, "1.0", "amd64").await
}

/// Pushes a one-layer image for `arch` under `repo:tag`; content differs per
/// repository and architecture, so each has its own digest.
pub async fn push_image(
    client: &Registry,
    addr: &str,
    repo: &str,
    tag: &str,
    arch: &str,
) -> String {
    let repository = parse_reference(&format!("{addr}/{repo}:{tag}")).unwrap();
    let layer = format!("not really a tarball, but the {arch} blob of {repo}").into_bytes();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch, "os": "linux",
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

/// What the fault-injecting proxy does with one request.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Pass it to the registry.
    Forward,
    /// Answer with this status instead.
    Status(u16),
    /// Close the connection without answering (the registry went away).
    Drop,
    /// Redirect to the same URL, forever.
    RedirectLoop,
    /// A 404 with an HTML body, as a web server in front of a registry sends it.
    Html404,
    /// A 200 with this content type and body instead of the registry's.
    Serve(&'static str, fn() -> Vec<u8>),
    /// A 200 with this content type, no length, and a body that does not end.
    Endless(&'static str),
}

/// An HTTP proxy in front of a real registry that injects faults by request. It
/// handles one request per connection (it answers with `Connection: close`), so each
/// request can be judged on its own.
pub struct FaultProxy {
    /// `127.0.0.1:<port>`.
    pub addr: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    heads: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream`; `rule` gets the request line and the request's
    /// number (from 0).
    pub fn start(
        upstream: &str,
        rule: impl Fn(&str, usize) -> Fault + Send + Sync + 'static,
    ) -> FaultProxy {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let (upstream, rule, count) = (
            upstream.to_string(),
            Arc::new(rule),
            Arc::new(AtomicUsize::new(0)),
        );
        let stopped = stop.clone();
        let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let recorded = heads.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut client) = conn else { continue };
                let (upstream, rule, count) = (upstream.clone(), rule.clone(), count.clone());
                let recorded = recorded.clone();
                std::thread::spawn(move || {
                    let Some((head, body)) = read_request(&mut client) else {
                        return;
                    };
                    recorded.lock().unwrap().push(head.clone());
                    let line = head.lines().next().unwrap_or("").to_string();
                    match rule(&line, count.fetch_add(1, Ordering::SeqCst)) {
                        Fault::Drop => {}
                        Fault::Status(code) => {
                            let _ = client.write_all(
                                format!("HTTP/1.1 {code} Injected\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                                    .as_bytes(),
                            );
                        }
                        Fault::RedirectLoop => {
                            let path = line.split(' ').nth(1).unwrap_or("/");
                            let _ = client.write_all(
                                format!("HTTP/1.1 302 Found\r\nLocation: {path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                                    .as_bytes(),
                            );
                        }
                        Fault::Html404 => {
                            let body = "<html><body><h1>404 Not Found</h1></body></html>";
                            let _ = client.write_all(
                                format!("HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
                                    .as_bytes(),
                            );
                        }
                        Fault::Serve(content_type, body) => {
                            let body = body();
                            let head = format!(
                                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                body.len()
                            );
                            let _ = client.write_all(head.as_bytes());
                            let _ = client.write_all(&body);
                        }
                        Fault::Endless(content_type) => {
                            let head = format!(
                                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nConnection: close\r\n\r\n"
                            );
                            let _ = client.write_all(head.as_bytes());
                            let chunk = vec![b' '; 64 * 1024];
                            // Until the client hangs up (or 1 GiB, to bound a broken test).
                            for _ in 0..16 * 1024 {
                                if client.write_all(&chunk).is_err() {
                                    break;
                                }
                            }
                        }
                        Fault::Forward => {
                            let Ok(mut up) = TcpStream::connect(&upstream) else {
                                return;
                            };
                            let head: String = head
                                .split("\r\n")
                                .filter(|h| !h.to_ascii_lowercase().starts_with("connection:"))
                                .collect::<Vec<_>>()
                                .join("\r\n");
                            let head =
                                head.trim_end().to_string() + "\r\nConnection: close\r\n\r\n";
                            let _ = up.write_all(head.as_bytes());
                            let _ = up.write_all(&body);
                            let mut response = Vec::new();
                            let _ = up.read_to_end(&mut response);
                            // Tell the client this connection ends with the response.
                            let text = String::from_utf8_lossy(&response);
                            let response = match text.find("\r\n\r\n") {
                                Some(i) => {
                                    let (h, rest) = response.split_at(i);
                                    let h = String::from_utf8_lossy(h)
                                        .split("\r\n")
                                        .filter(|l| {
                                            !l.to_ascii_lowercase().starts_with("connection:")
                                        })
                                        .collect::<Vec<_>>()
                                        .join("\r\n")
                                        + "\r\nConnection: close";
                                    [h.as_bytes(), rest].concat()
                                }
                                None => response,
                            };
                            let _ = client.write_all(&response);
                        }
                    }
                });
            }
        });
        FaultProxy { addr, stop, heads }
    }

    /// The heads of the requests seen so far (request line and headers).
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
    }
}

/// Reads one request's head and its Content-Length body.
fn read_request(client: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte).ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    client.read_exact(&mut body).ok()?;
    Some((head, body))
}
