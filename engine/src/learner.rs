//! The learner: events in, one profile per image digest out.
//!
//! Ingestion is the hot path (the agent feeds it every event that survives in-kernel
//! dedup), so it does hash lookups on borrowed strings and allocates only for
//! behaviour it has not seen before. Path collapsing runs when profiles are built,
//! and also early ("compaction") when an image's raw open paths pass a bound, so a
//! workload that creates millions of temp files cannot exhaust memory.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use imprint_schema::names::{OpenFlags, is_syscall_name, normalize_capability};
use imprint_schema::pattern::{MAX_PATTERN_LEN, PatternSet, normalize_path};
use imprint_schema::{Category, Completeness, Exec, Open, Peer, Profile, Protocol};
use imprint_schema::{Digest, check_dns_name};
use jiff::{SignedDuration, Timestamp};
use rustc_hash::{FxHashMap, FxHashSet, FxHasher};

use crate::collapse::{CollapseConfig, collapse};
use crate::event::{Event, EventKind};

/// Size bounds for one image's profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most exec entries.
    pub max_execs: usize,
    /// Distinct argument vectors kept per executable; past it the executable is
    /// allowed with any arguments.
    pub max_arg_variants: usize,
    /// Most open entries after collapsing.
    pub max_opens: usize,
    /// Raw open paths held before an early collapse (compaction).
    pub max_raw_opens: usize,
    /// Most syscall names.
    pub max_syscalls: usize,
    /// Most entries in each network direction.
    pub max_peers: usize,
    /// Distinct addresses per (port, protocol) before the port is allowed for any peer.
    pub max_addresses_per_port: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_execs: 4096,
            max_arg_variants: 32,
            max_opens: 16_384,
            max_raw_opens: 65_536,
            max_syscalls: 1024,
            max_peers: 1024,
            max_addresses_per_port: 50,
        }
    }
}

/// How the learner works.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LearnerConfig {
    /// Path collapsing thresholds.
    pub collapse: CollapseConfig,
    /// Size bounds.
    pub limits: Limits,
    /// The learning period a profile must span to be `complete`; `None` puts no
    /// requirement on the window's length.
    pub learning_period: Option<SignedDuration>,
}

/// Counts of what the learner did with its input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LearnerStats {
    /// Events observed.
    pub events: u64,
    /// Events skipped because a field could not be used (relative path, bad address,
    /// unknown capability, malformed DNS name...).
    pub unusable: u64,
    /// Behaviour dropped because a size bound was hit.
    pub dropped: u64,
}

#[derive(Default)]
struct ExecEntry {
    /// Argument vectors by a hash of their content (collisions kept apart in a list).
    args: FxHashMap<u64, Vec<Box<[String]>>>,
    variants: usize,
    any_args: bool,
}

#[derive(Default)]
struct OpenTable {
    exact: FxHashMap<Box<str>, OpenFlags>,
    /// Patterns from compaction, and the flags seen under each.
    patterns: Vec<(String, OpenFlags)>,
    compiled: PatternSet,
}

#[derive(Default)]
struct ImageState {
    reference: Option<String>,
    nodes: BTreeSet<String>,
    /// Container id → whether it was observed from its start.
    containers: FxHashMap<Box<str>, bool>,
    start: Option<Timestamp>,
    end: Option<Timestamp>,
    execs: FxHashMap<Box<str>, ExecEntry>,
    opens: OpenTable,
    syscalls: FxHashSet<Box<str>>,
    capabilities: u64,
    /// (port, protocol) → remote addresses, for egress and ingress.
    egress: FxHashMap<(u16, Protocol), FxHashSet<IpAddr>>,
    ingress: FxHashMap<(u16, Protocol), FxHashSet<IpAddr>>,
    dns: FxHashSet<Box<str>>,
    truncated: BTreeSet<Category>,
}

/// Builds profiles from events, one per image digest.
pub struct Learner {
    config: LearnerConfig,
    images: FxHashMap<Digest, ImageState>,
    stats: LearnerStats,
}

fn args_hash(args: &[String]) -> u64 {
    let mut h = FxHasher::default();
    args.len().hash(&mut h);
    for a in args {
        a.hash(&mut h);
    }
    h.finish()
}

