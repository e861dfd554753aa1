//! Incidents: related alerts grouped, with the process tree and a timeline; and
//! cooldown, so a noisy alert is sent once per window with a count.
//!
//! Related means: the same container, within `window` of the incident's last
//! alert, and processes of one lineage (one is an ancestor of the other, as the
//! exec and fork events seen so far tell).
//!
//! Memory is bounded wherever an attacker feeds it (the `MAX_` constants): per
//! incident the timeline, the kinds remembered and the process tree; per
//! container and in all the incidents open. What does not fit is counted, or
//! closed early and returned, never hidden: a new kind of alert is always sent,
//! even when the incident cannot remember it.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, RandomState};

use imprint_schema::Digest;
use jiff::{SignedDuration, Timestamp};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use crate::alert::{Alert, Severity};
use crate::event::{Event, EventKind};

/// A process in an incident's tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessNode {
    /// Its pid.
    pub pid: u32,
    /// Its parent, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<u32>,
    /// What it executed last, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// An alert in an incident, with how many times it repeated.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Occurrence {
    /// The first alert of its kind.
    pub alert: Alert,
    /// How many times it fired in the incident.
    pub count: u64,
    /// The last time.
    pub last: Timestamp,
}

/// Related alerts of one container.
///
/// Everything in it is bounded, since an attacker chooses what it alerts on: at
/// most 256 kinds of alert get a timeline entry (`MAX_TIMELINE`) and 256
/// processes a place in the tree (`MAX_INCIDENT_PROCESSES`). What does not fit
/// is counted in `folded_alerts` and `folded_processes`, and still raises the
/// severity and moves the end.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Incident {
    /// A stable id: `<container prefix>-<first alert time>`.
    pub id: String,
    /// The container.
    pub container_id: String,
    /// Its image, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<Digest>,
    /// The worst severity in it.
    pub severity: Severity,
    /// First and last alert.
    pub start: Timestamp,
    /// Last alert.
    pub end: Timestamp,
    /// Alerts by (rule, subject), in order of first occurrence: the timeline.
    pub timeline: Vec<Occurrence>,
    /// The processes involved and their ancestors.
    pub processes: Vec<ProcessNode>,
    /// Alerts without a timeline entry of their own, because the timeline was
    /// full when their kind first came (their repeats included).
    #[serde(skip_serializing_if = "is_zero")]
    pub folded_alerts: u64,
    /// Processes left out of the tree because it was full, counted once per
    /// alert that brought them.
    #[serde(skip_serializing_if = "is_zero")]
    pub folded_processes: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What became of an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It opened a new incident: send it.
    Opened(String),
    /// It joined an open incident as a new kind of alert: send it.
    Joined(String),
    /// It repeated an alert of the incident within the cooldown: counted, not sent.
    Suppressed(String),
}

/// Most kinds of alert, (rule, subject), with a timeline entry in one incident.
pub(crate) const MAX_TIMELINE: usize = 256;

/// Most kinds of alert one incident remembers, to hold back their repeats: the
/// timeline's, and more without an entry. A kind past this is not remembered, so
/// each of its alerts is sent: a full memory never hides an alert.
pub(crate) const MAX_SEEN: usize = 4 * MAX_TIMELINE;

/// Most processes in one incident's tree, and most alerting processes it
/// relates new alerts to (their descendants are still related through them).
pub(crate) const MAX_INCIDENT_PROCESSES: usize = 256;

/// Most incidents open at once in one container. One more closes the one quiet
/// longest, early: [`Correlator::expire`] returns it next.
pub(crate) const MAX_OPEN_PER_CONTAINER: usize = 16;

/// Most incidents open at once in all containers together, closed early the
/// same way when exceeded. With alerts of at most about 2 KiB (the sensor's
/// paths are at most 512 bytes), all of them full stay under some 150 MiB; one
/// container's under 10 MiB.
pub(crate) const MAX_OPEN: usize = 256;

/// A kind of alert, (rule, subject), as an incident remembers it: a keyed
/// hash, so a kind costs the same few bytes whatever its subject's length, and
/// a workload that does not know the key cannot make two kinds collide (which
/// would hold back a new kind as a repeat).
type Kind = u64;

struct Open {
    incident: Incident,
    /// The processes that alerted.
    pids: FxHashSet<u32>,
    /// The processes in the incident's tree: those that alerted and their
    /// ancestors, so an alert of one of them is related.
    in_tree: FxHashSet<u32>,
    /// Kind → index in the timeline (none when it was full), and when it was
    /// last sent.
    seen: FxHashMap<Kind, (Option<usize>, Timestamp)>,
}

