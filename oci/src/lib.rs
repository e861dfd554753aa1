//! Profiles as OCI artifacts bound to image digests.
//!
//! [`layout`] builds the artifact a profile travels as and checks one pulled back;
//! [`Registry`] pushes, pulls, discovers, signs, attests and verifies it, against a
//! verification [`policy`]; [`signing`] holds cosign's and in-toto's formats and
//! [`credentials`] finds registry credentials where docker, podman and oras keep them;
//! [`redact`] hides the credentials in URLs before they are printed. Those five are
//! namespaces; everything else is re-exported here. The formats
//! are described in `docs/profile-format.md` (the artifact) and `docs/trust.md`.

#![warn(unreachable_pub)]

mod bundle_verify;
mod cache;
pub mod credentials;
mod evidence;
mod keys;
pub mod layout;
mod manifests;
pub mod policy;
pub mod redact;
mod registry;
mod revocation;
pub mod signing;
mod verify;

// The registry client and what its verbs return.
pub use registry::{
    DEFAULT_MAX_LISTING_BYTES, Discovered, Discovery, MAX_REFERRERS_EXAMINED, Pulled, Reference,
    Registry, RegistryError, RegistryOptions, Written, parse_reference,
};
// The content-addressed cache pulls go through.
pub use cache::BlobCache;
// Signing and verifying keys, in cosign's and sigstore's formats.
pub use keys::{KeyAlgorithm, KeyError, SigningKey, VerifyingKey};
// Sigstore bundle verification (by key or keyless).
pub use bundle_verify::{BundleError, BundleTrust, Signed, Signer, VerifiedPayload, verify_bundle};
pub use evidence::{Evidence, Piece};
pub use verify::Rejection;
// Signed revocations of profile artifacts, written and read from the image.
pub use registry::Revoked;
pub use revocation::{
    REVOCATION_PREDICATE_TYPE, RejectedRevocation, RevocationClaim, RevocationClaims,
    RevocationError, RevocationPredicate, Revocations, VerifiedRevocation,
    check_revocation_statement, revocation_statement,
};

/// `artifactType` of a profile artifact and media type of its canonical profile layer.
pub const PROFILE_MEDIA_TYPE: &str = "application/vnd.imprint.profile.v1+json";

/// Media type of the OCI empty descriptor used as the artifact's config.
pub const EMPTY_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";

/// Media type of the tar+gzip layer holding the `Profile` Kubernetes object.
pub const PROFILE_TARBALL_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
