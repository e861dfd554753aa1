//! The signed material of a verdict's accepted signatures and attestations, as
//! kept on disk (JSON, bytes in base64). Judging it again offline is
//! [`Evidence::check`], beside the checks it re-runs.

use serde::{Deserialize, Serialize};

/// The signed material of the signatures and attestations that verified.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Each piece, as it was read from the registry (digest-checked).
    pub pieces: Vec<Piece>,
}

/// One signature or attestation's signed material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Piece {
    /// A cosign simple-signing payload and its signature (a `.sig` layer).
    Signature {
        /// The payload's bytes.
        #[serde(with = "base64_bytes")]
        payload: Vec<u8>,
        /// The signature's bytes.
        #[serde(with = "base64_bytes")]
        signature: Vec<u8>,
    },
    /// A DSSE envelope (an `.att` layer).
    Envelope {
        /// The envelope's JSON.
        #[serde(with = "base64_bytes")]
        envelope: Vec<u8>,
    },
    /// A sigstore bundle referrer.
    Bundle {
        /// The bundle's JSON.
        #[serde(with = "base64_bytes")]
        bundle: Vec<u8>,
        /// Listed as a signature (cosign's sign predicate), not an attestation.
        signature: bool,
    },
}

/// Bytes as base64 text in JSON.
mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}
