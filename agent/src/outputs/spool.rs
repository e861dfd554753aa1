//! One output's on-disk spool: batches of alerts waiting for the receiver, in
//! order, bounded in files and in bytes.
//!
//! Each batch holds alerts of one severity, named
//! `<sequence>-<severity>-<alerts>.json` (a file of an older agent,
//! `<sequence>.json`, is read as critical: what it holds is not known, so it is
//! kept longest). When a batch does not fit, spooled batches of lower severity
//! go, the least severe and oldest first, and only if that makes room; else the
//! new batch goes. Between equals the older stays: an attacker's flood after
//! the fact cannot push out its first alerts. Every loss is counted, in alerts
//! and bytes by severity, for the metrics and for the alert that reports it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use imprint_engine::Severity;

/// Most batches kept per output while its receiver is down.
pub const MAX_SPOOLED: usize = 10_000;

/// Most bytes kept per output by default: 64 MiB holds some 100,000 alerts,
/// hours of a noisy node, and is little on a node's disk.
pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;

/// Most bytes in one batch (one request, one spool file): receivers commonly
/// accept a few MiB in a request; 1 MiB is some 1,500 alerts.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 1 << 20;

/// The least a batch may be allowed, so a truncated alert always fits.
pub const MIN_BATCH_BYTES: usize = 4 << 10;

/// How much one output's spool keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolLimits {
    /// Most bytes, all batches together.
    pub max_bytes: u64,
    /// Most bytes in one batch.
    pub max_batch_bytes: usize,
    /// Most batches.
    pub max_batches: usize,
}

impl Default for SpoolLimits {
    fn default() -> SpoolLimits {
        SpoolLimits::with_max_bytes(DEFAULT_MAX_BYTES)
    }
}

impl SpoolLimits {
    /// The default limits with this many bytes in all (a batch is never more
    /// than the whole, nor less than [`MIN_BATCH_BYTES`]).
    pub fn with_max_bytes(max_bytes: u64) -> SpoolLimits {
        let max_bytes = max_bytes.max(MIN_BATCH_BYTES as u64);
        SpoolLimits {
            max_bytes,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES.min(max_bytes as usize),
            max_batches: MAX_SPOOLED,
        }
    }
}

/// Alerts and bytes lost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Loss {
    /// Alerts.
    pub alerts: u64,
    /// Bytes, as they were spooled or would have been.
    pub bytes: u64,
}

/// What was lost, by severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Losses([Loss; 4]);

/// The severities, least first.
pub const SEVERITIES: [Severity; 4] = [
    Severity::Low,
    Severity::Medium,
    Severity::High,
    Severity::Critical,
];

impl Losses {
    /// Counts a loss.
    pub fn add(&mut self, severity: Severity, alerts: u64, bytes: u64) {
        let loss = &mut self.0[severity as usize];
        loss.alerts += alerts;
        loss.bytes += bytes;
    }

    /// What was lost of one severity.
    pub fn of(&self, severity: Severity) -> Loss {
        self.0[severity as usize]
    }

    /// What was lost, all severities together.
    pub fn total(&self) -> Loss {
        self.0.iter().fold(Loss::default(), |sum, l| Loss {
            alerts: sum.alerts + l.alerts,
            bytes: sum.bytes + l.bytes,
        })
    }

    /// Nothing was lost.
    pub fn is_empty(&self) -> bool {
        self.total() == Loss::default()
    }
}

/// The lower-case name of a severity, as alerts spell it.
pub fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Low => "low",
        Severity::Medium => "medium",
        Severity::High => "high",
        Severity::Critical => "critical",
    }
}

/// A spooled batch.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    severity: Severity,
    alerts: u64,
    bytes: u64,
    /// Its file (an older agent's has another name).
    path: PathBuf,
}

/// What the spool holds, behind one lock (the agent pushes, the sender takes).
#[derive(Default)]
struct State {
    entries: BTreeMap<u64, Entry>,
    bytes: u64,
    next: u64,
    /// The batch the sender is delivering: never evicted.
    in_flight: Option<u64>,
    lost: Losses,
    unreported: Losses,
    /// A loss was logged since the last report.
    warned: bool,
}

/// What became of a batch pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Spooled, after this many batches of lower severity were dropped for it.
    Spooled {
        /// Batches dropped to make room.
        evicted: usize,
    },
    /// Dropped: the spool is full of batches at least as severe.
    Dropped,
}

/// A batch taken for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Its place in the spool's order.
    pub sequence: u64,
    /// What is sent.
    pub body: Vec<u8>,
}

