//! The profile artifact's layout (`docs/profile-format.md`): building it, and checking
//! one that came back from a registry. Pure: the registry client moves the bytes.
//!
//! An OCI image manifest 1.1 with
//! - `artifactType: application/vnd.imprint.profile.v1+json` and the empty config;
//! - layer 0: the canonical profile JSON;
//! - layer 1: a tar+gzip holding `profile.yaml`, the profile as a Kubernetes `Profile`
//!   object, so Flux (`layerSelector` + `extract`) and Argo CD (one tar+gzip layer)
//!   can deliver it;
//! - `subject`: the image manifest's descriptor; standard annotations.
//!
//! Both layers are byte-for-byte reproducible (fixed tar headers, gzip mtime 0), so
//! pushing the same profile twice gives the same artifact digest.

use std::collections::BTreeMap;
use std::io::Read;

use imprint_schema::{Digest, ObjectMeta, Profile};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{EMPTY_CONFIG_MEDIA_TYPE, PROFILE_MEDIA_TYPE, PROFILE_TARBALL_MEDIA_TYPE};

/// Media type of an OCI image manifest.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of an OCI image index.
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// Docker's schema 2 manifest, which images (the subjects) may still use.
pub const DOCKER_MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker's manifest list.
pub const DOCKER_MANIFEST_LIST_MEDIA_TYPE: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
/// The empty config blob, `{}`.
pub const EMPTY_CONFIG: &[u8] = b"{}";
/// Annotation: when the artifact was created (RFC 3339).
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";
/// Annotation: a layer's file name.
pub const ANNOTATION_TITLE: &str = "org.opencontainers.image.title";
/// Annotation: the image digest the profile describes.
pub const ANNOTATION_IMAGE_DIGEST: &str = "dev.imprint.image.digest";
/// Annotation: the image reference the profile was learned from.
pub const ANNOTATION_IMAGE_REFERENCE: &str = "dev.imprint.image.reference";
/// The file inside the tar+gzip layer.
pub const TARBALL_FILE: &str = "profile.yaml";
/// Default bound on a manifest or a layer (4 MiB).
pub const DEFAULT_MAX_BLOB_BYTES: u64 = 4 << 20;

/// An OCI content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The content's media type.
    pub media_type: String,
    /// The content's digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// The artifact type, on descriptors of artifacts (referrers lists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The platform, on index entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

impl Descriptor {
    /// A descriptor for some bytes.
    pub fn of(media_type: &str, data: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest: Digest::sha256_of(data),
            size: data.len() as u64,
            artifact_type: None,
            annotations: BTreeMap::new(),
            platform: None,
        }
    }
}

/// An index entry's platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// `amd64`, `arm64`…
    pub architecture: String,
    /// `linux`…
    pub os: String,
    /// `v8`…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// `os/arch[/variant]`, as a profile's `image.platform` writes it.
    pub fn to_profile_string(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }
}

/// An OCI image manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// [`MANIFEST_MEDIA_TYPE`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The artifact type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The config descriptor.
    pub config: Descriptor,
    /// The layers.
    pub layers: Vec<Descriptor>,
    /// What this artifact refers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An OCI image index (a multi-platform image, or a referrers list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// [`INDEX_MEDIA_TYPE`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The entries.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

impl Index {
    /// An empty index.
    pub fn new() -> Index {
        Index {
            schema_version: 2,
            media_type: Some(INDEX_MEDIA_TYPE.to_string()),
            manifests: Vec::new(),
        }
    }
}

impl Default for Index {
    fn default() -> Self {
        Index::new()
    }
}

/// A referrers list (the referrers API's answer, or a fallback-tag index) read
/// entry by entry: anyone who can push can add to a list, so one malformed entry
/// is set aside with the reason, never a reason to lose the others.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// The entries that are descriptors.
    pub manifests: Vec<Descriptor>,
    /// The entries that are not, as JSON text (cut to 200 bytes), with why.
    pub rejected: Vec<(String, String)>,
}

impl Listing {
    /// Reads an image index's `manifests`, keeping what parses. Fails only when
    /// the whole is not a JSON object with a `manifests` array (or none).
    pub fn parse(value: serde_json::Value) -> Result<Listing, LayoutError> {
        let serde_json::Value::Object(mut object) = value else {
            return Err(LayoutError::Manifest("an index is a JSON object".into()));
        };
        let entries = match object.remove("manifests") {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(serde_json::Value::Array(entries)) => entries,
            Some(_) => return Err(LayoutError::Manifest("manifests is not an array".into())),
        };
        let mut listing = Listing::default();
        for entry in entries {
            match Descriptor::deserialize(&entry) {
                Ok(descriptor) => listing.manifests.push(descriptor),
                Err(e) => {
                    let mut text = entry.to_string();
                    if text.len() > 200 {
                        let cut = (0..=200).rev().find(|&i| text.is_char_boundary(i));
                        text.truncate(cut.unwrap_or(0));
                    }
                    listing.rejected.push((text, e.to_string()));
                }
            }
        }
        Ok(listing)
    }

