//! Path patterns: `*` matches exactly one path segment, `**` any number (zero or more).
//!
//! Wildcards are whole segments only (`/proc/*/stat`, `/usr/**/lib`): a segment such as
//! `lib*.so` is rejected rather than silently taken literally. [`PatternSet`] compiles
//! many patterns into one segment trie, so a lookup costs the path's depth, not the
//! number of patterns.

use std::borrow::Cow;
use std::fmt;

use rustc_hash::FxHashMap;

/// Why a path pattern does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// The pattern is empty.
    #[error("empty path")]
    Empty,
    /// The pattern does not start with `/`.
    #[error("path must be absolute (start with '/')")]
    NotAbsolute,
    /// Two slashes in a row, or a trailing slash.
    #[error("empty path segment at byte {0}")]
    EmptySegment(usize),
    /// A `.` or `..` segment.
    #[error("segment {0:?} is not allowed; write the resolved path")]
    DotSegment(String),
    /// A `*` inside a segment with other characters, or `***`.
    #[error("wildcard in segment {0:?}: '*' and '**' must be whole segments")]
    PartialWildcard(String),
    /// A NUL byte.
    #[error("NUL byte in path")]
    Nul,
    /// Longer than [`MAX_PATTERN_LEN`].
    #[error("path is {0} bytes long, more than the limit of {MAX_PATTERN_LEN}")]
    TooLong(usize),
}

/// Longest accepted pattern, in bytes (Linux's PATH_MAX).
pub const MAX_PATTERN_LEN: usize = 4096;

/// One segment of a parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment<'a> {
    /// A literal name.
    Literal(&'a str),
    /// `*`: exactly one segment.
    Star,
    /// `**`: zero or more segments.
    GlobStar,
}

/// Checks a pattern and returns its segments.
pub fn parse(pattern: &str) -> Result<Vec<Segment<'_>>, PatternError> {
    if pattern.is_empty() {
        return Err(PatternError::Empty);
    }
    if pattern.len() > MAX_PATTERN_LEN {
        return Err(PatternError::TooLong(pattern.len()));
    }
    if pattern.contains('\0') {
        return Err(PatternError::Nul);
    }
    let Some(rest) = pattern.strip_prefix('/') else {
        return Err(PatternError::NotAbsolute);
    };
    if rest.is_empty() {
        return Ok(Vec::new()); // "/" itself
    }
    let mut segments = Vec::new();
    let mut offset = 1;
    for seg in rest.split('/') {
        if seg.is_empty() {
            return Err(PatternError::EmptySegment(offset));
        }
        segments.push(match seg {
            "*" => Segment::Star,
            "**" => Segment::GlobStar,
            "." | ".." => return Err(PatternError::DotSegment(seg.to_string())),
            s if s.contains('*') => return Err(PatternError::PartialWildcard(s.to_string())),
            s => Segment::Literal(s),
        });
        offset += seg.len() + 1;
    }
    Ok(segments)
}

/// Whether a pattern holds a wildcard.
pub fn has_wildcard(pattern: &str) -> bool {
    pattern.contains('*')
}

/// Matches one pattern against one path by walking both; the naive baseline for
/// [`PatternSet`] and the reference its property tests compare against.
pub fn matches(pattern: &str, path: &str) -> bool {
    match parse(pattern) {
        Ok(segments) => matches_parsed(&segments, path),
        Err(_) => false,
    }
}

/// [`matches`] for a pattern already split by [`parse`].
pub fn matches_parsed(pattern: &[Segment<'_>], path: &str) -> bool {
    let Some(path) = path.strip_prefix('/') else {
        return false;
    };
    let path: Vec<&str> = if path.is_empty() {
        Vec::new()
    } else {
        path.split('/').collect()
    };
    fn go(p: &[Segment<'_>], s: &[&str]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some((Segment::GlobStar, rest)) => (0..=s.len()).any(|i| go(rest, &s[i..])),
            Some((Segment::Star, rest)) => !s.is_empty() && go(rest, &s[1..]),
            Some((Segment::Literal(l), rest)) => s.first() == Some(l) && go(rest, &s[1..]),
        }
    }
    go(pattern, &path)
}

/// Lexically normalises an absolute path: collapses `//`, drops `.`, resolves `..`,
/// and removes a trailing slash. Borrows when the path is already clean (the common
/// case on a hot path). `None` for a relative path or a NUL byte.
pub fn normalize_path(path: &str) -> Option<Cow<'_, str>> {
    if !path.starts_with('/') || path.contains('\0') {
        return None;
    }
    let clean = !path.contains("//")
        && !path.contains("/./")
        && !path.contains("/../")
        && !path.ends_with("/.")
        && !path.ends_with("/..")
        && (path.len() == 1 || !path.ends_with('/'));
    if clean {
        return Some(Cow::Borrowed(path));
    }
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    let mut out = String::with_capacity(path.len());
    for p in &parts {
        out.push('/');
        out.push_str(p);
    }
    if out.is_empty() {
        out.push('/');
    }
    Some(Cow::Owned(out))
}

