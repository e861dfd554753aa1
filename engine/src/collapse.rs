//! Collapsing dynamic paths into patterns.
//!
//! Containers create paths nobody can list in advance: `/proc/4711/stat`,
//! `/tmp/upload-8f3a…`. A directory with more distinct children than a threshold
//! becomes `*` (its children's subtrees are merged under it), and a run of adjacent
//! wildcards becomes `**`. The threshold is configurable per path prefix, because
//! `/proc` wants a low one and `/usr/share/zoneinfo` a high one.

use std::collections::BTreeMap;

/// Thresholds for collapsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollapseConfig {
    /// A directory with more distinct children than this becomes `*` (default 50).
    pub threshold: usize,
    /// Per-prefix thresholds: the longest prefix (on segment boundaries) that contains
    /// a directory sets its threshold.
    pub overrides: Vec<(String, usize)>,
}

impl Default for CollapseConfig {
    fn default() -> Self {
        CollapseConfig {
            threshold: 50,
            overrides: Vec::new(),
        }
    }
}

impl CollapseConfig {
    /// The threshold for the directory at `dir` (`/` for the root).
    pub fn threshold_for(&self, dir: &str) -> usize {
        let mut best: Option<(usize, usize)> = None;
        for (prefix, threshold) in &self.overrides {
            let prefix = prefix.trim_end_matches('/');
            let inside = prefix.is_empty()
                || dir == prefix
                || (dir.starts_with(prefix) && dir.as_bytes().get(prefix.len()) == Some(&b'/'));
            if inside && best.is_none_or(|(len, _)| prefix.len() >= len) {
                best = Some((prefix.len(), *threshold));
            }
        }
        best.map_or(self.threshold, |(_, t)| t)
    }
}

struct Node<V> {
    value: Option<V>,
    children: BTreeMap<String, Node<V>>,
}

impl<V> Node<V> {
    fn new() -> Self {
        Node {
            value: None,
            children: BTreeMap::new(),
        }
    }
}

/// Collapses absolute paths (each with a value, such as open flags) into patterns.
/// Values of paths that collapse into one pattern are combined with `join`. The
/// output is sorted by pattern and has one entry per pattern.
pub(crate) fn collapse<V: Clone>(
    paths: impl IntoIterator<Item = (String, V)>,
    config: &CollapseConfig,
    join: impl Fn(&mut V, &V) + Copy,
) -> Vec<(String, V)> {
    let mut root = Node::new();
    for (path, value) in paths {
        let mut node = &mut root;
        for seg in path.split('/').filter(|s| !s.is_empty()) {
            node = node
                .children
                .entry(seg.to_string())
                .or_insert_with(Node::new);
        }
        join_value(&mut node.value, &value, join);
    }
    collapse_node(&mut root, "", config, join);
    let mut out: BTreeMap<String, V> = BTreeMap::new();
    let mut segments = Vec::new();
    emit(&root, &mut segments, &mut out, join);
    out.into_iter().collect()
}

fn join_value<V: Clone>(slot: &mut Option<V>, value: &V, join: impl Fn(&mut V, &V)) {
    match slot {
        Some(v) => join(v, value),
        None => *slot = Some(value.clone()),
    }
}

fn merge_into<V: Clone>(into: &mut Node<V>, from: Node<V>, join: impl Fn(&mut V, &V) + Copy) {
    if let Some(v) = &from.value {
        join_value(&mut into.value, v, join);
    }
    for (name, child) in from.children {
        match into.children.get_mut(&name) {
            Some(existing) => merge_into(existing, child, join),
            None => {
                into.children.insert(name, child);
            }
        }
    }
}

fn collapse_node<V: Clone>(
    node: &mut Node<V>,
    dir: &str,
    config: &CollapseConfig,
    join: impl Fn(&mut V, &V) + Copy,
) {
    let countable = node.children.keys().filter(|k| k.as_str() != "**").count();
    let threshold = config.threshold_for(if dir.is_empty() { "/" } else { dir });
    if countable > threshold {
        let names: Vec<String> = node
            .children
            .keys()
            .filter(|k| k.as_str() != "**")
            .cloned()
            .collect();
        let mut star = Node::new();
        for name in names {
            if let Some(child) = node.children.remove(&name) {
                merge_into(&mut star, child, join);
            }
        }
        node.children.insert("*".to_string(), star);
    }
    for (name, child) in node.children.iter_mut() {
        let path = format!("{dir}/{name}");
        collapse_node(child, &path, config, join);
    }
}

