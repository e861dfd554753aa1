//! An enforcing agent never goes silent: when its profile resolver stops, the
//! node is on behaviour rules only, and `/readyz`, a metric, `/status`,
//! `imprint-agent status` and an alert all say so. Root only (the sensor);
//! skips, saying why, elsewhere.

use std::process::Command;
use std::time::Duration;

#[allow(dead_code)]
mod common;
use common::{Agent, skip_reason, support, trusted_key, wait_until, webhook_receiver};

fn get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut c) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = write!(c, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut text = String::new();
    let _ = c.read_to_string(&mut text);
    text
}

#[test]
fn a_stopped_resolver_fails_readiness_and_raises_an_alert() {
    if let Some(why) = skip_reason() {
        support::skip(why);
        return;
    }
    let _serial = common::SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (_key, public) = trusted_key(dir.path());
    // The fault: the profile cache cannot be created (a file stands where its
    // directory goes), so the resolver ends at once.
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("cache"), b"not a directory").unwrap();
    let (hook_addr, received) = webhook_receiver();
    let metrics_addr = support::free_loopback_addr();
    let args: Vec<std::ffi::OsString> = vec![
        "--mode".into(),
        "enforce".into(),
        "--key".into(),
        public.into(),
        "--state-dir".into(),
        state.into(),
        "--metrics-addr".into(),
        metrics_addr.clone().into(),
        "--webhook-url".into(),
        format!("http://{hook_addr}").into(),
    ];
    let agent = Agent::spawn(&args);
    wait_until(
        "/readyz to fail for the resolver",
        Duration::from_secs(20),
        || get(&metrics_addr, "/readyz").contains("the resolver stopped"),
    );
    let readyz = get(&metrics_addr, "/readyz");
    assert!(readyz.starts_with("HTTP/1.1 503"), "{readyz}");
    let metrics = get(&metrics_addr, "/metrics");
    assert!(metrics.contains("imprint_resolver_up 0\n"), "{metrics}");
    assert!(
        metrics.contains("imprint_alerts_by_rule_total{rule=\"agent-resolver-stopped\"} 1"),
        "{metrics}"
    );
    wait_until("the alert at the webhook", Duration::from_secs(20), || {
        received
            .lock()
            .unwrap()
            .iter()
            .any(|(_, body)| body.to_string().contains("agent-resolver-stopped"))
    });
    agent.wait_for_log("the profile resolver stopped", Duration::from_secs(5));
    // Asking the agent: exit 1, and the reason.
    let status = Command::new(env!("CARGO_BIN_EXE_imprint-agent"))
        .args(["status", "--metrics-addr", &metrics_addr])
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(1), "{status:?}");
    let table = String::from_utf8_lossy(&status.stdout);
    assert!(table.contains("resolver: STOPPED"), "{table}");
    assert!(table.contains("behaviour rules only"), "{table}");
}

#[test]
fn status_says_plainly_when_there_is_no_agent_to_ask() {
    let addr = support::free_loopback_addr();
    let status = Command::new(env!("CARGO_BIN_EXE_imprint-agent"))
        .args(["status", "--metrics-addr", &addr])
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(2), "{status:?}");
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert!(
        stderr.contains(&format!("cannot ask the agent at http://{addr}/status")),
        "{stderr}"
    );
}
