//! Reading and writing profile documents: JSON or YAML in, canonical JSON, canonical
//! YAML and the content digest out.
//!
//! Reading is defensive: a size bound is checked before parsing, UTF-8 errors carry
//! their line and column, the `apiVersion` is checked before the body so a newer
//! document gets "unsupported apiVersion" rather than a confusing field error, and
//! every problem names the field path.

use std::fmt;

use crate::digest::Digest;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::profile::{API_VERSION, KIND, Profile};
use crate::validate::{ValidationIssue, validate};

/// Largest profile document accepted by default (16 MiB).
pub const DEFAULT_MAX_DOCUMENT_BYTES: usize = 16 << 20;

/// The syntax a document was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON (the first non-blank byte is `{`).
    Json,
    /// YAML (anything else).
    Yaml,
}

impl Format {
    /// Guesses the format from the content.
    pub fn detect(bytes: &[u8]) -> Format {
        let first = bytes
            .iter()
            .copied()
            .find(|b| !b.is_ascii_whitespace() && *b != 0xEF && *b != 0xBB && *b != 0xBF);
        if first == Some(b'{') {
            Format::Json
        } else {
            Format::Yaml
        }
    }
}

/// Where in the input a problem is, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Why a document could not be read as a valid profile.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The input exceeds the size bound.
    #[error("document is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The bound.
        limit: usize,
    },
    /// The input is not UTF-8.
    #[error("{position}: invalid UTF-8 (byte offset {offset})")]
    Utf8 {
        /// Where the first bad byte is.
        position: Position,
        /// Its byte offset.
        offset: usize,
    },
    /// The input is not well-formed JSON or YAML, or a field has the wrong type.
    #[error("{}{}{message}", position.map(|p| format!("{p}: ")).unwrap_or_default(), field.as_ref().map(|f| format!("{f}: ")).unwrap_or_default())]
    Syntax {
        /// Where, when the parser knows.
        position: Option<Position>,
        /// The field path, when known (`opens[3].flags`).
        field: Option<String>,
        /// The parser's message.
        message: String,
    },
    /// `apiVersion` or `kind` is not one this version reads.
    #[error(
        "{field}: unsupported {found}; this imprint reads apiVersion {API_VERSION}, kind {KIND}"
    )]
    Unsupported {
        /// `apiVersion` or `kind`.
        field: &'static str,
        /// What the document has, quoted, or "missing".
        found: String,
    },
    /// The document parsed but breaks the profile's rules.
    #[error("{} problem(s): {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<ValidationIssue>),
}

impl DocumentError {
    /// The individual problems, one per line when printed.
    pub fn issues(&self) -> Vec<String> {
        match self {
            DocumentError::Invalid(issues) => issues.iter().map(ToString::to_string).collect(),
            other => vec![other.to_string()],
        }
    }
}

/// Converts a byte offset to a line and column.
pub(crate) fn position_of(bytes: &[u8], offset: usize) -> Position {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let column = offset
        - before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1)
        + 1;
    Position { line, column }
}

/// Checks size and UTF-8, returning the text.
pub(crate) fn check_text(bytes: &[u8], limit: usize) -> Result<&str, DocumentError> {
    if bytes.len() > limit {
        return Err(DocumentError::TooLarge {
            size: bytes.len() as u64,
            limit,
        });
    }
    std::str::from_utf8(bytes).map_err(|e| DocumentError::Utf8 {
        position: position_of(bytes, e.valid_up_to()),
        offset: e.valid_up_to(),
    })
}

/// Deserializes JSON or YAML into `T`, with the field path and position in
/// errors: the reader of every imprint document, profiles and configuration files.
pub fn from_text<T: DeserializeOwned>(text: &str) -> Result<T, DocumentError> {
    match Format::detect(text.as_bytes()) {
        Format::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
                let field = field_path(e.path());
                let inner = e.into_inner();
                DocumentError::Syntax {
                    position: (inner.line() > 0).then(|| Position {
                        line: inner.line(),
                        column: inner.column(),
                    }),
                    field,
                    message: strip_json_location(&inner.to_string()),
                }
            })?;
            de.end().map_err(|e| DocumentError::Syntax {
                position: Some(Position {
                    line: e.line(),
                    column: e.column(),
                }),
                field: None,
                message: strip_json_location(&e.to_string()),
            })?;
            Ok(value)
        }
        Format::Yaml => {
            let yaml_error = |e: serde_saphyr::Error, field: Option<String>| {
                let position = e.location().and_then(|l| {
                    (l.line() > 0).then(|| Position {
                        line: l.line() as usize,
                        column: l.column() as usize,
                    })
                });
                DocumentError::Syntax {
                    position,
                    field,
                    message: yaml_message(&e),
                }
            };
            let mut field = None;
            serde_saphyr::with_deserializer_from_str(text, |de| {
                serde_path_to_error::deserialize::<_, T>(de).map_err(|e| {
                    field = field_path(e.path());
                    e.into_inner()
                })
            })
            .map_err(|e| yaml_error(e, field))
        }
    }
}

