//! `--mode enforce`: verified profiles only, behaviour rules for every container,
//! incidents, and the outputs.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use imprint_agent::delivered::{self, SharedDeliveries};
use imprint_agent::outputs::{Outputs, SyslogTarget, Target, TlsFiles};
use imprint_agent::resolver::{self, ResolverConfig, Update};
use imprint_agent::{metrics, tracker};
use imprint_engine::{Correlator, Detector, Outcome, RuleFile, RuleSet};
use imprint_oci::keys::VerifyingKey;
use imprint_oci::policy::{Authority, Policy};

use crate::{Args, Sensing, start_sensing};

/// How long the start waits for the first list of `Profile` objects.
const PROFILE_LIST_WAIT: Duration = Duration::from_secs(15);

/// How often a `--profile-dir` is read again.
const PROFILE_DIR_SCAN: Duration = Duration::from_secs(2);

/// The policy `--policy` or `--key` gives: with keys, profiles must be signed and
/// attested (imprint's predicate) by one of them.
fn policy(args: &Args) -> anyhow::Result<Policy> {
    if let Some(path) = &args.policy {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read --policy {}", path.display()))?;
        return Ok(Policy::load(path, &bytes)?);
    }
    anyhow::ensure!(
        !args.keys.is_empty(),
        "enforce mode needs --policy FILE or at least one --key PUB: profiles are enforced only when verified"
    );
    let mut authorities = Vec::new();
    for path in &args.keys {
        let pem =
            std::fs::read(path).with_context(|| format!("cannot read --key {}", path.display()))?;
        let key =
            VerifyingKey::from_pem(&pem).with_context(|| format!("--key {}", path.display()))?;
        authorities.push(Authority::Key {
            name: path.display().to_string(),
            key,
        });
    }
    let mut policy = Policy::for_key(
        match &authorities[0] {
            Authority::Key { key, .. } => key.clone(),
            Authority::Keyless { .. } => unreachable!("keys only"),
        },
        true,
    );
    policy.authorities = authorities;
    Ok(policy)
}

fn rules(paths: &[std::path::PathBuf]) -> anyhow::Result<RuleSet> {
    let mut files = vec![RuleFile::parse(
        imprint_engine::rules::DEFAULT_RULES,
        "built-in rules",
    )?];
    for path in paths {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read --rules {}", path.display()))?;
        files.push(RuleFile::parse(&text, &path.display().to_string())?);
    }
    Ok(RuleSet::build(&files))
}

