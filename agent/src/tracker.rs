//! From kernel records to attributed events: which container, which image, and
//! whether the container was watched from its start.
//!
//! A container whose cgroup existed when the agent started was already running:
//! its events are attributed, but it never gets a `container_start`, so profiles
//! of its image are `partial`. A container whose cgroup appears later is watched
//! from its first exec (the runtime's init, before it, is the runtime's own
//! activity and is dropped): `container_start`, then the exec.
//!
//! With the pod watcher, a new container's image may be known only once the
//! kubelet writes its id into the pod status, a moment after the entrypoint ran.
//! Its events are held meanwhile (bounded in count and time), and replayed in
//! order once the status names it, so the entrypoint exec is not lost.

use std::collections::{HashMap, HashSet};

use imprint_agent_ebpf::{Header, Record};
use imprint_engine::{Event, EventKind};
use jiff::Timestamp;

use crate::attribution::{CgroupIndex, ImageResolver, container_id};
use crate::pods::ContainerImage;

/// The container id given to host processes (with `--include-host`).
pub const HOST: &str = "host";

/// `CLOCK_MONOTONIC` (what the kernel stamps events with) to wall-clock time.
pub struct Clock {
    offset_ns: i128,
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::new()
    }
}

impl Clock {
    /// Measures the offset now.
    pub fn new() -> Clock {
        let mono = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        let mono_ns = mono.tv_sec as i128 * 1_000_000_000 + mono.tv_nsec as i128;
        let wall_ns = Timestamp::now().as_nanosecond();
        Clock {
            offset_ns: wall_ns - mono_ns,
        }
    }

    /// Now, on the same clock as [`Clock::wall`]'s event times.
    pub fn now(&self) -> Timestamp {
        let mono = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        self.wall(mono.tv_sec as u64 * 1_000_000_000 + mono.tv_nsec as u64)
    }

    /// The wall-clock time of a monotonic timestamp.
    pub fn wall(&self, monotonic_ns: u64) -> Timestamp {
        Timestamp::from_nanosecond(monotonic_ns as i128 + self.offset_ns)
            .unwrap_or_else(|_| Timestamp::now())
    }
}

/// How long a new container's events are held for its pod status to name it.
/// The kubelet writes the id within a few seconds of the start.
const HOLD_FOR: jiff::SignedDuration = jiff::SignedDuration::from_secs(30);
/// How often held events are looked at between a container's own events.
const RELEASE_EVERY: jiff::SignedDuration = jiff::SignedDuration::from_millis(100);
/// At most this many events are held, over all containers (a few MiB)…
const MAX_HELD: usize = 8192;
/// …and per container, so one container's flood does not crowd out another's
/// entrypoint. Over either bound a new event is dropped and what is held is kept:
/// the entrypoint comes first.
const MAX_HELD_PER_CONTAINER: usize = 1024;

struct Container {
    image: Option<ContainerImage>,
    /// Watched: already running at start, or its first exec was seen.
    watching: bool,
    /// Events held while the image is unknown, oldest first.
    held: Vec<Held>,
    /// Until when events are held; `None`: not held (no pod watcher, resolved,
    /// or given up on).
    hold_until: Option<Timestamp>,
}

impl Container {
    /// Stops holding; returns how many held events are dropped. When the entrypoint
    /// was among them the container is watched from here on: its later events are
    /// its own, not the runtime's setup.
    fn give_up(&mut self) -> usize {
        self.hold_until = None;
        if self.held.iter().any(|h| h.entrypoint) {
            self.watching = true;
        }
        std::mem::take(&mut self.held).len()
    }
}

/// An event of a container whose image is not known yet.
struct Held {
    time: Timestamp,
    pid: u32,
    comm: String,
    kind: EventKind,
    /// An exec that is not the runtime's own init: where watching starts.
    entrypoint: bool,
}

