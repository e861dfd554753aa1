//! No rollback, no silent withdrawal. Pure.
//!
//! Anyone who can write to a registry can delete an artifact, its signature
//! tag or its entry in the fallback index, or flood a tag so the signature is
//! never reached. If the newest artifact that verifies now simply won, each of
//! those would put an older signed profile in force, or none. So an image
//! digest's artifacts are ordered by what their signer decided (the attested
//! `version`, then the signed creation time), the agent remembers the newest it
//! has verified (its *mark*, across restarts), and it never enforces an older
//! one on its own. Going back takes an explicit act: a Git pin (the delivered
//! choice wins whatever its place), a policy change (the marks start again; see
//! `Policy::fingerprint`), or a signed revocation. When the marked artifact
//! stops being listed or verifying without such an act, what is enforced stays
//! and the status says `withdrawn`, which the agent raises as an alert.

use super::model::{Resolved, Status};
use super::rank::Mark;

/// What a lookup's outcome becomes under the digest's mark, and the mark after.
///
/// - A pinned choice (Git, or `--profile-ref`) stands whatever its place; it
///   raises the mark when newer, never lowers it.
/// - A verified artifact at or above the mark is enforced and becomes the mark.
/// - Below the mark, or nothing verifying, is a withdrawal unless the reason is
///   an explicit act (a delivery conflict, a repository the policy does not
///   admit, a revocation) or only unreachability (which keeps what is enforced
///   anyway).
/// - When Git delivers profiles for the digest (`delivered`), Git's pin is the
///   explicit act: what it admits decides, and a refusal is not a withdrawal.
pub(super) fn hold(
    outcome: Resolved,
    mark: Option<&Mark>,
    delivered: bool,
) -> (Resolved, Option<Mark>) {
    match outcome {
        Resolved::Enforce {
            ref repository,
            ref rank,
            pinned,
            ..
        } => {
            let found = Mark {
                repository: repository.clone(),
                rank: rank.clone(),
            };
            match mark {
                Some(mark) if !pinned && found.rank < mark.rank => {
                    let why = format!(
                        "the newest verified profile, {}, is no longer listed or verifying; {} is older and is not enforced",
                        mark.describe(),
                        found.describe()
                    );
                    (Resolved::Not(Status::Withdrawn(why)), Some(mark.clone()))
                }
                Some(mark) if found.rank < mark.rank => (outcome, Some(mark.clone())),
                _ => (outcome, Some(found)),
            }
        }
        Resolved::Not(status) => {
            let Some(mark) = mark.filter(|_| !delivered) else {
                return (Resolved::Not(status), mark.cloned());
            };
            let withdrawn = match &status {
                Status::Unsigned(why)
                | Status::AttestationFailed(why)
                | Status::SubjectMismatch(why) => Some(why.clone()),
                Status::NoProfile => Some("no profile artifact is listed for it".into()),
                Status::Verified(_)
                | Status::Unreachable(_)
                | Status::Withdrawn(_)
                | Status::Revoked(_)
                | Status::OfflineTooLong(_)
                | Status::DeliveryConflict(_)
                | Status::RepositoryNotAllowed(_) => None,
            };
            let status = match withdrawn {
                Some(why) => Status::Withdrawn(format!(
                    "the newest verified profile, {}, is no longer listed or verifying: {why}",
                    mark.describe()
                )),
                None => status,
            };
            (Resolved::Not(status), Some(mark.clone()))
        }
    }
}

#[cfg(test)]
mod tests;