/// A spool directory of batches, in order.
pub struct Spool {
    dir: PathBuf,
    limits: SpoolLimits,
    state: Mutex<State>,
}

impl Spool {
    /// Opens (creating) a spool; numbering continues after what is there.
    pub fn open(dir: &Path, limits: SpoolLimits) -> std::io::Result<Spool> {
        imprint_fs::create_private_dir(dir)?;
        let entries = scan(dir);
        let state = State {
            bytes: entries.values().map(|e| e.bytes).sum(),
            next: entries.keys().next_back().map_or(0, |n| n + 1),
            entries,
            ..State::default()
        };
        Ok(Spool {
            dir: dir.to_path_buf(),
            limits,
            state: Mutex::new(state),
        })
    }

    /// What the spool keeps.
    pub fn limits(&self) -> SpoolLimits {
        self.limits
    }

    /// Adds a batch of `alerts` alerts of one severity (atomically: a temporary
    /// file renamed), making room as the module says. A write that fails is a
    /// loss too, and is returned.
    pub fn push(&self, body: &[u8], severity: Severity, alerts: u64) -> std::io::Result<Pushed> {
        let size = body.len() as u64;
        let mut state = lock(&self.state);
        let Some(victims) = self.room_for(&state, size, severity) else {
            state.lose(severity, alerts, size);
            return Ok(Pushed::Dropped);
        };
        for sequence in &victims {
            if let Some(entry) = state.entries.remove(sequence) {
                let _ = std::fs::remove_file(&entry.path);
                state.bytes -= entry.bytes;
                state.lose(entry.severity, entry.alerts, entry.bytes);
            }
        }
        let sequence = state.next;
        let name = format!("{sequence:020}-{}-{alerts}.json", severity_name(severity));
        let entry = Entry {
            severity,
            alerts,
            bytes: size,
            path: self.dir.join(name),
        };
        // Alerts name containers, pods and paths: for the agent's eyes only.
        if let Err(e) = imprint_fs::write_atomic(&entry.path, body, imprint_fs::PRIVATE) {
            state.lose(severity, alerts, size);
            return Err(e);
        }
        state.next += 1;
        state.bytes += size;
        state.entries.insert(sequence, entry);
        Ok(Pushed::Spooled {
            evicted: victims.len(),
        })
    }

    /// The batches to drop for `size` bytes of `severity` to fit, least severe
    /// and oldest first; `None` when even dropping all lower ones is not enough.
    fn room_for(&self, state: &State, size: u64, severity: Severity) -> Option<Vec<u64>> {
        let limits = self.limits;
        let (mut bytes, mut batches) = (state.bytes, state.entries.len());
        let fits = |bytes: u64, batches: usize| {
            bytes + size <= limits.max_bytes && batches < limits.max_batches
        };
        let mut victims = Vec::new();
        for lower in SEVERITIES.into_iter().filter(|s| *s < severity) {
            for (sequence, entry) in &state.entries {
                if fits(bytes, batches) {
                    return Some(victims);
                }
                if entry.severity == lower && state.in_flight != Some(*sequence) {
                    victims.push(*sequence);
                    bytes -= entry.bytes;
                    batches -= 1;
                }
            }
        }
        fits(bytes, batches).then_some(victims)
    }

    /// Counts alerts lost before they reached the spool (too big to send).
    pub fn count_loss(&self, severity: Severity, alerts: u64, bytes: u64) {
        lock(&self.state).lose(severity, alerts, bytes);
    }

    /// Batches waiting.
    pub fn depth(&self) -> usize {
        lock(&self.state).entries.len()
    }

    /// Bytes waiting.
    pub fn bytes(&self) -> u64 {
        lock(&self.state).bytes
    }

    /// The oldest batch, held back from eviction until [`Spool::remove`].
    pub fn oldest(&self) -> Option<Batch> {
        let mut state = lock(&self.state);
        loop {
            let (&sequence, entry) = state.entries.iter().next()?;
            match imprint_fs::read_no_follow(&entry.path) {
                Ok(body) => {
                    state.in_flight = Some(sequence);
                    return Some(Batch { sequence, body });
                }
                // Removed behind the agent's back: nothing to send.
                Err(_) => {
                    let bytes = entry.bytes;
                    state.entries.remove(&sequence);
                    state.bytes -= bytes;
                }
            }
        }
    }

    /// Deletes a batch the receiver took (or refused for good).
    pub fn remove(&self, sequence: u64) {
        let mut state = lock(&self.state);
        if state.in_flight == Some(sequence) {
            state.in_flight = None;
        }
        if let Some(entry) = state.entries.remove(&sequence) {
            let _ = std::fs::remove_file(&entry.path);
            state.bytes -= entry.bytes;
        }
    }

