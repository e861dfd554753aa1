//! The registry side of a lookup: which verified artifact, if any, is the
//! profile for a digest (pinned artifacts first, then every place the digest's
//! profiles may be, see [`super::places`]), and which platform manifest an index
//! stands for on this node. Every registry client is made by [`client_for`], with
//! the credentials docker and podman keep.

use std::path::PathBuf;

use imprint_oci::credentials::CredentialsError;
use imprint_oci::policy::Verdict;
use imprint_oci::{BlobCache, Discovered, Reference, Registry, RegistryError, parse_reference};
use imprint_schema::{Digest, Profile};

use super::model::{Resolved, ResolverConfig, Status, node_platforms, repository_name};
use super::places::{Answer, Candidate, decide};
use super::revoked::Learned;
use crate::delivered::{admits, lock};

/// Why no registry client could be made for a reference.
#[derive(Debug, thiserror::Error)]
pub(super) enum ClientError {
    /// The reference or the registry options are unusable.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A credentials file names the registry but cannot be used.
    #[error("credentials for {host}: {source}")]
    Credentials {
        /// The registry host.
        host: String,
        /// Why.
        source: CredentialsError,
    },
}

/// A client for `reference`'s registry, authenticated with the credential the
/// files docker and podman use hold for it (`REGISTRY_AUTH_FILE`,
/// `DOCKER_CONFIG`, `~/.docker/config.json`, `XDG_RUNTIME_DIR`), anonymous when
/// none does. Discovery, pins, restore and index reads all use it.
pub(super) fn client_for(
    config: &ResolverConfig,
    reference: &Reference,
) -> Result<Registry, ClientError> {
    let paths = imprint_oci::credentials::config_paths(|k| std::env::var(k).ok());
    client_with(config, reference, &paths)
}

/// [`client_for`] with the credential files given.
pub(super) fn client_with(
    config: &ResolverConfig,
    reference: &Reference,
    credential_files: &[PathBuf],
) -> Result<Registry, ClientError> {
    let registry = Registry::new(&config.registry, &[reference])?;
    let host = reference.resolve_registry();
    match imprint_oci::credentials::find(host, credential_files, None) {
        Ok(Some(credential)) => Ok(registry.with_auth(credential.into())),
        Ok(None) => Ok(registry),
        Err(source) => Err(ClientError::Credentials {
            host: host.to_string(),
            source,
        }),
    }
}

