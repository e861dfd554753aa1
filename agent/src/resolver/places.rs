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

use super::model::{Rank, Resolved, Status};

/// How many repositories are remembered per digest. A node workload can name
/// the digest from any number of repositories; each is asked on every lookup,
/// so the set is bounded.
pub(super) const MAX_SEEN_REPOSITORIES: usize = 16;

/// The repositories one digest was seen running from, least recently seen first.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub(super) struct SeenRepositories(Vec<String>);

/// What recording a repository did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Sighting {
    /// It was known already.
    Known,
    /// It is new.
    Added,
    /// It is new, and the set was full: this least recently seen one went.
    AddedDropping(String),
}

impl SeenRepositories {
    /// Records `repository` as the most recently seen. At the cap the least
    /// recently seen one goes, except `keep` (where the verified profile came
    /// from): a flood of references can push out only places that gave nothing.
    pub(super) fn see(&mut self, repository: &str, keep: Option<&str>) -> Sighting {
        if let Some(at) = self.0.iter().position(|r| r == repository) {
            let known = self.0.remove(at);
            self.0.push(known);
            return Sighting::Known;
        }
        let mut sighting = Sighting::Added;
        if self.0.len() >= MAX_SEEN_REPOSITORIES
            && let Some(at) = self.0.iter().position(|r| Some(r.as_str()) != keep)
        {
            sighting = Sighting::AddedDropping(self.0.remove(at));
        }
        self.0.push(repository.to_string());
        sighting
    }

    /// The repositories, least recently seen first.
    pub(super) fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

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