    /// The index to write back: the entries that parsed.
    pub fn into_index(self) -> Index {
        Index {
            manifests: self.manifests,
            ..Index::new()
        }
    }
}

/// The OCI 1.1 referrers fallback tag for a subject digest: `sha256-<hex>`.
pub fn fallback_tag(subject_digest: &Digest) -> String {
    subject_digest.tag_form()
}

/// The referrers-list descriptor of a built artifact.
pub fn referrer_descriptor(artifact: &Artifact) -> Descriptor {
    Descriptor {
        media_type: MANIFEST_MEDIA_TYPE.to_string(),
        digest: artifact.digest.clone(),
        size: artifact.manifest_bytes.len() as u64,
        artifact_type: artifact.manifest.artifact_type.clone(),
        annotations: artifact.manifest.annotations.clone(),
        platform: None,
    }
}

/// Some content and its descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// Its descriptor.
    pub descriptor: Descriptor,
    /// The bytes.
    pub data: Vec<u8>,
}

impl Blob {
    fn new(media_type: &str, data: Vec<u8>) -> Blob {
        Blob {
            descriptor: Descriptor::of(media_type, &data),
            data,
        }
    }
}

/// A built profile artifact, ready to push: blobs first, then the manifest.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The manifest.
    pub manifest: Manifest,
    /// Its serialized bytes (what is pushed, and what the digest is of).
    pub manifest_bytes: Vec<u8>,
    /// The digest of the manifest bytes: the artifact's digest.
    pub digest: Digest,
    /// The empty config.
    pub config: Blob,
    /// The canonical profile layer, then the tar+gzip layer.
    pub layers: Vec<Blob>,
}

/// What is wrong with an artifact, built or pulled.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// The subject is not the image the profile describes.
    #[error("subject {subject} is not the profile's image digest {profile}")]
    SubjectMismatch {
        /// The manifest's (or the caller's) subject digest.
        subject: Digest,
        /// The profile's `image.digest`.
        profile: Digest,
    },
    /// The subject descriptor is not an image manifest.
    #[error(
        "subject media type {0:?} is not an image manifest; resolve an index to its platform manifest first"
    )]
    SubjectMediaType(String),
    /// Content larger than the bound.
    #[error("{what} is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// What it is.
        what: String,
        /// Its size (declared or real).
        size: u64,
        /// The bound.
        limit: u64,
    },
    /// Content does not hash to its descriptor's digest, or has another size.
    #[error("{what}: content does not match its descriptor (expected {expected}, got {actual})")]
    DigestMismatch {
        /// What it is.
        what: String,
        /// The descriptor's digest and size.
        expected: String,
        /// The content's.
        actual: String,
    },
    /// The manifest is not a profile artifact manifest.
    #[error("{0}")]
    NotAProfileArtifact(String),
    /// The manifest is not valid JSON of a manifest.
    #[error("manifest: {0}")]
    Manifest(String),
    /// The profile layer is not a valid profile.
    #[error("profile layer: {0}")]
    Profile(imprint_schema::DocumentError),
    /// The tar+gzip layer is unreadable or disagrees with the profile layer.
    #[error("tar+gzip layer: {0}")]
    Tarball(String),
}

/// The Kubernetes object name for a profile: `sha256-<hex>` of its image.
pub fn object_name(profile: &Profile) -> String {
    profile.image.digest.tag_form()
}

/// The `Profile` object that the tar+gzip layer carries.
pub fn profile_object(profile: &Profile) -> Profile {
    let mut object = profile.clone().normalized();
    let mut annotations = BTreeMap::new();
    if let Some(reference) = &profile.image.reference {
        annotations.insert(ANNOTATION_IMAGE_REFERENCE.to_string(), reference.clone());
    }
    object.metadata = Some(ObjectMeta {
        name: Some(object_name(profile)),
        namespace: None,
        labels: BTreeMap::from([(
            "app.kubernetes.io/managed-by".to_string(),
            "imprint".to_string(),
        )]),
        annotations,
    });
    object
}

