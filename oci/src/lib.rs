//! Profiles as OCI artifacts bound to image digests.
//!
//! [`layout`] builds the artifact a profile travels as and checks one pulled back;
//! [`registry`] pushes and pulls it. Discovery (referrers and the fallback tag),
//! credentials, signing and verification arrive with their issues (see DESIGN.md,
//! "Artifact" and "Signatures and attestations").

pub mod bundle_verify;
pub mod cache;
pub mod credentials;
pub mod keys;
pub mod layout;
pub mod manifests;
pub mod policy;
pub mod registry;
pub mod signing;
pub mod verify;

/// `artifactType` of a profile artifact and media type of its canonical profile layer.
pub const PROFILE_MEDIA_TYPE: &str = "application/vnd.imprint.profile.v1+json";

/// Media type of the OCI empty descriptor used as the artifact's config.
pub const EMPTY_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";

/// Media type of the tar+gzip layer holding the `Profile` Kubernetes object.
pub const PROFILE_TARBALL_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
