//! `--mode enforce`: verified profiles only, behaviour rules for every container,
//! incidents, and the outputs.
//!
//! [`run`] checks everything, starts the resolver (its own thread) and sensing,
//! then turns [`Enforcer`]: resolver updates first, so what was verified is in
//! force before the next event; then the events; then, every second, a tick.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use anyhow::Context;
use imprint_engine::{Alert, Correlator, Detector, Event, Outcome, Severity, Source};
use imprint_schema::Digest;

use crate::delivered::SharedDeliveries;
use crate::metrics::Metrics;
use crate::outputs::{Outputs, SpoolLimits};
use crate::resolver::{self, ResolverConfig, Status, Update};
use crate::sensing::{self, Sensing};
use crate::settings::Settings;
use crate::status::{ResolverHealth, StatusReport};

mod setup;

/// How often the loop's tick runs (incident expiry, metrics).
const TICK: Duration = Duration::from_secs(1);

/// Runs enforce mode until a signal.
pub fn run(settings: &Settings) -> anyhow::Result<()> {
    // Everything is checked before anything starts.
    anyhow::ensure!(
        !settings.learn.exit_when_learned(),
        "--exit-when-learned is for --mode learn"
    );
    let policy = setup::policy(settings)?;
    let rules = setup::rules(&settings.enforce.rules)?;
    let targets = setup::targets(settings)?;
    let stop = sensing::stop_on_signals()?;
    let state_dir = settings.state_dir().to_path_buf();
    // The agent's own (0700): spools hold alerts, the resolver what it verified.
    for dir in [state_dir.clone(), state_dir.join("spool")] {
        imprint_fs::create_private_dir(&dir)
            .with_context(|| format!("--state-dir: cannot create {}", dir.display()))?;
    }
    let host = settings.node.clone().unwrap_or_default();
    let limits = (settings.outputs.spool_max_bytes)
        .map_or_else(SpoolLimits::default, SpoolLimits::with_max_bytes);
    let outputs = Outputs::start_with(
        targets,
        settings.outputs.stdout(),
        &state_dir.join("spool"),
        host,
        limits,
    )
    .context("cannot open the output spools")?;

    // Delivered profiles: Profile objects (--kubernetes) and a profile directory.
    let deliveries = SharedDeliveries::default();
    if let Some(dir) = settings.enforce.profile_dir.clone() {
        setup::watch_profile_dir(dir, &deliveries, &stop)?;
    }
    let cluster = sensing::start_kubernetes(settings, Some(deliveries.clone()))?;
    if cluster.is_some() {
        setup::wait_for_profile_objects(&deliveries);
    }

    let (watch_tx, watch_rx) = std::sync::mpsc::channel();
    let (update_tx, update_rx) = std::sync::mpsc::channel();
    let config = ResolverConfig {
        policy,
        profile_repos: settings.enforce.profile_repos.clone(),
        pinned: (settings.enforce.profile_refs.iter())
            .map(|r| r.as_str().to_string())
            .collect(),
        registry: Default::default(),
        state_dir,
        refresh: settings.enforce.refresh(),
        delivered: deliveries,
        max_offline_age: settings.enforce.max_offline_age(),
    };
    let resolver_stop = stop.clone();
    let resolver =
        std::thread::spawn(move || resolver::run(config, watch_rx, update_tx, resolver_stop));

    let metrics = Arc::new(Metrics::default());
    *lock(&metrics.status) = Some(StatusReport::default());
    let mut sensing = Sensing::start(
        settings,
        &stop,
        &metrics,
        "enforcing verified profiles",
        cluster,
    )?;
    let window = jiff::SignedDuration::try_from(settings.enforce.incident_window())
        .context("--incident-window is too long")?;
    let mut enforcer = Enforcer {
        detector: Detector::new(rules),
        correlator: Correlator::new(window, window),
        outputs,
        metrics: metrics.clone(),
        watch: watch_tx,
        watched: HashMap::new(),
        platforms: HashMap::new(),
        resolver: Some(resolver),
        node: settings.node.clone(),
    };
    let mut last_tick = Instant::now();
    loop {
        let mut stopping = stop.load(Ordering::Relaxed);
        while let Ok(update) = update_rx.try_recv() {
            enforcer.on_update(update);
        }
        let events = sensing.next_events(Duration::from_millis(100), &mut stopping);
        enforcer.on_events(events);
        if stopping || last_tick.elapsed() >= TICK {
            enforcer.on_tick(stopping);
            enforcer.on_losses(sensing.take_losses());
            sensing.observe(&metrics);
            last_tick = Instant::now();
        }
        if stopping {
            break;
        }
    }
    let summary = sensing.finish();
    if let Some(resolver) = enforcer.resolver.take() {
        let _ = resolver.join();
    }
    // Graceful: give the receivers a moment to take what is queued; the rest
    // stays spooled for the next start.
    enforcer.outputs.shutdown(Duration::from_secs(5));
    eprintln!("imprint-agent: stopped; {}", summary.attribution);
    Ok(())
}

