//! The agent's counters, served in Prometheus' text format on `--metrics-addr`
//! (`GET /metrics`), with `GET /healthz` (the process answers), `GET /readyz`
//! (the sensor is attached and, enforcing, the resolver runs) and, enforcing,
//! `GET /status` (the [`StatusReport`]).

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Response, StatusCode};
use hyper_util::rt::TokioIo;

use crate::outputs::{SEVERITIES, SpoolReport, severity_name};
use crate::status::StatusReport;

/// Counters and gauges, updated by the agent, read by the endpoint.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Ring-buffer records read.
    pub records: AtomicU64,
    /// Records lost because the ring buffer was full (from the kernel's counter).
    pub drops: AtomicU64,
    /// Records suppressed by in-kernel dedup (from the kernel's counter).
    pub deduped: AtomicU64,
    /// Events attributed to a container and used.
    pub events: AtomicU64,
    /// Events dropped because their container's image is unknown.
    pub unresolved: AtomicU64,
    /// Events of host processes.
    pub host_events: AtomicU64,
    /// Images still being learned.
    pub images_learning: AtomicU64,
    /// Profiles written.
    pub profiles_written: AtomicU64,
    /// Alerts sent (enforce mode).
    pub alerts: AtomicU64,
    /// Profiles enforced (enforce mode).
    pub profiles_enforced: AtomicU64,
    /// Batches waiting in the output spools.
    pub output_queue: AtomicU64,
    /// Each output's spool: bytes waiting, alerts and bytes lost by severity.
    pub spools: Mutex<Vec<SpoolReport>>,
    /// Alerts sent, by rule.
    pub alerts_by_rule: Mutex<BTreeMap<String, u64>>,
    /// Image digests by profile state (`verified`, `unsigned`, `no-profile`…).
    pub profiles_by_state: Mutex<BTreeMap<String, u64>>,
    /// The sensor is attached (and, enforcing, the last verified profiles are loaded).
    pub ready: AtomicBool,
    /// Enforcing: what is enforced per digest, and whether the resolver runs.
    /// `None` in learn mode.
    pub status: Mutex<Option<StatusReport>>,
}

impl Metrics {
    /// Takes the sensor's kernel counters and the tracker's drops (both modes).
    pub fn observe_sensing(
        &self,
        sensor: &crate::sensor::Sensor,
        tracker: &crate::tracker::Tracker,
    ) {
        self.drops.store(sensor.drops(), Ordering::Relaxed);
        self.deduped.store(sensor.deduped(), Ordering::Relaxed);
        self.unresolved
            .store(tracker.unresolved(), Ordering::Relaxed);
        self.host_events
            .store(tracker.host_events(), Ordering::Relaxed);
    }

    /// Counts an alert sent, in the total and by its rule.
    pub fn count_alert(&self, rule: &str) {
        self.alerts.fetch_add(1, Ordering::Relaxed);
        *lock(&self.alerts_by_rule)
            .entry(rule.to_string())
            .or_insert(0) += 1;
    }

    /// Why the agent is not ready, or `None` when it is: the sensor is not
    /// attached yet, or (enforcing) the resolver has stopped.
    pub fn not_ready(&self) -> Option<String> {
        if !self.ready.load(Ordering::Relaxed) {
            return Some("the sensor is not attached yet".into());
        }
        let status = lock(&self.status);
        let stopped = status.as_ref().and_then(|s| s.resolver.stopped.clone())?;
        Some(format!("the resolver stopped: {stopped}"))
    }

