//! The imprint Profile v1 document.
//!
//! A profile is what one container image was seen to do: the programs it runs, the
//! files it opens, its syscalls and capabilities, and its network peers. This crate is
//! pure: no file or network I/O. It gives
//!
//! - the types ([`Profile`]) and their published JSON Schema ([`json_schema`], checked
//!   in as `schema/profile.v1.schema.json`);
//! - reading JSON or YAML with located errors ([`parse_profile`]), and writing the
//!   canonical JSON ([`to_canonical_json`]), its digest ([`digest`]), and canonical
//!   YAML ([`to_yaml`]);
//! - validation ([`validate()`]) that names the field path of every problem;
//! - path patterns with a compiled matcher ([`pattern::PatternSet`]);
//! - [`merge()`], [`diff`] and patch, Kubescape import ([`kubescape`]) and seccomp
//!   export ([`seccomp`]).
//!
//! The namespaces ([`crd`], [`diff`], [`kubescape`], [`names`], [`pattern`],
//! [`seccomp`]) are public; everything else is re-exported here.

#![warn(unreachable_pub)]

pub mod crd;
pub mod diff;
mod digest;
mod document;
mod duration;
pub mod kubescape;
mod merge;
pub mod names;
pub mod pattern;
mod profile;
pub mod seccomp;
mod validate;

// Reading and writing profile documents.
pub use document::{
    DEFAULT_MAX_DOCUMENT_BYTES, DocumentError, Format, Position, digest, from_text, parse_profile,
    parse_profile_with_limit, to_canonical_json, to_pretty_json, to_yaml,
};
// Content digests.
pub use digest::{Digest, DigestAlgorithm, DigestError};
// The duration syntax of files and flags.
pub use duration::{DurationError, parse_duration};
// Merging profiles.
pub use merge::{MergeError, merge, merge_all};
// Open flags by name (also in [`names`]).
pub use names::{OpenFlags, UnknownOpenFlag};
// The Profile v1 types.
pub use profile::{
    API_VERSION, Category, Completeness, Exec, Image, KIND, Learning, Network, ObjectMeta, Open,
    Peer, Profile, Protocol,
};
// Validation, and the checks of single values it is made of.
pub use validate::{DnsNameError, ValidationIssue, check_dns_name, validate};

/// The JSON Schema (draft 2020-12) of Profile v1, generated from the types.
pub fn json_schema() -> serde_json::Value {
    json_schema_for::<Profile>("https://imprint.dev/schemas/profile.v1.schema.json")
}

/// The JSON Schema (draft 2020-12) of any type, as imprint publishes its schemas:
/// what deserialization accepts, with `$id` set.
pub fn json_schema_for<T: schemars::JsonSchema>(id: &str) -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12()
        .for_deserialize()
        .into_generator();
    let mut schema = generator.into_root_schema_for::<T>();
    schema.insert("$id".into(), id.into());
    schema.to_value()
}