/// The enforce loop's state: one method per kind of input.
struct Enforcer {
    detector: Detector,
    correlator: Correlator,
    outputs: Outputs,
    metrics: Arc<Metrics>,
    /// Where each newly seen image digest (and the reference it ran from) is
    /// sent, for the resolver to look up.
    watch: Sender<(Digest, Option<String>)>,
    /// The references each digest was sent with: every new one goes to the
    /// resolver (a reference adds a place to look), at most
    /// [`MAX_REFERENCES_SENT`] per digest, so a workload cannot flood it.
    watched: HashMap<Digest, HashSet<Option<String>>>,
    /// Index digest → the platform manifest this node runs (from the resolver).
    platforms: HashMap<Digest, Digest>,
    /// The resolver's thread, until it is found stopped.
    resolver: Option<std::thread::JoinHandle<()>>,
    /// This node's name, for the agent's own alerts.
    node: Option<String>,
}

impl Enforcer {
    /// A resolver's decision: a profile enforced, revoked, or why there is none.
    fn on_update(&mut self, update: Update) {
        if let Some(report) = lock(&self.metrics.status).as_mut() {
            report.apply(&update);
        }
        match update {
            Update::Enforce {
                digest,
                artifact,
                profile,
            } => {
                self.detector.load(&profile);
                eprintln!("imprint-agent: enforcing {artifact} for {digest}");
            }
            Update::Revoke { digest, status } => {
                if let Status::OfflineTooLong(why) = &status {
                    let message = format!(
                        "The profile of {digest} is no longer enforced: {why}; behaviour rules only"
                    );
                    self.agent_alert(
                        PROFILE_OFFLINE,
                        Severity::High,
                        message,
                        Some(digest.clone()),
                    );
                }
                self.detector.unload(&digest);
                eprintln!(
                    "imprint-agent: no longer enforcing a profile for {digest}: {}: {status:?}",
                    status.label()
                );
            }
            Update::Flooded { digest, detail } => {
                let detail = detail.join("; ");
                eprintln!(
                    "imprint-agent: {digest}: more signatures or referrers than are examined: {detail}"
                );
                let message = format!(
                    "A signature tag or referrers list of {digest} holds more entries than are examined ({detail}): a flood can hide a signature"
                );
                self.agent_alert(LISTING_FLOODED, Severity::Medium, message, Some(digest));
            }
            Update::Platform { index, manifest } => {
                // The index's own state, if any, goes: its events now name the manifest.
                self.detector.unload(&index);
                self.platforms.insert(index, manifest);
            }
            Update::Status { digest, status } => {
                if let Status::Withdrawn(why) = &status {
                    // What is enforced stays; someone removed or broke the newest.
                    eprintln!(
                        "imprint-agent: {digest}: withdrawn: {why}; the profile in force stays"
                    );
                    let message = format!(
                        "The profile of {digest} was withdrawn without a revocation, a pin or a policy change: {why}; the profile in force stays"
                    );
                    self.agent_alert(
                        PROFILE_WITHDRAWN,
                        Severity::High,
                        message,
                        Some(digest.clone()),
                    );
                } else {
                    eprintln!(
                        "imprint-agent: {digest}: {} ({status:?}); behaviour rules only",
                        status.label()
                    );
                }
            }
        }
        // The metric counts what `/status` says, so the two cannot disagree.
        let by_state = (lock(&self.metrics.status).as_ref())
            .map(StatusReport::count_by_state)
            .unwrap_or_default();
        *lock(&self.metrics.profiles_by_state) = by_state;
        self.metrics
            .profiles_enforced
            .store(self.detector.profiles() as u64, Ordering::Relaxed);
    }

