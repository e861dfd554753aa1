//! Enforce mode's profile resolver: for each running image digest, the profile
//! artifacts that name it (referrers of the image's repository and of configured
//! profile repositories), verified under the cluster's policy, pulled through the
//! content-addressed cache.
//!
//! A profile is enforced only when its artifact verifies and its subject is the
//! running digest. The last verified artifact per digest is remembered in the
//! state directory, so a restart enforces it again from the cache before the
//! registry answers; an unreachable registry changes nothing. Every `refresh`
//! the registry is asked again: a new profile, or a revoked one (no longer
//! verifying, or gone), takes effect without a restart.
//!
//! A container started from a multi-platform index (containerd's `imageID` is the
//! index digest) runs the index's manifest for this node's platform, and profiles
//! name platform manifests (one per platform, as `imprint push` binds them). The
//! resolver reads the index by its digest (content checked), tells the detector
//! which manifest the index stands for on this node ([`Update::Platform`]), and
//! resolves that manifest's profiles. The mapping is content-addressed, so it is
//! remembered across restarts.
//!
//! Profiles delivered through GitOps ([`crate::delivered`]) narrow the choice:
//! for a digest with a delivered profile, only a verified artifact with exactly
//! that content is enforced, whichever repository holds it.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

use imprint_oci::cache::BlobCache;
use imprint_oci::policy::Policy;
use imprint_oci::registry::{Reference, Registry, RegistryError, RegistryOptions, parse_reference};
use imprint_schema::Profile;

use crate::delivered::{admits, lock};

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
    /// Git delivers different profiles for the digest; none is enforced.
    DeliveryConflict(String),
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
            Status::DeliveryConflict(_) => "delivery-conflict",
        }
    }
}

