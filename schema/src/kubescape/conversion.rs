//! Conversion of one Kubescape container into a profile: execs, opens, syscalls and
//! capabilities; the network goes through [`super::network`].

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::documents::DocInfo;
use super::model::KContainer;
use super::network::{convert_legacy_network, convert_neighbour};
use super::notes::Notes;
use super::{DYNAMIC, DYNAMIC_TRAILING, MAX_LISTED};
use crate::digest::Digest;
use crate::names::{OpenFlags, is_syscall_name, normalize_capability};
use crate::pattern;
use crate::profile::{Exec, Open, Profile};

pub(super) fn convert(c: &KContainer, doc: &DocInfo, digest: Digest, notes: &mut Notes) -> Profile {
    let mut p = Profile::new(digest);
    let tag = c.image_tag.trim();
    if !tag.is_empty() {
        p.image.reference = Some(tag.to_string());
    }
    p.image.platform = platform_of(&c.architectures);
    p.learning = doc.learning.clone();

    convert_execs(c, &mut p, doc.args_have_argv0, notes);
    convert_opens(c, &mut p, notes);
    convert_syscalls(c, &mut p, notes);
    convert_capabilities(c, &mut p, notes);
    if !c.endpoints.is_empty() {
        notes.push(format!(
            "skipped {} HTTP endpoint(s): imprint profiles have no HTTP endpoint rules",
            c.endpoints.len()
        ));
    }
    let mut dropped = Vec::new();
    for (direction, neighbours, peers) in [
        ("egress", &c.egress, &mut p.network.egress),
        ("ingress", &c.ingress, &mut p.network.ingress),
    ] {
        for (i, n) in neighbours.iter().enumerate() {
            convert_neighbour(n, &format!("{direction}[{i}]"), peers, &mut dropped, notes);
        }
    }
    convert_legacy_network(c, &mut p, &mut dropped);
    notes.dropped("network entries imprint cannot express", &dropped);
    p.normalized()
}

/// `linux/<arch>` when the profile was learned on exactly one architecture.
fn platform_of(architectures: &[String]) -> Option<String> {
    let distinct: BTreeSet<&str> = architectures
        .iter()
        .map(|a| a.trim())
        .filter(|a| !a.is_empty())
        .collect();
    let [arch] = distinct.into_iter().collect::<Vec<_>>()[..] else {
        return None;
    };
    arch.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        .then(|| format!("linux/{arch}"))
}

fn convert_execs(c: &KContainer, p: &mut Profile, args_have_argv0: bool, notes: &mut Notes) {
    let execs: Vec<(&str, Vec<String>)> = c
        .execs
        .iter()
        .map(|e| (e.path.as_str(), e.args.iter().map(arg_text).collect()))
        .collect();
    let sorted = execs
        .iter()
        .any(|(path, args)| shows_sorted_args(path, args));
    let mut unordered = 0usize;
    let mut dropped = Vec::new();
    for (path, args) in &execs {
        let pattern = match map_path(path) {
            Ok((pattern, broadened)) => {
                if broadened {
                    notes.push(format!(
                        "exec {path:?}: a segment with {DYNAMIC} inside it became * (any name)"
                    ));
                }
                pattern
            }
            Err(why) => {
                dropped.push(format!("{path:?} ({why})"));
                continue;
            }
        };
        if args.iter().any(|a| a.contains('\0')) {
            dropped.push(format!("{path:?} (NUL byte in an argument)"));
            continue;
        }
        let args = if sorted && !has_arg_tokens(args) {
            sorted_args(path, args, &mut unordered)
        } else {
            positional_args(path, args, args_have_argv0, notes)
        };
        p.execs.push(Exec {
            path: pattern,
            args,
        });
    }
    if unordered > 0 {
        notes.push(format!(
            "{unordered} exec(s) were recorded with sorted arguments, so their order is lost: imported as any arguments"
        ));
    }
    notes.dropped("exec(s)", &dropped);
}

/// An argument as text (YAML may give a number or boolean).
fn arg_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn is_argv0(arg: &str, path: &str) -> bool {
    arg == path || (!arg.is_empty() && basename(arg) == basename(path))
}

fn has_arg_tokens(args: &[String]) -> bool {
    args.iter().any(|a| a.contains(DYNAMIC))
}