    /// Everything lost since the spool was opened.
    pub fn lost(&self) -> Losses {
        lock(&self.state).lost
    }

    /// What was lost since the last call, if anything: for the alert saying so.
    pub fn take_unreported(&self) -> Option<Losses> {
        let mut state = lock(&self.state);
        let unreported = std::mem::take(&mut state.unreported);
        if unreported.is_empty() {
            return None;
        }
        state.warned = false;
        Some(unreported)
    }

    /// True the first time it is asked after a report (or the start): so a
    /// loss is logged once per outage, not once per batch.
    pub fn warn_once(&self) -> bool {
        !std::mem::replace(&mut lock(&self.state).warned, true)
    }
}

impl State {
    fn lose(&mut self, severity: Severity, alerts: u64, bytes: u64) {
        self.lost.add(severity, alerts, bytes);
        self.unreported.add(severity, alerts, bytes);
    }
}

/// The batches in `dir`, by sequence.
fn scan(dir: &Path) -> BTreeMap<u64, Entry> {
    let files = std::fs::read_dir(dir).into_iter().flatten().flatten();
    files
        .filter_map(|file| {
            let name = file.file_name().to_string_lossy().to_string();
            let bytes = file.metadata().ok()?.len();
            let (sequence, severity, alerts) = match parse_name(&name)? {
                (sequence, Some((severity, alerts))) => (sequence, severity, alerts),
                // An older agent's batch: its alerts are counted, its severity unknown.
                (sequence, None) => {
                    let body = imprint_fs::read_no_follow(&file.path()).ok()?;
                    let alerts = serde_json::from_slice::<Vec<serde::de::IgnoredAny>>(&body)
                        .map_or(1, |v| v.len() as u64);
                    (sequence, Severity::Critical, alerts)
                }
            };
            let entry = Entry {
                severity,
                alerts,
                bytes,
                path: file.path(),
            };
            Some((sequence, entry))
        })
        .collect()
}

/// `<sequence>-<severity>-<alerts>.json`, or an older agent's `<sequence>.json`.
fn parse_name(name: &str) -> Option<(u64, Option<(Severity, u64)>)> {
    let stem = name.strip_suffix(".json")?;
    let mut parts = stem.split('-');
    let sequence = parts.next()?.parse::<u64>().ok()?;
    let Some(severity) = parts.next() else {
        return Some((sequence, None));
    };
    let severity = SEVERITIES
        .into_iter()
        .find(|s| severity_name(*s) == severity)?;
    let alerts = parts.next()?.parse::<u64>().ok()?;
    parts
        .next()
        .is_none()
        .then_some((sequence, Some((severity, alerts))))
}

