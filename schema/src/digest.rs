//! Content digests: `sha256:<64 hex>` (and OCI's other registered form,
//! `sha512:<128 hex>`), parsed once and then carried as a type.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256, Sha512};

/// A content digest as OCI writes it: `sha256:` and 64 lower-case hex digits, or
/// `sha512:` and 128. Image manifests, profile artifacts, layers and profiles are
/// all named by one.
///
/// The text form is the only form kept, so a digest borrows as `&str` (map keys of
/// type `Digest` can be looked up with a `&str`). Upper-case hex is refused, not
/// folded: registries compare digests as strings, and so does a signature payload.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

/// The hash algorithm of a [`Digest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    /// SHA-256: what imprint writes, and what every registry uses by default.
    Sha256,
    /// SHA-512: registered by the OCI image spec; accepted when read.
    Sha512,
}

impl DigestAlgorithm {
    /// The name before the colon.
    pub fn name(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha256 => "sha256",
            DigestAlgorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            DigestAlgorithm::Sha256 => 64,
            DigestAlgorithm::Sha512 => 128,
        }
    }

    fn named(name: &str) -> Option<DigestAlgorithm> {
        match name {
            "sha256" => Some(DigestAlgorithm::Sha256),
            "sha512" => Some(DigestAlgorithm::Sha512),
            _ => None,
        }
    }
}

/// Why a text is not a [`Digest`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// No `algorithm:` (or, in the tag form, `algorithm-`) prefix.
    #[error("`{text}` is not a digest: expected sha256:<64 lower-case hex digits>")]
    NoAlgorithm {
        /// The text (cut to 80 characters).
        text: String,
    },
    /// An algorithm other than sha256 and sha512.
    #[error("`{text}` is not a digest: unknown algorithm `{algorithm}` (sha256 or sha512)")]
    UnknownAlgorithm {
        /// The text (cut to 80 characters).
        text: String,
        /// The algorithm named.
        algorithm: String,
    },
    /// The hex part has the wrong length or a character other than `0-9a-f`.
    #[error("`{text}` is not a digest: {algorithm} needs {expected} lower-case hex digits")]
    BadHex {
        /// The text (cut to 80 characters).
        text: String,
        /// The algorithm named.
        algorithm: &'static str,
        /// How many hex digits it needs.
        expected: usize,
    },
}

impl Digest {
    /// Parses `sha256:<64 hex>` or `sha512:<128 hex>`.
    pub fn parse(text: &str) -> Result<Digest, DigestError> {
        let Some((name, hex)) = text.split_once(':') else {
            return Err(DigestError::NoAlgorithm { text: cut(text) });
        };
        check(text, name, hex)?;
        Ok(Digest(text.to_string()))
    }

    /// The SHA-256 digest of some bytes.
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        Digest(format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
    }

    /// Whether `bytes` hash to this digest, with its own algorithm.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        let actual = match self.algorithm() {
            DigestAlgorithm::Sha256 => hex::encode(Sha256::digest(bytes)),
            DigestAlgorithm::Sha512 => hex::encode(Sha512::digest(bytes)),
        };
        actual == self.hex()
    }

    /// Parses the tag and file-name form, `sha256-<hex>`: the OCI referrers fallback
    /// tag, cosign's `.sig`/`.att` tag stem and imprint's profile file names.
    pub fn from_tag_form(text: &str) -> Result<Digest, DigestError> {
        let Some((name, hex)) = text.split_once('-') else {
            return Err(DigestError::NoAlgorithm { text: cut(text) });
        };
        check(text, name, hex)?;
        Ok(Digest(format!("{name}:{hex}")))
    }

    /// The tag and file-name form, `sha256-<hex>`: a tag may not hold a colon.
    pub fn tag_form(&self) -> String {
        self.0.replacen(':', "-", 1)
    }

    /// The text form, `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The algorithm.
    pub fn algorithm(&self) -> DigestAlgorithm {
        let name = self.0.split_once(':').map_or("", |(name, _)| name);
        DigestAlgorithm::named(name).expect("a Digest is checked when made")
    }

    /// The hex digits after the colon.
    pub fn hex(&self) -> &str {
        self.0.split_once(':').map_or("", |(_, hex)| hex)
    }
}