    /// The text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let rows: [(&str, &str, &str, &AtomicU64); 11] = [
            (
                "imprint_sensor_records_total",
                "counter",
                "Ring-buffer records read.",
                &self.records,
            ),
            (
                "imprint_sensor_dropped_records_total",
                "counter",
                "Records lost because the ring buffer was full.",
                &self.drops,
            ),
            (
                "imprint_sensor_deduplicated_total",
                "counter",
                "Records suppressed by in-kernel dedup.",
                &self.deduped,
            ),
            (
                "imprint_events_total",
                "counter",
                "Events attributed to a container and used.",
                &self.events,
            ),
            (
                "imprint_events_unattributed_total",
                "counter",
                "Events dropped because their container's image is unknown.",
                &self.unresolved,
            ),
            (
                "imprint_host_events_total",
                "counter",
                "Events of processes outside containers.",
                &self.host_events,
            ),
            (
                "imprint_images_learning",
                "gauge",
                "Images whose learning period is running.",
                &self.images_learning,
            ),
            (
                "imprint_profiles_written_total",
                "counter",
                "Profiles written.",
                &self.profiles_written,
            ),
            (
                "imprint_alerts_total",
                "counter",
                "Alerts sent.",
                &self.alerts,
            ),
            (
                "imprint_profiles_enforced",
                "gauge",
                "Verified profiles enforced.",
                &self.profiles_enforced,
            ),
            (
                "imprint_output_queue_batches",
                "gauge",
                "Batches waiting in the output spools.",
                &self.output_queue,
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, value) in rows {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}\n",
                value.load(Ordering::Relaxed)
            ));
        }
        for (name, kind, help, label, map) in [
            (
                "imprint_alerts_by_rule_total",
                "counter",
                "Alerts sent, by rule.",
                "rule",
                &self.alerts_by_rule,
            ),
            (
                "imprint_profiles",
                "gauge",
                "Running image digests by the state of their profile.",
                "state",
                &self.profiles_by_state,
            ),
        ] {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            for (key, n) in map.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                let key = key.replace('\\', "\\\\").replace('"', "\\\"");
                out.push_str(&format!("{name}{{{label}=\"{key}\"}} {n}\n"));
            }
        }
        render_spools(&lock(&self.spools), &mut out);
        if let Some(status) = &*lock(&self.status) {
            let up = u8::from(status.resolver.running);
            out.push_str(&format!(
                "# HELP imprint_resolver_up Whether the profile resolver runs (enforce mode).\n# TYPE imprint_resolver_up gauge\nimprint_resolver_up {up}\n"
            ));
        }
        out
    }
}

/// The spools' rows: bytes waiting per output, and what each lost, in alerts
/// and in bytes, by severity (every severity, so a rate starts from zero).
fn render_spools(spools: &[SpoolReport], out: &mut String) {
    if spools.is_empty() {
        return;
    }
    let label = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    out.push_str("# HELP imprint_output_spool_bytes Bytes waiting in an output's spool.\n# TYPE imprint_output_spool_bytes gauge\n");
    for spool in spools {
        let output = label(&spool.output);
        out.push_str(&format!(
            "imprint_output_spool_bytes{{output=\"{output}\"}} {}\n",
            spool.bytes
        ));
    }
    for (name, help, alerts) in [
        (
            "imprint_alerts_dropped_total",
            "Alerts an output dropped (its spool full, or too big to send), by severity.",
            true,
        ),
        (
            "imprint_alert_bytes_dropped_total",
            "Bytes of the alerts an output dropped, by severity.",
            false,
        ),
    ] {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n"));
        for spool in spools {
            let output = label(&spool.output);
            for severity in SEVERITIES {
                let loss = spool.lost.of(severity);
                let n = if alerts { loss.alerts } else { loss.bytes };
                let severity = severity_name(severity);
                out.push_str(&format!(
                    "{name}{{output=\"{output}\",severity=\"{severity}\"}} {n}\n"
                ));
            }
        }
    }
}

/// Serves `/metrics`, `/healthz`, `/readyz` and (enforcing) `/status` on
/// `listener` until `stop`, with hyper on a runtime of its own thread.
pub fn serve(listener: TcpListener, metrics: Arc<Metrics>, stop: Arc<AtomicBool>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("imprint-agent: no metrics endpoint: a tokio runtime: {e}");
            return;
        }
    };
    runtime.block_on(async move {
        let listener = match listener
            .set_nonblocking(true)
            .and_then(|()| tokio::net::TcpListener::from_std(listener))
        {
            Ok(l) => l,
            Err(e) => {
                eprintln!("imprint-agent: no metrics endpoint: {e}");
                return;
            }
        };
        while !stop.load(Ordering::Relaxed) {
            let accepted =
                tokio::time::timeout(Duration::from_millis(100), listener.accept()).await;
            let Ok(Ok((stream, _))) = accepted else {
                continue;
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let answer = answer(&metrics, request.method(), request.uri().path());
                    async move { Ok::<_, std::convert::Infallible>(answer) }
                });
                let connection = http1::Builder::new()
                    .keep_alive(false)
                    .serve_connection(TokioIo::new(stream), service);
                // A client that never finishes its request does not keep a task.
                let _ = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await;
            });
        }
    });
}