/// Attribution state.
pub struct Tracker {
    cgroups: CgroupIndex,
    resolver: ImageResolver,
    node: Option<String>,
    include_host: bool,
    preexisting: HashSet<String>,
    /// cgroup id → container id (`None`: not a container).
    by_cgroup: HashMap<u64, Option<String>>,
    containers: HashMap<String, Container>,
    /// pid → the path it last executed, for exec parents.
    programs: HashMap<u32, String>,
    unresolved: u64,
    host_events: u64,
    /// Events held now, over all containers.
    held: usize,
    /// When held events were last looked at by [`Tracker::release_held`].
    last_release: Timestamp,
}

impl Tracker {
    /// A tracker; the containers running now are the pre-existing ones.
    pub fn new(
        cgroups: CgroupIndex,
        resolver: ImageResolver,
        node: Option<String>,
        include_host: bool,
    ) -> Tracker {
        let preexisting = cgroups.containers().into_iter().collect();
        Tracker {
            cgroups,
            resolver,
            node,
            include_host,
            preexisting,
            by_cgroup: HashMap::new(),
            containers: HashMap::new(),
            programs: HashMap::new(),
            unresolved: 0,
            host_events: 0,
            held: 0,
            last_release: Timestamp::UNIX_EPOCH,
        }
    }

    /// How many containers were running at start.
    pub fn preexisting(&self) -> usize {
        self.preexisting.len()
    }

    /// Events dropped because the container's image is unknown.
    pub fn unresolved(&self) -> u64 {
        self.unresolved
    }

    /// Events of host processes.
    pub fn host_events(&self) -> u64 {
        self.host_events
    }

    /// What was dropped, for the log.
    pub fn summary(&self) -> String {
        format!(
            "{} containers seen, {} events of containers whose image is unknown dropped, {} still held for a pod status, {} host events",
            self.containers.len(),
            self.unresolved,
            self.held,
            self.host_events
        )
    }

    fn container_of(&mut self, cgroup_id: u64) -> Option<String> {
        if let Some(known) = self.by_cgroup.get(&cgroup_id) {
            return known.clone();
        }
        // Unknown ids are not cached as "host": the cgroup may be gone already,
        // or appear in a moment; a rescan happens on each miss.
        let path = self.cgroups.path(cgroup_id)?;
        let id = container_id(path);
        self.by_cgroup.insert(cgroup_id, id.clone());
        id
    }

    /// The events a record stands for (none, one, or `container_start` and an exec;
    /// more when it releases a container's held events).
    pub fn events(&mut self, header: &Header, record: &Record, time: Timestamp) -> Vec<Event> {
        let parent_path = match record {
            Record::Exec { parent_pid, .. } => self.programs.get(parent_pid).cloned(),
            _ => None,
        };
        match record {
            Record::Exec { filename, exe, .. } => {
                if self.programs.len() > 65536 {
                    self.programs.clear();
                }
                self.programs
                    .insert(header.pid, crate::translate::executed_path(filename, exe));
            }
            Record::Exit { .. } => {
                self.programs.remove(&header.pid);
            }
            _ => {}
        }
        let Some(kind) = crate::translate::event_kind(record, parent_path) else {
            return Vec::new();
        };
        let entrypoint = match record {
            Record::Exec {
                filename,
                exe,
                argv,
                ..
            } => !crate::translate::is_runtime_init(filename, exe, argv),
            _ => false,
        };
        let event = Held {
            time,
            pid: header.pid,
            comm: header.comm.clone(),
            kind,
            entrypoint,
        };
        let Some(id) = self.container_of(header.cgroup_id) else {
            self.host_events += 1;
            return if self.include_host {
                vec![make_event(HOST.to_string(), None, &self.node, event)]
            } else {
                Vec::new()
            };
        };
        if !self.containers.contains_key(&id) {
            let image = self.resolver.resolve(&id);
            let watching = self.preexisting.contains(&id);
            // Only the pod watcher can name it later; a runtime's answer is final.
            let hold_until =
                (image.is_none() && self.resolver.watches_cluster()).then(|| time + HOLD_FOR);
            self.containers.insert(
                id.clone(),
                Container {
                    image,
                    watching,
                    held: Vec::new(),
                    hold_until,
                },
            );
        }
        let container = self.containers.get_mut(&id).expect("just inserted");
        if container.image.is_none() {
            // The pod's status may name it by now (a map lookup, not a process).
            container.image = self.resolver.from_cluster(&id);
        }
        let Some(image) = container.image.clone() else {
            match container.hold_until {
                Some(until) if time < until => {
                    if container.held.len() < MAX_HELD_PER_CONTAINER && self.held < MAX_HELD {
                        container.held.push(event);
                        self.held += 1;
                    } else {
                        self.unresolved += 1;
                    }
                }
                Some(_) => {
                    // Past the hold: what was held is dropped, and nothing more is held.
                    let dropped = container.give_up();
                    self.held -= dropped;
                    self.unresolved += dropped as u64 + 1;
                }
                None => self.unresolved += 1,
            }
            return Vec::new();
        };
        let mut out = Vec::new();
        let held = std::mem::take(&mut container.held);
        container.hold_until = None;
        self.held -= held.len();
        for event in held.into_iter().chain([event]) {
            attribute(container, &id, &image, &self.node, event, &mut out);
        }
        out
    }

