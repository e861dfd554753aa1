//! Reading the Kubescape document kinds: ApplicationProfile, ContainerProfile,
//! NetworkNeighborhood, NetworkNeighbors, Kubernetes `List`s of them, multi-document
//! YAML, and the Go-named JSON of the storage's gob-decoded files.

use serde_json::Value;

use super::model::{KContainer, KGroups, Meta};
use super::notes::Notes;
use super::{ImportError, ImportOptions, KUBESCAPE_API_VERSION};
use crate::digest::Digest;
use crate::document::{Format, from_text};
use crate::profile::{Completeness, Learning};

/// Parses the text as one JSON/YAML value, or as several YAML documents.
pub(super) fn parse_documents(text: &str) -> Result<Vec<Value>, ImportError> {
    match from_text::<Value>(text) {
        Ok(value) => Ok(vec![value]),
        Err(single) => {
            if Format::detect(text.as_bytes()) == Format::Yaml
                && let Ok(docs) = serde_saphyr::from_multiple::<Value>(text)
                && !docs.is_empty()
            {
                return Ok(docs);
            }
            Err(single.into())
        }
    }
}

/// Expands Kubernetes `List`s; names each document for messages.
pub(super) fn split_documents(values: Vec<Value>) -> Vec<(String, Value)> {
    let many = values.len() > 1;
    let mut out = Vec::new();
    for (i, value) in values.into_iter().enumerate() {
        let base = if many {
            format!("document {}", i + 1)
        } else {
            String::new()
        };
        let is_list = value
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| k == "List" || k.ends_with("List"))
            && value.get("items").is_some_and(Value::is_array);
        if is_list {
            let Some(Value::Array(items)) = value.get("items").cloned() else {
                unreachable!("checked above")
            };
            for (j, item) in items.into_iter().enumerate() {
                let location = if base.is_empty() {
                    format!("items[{j}]")
                } else {
                    format!("{base} items[{j}]")
                };
                out.push((location, item));
            }
        } else {
            out.push((base, value));
        }
    }
    out
}

/// How a document's spec is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Containers in `containers`/`initContainers`/`ephemeralContainers`.
    Grouped,
    /// One container's fields directly in the spec (ContainerProfile,
    /// NetworkNeighbors), possibly with grouped sections as well.
    Direct,
}

/// What one document contributes to every container's profile.
pub(super) struct DocInfo {
    pub(super) learning: Learning,
    pub(super) notes: Vec<String>,
    /// Whether exec args start with argv[0]. kapprofiler-era objects (labelled
    /// `kapprofiler.kubescape.io/…`) record only the arguments after it.
    pub(super) args_have_argv0: bool,
}

/// A container found in the input.
pub(super) struct Candidate {
    pub(super) name: String,
    pub(super) container: KContainer,
    pub(super) doc: usize,
}

pub(super) fn read_document(
    location: String,
    value: &Value,
    docs: &mut Vec<DocInfo>,
    candidates: &mut Vec<Candidate>,
) -> Result<(), ImportError> {
    let Value::Object(obj) = value else {
        return Err(ImportError::NotAnObject {
            location,
            found: describe_type(value),
        });
    };
    let type_meta = obj.get("TypeMeta");
    let api_version = non_empty(obj.get("apiVersion"))
        .or_else(|| type_meta.and_then(|t| non_empty(t.get("APIVersion"))));
    let kind =
        non_empty(obj.get("kind")).or_else(|| type_meta.and_then(|t| non_empty(t.get("Kind"))));
    let go_spec = obj.get("Spec");
    let spec_key = if obj.contains_key("spec") {
        "spec"
    } else {
        "Spec"
    };
    let spec = obj.get(spec_key).filter(|s| !s.is_null());

    let layout = match (api_version, kind) {
        (None, None) if go_spec.is_some() => {
            if ["Containers", "InitContainers", "EphemeralContainers"]
                .iter()
                .any(|k| go_spec.is_some_and(|s| s.get(k).is_some()))
            {
                Layout::Grouped
            } else {
                Layout::Direct
            }
        }
        (api_version, kind) => {
            if api_version.and_then(Value::as_str) != Some(KUBESCAPE_API_VERSION) {
                return Err(ImportError::Unsupported {
                    location,
                    field: "apiVersion",
                    found: describe(api_version),
                });
            }
            match kind.and_then(Value::as_str) {
                Some("ApplicationProfile" | "NetworkNeighborhood") => Layout::Grouped,
                Some("ContainerProfile" | "NetworkNeighbors") => Layout::Direct,
                _ => {
                    return Err(ImportError::Unsupported {
                        location,
                        field: "kind",
                        found: describe(kind),
                    });
                }
            }
        }
    };

    // Metadata: `metadata` (Kubernetes), `ObjectMeta` (Go), or inline (storage files).
    let (meta_key, meta_value) = match (obj.get("metadata"), obj.get("ObjectMeta")) {
        (Some(m), _) => ("metadata", m),
        (None, Some(m)) => ("ObjectMeta", m),
        (None, None) => ("", value),
    };
    let meta: Meta = typed(&location, meta_key, meta_value)?;
    let mut notes = Vec::new();
    let learning = learning_of(&meta, &mut notes);
    let args_have_argv0 = !meta
        .labels
        .keys()
        .any(|k| k.starts_with("kapprofiler.kubescape.io/"));
    docs.push(DocInfo {
        learning,
        notes,
        args_have_argv0,
    });
    let doc = docs.len() - 1;

    let empty = Value::Object(Default::default());
    let spec = spec.unwrap_or(&empty);
    let groups: KGroups = typed(&location, spec_key, spec)?;
    let before = candidates.len();
    for (group, containers) in [
        ("containers", groups.containers),
        ("initContainers", groups.init_containers),
        ("ephemeralContainers", groups.ephemeral_containers),
    ] {
        for (i, mut container) in containers.into_iter().enumerate() {
            if container.architectures.is_empty() {
                container.architectures = groups.architectures.clone();
            }
            let name = if container.name.trim().is_empty() {
                format!("{group}[{i}]")
            } else {
                container.name.trim().to_string()
            };
            candidates.push(Candidate {
                name,
                container,
                doc,
            });
        }
    }
    if layout == Layout::Direct {
        let direct: KContainer = typed(&location, spec_key, spec)?;
        if candidates.len() == before || direct.has_content() {
            let name = string_of(meta.labels.get("kubescape.io/workload-container-name"))
                .or_else(|| string_of(Some(&meta.name)))
                .unwrap_or_else(|| "container".to_string());
            candidates.push(Candidate {
                name,
                container: direct,
                doc,
            });
        }
    }
    Ok(())
}

