//! The imprint Profile v1 document.
//!
//! A profile is what one container image was seen to do: the programs it runs, the
//! files it opens, its syscalls and capabilities, and its network peers. This crate is
//! pure: no file or network I/O. It gives
//!
//! - the types ([`Profile`]) and their published JSON Schema ([`json_schema`], checked
//!   in as `schema/profile.v1.schema.json`);
//! - reading JSON or YAML with located errors ([`parse_profile`]), and writing the
//!   canonical JSON, its digest, and canonical YAML ([`document`]);
//! - validation ([`validate()`]) that names the field path of every problem;
//! - path patterns with a compiled matcher ([`pattern::PatternSet`]);
//! - [`merge()`], [`diff`] and patch, Kubescape import ([`kubescape`]) and seccomp
//!   export ([`seccomp`]).

pub mod crd;
pub mod diff;
pub mod document;
pub mod kubescape;
pub mod merge;
pub mod names;
pub mod pattern;
pub mod profile;
pub mod seccomp;
pub mod validate;

pub use document::{DocumentError, digest, parse_profile, to_canonical_json, to_yaml};
pub use merge::{MergeError, merge, merge_all};
pub use names::OpenFlags;
pub use profile::{
    API_VERSION, Category, Completeness, Exec, Image, KIND, Learning, Network, ObjectMeta, Open,
    Peer, Profile, Protocol,
};
pub use validate::{ValidationIssue, validate};

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