/// A reproducible tar+gzip holding [`TARBALL_FILE`]: fixed owner, mode and mtime.
pub fn profile_tarball(profile: &Profile) -> Vec<u8> {
    let yaml = imprint_schema::to_yaml(&profile_object(profile));
    let mut header = tar::Header::new_ustar();
    header.set_size(yaml.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(gz);
    builder
        .append_data(&mut header, TARBALL_FILE, yaml.as_bytes())
        .expect("writing to memory does not fail");
    let gz = builder
        .into_inner()
        .expect("writing to memory does not fail");
    gz.finish().expect("writing to memory does not fail")
}

/// Builds the artifact for `profile`, bound to `subject` (the image manifest's
/// descriptor as the registry serves it).
pub fn build(
    profile: &Profile,
    subject: &Descriptor,
    created: Timestamp,
) -> Result<Artifact, LayoutError> {
    if subject.digest != profile.image.digest {
        return Err(LayoutError::SubjectMismatch {
            subject: subject.digest.clone(),
            profile: profile.image.digest.clone(),
        });
    }
    if ![MANIFEST_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE].contains(&subject.media_type.as_str()) {
        return Err(LayoutError::SubjectMediaType(subject.media_type.clone()));
    }
    let config = Blob::new(EMPTY_CONFIG_MEDIA_TYPE, EMPTY_CONFIG.to_vec());
    let mut canonical = Blob::new(
        PROFILE_MEDIA_TYPE,
        imprint_schema::to_canonical_json(profile),
    );
    canonical
        .descriptor
        .annotations
        .insert(ANNOTATION_TITLE.into(), "profile.json".into());
    let mut tarball = Blob::new(PROFILE_TARBALL_MEDIA_TYPE, profile_tarball(profile));
    tarball
        .descriptor
        .annotations
        .insert(ANNOTATION_TITLE.into(), "profile.tar.gz".into());

    let mut annotations = BTreeMap::new();
    annotations.insert(
        ANNOTATION_CREATED.to_string(),
        created.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    );
    annotations.insert(
        ANNOTATION_IMAGE_DIGEST.to_string(),
        profile.image.digest.to_string(),
    );
    if let Some(reference) = &profile.image.reference {
        annotations.insert(ANNOTATION_IMAGE_REFERENCE.to_string(), reference.clone());
    }
    let subject = Descriptor {
        media_type: subject.media_type.clone(),
        digest: subject.digest.clone(),
        size: subject.size,
        artifact_type: None,
        annotations: BTreeMap::new(),
        platform: None,
    };
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MANIFEST_MEDIA_TYPE.to_string()),
        artifact_type: Some(PROFILE_MEDIA_TYPE.to_string()),
        config: config.descriptor.clone(),
        layers: vec![canonical.descriptor.clone(), tarball.descriptor.clone()],
        subject: Some(subject),
        annotations,
    };
    let manifest_bytes = serde_json::to_vec(&manifest).expect("manifests serialize");
    Ok(Artifact {
        digest: Digest::sha256_of(&manifest_bytes),
        manifest,
        manifest_bytes,
        config,
        layers: vec![canonical, tarball],
    })
}

/// Bounds for checking a pulled artifact.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest manifest.
    pub max_manifest_bytes: u64,
    /// Largest layer.
    pub max_layer_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_manifest_bytes: DEFAULT_MAX_BLOB_BYTES,
            max_layer_bytes: DEFAULT_MAX_BLOB_BYTES,
        }
    }
}

/// Checks that `data` is what `descriptor` says, within `limit`.
pub fn check_blob(
    what: &str,
    descriptor: &Descriptor,
    data: &[u8],
    limit: u64,
) -> Result<(), LayoutError> {
    if descriptor.size > limit || data.len() as u64 > limit {
        return Err(LayoutError::TooLarge {
            what: what.to_string(),
            size: descriptor.size.max(data.len() as u64),
            limit,
        });
    }
    if !descriptor.digest.matches(data) || data.len() as u64 != descriptor.size {
        let actual = Digest::sha256_of(data);
        return Err(LayoutError::DigestMismatch {
            what: what.to_string(),
            expected: format!("{} ({} bytes)", descriptor.digest, descriptor.size),
            actual: format!("{actual} ({} bytes)", data.len()),
        });
    }
    Ok(())
}

