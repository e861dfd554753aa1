//! Import of Kubescape runtime profiles into Profile v1.
//!
//! [`import`] reads one Kubescape object (JSON or YAML, detected from the content),
//! a Kubernetes `List` of them, or a multi-document YAML stream, and returns one
//! imprint profile per container. It accepts
//!
//! - `apiVersion: spdx.softwarecomposition.kubescape.io/v1beta1` objects of kind
//!   `ApplicationProfile` and `NetworkNeighborhood` (per-container sections under
//!   `spec.containers`, `spec.initContainers`, `spec.ephemeralContainers`),
//!   `ContainerProfile` (the fields of one container directly under `spec`, or the
//!   same grouped sections) and `NetworkNeighbors` (one workload's peers under `spec`);
//! - the JSON the Kubescape storage keeps after decoding its Go *gob* files, which
//!   spells fields the Go way (`ObjectMeta`, `Spec`, `Containers`, `Execs`, `Path`,
//!   `Args`, `ImageID`, `DNSNames`, `IPAddress`...) and carries no `apiVersion`/`kind`:
//!   a `Spec` with container sections is read as an ApplicationProfile, any other
//!   `Spec` as a ContainerProfile.
//!
//! # Mapping
//!
//! - Paths: the dynamic segment `⋯` (U+22EF) becomes `*` (one segment); a whole `*`
//!   segment, which Kubescape reads as any number of segments, becomes `**`. Paths are
//!   normalised lexically (`//`, `.`, `..`, trailing `/`). A segment with `⋯` inside
//!   other text becomes `*` (broadened, with a warning); entries that still are not
//!   valid imprint patterns (relative or empty paths, `*` inside a segment) are dropped
//!   with a warning.
//! - Exec arguments: Kubescape records argv including `argv[0]`; imprint keeps
//!   `argv[1..]`. See [`import`] for the rules on missing and sorted argument lists
//!   and on the `⋯`/`⋯⋯` argument wildcards.
//! - Open flags are `O_*` names; unknown names are skipped with a warning. Syscall
//!   names are kept as written when they have the shape of one; names allowed by the
//!   container's recorded seccomp profile are added. Capabilities lose `CAP_` and are
//!   upper-cased; unknown ones are dropped with a warning. HTTP endpoints have no
//!   imprint equivalent and are skipped with one warning.
//! - Network neighbours become one peer per (address, port): DNS names lower-cased
//!   without the trailing dot and with `⋯` labels as `*`; IP addresses as `/32` or
//!   `/128` ranges; CIDRs with host bits cleared; the `*` address as a peer without
//!   address (any peer on that port). Pod and namespace selectors cannot be expressed.
//! - The image digest comes from the container's `imageID`
//!   (`docker-pullable://nginx@sha256:…`, `repo@sha256:…` or `sha256:…`); a bare
//!   `sha256:` image ID is usually the image *config* digest, so a warning suggests an
//!   override. A repository digest may be an image *index* digest rather than the
//!   per-platform manifest digest imprint binds profiles to: when that matters pass
//!   the manifest digest as [`ImportOptions::image_digest`].
//! - Learning: `complete` if annotation `kubescape.io/completion` says so, else
//!   `partial`; start and end are the object's `creationTimestamp` when present.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::document::{DEFAULT_MAX_DOCUMENT_BYTES, DocumentError, Format, check_text, from_text};
use crate::merge::{MergeError, merge};
use crate::names::{OpenFlags, is_syscall_name, normalize_capability};
use crate::pattern;
use crate::profile::{Category, Completeness, Exec, Learning, Open, Peer, Profile, Protocol};
use crate::validate::{
    MAX_ENTRIES_PER_SET, ValidationIssue, check_cidr, check_dns_name, is_digest, validate,
};

/// The `apiVersion` of the Kubescape objects this module reads.
pub const KUBESCAPE_API_VERSION: &str = "spdx.softwarecomposition.kubescape.io/v1beta1";

/// The Kubescape kinds this module reads.
pub const SUPPORTED_KINDS: [&str; 4] = [
    "ApplicationProfile",
    "ContainerProfile",
    "NetworkNeighborhood",
    "NetworkNeighbors",
];

/// Kubescape's dynamic segment: one path segment, argument or DNS label.
const DYNAMIC: &str = "\u{22ef}";
/// Kubescape's argument wildcard for zero or more trailing arguments.
const DYNAMIC_TRAILING: &str = "\u{22ef}\u{22ef}";
/// How many dropped entries one warning lists by name.
const MAX_LISTED: usize = 10;

/// What to import and how.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// The image digest (`sha256:<64 hex>`) to bind the profile to, overriding what
    /// the object records; required when it records none. Since one digest names one
    /// image, it may be given only when a single container is imported.
    pub image_digest: Option<String>,
    /// Import only the container of this name. Unnamed containers are called
    /// `containers[0]`, `initContainers[1]`...; a ContainerProfile's container is
    /// named by its `kubescape.io/workload-container-name` label, else by the
    /// object's name.
    pub container: Option<String>,
}

/// One imported profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The Kubescape container the profile came from; several names separated by
    /// `, ` when containers of one image digest were merged.
    pub container: String,
    /// The profile: valid and normalised.
    pub profile: Profile,
    /// What could not be imported exactly: dropped, broadened or narrowed entries.
    pub warnings: Vec<String>,
}

/// Why a Kubescape object could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The input is too large, not UTF-8, or not well-formed JSON or YAML.
    #[error(transparent)]
    Document(#[from] DocumentError),
    /// The document is not a JSON/YAML object.
    #[error("{}expected a Kubescape object, found {found}", prefix(.location))]
    NotAnObject {
        /// Which document (`items[2]`, `document 2`), empty for a single one.
        location: String,
        /// What was found instead.
        found: String,
    },
    /// `apiVersion` or `kind` is not one this module reads.
    #[error(
        "{}{field}: unsupported {found}; supported: apiVersion {KUBESCAPE_API_VERSION} with kind ApplicationProfile, ContainerProfile, NetworkNeighborhood or NetworkNeighbors (or a List of them), or the Kubescape storage's Go-named JSON of one",
        prefix(.location)
    )]
    Unsupported {
        /// Which document, empty for a single one.
        location: String,
        /// `apiVersion` or `kind`.
        field: &'static str,
        /// What the document has, quoted, or `missing`.
        found: String,
    },
    /// A field has the wrong type.
    #[error("{}{field}: {message}", prefix(.location))]
    Field {
        /// Which document, empty for a single one.
        location: String,
        /// The field path, such as `spec.containers[0].execs[3].path`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The input holds no container to import.
    #[error("the Kubescape object holds no containers")]
    NoContainers,
    /// [`ImportOptions::container`] names no container of the object.
    #[error("no container named {wanted:?}; the object has: {}", .available.join(", "))]
    ContainerNotFound {
        /// The name asked for.
        wanted: String,
        /// The names the object has.
        available: Vec<String>,
    },
    /// A container records no usable image digest and no override was given.
    #[error(
        "container {container:?} records no image digest ({}); give the image digest to bind the profile to (imprint import kubescape --image-digest)",
        .image_id.as_deref().map_or_else(|| "no imageID".to_string(), |id| format!("imageID {id:?}"))
    )]
    MissingDigest {
        /// The container.
        container: String,
        /// Its `imageID`, when it has one without a digest.
        image_id: Option<String>,
    },
    /// The override digest is not a digest.
    #[error("image digest {0:?} is not a digest such as sha256:<64 lower-case hex digits>")]
    InvalidDigest(String),
    /// An override digest was given but several containers would be imported.
    #[error(
        "an image digest names one image, but {} containers would be imported ({}); select one container",
        .containers.len(),
        .containers.join(", ")
    )]
    AmbiguousDigest {
        /// The containers that would be imported.
        containers: Vec<String>,
    },
    /// Containers of one image digest could not be merged.
    #[error("containers {containers}: {source}")]
    Merge {
        /// The containers being merged.
        containers: String,
        /// Why.
        source: MergeError,
    },
    /// The imported profile breaks a profile rule (a bug in this importer).
    #[error("container {container:?}: the imported profile is invalid: {}", .issues.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid {
        /// The container.
        container: String,
        /// The problems.
        issues: Vec<ValidationIssue>,
    },
}

