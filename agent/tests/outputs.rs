//! The syslog output against a real rsyslog (Debian `rsyslog`, started on free
//! loopback ports with its own configuration), over UDP and over TCP with octet
//! counting, through the spool. No root needed.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use imprint_agent::outputs::{Outputs, SyslogTarget, Target, TlsFiles};
use imprint_engine::{Alert, Severity, Source};

struct Rsyslog(Child);

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Rsyslog {
    /// Starts rsyslogd in `dir` with these inputs (config lines), writing every
    /// message's raw text to `received.log`; ready once `tcp_port` accepts.
    fn start(dir: &Path, global: &str, inputs: &str, tcp_port: u16) -> Rsyslog {
        let conf = dir.join("rsyslog.conf");
        std::fs::write(
            &conf,
            format!(
                "global(workDirectory=\"{work}\"{global})\n{inputs}template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n*.* action(type=\"omfile\" file=\"{out}\" template=\"raw\")\n",
                work = dir.display(),
                out = dir.join("received.log").display()
            ),
        )
        .unwrap();
        let rsyslog = Rsyslog(
            Command::new("/usr/sbin/rsyslogd")
                .arg("-n")
                .arg("-f")
                .arg(&conf)
                .arg("-i")
                .arg(dir.join("rsyslogd.pid"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", tcp_port)).is_err() {
            assert!(Instant::now() < deadline, "rsyslogd did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        rsyslog
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn alert(rule: &str) -> Alert {
    Alert {
        rule: rule.into(),
        source: Source::Behaviour,
        severity: Severity::High,
        mitre: vec!["T1059".into()],
        message: format!("{rule} happened"),
        subject: "/bin/sh".into(),
        time: jiff::Timestamp::now(),
        container_id: "c0ffee".into(),
        image_digest: Some(
            "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                .parse()
                .unwrap(),
        ),
        node: Some("node-1".into()),
        pid: 7,
        comm: None,
    }
}

#[test]
fn alerts_reach_rsyslog_over_udp_and_tcp_as_rfc5424() {
    if !Path::new("/usr/sbin/rsyslogd").exists() {
        imprint_test_support::skip("rsyslog is not installed (bash .ci/setup installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (udp, tcp) = (free_port(), free_port());
    let out = dir.path().join("received.log");
    let _rsyslog = Rsyslog::start(
        dir.path(),
        "",
        &format!(
            "module(load=\"imudp\")\nmodule(load=\"imtcp\")\ninput(type=\"imudp\" address=\"127.0.0.1\" port=\"{udp}\")\ninput(type=\"imtcp\" address=\"127.0.0.1\" port=\"{tcp}\")\n"
        ),
        tcp,
    );
    let outputs = Outputs::start(
        vec![
            syslog(&format!("udp://127.0.0.1:{udp}"), &TlsFiles::default()),
            syslog(&format!("tcp://127.0.0.1:{tcp}"), &TlsFiles::default()),
        ],
        false,
        &dir.path().join("spool"),
        "node-1".into(),
    )
    .unwrap();
    outputs.send(&[(alert("reverse-shell"), "i-1".into())]);
    outputs.send(&[(alert("ptrace-attach"), "i-2".into())]);
    outputs.shutdown(Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        // Each alert arrives twice: once per transport.
        if lines
            .iter()
            .filter(|l| l.contains("reverse-shell happened"))
            .count()
            == 2
            && lines
                .iter()
                .filter(|l| l.contains("ptrace-attach happened"))
                .count()
                == 2
        {
            for l in &lines {
                assert!(
                    l.starts_with("<35>1 "),
                    "not RFC 5424 (security, error): {l}"
                );
                assert!(l.contains(" node-1 imprint-agent - "), "{l}");
                assert!(l.contains("[imprint@32473 rule=\""), "{l}");
            }
            break;
        }
        assert!(Instant::now() < deadline, "rsyslog received:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn syslog(url: &str, tls: &TlsFiles) -> Target {
    Target::Syslog(SyslogTarget::new(url, tls).unwrap())
}

/// A CA and the certificates it issues, written as PEM files.
struct Pki {
    ca: rcgen::Issuer<'static, rcgen::KeyPair>,
    dir: std::path::PathBuf,
}

impl Pki {
    fn new(dir: &Path, name: &str) -> Pki {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        Pki {
            ca: rcgen::Issuer::new(params, key),
            dir: dir.to_path_buf(),
        }
    }

    /// Issues a certificate for `names`; returns (certificate, key) paths.
    fn issue(&self, file: &str, names: &[&str]) -> (std::path::PathBuf, std::path::PathBuf) {
        let params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        let (c, k) = (
            self.dir.join(format!("{file}.pem")),
            self.dir.join(format!("{file}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }
}

#[test]
fn alerts_reach_rsyslog_over_tls_only_with_the_right_ca_and_client_certificate() {
    // Debian's multiarch directory: x86_64-linux-gnu, aarch64-linux-gnu.
    let module = format!(
        "/usr/lib/{}-linux-gnu/rsyslog/lmnsd_ossl.so",
        std::env::consts::ARCH
    );
    if !Path::new(&module).exists() {
        imprint_test_support::skip("rsyslog-openssl is not installed (bash .ci/setup installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "ca");
    let stranger = Pki::new(dir.path(), "stranger-ca");
    let (server_cert, server_key) = pki.issue("server", &["localhost", "127.0.0.1"]);
    let (client_cert, client_key) = pki.issue("client", &["node-1"]);
    let (stranger_cert, stranger_key) = stranger.issue("stranger-client", &["node-1"]);
    let port = free_port();
    let out = dir.path().join("received.log");
    // Senders must show a certificate from our CA (rsyslog's x509/certvalid).
    let _rsyslog = Rsyslog::start(
        dir.path(),
        &format!(
            " DefaultNetstreamDriver=\"ossl\" DefaultNetstreamDriverCAFile=\"{ca}\" DefaultNetstreamDriverCertFile=\"{cert}\" DefaultNetstreamDriverKeyFile=\"{key}\"",
            ca = dir.path().join("ca.pem").display(),
            cert = server_cert.display(),
            key = server_key.display(),
        ),
        &format!(
            "module(load=\"imtcp\" StreamDriver.Name=\"ossl\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"x509/certvalid\")\ninput(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\")\n"
        ),
        port,
    );
    let url = format!("tls://localhost:{port}");
    let files = |ca: &str, cert: &Path, key: &Path| TlsFiles {
        ca: Some(dir.path().join(ca)),
        cert: Some(cert.to_path_buf()),
        key: Some(key.to_path_buf()),
    };

    // Refused: a receiver we do not trust, and a sender the receiver does not trust.
    for (case, tls) in [
        (
            "untrusted-receiver",
            files("stranger-ca.pem", &client_cert, &client_key),
        ),
        (
            "untrusted-sender",
            files("ca.pem", &stranger_cert, &stranger_key),
        ),
    ] {
        let spool = dir.path().join(format!("spool-{case}"));
        let outputs =
            Outputs::start(vec![syslog(&url, &tls)], false, &spool, "node-1".into()).unwrap();
        outputs.send(&[(alert(case), "i-0".into())]);
        std::thread::sleep(Duration::from_secs(4));
        assert_eq!(outputs.queued(), 1, "{case}: the batch must stay spooled");
        outputs.shutdown(Duration::ZERO);
    }

    // Accepted: our CA, our client certificate. The batch spooled by the refused
    // sender above is what a restart with the right files delivers first.
    let spool = dir.path().join("spool-untrusted-sender");
    let outputs = Outputs::start(
        vec![syslog(&url, &files("ca.pem", &client_cert, &client_key))],
        false,
        &spool,
        "node-1".into(),
    )
    .unwrap();
    outputs.send(&[(alert("reverse-shell"), "i-1".into())]);
    outputs.shutdown(Duration::from_secs(15));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() >= 2 {
            assert_eq!(lines.len(), 2, "{text}");
            assert!(lines[0].contains("untrusted-sender happened"), "{text}");
            assert!(lines[1].contains("reverse-shell happened"), "{text}");
            for l in &lines {
                assert!(l.starts_with("<35>1 "), "not RFC 5424: {l}");
                assert!(l.contains("[imprint@32473 rule=\""), "{l}");
            }
            break;
        }
        assert!(Instant::now() < deadline, "rsyslog received:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !std::fs::read_to_string(&out)
            .unwrap()
            .contains("untrusted-receiver"),
        "a receiver we do not trust got the alert"
    );
}

/// Alerts carry what the attacked container named: a subject with a newline and
/// a syslog header after it must arrive as one line, not as a forged message.
/// rsyslog's own escaping on receipt is turned off, so only ours is tested; a
/// raw newline sent beside it shows that this receiver would split a line.
#[test]
fn a_newline_in_a_subject_cannot_forge_a_syslog_line() {
    if !Path::new("/usr/sbin/rsyslogd").exists() {
        imprint_test_support::skip("rsyslog is not installed (bash .ci/setup installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (udp, tcp) = (free_port(), free_port());
    let out = dir.path().join("received.log");
    let _rsyslog = Rsyslog::start(
        dir.path(),
        " parser.escapeControlCharactersOnReceive=\"off\"",
        &format!(
            "module(load=\"imudp\")\nmodule(load=\"imtcp\")\ninput(type=\"imudp\" address=\"127.0.0.1\" port=\"{udp}\")\ninput(type=\"imtcp\" address=\"127.0.0.1\" port=\"{tcp}\")\n"
        ),
        tcp,
    );
    let forged = "/tmp/x\n<13>1 2026-01-01T00:00:00Z node-1 sshd - - - Accepted password for root";
    let hostile = Alert {
        subject: forged.into(),
        message: format!("A file was opened: {forged}"),
        comm: Some("cat\r\n".into()),
        ..alert("anomaly.open")
    };
    let urls = [
        format!("udp://127.0.0.1:{udp}"),
        format!("tcp://127.0.0.1:{tcp}"),
    ];
    let outputs = Outputs::start(
        urls.iter()
            .map(|u| syslog(u, &TlsFiles::default()))
            .collect(),
        false,
        &dir.path().join("spool"),
        "node-1".into(),
    )
    .unwrap();
    outputs.send(&[(hostile, "i-1".into())]);
    outputs.shutdown(Duration::from_secs(10));
    // The control: a raw newline, octet-counted over TCP, is split by this receiver.
    SyslogTarget::new(&urls[1], &TlsFiles::default())
        .unwrap()
        .send(&["<35>1 - node-1 control - - - raw\n<13>1 control-forged".into()])
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if text.contains("control-forged") && text.matches("Accepted password").count() >= 2 {
            break text;
        }
        assert!(Instant::now() < deadline, "rsyslog received:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.contains(&"<13>1 control-forged"),
        "the control was not split, so this test shows nothing:\n{text}"
    );
    // Our alert: one line per transport, the newline escaped inside it.
    let ours: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains("Accepted password"))
        .collect();
    assert_eq!(ours.len(), 2, "{text}");
    for l in ours {
        assert!(l.starts_with("<35>1 "), "{l}");
        assert!(
            l.contains(" subject=\"/tmp/x\\n<13>1 2026-01-01T00:00:00Z node-1 sshd - - - Accepted password for root\""),
            "{l}"
        );
        assert!(l.contains(" comm=\"cat\\r\\n\""), "{l}");
        assert!(l.ends_with("A file was opened: /tmp/x\\n<13>1 2026-01-01T00:00:00Z node-1 sshd - - - Accepted password for root"), "{l}");
    }
    assert!(
        !lines.iter().any(|l| l.starts_with("<13>1 2026")),
        "a forged line arrived:\n{text}"
    );
}

/// A webhook receiver on a loopback port that can be stopped and started again
/// on the same port: the alert batches it got, each a JSON array.
struct Webhook {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

type Batches = std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>;

impl Webhook {
    fn start(port: u16, received: &Batches) -> Webhook {
        use std::io::{BufRead, BufReader, Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (flag, sink) = (stop.clone(), received.clone());
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let Ok((conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                conn.set_nonblocking(false).unwrap();
                let mut reader = BufReader::new(conn);
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                if let Ok(v) = serde_json::from_slice(&body) {
                    sink.lock().unwrap().push(v);
                }
                let _ = reader.get_mut().write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        Webhook {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The alerts received, each with its batch's index.
fn received_alerts(received: &Batches) -> Vec<(usize, serde_json::Value)> {
    let batches = received.lock().unwrap();
    (batches.iter().enumerate())
        .flat_map(|(i, b)| {
            b.as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |a| (i, a))
        })
        .collect()
}

fn waits_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(40);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_full_spool_drops_the_least_severe_and_says_so_when_the_webhook_is_back() {
    use imprint_agent::outputs::{SpoolLimits, Target};
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let received = Batches::default();
    let webhook = Webhook::start(port, &received);
    // A small spool: 16 KiB, some 30 alerts, batches of up to 4 KiB.
    let limits = SpoolLimits {
        max_bytes: 16 << 10,
        max_batch_bytes: 4 << 10,
        max_batches: 10_000,
    };
    let outputs = Outputs::start_with(
        vec![Target::Webhook(format!("http://127.0.0.1:{port}/"), vec![])],
        false,
        &dir.path().join("spool"),
        "node-1".into(),
        limits,
    )
    .unwrap();
    outputs.send(&[(alert("before-the-outage"), "i-0".into())]);
    waits_for("the first alert", || received_alerts(&received).len() == 1);

    drop(webhook);
    let of = |severity: Severity, n: usize| Alert {
        severity,
        message: format!("{severity:?} {n} {}", "x".repeat(200)),
        ..alert(&format!("{severity:?}-alert").to_lowercase())
    };
    // Criticals first, then a flood of low ones: the spool fills and the low
    // ones past it are dropped; then high ones and criticals push out low ones.
    for n in 0..5 {
        outputs.send(&[(of(Severity::Critical, n), format!("c-{n}"))]);
    }
    for n in 0..100 {
        outputs.send(&[(of(Severity::Low, n), format!("l-{n}"))]);
    }
    for n in 0..10 {
        outputs.send(&[(of(Severity::High, n), format!("h-{n}"))]);
    }
    // One batch of many: split to fit.
    let many: Vec<(Alert, String)> = (0..10)
        .map(|n| (of(Severity::Critical, 100 + n), format!("m-{n}")))
        .collect();
    outputs.send(&many);
    let spool = outputs.spools().pop().unwrap();
    assert!(spool.bytes <= 16 << 10, "{spool:?}");
    let lost = spool.lost;
    let lost_low = lost.of(Severity::Low).alerts;
    assert!(lost_low > 50, "{lost:?}");
    assert_eq!(lost.of(Severity::Critical).alerts, 0, "{lost:?}");
    assert_eq!(lost.of(Severity::High).alerts, 0, "{lost:?}");
    let on_disk: u64 = (std::fs::read_dir(dir.path().join("spool/webhook")).unwrap())
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert_eq!(on_disk, spool.bytes);

    let _webhook = Webhook::start(port, &received);
    waits_for("the alert saying what was dropped", || {
        received_alerts(&received)
            .iter()
            .any(|(_, a)| a["rule"] == "agent-alerts-dropped")
    });
    // The drop alert may overtake batches still spooled: wait for those too.
    let count_now = |rule: &str| {
        (received_alerts(&received).iter())
            .filter(|(_, a)| a["rule"] == rule)
            .count()
    };
    // The drop alert itself may push out one more low batch: count losses now.
    let lost_low_now = || {
        outputs
            .spools()
            .pop()
            .unwrap()
            .lost
            .of(Severity::Low)
            .alerts
    };
    waits_for(
        "every critical and high alert, and each low one sent or lost",
        || {
            count_now("critical-alert") >= 15
                && count_now("high-alert") >= 10
                && count_now("low-alert") as u64 + lost_low_now() >= 100
        },
    );
    let lost_low_in_the_end = lost_low_now();
    let alerts = received_alerts(&received);
    let count = |rule: &str| alerts.iter().filter(|(_, a)| a["rule"] == rule).count();
    assert_eq!(count("critical-alert"), 15, "no critical alert is lost");
    assert_eq!(count("high-alert"), 10);
    assert_eq!(count("low-alert") as u64 + lost_low_in_the_end, 100);
    let (_, dropped) = alerts
        .iter()
        .find(|(_, a)| a["rule"] == "agent-alerts-dropped")
        .unwrap();
    assert_eq!(dropped["source"], "agent");
    assert_eq!(dropped["severity"], "high");
    assert_eq!(dropped["subject"], "webhook");
    let message = dropped["message"].as_str().unwrap();
    // It counts what was lost when it was made: at least what was lost before
    // the receiver came back, at most what was lost in the end.
    let said: u64 = (message.strip_prefix("The webhook output dropped "))
        .and_then(|m| m.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{message}"));
    assert!(
        (lost_low..=lost_low_in_the_end).contains(&said),
        "{message}"
    );
    assert!(message.contains(&format!("({said} low; ")), "{message}");
    // No batch went over its limit, and the ten criticals came in several.
    let batches = received.lock().unwrap().clone();
    for batch in &batches {
        assert!(serde_json::to_vec(batch).unwrap().len() <= 4 << 10);
    }
    let split: std::collections::BTreeSet<usize> = (alerts.iter())
        .filter(|(_, a)| a["incident"].as_str().unwrap().starts_with("m-"))
        .map(|(i, _)| *i)
        .collect();
    assert!(split.len() > 1, "{split:?}");
    outputs.shutdown(Duration::from_secs(10));
}
