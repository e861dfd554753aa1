//! Where alerts go: Alertmanager (v2 API), an HTTP webhook, syslog (RFC 5424 over
//! UDP, TCP or TLS) and JSON lines on stdout, together.
//!
//! Every network output writes each batch to its own on-disk spool first
//! (`state-dir/spool/<output>/<sequence>.json`), and a sender thread delivers the
//! spool in order, deleting a file only once the receiver accepted it, with
//! exponential backoff while it does not. A receiver outage loses nothing; the
//! spool is bounded (`MAX_SPOOLED` files), and what does not fit is counted.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use imprint_engine::Alert;

mod syslog;

pub use syslog::{SyslogError, SyslogSendError, SyslogTarget, TlsFiles, syslog_message};

/// Most batches kept per output while its receiver is down.
pub const MAX_SPOOLED: usize = 10_000;

/// The Alertmanager v2 alert for an imprint alert.
pub fn alertmanager_alert(alert: &Alert, incident: &str) -> serde_json::Value {
    let mut labels = serde_json::json!({
        "alertname": format!("imprint_{}", alert.rule.replace(['.', '-'], "_")),
        "rule": alert.rule,
        "severity": format!("{:?}", alert.severity).to_lowercase(),
        "source": format!("{:?}", alert.source).to_lowercase(),
        "container": alert.container_id.chars().take(12).collect::<String>(),
        "incident": incident,
    });
    // Label values are strings: an unknown image has no label, not a null.
    if let Some(digest) = &alert.image_digest {
        labels["image_digest"] = digest.as_str().into();
    }
    if let Some(node) = &alert.node {
        labels["node"] = node.clone().into();
    }
    serde_json::json!({
        "labels": labels,
        "annotations": {
            "summary": alert.message,
            "subject": alert.subject,
            "mitre": alert.mitre.join(","),
            "pid": alert.pid.to_string(),
            "comm": alert.comm.clone().unwrap_or_default(),
        },
        "startsAt": alert.time.to_string(),
        // Alerts are events: resolved after five minutes unless they repeat.
        "endsAt": (alert.time + jiff::SignedDuration::from_mins(5)).to_string(),
        "generatorURL": format!("https://imprint.dev/rules#{}", alert.rule),
    })
}

/// A spool directory of batches, in order.
pub struct Spool {
    dir: PathBuf,
    next: AtomicU64,
    /// Batches refused because the spool was full.
    pub refused: AtomicU64,
}

impl Spool {
    /// Opens (creating) a spool; numbering continues after what is there.
    pub fn open(dir: &Path) -> std::io::Result<Spool> {
        std::fs::create_dir_all(dir)?;
        let last = Spool::entries(dir).last().map_or(0, |(n, _)| n + 1);
        Ok(Spool {
            dir: dir.to_path_buf(),
            next: AtomicU64::new(last),
            refused: AtomicU64::new(0),
        })
    }

    fn entries(dir: &Path) -> Vec<(u64, PathBuf)> {
        let mut v: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                let n = name.strip_suffix(".json")?.parse::<u64>().ok()?;
                Some((n, e.path()))
            })
            .collect();
        v.sort();
        v
    }

    /// Adds a batch (atomically: a temporary file renamed).
    pub fn push(&self, body: &[u8]) -> std::io::Result<()> {
        if Spool::entries(&self.dir).len() >= MAX_SPOOLED {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        // Alerts name containers, pods and paths: for the agent's eyes only.
        let path = self.dir.join(format!("{n:020}.json"));
        imprint_fs::write_atomic(&path, body, imprint_fs::PRIVATE)
    }

    /// Batches waiting.
    pub fn depth(&self) -> usize {
        Spool::entries(&self.dir).len()
    }

    /// The oldest batch.
    pub fn oldest(&self) -> Option<(PathBuf, Vec<u8>)> {
        let (_, path) = Spool::entries(&self.dir).into_iter().next()?;
        let body = std::fs::read(&path).ok()?;
        Some((path, body))
    }
}

/// One network output.
#[derive(Debug, Clone)]
pub enum Target {
    /// `POST <url>/api/v2/alerts` with a JSON array.
    Alertmanager(String),
    /// `POST <url>` with a JSON array, these headers.
    Webhook(String, Vec<(String, String)>),
    /// A syslog receiver over UDP, TCP or TLS.
    Syslog(SyslogTarget),
}

impl Target {
    fn name(&self) -> &'static str {
        match self {
            Target::Alertmanager(_) => "alertmanager",
            Target::Webhook(..) => "webhook",
            Target::Syslog(_) => "syslog",
        }
    }
}

