//! Anomalies: events a container's verified profile does not allow.
//!
//! A [`CompiledProfile`] turns a profile into lookups built once: hash sets for
//! exact paths and names, a segment trie ([`PatternSet`]) for wildcard paths, a
//! capability bitmask, CIDR lists. [`Detector`] holds one per image digest and
//! checks each event against the profile of its image, then against the
//! behaviour rules, which run for every container.

use std::net::IpAddr;

use imprint_schema::Protocol;
use imprint_schema::names::{CAPABILITY_NAMES, OpenFlags, normalize_capability};
use imprint_schema::pattern::{PatternSet, has_wildcard};
use imprint_schema::{Digest, Exec, Profile};
use ipnet::IpNet;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::alert::{Alert, Severity, Source};
use crate::event::{Event, EventKind};
use crate::rules::RuleSet;

/// Which argument vectors an executable may run with.
#[derive(Debug, Clone, Default)]
struct ExecArgs {
    any: bool,
    allowed: FxHashSet<Vec<String>>,
}

impl ExecArgs {
    fn add(&mut self, e: &Exec) {
        match &e.args {
            None => self.any = true,
            Some(args) => {
                self.allowed.insert(args.clone());
            }
        }
    }

    fn allows(&self, args: &[String]) -> bool {
        self.any || self.allowed.contains(args)
    }
}

#[derive(Debug, Clone)]
struct PeerRule {
    net: Option<IpNet>,
    port: Option<u16>,
    protocol: Option<Protocol>,
}

impl PeerRule {
    fn allows(&self, ip: IpAddr, port: u16, protocol: Protocol) -> bool {
        self.net.is_none_or(|n| n.contains(&ip))
            && self.port.is_none_or(|p| p == port)
            && self.protocol.is_none_or(|p| p == protocol)
    }
}

/// A profile compiled for fast checks.
#[derive(Debug, Clone)]
pub struct CompiledProfile {
    digest: Digest,
    exec_exact: FxHashMap<Box<str>, ExecArgs>,
    exec_patterns: PatternSet,
    exec_pattern_args: Vec<ExecArgs>,
    open_exact: FxHashMap<Box<str>, OpenFlags>,
    open_patterns: PatternSet,
    open_pattern_flags: Vec<OpenFlags>,
    syscalls: FxHashSet<Box<str>>,
    capabilities: u64,
    egress: Vec<PeerRule>,
    dns_exact: FxHashSet<Box<str>>,
    dns_wildcards: Vec<Box<str>>,
    ingress: Vec<PeerRule>,
}

fn capability_bit(name: &str) -> Option<u64> {
    let cap = normalize_capability(name)?;
    CAPABILITY_NAMES
        .iter()
        .position(|c| *c == cap)
        .map(|i| 1u64 << i)
}

fn peer_rules(peers: &[imprint_schema::Peer]) -> Vec<PeerRule> {
    peers
        .iter()
        .filter(|p| p.dns.is_none())
        .filter_map(|p| {
            let net = match &p.cidr {
                Some(c) => Some(c.parse::<IpNet>().ok()?),
                None => None,
            };
            Some(PeerRule {
                net,
                port: p.port,
                protocol: p.protocol,
            })
        })
        .collect()
}

/// Whether a DNS name matches `*.example.com`-style patterns (`*` is one label).
fn dns_matches(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<&str>, Vec<&str>) = (pattern.split('.').collect(), name.split('.').collect());
    p.len() == n.len() && p.iter().zip(&n).all(|(a, b)| *a == "*" || a == b)
}

