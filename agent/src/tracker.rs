//! From kernel records to attributed events: which container, which image, and
//! whether the container was watched from its start.
//!
//! A container whose cgroup existed when the agent started was already running:
//! its events are attributed, but it never gets a `container_start`, so profiles
//! of its image are `partial`. A container whose cgroup appears later is watched
//! from its first exec (the runtime's init, before it, is the runtime's own
//! activity and is dropped): `container_start`, then the exec.

use std::collections::{HashMap, HashSet};

use imprint_agent_ebpf::{Header, Record};
use imprint_engine::{Event, EventKind};
use jiff::Timestamp;

use crate::attribution::{CgroupIndex, ContainerImage, ImageResolver, container_id};

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

    /// The wall-clock time of a monotonic timestamp.
    pub fn wall(&self, monotonic_ns: u64) -> Timestamp {
        Timestamp::from_nanosecond(monotonic_ns as i128 + self.offset_ns)
            .unwrap_or_else(|_| Timestamp::now())
    }
}

struct Container {
    image: Option<ContainerImage>,
    /// Watched: already running at start, or its first exec was seen.
    watching: bool,
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
            "{} containers seen, {} events of containers whose image is unknown dropped, {} host events",
            self.containers.len(),
            self.unresolved,
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

    /// The events a record stands for (none, one, or `container_start` and an exec).
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
        let node = self.node.clone();
        let make = |container_id: String, image: Option<&ContainerImage>, kind: EventKind| Event {
            time,
            container_id,
            image_digest: image.map(|i| i.digest.clone()).unwrap_or_default(),
            image_ref: image.and_then(|i| i.reference.clone()),
            node: node.clone(),
            namespace: image.and_then(|i| i.namespace.clone()),
            pod: image.and_then(|i| i.pod.clone()),
            pid: header.pid,
            comm: Some(header.comm.clone()),
            kind,
        };
        let Some(id) = self.container_of(header.cgroup_id) else {
            self.host_events += 1;
            return if self.include_host {
                vec![make(HOST.to_string(), None, kind)]
            } else {
                Vec::new()
            };
        };
        if !self.containers.contains_key(&id) {
            let image = self.resolver.resolve(&id);
            let watching = self.preexisting.contains(&id);
            self.containers
                .insert(id.clone(), Container { image, watching });
        }
        let container = self.containers.get_mut(&id).expect("just inserted");
        if container.image.is_none() {
            // The pod's status may name it by now (a map lookup, not a process).
            container.image = self.resolver.from_cluster(&id);
        }
        let Some(image) = container.image.clone() else {
            self.unresolved += 1;
            return Vec::new();
        };
        let mut out = Vec::new();
        if !container.watching {
            let entrypoint = match record {
                Record::Exec {
                    filename,
                    exe,
                    argv,
                    ..
                } => !crate::translate::is_runtime_init(filename, exe, argv),
                _ => false,
            };
            if !entrypoint {
                // The runtime setting the container up, before its entrypoint.
                return out;
            }
            container.watching = true;
            out.push(make(id.clone(), Some(&image), EventKind::ContainerStart));
        }
        out.push(make(id, Some(&image), kind));
        out
    }
}
