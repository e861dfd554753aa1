//! `--mode learn`: every event of a container goes to the learning session of its
//! image; a profile is written once the image's learning period has passed.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use imprint_engine::Event;
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
    let mut learning = Learning::open(settings, period)?;
    let cluster = sensing::start_kubernetes(settings, None)?;
    let metrics = Arc::new(Metrics::default());
    let mut sensing = Sensing::start(
        settings,
        &stop,
        &metrics,
        &format!("learning for {period:#} per image"),
        cluster,
    )?;

    let persist_every = settings.persist_every();
    let mut last_persist = Instant::now();
    loop {
        let mut stopping = stop.load(Ordering::Relaxed);
        for event in sensing.next_events(Duration::from_millis(200), &mut stopping) {
            learning.on_event(&event, &metrics)?;
        }
        let now = Timestamp::now();
        learning.write_finished(now, &out_dir, &metrics)?;
        let session = &learning.session;
        if settings.learn.exit_when_learned() && session.learned() > 0 && session.learning() == 0 {
            eprintln!("imprint-agent: every image seen is learned (--exit-when-learned)");
            // As a signal would: the sensor's reader stops too.
            stop.store(true, Ordering::Relaxed);
            stopping = true;
        }
        if stopping || last_persist.elapsed() >= persist_every {
            learning.persist(now, &settings.state_dir().join("partial"))?;
            sensing.observe(&metrics);
            metrics
                .images_learning
                .store(learning.session.learning() as u64, Ordering::Relaxed);
            last_persist = Instant::now();
        }
        if stopping {
            break;
        }
    }
    let summary = sensing.finish();
    learning.log.flush()?;
    eprintln!(
        "imprint-agent: stopped with {} images still learning; {} records read, {} malformed, {} lost to a full ring buffer, {} suppressed by in-kernel dedup; {}",
        learning.session.learning(),
        summary.records,
        summary.malformed,
        summary.lost,
        summary.deduplicated,
        summary.attribution,
    );
    Ok(())
}

/// The learning session, its state log, and the optional event stream out.
struct Learning {
    session: LearnSession,
    log: StateLog,
    events_out: Option<BufWriter<std::fs::File>>,
}

impl Learning {
    /// The session, continued from the state directory's log.
    fn open(settings: &Settings, period: SignedDuration) -> anyhow::Result<Learning> {
        let mut session = LearnSession::new(period);
        let state_dir = settings.state_dir();
        let (log, replayed, skipped) = StateLog::open(state_dir, |e| {
            session.observe(&e);
        })
        .with_context(|| format!("cannot open the state in {}", state_dir.display()))?;
        if replayed > 0 || skipped > 0 {
            eprintln!(
                "imprint-agent: continued from {} ({replayed} events, {skipped} unreadable lines skipped)",
                log.path().display()
            );
        }
        // For users to read (`imprint replay --events`), so 0644; but never
        // appended through a link planted where it goes.
        let events_out = match &settings.learn.events_out {
            Some(path) => Some(BufWriter::new(
                imprint_fs::open_append(path, imprint_fs::PUBLIC)
                    .with_context(|| format!("cannot open --events-out {}", path.display()))?,
            )),
            None => None,
        };
        Ok(Learning {
            session,
            log,
            events_out,
        })
    }

    /// An event: written out when asked, learned (and logged) when a container's.
    fn on_event(&mut self, event: &Event, metrics: &Metrics) -> anyhow::Result<()> {
        if let Some(out) = self.events_out.as_mut() {
            serde_json::to_writer(&mut *out, event)?;
            out.write_all(b"\n")?;
        }
        if !sensing::is_host(event) && self.session.observe(event) {
            metrics.events.fetch_add(1, Ordering::Relaxed);
            self.log.append(event)?;
        }
        Ok(())
    }

    /// Writes the profiles whose learning period has passed.
    fn write_finished(
        &mut self,
        now: Timestamp,
        out_dir: &Path,
        metrics: &Metrics,
    ) -> anyhow::Result<()> {
        for profile in self.session.finish_due(now) {
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

    /// Flushes the log and the event stream, and writes the partial profiles.
    fn persist(&mut self, now: Timestamp, partial_dir: &Path) -> anyhow::Result<()> {
        self.log.flush()?;
        if let Some(out) = self.events_out.as_mut() {
            out.flush()?;
        }
        // Partial profiles are state (the files themselves stay 0644, as finished ones).
        imprint_fs::create_private_dir(partial_dir)
            .with_context(|| format!("cannot create {}", partial_dir.display()))?;
        for profile in self.session.snapshot(now) {
            write_profile(partial_dir, &profile)?;
        }
        Ok(())
    }
}

/// Writes `sha256-<hex>.yaml` into `dir`, replacing what was there at once.
fn write_profile(dir: &Path, profile: &imprint_schema::Profile) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(format!("{}.yaml", profile.image.digest.tag_form()));
    let yaml = imprint_schema::to_yaml(profile);
    imprint_fs::write_atomic(&path, yaml.as_bytes(), imprint_fs::PUBLIC)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}
