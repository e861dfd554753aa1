//! Where alerts go: Alertmanager (v2 API), an HTTP webhook, syslog (RFC 5424 over
//! UDP, TCP or TLS) and JSON lines on stdout, together.
//!
//! Every network output writes each batch to its own on-disk spool first
//! (`state-dir/spool/<output>/<sequence>-<severity>-<alerts>.json`), and a
//! sender thread delivers the spool in order, deleting a file only once the
//! receiver accepted it, with exponential backoff while it does not. A short
//! receiver outage loses nothing. A long one, or a flood, meets the spool's
//! bounds ([`SpoolLimits`]: bytes per batch, bytes and batches per output): the
//! least severe alerts go first, each loss is counted, and once the receiver
//! takes batches again an `agent-alerts-dropped` alert says what was lost.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use imprint_engine::{Alert, Severity, Source};

mod spool;
mod syslog;

pub use spool::{
    Batch, DEFAULT_MAX_BATCH_BYTES, DEFAULT_MAX_BYTES, Loss, Losses, MAX_SPOOLED, MIN_BATCH_BYTES,
    Pushed, SEVERITIES, Spool, SpoolLimits, pack, severity_name,
};
pub use syslog::{SyslogError, SyslogSendError, SyslogTarget, TlsFiles, syslog_message};

/// The rule id of the alert saying an output lost alerts.
pub const ALERTS_DROPPED: &str = "agent-alerts-dropped";

/// Least time between two `agent-alerts-dropped` alerts of one output, so a
/// flood that goes on raises one every so often, not one per batch.
const REPORT_INTERVAL: Duration = Duration::from_secs(10);

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

/// One alert as `target` sends it, a JSON value: an Alertmanager alert, the
/// alert with its incident (webhook), or the syslog line as a string.
fn render(target: &Target, alert: &Alert, incident: &str, host: &str) -> Vec<u8> {
    let value = match target {
        Target::Alertmanager(_) => alertmanager_alert(alert, incident),
        Target::Webhook(..) => {
            let mut v = serde_json::to_value(alert).unwrap_or_default();
            v["incident"] = incident.into();
            v
        }
        Target::Syslog(_) => syslog_message(alert, host).into(),
    };
    serde_json::to_vec(&value).unwrap_or_default()
}

/// [`render`], within a batch of `max` bytes: an alert too big alone has its
/// message and subject (what a workload chooses) truncated, saying so. Err with
/// its size when even that does not fit.
fn render_within(
    target: &Target,
    alert: &Alert,
    incident: &str,
    host: &str,
    max: usize,
) -> Result<Vec<u8>, usize> {
    let item = render(target, alert, incident, host);
    // The brackets of the batch around it.
    if item.len() + 2 <= max {
        return Ok(item);
    }
    let full = item.len();
    let mut keep = max / 4;
    while keep >= 64 {
        let cut = Alert {
            message: truncated(&alert.message, keep),
            subject: truncated(&alert.subject, keep),
            ..alert.clone()
        };
        let item = render(target, &cut, incident, host);
        if item.len() + 2 <= max {
            return Ok(item);
        }
        // Escaping can make a short text long (a control character is 6 bytes).
        keep /= 2;
    }
    Err(full)
}

/// `text` cut to at most `keep` bytes (on a character boundary), saying how much
/// was cut.
fn truncated(text: &str, keep: usize) -> String {
    if text.len() <= keep {
        return text.to_string();
    }
    let mut end = keep;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes truncated)", &text[..end], text.len() - end)
}

/// The agent alert saying `output` lost alerts: how many of each severity, and
/// how many bytes.
pub fn dropped_alert(output: &str, losses: &Losses, host: &str) -> Alert {
    let total = losses.total();
    let by_severity: Vec<String> = (SEVERITIES.iter().rev())
        .map(|s| (s, losses.of(*s).alerts))
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| format!("{n} {}", severity_name(*s)))
        .collect();
    let message = format!(
        "The {output} output dropped {} alerts ({}; {} bytes): its spool was full while the receiver was unreachable or slow, or an alert was too big to send; the least severe went first",
        total.alerts,
        by_severity.join(", "),
        total.bytes
    );
    Alert {
        rule: ALERTS_DROPPED.to_string(),
        source: Source::Agent,
        severity: Severity::High,
        mitre: vec![],
        message,
        subject: output.to_string(),
        time: jiff::Timestamp::now(),
        container_id: String::new(),
        image_digest: None,
        node: (!host.is_empty()).then(|| host.to_string()),
        pid: std::process::id(),
        comm: Some("imprint-agent".to_string()),
    }
}

