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

mod conversion;
mod documents;
mod model;
mod network;
mod notes;
#[cfg(test)]
mod tests;

use crate::digest::Digest;
use crate::document::{DEFAULT_MAX_DOCUMENT_BYTES, DocumentError, check_text};
use crate::merge::{MergeError, merge};
use crate::profile::{Category, Profile};
use crate::validate::{MAX_ENTRIES_PER_SET, ValidationIssue, validate};

use conversion::convert;
use documents::{parse_documents, read_document, resolve_digest, split_documents};
use notes::Notes;

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
    pub image_digest: Option<Digest>,
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
    if options.image_digest.is_some() && candidates.len() > 1 {
        return Err(ImportError::AmbiguousDigest {
            containers: candidates.iter().map(|c| c.name.clone()).collect(),
        });
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