    /// Events: each judged against its image's profile and the rules; what
    /// alerts and is not suppressed as a repeat goes to the outputs.
    fn on_events(&mut self, events: Vec<Event>) {
        let mut batch = Vec::new();
        let mut alerts = Vec::new();
        for mut event in events {
            if sensing::is_host(&event) {
                continue;
            }
            // Profiles and alerts name the manifest the container runs, not its index.
            if let Some(manifest) =
                (event.image_digest.as_ref()).and_then(|d| self.platforms.get(d))
            {
                event.image_digest = Some(manifest.clone());
            }
            self.metrics.events.fetch_add(1, Ordering::Relaxed);
            // A container whose image is not known yet meets the rules only.
            if let Some(digest) = &event.image_digest {
                self.watch(digest, &event.image_ref);
            }
            self.correlator.observe(&event);
            self.detector.check(&event, &mut alerts);
            batch.extend(alerts.drain(..).filter_map(|alert| self.incident_of(alert)));
        }
        if !batch.is_empty() {
            self.outputs.send(&batch);
        }
    }

    /// Sends a digest to the resolver the first time it runs, and again with each
    /// new reference it runs from (up to the bound).
    fn watch(&mut self, digest: &Digest, image_ref: &Option<String>) {
        let sent = self.watched.entry(digest.clone()).or_default();
        if sent.len() >= MAX_REFERENCES_SENT || !sent.insert(image_ref.clone()) {
            return;
        }
        if let Some(report) = lock(&self.metrics.status).as_mut() {
            report.seen(digest);
        }
        let _ = (self.watch).send((digest.clone(), image_ref.clone()));
    }

    /// The incident an alert opens or joins, counted; `None` when it is a repeat.
    fn incident_of(&mut self, alert: Alert) -> Option<(Alert, String)> {
        let id = match self.correlator.push(alert.clone()) {
            Outcome::Suppressed(_) => return None,
            Outcome::Opened(id) | Outcome::Joined(id) => id,
        };
        self.metrics.count_alert(&alert.rule);
        Some((alert, id))
    }

    /// Once a second: incidents past their window close; the queue is measured;
    /// a resolver found stopped is said loudly.
    fn on_tick(&mut self, stopping: bool) {
        if !stopping {
            self.check_resolver();
        }
        self.correlator.expire(jiff::Timestamp::now());
        self.metrics
            .output_queue
            .store(self.outputs.queued() as u64, Ordering::Relaxed);
        *lock(&self.metrics.spools) = self.outputs.spools();
    }

    /// Losses are alerts, naming the container and the count: what the sensor
    /// could not deliver cannot be judged, and a flood may be the attack.
    fn on_losses(&mut self, losses: Vec<sensing::Loss>) {
        for loss in losses {
            let (rule, severity, message) = loss_alert(&loss);
            let container = loss.container;
            self.send_agent_alert(rule, severity, message, container.clone(), container, None);
        }
    }

