//! Lookups run concurrently, each within one deadline, and each one's outcome is
//! applied as soon as it is known: a slow or hostile registry delays only the
//! digests whose places it holds, never the others'.
//!
//! A lookup is prepared on the resolver's state (what is known of the digest),
//! runs as a future that owns what it needs (the registry work), and is finished
//! on the state again (order, marks, revocations, what the detector is told).
//! The futures are driven on the resolver's single-threaded runtime between
//! reads of the watch channel; a digest is never looked up twice at once.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use imprint_oci::BlobCache;
use imprint_schema::Digest;

use super::Resolver;
use super::lookup::resolve;
use super::model::{Resolved, ResolverConfig, Status, Update};
use super::revoked::{Learned, RevokedArtifact};
use crate::delivered::admits;

/// How long one lookup may take as a whole (discovery, verification and pulls
/// in every place): past it the digest's outcome is `unreachable`, and the
/// lookups of other digests have gone on meanwhile.
pub(super) const LOOKUP_DEADLINE: Duration = Duration::from_secs(300);

/// A lookup ready to run: what the resolver knew of the digest when it began.
pub(super) struct Prepared {
    pub(super) digest: Digest,
    pub(super) names: Vec<Digest>,
    pub(super) places: Vec<String>,
    pub(super) enforced: Option<String>,
}

/// A lookup's result, to be applied to the resolver's state.
pub(super) struct Finished {
    pub(super) digest: Digest,
    pub(super) names: Vec<Digest>,
    pub(super) outcome: Resolved,
    pub(super) revocations: BTreeMap<Digest, RevokedArtifact>,
    /// Signature tags and listings holding more than is examined.
    pub(super) flooded: Vec<String>,
}

type Running = Pin<Box<dyn Future<Output = Finished>>>;

/// The lookups under way.
#[derive(Default)]
pub(super) struct Rounds {
    running: FuturesUnordered<Running>,
    digests: HashSet<Digest>,
}

impl Rounds {
    /// Whether `digest` is being looked up now.
    pub(super) fn is_running(&self, digest: &Digest) -> bool {
        self.digests.contains(digest)
    }

    /// Starts a lookup, bounded by `deadline` as a whole: past it, the outcome is
    /// `unreachable` (which keeps what is enforced).
    pub(super) fn start(
        &mut self,
        prepared: Prepared,
        config: Arc<ResolverConfig>,
        cache: BlobCache,
        known: BTreeMap<Digest, RevokedArtifact>,
        deadline: Duration,
    ) {
        self.digests.insert(prepared.digest.clone());
        self.running.push(Box::pin(async move {
            let Prepared {
                digest,
                names,
                places,
                enforced,
            } = prepared;
            let mut learned = Learned::new(&known);
            let looked = resolve(
                &config,
                &cache,
                &digest,
                &names,
                &places,
                enforced.as_deref(),
                &mut learned,
            );
            let outcome = match tokio::time::timeout(deadline, looked).await {
                Ok(outcome) => outcome,
                Err(_) => Resolved::Not(Status::Unreachable(format!(
                    "the lookup did not finish within {}s",
                    deadline.as_secs()
                ))),
            };
            let revocations = std::mem::take(&mut learned.found);
            let flooded = std::mem::take(&mut learned.flooded);
            Finished {
                digest,
                names,
                outcome,
                revocations,
                flooded,
            }
        }));
    }

    /// Drives the lookups for at most `wait`, returning those that finished.
    pub(super) fn drive(
        &mut self,
        runtime: &tokio::runtime::Runtime,
        wait: Duration,
    ) -> Vec<Finished> {
        let finished = runtime.block_on(async {
            let mut finished = Vec::new();
            let until = tokio::time::Instant::now() + wait;
            loop {
                if self.running.is_empty() {
                    tokio::time::sleep_until(until).await;
                    break;
                }
                match tokio::time::timeout_at(until, self.running.next()).await {
                    Ok(Some(done)) => finished.push(done),
                    Ok(None) | Err(_) => break,
                }
            }
            finished
        });
        for done in &finished {
            self.digests.remove(&done.digest);
        }
        finished
    }
}

impl Resolver {
    /// Applies a finished lookup: revocations kept, the order's memory, the
    /// offline limit, then what the detector is told.
    pub(super) fn finish(&mut self, finished: Finished) {
        let Finished {
            digest,
            names,
            outcome,
            revocations,
            flooded,
        } = finished;
        if !self.watched.contains_key(&digest) {
            // An index found to stand for its manifest meanwhile.
            return;
        }
        // A flood may hide a signature: said once each, as an alert.
        let new: Vec<String> = (flooded.into_iter())
            .filter(|f| self.flooded_said.insert((digest.clone(), f.clone())))
            .collect();
        if !new.is_empty() {
            self.send(Update::Flooded {
                digest: digest.clone(),
                detail: new,
            });
        }
        self.remember_revocations(&digest, revocations);
        // No rollback: an outcome below the digest's mark is a withdrawal.
        let allowed = self.delivered_contents(&names);
        let mark = self.remembered.marks.get(&digest);
        let (outcome, mark) = super::order::hold(outcome, mark, !allowed.is_empty());
        let outcome = self.offline_limit(&digest, outcome);
        if mark.as_ref() != self.remembered.marks.get(&digest)
            && let Some(mark) = mark
        {
            self.remembered.marks.insert(digest.clone(), mark);
            self.remembered.save(&self.remembered_path);
        }
        let Some(w) = self.watched.get_mut(&digest) else {
            return;
        };
        let change = w.settle(outcome, |content| admits(&allowed, content));
        self.apply(&digest, change);
    }
}