/// How long one connection may take.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// The response to `GET path`.
fn answer(metrics: &Metrics, method: &Method, path: &str) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, content_type: &str, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        if let Ok(value) = HeaderValue::from_str(content_type) {
            response.headers_mut().insert(CONTENT_TYPE, value);
        }
        response
    };
    if method != Method::GET {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
    }
    match path {
        "/metrics" => reply(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            metrics.render(),
        ),
        "/healthz" => reply(StatusCode::OK, "text/plain", "ok\n".into()),
        "/readyz" => match metrics.not_ready() {
            None => reply(StatusCode::OK, "text/plain", "ready\n".into()),
            Some(why) => reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("not ready: {why}\n"),
            ),
        },
        "/status" => match &*lock(&metrics.status) {
            Some(report) => reply(
                StatusCode::OK,
                "application/json",
                serde_json::to_string(report).expect("reports serialize"),
            ),
            None => reply(
                StatusCode::NOT_FOUND,
                "text/plain",
                "not enforcing: /status is served in enforce mode\n".into(),
            ),
        },
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn counters_are_served_in_prometheus_text_format() {
        let metrics = Arc::new(Metrics::default());
        metrics.drops.store(7, Ordering::Relaxed);
        metrics.records.store(1234, Ordering::Relaxed);
        let text = metrics.render();
        assert!(text.contains("# TYPE imprint_sensor_dropped_records_total counter\nimprint_sensor_dropped_records_total 7\n"));
        assert!(text.contains("imprint_sensor_records_total 1234\n"));

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s) = (metrics.clone(), stop.clone());
        let server = std::thread::spawn(move || serve(listener, m, s));
        let get = |path: &str| {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            write!(c, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut response = String::new();
            c.read_to_string(&mut response).unwrap();
            response
        };
        let response = get("/metrics");
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        assert!(response.contains("imprint_sensor_dropped_records_total 7"));
        assert!(get("/healthz").ends_with("ok\n"));
        assert!(get("/readyz").starts_with("HTTP/1.1 503"));
        metrics.ready.store(true, Ordering::Relaxed);
        assert!(get("/readyz").ends_with("ready\n"));
        metrics
            .alerts_by_rule
            .lock()
            .unwrap()
            .insert("reverse-shell".into(), 2);
        assert!(
            get("/metrics").contains("imprint_alerts_by_rule_total{rule=\"reverse-shell\"} 2\n")
        );
        assert!(get("/nope").starts_with("HTTP/1.1 404"));
        // The spools: bytes waiting, and losses by output and severity.
        let mut lost = crate::outputs::Losses::default();
        lost.add(imprint_engine::Severity::Low, 3, 1200);
        *metrics.spools.lock().unwrap() = vec![SpoolReport {
            output: "webhook".into(),
            batches: 2,
            bytes: 4096,
            lost,
        }];
        let text = get("/metrics");
        for row in [
            "imprint_output_spool_bytes{output=\"webhook\"} 4096\n",
            "imprint_alerts_dropped_total{output=\"webhook\",severity=\"low\"} 3\n",
            "imprint_alerts_dropped_total{output=\"webhook\",severity=\"critical\"} 0\n",
            "imprint_alert_bytes_dropped_total{output=\"webhook\",severity=\"low\"} 1200\n",
        ] {
            assert!(text.contains(row), "{row} in {text}");
        }
        // Learn mode has no status; enforcing, it is the report, and a stopped
        // resolver makes the agent unready and says so in a gauge.
        assert!(get("/status").starts_with("HTTP/1.1 404"));
        *metrics.status.lock().unwrap() = Some(StatusReport::default());
        assert!(get("/status").contains("\"running\":true"));
        assert!(get("/metrics").contains("imprint_resolver_up 1\n"));
        metrics.status.lock().unwrap().as_mut().unwrap().resolver = crate::status::ResolverHealth {
            running: false,
            stopped: Some("it panicked".into()),
        };
        let readyz = get("/readyz");
        assert!(readyz.starts_with("HTTP/1.1 503"), "{readyz}");
        assert!(
            readyz.ends_with("not ready: the resolver stopped: it panicked\n"),
            "{readyz}"
        );
        assert!(get("/metrics").contains("imprint_resolver_up 0\n"));
        // Only GET; a client that sends half a request does not hold the server.
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        write!(c, "GET /met").unwrap();
        let post = {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            write!(
                c,
                "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
            )
            .unwrap();
            let mut response = String::new();
            c.read_to_string(&mut response).unwrap();
            response
        };
        assert!(post.starts_with("HTTP/1.1 405"), "{post}");
        assert!(get("/healthz").ends_with("ok\n"));
        drop(c);
        stop.store(true, Ordering::Relaxed);
        server.join().unwrap();
    }
}