fn emit<V: Clone>(
    node: &Node<V>,
    segments: &mut Vec<String>,
    out: &mut BTreeMap<String, V>,
    join: impl Fn(&mut V, &V) + Copy,
) {
    if let Some(v) = &node.value {
        let pattern = join_wildcards(segments);
        match out.get_mut(&pattern) {
            Some(existing) => join(existing, v),
            None => {
                out.insert(pattern, v.clone());
            }
        }
    }
    for (name, child) in &node.children {
        segments.push(name.clone());
        emit(child, segments, out, join);
        segments.pop();
    }
}

/// Builds the pattern, turning each run of two or more wildcards into one `**`.
fn join_wildcards(segments: &[String]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < segments.len() {
        let mut j = i;
        while j < segments.len() && (segments[j] == "*" || segments[j] == "**") {
            j += 1;
        }
        out.push('/');
        if j - i >= 2 {
            out.push_str("**");
            i = j;
        } else {
            out.push_str(&segments[i]);
            i += 1;
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use imprint_schema::pattern;
    use proptest::prelude::*;

    fn or(a: &mut u32, b: &u32) {
        *a |= *b;
    }

    fn run(paths: &[(&str, u32)], config: &CollapseConfig) -> Vec<(String, u32)> {
        collapse(paths.iter().map(|(p, v)| (p.to_string(), *v)), config, or)
    }

    #[test]
    fn below_threshold_stays_literal() {
        let cfg = CollapseConfig {
            threshold: 3,
            overrides: vec![],
        };
        let out = run(&[("/etc/passwd", 1), ("/etc/group", 2)], &cfg);
        assert_eq!(
            out,
            vec![("/etc/group".into(), 2), ("/etc/passwd".into(), 1)]
        );
    }

    #[test]
    fn many_children_collapse_and_merge_values() {
        let cfg = CollapseConfig {
            threshold: 3,
            overrides: vec![],
        };
        let paths: Vec<(String, u32)> = (0..10)
            .map(|i| (format!("/proc/{i}/stat"), 1 << (i % 2)))
            .chain([("/proc/self/status".to_string(), 4)])
            .collect();
        let out = collapse(paths, &cfg, or);
        assert_eq!(
            out,
            vec![("/proc/*/stat".into(), 3), ("/proc/*/status".into(), 4)]
        );
    }

    #[test]
    fn adjacent_wildcards_become_globstar() {
        let cfg = CollapseConfig {
            threshold: 2,
            overrides: vec![],
        };
        let paths: Vec<(String, u32)> = (0..4)
            .flat_map(|i| (0..4).map(move |j| (format!("/cache/{i}/{j}"), 1)))
            .collect();
        assert_eq!(collapse(paths, &cfg, or), vec![("/cache/**".into(), 1)]);
    }

    #[test]
    fn overrides_pick_longest_prefix() {
        let cfg = CollapseConfig {
            threshold: 50,
            overrides: vec![("/proc".into(), 2), ("/proc/sys".into(), 100)],
        };
        assert_eq!(cfg.threshold_for("/proc"), 2);
        assert_eq!(cfg.threshold_for("/proc/1"), 2);
        assert_eq!(cfg.threshold_for("/proc/sys/net"), 100);
        assert_eq!(cfg.threshold_for("/procfs"), 50);
        let paths: Vec<(String, u32)> = (0..5)
            .map(|i| (format!("/proc/{i}"), 1))
            .chain((0..5).map(|i| (format!("/data/{i}"), 1)))
            .collect();
        let out = collapse(paths, &cfg, or);
        assert!(out.contains(&("/proc/*".into(), 1)));
        assert!(out.contains(&("/data/4".into(), 1)));
    }

    proptest! {
        /// Every input path is matched by some output pattern, with its value included,
        /// and every output is a valid pattern.
        #[test]
        fn collapsed_patterns_cover_their_inputs(
            paths in prop::collection::vec(("/[a-e]{1,2}(/[a-e]{1,2}){0,3}", 1u32..16), 1..60),
            threshold in 1usize..6,
        ) {
            let cfg = CollapseConfig { threshold, overrides: vec![] };
            let out = collapse(paths.iter().cloned(), &cfg, or);
            for (p, _) in &out {
                prop_assert!(pattern::parse(p).is_ok(), "{}", p);
            }
            for (path, value) in &paths {
                let covered = out.iter().any(|(p, v)| pattern::matches(p, path) && v & value == *value);
                prop_assert!(covered, "{} not covered by {:?}", path, out);
            }
        }
    }
}