impl Open {
    /// Whether an alert of the process whose lineage (itself, then its
    /// ancestors) is `lineage` is related: an ancestor of it alerted, or it is
    /// an ancestor of one that did.
    fn related(&self, lineage: &[u32]) -> bool {
        self.in_tree.contains(&lineage[0]) || lineage.iter().any(|p| self.pids.contains(p))
    }

    /// Adds an alert of a related process; says whether to send it.
    fn join(
        &mut self,
        alert: Alert,
        kind: Kind,
        nodes: Vec<ProcessNode>,
        cooldown: SignedDuration,
    ) -> Outcome {
        let incident = &mut self.incident;
        let id = incident.id.clone();
        incident.end = incident.end.max(alert.time);
        incident.severity = incident.severity.max(alert.severity);
        if self.pids.len() < MAX_INCIDENT_PROCESSES {
            self.pids.insert(alert.pid);
        }
        for n in nodes {
            if self.in_tree.contains(&n.pid) {
                continue;
            }
            if incident.processes.len() < MAX_INCIDENT_PROCESSES {
                self.in_tree.insert(n.pid);
                incident.processes.push(n);
            } else {
                incident.folded_processes += 1;
            }
        }
        if let Some((index, last_sent)) = self.seen.get_mut(&kind) {
            match index {
                Some(i) => {
                    let occurrence = &mut incident.timeline[*i];
                    occurrence.count += 1;
                    occurrence.last = alert.time;
                }
                None => incident.folded_alerts += 1,
            }
            if alert.time.duration_since(*last_sent) < cooldown {
                return Outcome::Suppressed(id);
            }
            *last_sent = alert.time;
            return Outcome::Joined(id);
        }
        // A new kind is always sent; only what is remembered of it is bounded.
        let time = alert.time;
        let index = if incident.timeline.len() < MAX_TIMELINE {
            incident.timeline.push(Occurrence {
                last: time,
                alert,
                count: 1,
            });
            Some(incident.timeline.len() - 1)
        } else {
            incident.folded_alerts += 1;
            None
        };
        if self.seen.len() < MAX_SEEN {
            self.seen.insert(kind, (index, time));
        }
        Outcome::Joined(id)
    }
}

/// Groups alerts into incidents.
pub struct Correlator {
    window: SignedDuration,
    cooldown: SignedDuration,
    parents: FxHashMap<u32, u32>,
    paths: FxHashMap<u32, String>,
    open: BTreeMap<String, Vec<Open>>,
    /// How many incidents `open` holds.
    open_count: usize,
    /// Incidents closed early to make room, until [`Correlator::expire`]: at
    /// most one per incident opened since (the agent expires every second).
    closed: Vec<Incident>,
    /// The key of the kinds' hash, this correlator's own.
    kinds: RandomState,
}

/// Bound on remembered processes (pid reuse makes old entries wrong anyway).
const MAX_PROCESSES: usize = 1 << 16;

impl Correlator {
    /// Incidents close `window` after their last alert; a repeated alert is sent
    /// again at most once per `cooldown`.
    pub fn new(window: SignedDuration, cooldown: SignedDuration) -> Correlator {
        Correlator {
            window,
            cooldown,
            parents: FxHashMap::default(),
            paths: FxHashMap::default(),
            open: BTreeMap::new(),
            open_count: 0,
            closed: Vec::new(),
            kinds: RandomState::new(),
        }
    }

    /// Follows process lineage from the event stream.
    pub fn observe(&mut self, event: &Event) {
        if self.parents.len() > MAX_PROCESSES {
            self.parents.clear();
            self.paths.clear();
        }
        match &event.kind {
            EventKind::Fork { child_pid } => {
                self.parents.insert(*child_pid, event.pid);
            }
            EventKind::Exec { path, parent, .. } => {
                if let Some(p) = parent {
                    self.parents.entry(event.pid).or_insert(p.pid);
                }
                self.paths.insert(event.pid, path.clone());
            }
            _ => {}
        }
    }

    fn ancestors(&self, pid: u32) -> Vec<u32> {
        let mut out = vec![pid];
        let mut at = pid;
        while let Some(&p) = self.parents.get(&at) {
            if p == 0 || out.contains(&p) || out.len() > 64 {
                break;
            }
            out.push(p);
            at = p;
        }
        out
    }

