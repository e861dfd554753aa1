//! `--mode learn`: every event of a container goes to the learning session of its
//! image; a profile is written once the image's learning period has passed.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use jiff::{SignedDuration, Timestamp};

use crate::learn::{LearnSession, StateLog};
use crate::metrics::Metrics;
use crate::sensing::{self, Sensing};
use crate::settings::Settings;

/// Runs learn mode until a signal, or until every image is learned with
/// `--exit-when-learned`.
pub fn run(settings: &Settings) -> anyhow::Result<()> {
    let out_dir = settings
        .learn
        .out
        .clone()
        .context("learn mode needs --out DIR (or learn.out in --config)")?;
    anyhow::ensure!(
        settings.enforce.profile_dir.is_none(),
        "--profile-dir is for --mode enforce"
    );
    let stop = sensing::stop_on_signals()?;
    let period = SignedDuration::try_from(settings.learn.learning_period())
        .context("--learning-period is too long")?;
    let mut session = LearnSession::new(period);
    let state_dir = settings.state_dir();
    let (mut log, replayed, skipped) = StateLog::open(state_dir, |e| {
        session.observe(&e);
    })
    .with_context(|| format!("cannot open the state in {}", state_dir.display()))?;
    if replayed > 0 || skipped > 0 {
        eprintln!(
            "imprint-agent: continued from {} ({replayed} events, {skipped} unreadable lines skipped)",
            log.path().display()
        );
    }
    let mut events_out = match &settings.learn.events_out {
        Some(path) => Some(BufWriter::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open --events-out {}", path.display()))?,
        )),
        None => None,
    };
    let cluster = sensing::start_kubernetes(settings, None)?;
    let metrics = Arc::new(Metrics::default());
    let mut sensing = Sensing::start(
        settings,
        &stop,
        &metrics,
        &format!("learning for {period:#} per image"),
        cluster,
    )?;

    let mut last_persist = Instant::now();
    loop {
        let mut stopping = stop.load(Ordering::Relaxed);
        for event in sensing.next_events(Duration::from_millis(200), &mut stopping) {
            if let Some(out) = events_out.as_mut() {
                serde_json::to_writer(&mut *out, &event)?;
                out.write_all(b"\n")?;
            }
            if !sensing::is_host(&event) && session.observe(&event) {
                metrics.events.fetch_add(1, Ordering::Relaxed);
                log.append(&event)?;
            }
        }
        let now = Timestamp::now();
        write_finished(&mut session, now, &out_dir, &metrics)?;
        if settings.learn.exit_when_learned() && session.learned() > 0 && session.learning() == 0 {
            eprintln!("imprint-agent: every image seen is learned (--exit-when-learned)");
            // As a signal would: the sensor's reader stops too.
            stop.store(true, Ordering::Relaxed);
            stopping = true;
        }
        if stopping || last_persist.elapsed() >= settings.persist_every() {
            log.flush()?;
            if let Some(out) = events_out.as_mut() {
                out.flush()?;
            }
            for profile in session.snapshot(now) {
                write_profile(&state_dir.join("partial"), &profile)?;
            }
            sensing.observe(&metrics);
            metrics
                .images_learning
                .store(session.learning() as u64, Ordering::Relaxed);
            last_persist = Instant::now();
        }
        if stopping {
            break;
        }
    }
    let summary = sensing.finish();
    log.flush()?;
    eprintln!(
        "imprint-agent: stopped with {} images still learning; {} records read, {} malformed, {} lost to a full ring buffer, {} suppressed by in-kernel dedup; {}",
        session.learning(),
        summary.records,
        summary.malformed,
        summary.lost,
        summary.deduplicated,
        summary.attribution,
    );
    Ok(())
}

/// Writes the profiles whose learning period has passed.
fn write_finished(
    session: &mut LearnSession,
    now: Timestamp,
    out_dir: &Path,
    metrics: &Metrics,
) -> anyhow::Result<()> {
    for profile in session.finish_due(now) {
        let path = write_profile(out_dir, &profile)?;
        metrics.profiles_written.fetch_add(1, Ordering::Relaxed);
        eprintln!(
            "imprint-agent: learned {} ({:?}) → {}",
            profile.image.digest,
            profile.learning.completeness,
            path.display()
        );
    }
    Ok(())
}

/// Writes `sha256-<hex>.yaml` into `dir`, replacing what was there at once.
fn write_profile(dir: &Path, profile: &imprint_schema::Profile) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = format!("{}.yaml", profile.image.digest.replace(':', "-"));
    let path = dir.join(name);
    let tmp = dir.join(format!(".{}.tmp", std::process::id()));
    std::fs::write(&tmp, imprint_schema::to_yaml(profile))
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}