/// The manifest of `digest` (read from `repository`) for this node when `digest`
/// is a multi-platform index; `None` when it is a manifest itself. The index is
/// read by digest and its content checked against it.
pub(super) async fn platform_manifest(
    config: &ResolverConfig,
    repository: &str,
    digest: &Digest,
) -> Result<Option<Digest>, ClientError> {
    let named = parse_reference(repository)?;
    let by_digest = Reference::with_digest(
        named.registry().to_string(),
        named.repository().to_string(),
        digest.to_string(),
    );
    let registry = client_for(config, &by_digest)?;
    let mut last = None;
    for platform in node_platforms() {
        match registry
            .resolve_platform(&by_digest, Some(platform.as_str()))
            .await
        {
            Ok(found) => return Ok((&found.digest != digest).then_some(found.digest)),
            Err(e @ RegistryError::Platform { .. }) => last = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    Err(last.expect("at least one platform is tried").into())
}

/// A repository (`registry/repository`) as a reference to ask for referrers.
fn repository_reference(repository: &str) -> Option<Reference> {
    let r = parse_reference(repository).ok()?;
    Some(Reference::with_tag(
        r.registry().to_string(),
        r.repository().to_string(),
        "latest".into(),
    ))
}

/// A profile's content digest when it is the one delivered for its digest (or
/// nothing is delivered); otherwise why not.
pub(super) fn delivered_content(
    allowed: &[Digest],
    profile: &Profile,
    artifact: &str,
) -> Result<Digest, Status> {
    let content = imprint_schema::digest(profile);
    if admits(allowed, &content) {
        Ok(content)
    } else {
        Err(Status::Unsigned(format!(
            "{artifact} verifies, but its profile ({content}) is not the delivered one ({})",
            joined(allowed)
        )))
    }
}

/// Why a pinned artifact's repository is not asked, when the policy names the
/// repositories profiles may come from and it is not one of them.
pub(super) fn pin_refusal(config: &ResolverConfig, pinned: &str) -> Option<Status> {
    let globs = config.policy.profile_repositories.as_ref()?;
    let text = pinned.strip_prefix("oci://").unwrap_or(pinned);
    let repository = repository_name(text).unwrap_or_else(|| text.to_string());
    (!globs.allows(&repository)).then(|| {
        Status::RepositoryNotAllowed(format!(
            "{pinned}: {repository} is not among the policy's profiles.repositories ({})",
            globs.globs().join(", ")
        ))
    })
}

/// Resolves `digest`; `names` (it, and the indexes standing for it) select what
/// Git delivers for it, `places` are the repositories to ask, and `enforced` is
/// the artifact enforced now (`registry/repository@sha256:…`), if any.
pub(super) async fn resolve(
    config: &ResolverConfig,
    cache: &BlobCache,
    digest: &Digest,
    names: &[Digest],
    places: &[String],
    enforced: Option<&str>,
    learned: &mut Learned<'_>,
) -> Resolved {
    let (delivered, allowed) = {
        let d = lock(&config.delivered);
        (d.for_any(names), d.contents_for_any(names))
    };
    if allowed.len() > 1 {
        // Two sources pin different versions: choosing one would let either undo the other.
        return Resolved::Not(Status::DeliveryConflict(format!(
            "delivered profiles disagree: {}",
            joined(&allowed)
        )));
    }
    let mut answers: Vec<(String, Answer)> = Vec::new();
    let delivered_pins = delivered.iter().filter_map(|d| d.artifact.as_ref());
    for pinned in delivered_pins {
        // Pinned for this digest by Git: a refusal is this digest's status.
        if let Some(refusal) = pin_refusal(config, pinned) {
            answers.push((pinned.clone(), Answer::Refused(refusal)));
        } else {
            answers.push(from_pin(config, cache, digest, pinned, &allowed, learned).await);
        }
    }
    // --profile-ref pins are for whichever digest their profile names; those the
    // policy refuses were said once at start, and are not asked.
    for pinned in config.pinned.iter() {
        if pin_refusal(config, pinned).is_none() {
            answers.push(from_pin(config, cache, digest, pinned, &allowed, learned).await);
        }
    }
    // Pinned artifacts first: the Git-reviewed choice wins over discovery.
    if let Some(at) = answers
        .iter()
        .position(|(_, a)| matches!(a, Answer::Verified(_)))
        && let (_, Answer::Verified(found)) = answers.swap_remove(at)
    {
        return found.into();
    }
    for place in places {
        let answer = from_repository(config, cache, digest, place, &allowed, learned).await;
        answers.push((place.clone(), answer));
    }
    let enforced_place = enforced.and_then(|e| e.split_once('@')).map(|(r, _)| r);
    let mut outcome = decide(answers, enforced_place);
    if let Resolved::Enforce { pinned, .. } = &mut outcome {
        // Git delivers this content: its choice, not the order, decides.
        *pinned |= !allowed.is_empty();
    }
    outcome
}

/// A pinned artifact (`oci://…@sha256:…`): verified when it is a profile for
/// `digest` with the delivered content; otherwise why not. Answered under the
/// pin's repository.
async fn from_pin(
    config: &ResolverConfig,
    cache: &BlobCache,
    digest: &Digest,
    pinned: &str,
    allowed: &[Digest],
    learned: &mut Learned<'_>,
) -> (String, Answer) {
    let text = pinned.strip_prefix("oci://").unwrap_or(pinned);
    let place = repository_name(text).unwrap_or_else(|| text.to_string());
    let answer = pinned_answer(config, cache, digest, pinned, allowed, learned).await;
    (place, answer)
}

async fn pinned_answer(
    config: &ResolverConfig,
    cache: &BlobCache,
    digest: &Digest,
    pinned: &str,
    allowed: &[Digest],
    learned: &mut Learned<'_>,
) -> Answer {
    let text = pinned.strip_prefix("oci://").unwrap_or(pinned);
    let Ok(reference) = parse_reference(text) else {
        return Answer::Nothing;
    };
    let Some(artifact) = reference.digest().and_then(|d| Digest::parse(d).ok()) else {
        return Answer::Nothing;
    };
    let unreachable =
        |e: &dyn std::fmt::Display| Answer::Refused(Status::Unreachable(format!("{pinned}: {e}")));
    let registry = match client_for(config, &reference) {
        Ok(r) => r,
        Err(e) => return unreachable(&e),
    };
    let pulled = match registry.pull_artifact_cached(&reference, cache).await {
        Ok(p) => p,
        Err(e) => return unreachable(&e),
    };
    if &pulled.profile.image.digest != digest {
        return Answer::Nothing;
    }
    // A revocation beats a pin of the same artifact.
    learned
        .read(&registry, &reference, digest, &config.policy)
        .await;
    if let Some(why) = learned.revoking(&artifact) {
        return Answer::Refused(Status::Revoked(format!("{pinned}: {why}")));
    }
    // Not the delivered content: no need to ask the registry about its signatures.
    let content = match delivered_content(allowed, &pulled.profile, pinned) {
        Ok(c) => c,
        Err(status) => return Answer::Refused(status),
    };
    let created = created_at(
        (pulled.manifest.annotations)
            .get(imprint_oci::layout::ANNOTATION_CREATED)
            .map(String::as_str),
    );
    let verdict = registry.verify(&reference, &artifact, &config.policy).await;
    if let Ok(v) = &verdict {
        learned.flooded.extend(v.unexamined.iter().cloned());
    }
    match verdict {
        Ok(v) if v.verified => Answer::Verified(Candidate {
            repository: format!("{}/{}", reference.registry(), reference.repository()),
            artifact,
            profile: Box::new(pulled.profile),
            content,
            created,
            version: v.version,
            pinned: true,
            evidence: v.evidence(),
        }),
        Ok(v) => Answer::Refused(status_of_verdict(
            &v,
            config.policy.require_signature,
            &format!("{pinned}: "),
        )),
        Err(e) => unreachable(&e),
    }
}

/// The newest verified profile for `digest` that discovery finds in `place`
/// (`registry/repository`); otherwise why not.
async fn from_repository(
    config: &ResolverConfig,
    cache: &BlobCache,
    digest: &Digest,
    place: &str,
    allowed: &[Digest],
    learned: &mut Learned<'_>,
) -> Answer {
    let Some(repository) = repository_reference(place) else {
        return Answer::Nothing;
    };
    let registry = match client_for(config, &repository) {
        Ok(r) => r,
        Err(e) => return Answer::Refused(Status::Unreachable(format!("{place}: {e}"))),
    };
    let discovery = match registry.discover(&repository, digest).await {
        Ok(d) => d,
        Err(e) => return Answer::Refused(Status::Unreachable(e.to_string())),
    };
    if discovery.unexamined > 0 {
        learned.flooded.push(format!(
            "referrers of {digest} in {place}: {} more than are examined",
            discovery.unexamined
        ));
    }
    learned
        .read(&registry, &repository, digest, &config.policy)
        .await;
    let mut failure: Option<Status> = None;
    if let Some((artifact, why)) = discovery.rejected.first()
        && why.contains("subject")
    {
        failure = Some(Status::SubjectMismatch(format!("{artifact}: {why}")));
    }
    let mut artifacts = discovery.artifacts;
    newest_first(&mut artifacts);
    // Every listed artifact is verified: the order is the attested version
    // first, which only a verification reads (bounded by discovery's count).
    let mut best: Option<Candidate> = None;
    for found in artifacts {
        if let Some(why) = learned.revoking(&found.digest) {
            // An explicit act: it says more than any other refusal here.
            failure = Some(Status::Revoked(format!("{place}: {why}")));
            continue;
        }
        let found = verified_in(
            config,
            cache,
            digest,
            &registry,
            &repository,
            found,
            learned,
        )
        .await;
        match found {
            Ok(candidate) => {
                let whole = format!("{place}@{}", candidate.artifact);
                match delivered_content(allowed, &candidate.profile, &whole) {
                    Ok(_) if best.as_ref().is_none_or(|b| candidate.rank() > b.rank()) => {
                        best = Some(candidate);
                    }
                    Ok(_) => {}
                    // A revocation found here is the reason that stands.
                    Err(status) if !matches!(failure, Some(Status::Revoked(_))) => {
                        failure = Some(status)
                    }
                    Err(_) => {}
                }
            }
            Err(status) => {
                // The first reason stands, except that a later one says more than
                // unreachability or a subject rejected in the listing.
                let replaces = match (&failure, &status) {
                    (None, _) => true,
                    (Some(Status::Revoked(_)), _) => false,
                    (Some(_), Status::Unreachable(_)) => false,
                    (Some(Status::SubjectMismatch(_) | Status::Unreachable(_)), _) => true,
                    (Some(_), Status::SubjectMismatch(_)) => true,
                    _ => false,
                };
                if replaces {
                    failure = Some(status);
                }
            }
        }
    }
    if let Some(best) = best {
        return Answer::Verified(best);
    }
    failure.map_or(Answer::Nothing, Answer::Refused)
}

/// One discovered artifact, when it verifies and its profile names `digest`.
/// Its `content` is the profile's digest, to be checked against what Git
/// delivers.
async fn verified_in(
    config: &ResolverConfig,
    cache: &BlobCache,
    digest: &Digest,
    registry: &Registry,
    repository: &Reference,
    found: Discovered,
    learned: &mut Learned<'_>,
) -> Result<Candidate, Status> {
    let verdict = registry
        .verify(repository, &found.digest, &config.policy)
        .await
        .map_err(|e| Status::Unreachable(e.to_string()))?;
    learned.flooded.extend(verdict.unexamined.iter().cloned());
    if !verdict.verified {
        return Err(status_of_verdict(
            &verdict,
            config.policy.require_signature,
            "",
        ));
    }
    let reference = repository.clone_with_digest(found.digest.to_string());
    let pulled = registry
        .pull_artifact_cached(&reference, cache)
        .await
        .map_err(|e| Status::Unreachable(e.to_string()))?;
    if &pulled.profile.image.digest != digest {
        return Err(Status::SubjectMismatch(format!(
            "{}: its profile is for {}",
            found.digest, pulled.profile.image.digest
        )));
    }
    let content = imprint_schema::digest(&pulled.profile);
    Ok(Candidate {
        repository: format!("{}/{}", repository.registry(), repository.repository()),
        artifact: found.digest,
        profile: Box::new(pulled.profile),
        content,
        created: created_at(found.created.as_deref()),
        version: verdict.version,
        pinned: false,
        evidence: verdict.evidence(),
    })
}

/// The instant an `org.opencontainers.image.created` annotation names.
fn created_at(created: Option<&str>) -> Option<jiff::Timestamp> {
    created.and_then(|c| c.parse::<jiff::Timestamp>().ok())
}

/// Digests for a message.
fn joined(digests: &[Digest]) -> String {
    let texts: Vec<&str> = digests.iter().map(Digest::as_str).collect();
    texts.join(", ")
}

/// Orders discovered artifacts newest first, by the instant their `created`
/// annotation names: RFC 3339 text does not sort as time (`12:00:00.5Z` sorts
/// before `12:00:00Z`, offsets differ). Equal or unreadable stamps fall back to
/// the digest, so every node picks the same artifact.
pub(super) fn newest_first(artifacts: &mut [Discovered]) {
    let at = |d: &Discovered| created_at(d.created.as_deref());
    artifacts.sort_by(|a, b| at(b).cmp(&at(a)).then_with(|| b.digest.cmp(&a.digest)));
}

/// Why a verdict that does not verify refuses the artifact: signed (or no
/// signature required) but not attested as the policy asks, or not signed.
pub(super) fn status_of_verdict(
    verdict: &Verdict,
    require_signature: bool,
    prefix: &str,
) -> Status {
    let why = format!("{prefix}{}", verdict.failures.join("; "));
    if verdict.signatures.iter().any(|f| f.verified) || !require_signature {
        Status::AttestationFailed(why)
    } else {
        Status::Unsigned(why)
    }
}

#[cfg(test)]
mod tests;