impl Learner {
    /// A learner with this configuration.
    pub fn new(config: LearnerConfig) -> Learner {
        Learner {
            config,
            images: FxHashMap::default(),
            stats: LearnerStats::default(),
        }
    }

    /// What the learner has done so far.
    pub fn stats(&self) -> &LearnerStats {
        &self.stats
    }

    /// The image digests seen so far.
    pub fn digests(&self) -> Vec<Digest> {
        let mut d: Vec<Digest> = self.images.keys().cloned().collect();
        d.sort();
        d
    }

    /// Takes in one event.
    pub fn observe(&mut self, event: &Event) {
        self.stats.events += 1;
        let limits = &self.config.limits;
        let Some(digest) = &event.image_digest else {
            self.stats.unusable += 1;
            return;
        };
        let image = match self.images.get_mut(digest) {
            Some(image) => image,
            None => self.images.entry(digest.clone()).or_default(),
        };
        if image.start.is_none_or(|s| event.time < s) {
            image.start = Some(event.time);
        }
        if image.end.is_none_or(|e| event.time > e) {
            image.end = Some(event.time);
        }
        if image.reference.is_none()
            && let Some(r) = &event.image_ref
        {
            image.reference = Some(r.clone());
        }
        if let Some(node) = &event.node
            && !image.nodes.contains(node)
        {
            image.nodes.insert(node.clone());
        }
        // A container's first event decides whether it was seen from its start.
        if !image.containers.contains_key(event.container_id.as_str()) {
            let from_start = matches!(event.kind, EventKind::ContainerStart);
            image
                .containers
                .insert(event.container_id.as_str().into(), from_start);
        }

        let ok = match &event.kind {
            EventKind::Exec { path, argv, .. } => {
                observe_exec(image, limits, path, argv, &mut self.stats)
            }
            EventKind::Open { path, flags } => {
                observe_open(image, &self.config, path, *flags, &mut self.stats)
            }
            EventKind::Syscall { name } => {
                if !is_syscall_name(name) {
                    false
                } else {
                    if !image.syscalls.contains(name.as_str()) {
                        if image.syscalls.len() >= limits.max_syscalls {
                            image.truncated.insert(Category::Syscalls);
                            self.stats.dropped += 1;
                        } else {
                            image.syscalls.insert(name.as_str().into());
                        }
                    }
                    true
                }
            }
            EventKind::Capability { name } => match normalize_capability(name) {
                Some(cap) => {
                    let bit = imprint_schema::names::CAPABILITY_NAMES
                        .iter()
                        .position(|c| *c == cap)
                        .unwrap_or(0);
                    image.capabilities |= 1u64 << bit;
                    true
                }
                None => false,
            },
            EventKind::Connect {
                address,
                port,
                protocol,
            } => {
                observe_peer(&mut image.egress, *address, *port, *protocol);
                true
            }
            EventKind::Accept {
                address,
                port,
                protocol,
            } => {
                observe_peer(&mut image.ingress, *address, *port, *protocol);
                true
            }
            EventKind::Dns { name, .. } => {
                let name = name.trim_end_matches('.');
                if image.dns.contains(name) {
                    true
                } else {
                    let lower = name.to_ascii_lowercase();
                    if check_dns_name(&lower).is_err() || lower.contains('*') {
                        false
                    } else {
                        image.dns.insert(lower.into());
                        true
                    }
                }
            }
            // Signals for behaviour rules, and process lifecycle: not profile content.
            // Binds are not ingress: outbound UDP sockets bind too.
            _ => true,
        };
        if !ok {
            self.stats.unusable += 1;
        }
    }

    /// Builds the profiles learned so far, sorted by image digest. The learner keeps
    /// its state, so it can go on learning and build again later.
    pub fn profiles(&self) -> Vec<Profile> {
        let mut digests: Vec<&Digest> = self.images.keys().collect();
        digests.sort();
        digests
            .into_iter()
            .map(|d| self.build(d, &self.images[d]))
            .collect()
    }

