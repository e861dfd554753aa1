//! What both modes run: the stop flag, the Kubernetes watchers, and sensing —
//! attribution, the eBPF sensor, and the thread reading its ring buffer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use anyhow::Context;
use imprint_agent_ebpf::{Header, Record};
use imprint_engine::Event;

use crate::attribution::{self, CgroupIndex, ImageResolver};
use crate::delivered::SharedDeliveries;
use crate::metrics::{self, Metrics};
use crate::pods::{SharedPods, parse_pod_statuses};
use crate::sensor::{self, ReadStats, Sensor};
use crate::settings::{Runtime, Settings};
use crate::tracker::{self, Clock, Tracker};

/// A flag set by SIGTERM or SIGINT (and by a mode that decides to stop).
pub fn stop_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone()).context("cannot handle signals")?;
    }
    Ok(stop)
}

/// With `--kubernetes`: connects to the API and starts the watchers (this node's
/// pods; `Profile` objects into `deliveries` when given) on their own thread.
pub fn start_kubernetes(
    settings: &Settings,
    deliveries: Option<SharedDeliveries>,
) -> anyhow::Result<Option<SharedPods>> {
    use crate::kubernetes;
    if !settings.kubernetes() {
        return Ok(None);
    }
    let node = settings
        .node_name()
        .context("--kubernetes: no node name; give --node")?;
    let pods = SharedPods::default();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let watched = pods.clone();
    std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                let _ = ready_tx.send(Err(anyhow::anyhow!("a tokio runtime: {e}")));
                return;
            }
        };
        runtime.block_on(async move {
            let client = match kube::Client::try_default().await {
                Ok(c) => c,
                Err(e) => {
                    let _ = ready_tx.send(Err(anyhow::anyhow!(
                        "no in-cluster service account or KUBECONFIG: {e}"
                    )));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            let pods = kubernetes::watch_pods(client.clone(), node, watched);
            match deliveries {
                Some(d) => {
                    futures_util::future::join(pods, kubernetes::watch_profiles(client, d)).await;
                }
                None => pods.await,
            }
        });
    });
    ready_rx
        .recv()
        .context("--kubernetes: the API client thread ended")?
        .context("--kubernetes")?;
    Ok(Some(pods))
}

/// Attribution, the sensor and its reader thread.
pub struct Sensing {
    tracker: Tracker,
    sensor: Sensor,
    rx: Receiver<(Header, Record)>,
    reader: std::thread::JoinHandle<ReadStats>,
    clock: Clock,
}

impl Sensing {
    /// Attaches the sensor and starts reading it; serves metrics when asked.
    /// `doing` says what the mode does, in the start line.
    pub fn start(
        settings: &Settings,
        stop: &Arc<AtomicBool>,
        metrics: &Arc<Metrics>,
        doing: &str,
        cluster: Option<SharedPods>,
    ) -> anyhow::Result<Sensing> {
        let tracker = Tracker::new(
            cgroups()?,
            image_resolver(settings, cluster)?,
            settings.node_name(),
            settings.include_host(),
        );
        let mut sensor = Sensor::start()?;
        let ring = sensor.take_ring()?;
        eprintln!(
            "imprint-agent: sensor attached ({} programs{}); {doing}, {} containers already running",
            sensor.attached.len(),
            if sensor.skipped.is_empty() {
                String::new()
            } else {
                format!("; no tracepoint for {}", sensor.skipped.join(", "))
            },
            tracker.preexisting(),
        );
        if let Some(addr) = settings.metrics_addr {
            let listener = std::net::TcpListener::bind(addr)
                .with_context(|| format!("cannot listen on --metrics-addr {addr}"))?;
            let (m, s) = (metrics.clone(), stop.clone());
            std::thread::spawn(move || metrics::serve(listener, m, s));
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1 << 16);
        let (reader_stop, reader_metrics) = (stop.clone(), metrics.clone());
        let reader = std::thread::spawn(move || {
            sensor::read_ring(ring, reader_stop, Duration::from_millis(20), |h, r| {
                reader_metrics.records.fetch_add(1, Ordering::Relaxed);
                let _ = tx.send((h, r));
            })
        });
        metrics.ready.store(true, Ordering::Relaxed);
        Ok(Sensing {
            tracker,
            sensor,
            rx,
            reader,
            clock: Clock::new(),
        })
    }