/// Deserializes part of a document, naming the field path on failure.
fn typed<T: serde::de::DeserializeOwned>(
    location: &str,
    base: &str,
    value: &Value,
) -> Result<T, ImportError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = match (base.is_empty(), path == ".") {
            (true, true) => ".".to_string(),
            (true, false) => path,
            (false, true) => base.to_string(),
            (false, false) => format!("{base}.{path}"),
        };
        ImportError::Field {
            location: location.to_string(),
            field,
            message: e.into_inner().to_string(),
        }
    })
}

fn non_empty(value: Option<&Value>) -> Option<&Value> {
    value.filter(|v| !v.is_null() && v.as_str() != Some(""))
}

fn describe(value: Option<&Value>) -> String {
    value.map_or_else(|| "missing".to_string(), Value::to_string)
}

fn describe_type(value: &Value) -> String {
    match value {
        Value::Null => "an empty document".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Number(_) => "a number".into(),
        Value::String(_) => "a string".into(),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// A non-empty string, or a number or boolean written as text.
pub(super) fn string_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn learning_of(meta: &Meta, notes: &mut Vec<String>) -> Learning {
    let completeness = match meta
        .annotations
        .get("kubescape.io/completion")
        .and_then(Value::as_str)
    {
        Some("complete") => Completeness::Complete,
        _ => Completeness::Partial,
    };
    let created = match &meta.creation_timestamp {
        Value::String(s) if !s.is_empty() => match s.parse::<jiff::Timestamp>() {
            // Go's zero time means "not set".
            Ok(t) if t.as_second() > -62_135_596_800 => Some(t),
            Ok(_) => None,
            Err(e) => {
                notes.push(format!("creationTimestamp {s:?} ignored: {e}"));
                None
            }
        },
        _ => None,
    };
    Learning {
        start: created,
        end: created,
        completeness,
        observed_containers: 1,
        nodes: Vec::new(),
        truncated: Vec::new(),
    }
}

pub(super) fn resolve_digest(
    candidate: &Candidate,
    options: &ImportOptions,
    notes: &mut Notes,
) -> Result<Digest, ImportError> {
    let image_id = candidate.container.image_id.trim();
    let recorded = digest_of_image_id(image_id);
    if let Some(given) = &options.image_digest {
        if let Some(recorded) = &recorded
            && recorded != given
        {
            notes.push(format!(
                "imageID {image_id:?} replaced by the given image digest {given}"
            ));
        }
        return Ok(given.clone());
    }
    match recorded {
        Some(digest) => {
            if !image_id.contains('@') {
                notes.push(format!(
                    "imageID {image_id:?} is the runtime's image ID, usually the image config digest rather than the manifest digest; pass the manifest digest if profiles should bind to it"
                ));
            }
            Ok(digest)
        }
        None => Err(ImportError::MissingDigest {
            container: candidate.name.clone(),
            image_id: (!image_id.is_empty()).then(|| image_id.to_string()),
        }),
    }
}

/// The `sha256:<hex>` in an `imageID` such as `docker-pullable://nginx@sha256:…`,
/// `docker.io/library/nginx@sha256:…`, `docker://sha256:…` or `sha256:…`.
pub(super) fn digest_of_image_id(image_id: &str) -> Option<Digest> {
    let rest = image_id.rsplit_once('@').map_or(image_id, |(_, d)| d);
    let rest = rest.rsplit_once("://").map_or(rest, |(_, d)| d);
    let digest = rest.trim().to_ascii_lowercase();
    Digest::try_from(digest).ok()
}