    fn nodes(&self, pids: &[u32]) -> Vec<ProcessNode> {
        pids.iter()
            .map(|p| ProcessNode {
                pid: *p,
                parent: self.parents.get(p).copied(),
                path: self.paths.get(p).cloned(),
            })
            .collect()
    }

    /// Adds an alert; says whether to send it.
    pub fn push(&mut self, alert: Alert) -> Outcome {
        let lineage = self.ancestors(alert.pid);
        let kind = self.kinds.hash_one((&alert.rule, &alert.subject));
        let (window, cooldown) = (self.window, self.cooldown);
        let nodes = self.nodes(&lineage);
        if let Some(open) = (self.open.get_mut(&alert.container_id)).and_then(|list| {
            list.iter_mut().find(|o| {
                alert.time.duration_since(o.incident.end) <= window && o.related(&lineage)
            })
        }) {
            return open.join(alert, kind, nodes, cooldown);
        }
        self.make_room(&alert.container_id, alert.time);
        let id = format!(
            "{}-{}",
            alert.container_id.chars().take(12).collect::<String>(),
            alert.time.as_millisecond()
        );
        let incident = Incident {
            id: id.clone(),
            container_id: alert.container_id.clone(),
            image_digest: alert.image_digest.clone(),
            severity: alert.severity,
            start: alert.time,
            end: alert.time,
            processes: nodes,
            timeline: Vec::new(),
            folded_alerts: 0,
            folded_processes: 0,
        };
        let mut open = Open {
            pids: FxHashSet::from_iter([alert.pid]),
            in_tree: incident.processes.iter().map(|p| p.pid).collect(),
            incident,
            seen: FxHashMap::default(),
        };
        open.seen.insert(kind, (Some(0), alert.time));
        let container = alert.container_id.clone();
        open.incident.timeline.push(Occurrence {
            last: alert.time,
            alert,
            count: 1,
        });
        self.open.entry(container).or_default().push(open);
        self.open_count += 1;
        Outcome::Opened(id)
    }

    /// Before an incident opens in `container` at `now`: closes what must close
    /// for it to fit under `MAX_OPEN_PER_CONTAINER` and `MAX_OPEN`, the
    /// incident quiet longest; all that is past its window, if that one is.
    fn make_room(&mut self, container: &str, now: Timestamp) {
        if let Some(list) = self.open.get_mut(container)
            && list.len() >= MAX_OPEN_PER_CONTAINER
            && let Some(i) = quietest(list)
        {
            self.closed.push(list.remove(i).incident);
            self.open_count -= 1;
        }
        if self.open_count < MAX_OPEN {
            return;
        }
        let Some((end, c, i)) = (self.open.iter())
            .flat_map(|(c, l)| {
                l.iter()
                    .enumerate()
                    .map(move |(i, o)| (o.incident.end, c, i))
            })
            .min_by_key(|(end, _, _)| *end)
            .map(|(end, c, i)| (end, c.clone(), i))
        else {
            return;
        };
        if now.duration_since(end) > self.window {
            let expired = self.expire_open(now);
            self.closed.extend(expired);
        } else if let Some(list) = self.open.get_mut(&c) {
            self.closed.push(list.remove(i).incident);
            self.open_count -= 1;
            if list.is_empty() {
                self.open.remove(&c);
            }
        }
    }

    /// Takes the open incidents whose window has passed by `now`.
    fn expire_open(&mut self, now: Timestamp) -> Vec<Incident> {
        let window = self.window;
        let mut closed = Vec::new();
        for list in self.open.values_mut() {
            let (done, keep): (Vec<Open>, Vec<Open>) = std::mem::take(list)
                .into_iter()
                .partition(|o| now.duration_since(o.incident.end) > window);
            *list = keep;
            closed.extend(done.into_iter().map(|o| o.incident));
        }
        self.open.retain(|_, l| !l.is_empty());
        self.open_count -= closed.len();
        closed
    }

    /// Closes and returns the incidents whose window has passed by `now`, after
    /// those closed early to make room for new ones.
    pub fn expire(&mut self, now: Timestamp) -> Vec<Incident> {
        let mut closed = std::mem::take(&mut self.closed);
        closed.extend(self.expire_open(now));
        closed
    }

    /// The incidents still open.
    pub fn open_incidents(&self) -> Vec<&Incident> {
        self.open.values().flatten().map(|o| &o.incident).collect()
    }
}

/// The index of the incident in `list` whose last alert is oldest.
fn quietest(list: &[Open]) -> Option<usize> {
    (0..list.len()).min_by_key(|i| list[*i].incident.end)
}

#[cfg(test)]
mod tests;