    /// The resolver runs until the agent stops. If it ends before (its cache is
    /// unusable, it panicked), no profile changes any more and new images stay
    /// on behaviour rules: `/readyz` fails, `imprint_resolver_up` is 0, `/status`
    /// says why, and an alert goes out, so the node is never on rules only in
    /// silence. Enforcing what was already loaded goes on.
    fn check_resolver(&mut self) {
        if !self.resolver.as_ref().is_some_and(|r| r.is_finished()) {
            return;
        }
        let Some(resolver) = self.resolver.take() else {
            return;
        };
        let why = match resolver.join() {
            Ok(()) => "it ended (its log line says why)".to_string(),
            Err(panic) => match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
                (Some(message), _) => format!("it panicked: {message}"),
                (None, Some(message)) => format!("it panicked: {message}"),
                (None, None) => "it panicked".to_string(),
            },
        };
        eprintln!("imprint-agent: error: the profile resolver stopped: {why}");
        if let Some(report) = lock(&self.metrics.status).as_mut() {
            report.resolver = ResolverHealth {
                running: false,
                stopped: Some(why.clone()),
            };
        }
        let message = format!(
            "The profile resolver stopped ({why}): no profile is verified or revoked any more, and new images are on behaviour rules only"
        );
        self.agent_alert(RESOLVER_STOPPED, Severity::Critical, message, None);
    }

    /// Raises an alert about the agent itself (a stopped resolver, a withdrawn
    /// profile): not about a container, so not correlated into an incident.
    fn agent_alert(
        &mut self,
        rule: &str,
        severity: Severity,
        message: String,
        digest: Option<Digest>,
    ) {
        let subject = digest
            .as_ref()
            .map_or("resolver".to_string(), |d| d.to_string());
        self.send_agent_alert(rule, severity, message, subject, String::new(), digest);
    }

    /// Sends an alert of the agent's own (source `agent`), counted; a container
    /// id only when it is about one (its events were lost).
    fn send_agent_alert(
        &mut self,
        rule: &str,
        severity: Severity,
        message: String,
        subject: String,
        container_id: String,
        digest: Option<Digest>,
    ) {
        let now = jiff::Timestamp::now();
        let alert = Alert {
            rule: rule.to_string(),
            source: Source::Agent,
            severity,
            mitre: vec![],
            message,
            subject,
            time: now,
            container_id,
            image_digest: digest,
            node: self.node.clone(),
            pid: std::process::id(),
            comm: Some("imprint-agent".to_string()),
        };
        self.metrics.count_alert(&alert.rule);
        let incident = format!("agent-{}", now.as_second());
        self.outputs.send(&[(alert, incident)]);
    }
}

/// The rule, severity and message of the alert a loss raises: the container
/// and the count are named.
fn loss_alert(loss: &sensing::Loss) -> (&'static str, Severity, String) {
    match loss.kind {
        sensing::LossKind::RingBufferFull => (
            EVENTS_LOST,
            Severity::High,
            format!(
                "{} kernel records of container {} were lost: the sensor's ring buffer was full",
                loss.count, loss.container
            ),
        ),
        sensing::LossKind::HoldFull => (
            EVENTS_UNPROFILED,
            Severity::Medium,
            format!(
                "{} events of container {} were judged by the behaviour rules only: its image was not known yet and the hold for its pod status was full",
                loss.count, loss.container
            ),
        ),
    }
}

/// How many distinct references of one digest are sent to the resolver (which
/// bounds what it remembers on its own).
const MAX_REFERENCES_SENT: usize = 32;

/// The rule id of the alert a profile unconfirmed for too long raises.
pub const PROFILE_OFFLINE: &str = "agent-profile-offline-too-long";

/// The rule id of the alert a flooded signature tag or listing raises.
pub const LISTING_FLOODED: &str = "agent-listing-flooded";

/// The rule id of the alert a withdrawn profile raises.
pub const PROFILE_WITHDRAWN: &str = "agent-profile-withdrawn";

/// The rule id of the alert lost kernel records raise.
pub const EVENTS_LOST: &str = "agent-events-lost";

/// The rule id of the alert events judged without their image raise.
pub const EVENTS_UNPROFILED: &str = "agent-events-unprofiled";

/// The rule id of the alert a stopped resolver raises.
pub const RESOLVER_STOPPED: &str = "agent-resolver-stopped";

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn losses_are_alerts_naming_the_container_and_the_count() {
        let loss = |kind| sensing::Loss {
            container: "4c2b1f8a9d7e".into(),
            kind,
            count: 1234,
        };
        let (rule, severity, message) = loss_alert(&loss(sensing::LossKind::RingBufferFull));
        assert_eq!((rule, severity), (EVENTS_LOST, Severity::High));
        assert!(message.starts_with("1234 kernel records of container 4c2b1f8a9d7e"));
        let (rule, severity, message) = loss_alert(&loss(sensing::LossKind::HoldFull));
        assert_eq!((rule, severity), (EVENTS_UNPROFILED, Severity::Medium));
        assert!(message.contains("1234 events of container 4c2b1f8a9d7e"));
    }
}