fn check(text: &str, name: &str, hex: &str) -> Result<(), DigestError> {
    let Some(algorithm) = DigestAlgorithm::named(name) else {
        return Err(DigestError::UnknownAlgorithm {
            text: cut(text),
            algorithm: cut(name),
        });
    };
    let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    if hex.len() != algorithm.hex_len() || !hex.bytes().all(lower_hex) {
        return Err(DigestError::BadHex {
            text: cut(text),
            algorithm: algorithm.name(),
            expected: algorithm.hex_len(),
        });
    }
    Ok(())
}

/// Hostile input can be long; an error quotes at most 80 characters of it.
fn cut(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.0)
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(text: &str) -> Result<Digest, DigestError> {
        Digest::parse(text)
    }
}

impl TryFrom<String> for Digest {
    type Error = DigestError;

    fn try_from(text: String) -> Result<Digest, DigestError> {
        let Some((name, hex)) = text.split_once(':') else {
            return Err(DigestError::NoAlgorithm { text: cut(&text) });
        };
        check(&text, name, hex)?;
        Ok(Digest(text))
    }
}

impl From<Digest> for String {
    fn from(digest: Digest) -> String {
        digest.0
    }
}

impl AsRef<str> for Digest {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Digest {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Digest {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Digest {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
        let text = String::deserialize(deserializer)?;
        Digest::try_from(text).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for Digest {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Digest".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn sha256_and_sha512_parse_and_keep_their_text() {
        let digest = Digest::parse(&format!("sha256:{HEX}")).unwrap();
        assert_eq!(digest.algorithm(), DigestAlgorithm::Sha256);
        assert_eq!(digest.hex(), HEX);
        assert_eq!(digest.to_string(), format!("sha256:{HEX}"));
        let long = Digest::parse(&format!("sha512:{HEX}{HEX}")).unwrap();
        assert_eq!(long.algorithm(), DigestAlgorithm::Sha512);
    }

    #[test]
    fn bad_digests_say_what_is_wrong() {
        let upper = format!("sha256:{}", HEX.to_uppercase());
        assert!(matches!(
            Digest::parse(&upper),
            Err(DigestError::BadHex { expected: 64, .. })
        ));
        assert!(matches!(
            Digest::parse("md5:abc"),
            Err(DigestError::UnknownAlgorithm { .. })
        ));
        assert!(matches!(
            Digest::parse(HEX),
            Err(DigestError::NoAlgorithm { .. })
        ));
        assert!(Digest::parse(&format!("sha256:{HEX}0")).is_err());
        assert!(Digest::parse(&format!("sha512:{HEX}")).is_err());
        let message = Digest::parse(&"x".repeat(10_000)).unwrap_err().to_string();
        assert!(message.len() < 200, "{message}");
    }

    #[test]
    fn the_tag_form_round_trips_and_holds_no_colon() {
        let digest = Digest::sha256_of(b"hello");
        let tag = digest.tag_form();
        assert_eq!(tag, format!("sha256-{}", digest.hex()));
        assert_eq!(Digest::from_tag_form(&tag).unwrap(), digest);
        assert!(Digest::from_tag_form(digest.as_str()).is_err());
        assert!(Digest::from_tag_form("sha256-zz").is_err());
    }

    #[test]
    fn content_is_checked_with_the_digest_s_own_algorithm() {
        let sha256 = Digest::sha256_of(b"layer");
        assert!(sha256.matches(b"layer") && !sha256.matches(b"other"));
        let sha512 = Digest::parse(&format!("sha512:{}", hex::encode(Sha512::digest(b"layer"))));
        assert!(sha512.unwrap().matches(b"layer"));
    }

    #[test]
    fn sha256_of_is_the_known_value() {
        assert_eq!(
            Digest::sha256_of(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn serde_refuses_what_parse_refuses() {
        let good = format!("\"sha256:{HEX}\"");
        let digest: Digest = serde_json::from_str(&good).unwrap();
        assert_eq!(serde_json::to_string(&digest).unwrap(), good);
        let bad = serde_json::from_str::<Digest>("\"sha256:abc\"").unwrap_err();
        assert!(bad.to_string().contains("64 lower-case hex"), "{bad}");
    }

    #[test]
    fn a_digest_key_is_found_by_its_text() {
        let digest = Digest::sha256_of(b"x");
        let map = std::collections::HashMap::from([(digest.clone(), 1)]);
        assert_eq!(map.get(digest.as_str()), Some(&1));
    }
}
