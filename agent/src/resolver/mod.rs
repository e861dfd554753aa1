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
//! A digest's profiles are looked for in every repository it was seen from on
//! this node and in the configured profile repositories ([`places`]): a tenant
//! who runs the same digest from a repository it controls adds a place to look,
//! and cannot take away a profile verified elsewhere. The policy's
//! `profiles.repositories` names the only repositories that may be asked.
//!
//! Profiles delivered through GitOps ([`crate::delivered`]) narrow the choice:
//! for a digest with a delivered profile, only a verified artifact with exactly
//! that content is enforced, whichever repository holds it.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::time::{Duration, Instant};

use imprint_oci::{BlobCache, RegistryError, parse_reference};
use imprint_schema::Digest;

use crate::delivered::{admits, lock};

mod kept;
mod lookup;
mod model;
mod order;
mod places;
mod rank;
mod revoked;
mod rounds;
mod seen;

use lookup::{ClientError, client_for, pin_refusal, platform_manifest};
use model::{Change, Remembered, Resolved, Sighting, Watched, repository_name};
pub use model::{ResolverConfig, Status, Update, node_platforms};
use rounds::{Prepared, Rounds};

/// Runs the resolver on this thread until `stop`: digests to watch arrive on
/// `watch` (with the image reference, when known), updates go to `updates`.
pub fn run(
    config: ResolverConfig,
    watch: Receiver<(Digest, Option<String>)>,
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
            // The enforce loop finds the resolver ended and says so loudly.
            eprintln!("imprint-agent: the profile cache is unusable ({e}); the resolver stops");
            return;
        }
    };
    let remembered_path = config.state_dir.join("verified.json");
    let mut resolver = Resolver {
        remembered: Remembered::load(&remembered_path),
        remembered_path,
        config: Arc::new(config),
        cache,
        runtime,
        updates,
        watched: BTreeMap::new(),
        manifests: HashSet::new(),
        flooded_said: HashSet::new(),
    };
    for pinned in &resolver.config.pinned {
        if let Some(refusal) = pin_refusal(&resolver.config, pinned) {
            eprintln!("imprint-agent: --profile-ref not used: {refusal:?}");
        }
    }
    let fingerprint = resolver.config.policy.fingerprint();
    if resolver.remembered.under_policy(&fingerprint) {
        eprintln!(
            "imprint-agent: the verification policy changed: the newest artifact that verifies under it is enforced from now on, older ones included"
        );
    }
    resolver.remembered.save(&resolver.remembered_path);
    resolver.restore();
    let mut last_round = Instant::now();
    let mut due: Vec<Digest> = Vec::new();
    let mut rounds = Rounds::default();
    let mut delivered_generation = 0;
    while !stop.load(Ordering::Relaxed) {
        let generation = lock(&resolver.config.delivered).generation();
        if generation != delivered_generation {
            // What Git delivers changed: every digest is looked at again now.
            delivered_generation = generation;
            due.extend(resolver.watched.keys().cloned());
        }
        loop {
            match watch.try_recv() {
                Ok((digest, image_ref)) => due.push(resolver.watch(digest, image_ref)),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            }
        }
        if last_round.elapsed() >= resolver.config.refresh {
            due.extend(resolver.watched.keys().cloned());
            last_round = Instant::now();
        }
        due.sort();
        due.dedup();
        // A digest being looked up stays due: it is looked at again after.
        let (waiting, ready): (Vec<Digest>, Vec<Digest>) = std::mem::take(&mut due)
            .into_iter()
            .partition(|d| rounds.is_running(d));
        due = waiting;
        for digest in ready {
            match resolver.prepare(&digest) {
                Some(Step::Next(manifest)) => due.push(manifest),
                Some(Step::Ready(prepared)) => rounds.start(
                    prepared,
                    resolver.config.clone(),
                    resolver.cache.clone(),
                    resolver.remembered.revoked.clone(),
                    rounds::LOOKUP_DEADLINE,
                ),
                None => {}
            }
        }
        for finished in rounds.drive(&resolver.runtime, Duration::from_millis(200)) {
            resolver.finish(finished);
        }
    }
}

/// What preparing a lookup gave.
enum Step {
    /// The digest is an index: its platform manifest is due instead.
    Next(Digest),
    /// A lookup to run.
    Ready(Prepared),
}

/// The resolver's state between lookups.
struct Resolver {
    config: Arc<ResolverConfig>,
    cache: BlobCache,
    runtime: tokio::runtime::Runtime,
    updates: Sender<Update>,
    remembered: Remembered,
    remembered_path: PathBuf,
    watched: BTreeMap<Digest, Watched>,
    /// Digests known to be manifests, not indexes (asked once per run).
    manifests: HashSet<Digest>,
    /// The floods already said, so each is one alert, not one per refresh.
    flooded_said: HashSet<(Digest, String)>,
}

impl Resolver {
    fn send(&self, update: Update) {
        let _ = self.updates.send(update);
    }

    /// The contents Git delivers for a digest under any of its names (none: any).
    fn delivered_contents(&self, names: &[Digest]) -> Vec<Digest> {
        lock(&self.config.delivered).contents_for_any(names)
    }

