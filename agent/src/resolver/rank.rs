//! An image digest's profiles in order, and the memory of the newest: the
//! values [`super::order`] decides with and `verified.json` keeps.

use imprint_schema::Digest;
use jiff::Timestamp;

/// An artifact's place in the order of its image digest's profiles: the
/// attested version, then the signed creation time (the manifest's
/// `org.opencontainers.image.created`, covered by the digest that is signed),
/// then the digest, so every node picks the same.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub(super) struct Rank {
    pub(super) version: u64,
    pub(super) created: Option<Timestamp>,
    pub(super) artifact: Digest,
}

/// The newest artifact verified for an image digest under the remembered
/// policy, and where it was found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct Mark {
    pub(super) repository: String,
    pub(super) rank: Rank,
}

impl Mark {
    pub(super) fn describe(&self) -> String {
        format!(
            "{}@{} (version {})",
            self.repository, self.rank.artifact, self.rank.version
        )
    }
}
