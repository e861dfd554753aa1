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
//!
//! Nobody is invisible: a container whose image stays unknown (a local image,
//! no answer from the runtime, a hold that ran out) has its events attributed
//! with no image, so the behaviour rules still judge them; so does a process of
//! another pid namespace in a cgroup that names no container (one it moved
//! itself to): it is the container `pidns-<inode>`. An event that does not fit
//! the hold is judged at once without its image, and counted for the container
//! ([`Tracker::take_unheld`]); when the hold is full over all containers, the
//! container holding the most gives up its newest event first, so one flood
//! cannot crowd out another container's entrypoint.

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
    /// Events judged at once, without their image, as the hold was full: by container.
    unheld: HashMap<String, u64>,
    /// The agent's own pid namespace: a process in another one is a container's.
    host_pid_ns: u32,
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
            unheld: HashMap::new(),
            host_pid_ns: own_pid_ns(),
            host_events: 0,
            held: 0,
            last_release: Timestamp::UNIX_EPOCH,
        }
    }

    /// How many containers were running at start.
    pub fn preexisting(&self) -> usize {
        self.preexisting.len()
    }

    /// Events attributed with no image (judged by the rules only).
    pub fn unresolved(&self) -> u64 {
        self.unresolved
    }

    /// Events judged without their image because the hold was full, by
    /// container, since the last call.
    pub fn take_unheld(&mut self) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = self.unheld.drain().collect();
        out.sort();
        out
    }

    /// The container a cgroup id belongs to, for reports (ring-buffer losses):
    /// its id, or `None` for the host.
    pub fn container_of_cgroup(&mut self, cgroup_id: u64) -> Option<String> {
        self.container_of(cgroup_id)
    }

    /// Events of host processes.
    pub fn host_events(&self) -> u64 {
        self.host_events
    }

    /// What was dropped, for the log.
    pub fn summary(&self) -> String {
        format!(
            "{} containers seen, {} events of containers whose image is unknown judged by the rules only, {} still held for a pod status, {} host events",
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
        let id = self.container_of(header.cgroup_id).or_else(|| {
            // Another pid namespace in a cgroup that names no container: a
            // container's process that left its cgroup, not the host's.
            (header.pid_ns != 0 && self.host_pid_ns != 0 && header.pid_ns != self.host_pid_ns)
                .then(|| format!("pidns-{}", header.pid_ns))
        });
        let Some(id) = id else {
            self.host_events += 1;
            return if self.include_host {
                vec![make_event(HOST.to_string(), None, &self.node, event)]
            } else {
                Vec::new()
            };
        };
        if !self.containers.contains_key(&id) {
            // A process that left its container's cgroup was running already:
            // watched at once, and no runtime knows such an id.
            let escaped = id.starts_with("pidns-");
            let image = if escaped {
                None
            } else {
                self.resolver.resolve(&id)
            };
            let watching = escaped || self.preexisting.contains(&id);
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
            return self.unknown_image(&id, event, time);
        };
        let mut out = Vec::new();
        let held = std::mem::take(&mut container.held);
        container.hold_until = None;
        self.held -= held.len();
        for event in held.into_iter().chain([event]) {
            attribute(container, &id, Some(&image), &self.node, event, &mut out);
        }
        out
    }

    /// An event of a container whose image is not known: held while the pod
    /// watcher may still name it and there is room, else judged now without it.
    fn unknown_image(&mut self, id: &str, event: Held, time: Timestamp) -> Vec<Event> {
        let mut out = Vec::new();
        let container = self.containers.get_mut(id).expect("known container");
        match container.hold_until {
            Some(until) if time < until => {
                if container.held.len() < MAX_HELD_PER_CONTAINER {
                    if self.held >= MAX_HELD {
                        let mine = container.held.len();
                        self.make_room(id, mine, &mut out);
                    }
                    let container = self.containers.get_mut(id).expect("known container");
                    if self.held < MAX_HELD {
                        container.held.push(event);
                        self.held += 1;
                        return out;
                    }
                }
                *self.unheld.entry(id.to_string()).or_default() += 1;
            }
            Some(_) => {
                // Past the hold: what was held is judged now, without the image.
                let held = std::mem::take(&mut container.held);
                container.hold_until = None;
                self.held -= held.len();
                self.unresolved += held.len() as u64;
                for h in held {
                    attribute(container, id, None, &self.node, h, &mut out);
                }
            }
            None => {}
        }
        let container = self.containers.get_mut(id).expect("known container");
        self.unresolved += 1;
        attribute(container, id, None, &self.node, event, &mut out);
        out
    }

    /// The hold is full: the container holding the most, if it holds more than
    /// `mine` + 1, gives up its newest event, judged now without its image.
    fn make_room(&mut self, id: &str, mine: usize, out: &mut Vec<Event>) {
        let Some((largest, count)) = (self.containers.iter())
            .filter(|(other, _)| other.as_str() != id)
            .map(|(other, c)| (other.clone(), c.held.len()))
            .max_by_key(|(_, n)| *n)
        else {
            return;
        };
        if count <= mine + 1 {
            return;
        }
        let container = self.containers.get_mut(&largest).expect("found");
        // Its entrypoint is its first held event and stays: only the newest goes.
        let Some(newest) = container.held.pop() else {
            return;
        };
        self.held -= 1;
        self.unresolved += 1;
        *self.unheld.entry(largest.clone()).or_default() += 1;
        attribute(container, &largest, None, &self.node, newest, out);
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
                    attribute(container, id, Some(&image), &self.node, event, &mut out);
                }
            } else if container.hold_until.is_none_or(|until| now >= until) {
                // Past the hold: judged now, without the image.
                let held = std::mem::take(&mut container.held);
                container.hold_until = None;
                self.held -= held.len();
                self.unresolved += held.len() as u64;
                for event in held {
                    attribute(container, id, None, &self.node, event, &mut out);
                }
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
    image: Option<&ContainerImage>,
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
        out.push(make_event(id.to_string(), image, node, start));
    }
    out.push(make_event(id.to_string(), image, node, event));
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

/// The inode number of this process's pid namespace (0 when unreadable).
fn own_pid_ns() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/pid").map_or(0, |m| m.ino() as u32)
}

#[cfg(test)]
mod tests;
