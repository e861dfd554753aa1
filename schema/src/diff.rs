//! Comparing and patching profiles: a unified diff of the canonical YAML for review,
//! an RFC 6902 JSON Patch for machines, and a per-category summary of added and
//! removed behaviour.

use serde::Serialize;

use crate::document::{DocumentError, to_yaml};
use crate::profile::Profile;
use crate::validate::validate;

/// A unified diff of the two profiles' canonical YAML; empty when they are equal.
pub fn unified_diff(a: &Profile, b: &Profile, a_name: &str, b_name: &str) -> String {
    let (ya, yb) = (to_yaml(a), to_yaml(b));
    if ya == yb {
        return String::new();
    }
    similar::TextDiff::from_lines(&ya, &yb)
        .unified_diff()
        .context_radius(3)
        .header(a_name, b_name)
        .to_string()
}

/// The RFC 6902 patch that turns `a` into `b` (both normalised first).
pub fn json_patch(a: &Profile, b: &Profile) -> json_patch::Patch {
    let va = serde_json::to_value(a.clone().normalized()).expect("profiles serialize");
    let vb = serde_json::to_value(b.clone().normalized()).expect("profiles serialize");
    json_patch::diff(&va, &vb)
}

/// Why a patch could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// An operation failed (a `test` did not hold, a path did not exist...).
    #[error("patch operation {index} ({op}) failed: {message}")]
    Operation {
        /// Index of the failing operation.
        index: usize,
        /// Its `op`.
        op: String,
        /// Why.
        message: String,
    },
    /// The patched document is not a valid profile.
    #[error("the patched profile is not valid: {0}")]
    Result(DocumentError),
}

/// Applies an RFC 6902 patch to a profile and checks that the result is a valid
/// profile. The input is not changed when any operation fails.
pub fn apply_patch(profile: &Profile, patch: &json_patch::Patch) -> Result<Profile, PatchError> {
    let mut doc = serde_json::to_value(profile.clone().normalized()).expect("profiles serialize");
    json_patch::patch(&mut doc, patch).map_err(|e| {
        let op = patch
            .0
            .get(e.operation)
            .and_then(|o| serde_json::to_value(o).ok())
            .and_then(|v| v.get("op").and_then(|o| o.as_str()).map(str::to_string))
            .unwrap_or_default();
        PatchError::Operation {
            index: e.operation,
            op,
            message: e.kind.to_string(),
        }
    })?;
    let patched: Profile = serde_json::from_value(doc).map_err(|e| {
        PatchError::Result(DocumentError::Syntax {
            position: None,
            field: None,
            message: e.to_string(),
        })
    })?;
    let issues = validate(&patched);
    if !issues.is_empty() {
        return Err(PatchError::Result(DocumentError::Invalid(issues)));
    }
    Ok(patched.normalized())
}

/// Behaviour entries added and removed in one category.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// In the second profile only.
    pub added: Vec<serde_json::Value>,
    /// In the first profile only.
    pub removed: Vec<serde_json::Value>,
}

/// What changed between two profiles, by category; categories without change are omitted.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// `image` or `learning` changed.
    pub metadata_changed: bool,
    /// Per category (`execs`, `opens`, `syscalls`, `capabilities`,
    /// `network.egress`, `network.ingress`).
    pub changes: std::collections::BTreeMap<String, Change>,
}

impl Summary {
    /// Whether the profiles are the same.
    pub fn is_empty(&self) -> bool {
        !self.metadata_changed && self.changes.is_empty()
    }
}

/// Summarises the difference from `a` to `b`. An open whose flags changed shows as
/// removed with its old flags and added with its new ones.
pub fn summarize(a: &Profile, b: &Profile) -> Summary {
    let (a, b) = (a.clone().normalized(), b.clone().normalized());
    let mut summary = Summary {
        metadata_changed: a.image != b.image || a.learning != b.learning,
        ..Summary::default()
    };
    fn values<T: Serialize>(items: &[T]) -> Vec<serde_json::Value> {
        items
            .iter()
            .map(|i| serde_json::to_value(i).expect("entries serialize"))
            .collect()
    }
    let pairs = [
        ("execs", values(&a.execs), values(&b.execs)),
        ("opens", values(&a.opens), values(&b.opens)),
        ("syscalls", values(&a.syscalls), values(&b.syscalls)),
        (
            "capabilities",
            values(&a.capabilities),
            values(&b.capabilities),
        ),
        (
            "network.egress",
            values(&a.network.egress),
            values(&b.network.egress),
        ),
        (
            "network.ingress",
            values(&a.network.ingress),
            values(&b.network.ingress),
        ),
    ];
    for (name, old, new) in pairs {
        let change = Change {
            added: new.iter().filter(|v| !old.contains(v)).cloned().collect(),
            removed: old.iter().filter(|v| !new.contains(v)).cloned().collect(),
        };
        if !change.added.is_empty() || !change.removed.is_empty() {
            summary.changes.insert(name.to_string(), change);
        }
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Exec;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn pair() -> (Profile, Profile) {
        let mut a = Profile::new(DIGEST.parse().unwrap());
        a.syscalls = vec!["read".into(), "write".into()];
        a.execs.push(Exec {
            path: "/bin/sh".into(),
            args: None,
        });
        let mut b = a.clone();
        b.syscalls.push("openat".into());
        b.execs.clear();
        (a, b)
    }

    #[test]
    fn unified_diff_shows_lines() {
        let (a, b) = pair();
        let d = unified_diff(&a, &b, "a.yaml", "b.yaml");
        assert!(d.starts_with("--- a.yaml\n+++ b.yaml\n"), "{d}");
        assert!(d.contains("+- openat") || d.contains("+  - openat"), "{d}");
        assert!(
            d.contains("-  path: /bin/sh") || d.contains("/bin/sh"),
            "{d}"
        );
        assert_eq!(unified_diff(&a, &a, "a", "a"), "");
    }

    #[test]
    fn patch_round_trips() {
        let (a, b) = pair();
        let patch = json_patch(&a, &b);
        assert!(!patch.0.is_empty());
        assert_eq!(apply_patch(&a, &patch).unwrap(), b.normalized());
    }

    #[test]
    fn patch_that_breaks_the_profile_is_refused() {
        let (a, _) = pair();
        let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
            {"op": "add", "path": "/opens/-", "value": {"path": "relative", "flags": ["O_RDONLY"]}}
        ]))
        .unwrap();
        let err = apply_patch(&a, &patch).unwrap_err();
        assert!(err.to_string().contains("opens[0].path"), "{err}");
    }

    #[test]
    fn failing_test_op_is_named() {
        let (a, _) = pair();
        let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
            {"op": "test", "path": "/kind", "value": "Other"}
        ]))
        .unwrap();
        let err = apply_patch(&a, &patch).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("patch operation 0 (test) failed"),
            "{err}"
        );
    }

    #[test]
    fn summary_lists_added_and_removed() {
        let (a, b) = pair();
        let s = summarize(&a, &b);
        assert_eq!(
            s.changes["syscalls"].added,
            vec![serde_json::json!("openat")]
        );
        assert_eq!(s.changes["execs"].removed.len(), 1);
        assert!(!s.metadata_changed);
        assert!(summarize(&a, &a).is_empty());
    }
}