    /// Before the registry answers: indexes stand for the manifests they did
    /// (content-addressed), and what was verified is enforced again from the
    /// cache (not for an index: its events name its manifest), unless Git now
    /// pins other content for it.
    fn restore(&mut self) {
        for (index, manifest) in &self.remembered.platforms {
            self.send(Update::Platform {
                index: index.clone(),
                manifest: manifest.clone(),
            });
        }
        let platforms = self.remembered.platforms.clone();
        self.remembered
            .verified
            .retain(|digest, _| !platforms.contains_key(digest));
        let allowed = self.config.policy.profile_repositories.clone();
        for (digest, (repo, artifact)) in self.remembered.verified.clone() {
            if self.remembered.revoked.contains_key(&artifact) {
                // Revoked since: never enforced again, not even from the cache.
                continue;
            }
            if allowed.as_ref().is_some_and(|globs| !globs.allows(&repo)) {
                // The policy no longer admits where it came from.
                continue;
            }
            let Ok(reference) = parse_reference(&format!("{repo}@{artifact}")) else {
                continue;
            };
            let registry = match client_for(&self.config, &reference) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("imprint-agent: cannot restore {}: {e}", reference.whole());
                    continue;
                }
            };
            let pulled = self
                .runtime
                .block_on(registry.pull_artifact_cached(&reference, &self.cache));
            let Ok(pulled) = pulled else {
                continue;
            };
            // Judged again under the policy in force now, from the signed material
            // kept when it verified: a removed key or a stricter condition takes
            // effect before the registry answers.
            let Some(evidence) = kept::load(&self.config.state_dir, &artifact) else {
                eprintln!(
                    "imprint-agent: {digest}: no kept signatures for {}; it waits for the registry",
                    reference.whole()
                );
                continue;
            };
            let verdict = evidence.check(&self.config.policy, &artifact);
            if !verdict.verified {
                eprintln!(
                    "imprint-agent: {digest}: {} no longer verifies under the current policy ({}); not restored",
                    reference.whole(),
                    verdict.failures.join("; ")
                );
                continue;
            }
            let content = imprint_schema::digest(&pulled.profile);
            let allowed = self.delivered_contents(&self.remembered.names(&digest));
            if pulled.profile.image.digest == digest && admits(&allowed, &content) {
                self.send(Update::Enforce {
                    digest: digest.clone(),
                    artifact: reference.whole(),
                    profile: Box::new(pulled.profile),
                });
                let watched = Watched {
                    enforced: Some(reference.whole()),
                    content: Some(content),
                    status: Some(Status::Verified(reference.whole())),
                };
                self.watched.insert(digest, watched);
            }
        }
    }

    /// A digest seen running (again): watched from now on, and the repository
    /// of its reference remembered as a place to look (unless the policy does not
    /// admit it). Returns it, due.
    fn watch(&mut self, digest: Digest, image_ref: Option<String>) -> Digest {
        self.watched.entry(digest.clone()).or_default();
        let Some(repository) = image_ref.as_deref().and_then(repository_name) else {
            return digest;
        };
        let globs = self.config.policy.profile_repositories.as_ref();
        if globs.is_some_and(|g| !g.allows(&repository)) {
            eprintln!(
                "imprint-agent: {digest} seen from {repository}, which the policy's profiles.repositories does not admit: not asked"
            );
            return digest;
        }
        match self.remembered.see(&digest, &repository) {
            Sighting::Known => return digest,
            Sighting::Added => {
                eprintln!("imprint-agent: {digest} seen from {repository}: asked for its profiles")
            }
            Sighting::AddedDropping(dropped) => eprintln!(
                "imprint-agent: {digest} seen from {repository}: asked for its profiles; {dropped} no longer is (at most {} per digest)",
                seen::MAX_SEEN_REPOSITORIES
            ),
        }
        self.remembered.save(&self.remembered_path);
        digest
    }

    /// Looks `digest` up and tells the detector what changed. Returns the digest
    /// due next: the platform manifest, when `digest` turned out to be an index.
    fn prepare(&mut self, digest: &Digest) -> Option<Step> {
        self.watched.get(digest)?;
        if let Some(manifest) = self.platform_of(digest) {
            // The index stands for the manifest from here on (also when an event
            // still named the index after a restart): the detector is told, and
            // whatever the index had (a status, a profile resolved while the
            // registry could not say it was an index) is dropped with it.
            self.remembered.verified.remove(digest);
            self.remembered.marks.remove(digest);
            self.remembered.save(&self.remembered_path);
            self.send(Update::Platform {
                index: digest.clone(),
                manifest: manifest.clone(),
            });
            // Where the index was seen from is asked for the manifest too
            // (`Remembered::places` goes by every name of a digest).
            self.watched.remove(digest);
            self.watched.entry(manifest.clone()).or_default();
            return Some(Step::Next(manifest));
        }
        let names = self.remembered.names(digest);
        let places = self.remembered.places(
            digest,
            &self.config.profile_repos,
            self.config.policy.profile_repositories.as_ref(),
        );
        let enforced = self.watched.get(digest)?.enforced.clone();
        Some(Step::Ready(Prepared {
            digest: digest.clone(),
            names,
            places,
            enforced,
        }))
    }

    /// Records a verification against the registry, and ends enforcement of a
    /// profile the registry has not confirmed for longer than
    /// `--max-offline-age` (an alert says so).
    fn offline_limit(&mut self, digest: &Digest, outcome: Resolved) -> Resolved {
        let now = jiff::Timestamp::now();
        match &outcome {
            Resolved::Enforce { .. } => {
                self.remembered.checked.insert(digest.clone(), now);
                outcome
            }
            Resolved::Not(Status::Unreachable(_)) => {
                let checked = self.remembered.checked.get(digest);
                match kept::offline_too_long(checked, self.config.max_offline_age, now) {
                    Some(why) => Resolved::Not(Status::OfflineTooLong(why)),
                    None => outcome,
                }
            }
            Resolved::Not(_) => outcome,
        }
    }

    /// Keeps the revocations a lookup verified. Revoking the digest's newest
    /// artifact is an explicit act: its mark goes, so the newest artifact that is
    /// not revoked can be enforced again.
    fn remember_revocations(
        &mut self,
        digest: &Digest,
        found: BTreeMap<Digest, revoked::RevokedArtifact>,
    ) {
        if found.is_empty() {
            return;
        }
        for (artifact, revocation) in found {
            eprintln!(
                "imprint-agent: {digest}: {artifact} revoked by {}; remembered",
                revocation.authority
            );
            self.remembered.revoked.insert(artifact, revocation);
        }
        let revoked = &self.remembered.revoked;
        if (self.remembered.marks.get(digest))
            .is_some_and(|m| revoked.contains_key(&m.rank.artifact))
        {
            self.remembered.marks.remove(digest);
        }
        self.remembered.save(&self.remembered_path);
    }

    /// Tells the detector, and remembers, what a lookup changed.
    fn apply(&mut self, digest: &Digest, change: Change) {
        let digest = digest.clone();
        match change {
            Change::Unchanged => {}
            Change::Enforce {
                repository,
                artifact,
                profile,
                evidence,
            } => {
                kept::save(&self.config.state_dir, &artifact, &evidence);
                let whole = format!("{repository}@{artifact}");
                self.send(Update::Enforce {
                    digest: digest.clone(),
                    artifact: whole,
                    profile,
                });
                self.remembered
                    .verified
                    .insert(digest, (repository, artifact));
                self.remembered.save(&self.remembered_path);
            }
            Change::Revoke(status) => {
                self.remembered.verified.remove(&digest);
                self.remembered.save(&self.remembered_path);
                self.send(Update::Revoke { digest, status });
            }
            Change::Status(status) => self.send(Update::Status { digest, status }),
        }
    }

    /// The manifest `digest` stands for on this node when it is a multi-platform
    /// index (remembered, or asked of the registry once).
    fn platform_of(&mut self, digest: &Digest) -> Option<Digest> {
        if let Some(manifest) = self.remembered.platforms.get(digest) {
            return Some(manifest.clone());
        }
        if self.manifests.contains(digest) {
            return None;
        }
        let globs = self.config.policy.profile_repositories.as_ref();
        let sources = self.remembered.places(digest, &[], globs);
        if sources.is_empty() {
            // Seen from no repository yet: nothing to read the index from.
            return None;
        }
        match self
            .runtime
            .block_on(first_platform_answer(&self.config, &sources, digest))
        {
            Ok(None) => {
                self.manifests.insert(digest.clone());
                None
            }
            Ok(Some(manifest)) => {
                eprintln!(
                    "imprint-agent: {digest} is a multi-platform index; this node ({}) runs {manifest}",
                    node_platforms().join(" or ")
                );
                (self.remembered.platforms).insert(digest.clone(), manifest.clone());
                Some(manifest)
            }
            Err(e @ ClientError::Registry(RegistryError::Platform { .. })) => {
                // An index without this platform: nothing can match it.
                eprintln!("imprint-agent: {digest}: {e}");
                self.manifests.insert(digest.clone());
                None
            }
            // Asked again next round; the digest is resolved as it is meanwhile.
            Err(_) => None,
        }
    }
}

/// What the first repository that can say gives for [`platform_manifest`]: the
/// index is content-checked, so any repository holding the digest will do.
/// `Ok(None)` when none was seen (nothing to ask).
async fn first_platform_answer(
    config: &ResolverConfig,
    repositories: &[String],
    digest: &Digest,
) -> Result<Option<Digest>, ClientError> {
    let mut last = Ok(None);
    for repository in repositories {
        match platform_manifest(config, repository, digest).await {
            Err(ClientError::Registry(e)) if !matches!(e, RegistryError::Platform { .. }) => {
                last = Err(ClientError::Registry(e));
            }
            Err(ClientError::Credentials { host, source }) => {
                last = Err(ClientError::Credentials { host, source });
            }
            answer => return answer,
        }
    }
    last
}
