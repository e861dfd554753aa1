//! `imprint-agent --mode learn` on the real kernel, with real containers: podman
//! (runc) running a busybox image pulled by digest from a real `docker-registry`.
//!
//! Needs root, tracefs, podman, runc and busybox-static (`bash .ci/setup`
//! installs and mounts them); each test says why it skips otherwise. CI runs as
//! root, so there they always run.

use std::process::Command;
use std::time::Duration;

#[allow(dead_code)]
mod common;
use common::{Agent, Env, setup, support, wait_for_profile};

fn exec_set(p: &imprint_schema::Profile) -> Vec<(String, Vec<String>)> {
    let mut v: Vec<(String, Vec<String>)> = p
        .execs
        .iter()
        .map(|e| (e.path.clone(), e.args.clone().unwrap_or_default()))
        .collect();
    v.sort();
    v
}

fn open_set(p: &imprint_schema::Profile) -> Vec<String> {
    p.opens.iter().map(|o| o.path.clone()).collect()
}

#[test]
fn learns_exactly_what_a_container_does_and_nothing_from_the_host() {
    let Some(Env {
        serial: _serial,
        registry,
        podman,
    }) = setup()
    else {
        return;
    };
    let (image, digest) = podman.push_busybox(&registry.addr, "learn/exact", "exact");
    let dir = tempfile::tempdir().unwrap();
    let (out, state, events) = (
        dir.path().join("out"),
        dir.path().join("state"),
        dir.path().join("events.jsonl"),
    );
    let metrics_addr = support::free_loopback_addr();
    let agent = Agent::start(
        &out,
        &state,
        "8s",
        &[
            "--events-out",
            events.to_str().unwrap(),
            "--metrics-addr",
            &metrics_addr,
        ],
    );

    let url = format!("http://{}/v2/", registry.addr);
    let script = format!(
        "cat /etc/passwd > /dev/null; echo learned > /tmp/out; wget -q -O /dev/null {url}; true"
    );
    // The same behaviour on the host, plus a marker file only the host opens.
    let host = Command::new("/bin/busybox")
        .args([
            "sh",
            "-c",
            &format!("{script}; cat /etc/hostname > /dev/null"),
        ])
        .status()
        .unwrap();
    assert!(host.success());
    podman.run(&[
        "run",
        "--rm",
        "--tls-verify=false",
        &image,
        "/bin/sh",
        "-c",
        &script,
    ]);

    let profile = wait_for_profile(&out, &digest, Duration::from_secs(40), &agent);
    assert_eq!(profile.image.digest, *digest);
    assert_eq!(
        profile.learning.completeness,
        imprint_schema::Completeness::Complete,
        "{}",
        agent.log()
    );
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    // busybox runs its applets by re-executing itself (/proc/self/exe): the
    // executable is /bin/busybox, the arguments say which applet did what.
    assert_eq!(
        exec_set(&profile),
        vec![
            (
                "/bin/busybox".to_string(),
                s(&["-q", "-O", "/dev/null", &url])
            ),
            ("/bin/busybox".to_string(), s(&["/etc/passwd"])),
            ("/bin/sh".to_string(), s(&["-c", &script])),
        ],
        "{}",
        imprint_schema::to_yaml(&profile)
    );
    assert_eq!(
        open_set(&profile),
        s(&["/dev/null", "/etc/passwd", "/tmp/out"])
    );
    let port: u16 = registry.addr.rsplit_once(':').unwrap().1.parse().unwrap();
    let egress: Vec<(Option<String>, Option<u16>)> = profile
        .network
        .egress
        .iter()
        .map(|p| (p.cidr.clone(), p.port))
        .collect();
    assert_eq!(egress, vec![(Some("127.0.0.1/32".to_string()), Some(port))]);
    assert!(profile.syscalls.iter().any(|s| s == "connect"));
    assert!(!open_set(&profile).contains(&"/etc/hostname".to_string()));

    // Drop counters and the rest are served as Prometheus metrics.
    let metrics = {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(&metrics_addr).unwrap();
        write!(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut text = String::new();
        c.read_to_string(&mut text).unwrap();
        text
    };
    assert!(
        metrics.contains("\nimprint_sensor_dropped_records_total 0\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nimprint_profiles_written_total 1\n"),
        "{metrics}"
    );

    // The raw stream replays into the same behaviour with the engine's learner
    // (what `imprint learn --events` runs).
    drop(agent);
    let text = std::fs::read_to_string(&events).unwrap();
    assert!(text.contains("\"type\":\"container_start\""));
    assert!(
        !text.contains("\"containerId\":\"host\""),
        "host events without --include-host"
    );
    let mut learner = imprint_engine::Learner::new(Default::default());
    for event in imprint_engine::EventReader::new(text.as_bytes()) {
        learner.observe(&event.unwrap());
    }
    let replayed = learner
        .profiles()
        .into_iter()
        .find(|p| p.image.digest == *digest)
        .unwrap();
    assert_eq!(exec_set(&replayed), exec_set(&profile));
    assert_eq!(open_set(&replayed), open_set(&profile));
    assert_eq!(replayed.network, profile.network);
}

/// `--exit-when-learned`: a CI job's learning run ends by itself, 0, once the
/// image's period has passed and its profile is written.
#[test]
fn the_agent_exits_once_every_image_is_learned() {
    let Some(Env {
        serial: _serial,
        registry,
        podman,
    }) = setup()
    else {
        return;
    };
    let (image, digest) = podman.push_busybox(&registry.addr, "learn/once", "once");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut agent = Agent::start(
        &out,
        &dir.path().join("state"),
        "3s",
        &["--exit-when-learned"],
    );
    // Nothing seen yet: it does not exit for want of images.
    std::thread::sleep(Duration::from_secs(2));
    assert!(!agent.log().contains("every image seen is learned"));
    podman.run(&[
        "run",
        "--rm",
        "--tls-verify=false",
        &image,
        "/bin/cat",
        "/etc/marker",
    ]);
    assert_eq!(agent.wait_exit(Duration::from_secs(40)), Some(0));
    let written = out.join(format!("{}.yaml", digest.replace(':', "-")));
    let profile = imprint_schema::parse_profile(
        &std::fs::read(&written)
            .unwrap_or_else(|e| panic!("{}: {e}\n{}", written.display(), agent.log())),
    )
    .unwrap();
    assert!(open_set(&profile).contains(&"/etc/marker".to_string()));
    assert!(
        agent.log().contains("every image seen is learned"),
        "{}",
        agent.log()
    );
}

#[test]
fn a_container_running_before_the_agent_gives_a_partial_profile() {
    let Some(Env {
        serial: _serial,
        registry,
        podman,
    }) = setup()
    else {
        return;
    };
    let (image, digest) = podman.push_busybox(&registry.addr, "learn/before", "before");
    let name = format!("imprint-before-{}", std::process::id());
    podman.run(&[
        "run",
        "-d",
        "--name",
        &name,
        "--tls-verify=false",
        &image,
        "/bin/sleep",
        "60",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let agent = Agent::start(&out, &dir.path().join("state"), "5s", &[]);
    podman.run(&["exec", &name, "/bin/cat", "/etc/marker"]);
    let profile = wait_for_profile(&out, &digest, Duration::from_secs(40), &agent);
    let _ = podman
        .command()
        .args(["rm", "-f", "-t", "0", &name])
        .output();
    assert_eq!(
        profile.learning.completeness,
        imprint_schema::Completeness::Partial
    );
    assert!(
        open_set(&profile).contains(&"/etc/marker".to_string()),
        "{}",
        agent.log()
    );
}

#[test]
fn restarting_the_agent_mid_learning_keeps_what_was_learned() {
    let Some(Env {
        serial: _serial,
        registry,
        podman,
    }) = setup()
    else {
        return;
    };
    let (image, digest) = podman.push_busybox(&registry.addr, "learn/restart", "restart");
    let dir = tempfile::tempdir().unwrap();
    let (out, state) = (dir.path().join("out"), dir.path().join("state"));
    let mut first = Agent::start(&out, &state, "12s", &[]);
    podman.run(&[
        "run",
        "--rm",
        "--tls-verify=false",
        &image,
        "/bin/cat",
        "/etc/passwd",
    ]);
    std::thread::sleep(Duration::from_secs(2));
    first.stop();
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().next().is_none());

    let second = Agent::start(&out, &state, "12s", &[]);
    assert!(second.log().contains("continued from"), "{}", second.log());
    podman.run(&[
        "run",
        "--rm",
        "--tls-verify=false",
        &image,
        "/bin/cat",
        "/etc/marker",
    ]);
    let profile = wait_for_profile(&out, &digest, Duration::from_secs(40), &second);
    let opens = open_set(&profile);
    assert!(opens.contains(&"/etc/passwd".to_string()), "{opens:?}");
    assert!(opens.contains(&"/etc/marker".to_string()), "{opens:?}");
    assert_eq!(profile.learning.observed_containers, 2);
    assert_eq!(
        profile.learning.completeness,
        imprint_schema::Completeness::Complete
    );
    // The window counts from the first sighting, before the restart.
    let window = profile
        .learning
        .end
        .unwrap()
        .duration_since(profile.learning.start.unwrap());
    assert_eq!(window, jiff::SignedDuration::from_secs(12));
}

#[test]
fn network_peers_and_dns_questions_are_learned() {
    let Some(Env {
        serial: _serial,
        registry,
        podman,
    }) = setup()
    else {
        return;
    };
    let (image, digest) = podman.push_busybox(&registry.addr, "learn/network", "network");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let agent = Agent::start(&out, &dir.path().join("state"), "6s", &[]);
    let port = support::free_loopback_addr()
        .rsplit_once(':')
        .unwrap()
        .1
        .to_string();
    // A server and its client in the container (busybox nc accepts with a NULL
    // address: the peer comes from the socket), then a DNS question.
    let script = format!(
        "/bin/busybox nc -l -p {port} > /dev/null & sleep 0.5; echo hi | /bin/busybox nc 127.0.0.1 {port}; wait; /bin/busybox nslookup -timeout=1 payments.example.com 127.0.0.1 > /dev/null 2>&1; true"
    );
    podman.run(&[
        "run",
        "--rm",
        "--tls-verify=false",
        &image,
        "/bin/sh",
        "-c",
        &script,
    ]);
    let profile = wait_for_profile(&out, &digest, Duration::from_secs(40), &agent);
    let port: u16 = port.parse().unwrap();
    let peers = |list: &[imprint_schema::Peer]| -> Vec<String> {
        list.iter()
            .map(|p| {
                format!(
                    "{} {} {:?}",
                    p.dns.clone().or(p.cidr.clone()).unwrap_or_default(),
                    p.port.map_or("*".into(), |p| p.to_string()),
                    p.protocol
                )
            })
            .collect()
    };
    let egress = peers(&profile.network.egress);
    let ingress = peers(&profile.network.ingress);
    let yaml = imprint_schema::to_yaml(&profile);
    assert!(
        egress.contains(&format!("127.0.0.1/32 {port} Some(Tcp)")),
        "{yaml}"
    );
    assert!(
        egress.contains(&"127.0.0.1/32 53 Some(Udp)".to_string()),
        "{yaml}"
    );
    assert!(
        egress
            .iter()
            .any(|p| p.starts_with("payments.example.com ")),
        "{yaml}"
    );
    assert!(
        ingress.contains(&format!("127.0.0.1/32 {port} Some(Tcp)")),
        "{yaml}"
    );
}