    fn build(&self, digest: &Digest, image: &ImageState) -> Profile {
        let limits = &self.config.limits;
        let mut truncated = image.truncated.clone();
        let mut profile = Profile::new(digest.clone());
        profile.image.reference = image.reference.clone();

        // Execs: collapse executable paths, then attach argument sets.
        let exec_paths = collapse(
            image.execs.keys().map(|p| (p.to_string(), vec![p.clone()])),
            &self.config.collapse,
            |a: &mut Vec<Box<str>>, b: &Vec<Box<str>>| a.extend(b.iter().cloned()),
        );
        for (pattern, sources) in exec_paths {
            let mut any = false;
            let mut variants: BTreeSet<Vec<String>> = BTreeSet::new();
            for source in &sources {
                let entry = &image.execs[source];
                any |= entry.any_args;
                for list in entry.args.values() {
                    variants.extend(list.iter().map(|a| a.to_vec()));
                }
            }
            if any || variants.len() > limits.max_arg_variants {
                profile.execs.push(Exec {
                    path: pattern,
                    args: None,
                });
            } else {
                profile.execs.extend(variants.into_iter().map(|args| Exec {
                    path: pattern.clone(),
                    args: Some(args),
                }));
            }
        }
        if profile.execs.len() > limits.max_execs {
            profile.execs.truncate(limits.max_execs);
            truncated.insert(Category::Execs);
        }

        // Opens: exact paths and compaction patterns collapse together.
        let raw = image
            .opens
            .exact
            .iter()
            .map(|(p, f)| (p.to_string(), *f))
            .chain(image.opens.patterns.iter().cloned());
        let opens = collapse(raw, &self.config.collapse, |a: &mut OpenFlags, b| *a |= *b);
        profile.opens = opens
            .into_iter()
            .map(|(path, flags)| Open { path, flags })
            .collect();
        if profile.opens.len() > limits.max_opens {
            profile.opens.truncate(limits.max_opens);
            truncated.insert(Category::Opens);
        }

        profile.syscalls = image.syscalls.iter().map(|s| s.to_string()).collect();
        profile.capabilities = imprint_schema::names::CAPABILITY_NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| image.capabilities & (1u64 << i) != 0)
            .map(|(_, c)| c.to_string())
            .collect();

        let mut egress = peers(&image.egress, limits.max_addresses_per_port);
        egress.extend(image.dns.iter().map(|d| Peer {
            dns: Some(d.to_string()),
            cidr: None,
            port: None,
            protocol: None,
        }));
        let ingress = peers(&image.ingress, limits.max_addresses_per_port);
        for (category, mut list, slot) in [
            (Category::Egress, egress, &mut profile.network.egress),
            (Category::Ingress, ingress, &mut profile.network.ingress),
        ] {
            list.sort();
            if list.len() > limits.max_peers {
                list.truncate(limits.max_peers);
                truncated.insert(category);
            }
            *slot = list;
        }

        let learning = &mut profile.learning;
        learning.start = image.start;
        learning.end = image.end;
        learning.observed_containers = image.containers.len() as u64;
        learning.nodes = image.nodes.iter().cloned().collect();
        learning.truncated = truncated.into_iter().collect();
        let long_enough = match (self.config.learning_period, image.start, image.end) {
            (None, _, _) => true,
            (Some(period), Some(start), Some(end)) => end.duration_since(start) >= period,
            _ => false,
        };
        let all_from_start =
            !image.containers.is_empty() && image.containers.values().all(|from_start| *from_start);
        learning.completeness = if all_from_start && long_enough && learning.truncated.is_empty() {
            Completeness::Complete
        } else {
            Completeness::Partial
        };
        profile.normalized()
    }
}

fn observe_exec(
    image: &mut ImageState,
    limits: &Limits,
    path: &str,
    argv: &[String],
    stats: &mut LearnerStats,
) -> bool {
    let Some(path) = learnable_path(path) else {
        return false;
    };
    if argv.iter().any(|a| a.contains('\0')) {
        return false;
    }
    if !image.execs.contains_key(path.as_ref()) {
        if image.execs.len() >= limits.max_execs {
            image.truncated.insert(Category::Execs);
            stats.dropped += 1;
            return true;
        }
        image
            .execs
            .insert(path.as_ref().into(), ExecEntry::default());
    }
    let entry = image.execs.get_mut(path.as_ref()).expect("inserted above");
    if entry.any_args {
        return true;
    }
    let args = argv.get(1..).unwrap_or(&[]);
    let key = args_hash(args);
    let list = entry.args.entry(key).or_default();
    if list.iter().any(|known| known.as_ref() == args) {
        return true;
    }
    if entry.variants >= limits.max_arg_variants {
        // Too many distinct argument vectors: allow any arguments.
        entry.any_args = true;
        entry.args.clear();
        return true;
    }
    list.push(args.to_vec().into_boxed_slice());
    entry.variants += 1;
    true
}

