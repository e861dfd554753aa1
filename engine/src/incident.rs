//! Incidents: related alerts grouped, with the process tree and a timeline; and
//! cooldown, so a noisy alert is sent once per window with a count.
//!
//! Related means: the same container, within `window` of the incident's last
//! alert, and processes of one lineage (one is an ancestor of the other, as the
//! exec and fork events seen so far tell).

use std::collections::BTreeMap;

use imprint_schema::Digest;
use jiff::{SignedDuration, Timestamp};
use rustc_hash::FxHashMap;
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

struct Open {
    incident: Incident,
    /// The processes that alerted (their ancestors are in the incident's tree).
    pids: Vec<u32>,
    /// (rule, subject) → index in the timeline, and when it was last sent.
    seen: FxHashMap<(String, String), (usize, Timestamp)>,
}

/// Groups alerts into incidents.
pub struct Correlator {
    window: SignedDuration,
    cooldown: SignedDuration,
    parents: FxHashMap<u32, u32>,
    paths: FxHashMap<u32, String>,
    open: BTreeMap<String, Vec<Open>>,
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

    fn related(&self, a: u32, b: u32) -> bool {
        self.ancestors(a).contains(&b) || self.ancestors(b).contains(&a)
    }

    /// Adds an alert; says whether to send it.
    pub fn push(&mut self, alert: Alert) -> Outcome {
        let key = (alert.rule.clone(), alert.subject.clone());
        let lineage = self.ancestors(alert.pid);
        let (window, cooldown) = (self.window, self.cooldown);
        let related_index = self.open.get(&alert.container_id).and_then(|list| {
            list.iter().position(|o| {
                alert.time.duration_since(o.incident.end) <= window
                    && o.pids.iter().any(|p| self.related(*p, alert.pid))
            })
        });
        let nodes = |c: &Correlator, pids: &[u32]| -> Vec<ProcessNode> {
            pids.iter()
                .map(|p| ProcessNode {
                    pid: *p,
                    parent: c.parents.get(p).copied(),
                    path: c.paths.get(p).cloned(),
                })
                .collect()
        };
        let new_nodes = nodes(self, &lineage);
        let list = self.open.entry(alert.container_id.clone()).or_default();
        match related_index {
            Some(i) => {
                let open = &mut list[i];
                let id = open.incident.id.clone();
                open.incident.end = open.incident.end.max(alert.time);
                open.incident.severity = open.incident.severity.max(alert.severity);
                if !open.pids.contains(&alert.pid) {
                    open.pids.push(alert.pid);
                }
                for n in new_nodes {
                    if !open.incident.processes.iter().any(|p| p.pid == n.pid) {
                        open.incident.processes.push(n);
                    }
                }
                if let Some((index, last_sent)) = open.seen.get_mut(&key) {
                    let occurrence = &mut open.incident.timeline[*index];
                    occurrence.count += 1;
                    occurrence.last = alert.time;
                    if alert.time.duration_since(*last_sent) < cooldown {
                        return Outcome::Suppressed(id);
                    }
                    *last_sent = alert.time;
                    return Outcome::Joined(id);
                }
                open.seen
                    .insert(key, (open.incident.timeline.len(), alert.time));
                open.incident.timeline.push(Occurrence {
                    last: alert.time,
                    alert,
                    count: 1,
                });
                Outcome::Joined(id)
            }
            None => {
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
                    processes: new_nodes,
                    timeline: Vec::new(),
                };
                let mut open = Open {
                    pids: vec![alert.pid],
                    incident,
                    seen: FxHashMap::default(),
                };
                open.seen.insert(key, (0, alert.time));
                open.incident.timeline.push(Occurrence {
                    last: alert.time,
                    alert,
                    count: 1,
                });
                list.push(open);
                Outcome::Opened(id)
            }
        }
    }

    /// Closes and returns the incidents whose window has passed by `now`.
    pub fn expire(&mut self, now: Timestamp) -> Vec<Incident> {
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
        closed
    }

    /// The incidents still open.
    pub fn open_incidents(&self) -> Vec<&Incident> {
        self.open.values().flatten().map(|o| &o.incident).collect()
    }
}

#[cfg(test)]
mod tests;