/// Why a batch was not delivered (it is kept and sent again).
#[derive(Debug, thiserror::Error)]
enum DeliveryError {
    /// The HTTP request failed (connecting, sending, a timeout).
    #[error(transparent)]
    Request(#[from] reqwest::Error),
    /// The receiver answered with a status that may get better (5xx, 408, 429…).
    #[error("{url}: {status}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
    },
    /// The spooled batch is not a list of syslog messages.
    #[error("spooled batch is not a list of syslog messages: {0}")]
    SpooledBatch(#[source] serde_json::Error),
    /// The syslog receiver did not take the batch.
    #[error(transparent)]
    Syslog(#[from] SyslogSendError),
}

/// Delivers one batch; `Err` means "keep it and try again".
async fn deliver(
    client: &reqwest::Client,
    target: &Target,
    body: &[u8],
) -> Result<(), DeliveryError> {
    match target {
        Target::Alertmanager(url) | Target::Webhook(url, _) => {
            let url = match target {
                Target::Alertmanager(_) => format!("{}/api/v2/alerts", url.trim_end_matches('/')),
                _ => url.clone(),
            };
            let mut request = client
                .post(&url)
                .header("Content-Type", "application/json")
                .body(body.to_vec());
            if let Target::Webhook(_, headers) = target {
                for (k, v) in headers {
                    request = request.header(k, v);
                }
            }
            let response = request.send().await?;
            let status = response.status();
            // 4xx other than 408/429 will not get better: drop the batch, loudly.
            if status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429 {
                let url = imprint_oci::redact::redact_url(&url);
                eprintln!("imprint-agent: {url} refused a batch ({status}); dropped");
                return Ok(());
            }
            if !status.is_success() {
                return Err(DeliveryError::Status { url, status });
            }
            Ok(())
        }
        Target::Syslog(target) => {
            let lines: Vec<String> =
                serde_json::from_slice(body).map_err(DeliveryError::SpooledBatch)?;
            Ok(target.send(&lines)?)
        }
    }
}

/// The outputs, each with its spool and sender thread.
pub struct Outputs {
    stdout: bool,
    host: String,
    sinks: Vec<(Target, Arc<Spool>)>,
    senders: Vec<std::thread::JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl Outputs {
    /// Starts the sender threads.
    pub fn start(
        targets: Vec<Target>,
        stdout: bool,
        spool_root: &Path,
        host: String,
    ) -> std::io::Result<Outputs> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut sinks = Vec::new();
        let mut senders = Vec::new();
        let mut seen: Vec<&'static str> = Vec::new();
        for target in targets {
            // One spool per output: `syslog`, then `syslog-1` for a second one…
            let n = seen.iter().filter(|k| **k == target.name()).count();
            seen.push(target.name());
            let dir = match n {
                0 => target.name().to_string(),
                n => format!("{}-{n}", target.name()),
            };
            let spool = Arc::new(Spool::open(&spool_root.join(dir))?);
            let (t, s, st) = (target.clone(), spool.clone(), stop.clone());
            senders.push(std::thread::spawn(move || send_loop(t, s, st)));
            sinks.push((target, spool));
        }
        Ok(Outputs {
            stdout,
            host,
            sinks,
            senders,
            stop,
        })
    }

    /// Sends alerts (with their incident ids) to every output.
    pub fn send(&self, alerts: &[(Alert, String)]) {
        if alerts.is_empty() {
            return;
        }
        if self.stdout {
            for (alert, incident) in alerts {
                let mut v = serde_json::to_value(alert).unwrap_or_default();
                v["incident"] = incident.clone().into();
                println!("{v}");
            }
        }
        for (target, spool) in &self.sinks {
            let body = match target {
                Target::Alertmanager(_) => serde_json::to_vec(
                    &alerts
                        .iter()
                        .map(|(a, i)| alertmanager_alert(a, i))
                        .collect::<Vec<_>>(),
                ),
                Target::Webhook(..) => serde_json::to_vec(
                    &alerts
                        .iter()
                        .map(|(a, i)| {
                            let mut v = serde_json::to_value(a).unwrap_or_default();
                            v["incident"] = i.clone().into();
                            v
                        })
                        .collect::<Vec<_>>(),
                ),
                Target::Syslog(_) => serde_json::to_vec(
                    &alerts
                        .iter()
                        .map(|(a, _)| syslog_message(a, &self.host))
                        .collect::<Vec<_>>(),
                ),
            };
            if let Ok(body) = body
                && let Err(e) = spool.push(&body)
            {
                eprintln!("imprint-agent: cannot spool for {}: {e}", target.name());
            }
        }
    }

    /// Batches waiting, all outputs together.
    pub fn queued(&self) -> usize {
        self.sinks.iter().map(|(_, s)| s.depth()).sum()
    }

    /// Waits up to `grace` for the spools to drain, then stops the senders.
    pub fn shutdown(self, grace: Duration) {
        let deadline = std::time::Instant::now() + grace;
        while self.queued() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        self.stop.store(true, Ordering::Relaxed);
        for s in self.senders {
            let _ = s.join();
        }
    }
}

fn send_loop(target: Target, spool: Arc<Spool>, stop: Arc<AtomicBool>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client builds");
    let mut backoff = Duration::from_millis(200);
    while !stop.load(Ordering::Relaxed) {
        let Some((path, body)) = spool.oldest() else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        match runtime.block_on(deliver(&client, &target, &body)) {
            Ok(()) => {
                let _ = std::fs::remove_file(&path);
                backoff = Duration::from_millis(200);
            }
            Err(e) => {
                // reqwest's errors and ours quote the URL: its credentials are not logged.
                let e = imprint_oci::redact::Redacted(&e);
                eprintln!(
                    "imprint-agent: {} unreachable ({e}); {} batches kept, retrying in {:?}",
                    target.name(),
                    spool.depth(),
                    backoff
                );
                let until = std::time::Instant::now() + backoff;
                while std::time::Instant::now() < until && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert() -> Alert {
        Alert {
            rule: "reverse-shell".into(),
            source: imprint_engine::Source::Behaviour,
            severity: imprint_engine::Severity::Critical,
            mitre: vec!["T1059.004".into()],
            message: "A shell runs with its standard input on a socket: /bin/sh (sh -i)".into(),
            subject: "/bin/sh".into(),
            time: "2026-11-26T12:00:00Z".parse().unwrap(),
            container_id: "27b9236aa0e6680087d5227bc4ab10a92d8fb3d19795bd39c4a285cac52d9d15".into(),
            image_digest: Some(
                "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                    .parse()
                    .unwrap(),
            ),
            node: Some("node-1".into()),
            pid: 42,
            comm: Some("sh".into()),
        }
    }

    #[test]
    fn alertmanager_alerts_carry_labels_annotations_times_and_a_generator() {
        let v = alertmanager_alert(&alert(), "27b9236aa0e6-1");
        assert_eq!(v["labels"]["alertname"], "imprint_reverse_shell");
        assert_eq!(v["labels"]["severity"], "critical");
        assert_eq!(v["labels"]["container"], "27b9236aa0e6");
        assert_eq!(v["labels"]["incident"], "27b9236aa0e6-1");
        assert_eq!(v["annotations"]["mitre"], "T1059.004");
        assert_eq!(v["startsAt"], "2026-11-26T12:00:00Z");
        assert_eq!(v["endsAt"], "2026-11-26T12:05:00Z");
        assert!(
            v["generatorURL"]
                .as_str()
                .unwrap()
                .ends_with("#reverse-shell")
        );
        assert_eq!(
            v["labels"]["image_digest"],
            format!("sha256:{}", "a".repeat(64))
        );
        // Every label value is a string: an unknown image has no label at all.
        let unknown = Alert {
            image_digest: None,
            ..alert()
        };
        let labels = &alertmanager_alert(&unknown, "i")["labels"];
        assert!(labels.get("image_digest").is_none(), "{labels}");
        assert!(labels.as_object().unwrap().values().all(|v| v.is_string()));
    }

    #[test]
    fn syslog_messages_are_rfc5424() {
        let m = syslog_message(&alert(), "node-1");
        assert!(m.starts_with("<34>1 2026-11-26T12:00:00Z node-1 imprint-agent - reverse-shell [imprint@32473 rule=\"reverse-shell\""), "{m}");
    }

    #[test]
    fn the_spool_keeps_order_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        for i in 0..3 {
            spool.push(format!("[{i}]").as_bytes()).unwrap();
        }
        let reopened = Spool::open(dir.path()).unwrap();
        reopened.push(b"[3]").unwrap();
        let mut seen = Vec::new();
        while let Some((path, body)) = reopened.oldest() {
            seen.push(String::from_utf8(body).unwrap());
            std::fs::remove_file(path).unwrap();
        }
        assert_eq!(seen, vec!["[0]", "[1]", "[2]", "[3]"]);
    }
}
