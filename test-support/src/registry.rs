//! A real `docker-registry` on a free loopback port, serving from a temporary directory.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::skip::skip;

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
    /// The htpasswd file of a private registry, kept while it runs.
    _auth_dir: Option<tempfile::TempDir>,
}

impl TestRegistry {
    /// Starts one; `None` where docker-registry is not installed (a [`skip`], so a
    /// failure under `IMPRINT_NO_SKIP=1`).
    pub fn start() -> Option<TestRegistry> {
        TestRegistry::start_with_config("")
    }

    /// Starts one with extra top-level config (such as an `auth:` section).
    pub fn start_with_config(extra: &str) -> Option<TestRegistry> {
        TestRegistry::start_full(extra, "")
    }

    /// Starts a private one: every request needs HTTP basic auth as `user` with
    /// `password` (an htpasswd file, bcrypt, as docker-registry reads it).
    pub fn start_with_htpasswd(user: &str, password: &str) -> Option<TestRegistry> {
        let dir = tempfile::tempdir().unwrap();
        let htpasswd = dir.path().join("htpasswd");
        let hash = bcrypt::hash(password, 4).unwrap();
        std::fs::write(&htpasswd, format!("{user}:{hash}\n")).unwrap();
        let mut registry = TestRegistry::start_with_config(&format!(
            "auth:\n  htpasswd:\n    realm: imprint-test\n    path: {}\n",
            htpasswd.display()
        ))?;
        registry._auth_dir = Some(dir);
        Some(registry)
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
            skip("/usr/bin/docker-registry absent (bash .ci/setup installs it)");
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
            _auth_dir: None,
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