impl CompiledProfile {
    /// Compiles a (validated) profile.
    pub fn new(profile: &Profile) -> CompiledProfile {
        let mut exec_exact: FxHashMap<Box<str>, ExecArgs> = FxHashMap::default();
        let mut exec_patterns = PatternSet::new();
        let mut exec_pattern_args: Vec<ExecArgs> = Vec::new();
        for e in &profile.execs {
            if has_wildcard(&e.path) {
                if let Ok(i) = exec_patterns.insert(&e.path) {
                    if i == exec_pattern_args.len() {
                        exec_pattern_args.push(ExecArgs::default());
                    }
                    exec_pattern_args[i].add(e);
                }
            } else {
                exec_exact.entry(e.path.as_str().into()).or_default().add(e);
            }
        }
        let mut open_exact: FxHashMap<Box<str>, OpenFlags> = FxHashMap::default();
        let mut open_patterns = PatternSet::new();
        let mut open_pattern_flags: Vec<OpenFlags> = Vec::new();
        for o in &profile.opens {
            if has_wildcard(&o.path) {
                if let Ok(i) = open_patterns.insert(&o.path) {
                    if i == open_pattern_flags.len() {
                        open_pattern_flags.push(OpenFlags::EMPTY);
                    }
                    open_pattern_flags[i] = OpenFlags::from_bits_truncate(
                        open_pattern_flags[i].bits() | o.flags.bits(),
                    );
                }
            } else {
                let f = open_exact
                    .entry(o.path.as_str().into())
                    .or_insert(OpenFlags::EMPTY);
                *f = OpenFlags::from_bits_truncate(f.bits() | o.flags.bits());
            }
        }
        let mut dns_exact = FxHashSet::default();
        let mut dns_wildcards = Vec::new();
        for p in &profile.network.egress {
            if let Some(name) = &p.dns {
                if name.contains('*') {
                    dns_wildcards.push(name.as_str().into());
                } else {
                    dns_exact.insert(name.as_str().into());
                }
            }
        }
        CompiledProfile {
            digest: profile.image.digest.clone(),
            exec_exact,
            exec_patterns,
            exec_pattern_args,
            open_exact,
            open_patterns,
            open_pattern_flags,
            syscalls: profile.syscalls.iter().map(|s| s.as_str().into()).collect(),
            capabilities: profile
                .capabilities
                .iter()
                .filter_map(|c| capability_bit(c))
                .fold(0, |a, b| a | b),
            egress: peer_rules(&profile.network.egress),
            dns_exact,
            dns_wildcards,
            ingress: peer_rules(&profile.network.ingress),
        }
    }

    /// The image digest this profile is for.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    fn exec_allowed(&self, path: &str, argv: &[String]) -> bool {
        let args = argv.get(1..).unwrap_or(&[]);
        if let Some(a) = self.exec_exact.get(path)
            && a.allows(args)
        {
            return true;
        }
        let mut allowed = false;
        self.exec_patterns.for_each_match(path, |i| {
            allowed |= self.exec_pattern_args[i].allows(args);
        });
        allowed
    }

    fn open_allowed(&self, path: &str, flags: OpenFlags) -> bool {
        let wanted = flags.bits();
        let exact = self.open_exact.get(path);
        if let Some(f) = exact
            && f.bits() & wanted == wanted
        {
            return true;
        }
        // Flags granted by every entry that names the path, exact or pattern.
        let (mut granted, mut known) = (exact.map_or(0, |f| f.bits()), exact.is_some());
        self.open_patterns.for_each_match(path, |i| {
            granted |= self.open_pattern_flags[i].bits();
            known = true;
        });
        known && granted & wanted == wanted
    }

    fn dns_allowed(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.dns_exact.contains(name.as_str())
            || self.dns_wildcards.iter().any(|p| dns_matches(p, &name))
    }

    /// The anomaly an event is under this profile, if any.
    pub fn check(&self, kind: &EventKind) -> Option<Anomaly> {
        match kind {
            EventKind::Exec { path, argv, .. } if !self.exec_allowed(path, argv) => {
                let args = argv.get(1..).unwrap_or(&[]).join(" ");
                Some(Anomaly::new(
                    "anomaly.exec",
                    Severity::High,
                    &["T1059"],
                    format!("unexpected exec of {path} {args}")
                        .trim_end()
                        .to_string(),
                    path.clone(),
                ))
            }
            EventKind::Open { path, flags } => {
                // The sensor makes names absolute: one that is not (a bad
                // directory fd, a truncated name) cannot be allowed by a profile.
                if path.starts_with('/') && self.open_allowed(path, *flags) {
                    return None;
                }
                let writes = flags.bits()
                    & (OpenFlags::from_linux_bits(0o1).bits()
                        | OpenFlags::from_linux_bits(0o2).bits()
                        | OpenFlags::from_linux_bits(0o100).bits())
                    != 0;
                Some(Anomaly::new(
                    "anomaly.open",
                    if writes {
                        Severity::High
                    } else {
                        Severity::Medium
                    },
                    if writes { &["T1565.001"] } else { &["T1005"] },
                    format!("unexpected open of {path} ({})", flags.names().join("|")),
                    format!("{path} {}", flags.names().join("|")),
                ))
            }
            EventKind::Syscall { name } if !self.syscalls.contains(name.as_str()) => {
                Some(Anomaly::new(
                    "anomaly.syscall",
                    Severity::Medium,
                    &["T1106"],
                    format!("unexpected syscall {name}"),
                    name.clone(),
                ))
            }
            EventKind::Capability { name } => {
                let bit = capability_bit(name)?;
                (self.capabilities & bit == 0).then(|| {
                    Anomaly::new(
                        "anomaly.capability",
                        Severity::High,
                        &["T1068"][..],
                        format!("unexpected use of capability {name}"),
                        name.clone(),
                    )
                })
            }
            EventKind::Connect {
                address,
                port,
                protocol,
            } => (!self
                .egress
                .iter()
                .any(|r| r.allows(*address, *port, *protocol)))
            .then(|| {
                Anomaly::new(
                    "anomaly.egress",
                    Severity::High,
                    &["T1071"][..],
                    format!("unexpected connection to {address}:{port}/{protocol:?}"),
                    format!("{address}:{port}"),
                )
            }),
            EventKind::Accept {
                address,
                port,
                protocol,
            } => (!self
                .ingress
                .iter()
                .any(|r| r.allows(*address, *port, *protocol)))
            .then(|| {
                Anomaly::new(
                    "anomaly.ingress",
                    Severity::Medium,
                    &["T1133"][..],
                    format!("unexpected inbound connection from {address} on port {port}"),
                    format!("{address}->{port}"),
                )
            }),
            EventKind::Dns { name, .. } if !self.dns_allowed(name) => Some(Anomaly::new(
                "anomaly.dns",
                Severity::Medium,
                &["T1071.004"],
                format!("unexpected DNS question for {name}"),
                name.clone(),
            )),
            _ => None,
        }
    }
}

