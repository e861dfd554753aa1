//! Helpers shared by the real-kernel tests: podman set up as this machine needs
//! it, a busybox image in a real registry, and a running agent.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use imprint_test_support as support;

/// One at a time: each test starts its own agent and containers, and the machine
/// has two cores.
pub static SERIAL: Mutex<()> = Mutex::new(());

/// Why the real-kernel tests cannot run on this machine, if they cannot (each a
/// [`support::skip`], so a failure under `IMPRINT_NO_SKIP=1`).
pub fn skip_reason() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("not root (the eBPF sensor needs root; CI runs as root)".into());
    }
    if imprint_agent_ebpf::OBJECT.is_none() {
        return Some("built without the BPF object (clang-19 absent)".into());
    }
    if !Path::new("/sys/kernel/tracing/events").is_dir() {
        return Some("tracefs is not mounted (bash .ci/setup mounts it)".into());
    }
    for tool in ["podman", "runc"] {
        if Command::new(tool).arg("--version").output().is_err() {
            return Some(format!(
                "{tool} is not installed (bash .ci/setup installs it)"
            ));
        }
    }
    if !Path::new("/bin/busybox").exists() {
        return Some("busybox-static is not installed".into());
    }
    None
}

/// podman configured as this machine needs it: runc, cgroupfs, host network,
/// lower ulimits.
pub struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    pub fn new() -> Podman {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("containers.conf"),
            "[containers]\nnetns = \"host\"\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n[engine]\ncgroup_manager = \"cgroupfs\"\nruntime = \"runc\"\n",
        )
        .unwrap();
        Podman { dir }
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", self.dir.path().join("containers.conf"));
        c
    }

    pub fn run(&self, args: &[&str]) -> String {
        let out = self.command().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Builds a busybox image (`marker` makes its digest unique), pushes it to
    /// the registry and returns `registry/repo@digest`.
    pub fn push_busybox(&self, registry: &str, repo: &str, marker: &str) -> (String, String) {
        let root = self.dir.path().join(format!("rootfs-{marker}"));
        for d in ["bin", "etc", "tmp"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
        for applet in ["sh", "cat", "wget", "sleep", "echo"] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
        std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        std::fs::write(root.join("etc/marker"), marker).unwrap();
        let tar = self.dir.path().join(format!("rootfs-{marker}.tar"));
        let status = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(status.success());
        let local = format!("localhost/imprint-agent-test:{marker}");
        self.run(&["import", tar.to_str().unwrap(), &local]);
        let digest_file = self.dir.path().join(format!("digest-{marker}"));
        self.run(&[
            "push",
            "--tls-verify=false",
            "--digestfile",
            digest_file.to_str().unwrap(),
            &local,
            &format!("docker://{registry}/{repo}:{marker}"),
        ]);
        let digest = std::fs::read_to_string(&digest_file)
            .unwrap()
            .trim()
            .to_string();
        (format!("{registry}/{repo}@{digest}"), digest)
    }
}

/// A running agent; stopped (SIGTERM) on drop.
pub struct Agent {
    child: Child,
    log: std::sync::Arc<Mutex<Vec<String>>>,
}

impl Agent {
    pub fn start(out: &Path, state: &Path, period: &str, extra: &[&str]) -> Agent {
        let mut args: Vec<std::ffi::OsString> = [
            "--mode",
            "learn",
            "--learning-period",
            period,
            "--persist-every",
            "1",
            "--out",
        ]
        .iter()
        .map(Into::into)
        .collect();
        args.push(out.into());
        args.push("--state-dir".into());
        args.push(state.into());
        args.extend(extra.iter().map(Into::into));
        Agent::spawn(&args)
    }

    /// Starts the agent with these arguments; returns once its sensor is attached.
    pub fn spawn(args: &[std::ffi::OsString]) -> Agent {
        let mut child = Command::new(env!("CARGO_BIN_EXE_imprint-agent"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(Mutex::new(Vec::new()));
        let lines = log.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // A fatal error ends the start; other lines (a resolver that
                // cannot open its cache, say) are only logged.
                let fatal = line.starts_with("error") || line.starts_with("imprint-agent: error");
                if line.contains("sensor attached") || fatal {
                    let _ = ready_tx.send(line.clone());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let first = ready_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the agent did not start");
        assert!(first.contains("sensor attached"), "{first}");
        Agent { child, log }
    }

    pub fn stop(&mut self) {
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(self.child.id() as i32).unwrap(),
            rustix::process::Signal::TERM,
        );
        let _ = self.child.wait();
    }

    /// Waits for the agent to exit on its own; its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the agent did not exit within {timeout:?}:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits until a log line contains `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.log().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in the agent's log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn wait_for_profile(
    out: &Path,
    digest: &str,
    timeout: Duration,
    agent: &Agent,
) -> imprint_schema::Profile {
    let path = out.join(format!("{}.yaml", digest.replace(':', "-")));
    let deadline = Instant::now() + timeout;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "no profile for {digest} in {}; agent log:\n{}",
            out.display(),
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    imprint_schema::parse_profile(&std::fs::read(&path).unwrap()).unwrap()
}

/// What every real-kernel test starts from: the machine checked, the tests
/// serialized, a registry and podman. `None` (having said why) when the test must
/// skip.
pub struct Env {
    /// Held for the whole test: bind it (`serial: _serial`), or the lock is released.
    pub serial: std::sync::MutexGuard<'static, ()>,
    /// A real registry on a free loopback port.
    pub registry: support::TestRegistry,
    /// podman, configured for this machine.
    pub podman: Podman,
}

pub fn setup() -> Option<Env> {
    if let Some(why) = skip_reason() {
        support::skip(why);
        return None;
    }
    let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    Some(Env {
        serial,
        registry: support::TestRegistry::start()?,
        podman: Podman::new(),
    })
}

/// Polls `ok` until it holds, failing the test after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Pushes `profile` beside its image, and signs and attests it with `key` when given.
pub fn publish(
    registry: &str,
    repo: &str,
    profile_path: &Path,
    key: Option<&imprint_oci::SigningKey>,
) -> String {
    publish_to(registry, repo, repo, profile_path, key)
}

/// Pushes `profile` (of an image in `image_repo`) into `repo`; signs and attests it
/// with `key` when given. Returns the artifact digest.
pub fn publish_to(
    registry: &str,
    repo: &str,
    image_repo: &str,
    profile_path: &Path,
    key: Option<&imprint_oci::SigningKey>,
) -> String {
    let profile = imprint_schema::parse_profile(&std::fs::read(profile_path).unwrap()).unwrap();
    let image =
        imprint_oci::parse_reference(&format!("{registry}/{image_repo}@{}", profile.image.digest))
            .unwrap();
    let client = imprint_oci::Registry::new(&Default::default(), &[&image]).unwrap();
    match key {
        Some(key) => publish_with(&client, registry, repo, image_repo, profile_path, key),
        None => push_profile(&client, registry, repo, &image, &profile).1,
    }
}

/// How many alerts of `rule` the webhook receiver got.
pub fn alerts_with_rule(received: &Received, rule: &str) -> usize {
    let received = received.lock().unwrap();
    (received.iter())
        .filter_map(|(_, batch)| batch.as_array())
        .flatten()
        .filter(|alert| alert["rule"] == rule)
        .count()
}

/// Request heads and JSON bodies a webhook receiver got.
pub type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>>;

/// Starts a webhook receiver on a free loopback port: its address, and what it received.
/// A new signing key, and its public half written to `dir/cosign.pub`.
pub fn trusted_key(dir: &Path) -> (imprint_oci::SigningKey, std::path::PathBuf) {
    let key = imprint_oci::SigningKey::generate(imprint_oci::KeyAlgorithm::EcdsaP256);
    let public = dir.join("cosign.pub");
    std::fs::write(&public, key.verifying_key().to_pem()).unwrap();
    (key, public)
}

pub fn webhook_receiver() -> (String, Received) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = received.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(conn);
            let mut head = String::new();
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            if let Ok(v) = serde_json::from_slice(&body) {
                sink.lock().unwrap().push((head, v));
            }
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (addr, received)
}

/// Builds `tests/behaviours/attacks.c` (static, clang-19) into `dir`.
pub fn build_attacks(dir: &Path) -> std::path::PathBuf {
    let attacks = dir.join("attacks");
    let built = Command::new("clang-19")
        .args(["-static", "-O2", "-o"])
        .arg(&attacks)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/behaviours/attacks.c"))
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        built,
        "clang-19 could not build tests/behaviours/attacks.c (libc6-dev?)"
    );
    attacks
}

/// Pushes the image `Podman::push_busybox` built for `marker` again, to
/// `destination` (`registry/repo:tag`), as `creds` (`user:password`) when given.
/// The same local image pushed again has the same manifest digest, returned.
pub fn push_again(podman: &Podman, marker: &str, destination: &str, creds: Option<&str>) -> String {
    let digest_file = podman.dir.path().join(format!("digest-again-{marker}"));
    let local = format!("localhost/imprint-agent-test:{marker}");
    let mut args = vec!["push", "--tls-verify=false", "--digestfile"];
    args.push(digest_file.to_str().unwrap());
    let creds_flag;
    if let Some(c) = creds {
        creds_flag = format!("--creds={c}");
        args.push(&creds_flag);
    }
    let target = format!("docker://{destination}");
    args.extend([local.as_str(), target.as_str()]);
    podman.run(&args);
    std::fs::read_to_string(&digest_file)
        .unwrap()
        .trim()
        .to_string()
}

/// [`publish_to`] through `client` (an authenticated one, for a private registry).
pub fn publish_with(
    client: &imprint_oci::Registry,
    registry: &str,
    repo: &str,
    image_repo: &str,
    profile_path: &Path,
    key: &imprint_oci::SigningKey,
) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let profile = imprint_schema::parse_profile(&std::fs::read(profile_path).unwrap()).unwrap();
    let image =
        imprint_oci::parse_reference(&format!("{registry}/{image_repo}@{}", profile.image.digest))
            .unwrap();
    let (artifact, digest) = push_profile(client, registry, repo, &image, &profile);
    let at = imprint_oci::parse_reference(&format!("{registry}/{repo}@{digest}")).unwrap();
    rt.block_on(async {
        client
            .sign(&at, key, false, jiff::Timestamp::now())
            .await
            .unwrap();
        let predicate = imprint_oci::signing::ProfilePredicate::for_artifact(
            &artifact.manifest,
            &profile,
            "https://ci.example/imprint/e2e",
            0,
        );
        client
            .attest(
                &at,
                key,
                imprint_oci::signing::PROFILE_PREDICATE_TYPE,
                serde_json::to_value(predicate).unwrap(),
                false,
                jiff::Timestamp::now(),
            )
            .await
            .unwrap();
    });
    digest
}

