//! Where a digest's profiles are looked for, and which answer wins. Pure.
//!
//! The same image digest can run from many repositories, and the tenant who
//! writes a pod chooses its reference. So no reference decides where profiles
//! come from: a digest is looked up in every repository it has been seen from
//! on this node (remembered across restarts) and in the configured profile
//! repositories, less those the policy's `profiles.repositories` does not admit.
//! Every place is asked, and the newest verified profile of all wins, whichever
//! reference came last. A place where nothing verifies, or that cannot be
//! reached, never takes away a profile verified elsewhere.

use imprint_schema::{Digest, Profile};

use super::model::{Resolved, Status};
use super::rank::Rank;

/// A verified profile for the digest, found in one place.
#[derive(Debug)]
pub(super) struct Candidate {
    /// `registry/repository`.
    pub(super) repository: String,
    pub(super) artifact: Digest,
    pub(super) profile: Box<Profile>,
    /// The digest of the profile's canonical JSON.
    pub(super) content: Digest,
    /// The instant the artifact's `org.opencontainers.image.created` names.
    pub(super) created: Option<jiff::Timestamp>,
    /// The version its verified learning attestation gives it.
    pub(super) version: u64,
    /// Chosen by a pin (Git, `--profile-ref`), not by its place in the order.
    pub(super) pinned: bool,
    /// The signed material that verified it.
    pub(super) evidence: imprint_oci::Evidence,
}

impl Candidate {
    /// Its place in the order of the digest's profiles.
    pub(super) fn rank(&self) -> Rank {
        Rank {
            version: self.version,
            created: self.created,
            artifact: self.artifact.clone(),
        }
    }
}

impl From<Candidate> for Resolved {
    fn from(c: Candidate) -> Resolved {
        Resolved::Enforce {
            rank: c.rank(),
            pinned: c.pinned,
            repository: c.repository,
            artifact: c.artifact,
            profile: c.profile,
            content: c.content,
            evidence: c.evidence,
        }
    }
}

/// What one place (a pinned artifact, or a repository) answered.
#[derive(Debug)]
pub(super) enum Answer {
    /// Its best verified profile for the digest.
    Verified(Candidate),
    /// Nothing there verifies, or it could not be asked: why.
    Refused(Status),
    /// It holds nothing for the digest.
    Nothing,
}

/// The outcome of asking every place (`(place, answer)`, in the order asked).
///
/// The newest verified candidate of all wins (ties by artifact digest, then by
/// repository name), so neither the order of places nor which reference came
/// last changes the choice. When nothing verifies: `Unreachable` if the place
/// the enforced profile came from (`enforced_place`) could not be asked — it may
/// still be there, and other places cannot say otherwise; else the first refusal
/// that is not unreachability (a revocation where the profile came from is
/// seen through another place being down); else the first; else `NoProfile`.
pub(super) fn decide(answers: Vec<(String, Answer)>, enforced_place: Option<&str>) -> Resolved {
    let mut refusals: Vec<(String, Status)> = Vec::new();
    let mut best: Option<Candidate> = None;
    for (place, answer) in answers {
        match answer {
            Answer::Verified(c) => {
                if best.as_ref().is_none_or(|b| better(&c, b)) {
                    best = Some(c);
                }
            }
            Answer::Refused(status) => refusals.push((place, status)),
            Answer::Nothing => {}
        }
    }
    if let Some(best) = best {
        return best.into();
    }
    let unreachable = |s: &Status| matches!(s, Status::Unreachable(_));
    let enforced_unreachable = refusals
        .iter()
        .find(|(place, s)| Some(place.as_str()) == enforced_place && unreachable(s));
    let status = match enforced_unreachable {
        Some((_, s)) => Some(s.clone()),
        None => (refusals.iter())
            .find(|(_, s)| !unreachable(s))
            .or(refusals.first())
            .map(|(_, s)| s.clone()),
    };
    Resolved::Not(status.unwrap_or(Status::NoProfile))
}

/// Whether `a` wins over `b`: a higher version, then newer, then the greater
/// artifact digest (see [`Rank`]), then the smaller repository name (the same
/// artifact copied elsewhere).
fn better(a: &Candidate, b: &Candidate) -> bool {
    let order = (a.rank().cmp(&b.rank())).then_with(|| b.repository.cmp(&a.repository));
    order.is_gt()
}

#[cfg(test)]
mod tests;
