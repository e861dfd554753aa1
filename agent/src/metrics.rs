//! The agent's counters, served in Prometheus' text format on `--metrics-addr`
//! (`GET /metrics`; `GET /healthz` answers `ok`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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
    /// Alerts sent, by rule.
    pub alerts_by_rule: Mutex<BTreeMap<String, u64>>,
    /// Image digests by profile state (`verified`, `unsigned`, `no-profile`…).
    pub profiles_by_state: Mutex<BTreeMap<String, u64>>,
    /// The sensor is attached (and, enforcing, the last verified profiles are loaded).
    pub ready: AtomicBool,
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
        out
    }
}

/// Serves `/metrics` and `/healthz` on `listener` until `stop`.
pub fn serve(listener: TcpListener, metrics: Arc<Metrics>, stop: Arc<AtomicBool>) {
    let _ = listener.set_nonblocking(true);
    while !stop.load(Ordering::Relaxed) {
        let Ok((mut conn, _)) = listener.accept() else {
            std::thread::sleep(std::time::Duration::from_millis(50));
            continue;
        };
        let _ = conn.set_nonblocking(false);
        let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(2)));
        let mut line = String::new();
        if BufReader::new(&conn).read_line(&mut line).is_err() {
            continue;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("");
        let (status, content_type, body) = match path {
            "/metrics" => ("200 OK", "text/plain; version=0.0.4", metrics.render()),
            "/healthz" => ("200 OK", "text/plain", "ok\n".to_string()),
            "/readyz" if metrics.ready.load(Ordering::Relaxed) => {
                ("200 OK", "text/plain", "ready\n".to_string())
            }
            "/readyz" => (
                "503 Service Unavailable",
                "text/plain",
                "not ready\n".to_string(),
            ),
            _ => ("404 Not Found", "text/plain", "not found\n".to_string()),
        };
        let _ = write!(
            conn,
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

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
        stop.store(true, Ordering::Relaxed);
        server.join().unwrap();
    }
}