fn prefix(location: &str) -> String {
    if location.is_empty() {
        String::new()
    } else {
        format!("{location}: ")
    }
}

/// Most containers one import takes.
pub const MAX_CONTAINERS: usize = 256;

/// Imports a Kubescape object, returning one profile per container (containers
/// whose image digests are equal are merged into one profile).
///
/// Exec arguments are mapped as follows:
///
/// - No arguments recorded (absent, `null` or `[]`) gives `args: None`, any
///   arguments: Kubescape's lists include `argv[0]`, so an empty list means the
///   arguments were not recorded, not that there were none.
/// - Otherwise the first argument (`argv[0]`) is dropped; `⋯` becomes `*` (any one
///   argument). `⋯⋯` (any number of trailing arguments) has no imprint equivalent
///   and gives `args: None`; an argument with `⋯` inside other text becomes `*`; a
///   literal `*` argument becomes imprint's wildcard. Each of these broadenings is
///   reported as a warning.
/// - Older node-agents stored each argument list sorted, so the position of
///   `argv[0]` and the order are lost. When one exec of a container shows it (a
///   sorted list whose `argv[0]` is not first), every list of that container is read
///   as sorted: a list with at most one argument besides `argv[0]` keeps it, longer
///   ones give `args: None`, with one warning.
pub fn import(bytes: &[u8], options: &ImportOptions) -> Result<Vec<Imported>, ImportError> {
    let text = check_text(bytes, DEFAULT_MAX_DOCUMENT_BYTES)?;
    let mut docs = Vec::new();
    let mut candidates = Vec::new();
    for (location, value) in split_documents(parse_documents(text)?) {
        read_document(location, &value, &mut docs, &mut candidates)?;
    }
    if candidates.is_empty() {
        return Err(ImportError::NoContainers);
    }
    // Real objects hold a handful of containers; merging many of one digest costs
    // quadratic time, so a hostile document is refused outright.
    if candidates.len() > MAX_CONTAINERS {
        return Err(ImportError::Field {
            location: String::new(),
            field: "spec.containers".into(),
            message: format!(
                "{} containers, more than the limit of {MAX_CONTAINERS}",
                candidates.len()
            ),
        });
    }
    if let Some(wanted) = &options.container {
        let available: Vec<String> = candidates.iter().map(|c| c.name.clone()).collect();
        candidates.retain(|c| &c.name == wanted);
        if candidates.is_empty() {
            return Err(ImportError::ContainerNotFound {
                wanted: wanted.clone(),
                available,
            });
        }
    }
    if let Some(digest) = &options.image_digest {
        if !is_digest(digest) {
            return Err(ImportError::InvalidDigest(digest.clone()));
        }
        if candidates.len() > 1 {
            return Err(ImportError::AmbiguousDigest {
                containers: candidates.iter().map(|c| c.name.clone()).collect(),
            });
        }
    }

    let mut imported: Vec<Imported> = Vec::new();
    for candidate in &candidates {
        let doc = &docs[candidate.doc];
        let mut notes = Notes(doc.notes.clone());
        let digest = resolve_digest(candidate, options, &mut notes)?;
        let profile = convert(&candidate.container, doc, digest, &mut notes);
        let item = Imported {
            container: candidate.name.clone(),
            profile,
            warnings: notes.0,
        };
        match imported
            .iter_mut()
            .find(|i| i.profile.image.digest == item.profile.image.digest)
        {
            Some(existing) => merge_into(existing, item)?,
            None => imported.push(item),
        }
    }
    for item in &mut imported {
        bound_sizes(item);
        let issues = validate(&item.profile);
        if !issues.is_empty() {
            return Err(ImportError::Invalid {
                container: item.container.clone(),
                issues,
            });
        }
    }
    Ok(imported)
}

/// Merges `item` into `existing` (same digest); warnings are prefixed with the
/// container they came from.
fn merge_into(existing: &mut Imported, item: Imported) -> Result<(), ImportError> {
    let containers = format!("{}, {}", existing.container, item.container);
    let mut profile =
        merge(&existing.profile, &item.profile).map_err(|source| ImportError::Merge {
            containers: containers.clone(),
            source,
        })?;
    // One object, distinct containers: each was observed.
    profile.learning.observed_containers =
        existing.profile.learning.observed_containers + item.profile.learning.observed_containers;
    if !existing.container.contains(", ") {
        let name = existing.container.clone();
        for w in &mut existing.warnings {
            *w = format!("{name}: {w}");
        }
    }
    existing.warnings.extend(
        item.warnings
            .into_iter()
            .map(|w| format!("{}: {w}", item.container)),
    );
    existing.warnings.push(format!(
        "containers {containers} share image digest {}: merged into one profile",
        profile.image.digest
    ));
    existing.container = containers;
    existing.profile = profile;
    Ok(())
}

/// Keeps every set within the validation bound, recording what was cut.
fn bound_sizes(item: &mut Imported) {
    let p = &mut item.profile;
    let mut cut = Vec::new();
    if p.execs.len() > MAX_ENTRIES_PER_SET {
        p.execs.truncate(MAX_ENTRIES_PER_SET);
        cut.push(Category::Execs);
    }
    if p.opens.len() > MAX_ENTRIES_PER_SET {
        p.opens.truncate(MAX_ENTRIES_PER_SET);
        cut.push(Category::Opens);
    }
    if p.syscalls.len() > MAX_ENTRIES_PER_SET {
        p.syscalls.truncate(MAX_ENTRIES_PER_SET);
        cut.push(Category::Syscalls);
    }
    if p.network.egress.len() > MAX_ENTRIES_PER_SET {
        p.network.egress.truncate(MAX_ENTRIES_PER_SET);
        cut.push(Category::Egress);
    }
    if p.network.ingress.len() > MAX_ENTRIES_PER_SET {
        p.network.ingress.truncate(MAX_ENTRIES_PER_SET);
        cut.push(Category::Ingress);
    }
    for category in cut {
        item.warnings.push(format!(
            "{} cut to {MAX_ENTRIES_PER_SET} entries; the profile is marked truncated",
            category.field()
        ));
        p.learning.truncated.push(category);
    }
    p.normalize();
}

// ---------------------------------------------------------------------------------
// Documents

