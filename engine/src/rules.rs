//! Behaviour rules: attack behaviour recognised in any container, with or without
//! a profile. Rules are data (YAML): the catalogue in `engine/rules/default.yaml`
//! is built in, and users' files add rules, replace them by id, disable them, or
//! except images and namespaces, without rebuilding.
//!
//! ```yaml
//! apiVersion: imprint.dev/v1
//! kind: RuleSet
//! rules:                       # new rules, or replacements by id
//!   - id: exec-from-tmp
//!     description: A program was executed from a temporary directory
//!     severity: high
//!     mitre: [T1059]
//!     when: {event: [exec], path: ["/tmp/**", "/dev/shm/**"]}
//! disable: [kubernetes-client-in-container]
//! exceptions:
//!   - rule: ptrace-attach
//!     images: ["sha256:…"]     # image digests
//!     namespaces: [debug]
//! ```
//!
//! A condition holds when the event's type is listed and every given field
//! matches (each list matches when any of its items does).

use imprint_schema::Digest;
use imprint_schema::names::{OpenFlags, UnknownOpenFlag};
use imprint_schema::pattern::{PatternError, PatternSet};
use serde::{Deserialize, Serialize};

use crate::alert::Severity;
use crate::event::{Event, EventKind};

/// The built-in catalogue.
pub const DEFAULT_RULES: &str = include_str!("../rules/default.yaml");

/// Why a rule file is refused.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// Not a rule set.
    #[error("{source_name}: {message}")]
    Invalid {
        /// The file.
        source_name: String,
        /// What is wrong, and where.
        message: String,
    },
}

/// When a rule fires.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Condition {
    /// Event types (`exec`, `open`, `connect`, `dns`…).
    pub event: Vec<String>,
    /// Path patterns (`*` one segment, `**` any): the exec'd or opened path, a
    /// memfd's name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<String>,
    /// Path prefixes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path_prefix: Vec<String>,
    /// The executable's file name, or argv[0]'s.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub basename: Vec<String>,
    /// Substrings of any argument.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub argv_contains: Vec<String>,
    /// An exec whose stdin or stdout is a socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin_or_stdout_socket: Option<bool>,
    /// Open flags, any of which must be set (`O_WRONLY`, `O_RDWR`, `O_CREAT`…).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open_flags_any: Vec<String>,
    /// Patterns of what a symlink or hard link points at.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target: Vec<String>,
    /// DNS name suffixes (`minexmr.com` matches `pool.minexmr.com`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_suffix: Vec<String>,
    /// Remote ports (connect), local ports (accept, bind).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port: Vec<u16>,
    /// ptrace requests (`PTRACE_ATTACH`…).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request: Vec<String>,
    /// bpf commands (`BPF_PROG_LOAD`…).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
}

/// One behaviour rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    /// Stable id.
    pub id: String,
    /// What it means.
    pub description: String,
    /// How bad.
    pub severity: Severity,
    /// MITRE ATT&CK techniques.
    #[serde(default)]
    pub mitre: Vec<String>,
    /// When it fires.
    pub when: Condition,
}

/// Images and namespaces a rule does not apply to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Exception {
    /// The rule.
    pub rule: String,
    /// Image digests.
    #[serde(default)]
    pub images: Vec<Digest>,
    /// Kubernetes namespaces.
    #[serde(default)]
    pub namespaces: Vec<String>,
}

/// A rule file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleFile {
    /// `imprint.dev/v1`.
    pub api_version: String,
    /// `RuleSet`.
    pub kind: String,
    /// Rules to add or replace.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Rule ids to turn off.
    #[serde(default)]
    pub disable: Vec<String>,
    /// Exceptions.
    #[serde(default)]
    pub exceptions: Vec<Exception>,
}

impl RuleFile {
    /// Parses and checks a rule file.
    pub fn parse(text: &str, source_name: &str) -> Result<RuleFile, RuleError> {
        let invalid = |message: String| RuleError::Invalid {
            source_name: source_name.to_string(),
            message,
        };
        let file: RuleFile = serde_saphyr::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if file.api_version != "imprint.dev/v1" || file.kind != "RuleSet" {
            return Err(invalid(format!(
                "apiVersion/kind are {}/{}, not imprint.dev/v1/RuleSet",
                file.api_version, file.kind
            )));
        }
        for (i, rule) in file.rules.iter().enumerate() {
            CompiledRule::new(rule)
                .map_err(|m| invalid(format!("rules[{i}] ({}): {m}", rule.id)))?;
        }
        Ok(file)
    }
}