fn targets(args: &Args) -> anyhow::Result<Vec<Target>> {
    let mut out = Vec::new();
    if let Some(url) = &args.alertmanager_url {
        anyhow::ensure!(
            url.starts_with("http://") || url.starts_with("https://"),
            "--alertmanager-url {url:?}: expected http:// or https://"
        );
        out.push(Target::Alertmanager(url.clone()));
    }
    if let Some(url) = &args.webhook_url {
        anyhow::ensure!(
            url.starts_with("http://") || url.starts_with("https://"),
            "--webhook-url {url:?}: expected http:// or https://"
        );
        let mut headers = Vec::new();
        for h in &args.webhook_headers {
            let (k, v) = h
                .split_once(':')
                .with_context(|| format!("--webhook-header {h:?}: expected `Name: value`"))?;
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        out.push(Target::Webhook(url.clone(), headers));
    }
    if let Some(url) = &args.syslog_url {
        let tls = TlsFiles {
            ca: args.syslog_ca.clone(),
            cert: args.syslog_cert.clone(),
            key: args.syslog_key.clone(),
        };
        let target = SyslogTarget::new(url, &tls).context("--syslog-url")?;
        out.push(Target::Syslog(target));
    }
    Ok(out)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    // Everything is checked before anything starts.
    anyhow::ensure!(
        !args.exit_when_learned,
        "--exit-when-learned is for --mode learn"
    );
    let policy = policy(&args)?;
    let rules = rules(&args.rules)?;
    let targets = targets(&args)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone()).context("cannot handle signals")?;
    }
    std::fs::create_dir_all(&args.state_dir)
        .with_context(|| format!("cannot create --state-dir {}", args.state_dir.display()))?;
    let host = args.node.clone().unwrap_or_default();
    let outputs = Outputs::start(targets, args.stdout, &args.state_dir.join("spool"), host)
        .context("cannot open the output spools")?;

    // Delivered profiles: Profile objects (--kubernetes) and a profile directory.
    let deliveries = SharedDeliveries::default();
    if let Some(dir) = args.profile_dir.clone() {
        anyhow::ensure!(
            dir.is_dir(),
            "--profile-dir {}: not a directory",
            dir.display()
        );
        let report = |problems: &[String], reported: &[String]| {
            // Each problem once, not every scan.
            for p in problems.iter().filter(|p| !reported.contains(*p)) {
                eprintln!("imprint-agent: delivered profile not used: {p}");
            }
        };
        // Read once before the resolver starts, so it never picks without the pins.
        let mut reported = delivered::scan_dir(&dir, &deliveries);
        report(&reported, &[]);
        let (d, s) = (deliveries.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let until = Instant::now() + PROFILE_DIR_SCAN;
                while Instant::now() < until && !s.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                }
                let problems = delivered::scan_dir(&dir, &d);
                report(&problems, &reported);
                reported = problems;
            }
        });
    }
    let cluster = crate::start_kubernetes(&args, Some(deliveries.clone()))?;
    if cluster.is_some() {
        // Pins first: the resolver starts once the Profile objects are listed, so it
        // does not enforce discovery's choice for a digest that Git pins otherwise.
        let listed =
            || delivered::lock(&deliveries).is_listed(imprint_agent::kubernetes::PROFILE_SOURCES);
        let deadline = Instant::now() + PROFILE_LIST_WAIT;
        while !listed() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        if !listed() {
            eprintln!(
                "imprint-agent: Profile objects not listed within {PROFILE_LIST_WAIT:?}; resolving without their pins until they are"
            );
        }
    }

    let (watch_tx, watch_rx) = std::sync::mpsc::channel();
    let (update_tx, update_rx) = std::sync::mpsc::channel();
    let resolver_stop = stop.clone();
    let config = ResolverConfig {
        policy,
        profile_repos: args.profile_repos.clone(),
        pinned: args.profile_refs.clone(),
        registry: Default::default(),
        state_dir: args.state_dir.clone(),
        refresh: Duration::from_secs(args.refresh.max(1)),
        delivered: deliveries,
    };
    let resolver =
        std::thread::spawn(move || resolver::run(config, watch_rx, update_tx, resolver_stop));

    let metrics = Arc::new(metrics::Metrics::default());
    let Sensing {
        mut tracker,
        sensor,
        rx,
        reader,
        clock,
    } = start_sensing(
        &args,
        &stop,
        &metrics,
        "enforcing verified profiles",
        cluster,
    )?;

    let mut detector = Detector::new(rules);
    let window = jiff::SignedDuration::from_secs(args.incident_window.max(1));
    let mut correlator = Correlator::new(window, window);
    let mut watched: HashSet<String> = HashSet::new();
    // Index digest → the platform manifest this node runs (from the resolver).
    let mut platforms: std::collections::HashMap<String, String> = Default::default();
    let mut states: std::collections::HashMap<String, &'static str> = Default::default();
    let mut alerts = Vec::new();
    let mut batch = Vec::new();
    let mut last_tick = Instant::now();
    loop {
        let mut stopping = stop.load(Ordering::Relaxed);
        // Profiles first: what the resolver verified is in force before the next event.
        while let Ok(update) = update_rx.try_recv() {
            match update {
                Update::Enforce {
                    digest,
                    artifact,
                    profile,
                } => {
                    detector.load(&profile);
                    eprintln!("imprint-agent: enforcing {artifact} for {digest}");
                    states.insert(digest, "verified");
                }
                Update::Revoke { digest, status } => {
                    detector.unload(&digest);
                    eprintln!(
                        "imprint-agent: no longer enforcing a profile for {digest}: {}: {status:?}",
                        status.label()
                    );
                    states.insert(digest, status.label());
                }
                Update::Platform { index, manifest } => {
                    // The index's own state, if any, goes: its events now name the manifest.
                    detector.unload(&index);
                    states.remove(&index);
                    platforms.insert(index, manifest);
                }
                Update::Status { digest, status } => {
                    eprintln!(
                        "imprint-agent: {digest}: {} ({status:?}); behaviour rules only",
                        status.label()
                    );
                    states.insert(digest, status.label());
                }
            }
            let mut by_state = std::collections::BTreeMap::new();
            for state in states.values() {
                *by_state.entry(state.to_string()).or_insert(0u64) += 1;
            }
            *metrics
                .profiles_by_state
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = by_state;
            metrics
                .profiles_enforced
                .store(detector.profiles() as u64, Ordering::Relaxed);
        }
        let events = crate::next_events(
            &mut tracker,
            &rx,
            &clock,
            Duration::from_millis(100),
            &mut stopping,
        );
        for mut event in events {
            if event.container_id == tracker::HOST {
                continue;
            }
            // Profiles and alerts name the manifest the container runs, not its index.
            if let Some(manifest) = platforms.get(&event.image_digest) {
                event.image_digest = manifest.clone();
            }
            metrics.events.fetch_add(1, Ordering::Relaxed);
            if watched.insert(event.image_digest.clone()) {
                let _ = watch_tx.send((event.image_digest.clone(), event.image_ref.clone()));
            }
            correlator.observe(&event);
            detector.check(&event, &mut alerts);
            for alert in alerts.drain(..) {
                let id = match correlator.push(alert.clone()) {
                    Outcome::Suppressed(_) => continue,
                    Outcome::Opened(id) | Outcome::Joined(id) => id,
                };
                metrics.alerts.fetch_add(1, Ordering::Relaxed);
                *metrics
                    .alerts_by_rule
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(alert.rule.clone())
                    .or_insert(0) += 1;
                batch.push((alert, id));
            }
        }
        if !batch.is_empty() {
            outputs.send(&batch);
            batch.clear();
        }
        if stopping || last_tick.elapsed() >= Duration::from_secs(1) {
            correlator.expire(jiff::Timestamp::now());
            metrics.observe_sensing(&sensor, &tracker);
            metrics
                .output_queue
                .store(outputs.queued() as u64, Ordering::Relaxed);
            last_tick = Instant::now();
        }
        if stopping {
            break;
        }
    }
    let _ = reader.join();
    let _ = resolver.join();
    // Graceful: give the receivers a moment to take what is queued; the rest
    // stays spooled for the next start.
    outputs.shutdown(Duration::from_secs(5));
    eprintln!("imprint-agent: stopped; {}", tracker.summary());
    Ok(())
}