fn field_path(path: &serde_path_to_error::Path) -> Option<String> {
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            serde_path_to_error::Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            serde_path_to_error::Segment::Map { key }
            | serde_path_to_error::Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            serde_path_to_error::Segment::Unknown => {}
        }
    }
    (!out.is_empty()).then_some(out)
}

fn strip_json_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

fn yaml_message(e: &serde_saphyr::Error) -> String {
    // The rendered error can carry a source snippet over several lines and repeats
    // the position, which is reported separately: keep the first line's message.
    let text = e.to_string();
    let mut first = text.lines().next().unwrap_or("").trim();
    first = first.strip_prefix("error: ").unwrap_or(first);
    if first.starts_with("line ")
        && let Some(i) = first.find(": ")
    {
        first = &first[i + 2..];
    }
    if let Some(i) = first.find(" at line ") {
        first = &first[..i];
    }
    first.to_string()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    #[serde(default)]
    api_version: Option<serde_json::Value>,
    #[serde(default)]
    kind: Option<serde_json::Value>,
}

fn describe(value: &Option<serde_json::Value>) -> String {
    match value {
        None => "missing".to_string(),
        Some(v) => v.to_string(),
    }
}

/// Parses and validates a profile document (JSON or YAML), returning it normalised.
pub fn parse_profile(bytes: &[u8]) -> Result<Profile, DocumentError> {
    parse_profile_with_limit(bytes, DEFAULT_MAX_DOCUMENT_BYTES)
}

/// [`parse_profile`] with an explicit size bound.
pub fn parse_profile_with_limit(bytes: &[u8], limit: usize) -> Result<Profile, DocumentError> {
    let text = check_text(bytes, limit)?;
    let header: Header = from_text(text)?;
    if header.api_version.as_ref().and_then(|v| v.as_str()) != Some(API_VERSION) {
        return Err(DocumentError::Unsupported {
            field: "apiVersion",
            found: describe(&header.api_version),
        });
    }
    if header.kind.as_ref().and_then(|v| v.as_str()) != Some(KIND) {
        return Err(DocumentError::Unsupported {
            field: "kind",
            found: describe(&header.kind),
        });
    }
    let profile: Profile = from_text(text)?;
    let issues = validate(&profile);
    if !issues.is_empty() {
        return Err(DocumentError::Invalid(issues));
    }
    Ok(profile.normalized())
}

/// The canonical JSON of a profile: normalised sets, object keys sorted, no
/// insignificant whitespace, Kubernetes `metadata` left out. The same behaviour always
/// gives the same bytes.
pub fn to_canonical_json(profile: &Profile) -> Vec<u8> {
    let mut behaviour = profile.clone().normalized();
    behaviour.metadata = None;
    let value = serde_json::to_value(behaviour).expect("a profile always serializes to JSON");
    let mut out = Vec::with_capacity(1024);
    write_canonical(&value, &mut out);
    out
}

/// Writes a JSON value with object keys sorted by their UTF-8 bytes, independently of
/// whether serde_json preserves insertion order in this build.
pub(crate) fn write_canonical(value: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(
                    serde_json::to_string(k)
                        .expect("strings serialize")
                        .as_bytes(),
                );
                out.push(b':');
                write_canonical(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(v, out);
            }
            out.push(b']');
        }
        scalar => out.extend_from_slice(
            serde_json::to_string(scalar)
                .expect("scalars serialize")
                .as_bytes(),
        ),
    }
}

/// The SHA-256 digest of the canonical JSON.
pub fn digest(profile: &Profile) -> Digest {
    Digest::sha256_of(&to_canonical_json(profile))
}

/// The canonical YAML of a profile (normalised, fields in schema order): what
/// reviewers read and what `diff` compares.
pub fn to_yaml(profile: &Profile) -> String {
    serde_saphyr::to_string(&profile.clone().normalized()).expect("a profile always serializes")
}

/// Pretty JSON of a normalised profile, for people; not the canonical bytes.
pub fn to_pretty_json(profile: &Profile) -> String {
    let value = serde_json::to_value(profile.clone().normalized())
        .expect("a profile always serializes to JSON");
    let mut s = serde_json::to_string_pretty(&value).expect("JSON values serialize");
    s.push('\n');
    s
}