const EVENT_TYPES: [&str; 19] = [
    "container_start",
    "exec",
    "open",
    "syscall",
    "capability",
    "connect",
    "accept",
    "bind",
    "dns",
    "memfd_create",
    "ptrace",
    "module_load",
    "bpf",
    "unshare",
    "setns",
    "symlink",
    "link",
    "fork",
    "exit",
];

/// Why one rule does not compile.
#[derive(Debug, thiserror::Error)]
enum RuleCompileError {
    /// `when.event` is empty.
    #[error("when.event names no event type")]
    NoEventType,
    /// `when.event` names a type there is no such event of.
    #[error("when.event: unknown event type {event:?}")]
    UnknownEventType { event: String },
    /// A `when.path` pattern does not parse.
    #[error("when.path {pattern:?}: {source}")]
    Path {
        pattern: String,
        #[source]
        source: PatternError,
    },
    /// A `when.target` pattern does not parse.
    #[error("when.target {pattern:?}: {source}")]
    Target {
        pattern: String,
        #[source]
        source: PatternError,
    },
    /// `when.openFlagsAny` names an unknown flag.
    #[error("when.openFlagsAny: {0}")]
    OpenFlag(#[source] UnknownOpenFlag),
}

#[derive(Debug, Clone)]
struct CompiledRule {
    rule: Rule,
    paths: PatternSet,
    targets: PatternSet,
    flags: OpenFlags,
    except_images: Vec<Digest>,
    except_namespaces: Vec<String>,
}

impl CompiledRule {
    fn new(rule: &Rule) -> Result<CompiledRule, RuleCompileError> {
        let when = &rule.when;
        if when.event.is_empty() {
            return Err(RuleCompileError::NoEventType);
        }
        for t in &when.event {
            if !EVENT_TYPES.contains(&t.as_str()) {
                return Err(RuleCompileError::UnknownEventType { event: t.clone() });
            }
        }
        let mut paths = PatternSet::new();
        for p in &when.path {
            paths.insert(p).map_err(|source| RuleCompileError::Path {
                pattern: p.clone(),
                source,
            })?;
        }
        let mut targets = PatternSet::new();
        for p in &when.target {
            targets
                .insert(p)
                .map_err(|source| RuleCompileError::Target {
                    pattern: p.clone(),
                    source,
                })?;
        }
        let flags = OpenFlags::from_names(when.open_flags_any.iter().map(String::as_str))
            .map_err(RuleCompileError::OpenFlag)?;
        Ok(CompiledRule {
            rule: rule.clone(),
            paths,
            targets,
            flags,
            except_images: Vec::new(),
            except_namespaces: Vec::new(),
        })
    }