fn observe_open(
    image: &mut ImageState,
    config: &LearnerConfig,
    path: &str,
    flags: OpenFlags,
    stats: &mut LearnerStats,
) -> bool {
    let table = &mut image.opens;
    if let Some(known) = table.exact.get_mut(path) {
        *known |= flags;
        return true;
    }
    let Some(path) = learnable_path(path) else {
        return false;
    };
    if let Some(known) = table.exact.get_mut(path.as_ref()) {
        *known |= flags;
        return true;
    }
    if !table.compiled.is_empty() {
        let mut hit = false;
        let patterns = &mut table.patterns;
        table.compiled.for_each_match(&path, |i| {
            if !hit {
                patterns[i].1 |= flags;
                hit = true;
            }
        });
        if hit {
            return true;
        }
    }
    if table.exact.len() >= config.limits.max_raw_opens {
        compact(table, &config.collapse);
        if table.compiled.is_match(&path) {
            return observe_open(image, config, &path, flags, stats);
        }
        if table.exact.len() + table.patterns.len() >= config.limits.max_raw_opens {
            image.truncated.insert(Category::Opens);
            stats.dropped += 1;
            return true;
        }
    }
    table.exact.insert(path.as_ref().into(), flags);
    true
}

/// Turns an observed path into a literal pattern: normalised, and with any segment
/// that contains `*` (a legal file-name character) widened to `*`, which still
/// matches it. `None` when the path cannot be a pattern (relative, NUL, too long).
fn learnable_path(path: &str) -> Option<Cow<'_, str>> {
    let path = normalize_path(path)?;
    if path.len() > MAX_PATTERN_LEN {
        return None;
    }
    if !path.contains('*') {
        return Some(path);
    }
    let widened: Vec<&str> = path
        .split('/')
        .skip(1)
        .map(|seg| if seg.contains('*') { "*" } else { seg })
        .collect();
    Some(Cow::Owned(format!("/{}", widened.join("/"))))
}

/// Collapses the raw open paths early: the patterns replace the paths they cover,
/// and later paths that match a pattern update it instead of adding an entry.
fn compact(table: &mut OpenTable, config: &CollapseConfig) {
    let raw = table
        .exact
        .drain()
        .map(|(p, f)| (p.into_string(), f))
        .chain(table.patterns.drain(..));
    let collapsed = collapse(raw, config, |a: &mut OpenFlags, b| *a |= *b);
    let mut compiled = PatternSet::new();
    for (path, flags) in collapsed {
        if imprint_schema::pattern::has_wildcard(&path) {
            if compiled.insert(&path).is_ok() {
                table.patterns.push((path, flags));
            }
        } else {
            table.exact.insert(path.into_boxed_str(), flags);
        }
    }
    table.compiled = compiled;
}

fn observe_peer(
    map: &mut FxHashMap<(u16, Protocol), FxHashSet<IpAddr>>,
    ip: IpAddr,
    port: u16,
    protocol: Protocol,
) {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    map.entry((port, protocol)).or_default().insert(ip);
}

/// Turns per-port address sets into peers; a port with more distinct addresses than
/// the bound is allowed for any peer.
fn peers(map: &FxHashMap<(u16, Protocol), FxHashSet<IpAddr>>, max_per_port: usize) -> Vec<Peer> {
    let mut out = Vec::new();
    let sorted: BTreeMap<_, _> = map.iter().collect();
    for ((port, protocol), addresses) in sorted {
        let port = (*port != 0).then_some(*port);
        if addresses.len() > max_per_port {
            out.push(Peer {
                dns: None,
                cidr: None,
                port,
                protocol: Some(*protocol),
            });
            continue;
        }
        for ip in addresses {
            let prefix = if ip.is_ipv4() { 32 } else { 128 };
            out.push(Peer {
                dns: None,
                cidr: Some(format!("{ip}/{prefix}")),
                port,
                protocol: Some(*protocol),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests;
