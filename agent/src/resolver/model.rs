//! The resolver's values and its pure decisions: the states a digest can be in,
//! what is told to the detector, what is remembered across restarts, and what a
//! lookup's outcome changes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use imprint_oci::policy::{Policy, RepositoryGlobs};
use imprint_oci::{Evidence, RegistryOptions};
use imprint_schema::{Digest, Profile};

pub(super) use super::rank::{Mark, Rank};
pub(super) use super::revoked::RevokedArtifact;
pub(super) use super::seen::{SeenRepositories, Sighting};

/// Why an image has no enforced profile, or that it has one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "state", content = "detail")]
pub enum Status {
    /// A verified profile is enforced.
    Verified(String),
    /// No profile artifact names this digest.
    NoProfile,
    /// Profiles exist, but none is signed by a trusted authority.
    Unsigned(String),
    /// Signed, but no attestation satisfies the policy.
    AttestationFailed(String),
    /// An artifact names another digest.
    SubjectMismatch(String),
    /// The registry could not be asked; the last verified state stands.
    Unreachable(String),
    /// The newest verified profile stopped being listed or verifying without an
    /// explicit act (a pin, a policy change, a revocation): what is enforced
    /// stays, and an older one is not taken instead.
    Withdrawn(String),
    /// A revoking authority of the policy revoked the artifact (an explicit act:
    /// it is not enforced, not even when Git pins it).
    Revoked(String),
    /// The enforced profile could not be verified again against its registry for
    /// longer than `--max-offline-age`: it is no longer enforced.
    OfflineTooLong(String),
    /// Git delivers different profiles for the digest; none is enforced.
    DeliveryConflict(String),
    /// A pinned artifact is in a repository the policy's `profiles.repositories`
    /// does not admit; it is not asked.
    RepositoryNotAllowed(String),
}

impl Status {
    /// The metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Status::Verified(_) => "verified",
            Status::NoProfile => "no-profile",
            Status::Unsigned(_) => "unsigned",
            Status::AttestationFailed(_) => "attestation-failed",
            Status::SubjectMismatch(_) => "subject-mismatch",
            Status::Unreachable(_) => "unreachable",
            Status::Withdrawn(_) => "withdrawn",
            Status::Revoked(_) => "revoked",
            Status::OfflineTooLong(_) => "offline-too-long",
            Status::DeliveryConflict(_) => "delivery-conflict",
            Status::RepositoryNotAllowed(_) => "repository-not-allowed",
        }
    }
}

/// What the resolver tells the detector.
#[derive(Debug, Clone)]
pub enum Update {
    /// Enforce this profile for its digest.
    Enforce {
        /// The image digest.
        digest: Digest,
        /// The artifact it came from (`repo@sha256:…`).
        artifact: String,
        /// The profile.
        profile: Box<Profile>,
    },
    /// Stop enforcing the digest's profile.
    Revoke {
        /// The image digest.
        digest: Digest,
        /// Why.
        status: Status,
    },
    /// The digest is a multi-platform index; this node runs its `manifest`,
    /// whose profiles apply.
    Platform {
        /// The index digest the container reports.
        index: Digest,
        /// The platform manifest's digest.
        manifest: Digest,
    },
    /// A signature tag or referrers listing of the digest holds more than is
    /// examined: a flood that may hide a signature.
    Flooded {
        /// The image digest.
        digest: Digest,
        /// What holds how many more (`tag …: N more layers…`).
        detail: Vec<String>,
    },
    /// The digest's state (for logs and metrics).
    Status {
        /// The image digest.
        digest: Digest,
        /// Its state.
        status: Status,
    },
}

/// How the resolver works.
pub struct ResolverConfig {
    /// The verification policy.
    pub policy: Policy,
    /// Extra repositories to look for profiles in.
    pub profile_repos: Vec<String>,
    /// Pinned profile artifacts (`oci://registry/repo@sha256:…`, as a GitOps
    /// repository pins them): used for the digest their profile names, after the
    /// same verification.
    pub pinned: Vec<String>,
    /// Registry access.
    pub registry: RegistryOptions,
    /// The state directory (cache under `cache/`, last verified in `verified.json`).
    pub state_dir: PathBuf,
    /// How often every digest is checked again.
    pub refresh: Duration,
    /// Profiles delivered by Flux, Argo CD or a profile directory.
    pub delivered: crate::delivered::SharedDeliveries,
    /// How long a profile may be enforced without verifying again online
    /// (`None`: no limit).
    pub max_offline_age: Option<Duration>,
}