    /// The subject when the rule fires on `event`.
    fn fires(&self, event: &Event) -> Option<String> {
        let w = &self.rule.when;
        if !w.event.iter().any(|t| t == event.kind.type_name()) {
            return None;
        }
        if (event.image_digest.as_ref()).is_some_and(|d| self.except_images.contains(d))
            || event
                .namespace
                .as_ref()
                .is_some_and(|n| self.except_namespaces.contains(n))
        {
            return None;
        }
        let path_ok = |path: &str| {
            (w.path.is_empty() || self.paths.is_match(path))
                && (w.path_prefix.is_empty()
                    || w.path_prefix.iter().any(|p| path.starts_with(p.as_str())))
        };
        let port_ok = |port: u16| w.port.is_empty() || w.port.contains(&port);
        match &event.kind {
            EventKind::Exec {
                path,
                argv,
                stdin_socket,
                stdout_socket,
                ..
            } => {
                let base = path.rsplit('/').next().unwrap_or(path);
                let arg0 = argv.first().map(|a| a.rsplit('/').next().unwrap_or(a));
                let ok = path_ok(path)
                    && (w.basename.is_empty()
                        || w.basename
                            .iter()
                            .any(|b| b == base || Some(b.as_str()) == arg0))
                    && (w.argv_contains.is_empty()
                        || argv
                            .iter()
                            .any(|a| w.argv_contains.iter().any(|s| a.contains(s.as_str()))))
                    && w.stdin_or_stdout_socket
                        .is_none_or(|want| want == (*stdin_socket || *stdout_socket));
                ok.then(|| argv.join(" ")).map(|a| {
                    if a.is_empty() {
                        path.clone()
                    } else {
                        format!("{path} ({a})")
                    }
                })
            }
            EventKind::Open { path, flags } => {
                let ok = path_ok(path)
                    && (w.open_flags_any.is_empty() || flags.bits() & self.flags.bits() != 0);
                ok.then(|| path.clone())
            }
            EventKind::MemfdCreate { name } => path_ok(name).then(|| name.clone()),
            EventKind::Symlink { target, link_path } | EventKind::Link { target, link_path } => {
                let ok =
                    (w.target.is_empty() || self.targets.is_match(target)) && path_ok(link_path);
                ok.then(|| format!("{link_path} -> {target}"))
            }
            EventKind::Dns { name, .. } => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                let ok = w.dns_suffix.is_empty()
                    || w.dns_suffix
                        .iter()
                        .any(|s| name == *s || name.ends_with(&format!(".{s}")));
                ok.then_some(name)
            }
            EventKind::Connect { address, port, .. }
            | EventKind::Accept { address, port, .. }
            | EventKind::Bind { address, port, .. } => {
                port_ok(*port).then(|| format!("{address}:{port}"))
            }
            EventKind::Ptrace {
                request,
                target_pid,
            } => (w.request.is_empty() || w.request.contains(request))
                .then(|| format!("{request} pid {target_pid}")),
            EventKind::Bpf { command } => {
                (w.command.is_empty() || w.command.contains(command)).then(|| command.clone())
            }
            EventKind::ModuleLoad { syscall, name } => {
                Some(name.clone().unwrap_or_else(|| syscall.clone()))
            }
            EventKind::Unshare { flags } => Some(flags.join("|")),
            EventKind::Setns { nstype } => Some(nstype.clone().unwrap_or_else(|| "setns".into())),
            EventKind::Syscall { name } | EventKind::Capability { name } => Some(name.clone()),
            _ => Some(event.kind.type_name().to_string()),
        }
    }
}

/// Compiled rules, by event type.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<CompiledRule>,
}

impl RuleSet {
    /// The built-in catalogue.
    pub fn builtin() -> RuleSet {
        RuleSet::build(&[
            RuleFile::parse(DEFAULT_RULES, "default.yaml").expect("the built-in rules are valid")
        ])
    }

    /// The rules of `files`, applied in order: later rules replace earlier ones of
    /// the same id; `disable` and `exceptions` apply to what is there.
    pub fn build(files: &[RuleFile]) -> RuleSet {
        let mut rules: Vec<CompiledRule> = Vec::new();
        for file in files {
            for rule in &file.rules {
                let compiled = CompiledRule::new(rule).expect("checked when parsed");
                match rules.iter_mut().find(|r| r.rule.id == rule.id) {
                    Some(existing) => *existing = compiled,
                    None => rules.push(compiled),
                }
            }
            rules.retain(|r| !file.disable.contains(&r.rule.id));
            for e in &file.exceptions {
                if let Some(r) = rules.iter_mut().find(|r| r.rule.id == e.rule) {
                    r.except_images.extend(e.images.iter().cloned());
                    r.except_namespaces.extend(e.namespaces.iter().cloned());
                }
            }
        }
        RuleSet { rules }
    }

    /// The rules in force.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().map(|r| &r.rule)
    }

    /// Calls `fire` for every rule that fires on `event`, with the alert's subject.
    pub fn check(&self, event: &Event, mut fire: impl FnMut(&Rule, String)) {
        for r in &self.rules {
            if let Some(subject) = r.fires(event) {
                fire(&r.rule, subject);
            }
        }
    }
}

#[cfg(test)]
mod tests;
