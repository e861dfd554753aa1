//! The syslog output against a real rsyslog (Debian `rsyslog`, started on free
//! loopback ports with its own configuration), over UDP and over TCP with octet
//! counting, through the spool. No root needed.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use imprint_agent::outputs::{Outputs, Target};
use imprint_engine::{Alert, Severity, Source};

struct Rsyslog(Child);

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
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
        image_digest: "sha256:aa".into(),
        node: Some("node-1".into()),
        pid: 7,
        comm: None,
    }
}

#[test]
fn alerts_reach_rsyslog_over_udp_and_tcp_as_rfc5424() {
    if !Path::new("/usr/sbin/rsyslogd").exists() {
        eprintln!("skipped: rsyslog is not installed (bash .ci/setup installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (udp, tcp) = (free_port(), free_port());
    let out = dir.path().join("received.log");
    let conf = dir.path().join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            "global(workDirectory=\"{work}\")\nmodule(load=\"imudp\")\nmodule(load=\"imtcp\")\ninput(type=\"imudp\" address=\"127.0.0.1\" port=\"{udp}\")\ninput(type=\"imtcp\" address=\"127.0.0.1\" port=\"{tcp}\")\ntemplate(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n*.* action(type=\"omfile\" file=\"{out}\" template=\"raw\")\n",
            work = dir.path().display(),
            out = out.display()
        ),
    )
    .unwrap();
    let _rsyslog = Rsyslog(
        Command::new("/usr/sbin/rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(dir.path().join("rsyslogd.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Ready when the TCP port accepts.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", tcp)).is_err() {
        assert!(Instant::now() < deadline, "rsyslogd did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let outputs = Outputs::start(
        vec![
            Target::Syslog(format!("udp://127.0.0.1:{udp}")),
            Target::Syslog(format!("tcp://127.0.0.1:{tcp}")),
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