/// Whether a list shows the older sorted recording: sorted, and `argv[0]` appears
/// later than first.
fn shows_sorted_args(path: &str, args: &[String]) -> bool {
    args.len() >= 2
        && !has_arg_tokens(args)
        && !is_argv0(&args[0], path)
        && args.windows(2).all(|w| w[0] <= w[1])
        && args[1..].iter().any(|a| is_argv0(a, path))
}

fn sorted_args(path: &str, args: &[String], unordered: &mut usize) -> Option<Vec<String>> {
    if args.is_empty() {
        return None;
    }
    let mut rest = args.to_vec();
    match rest.iter().position(|a| is_argv0(a, path)) {
        Some(i) => {
            rest.remove(i);
        }
        None if rest.len() == 1 => rest.clear(),
        None => {}
    }
    if rest.len() <= 1 && rest.len() < args.len() {
        Some(rest)
    } else {
        *unordered += 1;
        None
    }
}

fn positional_args(
    path: &str,
    args: &[String],
    args_have_argv0: bool,
    notes: &mut Notes,
) -> Option<Vec<String>> {
    // No arguments recorded at all: any arguments (see `import`).
    if args.is_empty() {
        return None;
    }
    if args.iter().any(|a| a == DYNAMIC_TRAILING) {
        notes.push(format!(
            "exec {path:?}: {DYNAMIC_TRAILING} (any trailing arguments) has no imprint equivalent: imported as any arguments"
        ));
        return None;
    }
    // kapprofiler-era lists mostly lack argv[0], but not always: drop the first
    // argument there only when it looks like argv[0].
    let skip = args_have_argv0 || is_argv0(&args[0], path);
    let after_argv0 = &args[usize::from(skip)..];
    let mut out = Vec::with_capacity(after_argv0.len());
    for arg in after_argv0 {
        if arg == DYNAMIC {
            out.push("*".to_string());
        } else if arg.contains(DYNAMIC) {
            notes.push(format!(
                "exec {path:?}: argument {arg:?} became * (any one argument)"
            ));
            out.push("*".to_string());
        } else {
            if arg == "*" {
                notes.push(format!(
                    "exec {path:?}: the literal argument \"*\" is a wildcard (any one argument) in imprint"
                ));
            }
            out.push(arg.clone());
        }
    }
    Some(out)
}

/// Why a Kubescape path has no imprint pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum PathMapError {
    /// The path is empty.
    #[error("empty path")]
    Empty,
    /// The path holds a NUL byte.
    #[error("NUL byte")]
    Nul,
    /// The path does not start at `/`.
    #[error("relative path")]
    Relative,
    /// A segment has `*` beside other characters.
    #[error("'*' inside segment {segment:?} cannot be expressed in an imprint pattern")]
    PartialWildcard { segment: String },
    /// The mapped pattern does not parse.
    #[error(transparent)]
    Pattern(#[from] pattern::PatternError),
}

/// Maps a Kubescape path to an imprint pattern; `true` when a segment was broadened.
pub(super) fn map_path(raw: &str) -> Result<(String, bool), PathMapError> {
    if raw.is_empty() {
        return Err(PathMapError::Empty);
    }
    if raw.contains('\0') {
        return Err(PathMapError::Nul);
    }
    let normal = pattern::normalize_path(raw).ok_or(PathMapError::Relative)?;
    let mut out = String::with_capacity(normal.len());
    let mut broadened = false;
    let mut after_globstar = false;
    for seg in normal.split('/').filter(|s| !s.is_empty()) {
        let mapped = if seg == DYNAMIC {
            "*"
        } else if seg == "*" || seg == "**" {
            "**"
        } else if seg.contains(DYNAMIC) {
            broadened = true;
            "*"
        } else if seg.contains('*') {
            return Err(PathMapError::PartialWildcard {
                segment: seg.to_string(),
            });
        } else {
            seg
        };
        if mapped == "**" {
            if after_globstar {
                continue;
            }
            after_globstar = true;
        } else {
            after_globstar = false;
        }
        out.push('/');
        out.push_str(mapped);
    }
    if out.is_empty() {
        out.push('/');
    }
    pattern::parse(&out)?;
    Ok((out, broadened))
}