    /// Releases the held events of containers the pod watcher names by now, and
    /// drops those held past their time (counted as unresolved). Called on each
    /// turn of the event loop (it looks at most every 100 ms), so a container
    /// that went quiet after its entrypoint is not left waiting for its next event.
    /// `now` is [`Clock::now`]: events are stamped by the same clock, which follows
    /// the monotonic clock, so a wall-clock step neither expires holds early nor
    /// stalls this.
    pub fn release_held(&mut self, now: Timestamp) -> Vec<Event> {
        let mut out = Vec::new();
        if self.held == 0 || now.duration_since(self.last_release) < RELEASE_EVERY {
            return out;
        }
        self.last_release = now;
        for (id, container) in &mut self.containers {
            if container.held.is_empty() {
                continue;
            }
            if let Some(image) = self.resolver.from_cluster(id) {
                let held = std::mem::take(&mut container.held);
                self.held -= held.len();
                container.image = Some(image.clone());
                container.hold_until = None;
                for event in held {
                    attribute(container, id, &image, &self.node, event, &mut out);
                }
            } else if container.hold_until.is_none_or(|until| now >= until) {
                let dropped = container.give_up();
                self.held -= dropped;
                self.unresolved += dropped as u64;
            }
        }
        out.sort_by_key(|e| e.time);
        out
    }
}

/// Appends the events one event of a resolved container stands for: nothing
/// before its entrypoint (the runtime setting it up), `container_start` before
/// the entrypoint exec, then the event.
fn attribute(
    container: &mut Container,
    id: &str,
    image: &ContainerImage,
    node: &Option<String>,
    event: Held,
    out: &mut Vec<Event>,
) {
    if !container.watching {
        if !event.entrypoint {
            return;
        }
        container.watching = true;
        let start = Held {
            kind: EventKind::ContainerStart,
            comm: event.comm.clone(),
            ..event
        };
        out.push(make_event(id.to_string(), Some(image), node, start));
    }
    out.push(make_event(id.to_string(), Some(image), node, event));
}

fn make_event(
    container_id: String,
    image: Option<&ContainerImage>,
    node: &Option<String>,
    event: Held,
) -> Event {
    Event {
        time: event.time,
        container_id,
        image_digest: image.map(|i| i.digest.clone()),
        image_ref: image.and_then(|i| i.reference.clone()),
        node: node.clone(),
        namespace: image.and_then(|i| i.namespace.clone()),
        pod: image.and_then(|i| i.pod.clone()),
        pid: event.pid,
        comm: Some(event.comm),
        kind: event.kind,
    }
}

#[cfg(test)]
mod tests;