/// Renders alerts for one output and spools them in batches; what cannot be
/// sent is counted as lost.
fn spool_alerts(sink: &Sink, alerts: &[(Alert, String)], host: &str) {
    let max = sink.spool.limits().max_batch_bytes;
    let mut items = Vec::with_capacity(alerts.len());
    for (alert, incident) in alerts {
        match render_within(&sink.target, alert, incident, host, max) {
            Ok(item) => items.push((alert.severity, item)),
            Err(bytes) => {
                eprintln!(
                    "imprint-agent: {}: an alert of {bytes} bytes does not fit a batch ({max}); dropped",
                    sink.name
                );
                sink.spool.count_loss(alert.severity, 1, bytes as u64);
            }
        }
    }
    for (severity, body, n) in pack(items, max) {
        let pushed = sink.spool.push(&body, severity, n);
        let lost = match &pushed {
            Ok(Pushed::Spooled { evicted }) => *evicted > 0,
            Ok(Pushed::Dropped) => true,
            Err(e) => {
                eprintln!("imprint-agent: cannot spool for {}: {e}", sink.name);
                false
            }
        };
        // Once per outage: the count and the alert tell the rest.
        if lost && sink.spool.warn_once() {
            eprintln!(
                "imprint-agent: the {} spool is full: dropping the least severe alerts (imprint_alerts_dropped_total; {ALERTS_DROPPED} follows)",
                sink.name
            );
        }
    }
}

/// One network output: where it goes, its name (its spool's directory).
struct Sink {
    target: Target,
    name: String,
    spool: Arc<Spool>,
}

/// An output's spool, as the metrics report it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpoolReport {
    /// The output (its spool's directory): `webhook`, `syslog-1`…
    pub output: String,
    /// Batches waiting.
    pub batches: usize,
    /// Bytes waiting.
    pub bytes: u64,
    /// What it lost since the agent started.
    pub lost: Losses,
}