/// What is remembered in `verified.json` across restarts.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(super) struct Remembered {
    /// digest → (repository, artifact digest) last verified.
    pub(super) verified: BTreeMap<Digest, (String, Digest)>,
    /// Index digest → this node's platform manifest in it.
    #[serde(default)]
    pub(super) platforms: BTreeMap<Digest, Digest>,
    /// digest → the repositories it was seen running from on this node, so a
    /// restart asks the same places.
    #[serde(default)]
    pub(super) seen: BTreeMap<Digest, SeenRepositories>,
    /// digest → the newest artifact verified for it: never gone back from on
    /// the resolver's own.
    #[serde(default)]
    pub(super) marks: BTreeMap<Digest, Mark>,
    /// The fingerprint of the policy the marks were made under.
    #[serde(default)]
    pub(super) policy: Option<Digest>,
    /// artifact → the verified revocation of it: kept, so deleting a revocation
    /// from the registry does not bring the profile back.
    #[serde(default)]
    pub(super) revoked: BTreeMap<Digest, RevokedArtifact>,
    /// digest → when its enforced artifact last verified against its registry.
    #[serde(default)]
    pub(super) checked: BTreeMap<Digest, jiff::Timestamp>,
}

impl Remembered {
    /// What `path` holds; nothing when it is absent or unreadable (or a link).
    pub(super) fn load(path: &Path) -> Remembered {
        imprint_fs::read_no_follow(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub(super) fn save(&self, path: &Path) {
        // Atomic, so a crash never leaves half a memory (which would read as none).
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        if let Err(e) = imprint_fs::write_atomic(path, &bytes, imprint_fs::PRIVATE) {
            eprintln!("imprint-agent: cannot write {}: {e}", path.display());
        }
    }

    /// Takes the policy in force: when it is not the one the marks were made
    /// under, they start again (a policy change is an explicit act). Returns
    /// whether they did.
    pub(super) fn under_policy(&mut self, fingerprint: &Digest) -> bool {
        if self.policy.as_ref() == Some(fingerprint) {
            return false;
        }
        let had_marks = !self.marks.is_empty();
        self.marks.clear();
        self.policy = Some(fingerprint.clone());
        had_marks
    }

    /// The names a digest goes by here: itself, and the indexes that stand for it
    /// on this node. A profile Git delivers for an index (learned from a container
    /// started by it) pins the manifest's too, so such a pin cannot be bypassed.
    pub(super) fn names(&self, digest: &Digest) -> Vec<Digest> {
        std::iter::once(digest.clone())
            .chain(
                self.platforms
                    .iter()
                    .filter(|(_, manifest)| *manifest == digest)
                    .map(|(index, _)| index.clone()),
            )
            .collect()
    }

    /// Records that `digest` ran from `repository`. At the cap the least
    /// recently seen repository goes, never the one the verified profile came from.
    pub(super) fn see(&mut self, digest: &Digest, repository: &str) -> Sighting {
        let keep = self.verified.get(digest).map(|(r, _)| r.clone());
        let seen = self.seen.entry(digest.clone()).or_default();
        seen.see(repository, keep.as_deref())
    }

    /// The repositories `digest` was seen from, under any of its names (an index
    /// standing for it counts).
    pub(super) fn seen_from(&self, digest: &Digest) -> Vec<String> {
        let mut out: Vec<String> = (self.names(digest).iter())
            .filter_map(|name| self.seen.get(name))
            .flat_map(|seen| seen.iter().map(str::to_string))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Every place to ask for `digest`'s profiles: the repositories it was seen
    /// from and the configured ones, less what `allowed` does not admit.
    pub(super) fn places(
        &self,
        digest: &Digest,
        configured: &[String],
        allowed: Option<&RepositoryGlobs>,
    ) -> Vec<String> {
        let mut out = self.seen_from(digest);
        out.extend(configured.iter().filter_map(|r| repository_name(r)));
        out.retain(|r| allowed.is_none_or(|globs| globs.allows(r)));
        out.sort();
        out.dedup();
        out
    }
}

/// `registry/repository` of an image or repository reference, as profiles'
/// places are named (and the policy's globs match).
pub(super) fn repository_name(reference: &str) -> Option<String> {
    let r = imprint_oci::parse_reference(reference).ok()?;
    Some(format!("{}/{}", r.registry(), r.repository()))
}

/// This node's platform, as image indexes name it (`linux/amd64`), in the order
/// to try: arm64 indexes usually say `v8`, not always.
pub fn node_platforms() -> Vec<String> {
    let little = cfg!(target_endian = "little");
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" if little => "ppc64le",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        "mips64" if little => "mips64le",
        other => other,
    };
    let mut out = Vec::new();
    match arch {
        "arm64" => out.push("linux/arm64/v8".to_string()),
        // v7 is what 32-bit images mostly carry; on v6 hardware that is a guess,
        // and the v7 manifest's profile would judge a container running v6.
        "arm" => out.extend(["linux/arm/v7".to_string(), "linux/arm/v6".to_string()]),
        _ => {}
    }
    out.push(format!("linux/{arch}"));
    out
}

/// A digest the resolver keeps looking up.
#[derive(Debug, Default)]
pub(super) struct Watched {
    /// The enforced artifact (`registry/repository@sha256:…`).
    pub(super) enforced: Option<String>,
    /// The digest of the enforced profile's canonical JSON.
    pub(super) content: Option<Digest>,
    pub(super) status: Option<Status>,
}

/// What a lookup changes for a watched digest.
#[derive(Debug)]
pub(super) enum Change {
    /// Nothing to tell.
    Unchanged,
    /// Another verified artifact is enforced: tell the detector, remember it.
    Enforce {
        repository: String,
        artifact: Digest,
        profile: Box<Profile>,
        evidence: Evidence,
    },
    /// The enforced profile goes: tell the detector, forget it.
    Revoke(Status),
    /// A new state; what is enforced (if anything) stays.
    Status(Status),
}

impl Watched {
    /// The decision a lookup's outcome makes. `still_delivered` says whether the
    /// enforced content is still what Git delivers for the digest.
    pub(super) fn settle(
        &mut self,
        outcome: Resolved,
        still_delivered: impl Fn(&Digest) -> bool,
    ) -> Change {
        match outcome {
            Resolved::Enforce {
                repository,
                artifact,
                profile,
                content,
                evidence,
                ..
            } => {
                let whole = format!("{repository}@{artifact}");
                self.content = Some(content);
                self.status = Some(Status::Verified(whole.clone()));
                if self.enforced.as_deref() == Some(whole.as_str()) {
                    return Change::Unchanged;
                }
                self.enforced = Some(whole);
                Change::Enforce {
                    repository,
                    artifact,
                    profile,
                    evidence,
                }
            }
            Resolved::Not(status) => {
                // An unreachable registry, or a withdrawal, leaves what was
                // verified in force, unless Git now pins other content for it.
                let keeps = matches!(status, Status::Unreachable(_) | Status::Withdrawn(_))
                    && self.content.as_ref().is_some_and(&still_delivered);
                let change = if self.enforced.is_some() && !keeps {
                    self.enforced = None;
                    self.content = None;
                    Change::Revoke(status.clone())
                } else if self.status.as_ref() != Some(&status) {
                    Change::Status(status.clone())
                } else {
                    Change::Unchanged
                };
                self.status = Some(status);
                change
            }
        }
    }
}

/// What a lookup found.
#[derive(Debug)]
pub(super) enum Resolved {
    /// A verified profile for the digest.
    Enforce {
        repository: String,
        artifact: Digest,
        profile: Box<Profile>,
        /// The digest of the profile's canonical JSON.
        content: Digest,
        /// The signed material that verified, kept to judge it again offline.
        evidence: Evidence,
        /// Its place in the order of the digest's profiles.
        rank: Rank,
        /// Chosen by a pin (Git, `--profile-ref`): it stands whatever its place.
        pinned: bool,
    },
    Not(Status),
}

#[cfg(test)]
mod tests;