/// Parses the text as one JSON/YAML value, or as several YAML documents.
fn parse_documents(text: &str) -> Result<Vec<Value>, ImportError> {
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
fn split_documents(values: Vec<Value>) -> Vec<(String, Value)> {
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
struct DocInfo {
    learning: Learning,
    notes: Vec<String>,
    /// Whether exec args start with argv[0]. kapprofiler-era objects (labelled
    /// `kapprofiler.kubescape.io/…`) record only the arguments after it.
    args_have_argv0: bool,
}

/// A container found in the input.
struct Candidate {
    name: String,
    container: KContainer,
    doc: usize,
}

fn read_document(
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
fn string_of(value: Option<&Value>) -> Option<String> {
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

fn resolve_digest(
    candidate: &Candidate,
    options: &ImportOptions,
    notes: &mut Notes,
) -> Result<String, ImportError> {
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
fn digest_of_image_id(image_id: &str) -> Option<String> {
    let rest = image_id.rsplit_once('@').map_or(image_id, |(_, d)| d);
    let rest = rest.rsplit_once("://").map_or(rest, |(_, d)| d);
    let digest = rest.trim().to_ascii_lowercase();
    is_digest(&digest).then_some(digest)
}

// ---------------------------------------------------------------------------------
// The Kubescape shapes. Field names are Kubernetes JSON; the aliases are the Go names
// of the gob-decoded storage files. Every list may be `null`.

fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Meta {
    #[serde(alias = "Name")]
    name: Value,
    #[serde(rename = "creationTimestamp", alias = "CreationTimestamp")]
    creation_timestamp: Value,
    #[serde(alias = "Labels", deserialize_with = "nullable")]
    labels: BTreeMap<String, Value>,
    #[serde(alias = "Annotations", deserialize_with = "nullable")]
    annotations: BTreeMap<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct KGroups {
    #[serde(alias = "Containers", deserialize_with = "nullable")]
    containers: Vec<KContainer>,
    #[serde(
        rename = "initContainers",
        alias = "InitContainers",
        deserialize_with = "nullable"
    )]
    init_containers: Vec<KContainer>,
    #[serde(
        rename = "ephemeralContainers",
        alias = "EphemeralContainers",
        deserialize_with = "nullable"
    )]
    ephemeral_containers: Vec<KContainer>,
    #[serde(alias = "Architectures", deserialize_with = "nullable")]
    architectures: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct KContainer {
    #[serde(alias = "Name", deserialize_with = "nullable")]
    name: String,
    #[serde(rename = "imageID", alias = "ImageID", deserialize_with = "nullable")]
    image_id: String,
    #[serde(rename = "imageTag", alias = "ImageTag", deserialize_with = "nullable")]
    image_tag: String,
    #[serde(alias = "Architectures", deserialize_with = "nullable")]
    architectures: Vec<String>,
    #[serde(alias = "Execs", deserialize_with = "nullable")]
    execs: Vec<KExec>,
    #[serde(alias = "Opens", deserialize_with = "nullable")]
    opens: Vec<KOpen>,
    #[serde(alias = "Syscalls", deserialize_with = "nullable")]
    syscalls: Vec<String>,
    /// Names; the kapprofiler generation wrote `{caps: [...], syscall}` objects.
    #[serde(alias = "Capabilities", deserialize_with = "nullable")]
    capabilities: Vec<Value>,
    #[serde(alias = "Endpoints", deserialize_with = "nullable")]
    endpoints: Vec<Value>,
    #[serde(rename = "seccompProfile", alias = "SeccompProfile")]
    seccomp_profile: Value,
    #[serde(alias = "Egress", deserialize_with = "nullable")]
    egress: Vec<KNeighbor>,
    #[serde(alias = "Ingress", deserialize_with = "nullable")]
    ingress: Vec<KNeighbor>,
    /// kapprofiler generation: `[{dnsName: ...}]`.
    #[serde(deserialize_with = "nullable")]
    dns: Vec<Value>,
    /// kapprofiler generation: `{outgoing: [{dstEndpoint, port, protocol}]}`.
    #[serde(rename = "networkActivity")]
    network_activity: Value,
}

impl KContainer {
    fn has_content(&self) -> bool {
        !(self.execs.is_empty()
            && self.opens.is_empty()
            && self.syscalls.is_empty()
            && self.capabilities.is_empty()
            && self.endpoints.is_empty()
            && self.egress.is_empty()
            && self.ingress.is_empty()
            && self.image_id.is_empty())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct KExec {
    #[serde(alias = "Path", deserialize_with = "nullable")]
    path: String,
    #[serde(alias = "Args", deserialize_with = "nullable")]
    args: Vec<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct KOpen {
    #[serde(alias = "Path", deserialize_with = "nullable")]
    path: String,
    #[serde(alias = "Flags", deserialize_with = "nullable")]
    flags: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct KNeighbor {
    #[serde(alias = "Identifier", deserialize_with = "nullable")]
    identifier: String,
    #[serde(alias = "DNS", deserialize_with = "nullable")]
    dns: String,
    #[serde(rename = "dnsNames", alias = "DNSNames", deserialize_with = "nullable")]
    dns_names: Vec<String>,
    #[serde(
        rename = "ipAddress",
        alias = "IPAddress",
        deserialize_with = "nullable"
    )]
    ip_address: String,
    #[serde(
        rename = "ipAddresses",
        alias = "IPAddresses",
        deserialize_with = "nullable"
    )]
    ip_addresses: Vec<String>,
    #[serde(alias = "Ports", deserialize_with = "nullable")]
    ports: Vec<KPort>,
    #[serde(rename = "podSelector", alias = "PodSelector")]
    pod_selector: Value,
    #[serde(rename = "namespaceSelector", alias = "NamespaceSelector")]
    namespace_selector: Value,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct KPort {
    #[serde(alias = "Name", deserialize_with = "nullable")]
    name: String,
    #[serde(alias = "Protocol", deserialize_with = "nullable")]
    protocol: String,
    #[serde(alias = "Port")]
    port: Value,
}

// ---------------------------------------------------------------------------------
// Conversion

/// Warnings for one container.
struct Notes(Vec<String>);

impl Notes {
    fn push(&mut self, note: String) {
        self.0.push(note);
    }

    /// One warning naming up to [`MAX_LISTED`] dropped entries.
    fn dropped(&mut self, what: &str, items: &[String]) {
        if items.is_empty() {
            return;
        }
        let shown: Vec<&str> = items.iter().take(MAX_LISTED).map(String::as_str).collect();
        let more = items.len().saturating_sub(MAX_LISTED);
        let tail = if more > 0 {
            format!("; and {more} more")
        } else {
            String::new()
        };
        self.0.push(format!(
            "dropped {} {what}: {}{tail}",
            items.len(),
            shown.join("; ")
        ));
    }
}

fn convert(c: &KContainer, doc: &DocInfo, digest: String, notes: &mut Notes) -> Profile {
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

/// Maps a Kubescape path to an imprint pattern; `true` when a segment was broadened.
fn map_path(raw: &str) -> Result<(String, bool), String> {
    if raw.is_empty() {
        return Err("empty path".into());
    }
    if raw.contains('\0') {
        return Err("NUL byte".into());
    }
    let normal = pattern::normalize_path(raw).ok_or("relative path")?;
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
            return Err(format!(
                "'*' inside segment {seg:?} cannot be expressed in an imprint pattern"
            ));
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
    pattern::parse(&out).map_err(|e| e.to_string())?;
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

/// A peer address before ports are applied.
enum Host {
    Dns(String),
    Cidr(String),
    Any,
}

fn convert_neighbour(
    n: &KNeighbor,
    at: &str,
    peers: &mut Vec<Peer>,
    dropped: &mut Vec<String>,
    notes: &mut Notes,
) {
    let label = if n.identifier.is_empty() {
        at.to_string()
    } else {
        format!("{at} ({})", short(&n.identifier))
    };
    let mut hosts = Vec::new();
    let mut names: Vec<&str> = n.dns_names.iter().map(String::as_str).collect();
    names.push(&n.dns);
    let mut seen_address = false;
    for name in names.into_iter().filter(|s| !s.trim().is_empty()) {
        seen_address = true;
        match map_dns(name) {
            Ok((dns, narrowed)) => {
                if narrowed {
                    notes.push(format!(
                        "{label}: DNS name {name:?} ends in *, one or more labels in Kubescape; imprint's * is exactly one label, so deeper names are not covered"
                    ));
                }
                hosts.push(Host::Dns(dns));
            }
            Err(why) => dropped.push(format!("{label}: DNS name {name:?} ({why})")),
        }
    }
    let mut addresses: Vec<&str> = n.ip_addresses.iter().map(String::as_str).collect();
    addresses.push(&n.ip_address);
    for address in addresses.into_iter().filter(|s| !s.trim().is_empty()) {
        seen_address = true;
        if address.trim() == "*" {
            hosts.push(Host::Any);
            continue;
        }
        match map_ip(address) {
            Ok(cidr) => hosts.push(Host::Cidr(cidr)),
            Err(why) => dropped.push(format!("{label}: address {address:?} ({why})")),
        }
    }
    if hosts.is_empty() {
        if !seen_address {
            dropped.push(describe_unaddressed(n, &label));
        }
        return;
    }
    let mut ports = Vec::new();
    for port in &n.ports {
        match map_port(port) {
            Ok(p) => ports.push(p),
            Err(why) => dropped.push(format!("{label}: port {:?} ({why})", port.name)),
        }
    }
    if ports.is_empty() {
        if !n.ports.is_empty() {
            return; // every port was unusable: do not widen to any port
        }
        ports.push((None, None));
    }
    for host in &hosts {
        let (dns, cidr) = match host {
            Host::Dns(d) => (Some(d.clone()), None),
            Host::Cidr(c) => (None, Some(c.clone())),
            Host::Any => (None, None),
        };
        for (port, protocol) in &ports {
            // Hosts × ports can explode on hostile input: stop just past the bound,
            // and bound_sizes records the set as truncated.
            if peers.len() > MAX_ENTRIES_PER_SET {
                return;
            }
            peers.push(Peer {
                dns: dns.clone(),
                cidr: cidr.clone(),
                port: *port,
                protocol: *protocol,
            });
        }
    }
}

/// Says what a neighbour without DNS name or address allowed, for the warning.
fn describe_unaddressed(n: &KNeighbor, label: &str) -> String {
    let mut whom = Vec::new();
    if is_set(&n.pod_selector) {
        whom.push(format!("pods {}", selector_text(&n.pod_selector)));
    }
    if is_set(&n.namespace_selector) {
        whom.push(format!(
            "namespaces {}",
            selector_text(&n.namespace_selector)
        ));
    }
    let ports: Vec<String> = n
        .ports
        .iter()
        .map(|p| {
            if p.name.is_empty() {
                format!("{}/{}", p.protocol, p.port)
            } else {
                p.name.clone()
            }
        })
        .collect();
    let ports = if ports.is_empty() {
        "any port".to_string()
    } else {
        ports.join(",")
    };
    if whom.is_empty() {
        format!("{label}: {ports} (no DNS name, address or selector)")
    } else {
        format!(
            "{label}: {} on {ports} (selectors cannot be expressed as imprint peers)",
            whom.join(" in ")
        )
    }
}

/// `k=v,k2=v2` for a label selector's `matchLabels`; other selector forms verbatim.
fn selector_text(selector: &Value) -> String {
    match selector
        .get("matchLabels")
        .or_else(|| selector.get("MatchLabels"))
    {
        Some(Value::Object(labels))
            if selector.as_object().is_some_and(|o| o.len() == 1) && !labels.is_empty() =>
        {
            labels
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{k}={}",
                        v.as_str().map_or_else(|| v.to_string(), str::to_string)
                    )
                })
                .collect::<Vec<_>>()
                .join(",")
        }
        _ => selector.to_string(),
    }
}

fn short(identifier: &str) -> &str {
    if identifier.len() > 16 && identifier.bytes().all(|b| b.is_ascii_hexdigit()) {
        &identifier[..12]
    } else {
        identifier
    }
}

fn is_set(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Object(m) => !m.is_empty(),
        _ => true,
    }
}

/// Maps a Kubescape DNS name; `true` when a trailing `*` was narrowed.
fn map_dns(raw: &str) -> Result<(String, bool), String> {
    let lower = raw.trim().to_ascii_lowercase();
    let name = lower.strip_suffix('.').unwrap_or(&lower);
    let labels: Vec<&str> = name.split('.').collect();
    let last = labels.len() - 1;
    let mut out = Vec::with_capacity(labels.len());
    let mut narrowed = false;
    for (i, label) in labels.iter().enumerate() {
        out.push(match *label {
            DYNAMIC => "*",
            "*" if i == 0 => "*",
            "*" if i == last => {
                narrowed = true;
                "*"
            }
            "*" => return Err("'*' inside a name is not a Kubescape wildcard (⋯ is)".into()),
            l if l.contains('*') => {
                return Err(format!("wildcard {l:?} is not valid Kubescape DNS syntax"));
            }
            l => l,
        });
    }
    let name = out.join(".");
    check_dns_name(&name)?;
    Ok((name, narrowed))
}

/// Maps an address or range to a CIDR with host bits cleared.
fn map_ip(raw: &str) -> Result<String, String> {
    let s = raw.trim();
    let net = if let Ok(ip) = s.parse::<IpAddr>() {
        ipnet::IpNet::from(ip)
    } else if let Ok(net) = s.parse::<ipnet::IpNet>() {
        net.trunc()
    } else {
        return Err("not an IP address or address range".into());
    };
    let cidr = net.to_string();
    check_cidr(&cidr)?;
    Ok(cidr)
}

fn map_protocol(name: &str) -> Option<Protocol> {
    match name.trim().to_ascii_uppercase().as_str() {
        "TCP" => Some(Protocol::Tcp),
        "UDP" => Some(Protocol::Udp),
        "SCTP" => Some(Protocol::Sctp),
        _ => None,
    }
}

/// A Kubescape port entry as (port, protocol); the name (`TCP-443`) fills in what the
/// other fields leave out.
fn map_port(p: &KPort) -> Result<(Option<u16>, Option<Protocol>), String> {
    let (name_proto, name_port) = p.name.split_once('-').unwrap_or(("", ""));
    let protocol = if !p.protocol.trim().is_empty() {
        Some(
            map_protocol(&p.protocol)
                .ok_or_else(|| format!("protocol {:?} is not TCP, UDP or SCTP", p.protocol))?,
        )
    } else if name_proto.is_empty() {
        None
    } else {
        Some(
            map_protocol(name_proto)
                .ok_or_else(|| format!("protocol {name_proto:?} is not TCP, UDP or SCTP"))?,
        )
    };
    let number = match &p.port {
        Value::Null => name_port.parse::<i64>().ok(),
        Value::Number(n) => Some(
            n.as_i64()
                .ok_or_else(|| format!("port {n} is not an integer"))?,
        ),
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(
            s.trim()
                .parse::<i64>()
                .map_err(|_| format!("port {s:?} is not a number"))?,
        ),
        other => return Err(format!("port {other} is not a number")),
    };
    let port = match number {
        None => None,
        Some(n @ 1..=65535) => Some(n as u16),
        Some(n) => return Err(format!("port {n} is not 1 to 65535")),
    };
    Ok((port, protocol))
}

/// The kapprofiler generation's `dns` and `networkActivity.outgoing`.
fn convert_legacy_network(c: &KContainer, p: &mut Profile, dropped: &mut Vec<String>) {
    for (i, entry) in c.dns.iter().enumerate() {
        let Some(name) = entry.get("dnsName").and_then(Value::as_str) else {
            dropped.push(format!("dns[{i}] (no dnsName)"));
            continue;
        };
        match map_dns(name) {
            Ok((dns, _)) => p.network.egress.push(Peer {
                dns: Some(dns),
                cidr: None,
                port: None,
                protocol: None,
            }),
            Err(why) => dropped.push(format!("dns[{i}]: {name:?} ({why})")),
        }
    }
    let activity = &c.network_activity;
    if let Some(Value::Array(outgoing)) = activity.get("outgoing") {
        for (i, conn) in outgoing.iter().enumerate() {
            let endpoint = conn
                .get("dstEndpoint")
                .and_then(Value::as_str)
                .unwrap_or("");
            let port = KPort {
                name: String::new(),
                protocol: string_of(conn.get("protocol")).unwrap_or_default(),
                port: conn.get("port").cloned().unwrap_or(Value::Null),
            };
            let host = match map_ip(endpoint) {
                Ok(cidr) => (None, Some(cidr)),
                Err(_) => match map_dns(endpoint) {
                    Ok((dns, _)) => (Some(dns), None),
                    Err(why) => {
                        dropped.push(format!(
                            "networkActivity.outgoing[{i}]: {endpoint:?} ({why})"
                        ));
                        continue;
                    }
                },
            };
            match map_port(&port) {
                Ok((port, protocol)) => p.network.egress.push(Peer {
                    dns: host.0,
                    cidr: host.1,
                    port,
                    protocol,
                }),
                Err(why) => dropped.push(format!("networkActivity.outgoing[{i}] ({why})")),
            }
        }
    }
    if let Some(Value::Array(incoming)) = activity.get("incoming")
        && !incoming.is_empty()
    {
        dropped.push(format!(
            "networkActivity.incoming ({} entries in a format this importer does not read)",
            incoming.len()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const CORPUS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/corpora/kubescape"
    );
    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// The corpus file, or `None` (after saying so) when the corpus is absent.
    fn corpus(rel: &str) -> Option<Vec<u8>> {
        let dir = Path::new(CORPUS);
        if !dir.is_dir() {
            println!("skipped: ../shared/corpora/kubescape absent");
            return None;
        }
        Some(std::fs::read(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}")))
    }

    fn with_digest() -> ImportOptions {
        ImportOptions {
            image_digest: Some(DIGEST.into()),
            container: None,
        }
    }

    fn select(name: &str) -> ImportOptions {
        ImportOptions {
            image_digest: Some(DIGEST.into()),
            container: Some(name.into()),
        }
    }

    fn one(bytes: &[u8], options: &ImportOptions) -> Imported {
        let mut all = import(bytes, options).expect("imports");
        assert_eq!(
            all.len(),
            1,
            "{:?}",
            all.iter().map(|i| &i.container).collect::<Vec<_>>()
        );
        let item = all.remove(0);
        assert!(validate(&item.profile).is_empty());
        assert_eq!(item.profile, item.profile.clone().normalized());
        item
    }

    fn exec<'a>(p: &'a Profile, path: &str) -> Vec<&'a Exec> {
        p.execs.iter().filter(|e| e.path == path).collect()
    }

    fn args(list: &[&str]) -> Option<Vec<String>> {
        Some(list.iter().map(|s| s.to_string()).collect())
    }

    fn peer(
        dns: Option<&str>,
        cidr: Option<&str>,
        port: Option<u16>,
        protocol: Option<Protocol>,
    ) -> Peer {
        Peer {
            dns: dns.map(str::to_string),
            cidr: cidr.map(str::to_string),
            port,
            protocol,
        }
    }

    fn warned(item: &Imported, needle: &str) -> bool {
        item.warnings.iter().any(|w| w.contains(needle))
    }

    #[test]
    fn nginx_application_profile_json() {
        let Some(bytes) =
            corpus("node-agent/pre-containerprofile/mocks/testdata/nginx_applicationprofiles.json")
        else {
            return;
        };
        // No imageID: the error names the (unnamed) container.
        let err = import(&bytes, &ImportOptions::default()).unwrap_err();
        assert!(
            matches!(&err, ImportError::MissingDigest { container, .. } if container == "containers[0]"),
            "{err}"
        );
        assert!(err.to_string().contains("containers[0]"), "{err}");

        let item = one(&bytes, &with_digest());
        let p = &item.profile;
        assert_eq!(item.container, "containers[0]");
        assert_eq!(p.image.digest, DIGEST);
        assert_eq!(p.image.platform, None, "two architectures");
        assert_eq!(p.learning.completeness, Completeness::Complete);
        assert_eq!(
            p.learning.start.unwrap().to_string(),
            "2024-03-19T09:27:05Z"
        );
        assert_eq!(p.learning.end, p.learning.start);
        assert_eq!(p.learning.observed_containers, 1);
        // Sorted argument lists: order lost, so any arguments...
        assert_eq!(exec(p, "/usr/sbin/nginx")[0].args, None);
        // ...except where at most one argument is left besides argv[0].
        assert_eq!(
            exec(p, "/docker-entrypoint.d/30-tune-worker-processes.sh")[0].args,
            args(&[])
        );
        // No args recorded: any arguments.
        assert_eq!(exec(p, "/etc/nginx/conf.d/sedzJNyeW")[0].args, None);
        assert!(warned(&item, "sorted arguments"));
        assert!(p.capabilities.contains(&"NET_BIND_SERVICE".to_string()));
        // Syscalls come from the seccomp allow-list, deduplicated.
        assert!(p.syscalls.contains(&"accept4".to_string()));
        assert_eq!(p.syscalls.iter().filter(|s| *s == "futex").count(), 1);
        assert!(warned(&item, "seccompProfile"));
    }

    #[test]
    fn application_profile_yaml_with_image_id() {
        let Some(bytes) = corpus(
            "node-agent/pre-containerprofile/tests/resources/known-application-profile.yaml",
        ) else {
            return;
        };
        let item = one(&bytes, &ImportOptions::default());
        let p = &item.profile;
        assert_eq!(item.container, "curl");
        assert_eq!(
            p.image.digest,
            "sha256:08e466006f0860e54fc299378de998935333e0e130a15f6f98482e9f8dab3058"
        );
        assert_eq!(
            p.image.reference.as_deref(),
            Some("docker.io/curlimages/curl:8.5.0")
        );
        assert_eq!(p.image.platform.as_deref(), Some("linux/amd64"));
        assert_eq!(
            exec(p, "/usr/bin/curl")[0].args,
            args(&["-sm2", "fusioncore.ai"])
        );
        assert_eq!(exec(p, "/bin/cat")[0].args, args(&[]));
        let open = p
            .opens
            .iter()
            .find(|o| o.path == "/proc/*/cgroup")
            .expect("⋯ became *");
        assert_eq!(open.flags.names(), ["O_CLOEXEC", "O_RDONLY"]);
        assert!(p.opens.iter().any(|o| o.path == "/proc/*/task/1/fd"));
        assert!(
            p.capabilities.contains(&"CHOWN".to_string()),
            "CAP_ stripped"
        );
        assert!(p.capabilities.contains(&"SYS_ADMIN".to_string()));
        assert!(p.syscalls.contains(&"close_range".to_string()));
        assert!(warned(&item, "skipped 1 HTTP endpoint"));
        assert_eq!(p.learning.start, None);
        assert_eq!(p.learning.completeness, Completeness::Partial);
    }

    #[test]
    fn open_star_is_any_depth() {
        let Some(bytes) = corpus(
            "node-agent/pre-containerprofile/tests/resources/known-application-profile-wildcards.yaml",
        ) else {
            return;
        };
        let p = one(&bytes, &ImportOptions::default()).profile;
        let paths: Vec<&str> = p.opens.iter().map(|o| o.path.as_str()).collect();
        assert!(paths.contains(&"/etc/**"), "{paths:?}");
        assert!(paths.contains(&"/proc/**/task/**/fd"), "{paths:?}");
        assert!(!paths.contains(&"/etc/*"));
    }

    #[test]
    fn container_profile_with_network() {
        let Some(bytes) =
            corpus("node-agent/head/tests/resources/containerprofile-fusioncore-network.yaml")
        else {
            return;
        };
        let item = one(&bytes, &with_digest());
        assert_eq!(item.container, "fusioncore-network");
        assert_eq!(
            item.profile.network.egress,
            [
                peer(
                    None,
                    Some("162.0.217.171/32"),
                    Some(80),
                    Some(Protocol::Tcp)
                ),
                peer(Some("fusioncore.ai"), None, Some(80), Some(Protocol::Tcp)),
            ]
        );
        assert!(item.profile.network.ingress.is_empty());
    }

    #[test]
    fn container_profile_without_digest_names_the_container() {
        let Some(bytes) =
            corpus("node-agent/head/tests/resources/containerprofile-user-defined-network.yaml")
        else {
            return;
        };
        let err = import(&bytes, &ImportOptions::default()).unwrap_err();
        assert!(
            matches!(&err, ImportError::MissingDigest { container, image_id: None } if container == "curl-28-overlay")
        );
        assert!(err.to_string().contains("\"curl-28-overlay\""), "{err}");
        // `dns` and `dnsNames` with the same name give one peer.
        let p = one(&bytes, &with_digest()).profile;
        assert_eq!(
            p.dns_names().into_iter().collect::<Vec<_>>(),
            ["fusioncore.ai"]
        );
        assert_eq!(exec(&p, "/usr/bin/wget")[0].args, None);
    }

    #[test]
    fn network_wildcards() {
        let dir = "node-agent/head/tests/resources/network-wildcards/";
        let Some(bytes) = corpus(&format!("{dir}02-literal-ipv6.yaml")) else {
            return;
        };
        let tcp443 = (Some(443), Some(Protocol::Tcp));
        let p = one(&bytes, &with_digest()).profile;
        assert_eq!(
            p.network.egress,
            [peer(None, Some("2001:db8::1/128"), tcp443.0, tcp443.1)]
        );

        let p = one(
            &corpus(&format!("{dir}05-any-ip-sentinel.yaml")).unwrap(),
            &with_digest(),
        )
        .profile;
        assert_eq!(
            p.network.egress,
            [peer(None, None, tcp443.0, tcp443.1)],
            "* is any peer"
        );

        let p = one(
            &corpus(&format!("{dir}11-dns-mid-ellipsis.yaml")).unwrap(),
            &with_digest(),
        )
        .profile;
        assert_eq!(
            p.network.egress,
            [peer(
                Some("svc.*.cluster.local"),
                None,
                Some(53),
                Some(Protocol::Udp)
            )]
        );

        let item = one(
            &corpus(&format!("{dir}12-dns-trailing-star.yaml")).unwrap(),
            &with_digest(),
        );
        assert_eq!(
            item.profile.dns_names().into_iter().collect::<Vec<_>>(),
            ["mycorp.com.*"]
        );
        assert!(warned(&item, "exactly one label"), "{:?}", item.warnings);

        let item = one(
            &corpus(&format!("{dir}13-dns-trailing-dot-normalisation.yaml")).unwrap(),
            &with_digest(),
        );
        assert_eq!(
            item.profile.network.egress,
            [peer(Some("api.stripe.com"), None, tcp443.0, tcp443.1)]
        );

        let item = one(
            &corpus(&format!("{dir}14-recursive-star-rejected.yaml")).unwrap(),
            &with_digest(),
        );
        assert!(item.profile.network.egress.is_empty());
        assert!(warned(&item, "**.example.com."), "{:?}", item.warnings);

        let item = one(
            &corpus(&format!("{dir}17-realistic-stripe-api.yaml")).unwrap(),
            &with_digest(),
        );
        let egress = &item.profile.network.egress;
        assert!(egress.contains(&peer(Some("*.stripe.com"), None, tcp443.0, tcp443.1)));
        assert!(egress.contains(&peer(None, Some("163.0.0.0/16"), tcp443.0, tcp443.1)));
        assert_eq!(egress.len(), 4);
        assert!(
            warned(
                &item,
                "egress[1] (cluster-dns): pods k8s-app=kube-dns in namespaces kubernetes.io/metadata.name=kube-system on UDP-53 (selectors cannot"
            ),
            "{:?}",
            item.warnings
        );

        let p = one(
            &corpus(&format!("{dir}15-egress-and-ingress.yaml")).unwrap(),
            &with_digest(),
        )
        .profile;
        assert_eq!(
            p.network.ingress,
            [peer(
                None,
                Some("192.168.0.0/16"),
                Some(8080),
                Some(Protocol::Tcp)
            )]
        );
    }

    #[test]
    fn multi_document_yaml() {
        let Some(bytes) = corpus(
            "node-agent/head/tests/resources/network-wildcards/20-multi-container-mixed-wildcards.yaml",
        ) else {
            return;
        };
        let err = import(&bytes, &with_digest()).unwrap_err();
        assert!(
            matches!(&err, ImportError::AmbiguousDigest { containers } if containers.len() == 2),
            "{err}"
        );
        let err = import(&bytes, &select("nope")).unwrap_err();
        assert!(
            err.to_string()
                .contains("nw-20-multi-container-frontend, nw-20-multi-container-sidecar"),
            "{err}"
        );
        let p = one(&bytes, &select("nw-20-multi-container-sidecar")).profile;
        assert_eq!(
            p.network.ingress,
            [peer(
                None,
                Some("10.244.0.0/16"),
                Some(9090),
                Some(Protocol::Tcp)
            )]
        );
        assert_eq!(p.network.egress.len(), 4, "two ranges times two ports");
    }

    #[test]
    fn exec_argument_wildcards() {
        let Some(bytes) =
            corpus("node-agent/head/tests/resources/containerprofile-exec-arg-wildcards.yaml")
        else {
            return;
        };
        let item = one(&bytes, &with_digest());
        let p = &item.profile;
        let curl: Vec<_> = exec(p, "/usr/bin/curl")
            .into_iter()
            .map(|e| e.args.clone())
            .collect();
        assert!(curl.contains(&args(&["-s", "*"])), "{curl:?}");
        assert!(curl.contains(&args(&[
            "-s",
            "*",
            "file:///etc/hosts",
            "file:///etc/hostname"
        ])));
        assert_eq!(exec(p, "/bin/sleep")[0].args, None, "⋯⋯ is any arguments");
        assert_eq!(exec(p, "/bin/sh")[0].args, None);
        assert!(
            exec(p, "/bin/echo")
                .iter()
                .any(|e| e.args == args(&["star", "*"]))
        );
        // busybox applets: argv[0] is not the path, the lists are not sorted.
        assert!(
            exec(p, "/bin/busybox")
                .iter()
                .any(|e| e.args == args(&["star", "*"]))
        );
        assert!(warned(&item, "literal argument"));
        assert!(!warned(&item, "sorted"));
    }

    #[test]
    fn grouped_container_profile() {
        let Some(bytes) = corpus("node-agent/head/tests/resources/multisubtype-cp.yaml") else {
            return;
        };
        let err = import(
            &bytes,
            &ImportOptions {
                image_digest: None,
                container: Some("x".into()),
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("app, setup"), "{err}");
        let p = one(&bytes, &select("setup")).profile;
        assert_eq!(
            exec(&p, "/bin/sh")[0].args,
            args(&["-c", "sleep 100; /usr/bin/id"])
        );
        assert_eq!(exec(&p, "/usr/bin/sleep")[0].args, None);
    }

    #[test]
    fn storage_container_profile_p1() {
        let Some(bytes) = corpus("storage/pkg/registry/file/testdata/p1.json") else {
            return;
        };
        let item = one(&bytes, &ImportOptions::default());
        let p = &item.profile;
        assert_eq!(item.container, "coredns");
        assert_eq!(
            p.image.digest,
            "sha256:ead0a4a53df89fd173874b46093b6e62d8c72967bbf606d672c9e8c9b601a4fc"
        );
        assert_eq!(
            p.image.reference.as_deref(),
            Some("registry.k8s.io/coredns/coredns:v1.10.1")
        );
        assert!(warned(&item, "image config digest"));
        assert!(p.opens.iter().any(|o| o.path == "/proc/*/fd"));
        assert!(
            p.opens
                .iter()
                .any(|o| o.path == "/etc/coredns/..2025_06_24_10_28_00.1936584358/Corefile")
        );
        assert!(p.syscalls.contains(&"epoll_pwait".to_string()));
        assert!(p.network.ingress.contains(&peer(
            None,
            Some("10.244.0.1/32"),
            Some(8181),
            Some(Protocol::Tcp)
        )));
        assert!(warned(&item, "HTTP endpoint"));
        assert_eq!(p.learning.completeness, Completeness::Partial);
        assert_eq!(
            p.learning.start.unwrap().to_string(),
            "2025-06-24T10:29:46Z"
        );
    }

    #[test]
    fn storage_container_profile_p8() {
        let Some(bytes) = corpus("storage/pkg/registry/file/testdata/p8.json") else {
            return;
        };
        let item = one(&bytes, &ImportOptions::default());
        let p = &item.profile;
        assert_eq!(item.container, "server");
        assert_eq!(
            p.image.digest,
            "sha256:37b48b077af9130a6bd3b2fcb6d473e89eafc488262256f38fd663e890133af8"
        );
        assert!(!warned(&item, "config digest"));
        assert_eq!(p.learning.completeness, Completeness::Complete);
        assert!(p.capabilities.contains(&"NET_ADMIN".to_string()));
        assert_eq!(exec(p, "/bin/uname")[0].args, args(&[]));
        assert_eq!(
            exec(p, "/usr/bin/basename")[0].args,
            args(&["/app/build/install/hipstershop/bin/AdService"])
        );
        assert!(p.network.egress.contains(&peer(
            None,
            Some("169.254.169.254/32"),
            Some(80),
            Some(Protocol::Tcp)
        )));
    }

    #[test]
    fn storage_gob_application_profile() {
        let Some(bytes) = corpus(
            "storage/pkg/registry/file/testdata/data.zip.decoded/applicationprofiles/default/default-replicaset-nginx-748c667d99-cf81-0278.json",
        ) else {
            return;
        };
        let err = import(&bytes, &ImportOptions::default()).unwrap_err();
        assert!(err.to_string().contains("\"nginx\""), "{err}");
        let item = one(&bytes, &with_digest());
        let p = &item.profile;
        assert_eq!(item.container, "nginx");
        assert_eq!(
            p.learning.start.unwrap().to_string(),
            "2023-12-05T15:28:53Z"
        );
        assert_eq!(p.learning.completeness, Completeness::Partial);
        assert_eq!(
            p.capabilities,
            ["CHOWN", "NET_BIND_SERVICE", "SETGID", "SETUID"]
        );
        assert_eq!(exec(p, "/usr/bin/sort")[0].args, args(&["-V"]));
        assert_eq!(exec(p, "/usr/bin/md5sum")[0].args, None);
        assert!(p.opens.iter().any(|o| o.path == "/"));
        assert!(
            warned(&item, "dropped 1 open(s): \"\" (empty path)"),
            "{:?}",
            item.warnings
        );
        assert_eq!(p.opens.len(), 40);
    }

    #[test]
    fn whole_storage_corpus_imports() {
        let Some(_) = corpus("README.md") else {
            return;
        };
        let base = Path::new(CORPUS).join("storage/pkg/registry/file/testdata");
        let mut files = Vec::new();
        for dir in [
            "data.zip.decoded/applicationprofiles",
            "data.zip.decoded/networkneighborses",
        ] {
            for ns in std::fs::read_dir(base.join(dir)).unwrap() {
                for f in std::fs::read_dir(ns.unwrap().path()).unwrap() {
                    files.push(f.unwrap().path());
                }
            }
        }
        for i in 1..=12 {
            files.push(base.join(format!("p{i}.json")));
        }
        assert_eq!(files.len(), 32);
        let mut opens = 0;
        for f in &files {
            let bytes = std::fs::read(f).unwrap();
            let imported = import(&bytes, &ImportOptions::default())
                .or_else(|_| import(&bytes, &with_digest()))
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            for item in imported {
                assert!(validate(&item.profile).is_empty());
                opens += item.profile.opens.len();
            }
        }
        assert!(opens > 2800, "{opens}");
        let gadget = corpus("storage/pkg/registry/file/testdata/data.zip.decoded/applicationprofiles/gadget/gadget-daemonset-gadget-0d7c-fd3c.json").unwrap();
        let p = one(&gadget, &with_digest()).profile;
        assert!(p.capabilities.contains(&"BPF".to_string()));
        assert!(p.opens.len() > 2000);
    }

    #[test]
    fn network_neighborhood_and_legacy_fields() {
        let Some(bytes) = corpus(
            "storage/pkg/apis/softwarecomposition/v1beta1/networkpolicy/v2/testdata/nn-operator.json",
        ) else {
            return;
        };
        let all = import(
            &bytes,
            &ImportOptions {
                image_digest: Some(DIGEST.into()),
                container: Some("operator".into()),
            },
        );
        let p = &all.expect("imports")[0].profile;
        assert!(
            p.dns_names().contains("report.armo.cloud"),
            "{:?}",
            p.dns_names()
        );

        let bytes =
            corpus("node-agent/legacy-kapprofiler-v1/malicious-job-app-profile.yaml").unwrap();
        let item = one(&bytes, &with_digest());
        assert!(item.profile.dns_names().contains("dl.k8s.io"));
        assert!(item.profile.network.egress.contains(&peer(
            None,
            Some("34.107.204.206/32"),
            Some(443),
            Some(Protocol::Tcp)
        )));
        assert!(
            warned(&item, "\"./kubectl\" (relative path)"),
            "{:?}",
            item.warnings
        );

        let bytes = corpus("node-agent/legacy-kapprofiler-v1/old-nginx-app-profile.yaml").unwrap();
        let err = import(&bytes, &with_digest()).unwrap_err();
        assert!(matches!(
            err,
            ImportError::Unsupported {
                field: "apiVersion",
                ..
            }
        ));
        assert!(err.to_string().contains("\"kubescape.io/v1\""), "{err}");
    }

    #[test]
    fn unknown_api_version_and_kind() {
        let err = import(
            b"{\"apiVersion\": \"v1\", \"kind\": \"ApplicationProfile\"}",
            &with_digest(),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("apiVersion: unsupported \"v1\""), "{text}");
        assert!(
            text.contains(KUBESCAPE_API_VERSION) && text.contains("ContainerProfile"),
            "{text}"
        );

        let yaml =
            format!("apiVersion: {KUBESCAPE_API_VERSION}\nkind: SeccompProfile\nspec: {{}}\n");
        let err = import(yaml.as_bytes(), &with_digest()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("kind: unsupported \"SeccompProfile\""),
            "{err}"
        );

        let err = import(b"kind: ContainerProfile\n", &with_digest()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("apiVersion: unsupported missing"),
            "{err}"
        );

        let err = import(b"- a\n- b\n", &with_digest()).unwrap_err();
        assert!(matches!(err, ImportError::NotAnObject { .. }), "{err}");
    }

    #[test]
    fn missing_digest_names_the_container() {
        let doc = format!(
            r#"{{"apiVersion": "{KUBESCAPE_API_VERSION}", "kind": "ApplicationProfile",
                "spec": {{"containers": [
                    {{"name": "web", "imageID": "docker-pullable://nginx@sha256:{hex}"}},
                    {{"name": "sidecar", "imageID": "nginx:latest"}}]}}}}"#,
            hex = &DIGEST[7..]
        );
        let err = import(doc.as_bytes(), &ImportOptions::default()).unwrap_err();
        assert!(
            matches!(&err, ImportError::MissingDigest { container, image_id: Some(id) } if container == "sidecar" && id == "nginx:latest"),
            "{err}"
        );
        assert!(err.to_string().contains("\"sidecar\""));
        let p = one(
            doc.as_bytes(),
            &ImportOptions {
                image_digest: None,
                container: Some("web".into()),
            },
        )
        .profile;
        assert_eq!(p.image.digest, DIGEST);
        let err = import(
            doc.as_bytes(),
            &ImportOptions {
                image_digest: Some("sha256:abc".into()),
                container: Some("web".into()),
            },
        )
        .unwrap_err();
        assert!(matches!(err, ImportError::InvalidDigest(_)));
    }

    #[test]
    fn truncated_and_mistyped_input() {
        let err = import(
            b"{\"apiVersion\": \"spdx.softwarecomposition.kubescape.io/v1beta1\", \"kind\": \"Appl",
            &with_digest(),
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                ImportError::Document(DocumentError::Syntax {
                    position: Some(_),
                    ..
                })
            ),
            "{err}"
        );
        let err = import(&[0xff, 0xfe], &with_digest()).unwrap_err();
        assert!(
            matches!(err, ImportError::Document(DocumentError::Utf8 { .. })),
            "{err}"
        );
        let doc = format!(
            r#"{{"apiVersion": "{KUBESCAPE_API_VERSION}", "kind": "ApplicationProfile",
                "spec": {{"containers": [{{"name": "a", "execs": [{{"path": 5}}]}}]}}}}"#
        );
        let err = import(doc.as_bytes(), &with_digest()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("spec.containers[0].execs[0].path: invalid type: integer `5`"),
            "{err}"
        );
        let err = import(
            format!("apiVersion: {KUBESCAPE_API_VERSION}\nkind: ApplicationProfile\nspec: {{}}\n")
                .as_bytes(),
            &with_digest(),
        )
        .unwrap_err();
        assert!(matches!(err, ImportError::NoContainers), "{err}");
    }

    #[test]
    fn same_digest_containers_merge_and_lists_expand() {
        let container = |name: &str, exec: &str| {
            format!(
                r#"{{"name": "{name}", "imageID": "{DIGEST}", "execs": [{{"path": "{exec}", "args": ["{exec}", "-x"]}}], "capabilities": ["CAP_KILL", "FLY"], "opens": [{{"path": "/data//⋯/x", "flags": ["O_RDONLY", "O_BOGUS"]}}]}}"#
            )
        };
        let doc = format!(
            r#"{{"apiVersion": "v1", "kind": "List", "items": [{{"apiVersion": "{KUBESCAPE_API_VERSION}", "kind": "ApplicationProfile",
                "metadata": {{"annotations": {{"kubescape.io/completion": "complete"}}}},
                "spec": {{"containers": [{}, {}]}}}}]}}"#,
            container("a", "/bin/a"),
            container("b", "/bin/b")
        );
        let item = one(doc.as_bytes(), &ImportOptions::default());
        assert_eq!(item.container, "a, b");
        assert_eq!(item.profile.execs.len(), 2);
        assert_eq!(exec(&item.profile, "/bin/b")[0].args, args(&["-x"]));
        assert_eq!(item.profile.capabilities, ["KILL"]);
        assert_eq!(item.profile.opens[0].path, "/data/*/x");
        assert_eq!(item.profile.opens[0].flags.names(), ["O_RDONLY"]);
        assert_eq!(item.profile.learning.observed_containers, 2);
        assert_eq!(item.profile.learning.completeness, Completeness::Complete);
        assert!(
            warned(&item, "a: dropped 1 unknown capabilit(ies): \"FLY\""),
            "{:?}",
            item.warnings
        );
        assert!(
            warned(&item, "b: skipped unknown open flag(s): \"O_BOGUS\""),
            "{:?}",
            item.warnings
        );
        assert!(warned(&item, "merged into one profile"));
    }

    #[test]
    fn path_mapping() {
        assert_eq!(map_path("/proc/⋯/stat"), Ok(("/proc/*/stat".into(), false)));
        assert_eq!(map_path("/etc/*"), Ok(("/etc/**".into(), false)));
        assert_eq!(map_path("/a/*/*/b"), Ok(("/a/**/b".into(), false)));
        assert_eq!(
            map_path("/var/log/app-⋯.log"),
            Ok(("/var/log/*".into(), true))
        );
        assert_eq!(map_path("//usr/./lib/"), Ok(("/usr/lib".into(), false)));
        assert_eq!(map_path("/"), Ok(("/".into(), false)));
        assert!(map_path("lib/x").is_err());
        assert!(map_path("").is_err());
        assert!(map_path("/lib/lib*.so").is_err());
        assert_eq!(
            map_dns("Svc.⋯.Cluster.Local."),
            Ok(("svc.*.cluster.local".into(), false))
        );
        assert!(map_dns("a.*.b").is_err());
        assert_eq!(map_ip("10.1.2.3/8"), Ok("10.0.0.0/8".into()));
        assert_eq!(map_ip("2001:DB8::1"), Ok("2001:db8::1/128".into()));
        assert_eq!(
            digest_of_image_id(&format!("docker-pullable://nginx@{DIGEST}")),
            Some(DIGEST.into())
        );
        assert_eq!(
            digest_of_image_id(&format!(
                "docker://{}",
                DIGEST.to_uppercase().replace("SHA256", "sha256")
            )),
            Some(DIGEST.into())
        );
        assert_eq!(digest_of_image_id("nginx:latest"), None);
    }

    fn container_profile(spec: &str) -> String {
        format!(
            "apiVersion: spdx.softwarecomposition.kubescape.io/v1beta1\nkind: ContainerProfile\nmetadata:\n  name: x\nspec:\n{spec}"
        )
    }

    fn import_with_digest(text: &str) -> Result<Vec<Imported>, ImportError> {
        let options = ImportOptions {
            image_digest: Some(DIGEST.into()),
            container: None,
        };
        import(text.as_bytes(), &options)
    }

    #[test]
    fn hosts_times_ports_is_bounded() {
        // 400 names × 400 ports would be 160,000 peers: cut at the bound, marked truncated.
        let names: Vec<String> = (0..400).map(|i| format!("h{i}.example.com")).collect();
        let ports: Vec<String> = (1..=400)
            .map(|p| format!("{{name: TCP-{p}, protocol: TCP, port: {p}}}"))
            .collect();
        let spec = format!(
            "  egress:\n  - identifier: x\n    type: external\n    dnsNames: [{}]\n    ports: [{}]\n",
            names.join(", "),
            ports.join(", ")
        );
        let imported = import_with_digest(&container_profile(&spec)).unwrap();
        let p = &imported[0].profile;
        assert_eq!(p.network.egress.len(), MAX_ENTRIES_PER_SET);
        assert_eq!(p.learning.truncated, [crate::profile::Category::Egress]);
    }

    #[test]
    fn a_trailing_empty_document_is_fine() {
        let text = container_profile("  syscalls: [read]\n") + "---\n";
        let imported = import_with_digest(&text).unwrap();
        assert_eq!(imported[0].profile.syscalls, ["read"]);
    }

    #[test]
    fn odd_ports_are_refused_not_widened() {
        let spec = "  egress:\n  - identifier: x\n    type: external\n    dns: a.example.com\n    ports: [{name: TCP-443, protocol: TCP, port: 443.5}, {name: ICMP-0, protocol: '', port: 0}]\n";
        let imported = import_with_digest(&container_profile(spec)).unwrap();
        // Both ports unusable: the neighbour is dropped rather than allowed on any port.
        assert!(imported[0].profile.network.egress.is_empty());
        assert!(
            imported[0]
                .warnings
                .iter()
                .any(|w| w.contains("not an integer")),
            "{:?}",
            imported[0].warnings
        );
    }

    #[test]
    fn too_many_containers_are_refused() {
        let containers: String = (0..=MAX_CONTAINERS)
            .map(|i| format!("    - name: c{i}\n      imageID: docker-pullable://x@{DIGEST}\n"))
            .collect();
        let text = format!(
            "apiVersion: spdx.softwarecomposition.kubescape.io/v1beta1\nkind: ApplicationProfile\nmetadata:\n  name: x\nspec:\n  containers:\n{containers}"
        );
        let err = import(text.as_bytes(), &ImportOptions::default()).unwrap_err();
        assert!(
            err.to_string().contains("more than the limit of 256"),
            "{err}"
        );
    }

    #[test]
    fn kapprofiler_args_keep_their_first_argument() {
        let doc = |labels: &str| {
            format!(
                "apiVersion: spdx.softwarecomposition.kubescape.io/v1beta1\nkind: ContainerProfile\nmetadata:\n  name: x\n{labels}spec:\n  execs:\n  - path: /bin/kubectl\n    args: [get, secrets]\n  - path: /bin/cat\n    args: [cat, /etc/passwd]\n"
            )
        };
        let args = |text: String| {
            let imported = import_with_digest(&text).unwrap();
            imported[0]
                .profile
                .execs
                .iter()
                .map(|e| (e.path.clone(), e.args.clone().unwrap_or_default()))
                .collect::<Vec<_>>()
        };
        let kap = args(doc(
            "  labels:\n    kapprofiler.kubescape.io/final: \"true\"\n",
        ));
        assert_eq!(
            kap,
            [
                ("/bin/cat".to_string(), vec!["/etc/passwd".to_string()]),
                (
                    "/bin/kubectl".to_string(),
                    vec!["get".to_string(), "secrets".to_string()]
                ),
            ]
        );
        let current = args(doc(""));
        assert_eq!(current[1].1, ["secrets"]);
    }
}
