//! The Profile v1 document.
//!
//! One profile describes one image manifest digest (one platform). Its behaviour sets
//! are sets: [`Profile::normalize`] sorts and deduplicates them, which is what makes the
//! canonical JSON, the digest and [`crate::merge`] well defined.

use std::collections::{BTreeMap, BTreeSet};

use crate::digest::Digest;
use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::names::OpenFlags;

/// The only `apiVersion` this crate reads and writes.
pub const API_VERSION: &str = "imprint.dev/v1";
/// The profile's `kind`.
pub const KIND: &str = "Profile";

/// A learned behaviour profile for one container image digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "imprint Profile v1")]
pub struct Profile {
    /// Always `imprint.dev/v1`.
    #[schemars(extend("const" = "imprint.dev/v1"))]
    pub api_version: String,
    /// Always `Profile`.
    #[schemars(extend("const" = "Profile"))]
    pub kind: String,
    /// The image this profile describes.
    pub image: Image,
    /// How and when the behaviour was learned.
    pub learning: Learning,
    /// Programs executed.
    #[serde(default)]
    pub execs: Vec<Exec>,
    /// Files opened, one entry per path pattern.
    #[serde(default)]
    pub opens: Vec<Open>,
    /// System call names.
    #[serde(default)]
    pub syscalls: Vec<String>,
    /// Capability names without the `CAP_` prefix.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Network peers.
    #[serde(default)]
    pub network: Network,
    /// Kubernetes object metadata, present when the profile is applied as a `Profile`
    /// object (from the artifact's tar+gzip layer, through Flux or Argo CD). It names
    /// the object and is not behaviour: the canonical form and digest leave it out, and
    /// merge drops it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ObjectMeta>,
}

/// The parts of Kubernetes `ObjectMeta` a profile object carries. Other fields an API
/// server adds (uid, resourceVersion, managedFields…) are accepted and ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// The object's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The object's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The image a profile is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Image {
    /// The image manifest digest (`sha256:<64 hex>`); the profile applies to it only.
    pub digest: Digest,
    /// A human-readable reference such as `registry.example/app:1.2`; informative only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The platform (`os/arch[/variant]`) of the manifest, when learned from an index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$"))]
    pub platform: Option<String>,
}

/// Whether the learning saw all of the image's behaviour it was meant to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Completeness {
    /// Some behaviour may be missing: a container was already running when learning
    /// began, the period was cut short, or a size bound was hit.
    Partial,
    /// Every container was observed from its start for the whole learning period.
    Complete,
}

/// A behaviour category, used to say which bound was hit.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum Category {
    /// `execs`
    Execs,
    /// `opens`
    Opens,
    /// `syscalls`
    Syscalls,
    /// `capabilities`
    Capabilities,
    /// `network.egress`
    Egress,
    /// `network.ingress`
    Ingress,
}

impl Category {
    /// The field path this category lives at.
    pub fn field(self) -> &'static str {
        match self {
            Category::Execs => "execs",
            Category::Opens => "opens",
            Category::Syscalls => "syscalls",
            Category::Capabilities => "capabilities",
            Category::Egress => "network.egress",
            Category::Ingress => "network.ingress",
        }
    }
}

/// How the behaviour was learned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Learning {
    /// When the first behaviour was observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Timestamp>,
    /// When the last behaviour was observed or learning stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<Timestamp>,
    /// `complete` or `partial`.
    pub completeness: Completeness,
    /// Containers observed. When profiles merge this is the largest count of any
    /// input, a lower bound: a count cannot be summed idempotently.
    #[serde(default)]
    pub observed_containers: u64,
    /// Nodes the behaviour was observed on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    /// Categories whose size bound was hit while learning; behaviour past the bound
    /// was dropped, so such a profile is always `partial`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub truncated: Vec<Category>,
}

/// A program the image executes.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Exec {
    /// The executable's path pattern.
    pub path: String,
    /// The arguments after `argv[0]`; `*` stands for any one argument. Absent means
    /// any arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
}

/// A file the image opens, with every flag it was opened with.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Open {
    /// The file's path pattern.
    pub path: String,
    /// The union of the flags seen on this path.
    pub flags: OpenFlags,
}

/// Network peers, split by direction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Network {
    /// Peers the image connects to, and DNS names it asks for.
    #[serde(default)]
    pub egress: Vec<Peer>,
    /// Peers that connect to the image.
    #[serde(default)]
    pub ingress: Vec<Peer>,
}

impl Network {
    /// Whether both directions are empty.
    pub fn is_empty(&self) -> bool {
        self.egress.is_empty() && self.ingress.is_empty()
    }
}

/// A transport protocol.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    /// TCP
    Tcp,
    /// UDP
    Udp,
    /// SCTP
    Sctp,
}

/// A network peer: a DNS name or an address range (not both), and optionally a port
/// and protocol. Without `dns` and `cidr` it means any peer on that port.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Peer {
    /// A DNS name; `*` stands for any one label (`*.example.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<String>,
    /// An address range such as `10.0.0.0/8` or `2001:db8::1/128`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<String>,
    /// The remote port for egress, the local port for ingress; absent means any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The protocol; absent means any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
}

impl Profile {
    /// An empty, partial profile for `digest`.
    pub fn new(digest: Digest) -> Profile {
        Profile {
            api_version: API_VERSION.to_string(),
            kind: KIND.to_string(),
            image: Image {
                digest,
                reference: None,
                platform: None,
            },
            learning: Learning {
                start: None,
                end: None,
                completeness: Completeness::Partial,
                observed_containers: 0,
                nodes: Vec::new(),
                truncated: Vec::new(),
            },
            execs: Vec::new(),
            opens: Vec::new(),
            syscalls: Vec::new(),
            capabilities: Vec::new(),
            network: Network::default(),
            metadata: None,
        }
    }

    /// Puts every set in canonical order without duplicates; opens of one path
    /// become one entry with the union of their flags. Idempotent.
    pub fn normalize(&mut self) {
        sort_dedup(&mut self.execs);
        sort_dedup(&mut self.syscalls);
        sort_dedup(&mut self.capabilities);
        sort_dedup(&mut self.network.egress);
        sort_dedup(&mut self.network.ingress);
        sort_dedup(&mut self.learning.nodes);
        sort_dedup(&mut self.learning.truncated);
        self.opens.sort_by(|a, b| a.path.cmp(&b.path));
        self.opens.dedup_by(|later, kept| {
            if later.path == kept.path {
                kept.flags |= later.flags;
                true
            } else {
                false
            }
        });
        if !self.learning.truncated.is_empty() {
            self.learning.completeness = Completeness::Partial;
        }
    }

    /// A normalised copy.
    pub fn normalized(mut self) -> Profile {
        self.normalize();
        self
    }

    /// Number of behaviour entries across all sets.
    pub fn entry_count(&self) -> usize {
        self.execs.len()
            + self.opens.len()
            + self.syscalls.len()
            + self.capabilities.len()
            + self.network.egress.len()
            + self.network.ingress.len()
    }

    /// The distinct DNS names of the egress set.
    pub fn dns_names(&self) -> BTreeSet<&str> {
        self.network
            .egress
            .iter()
            .filter_map(|p| p.dns.as_deref())
            .collect()
    }
}

fn sort_dedup<T: Ord>(v: &mut Vec<T>) {
    v.sort_unstable();
    v.dedup();
}