/// Packs JSON items into JSON arrays of at most `max_bytes` each, one severity
/// per array, the most severe first, order kept within a severity. Each item
/// must fit alone (`len + 2 <= max_bytes`). Returns (severity, body, alerts).
pub fn pack(items: Vec<(Severity, Vec<u8>)>, max_bytes: usize) -> Vec<(Severity, Vec<u8>, u64)> {
    let mut out = Vec::new();
    for severity in SEVERITIES.into_iter().rev() {
        let mut body = Vec::new();
        let mut alerts = 0;
        for (_, item) in items.iter().filter(|(s, _)| *s == severity) {
            // The item, its comma and the closing bracket must still fit.
            if alerts > 0 && body.len() + 1 + item.len() + 1 > max_bytes {
                body.push(b']');
                out.push((severity, std::mem::take(&mut body), alerts));
                alerts = 0;
            }
            body.push(if alerts == 0 { b'[' } else { b',' });
            body.extend_from_slice(item);
            alerts += 1;
        }
        if alerts > 0 {
            body.push(b']');
            out.push((severity, body, alerts));
        }
    }
    out
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use Severity::{Critical, High, Low, Medium};

    /// A JSON array of one string, `size` bytes in all.
    fn body(size: usize) -> Vec<u8> {
        format!("[\"{}\"]", "x".repeat(size - 4)).into_bytes()
    }

    /// A spool of `max_bytes` and `max_batches`.
    fn small(dir: &Path, max_bytes: u64, max_batches: usize) -> Spool {
        let limits = SpoolLimits {
            max_bytes,
            max_batch_bytes: 4096,
            max_batches,
        };
        Spool::open(dir, limits).unwrap()
    }

    /// The severities waiting, oldest first.
    fn waiting(spool: &Spool) -> Vec<(u64, Severity)> {
        let state = lock(&spool.state);
        state
            .entries
            .iter()
            .map(|(n, e)| (*n, e.severity))
            .collect()
    }

    #[test]
    fn a_full_spool_drops_the_least_severe_oldest_first_and_counts_it() {
        let dir = tempfile::tempdir().unwrap();
        let spool = small(dir.path(), 1000, MAX_SPOOLED);
        for severity in [
            Low, Medium, Low, High, Medium, Low, High, Critical, Medium, High,
        ] {
            let pushed = spool.push(&body(100), severity, 2).unwrap();
            assert_eq!(pushed, Pushed::Spooled { evicted: 0 });
        }
        assert_eq!((spool.depth(), spool.bytes()), (10, 1000));
        // Full: each new batch takes the place of the least severe, oldest first.
        let spooled = Pushed::Spooled { evicted: 1 };
        assert_eq!(spool.push(&body(100), Critical, 2).unwrap(), spooled);
        assert_eq!(spool.push(&body(100), High, 2).unwrap(), spooled);
        assert_eq!(spool.push(&body(100), Medium, 2).unwrap(), spooled);
        // No low batch is left: a medium one does not push out its equals…
        assert_eq!(spool.push(&body(100), Medium, 2).unwrap(), Pushed::Dropped);
        assert_eq!(spool.push(&body(100), Low, 3).unwrap(), Pushed::Dropped);
        // …and a critical one takes the oldest medium.
        assert_eq!(spool.push(&body(100), Critical, 2).unwrap(), spooled);
        assert_eq!(
            waiting(&spool),
            vec![
                (3, High),
                (4, Medium),
                (6, High),
                (7, Critical),
                (8, Medium),
                (9, High),
                (10, Critical),
                (11, High),
                (12, Medium),
                (13, Critical),
            ]
        );
        assert_eq!((spool.depth(), spool.bytes()), (10, 1000));
        let lost = spool.lost();
        assert_eq!(
            lost.of(Low),
            Loss {
                alerts: 9,
                bytes: 400
            }
        );
        assert_eq!(
            lost.of(Medium),
            Loss {
                alerts: 4,
                bytes: 200
            }
        );
        assert_eq!(lost.of(High), Loss::default());
        assert_eq!(lost.of(Critical), Loss::default());
        assert_eq!(
            lost.total(),
            Loss {
                alerts: 13,
                bytes: 600
            }
        );
        // The files are the index: what was dropped is gone from the disk.
        let on_disk = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(on_disk, 10);
        // Reported once; logged once until then.
        assert!(spool.warn_once() && !spool.warn_once());
        assert_eq!(spool.take_unreported(), Some(lost));
        assert_eq!(spool.take_unreported(), None);
        assert!(spool.warn_once());
        assert_eq!(spool.lost(), lost, "the total stays for the metrics");
    }

    #[test]
    fn a_batch_that_cannot_fit_drops_nothing_else_and_counts_bound_too() {
        let dir = tempfile::tempdir().unwrap();
        let spool = small(dir.path(), 1000, 3);
        spool.push(&body(100), Low, 1).unwrap();
        spool.push(&body(100), High, 1).unwrap();
        // More than the low batch makes room for: nothing is evicted in vain.
        assert_eq!(spool.push(&body(950), High, 5).unwrap(), Pushed::Dropped);
        assert_eq!(spool.depth(), 2);
        assert_eq!(
            spool.lost().of(High),
            Loss {
                alerts: 5,
                bytes: 950
            }
        );
        // The number of batches is bounded as well as their bytes.
        spool.push(&body(100), Medium, 1).unwrap();
        let evicted = spool.push(&body(100), Medium, 1).unwrap();
        assert_eq!(evicted, Pushed::Spooled { evicted: 1 });
        assert_eq!(waiting(&spool), vec![(1, High), (2, Medium), (3, Medium)]);
    }

    #[test]
    fn the_batch_being_delivered_is_not_evicted() {
        let dir = tempfile::tempdir().unwrap();
        let spool = small(dir.path(), 200, MAX_SPOOLED);
        spool.push(&body(100), Low, 1).unwrap();
        spool.push(&body(100), Low, 1).unwrap();
        let batch = spool.oldest().unwrap();
        assert_eq!((batch.sequence, batch.body), (0, body(100)));
        spool.push(&body(100), High, 1).unwrap();
        assert_eq!(waiting(&spool), vec![(0, Low), (2, High)]);
        spool.remove(0);
        assert_eq!(waiting(&spool), vec![(2, High)]);
        assert_eq!(spool.bytes(), 100);
        assert_eq!(spool.lost().of(Low).alerts, 1, "delivered is not lost");
    }

    #[test]
    fn a_planted_link_is_never_sent_and_the_directory_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("webhook");
        std::fs::create_dir(&dir).unwrap();
        let secret = root.path().join("secret");
        std::fs::write(&secret, b"[\"not an alert\"]").unwrap();
        // Someone who can write the spool links a batch name to another file.
        std::os::unix::fs::symlink(&secret, dir.join("00000000000000000000-critical-1.json"))
            .unwrap();
        std::os::unix::fs::symlink(&secret, dir.join("00000000000000000001.json")).unwrap();
        let spool = small(&dir, 1000, MAX_SPOOLED);
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        spool.push(b"[1]", Low, 1).unwrap();
        let mut sent = Vec::new();
        while let Some(batch) = spool.oldest() {
            sent.push(String::from_utf8(batch.body).unwrap());
            spool.remove(batch.sequence);
        }
        assert_eq!(sent, vec!["[1]"]);
    }

    #[test]
    fn the_spool_keeps_order_survives_reopening_and_reads_old_file_names() {
        let dir = tempfile::tempdir().unwrap();
        // An older agent's batches: `<sequence>.json`, severity unknown.
        std::fs::write(dir.path().join("00000000000000000000.json"), b"[1,2,3]").unwrap();
        std::fs::write(dir.path().join("00000000000000000001.json"), b"[4]").unwrap();
        std::fs::write(dir.path().join(".00000000000000000002.json.x.tmp"), b"[").unwrap();
        let spool = small(dir.path(), 1000, MAX_SPOOLED);
        assert_eq!(waiting(&spool), vec![(0, Critical), (1, Critical)]);
        assert_eq!(lock(&spool.state).entries[&0].alerts, 3);
        spool.push(b"[5]", Low, 1).unwrap();
        spool.push(b"[6,7]", High, 2).unwrap();
        drop(spool);
        let reopened = small(dir.path(), 1000, MAX_SPOOLED);
        let names: Vec<String> = (std::fs::read_dir(dir.path()).unwrap())
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("-"))
            .collect();
        assert!(
            names.contains(&"00000000000000000003-high-2.json".into()),
            "{names:?}"
        );
        assert_eq!(reopened.bytes(), 7 + 3 + 3 + 5);
        assert_eq!(
            waiting(&reopened),
            vec![(0, Critical), (1, Critical), (2, Low), (3, High)]
        );
        reopened.push(b"[8]", Medium, 1).unwrap();
        let mut seen = Vec::new();
        while let Some(batch) = reopened.oldest() {
            seen.push(String::from_utf8(batch.body).unwrap());
            reopened.remove(batch.sequence);
        }
        assert_eq!(seen, vec!["[1,2,3]", "[4]", "[5]", "[6,7]", "[8]"]);
        assert_eq!((reopened.depth(), reopened.bytes()), (0, 0));
    }

    #[test]
    fn batches_are_split_by_bytes_and_by_severity_most_severe_first() {
        let item = |n: u8| format!("\"{}\"", (b'a' + n) as char).into_bytes();
        let items: Vec<(Severity, Vec<u8>)> = (0..10)
            .map(|n| (if n % 3 == 0 { Critical } else { Low }, item(n)))
            .collect();
        // Each item is 3 bytes: `["a","b","c"]` is 13, the most 15 allows.
        let batches = pack(items, 15);
        let text: Vec<(Severity, String, u64)> = (batches.into_iter())
            .map(|(s, b, n)| (s, String::from_utf8(b).unwrap(), n))
            .collect();
        assert_eq!(
            text,
            vec![
                (Critical, r#"["a","d","g"]"#.into(), 3),
                (Critical, r#"["j"]"#.into(), 1),
                (Low, r#"["b","c","e"]"#.into(), 3),
                (Low, r#"["f","h","i"]"#.into(), 3),
            ]
        );
        for (_, body, _) in &text {
            let v: Vec<String> = serde_json::from_str(body).unwrap();
            assert!(!v.is_empty() && body.len() <= 15);
        }
        assert!(pack(Vec::new(), 15).is_empty());
    }

    #[test]
    fn limits_keep_a_batch_within_the_whole_and_above_the_least() {
        let tiny = SpoolLimits::with_max_bytes(10);
        assert_eq!(tiny.max_bytes, MIN_BATCH_BYTES as u64);
        assert_eq!(tiny.max_batch_bytes, MIN_BATCH_BYTES);
        let default = SpoolLimits::default();
        assert_eq!(default.max_bytes, DEFAULT_MAX_BYTES);
        assert_eq!(default.max_batch_bytes, DEFAULT_MAX_BATCH_BYTES);
    }
}