/// Builds `profile`'s artifact for `image` and pushes it to `registry/repo`
/// (unsigned): the artifact and its digest.
fn push_profile(
    client: &imprint_oci::Registry,
    registry: &str,
    repo: &str,
    image: &imprint_oci::Reference,
    profile: &imprint_schema::Profile,
) -> (imprint_oci::layout::Artifact, String) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let subject = client.resolve(image).await.unwrap();
        let artifact =
            imprint_oci::layout::build(profile, &subject, jiff::Timestamp::now()).unwrap();
        let repository = imprint_oci::parse_reference(&format!("{registry}/{repo}")).unwrap();
        let digest = client
            .push_artifact(&repository, &artifact, None)
            .await
            .unwrap();
        (artifact, digest.to_string())
    })
}

impl Agent {
    /// [`Agent::spawn`] with these environment variables set for the agent (such
    /// as `REGISTRY_AUTH_FILE`), and the credential variables of this process
    /// removed.
    pub fn spawn_with_env(args: &[std::ffi::OsString], env: &[(&str, &Path)]) -> Agent {
        let mut command = Command::new(env!("CARGO_BIN_EXE_imprint-agent"));
        command
            .args(args)
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("DOCKER_CONFIG")
            .envs(env.iter().map(|(k, v)| (k, v.as_os_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(Mutex::new(Vec::new()));
        let lines = log.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // A fatal error ends the start; other lines (a resolver that
                // cannot open its cache, say) are only logged.
                let fatal = line.starts_with("error") || line.starts_with("imprint-agent: error");
                if line.contains("sensor attached") || fatal {
                    let _ = ready_tx.send(line.clone());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let first = ready_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the agent did not start");
        assert!(first.contains("sensor attached"), "{first}");
        Agent { child, log }
    }
}

/// Whether the webhook received an `anomaly.exec` alert for `digest`.
pub fn exec_anomaly_for(received: &Received, digest: &str) -> bool {
    received.lock().unwrap().iter().any(|(_, batch)| {
        batch.as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x["rule"] == "anomaly.exec" && x["imageDigest"] == digest)
        })
    })
}

/// Pushes, under `tag`, a multi-platform index of the manifests `amd64` and
/// `arm64` name (arm64 first: taking the first entry would be wrong), of the
/// kind their media type asks for. Returns the index's digest.
pub fn push_index(
    client: &imprint_oci::Registry,
    amd64: &imprint_oci::Reference,
    arm64: &imprint_oci::Reference,
    tag: &imprint_oci::Reference,
) -> imprint_schema::Digest {
    use imprint_oci::layout;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let amd64 = client.resolve(amd64).await.unwrap();
        let arm64 = client.resolve(arm64).await.unwrap();
        let list_type = if amd64.media_type == layout::DOCKER_MANIFEST_MEDIA_TYPE {
            layout::DOCKER_MANIFEST_LIST_MEDIA_TYPE
        } else {
            layout::INDEX_MEDIA_TYPE
        };
        let entry = |d: &layout::Descriptor, platform: serde_json::Value| {
            serde_json::json!({
                "mediaType": d.media_type, "digest": d.digest, "size": d.size,
                "platform": platform,
            })
        };
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": list_type,
            "manifests": [
                entry(&arm64, serde_json::json!({"architecture": "arm64", "os": "linux", "variant": "v8"})),
                entry(&amd64, serde_json::json!({"architecture": "amd64", "os": "linux"})),
            ],
        }))
        .unwrap();
        client.push_manifest(tag, &index, list_type).await.unwrap()
    })
}
