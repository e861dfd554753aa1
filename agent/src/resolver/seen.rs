//! The repositories a digest was seen running from on this node: every one is
//! a place its profiles are looked for (see [`super::places`]). Pure.

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