/// Parses a pulled manifest and checks it is a profile artifact: digest (when the
/// caller pulled it by digest), size, media types, the empty config, both layers and
/// a subject. The layers themselves are checked by [`open`].
pub fn parse_manifest(
    bytes: &[u8],
    expected_digest: Option<&Digest>,
    limits: &Limits,
) -> Result<Manifest, LayoutError> {
    if bytes.len() as u64 > limits.max_manifest_bytes {
        return Err(LayoutError::TooLarge {
            what: "manifest".into(),
            size: bytes.len() as u64,
            limit: limits.max_manifest_bytes,
        });
    }
    if let Some(expected) = expected_digest
        && !expected.matches(bytes)
    {
        return Err(LayoutError::DigestMismatch {
            what: "manifest".into(),
            expected: expected.to_string(),
            actual: Digest::sha256_of(bytes).to_string(),
        });
    }
    let manifest: Manifest =
        serde_json::from_slice(bytes).map_err(|e| LayoutError::Manifest(e.to_string()))?;
    let not = |msg: String| Err(LayoutError::NotAProfileArtifact(msg));
    if manifest.schema_version != 2 {
        return not(format!(
            "schemaVersion {} is not 2",
            manifest.schema_version
        ));
    }
    if let Some(mt) = &manifest.media_type
        && mt != MANIFEST_MEDIA_TYPE
    {
        return not(format!("media type {mt:?} is not {MANIFEST_MEDIA_TYPE}"));
    }
    if manifest.artifact_type.as_deref() != Some(PROFILE_MEDIA_TYPE) {
        return not(format!(
            "artifactType {:?} is not {PROFILE_MEDIA_TYPE}",
            manifest.artifact_type
        ));
    }
    if manifest.config.media_type != EMPTY_CONFIG_MEDIA_TYPE {
        return not(format!(
            "config media type {:?} is not {EMPTY_CONFIG_MEDIA_TYPE}",
            manifest.config.media_type
        ));
    }
    let types: Vec<&str> = manifest
        .layers
        .iter()
        .map(|l| l.media_type.as_str())
        .collect();
    if types != [PROFILE_MEDIA_TYPE, PROFILE_TARBALL_MEDIA_TYPE] {
        return not(format!(
            "layers {types:?} are not [{PROFILE_MEDIA_TYPE}, {PROFILE_TARBALL_MEDIA_TYPE}]"
        ));
    }
    for (i, layer) in manifest.layers.iter().enumerate() {
        if layer.size > limits.max_layer_bytes {
            return Err(LayoutError::TooLarge {
                what: format!("layer {i}"),
                size: layer.size,
                limit: limits.max_layer_bytes,
            });
        }
    }
    if manifest.subject.is_none() {
        return not("no subject: a profile artifact must name its image".into());
    }
    Ok(manifest)
}

/// Checks a pulled artifact's config and layers against its manifest, and returns
/// the profile. The profile must be valid, its image digest must equal the subject,
/// and the tar+gzip layer must hold the same behaviour.
pub fn open(
    manifest: &Manifest,
    config: &[u8],
    layers: &[Vec<u8>],
    limits: &Limits,
) -> Result<Profile, LayoutError> {
    check_blob("config", &manifest.config, config, limits.max_layer_bytes)?;
    if layers.len() != manifest.layers.len() {
        return Err(LayoutError::NotAProfileArtifact(format!(
            "{} layers given for {} in the manifest",
            layers.len(),
            manifest.layers.len()
        )));
    }
    for (i, (descriptor, data)) in manifest.layers.iter().zip(layers).enumerate() {
        check_blob(
            &format!("layer {i}"),
            descriptor,
            data,
            limits.max_layer_bytes,
        )?;
    }
    let profile =
        imprint_schema::parse_profile_with_limit(&layers[0], limits.max_layer_bytes as usize)
            .map_err(LayoutError::Profile)?;
    let subject = manifest.subject.as_ref().expect("parse_manifest checked");
    if subject.digest != profile.image.digest {
        return Err(LayoutError::SubjectMismatch {
            subject: subject.digest.clone(),
            profile: profile.image.digest.clone(),
        });
    }
    let in_tarball = read_tarball(&layers[1], limits.max_layer_bytes)?;
    if imprint_schema::to_canonical_json(&in_tarball) != imprint_schema::to_canonical_json(&profile)
    {
        return Err(LayoutError::Tarball(
            "profile.yaml does not hold the same profile as the canonical layer".into(),
        ));
    }
    Ok(profile)
}

/// Reads `profile.yaml` out of the tar+gzip layer, bounding what is decompressed.
pub fn read_tarball(data: &[u8], limit: u64) -> Result<Profile, LayoutError> {
    let gz = flate2::read::GzDecoder::new(data);
    let mut archive = tar::Archive::new(gz.take(limit + 1));
    let entries = archive
        .entries()
        .map_err(|e| LayoutError::Tarball(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| LayoutError::Tarball(e.to_string()))?;
        let path = entry
            .path()
            .map_err(|e| LayoutError::Tarball(e.to_string()))?
            .into_owned();
        if path.as_os_str() != TARBALL_FILE {
            continue;
        }
        let mut yaml = Vec::new();
        entry
            .by_ref()
            .take(limit + 1)
            .read_to_end(&mut yaml)
            .map_err(|e| LayoutError::Tarball(e.to_string()))?;
        if yaml.len() as u64 > limit {
            return Err(LayoutError::TooLarge {
                what: TARBALL_FILE.into(),
                size: yaml.len() as u64,
                limit,
            });
        }
        return imprint_schema::parse_profile(&yaml)
            .map_err(|e| LayoutError::Tarball(format!("{TARBALL_FILE}: {e}")));
    }
    Err(LayoutError::Tarball(format!(
        "no {TARBALL_FILE} in the archive"
    )))
}

#[cfg(test)]
mod tests;