/// The outputs, each with its spool and sender thread.
pub struct Outputs {
    stdout: bool,
    host: String,
    sinks: Vec<Sink>,
    senders: Vec<std::thread::JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl Outputs {
    /// Starts the sender threads, with the default spool limits.
    pub fn start(
        targets: Vec<Target>,
        stdout: bool,
        spool_root: &Path,
        host: String,
    ) -> std::io::Result<Outputs> {
        Outputs::start_with(targets, stdout, spool_root, host, SpoolLimits::default())
    }

    /// Starts the sender threads; each output's spool keeps up to `limits`.
    pub fn start_with(
        targets: Vec<Target>,
        stdout: bool,
        spool_root: &Path,
        host: String,
        limits: SpoolLimits,
    ) -> std::io::Result<Outputs> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut sinks = Vec::new();
        let mut senders = Vec::new();
        let mut seen: Vec<&'static str> = Vec::new();
        for target in targets {
            // One spool per output: `syslog`, then `syslog-1` for a second one…
            let n = seen.iter().filter(|k| **k == target.name()).count();
            seen.push(target.name());
            let name = match n {
                0 => target.name().to_string(),
                n => format!("{}-{n}", target.name()),
            };
            let spool = Arc::new(Spool::open(&spool_root.join(&name), limits)?);
            let sink = Sink {
                target,
                name,
                spool,
            };
            let sender = Sink {
                target: sink.target.clone(),
                name: sink.name.clone(),
                spool: sink.spool.clone(),
            };
            let (host, stop) = (host.clone(), stop.clone());
            senders.push(std::thread::spawn(move || send_loop(sender, host, stop)));
            sinks.push(sink);
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
        for sink in &self.sinks {
            spool_alerts(sink, alerts, &self.host);
        }
    }

    /// Batches waiting, all outputs together.
    pub fn queued(&self) -> usize {
        self.sinks.iter().map(|s| s.spool.depth()).sum()
    }

    /// Each output's spool: what waits, what was lost.
    pub fn spools(&self) -> Vec<SpoolReport> {
        (self.sinks.iter())
            .map(|s| SpoolReport {
                output: s.name.clone(),
                batches: s.spool.depth(),
                bytes: s.spool.bytes(),
                lost: s.spool.lost(),
            })
            .collect()
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

/// Spools the alert saying what `sink` lost since the last one, if it lost
/// anything; says whether it did. Should it be dropped in turn, it counts
/// itself, for the next.
fn report_losses(sink: &Sink, host: &str) -> bool {
    let Some(losses) = sink.spool.take_unreported() else {
        return false;
    };
    let alert = dropped_alert(&sink.name, &losses, host);
    eprintln!("imprint-agent: {}", alert.message);
    let incident = format!("agent-{}", alert.time.as_second());
    spool_alerts(sink, &[(alert, incident)], host);
    true
}

fn send_loop(sink: Sink, host: String, stop: Arc<AtomicBool>) {
    let (target, spool) = (&sink.target, &sink.spool);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client builds");
    let mut backoff = Duration::from_millis(200);
    // Losses are reported while the receiver takes batches, at most once per
    // REPORT_INTERVAL.
    let mut reachable = true;
    let mut reported: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        if reachable
            && reported.is_none_or(|at| at.elapsed() >= REPORT_INTERVAL)
            && report_losses(&sink, &host)
        {
            reported = Some(Instant::now());
        }
        let Some(batch) = spool.oldest() else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        match runtime.block_on(deliver(&client, target, &batch.body)) {
            Ok(()) => {
                spool.remove(batch.sequence);
                backoff = Duration::from_millis(200);
                reachable = true;
            }
            Err(e) => {
                reachable = false;
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
    fn an_alert_too_big_for_a_batch_is_truncated_and_one_that_cannot_be_is_refused() {
        let huge = Alert {
            message: format!("A file was opened: /tmp/{}", "é".repeat(100_000)),
            subject: format!("/tmp/{}", "x".repeat(100_000)),
            ..alert()
        };
        let webhook = Target::Webhook("http://127.0.0.1:1/".into(), vec![]);
        let max = MIN_BATCH_BYTES;
        let item = render_within(&webhook, &huge, "i-1", "node-1", max).unwrap();
        assert!(item.len() + 2 <= max, "{}", item.len());
        let v: serde_json::Value = serde_json::from_slice(&item).unwrap();
        let message = v["message"].as_str().unwrap();
        assert!(
            message.starts_with("A file was opened: /tmp/éé"),
            "{message}"
        );
        assert!(message.ends_with(" bytes truncated)"), "{message}");
        assert!(
            v["subject"]
                .as_str()
                .unwrap()
                .ends_with(" bytes truncated)")
        );
        assert_eq!(v["rule"], "reverse-shell");
        // Small alerts are left alone; a limit nothing fits in refuses, with the size.
        let small = render_within(&webhook, &alert(), "i-1", "node-1", max).unwrap();
        assert_eq!(small, render(&webhook, &alert(), "i-1", "node-1"));
        let refused = render_within(&webhook, &huge, "i-1", "node-1", 100);
        assert!(
            matches!(refused, Err(size) if size > 200_000),
            "{refused:?}"
        );
    }

    #[test]
    fn the_dropped_alert_names_the_output_the_counts_by_severity_and_the_bytes() {
        let mut losses = Losses::default();
        losses.add(Severity::Low, 7, 7_000);
        losses.add(Severity::Critical, 1, 900);
        let a = dropped_alert("webhook", &losses, "node-1");
        assert_eq!(a.rule, ALERTS_DROPPED);
        assert_eq!((a.source, a.severity), (Source::Agent, Severity::High));
        assert_eq!(a.subject, "webhook");
        assert_eq!(a.node.as_deref(), Some("node-1"));
        assert!(
            a.message
                .starts_with("The webhook output dropped 8 alerts (1 critical, 7 low; 7900 bytes)"),
            "{}",
            a.message
        );
    }
}