/// What the resolver tells the detector.
#[derive(Debug, Clone)]
pub enum Update {
    /// Enforce this profile for its digest.
    Enforce {
        /// The image digest.
        digest: String,
        /// The artifact it came from (`repo@sha256:…`).
        artifact: String,
        /// The profile.
        profile: Box<Profile>,
    },
    /// Stop enforcing the digest's profile.
    Revoke {
        /// The image digest.
        digest: String,
        /// Why.
        status: Status,
    },
    /// The digest is a multi-platform index; this node runs its `manifest`,
    /// whose profiles apply.
    Platform {
        /// The index digest the container reports.
        index: String,
        /// The platform manifest's digest.
        manifest: String,
    },
    /// The digest's state (for logs and metrics).
    Status {
        /// The image digest.
        digest: String,
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
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct Remembered {
    /// digest → (repository, artifact digest) last verified.
    verified: BTreeMap<String, (String, String)>,
    /// Index digest → this node's platform manifest in it.
    #[serde(default)]
    platforms: BTreeMap<String, String>,
}

impl Remembered {
    fn save(&self, path: &std::path::Path) {
        let _ = std::fs::write(path, serde_json::to_vec(self).unwrap_or_default());
    }

    /// The names a digest goes by here: itself, and the indexes that stand for it
    /// on this node. A profile Git delivers for an index (learned from a container
    /// started by it) pins the manifest's too, so such a pin cannot be bypassed.
    fn names(&self, digest: &str) -> Vec<String> {
        std::iter::once(digest.to_string())
            .chain(
                self.platforms
                    .iter()
                    .filter(|(_, manifest)| *manifest == digest)
                    .map(|(index, _)| index.clone()),
            )
            .collect()
    }
}

fn as_strs(names: &[String]) -> Vec<&str> {
    names.iter().map(String::as_str).collect()
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

/// The manifest of `digest` (in the repository of `image_ref`) for this node when
/// `digest` is a multi-platform index; `None` when it is a manifest itself. The
/// index is read by digest and its content checked against it.
async fn platform_manifest(
    config: &ResolverConfig,
    image_ref: &str,
    digest: &str,
) -> Result<Option<String>, RegistryError> {
    let named = parse_reference(image_ref)?;
    let by_digest = Reference::with_digest(
        named.registry().to_string(),
        named.repository().to_string(),
        digest.to_string(),
    );
    let registry = Registry::new(&config.registry, &[&by_digest])?;
    let mut last = None;
    for platform in node_platforms() {
        match registry
            .resolve_platform(&by_digest, Some(platform.as_str()))
            .await
        {
            Ok(found) => return Ok((found.digest != digest).then_some(found.digest)),
            Err(e @ RegistryError::Platform { .. }) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("at least one platform is tried"))
}

struct Watched {
    image_ref: Option<String>,
    enforced: Option<String>,
    /// `sha256:` of the enforced profile's canonical JSON.
    content: Option<String>,
    status: Option<Status>,
}

/// Whether enforced content is still what the deliveries for its digest allow.
fn still_delivered(config: &ResolverConfig, names: &[String], content: &str) -> bool {
    admits(
        &lock(&config.delivered).contents_for_any(&as_strs(names)),
        content,
    )
}

fn repository_of(reference: &str) -> Option<Reference> {
    let r = parse_reference(reference).ok()?;
    Some(Reference::with_tag(
        r.registry().to_string(),
        r.repository().to_string(),
        "latest".into(),
    ))
}

/// Runs the resolver on this thread until `stop`: digests to watch arrive on
/// `watch` (with the image reference, when known), updates go to `updates`.
pub fn run(
    config: ResolverConfig,
    watch: Receiver<(String, Option<String>)>,
    updates: Sender<Update>,
    stop: Arc<AtomicBool>,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    let cache = match BlobCache::open(config.state_dir.join("cache")) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("imprint-agent: profile cache unusable ({e}); resolving without it");
            return;
        }
    };
    let remembered_path = config.state_dir.join("verified.json");
    let mut remembered: Remembered = std::fs::read(&remembered_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let mut watched: BTreeMap<String, Watched> = BTreeMap::new();

    // Indexes seen before a restart stand for the same manifests (content-addressed).
    for (index, manifest) in &remembered.platforms {
        let _ = updates.send(Update::Platform {
            index: index.clone(),
            manifest: manifest.clone(),
        });
    }
    // Digests known to be manifests, not indexes (asked once per run).
    let mut manifests: HashSet<String> = HashSet::new();

    // What was verified before a restart is enforced again from the cache (not
    // for an index: its events name its manifest).
    remembered
        .verified
        .retain(|digest, _| !remembered.platforms.contains_key(digest));
    for (digest, (repo, artifact)) in &remembered.verified {
        let Ok(reference) = parse_reference(&format!("{repo}@{artifact}")) else {
            continue;
        };
        let registry = match Registry::new(&config.registry, &[&reference]) {
            Ok(r) => r,
            Err(_) => continue,
        };
        let Ok(pulled) = runtime.block_on(registry.pull_artifact_cached(&reference, &cache)) else {
            continue;
        };
        let content = imprint_schema::digest(&pulled.profile);
        // Git may have pinned another version meanwhile: then it waits for a lookup.
        if pulled.profile.image.digest == *digest
            && still_delivered(&config, &remembered.names(digest), &content)
        {
            let _ = updates.send(Update::Enforce {
                digest: digest.clone(),
                artifact: reference.whole(),
                profile: Box::new(pulled.profile),
            });
            watched.insert(
                digest.clone(),
                Watched {
                    image_ref: None,
                    enforced: Some(reference.whole()),
                    content: Some(content),
                    status: Some(Status::Verified(reference.whole())),
                },
            );
        }
    }

    let mut last_round = Instant::now();
    let mut due: Vec<String> = Vec::new();
    let mut delivered_generation = 0;
    while !stop.load(Ordering::Relaxed) {
        let generation = lock(&config.delivered).generation();
        if generation != delivered_generation {
            // What Git delivers changed: every digest is looked at again now.
            delivered_generation = generation;
            due.extend(watched.keys().cloned());
        }
        match watch.recv_timeout(Duration::from_millis(200)) {
            Ok((digest, image_ref)) => {
                let w = watched.entry(digest.clone()).or_insert(Watched {
                    image_ref: None,
                    enforced: None,
                    content: None,
                    status: None,
                });
                if image_ref.is_some() {
                    w.image_ref = image_ref;
                }
                due.push(digest);
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if last_round.elapsed() >= config.refresh {
            due.extend(watched.keys().cloned());
            last_round = Instant::now();
        }
        due.sort();
        due.dedup();
        for digest in std::mem::take(&mut due) {
            let Some(image_ref) = watched.get(&digest).map(|w| w.image_ref.clone()) else {
                continue;
            };
            let mut platform = remembered.platforms.get(&digest).cloned();
            if let Some(image_ref) = image_ref
                .as_deref()
                .filter(|_| platform.is_none() && !manifests.contains(&digest))
            {
                match runtime.block_on(platform_manifest(&config, image_ref, &digest)) {
                    Ok(None) => {
                        manifests.insert(digest.clone());
                    }
                    Ok(Some(manifest)) => {
                        eprintln!(
                            "imprint-agent: {digest} is a multi-platform index; this node ({}) runs {manifest}",
                            node_platforms().join(" or ")
                        );
                        remembered
                            .platforms
                            .insert(digest.clone(), manifest.clone());
                        platform = Some(manifest);
                    }
                    Err(e @ RegistryError::Platform { .. }) => {
                        // An index without this platform: nothing can match it.
                        eprintln!("imprint-agent: {digest}: {e}");
                        manifests.insert(digest.clone());
                    }
                    // Asked again next round; the digest is resolved as it is meanwhile.
                    Err(_) => {}
                }
            }
            if let Some(manifest) = platform {
                // The index stands for the manifest from here on (also when an event
                // still named the index after a restart): the detector is told, and
                // whatever the index had (a status, a profile resolved while the
                // registry could not say it was an index) is dropped with it.
                remembered.verified.remove(&digest);
                remembered.save(&remembered_path);
                let _ = updates.send(Update::Platform {
                    index: digest.clone(),
                    manifest: manifest.clone(),
                });
                watched.remove(&digest);
                watched.entry(manifest.clone()).or_insert(Watched {
                    image_ref,
                    enforced: None,
                    content: None,
                    status: None,
                });
                due.push(manifest);
                continue;
            }
            let Some(w) = watched.get_mut(&digest) else {
                continue;
            };
            let names = remembered.names(&digest);
            let outcome = runtime.block_on(resolve(
                &config,
                &cache,
                &digest,
                &names,
                w.image_ref.as_deref(),
            ));
            match outcome {
                Resolved::Enforce {
                    repository,
                    artifact,
                    profile,
                    content,
                } => {
                    let whole = format!("{repository}@{artifact}");
                    w.content = Some(content);
                    if w.enforced.as_deref() != Some(whole.as_str()) {
                        let _ = updates.send(Update::Enforce {
                            digest: digest.clone(),
                            artifact: whole.clone(),
                            profile,
                        });
                        w.enforced = Some(whole.clone());
                        remembered
                            .verified
                            .insert(digest.clone(), (repository, artifact));
                        remembered.save(&remembered_path);
                    }
                    w.status = Some(Status::Verified(whole));
                }
                Resolved::Not(status) => {
                    // An unreachable registry leaves what was verified in force, unless
                    // Git now pins other content for the digest.
                    let revoke = w.enforced.is_some()
                        && (!matches!(status, Status::Unreachable(_))
                            || !w
                                .content
                                .as_ref()
                                .is_some_and(|c| still_delivered(&config, &names, c)));
                    if revoke {
                        w.enforced = None;
                        w.content = None;
                        remembered.verified.remove(&digest);
                        remembered.save(&remembered_path);
                        let _ = updates.send(Update::Revoke {
                            digest: digest.clone(),
                            status: status.clone(),
                        });
                    } else if w.status.as_ref() != Some(&status) {
                        let _ = updates.send(Update::Status {
                            digest: digest.clone(),
                            status: status.clone(),
                        });
                    }
                    w.status = Some(status);
                }
            }
        }
    }
}

enum Resolved {
    Enforce {
        repository: String,
        artifact: String,
        profile: Box<Profile>,
        /// `sha256:` of the profile's canonical JSON.
        content: String,
    },
    Not(Status),
}

/// A profile's content digest when it is the one delivered for its digest (or
/// nothing is delivered); otherwise why not.
fn delivered_content(
    allowed: &[String],
    profile: &Profile,
    artifact: &str,
) -> Result<String, Status> {
    let content = imprint_schema::digest(profile);
    if admits(allowed, &content) {
        Ok(content)
    } else {
        Err(Status::Unsigned(format!(
            "{artifact} verifies, but its profile ({content}) is not the delivered one ({})",
            allowed.join(", ")
        )))
    }
}

/// Resolves `digest`; `names` (it, and the indexes standing for it) select what
/// Git delivers for it.
async fn resolve(
    config: &ResolverConfig,
    cache: &BlobCache,
    digest: &str,
    names: &[String],
    image_ref: Option<&str>,
) -> Resolved {
    let mut failure: Option<Status> = None;
    let (delivered, allowed) = {
        let d = lock(&config.delivered);
        let names = as_strs(names);
        (d.for_any(&names), d.contents_for_any(&names))
    };
    if allowed.len() > 1 {
        // Two sources pin different versions: choosing one would let either undo the other.
        return Resolved::Not(Status::DeliveryConflict(format!(
            "delivered profiles disagree: {}",
            allowed.join(", ")
        )));
    }
    let mut pins: Vec<&String> = delivered
        .iter()
        .filter_map(|d| d.artifact.as_ref())
        .collect();
    pins.extend(&config.pinned);
    // Pinned artifacts first: the Git-reviewed choice wins over discovery.
    for pinned in pins {
        let text = pinned.strip_prefix("oci://").unwrap_or(pinned);
        let Ok(reference) = parse_reference(text) else {
            continue;
        };
        let Some(artifact) = reference.digest().map(str::to_string) else {
            continue;
        };
        let Ok(registry) = Registry::new(&config.registry, &[&reference]) else {
            continue;
        };
        let pulled = match registry.pull_artifact_cached(&reference, cache).await {
            Ok(p) => p,
            Err(e) => {
                failure.get_or_insert(Status::Unreachable(format!("{pinned}: {e}")));
                continue;
            }
        };
        if pulled.profile.image.digest != digest {
            continue;
        }
        // Not the delivered content: no need to ask the registry about its signatures.
        let content = match delivered_content(&allowed, &pulled.profile, pinned) {
            Ok(c) => c,
            Err(status) => {
                failure = Some(status);
                continue;
            }
        };
        match registry.verify(&reference, &artifact, &config.policy).await {
            Ok(v) if v.verified => {
                return Resolved::Enforce {
                    repository: format!("{}/{}", reference.registry(), reference.repository()),
                    artifact,
                    profile: Box::new(pulled.profile),
                    content,
                };
            }
            Ok(v) => {
                let why = format!("{pinned}: {}", v.failures.join("; "));
                failure = Some(if v.signatures.iter().any(|f| f.verified) {
                    Status::AttestationFailed(why)
                } else {
                    Status::Unsigned(why)
                });
            }
            Err(e) => {
                failure.get_or_insert(Status::Unreachable(format!("{pinned}: {e}")));
            }
        }
    }
    let mut repositories: Vec<Reference> = Vec::new();
    if let Some(r) = image_ref.and_then(repository_of) {
        repositories.push(r);
    }
    repositories.extend(config.profile_repos.iter().filter_map(|r| repository_of(r)));
    if repositories.is_empty() {
        return Resolved::Not(failure.unwrap_or(Status::NoProfile));
    }
    for repository in &repositories {
        let registry = match Registry::new(&config.registry, &[repository]) {
            Ok(r) => r,
            Err(e) => {
                failure = Some(Status::Unreachable(e.to_string()));
                continue;
            }
        };
        let registry = match imprint_oci::credentials::find(
            repository.resolve_registry(),
            &imprint_oci::credentials::config_paths(|k| std::env::var(k).ok()),
            None,
        ) {
            Ok(Some(c)) => registry.with_auth(c.into()),
            _ => registry,
        };
        let discovery = match registry.discover(repository, digest).await {
            Ok(d) => d,
            Err(e) => {
                failure.get_or_insert(Status::Unreachable(e.to_string()));
                continue;
            }
        };
        if let Some((artifact, why)) = discovery.rejected.first()
            && why.contains("subject")
        {
            failure.get_or_insert(Status::SubjectMismatch(format!("{artifact}: {why}")));
        }
        let mut artifacts = discovery.artifacts;
        newest_first(&mut artifacts);
        for found in artifacts {
            let verdict = match registry
                .verify(repository, &found.digest, &config.policy)
                .await
            {
                Ok(v) => v,
                Err(e) => {
                    failure.get_or_insert(Status::Unreachable(e.to_string()));
                    continue;
                }
            };
            if !verdict.verified {
                let why = verdict.failures.join("; ");
                let signed = verdict.signatures.iter().any(|f| f.verified);
                let status = if signed || !config.policy.require_signature {
                    Status::AttestationFailed(why)
                } else {
                    Status::Unsigned(why)
                };
                if failure.is_none() || matches!(failure, Some(Status::SubjectMismatch(_))) {
                    failure = Some(status);
                }
                continue;
            }
            let reference = repository.clone_with_digest(found.digest.clone());
            match registry.pull_artifact_cached(&reference, cache).await {
                Ok(pulled) if pulled.profile.image.digest == digest => {
                    let content =
                        match delivered_content(&allowed, &pulled.profile, &reference.whole()) {
                            Ok(c) => c,
                            Err(status) => {
                                failure = Some(status);
                                continue;
                            }
                        };
                    return Resolved::Enforce {
                        repository: format!(
                            "{}/{}",
                            repository.registry(),
                            repository.repository()
                        ),
                        artifact: found.digest,
                        profile: Box::new(pulled.profile),
                        content,
                    };
                }
                Ok(pulled) => {
                    failure = Some(Status::SubjectMismatch(format!(
                        "{}: its profile is for {}",
                        found.digest, pulled.profile.image.digest
                    )));
                }
                Err(e) => {
                    failure.get_or_insert(Status::Unreachable(e.to_string()));
                }
            }
        }
    }
    Resolved::Not(failure.unwrap_or(Status::NoProfile))
}

/// Orders discovered artifacts newest first, by the instant their `created`
/// annotation names: RFC 3339 text does not sort as time (`12:00:00.5Z` sorts
/// before `12:00:00Z`, offsets differ). Equal or unreadable stamps fall back to
/// the digest, so every node picks the same artifact.
fn newest_first(artifacts: &mut [imprint_oci::registry::Discovered]) {
    let at = |d: &imprint_oci::registry::Discovered| {
        d.created
            .as_deref()
            .and_then(|c| c.parse::<jiff::Timestamp>().ok())
    };
    artifacts.sort_by(|a, b| at(b).cmp(&at(a)).then_with(|| b.digest.cmp(&a.digest)));
}

#[cfg(test)]
mod tests {
    use imprint_oci::registry::Discovered;

    use super::newest_first;

    #[test]
    fn artifacts_are_ordered_by_time_not_text_and_ties_by_digest() {
        let found = |digest: &str, created: Option<&str>| Discovered {
            digest: digest.into(),
            size: 1,
            created: created.map(Into::into),
        };
        let mut artifacts = vec![
            found("sha256:01", Some("2026-11-26T12:00:00Z")),
            found("sha256:02", Some("2026-11-26T12:00:00.5Z")),
            found("sha256:03", None),
            found("sha256:04", Some("2026-11-26T13:30:00+02:00")),
            found("sha256:05", Some("not a time")),
            found("sha256:06", Some("2026-11-26T12:00:00.5Z")),
        ];
        newest_first(&mut artifacts);
        let order: Vec<&str> = artifacts.iter().map(|a| a.digest.as_str()).collect();
        // 13:30+02:00 is 11:30Z, the oldest stamp; the two at .5 s tie on digest.
        assert_eq!(
            order,
            [
                "sha256:06",
                "sha256:02",
                "sha256:01",
                "sha256:04",
                "sha256:05",
                "sha256:03"
            ]
        );
    }
}