/// What a profile says an event should not be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anomaly {
    /// The rule id (`anomaly.exec`, `anomaly.egress`…).
    pub rule: &'static str,
    /// How serious it is.
    pub severity: Severity,
    /// MITRE ATT&CK technique ids.
    pub mitre: &'static [&'static str],
    /// What happened, for people.
    pub message: String,
    /// What it is about (a path, `address:port`…), for grouping repeats.
    pub subject: String,
}

impl Anomaly {
    fn new(
        rule: &'static str,
        severity: Severity,
        mitre: &'static [&'static str],
        message: String,
        subject: String,
    ) -> Anomaly {
        Anomaly {
            rule,
            severity,
            mitre,
            message,
            subject,
        }
    }
}

/// Profiles by image digest, and the behaviour rules.
pub struct Detector {
    profiles: FxHashMap<Digest, CompiledProfile>,
    rules: RuleSet,
}

impl Detector {
    /// A detector with these rules and no profiles.
    pub fn new(rules: RuleSet) -> Detector {
        Detector {
            profiles: FxHashMap::default(),
            rules,
        }
    }

    /// Enforces `profile` for its image digest (replacing the previous one).
    pub fn load(&mut self, profile: &Profile) {
        self.profiles
            .insert(profile.image.digest.clone(), CompiledProfile::new(profile));
    }

    /// Stops enforcing the profile of `digest` (revoked, or no longer verified).
    pub fn unload(&mut self, digest: &Digest) -> bool {
        self.profiles.remove(digest).is_some()
    }

    /// Whether a verified profile is enforced for `digest`.
    pub fn has_profile(&self, digest: &Digest) -> bool {
        self.profiles.contains_key(digest)
    }

    /// How many profiles are loaded.
    pub fn profiles(&self) -> usize {
        self.profiles.len()
    }

    /// Checks one event: against its image's profile (when one is enforced) and
    /// against every behaviour rule. Alerts are appended to `out`.
    pub fn check(&self, event: &Event, out: &mut Vec<Alert>) {
        let alert = |rule: &str, source, severity, mitre: Vec<String>, message, subject| Alert {
            rule: rule.to_string(),
            source,
            severity,
            mitre,
            message,
            subject,
            time: event.time,
            container_id: event.container_id.clone(),
            image_digest: event.image_digest.clone(),
            node: event.node.clone(),
            pid: event.pid,
            comm: event.comm.clone(),
        };
        if let Some(profile) = (event.image_digest.as_ref()).and_then(|d| self.profiles.get(d))
            && let Some(anomaly) = profile.check(&event.kind)
        {
            out.push(alert(
                anomaly.rule,
                Source::Anomaly,
                anomaly.severity,
                anomaly.mitre.iter().map(|m| m.to_string()).collect(),
                anomaly.message,
                anomaly.subject,
            ));
        }
        self.rules.check(event, |rule, subject| {
            out.push(alert(
                &rule.id,
                Source::Behaviour,
                rule.severity,
                rule.mitre.clone(),
                format!("{}: {subject}", rule.description),
                subject,
            ));
        });
    }
}

#[cfg(test)]
mod tests;