#[derive(Debug, Default, Clone)]
struct Node {
    literal: FxHashMap<Box<str>, u32>,
    star: Option<u32>,
    globstar: Option<u32>,
    /// Indices of the patterns that end at this node.
    terminal: Vec<u32>,
}

/// Many path patterns compiled into a segment trie.
///
/// Each inserted pattern gets an index (its insertion order); a lookup reports the
/// indices of every pattern that matches.
#[derive(Clone)]
pub struct PatternSet {
    nodes: Vec<Node>,
    len: u32,
}

impl Default for PatternSet {
    fn default() -> Self {
        PatternSet::new()
    }
}

impl fmt::Debug for PatternSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PatternSet")
            .field("patterns", &self.len)
            .field("nodes", &self.nodes.len())
            .finish()
    }
}

impl PatternSet {
    /// An empty set.
    pub fn new() -> PatternSet {
        PatternSet {
            nodes: vec![Node::default()],
            len: 0,
        }
    }

    /// Compiles patterns; the first that does not parse is returned with its index.
    pub fn build<'a>(
        patterns: impl IntoIterator<Item = &'a str>,
    ) -> Result<PatternSet, (usize, PatternError)> {
        let mut set = PatternSet::new();
        for (i, p) in patterns.into_iter().enumerate() {
            set.insert(p).map_err(|e| (i, e))?;
        }
        Ok(set)
    }

    /// Number of patterns inserted.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether no pattern was inserted.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds a pattern and returns its index.
    pub fn insert(&mut self, pattern: &str) -> Result<usize, PatternError> {
        let segments = parse(pattern)?;
        let mut node = 0u32;
        for seg in segments {
            let next = self.nodes.len() as u32;
            let slot = match seg {
                Segment::Literal(l) => {
                    let n = &mut self.nodes[node as usize];
                    *n.literal.entry(l.into()).or_insert(next)
                }
                Segment::Star => *self.nodes[node as usize].star.get_or_insert(next),
                Segment::GlobStar => *self.nodes[node as usize].globstar.get_or_insert(next),
            };
            if slot == next {
                self.nodes.push(Node::default());
            }
            node = slot;
        }
        let index = self.len;
        self.nodes[node as usize].terminal.push(index);
        self.len += 1;
        Ok(index as usize)
    }

    /// Whether any pattern matches `path` (an absolute path).
    pub fn is_match(&self, path: &str) -> bool {
        let mut found = false;
        self.visit(path, &mut |_| {
            found = true;
            true
        });
        found
    }

    /// Calls `f` with the index of each matching pattern (a pattern reachable by two
    /// routes through `**` may be reported twice).
    pub fn for_each_match(&self, path: &str, mut f: impl FnMut(usize)) {
        self.visit(path, &mut |i| {
            f(i);
            false
        });
    }

    /// The indices of all matching patterns, sorted and deduplicated.
    pub fn matches(&self, path: &str) -> Vec<usize> {
        let mut out = Vec::new();
        self.for_each_match(path, |i| out.push(i));
        out.sort_unstable();
        out.dedup();
        out
    }

    fn visit(&self, path: &str, f: &mut dyn FnMut(usize) -> bool) {
        if self.len == 0 {
            return;
        }
        let Some(rest) = path.strip_prefix('/') else {
            return;
        };
        self.walk(0, rest, f);
    }

    /// Walks from `node` with `rest` (the path after a '/', "" at the end).
    /// Returns true to stop early.
    fn walk(&self, node: u32, rest: &str, f: &mut dyn FnMut(usize) -> bool) -> bool {
        let n = &self.nodes[node as usize];
        if let Some(g) = n.globstar {
            // `**` takes zero segments, then one more at a time.
            if self.walk(g, rest, f) {
                return true;
            }
            let mut r = rest;
            while !r.is_empty() {
                r = match r.find('/') {
                    Some(i) => &r[i + 1..],
                    None => "",
                };
                if self.walk(g, r, f) {
                    return true;
                }
            }
        }
        if rest.is_empty() {
            for &t in &n.terminal {
                if f(t as usize) {
                    return true;
                }
            }
            return false;
        }
        let (seg, tail) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        if seg.is_empty() {
            return false;
        }
        if let Some(&next) = n.literal.get(seg)
            && self.walk(next, tail, f)
        {
            return true;
        }
        if let Some(next) = n.star
            && self.walk(next, tail, f)
        {
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_rejects_bad_patterns() {
        assert_eq!(parse(""), Err(PatternError::Empty));
        assert_eq!(parse("etc/passwd"), Err(PatternError::NotAbsolute));
        assert_eq!(parse("/etc//passwd"), Err(PatternError::EmptySegment(5)));
        assert_eq!(parse("/etc/"), Err(PatternError::EmptySegment(5)));
        assert_eq!(
            parse("/lib/lib*.so"),
            Err(PatternError::PartialWildcard("lib*.so".into()))
        );
        assert_eq!(
            parse("/a/***"),
            Err(PatternError::PartialWildcard("***".into()))
        );
        assert_eq!(parse("/a/../b"), Err(PatternError::DotSegment("..".into())));
        assert_eq!(parse("/a\0"), Err(PatternError::Nul));
        assert!(parse("/").unwrap().is_empty());
    }

    #[test]
    fn star_and_globstar_semantics() {
        assert!(matches("/proc/*/stat", "/proc/12/stat"));
        assert!(!matches("/proc/*/stat", "/proc/stat"));
        assert!(!matches("/proc/*/stat", "/proc/1/task/2/stat"));
        assert!(matches("/usr/**/lib", "/usr/lib"));
        assert!(matches("/usr/**/lib", "/usr/local/x/lib"));
        assert!(matches("/tmp/**", "/tmp"));
        assert!(matches("/tmp/**", "/tmp/a/b"));
        assert!(matches("/**", "/anything/at/all"));
        assert!(!matches("/etc/passwd", "/etc/passwd/x"));
    }

    #[test]
    fn set_reports_every_matching_pattern() {
        let set = PatternSet::build(["/etc/passwd", "/etc/*", "/**", "/proc/*/stat"]).unwrap();
        assert_eq!(set.matches("/etc/passwd"), vec![0, 1, 2]);
        assert_eq!(set.matches("/proc/7/stat"), vec![2, 3]);
        assert!(set.is_match("/x"));
        let empty = PatternSet::new();
        assert!(!empty.is_match("/etc/passwd"));
        assert!(!set.is_match("relative/path"));
    }

    #[test]
    fn build_names_the_bad_pattern() {
        let err = PatternSet::build(["/ok", "bad"]).unwrap_err();
        assert_eq!(err, (1, PatternError::NotAbsolute));
    }

    #[test]
    fn normalize_resolves_lexically() {
        assert_eq!(normalize_path("/a//b/./c/../d/").as_deref(), Some("/a/b/d"));
        assert_eq!(normalize_path("/..").as_deref(), Some("/"));
        assert_eq!(
            normalize_path("/etc/passwd").as_deref(),
            Some("/etc/passwd")
        );
        assert_eq!(normalize_path("rel"), None);
    }

    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => "[abc]{1,2}".prop_map(String::from),
            1 => Just("*".to_string()),
            1 => Just("**".to_string()),
        ]
    }

    fn pattern() -> impl Strategy<Value = String> {
        prop::collection::vec(segment(), 0..5).prop_map(|s| format!("/{}", s.join("/")))
    }

    fn path() -> impl Strategy<Value = String> {
        prop::collection::vec("[abc]{1,2}", 0..6).prop_map(|s| format!("/{}", s.join("/")))
    }

    proptest! {
        /// The trie agrees with the one-pattern reference matcher.
        #[test]
        fn trie_agrees_with_reference(patterns in prop::collection::vec(pattern(), 1..8), p in path()) {
            let set = PatternSet::build(patterns.iter().map(String::as_str)).unwrap();
            let expected: Vec<usize> = patterns
                .iter()
                .enumerate()
                .filter(|(_, pat)| matches(pat, &p))
                .map(|(i, _)| i)
                .collect();
            prop_assert_eq!(set.matches(&p), expected);
        }
    }
}