fn convert_opens(c: &KContainer, p: &mut Profile, notes: &mut Notes) {
    let mut unknown: BTreeMap<&str, usize> = BTreeMap::new();
    let mut dropped = Vec::new();
    let mut broadened = Vec::new();
    for o in &c.opens {
        let pattern = match map_path(&o.path) {
            Ok((pattern, b)) => {
                if b {
                    broadened.push(format!("{:?}", o.path));
                }
                pattern
            }
            Err(why) => {
                dropped.push(format!("{:?} ({why})", o.path));
                continue;
            }
        };
        let mut flags = OpenFlags::EMPTY;
        for name in &o.flags {
            match OpenFlags::from_name(name.trim()) {
                Some(f) => flags |= f,
                None => *unknown.entry(name.as_str()).or_default() += 1,
            }
        }
        p.opens.push(Open {
            path: pattern,
            flags,
        });
    }
    if !broadened.is_empty() {
        notes.push(format!(
            "{} open path(s) had {DYNAMIC} inside a segment, which became * (any name): {}",
            broadened.len(),
            broadened
                .iter()
                .take(MAX_LISTED)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !unknown.is_empty() {
        let list: Vec<String> = unknown
            .iter()
            .map(|(name, n)| format!("{name:?} ({n} open(s))"))
            .collect();
        notes.push(format!("skipped unknown open flag(s): {}", list.join(", ")));
    }
    notes.dropped("open(s)", &dropped);
}

fn convert_syscalls(c: &KContainer, p: &mut Profile, notes: &mut Notes) {
    let mut dropped = Vec::new();
    for name in &c.syscalls {
        if is_syscall_name(name) {
            p.syscalls.push(name.clone());
        } else {
            dropped.push(format!("{name:?}"));
        }
    }
    let recorded: BTreeSet<&str> = c.syscalls.iter().map(String::as_str).collect();
    let mut added = BTreeSet::new();
    for name in seccomp_allowed(&c.seccomp_profile) {
        if !is_syscall_name(&name) {
            dropped.push(format!("{name:?} (from seccompProfile)"));
        } else {
            if !recorded.contains(name.as_str()) {
                added.insert(name.clone());
            }
            p.syscalls.push(name);
        }
    }
    if !added.is_empty() {
        notes.push(format!(
            "took {} syscall name(s) from the container's seccompProfile allow rules",
            added.len()
        ));
    }
    notes.dropped("syscall name(s)", &dropped);
}

/// The syscall names a recorded seccomp profile allows, when it is an allow-list
/// (its default action denies).
fn seccomp_allowed(seccomp: &Value) -> Vec<String> {
    fn field<'a>(v: &'a Value, names: &[&str]) -> Option<&'a Value> {
        names.iter().find_map(|n| v.get(n)).filter(|v| !v.is_null())
    }
    fn allows(action: Option<&Value>) -> bool {
        matches!(
            action.and_then(Value::as_str),
            Some("SCMP_ACT_ALLOW" | "SCMP_ACT_LOG")
        )
    }
    let Some(spec) = field(seccomp, &["spec", "Spec"]) else {
        return Vec::new();
    };
    let default = field(spec, &["defaultAction", "DefaultAction"]);
    if default.and_then(Value::as_str).unwrap_or("").is_empty() || allows(default) {
        return Vec::new();
    }
    let Some(Value::Array(rules)) = field(spec, &["syscalls", "Syscalls"]) else {
        return Vec::new();
    };
    rules
        .iter()
        .filter(|r| allows(field(r, &["action", "Action"])))
        .filter_map(|r| match field(r, &["names", "Names"]) {
            Some(Value::Array(names)) => Some(names),
            _ => None,
        })
        .flatten()
        .filter_map(|n| n.as_str().map(str::to_string))
        .collect()
}

fn convert_capabilities(c: &KContainer, p: &mut Profile, notes: &mut Notes) {
    let mut dropped = Vec::new();
    let mut add = |value: &Value, dropped: &mut Vec<String>| match value
        .as_str()
        .and_then(normalize_capability)
    {
        Some(name) => p.capabilities.push(name.to_string()),
        None => dropped.push(value.to_string()),
    };
    for value in &c.capabilities {
        match value {
            // kapprofiler: {caps: [NAME...], syscall: name}
            Value::Object(obj) => match obj.get("caps") {
                Some(Value::Array(caps)) => caps.iter().for_each(|v| add(v, &mut dropped)),
                _ => dropped.push(value.to_string()),
            },
            other => add(other, &mut dropped),
        }
    }
    notes.dropped("unknown capabilit(ies)", &dropped);
}
