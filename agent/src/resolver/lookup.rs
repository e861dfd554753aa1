//! The registry side of a lookup: which verified artifact, if any, is the
//! profile for a digest (pinned artifacts first, then discovery), and which
//! platform manifest an index stands for on this node.

use imprint_oci::BlobCache;
use imprint_oci::policy::Verdict;
use imprint_oci::{Discovered, Reference, Registry, RegistryError, parse_reference};
use imprint_schema::{Digest, Profile};

use super::model::{Resolved, ResolverConfig, Status, node_platforms};
use crate::delivered::{admits, lock};

/// The manifest of `digest` (in the repository of `image_ref`) for this node when
/// `digest` is a multi-platform index; `None` when it is a manifest itself. The
/// index is read by digest and its content checked against it.
pub(super) async fn platform_manifest(
    config: &ResolverConfig,
    image_ref: &str,
    digest: &Digest,
) -> Result<Option<Digest>, RegistryError> {
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
            Ok(found) => return Ok((&found.digest != digest).then_some(found.digest)),
            Err(e @ RegistryError::Platform { .. }) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("at least one platform is tried"))
}

fn repository_of(reference: &str) -> Option<Reference> {
    let r = parse_reference(reference).ok()?;
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

/// Resolves `digest`; `names` (it, and the indexes standing for it) select what
/// Git delivers for it.
pub(super) async fn resolve(
    config: &ResolverConfig,
    cache: &BlobCache,
    digest: &Digest,
    names: &[Digest],
    image_ref: Option<&str>,
) -> Resolved {
    let mut failure: Option<Status> = None;
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
    let mut pins: Vec<&String> = delivered
        .iter()
        .filter_map(|d| d.artifact.as_ref())
        .collect();
    pins.extend(&config.pinned);
    // Pinned artifacts first: the Git-reviewed choice wins over discovery.
    for pinned in pins {
        if let Some(found) = from_pin(config, cache, digest, pinned, &allowed, &mut failure).await {
            return found;
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
        let found =
            from_repository(config, cache, digest, repository, &allowed, &mut failure).await;
        if let Some(found) = found {
            return found;
        }
    }
    Resolved::Not(failure.unwrap_or(Status::NoProfile))
}

/// A pinned artifact (`oci://…@sha256:…`), when it is a verified profile for
/// `digest` with the delivered content; otherwise `failure` says why not.
async fn from_pin(
    config: &ResolverConfig,
    cache: &BlobCache,
    digest: &Digest,
    pinned: &str,
    allowed: &[Digest],
    failure: &mut Option<Status>,
) -> Option<Resolved> {
    let text = pinned.strip_prefix("oci://").unwrap_or(pinned);
    let Ok(reference) = parse_reference(text) else {
        return None;
    };
    let artifact = Digest::parse(reference.digest()?).ok()?;
    let Ok(registry) = Registry::new(&config.registry, &[&reference]) else {
        return None;
    };
    let pulled = match registry.pull_artifact_cached(&reference, cache).await {
        Ok(p) => p,
        Err(e) => {
            failure.get_or_insert(Status::Unreachable(format!("{pinned}: {e}")));
            return None;
        }
    };
    if &pulled.profile.image.digest != digest {
        return None;
    }
    // Not the delivered content: no need to ask the registry about its signatures.
    let content = match delivered_content(allowed, &pulled.profile, pinned) {
        Ok(c) => c,
        Err(status) => {
            *failure = Some(status);
            return None;
        }
    };
    match registry.verify(&reference, &artifact, &config.policy).await {
        Ok(v) if v.verified => {
            return Some(Resolved::Enforce {
                repository: format!("{}/{}", reference.registry(), reference.repository()),
                artifact,
                profile: Box::new(pulled.profile),
                content,
            });
        }
        Ok(v) => {
            *failure = Some(status_of_verdict(
                &v,
                config.policy.require_signature,
                &format!("{pinned}: "),
            ));
        }
        Err(e) => {
            failure.get_or_insert(Status::Unreachable(format!("{pinned}: {e}")));
        }
    }
    None
}

/// The newest verified profile for `digest` that discovery finds in
/// `repository`; otherwise `failure` says why not.
async fn from_repository(
    config: &ResolverConfig,
    cache: &BlobCache,
    digest: &Digest,
    repository: &Reference,
    allowed: &[Digest],
    failure: &mut Option<Status>,
) -> Option<Resolved> {
    let registry = match Registry::new(&config.registry, &[repository]) {
        Ok(r) => r,
        Err(e) => {
            *failure = Some(Status::Unreachable(e.to_string()));
            return None;
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
            return None;
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
            let status = status_of_verdict(&verdict, config.policy.require_signature, "");
            if failure.is_none() || matches!(*failure, Some(Status::SubjectMismatch(_))) {
                *failure = Some(status);
            }
            continue;
        }
        let reference = repository.clone_with_digest(found.digest.to_string());
        match registry.pull_artifact_cached(&reference, cache).await {
            Ok(pulled) if &pulled.profile.image.digest == digest => {
                let content = match delivered_content(allowed, &pulled.profile, &reference.whole())
                {
                    Ok(c) => c,
                    Err(status) => {
                        *failure = Some(status);
                        continue;
                    }
                };
                return Some(Resolved::Enforce {
                    repository: format!("{}/{}", repository.registry(), repository.repository()),
                    artifact: found.digest,
                    profile: Box::new(pulled.profile),
                    content,
                });
            }
            Ok(pulled) => {
                *failure = Some(Status::SubjectMismatch(format!(
                    "{}: its profile is for {}",
                    found.digest, pulled.profile.image.digest
                )));
            }
            Err(e) => {
                failure.get_or_insert(Status::Unreachable(e.to_string()));
            }
        }
    }
    None
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
    let at = |d: &Discovered| {
        d.created
            .as_deref()
            .and_then(|c| c.parse::<jiff::Timestamp>().ok())
    };
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
