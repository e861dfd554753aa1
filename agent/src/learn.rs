//! Learn mode: events in, one profile per image digest out once its learning
//! period has passed.
//!
//! [`LearnSession`] is the logic, fed events and the time; [`StateLog`] makes it
//! survive restarts by appending every accepted event to `state-dir/events.jsonl`
//! and replaying that file at start: a restarted agent continues where it
//! stopped, with the same containers known from their start. The log records
//! what containers ran (arguments, paths): it is 0600 in a 0700 directory, and
//! a symbolic link planted in its place is neither read nor appended through.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use imprint_engine::{Event, Learner, LearnerConfig};
use imprint_schema::{Completeness, Digest, Profile};
use jiff::{SignedDuration, Timestamp};

/// One image being learned.
#[derive(Debug, Clone)]
struct Progress {
    first_seen: Timestamp,
    done: bool,
}

/// The learning of every image seen.
pub struct LearnSession {
    learner: Learner,
    period: SignedDuration,
    images: HashMap<Digest, Progress>,
}

impl LearnSession {
    /// A session learning each image for `period`.
    pub fn new(period: SignedDuration) -> LearnSession {
        LearnSession {
            learner: Learner::new(LearnerConfig::default()),
            period,
            images: HashMap::new(),
        }
    }

    /// Takes one event; events of images already finished are ignored. Returns
    /// whether it was used.
    pub fn observe(&mut self, event: &Event) -> bool {
        let Some(digest) = &event.image_digest else {
            return false;
        };
        let progress = self.images.entry(digest.clone()).or_insert(Progress {
            first_seen: event.time,
            done: false,
        });
        if progress.done {
            return false;
        }
        if event.time < progress.first_seen {
            progress.first_seen = event.time;
        }
        self.learner.observe(event);
        true
    }

    /// Images still learning.
    pub fn learning(&self) -> usize {
        self.images.values().filter(|p| !p.done).count()
    }

    /// Images whose learning period has passed (their profiles written).
    pub fn learned(&self) -> usize {
        self.images.values().filter(|p| p.done).count()
    }

    /// The profile of `digest` as learned so far, its window ending `now`.
    fn profile_at(&self, digest: &Digest, now: Timestamp) -> Option<Profile> {
        let progress = self.images.get(digest)?;
        let mut profile = self
            .learner
            .profiles()
            .into_iter()
            .find(|p| &p.image.digest == digest)?;
        // The sensor deduplicates, so events stop once behaviour is known; the
        // window is the time watched, not the span of events.
        profile.learning.start = Some(progress.first_seen);
        profile.learning.end = Some(now);
        let watched = now.duration_since(progress.first_seen);
        if watched < self.period {
            profile.learning.completeness = Completeness::Partial;
        }
        Some(profile)
    }

    /// The profiles whose learning period has passed by `now`; each is returned
    /// once.
    pub fn finish_due(&mut self, now: Timestamp) -> Vec<Profile> {
        let due: Vec<Digest> = self
            .images
            .iter()
            .filter(|(_, p)| !p.done && now.duration_since(p.first_seen) >= self.period)
            .map(|(d, _)| d.clone())
            .collect();
        let mut out = Vec::new();
        for digest in due {
            let end = self.images[&digest].first_seen + self.period;
            if let Some(profile) = self.profile_at(&digest, end) {
                out.push(profile);
            }
            if let Some(p) = self.images.get_mut(&digest) {
                p.done = true;
            }
        }
        out
    }

    /// Profiles of the images still learning, as far as they got (`partial`).
    pub fn snapshot(&self, now: Timestamp) -> Vec<Profile> {
        self.images
            .iter()
            .filter(|(_, p)| !p.done)
            .filter_map(|(d, _)| self.profile_at(d, now))
            .collect()
    }
}

/// The append-only event log under `--state-dir`.
pub struct StateLog {
    path: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
}

impl StateLog {
    /// Opens (creating) `dir/events.jsonl`, replaying what it holds into `sink`.
    /// A torn last line (a crash mid-write) is skipped; so is any line that does
    /// not parse, counted in the result. `dir` is made private (0700), the log
    /// 0600; a link at either is an error.
    pub fn open(dir: &Path, mut sink: impl FnMut(Event)) -> std::io::Result<(StateLog, u64, u64)> {
        imprint_fs::create_private_dir(dir)?;
        let path = dir.join("events.jsonl");
        let (mut replayed, mut skipped) = (0, 0);
        // A link or a FIFO there is not replayed; appending below refuses it.
        if let Ok(file) = imprint_fs::open_no_follow(&path) {
            for line in std::io::BufReader::new(file).lines() {
                let Ok(line) = line else {
                    skipped += 1;
                    continue;
                };
                if line.trim().is_empty() {
                    continue;
                }
                match imprint_engine::event::parse_line(line.as_bytes(), replayed + skipped + 1) {
                    Ok(event) => {
                        replayed += 1;
                        sink(event);
                    }
                    Err(_) => skipped += 1,
                }
            }
        }
        let file = imprint_fs::open_append(&path, imprint_fs::PRIVATE)?;
        // A torn last line would glue onto the next one: start on a new line.
        let mut log = StateLog {
            path,
            file: std::io::BufWriter::new(file),
        };
        if skipped > 0 {
            log.file.write_all(b"\n")?;
        }
        Ok((log, replayed, skipped))
    }

    /// Appends an event (buffered; see [`StateLog::flush`]).
    pub fn append(&mut self, event: &Event) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.file, event)?;
        self.file.write_all(b"\n")
    }

    /// Writes what is buffered and syncs it to disk.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()?;
        self.file.get_ref().sync_data()
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests;