    /// The events of the next turn of a mode's loop: held events released by now,
    /// then those of the next record (waiting up to `wait`). Host processes'
    /// events are among them only with `--include-host`. When the sensor is
    /// gone, `stopping` is set; what was released is still returned.
    pub fn next_events(&mut self, wait: Duration, stopping: &mut bool) -> Vec<Event> {
        let mut events = self.tracker.release_held(self.clock.now());
        match self.rx.recv_timeout(wait) {
            Ok((header, record)) => {
                let time = self.clock.wall(header.time_ns);
                events.extend(self.tracker.events(&header, &record, time));
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => *stopping = true,
        }
        events
    }

    /// What was lost or judged without its image since the last call, by
    /// container: ring-buffer drops (from the kernel's per-cgroup count) and
    /// events that did not fit the hold. Host processes' drops are left to the
    /// metric.
    pub fn take_losses(&mut self) -> Vec<Loss> {
        let mut losses = Vec::new();
        for (cgroup, count) in self.sensor.take_drops_by_cgroup() {
            if let Some(container) = self.tracker.container_of_cgroup(cgroup) {
                losses.push(Loss {
                    container,
                    kind: LossKind::RingBufferFull,
                    count,
                });
            }
        }
        for (container, count) in self.tracker.take_unheld() {
            losses.push(Loss {
                container,
                kind: LossKind::HoldFull,
                count,
            });
        }
        losses
    }

    /// Publishes the sensor's and attribution's counters.
    pub fn observe(&self, metrics: &Metrics) {
        metrics.observe_sensing(&self.sensor, &self.tracker);
    }

    /// Waits for the reader (the stop flag must be set) and says what was seen.
    pub fn finish(self) -> SensingSummary {
        let stats = self.reader.join().unwrap_or_default();
        SensingSummary {
            records: stats.records,
            malformed: stats.malformed,
            lost: self.sensor.drops(),
            deduplicated: self.sensor.deduped(),
            attribution: self.tracker.summary(),
        }
    }
}

/// Events of one container that were lost, or judged without its image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loss {
    /// The container.
    pub container: String,
    /// What happened to them.
    pub kind: LossKind,
    /// How many.
    pub count: u64,
}

/// What happened to the events of a [`Loss`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossKind {
    /// The ring buffer was full: the kernel's records were lost.
    RingBufferFull,
    /// The hold for a pod status was full: judged at once, by the rules only.
    HoldFull,
}

/// What a stopped sensing saw, for the last log line.
pub struct SensingSummary {
    /// Records read from the ring buffer.
    pub records: u64,
    /// Records that did not decode.
    pub malformed: u64,
    /// Records lost to a full ring buffer.
    pub lost: u64,
    /// Records the kernel's dedup suppressed.
    pub deduplicated: u64,
    /// The tracker's summary (containers, unresolved, host events).
    pub attribution: String,
}

/// Whether an event is a host process's (reported only with `--include-host`).
pub fn is_host(event: &Event) -> bool {
    event.container_id == tracker::HOST
}

fn cgroups() -> anyhow::Result<CgroupIndex> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let root = attribution::cgroup2_mount(&mountinfo)
        .context("no cgroup2 hierarchy is mounted (needed to tell containers apart)")?;
    Ok(CgroupIndex::new(&root))
}

fn image_resolver(
    settings: &Settings,
    cluster: Option<SharedPods>,
) -> anyhow::Result<ImageResolver> {
    let runtimes = match settings.runtime() {
        Runtime::Auto => vec![attribution::Runtime::Podman, attribution::Runtime::Cri],
        Runtime::Podman => vec![attribution::Runtime::Podman],
        Runtime::Cri => vec![attribution::Runtime::Cri],
    };
    let mut resolver = ImageResolver::new(runtimes);
    if let Some(path) = &settings.pod_statuses {
        let json = std::fs::read(path)
            .with_context(|| format!("cannot read --pod-statuses {}", path.display()))?;
        resolver.learn(parse_pod_statuses(&json));
    }
    if let Some(pods) = cluster {
        resolver = resolver.with_cluster(pods);
    }
    Ok(resolver)
}
