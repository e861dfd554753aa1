//! Signing keys in cosign's formats.
//!
//! A private key is an `ENCRYPTED SIGSTORE PRIVATE KEY` PEM (cosign also reads the
//! older `ENCRYPTED COSIGN PRIVATE KEY` label): the PEM body is JSON naming scrypt
//! and NaCl secretbox, around a PKCS#8 key. Public keys are PKIX `PUBLIC KEY` PEMs.
//! ECDSA P-256 (cosign's default) and Ed25519 are supported.
//!
//! Only the scrypt costs cosign and sigstore use (N of 2^15, 2^16 or 2^17, r=8,
//! p=1) are accepted: a key file chooses its own cost, and a hostile one could ask
//! for gigabytes of memory.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use crypto_secretbox::aead::{Aead, KeyInit};
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

/// PEM label cosign and sigstore write for an encrypted private key.
pub(crate) const SIGSTORE_PRIVATE_KEY_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// PEM label older cosign versions wrote.
pub(crate) const COSIGN_PRIVATE_KEY_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";
/// The scrypt N cosign writes.
pub(crate) const SCRYPT_N: u32 = 65536;
/// The scrypt N values accepted when reading.
pub(crate) const ACCEPTED_SCRYPT_N: [u32; 3] = [32768, 65536, 131072];

/// Why a key could not be read, written or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not PEM, or not the PEM expected.
    #[error("not a {expected} PEM: {message}")]
    Pem {
        /// What was expected.
        expected: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The encrypted key's JSON envelope is malformed or names something else.
    #[error("encrypted key: {0}")]
    Envelope(String),
    /// scrypt parameters outside the accepted set.
    #[error(
        "encrypted key: scrypt parameters N={n}, r={r}, p={p} are refused (accepted: N in {{32768, 65536, 131072}}, r=8, p=1)"
    )]
    ScryptParameters {
        /// N.
        n: u64,
        /// r.
        r: u64,
        /// p.
        p: u64,
    },
    /// Decryption failed: the password is wrong or the key was altered.
    #[error("encrypted key: decryption failed (wrong password, or the file was altered)")]
    Decrypt,
    /// The key algorithm is not supported.
    #[error("unsupported key: {0} (imprint supports ECDSA P-256 and Ed25519)")]
    Unsupported(String),
    /// A signature does not verify.
    #[error("signature does not verify with the key")]
    BadSignature,
    /// A signature is not even well formed.
    #[error("malformed signature: {0}")]
    MalformedSignature(String),
}

/// The algorithm of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// ECDSA over P-256 with SHA-256 (cosign's default).
    EcdsaP256,
    /// Ed25519.
    Ed25519,
}

impl KeyAlgorithm {
    /// The name used on the command line and in policies.
    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::EcdsaP256 => "ecdsa-p256",
            KeyAlgorithm::Ed25519 => "ed25519",
        }
    }
}

/// A private key that signs.
#[derive(Clone)]
pub enum SigningKey {
    /// ECDSA P-256.
    EcdsaP256(p256::ecdsa::SigningKey),
    /// Ed25519.
    Ed25519(ed25519_dalek::SigningKey),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.algorithm().name())
    }
}

/// A public key that verifies.
#[derive(Clone, PartialEq, Eq)]
pub enum VerifyingKey {
    /// ECDSA P-256.
    EcdsaP256(p256::ecdsa::VerifyingKey),
    /// Ed25519.
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "VerifyingKey({}, {})",
            self.algorithm().name(),
            self.hint()
        )
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Envelope {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    salt: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u64,
    r: u64,
    p: u64,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

fn secretbox_key(password: &[u8], salt: &[u8], n: u32) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let params = scrypt::Params::new(n.trailing_zeros() as u8, 8, 1, 32)
        .map_err(|e| KeyError::Envelope(e.to_string()))?;
    let mut key = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(password, salt, &params, key.as_mut())
        .map_err(|e| KeyError::Envelope(e.to_string()))?;
    Ok(key)
}

fn decode_pem(pem: &[u8], expected: &'static str) -> Result<(String, Vec<u8>), KeyError> {
    let text = std::str::from_utf8(pem).map_err(|_| KeyError::Pem {
        expected,
        message: "not UTF-8 text".into(),
    })?;
    // Accept surrounding whitespace and CRLF line ends, as Go's pem package does.
    let normalized = text.trim().replace("\r\n", "\n") + "\n";
    let (label, der) =
        pem_rfc7468::decode_vec(normalized.as_bytes()).map_err(|e| KeyError::Pem {
            expected,
            message: e.to_string(),
        })?;
    Ok((label.to_string(), der))
}

impl SigningKey {
    /// A new random key.
    pub fn generate(algorithm: KeyAlgorithm) -> SigningKey {
        match algorithm {
            KeyAlgorithm::EcdsaP256 => {
                SigningKey::EcdsaP256(p256::ecdsa::SigningKey::random(&mut OsRng))
            }
            KeyAlgorithm::Ed25519 => {
                SigningKey::Ed25519(ed25519_dalek::SigningKey::generate(&mut OsRng))
            }
        }
    }

    /// Its algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self {
            SigningKey::EcdsaP256(_) => KeyAlgorithm::EcdsaP256,
            SigningKey::Ed25519(_) => KeyAlgorithm::Ed25519,
        }
    }

    /// Its public half.
    pub fn verifying_key(&self) -> VerifyingKey {
        match self {
            SigningKey::EcdsaP256(k) => VerifyingKey::EcdsaP256(*k.verifying_key()),
            SigningKey::Ed25519(k) => VerifyingKey::Ed25519(k.verifying_key()),
        }
    }

    /// Signs `message`: ECDSA-SHA256 as ASN.1 DER, or pure Ed25519 (64 bytes), as
    /// cosign does.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        use p256::ecdsa::signature::Signer as _;
        match self {
            SigningKey::EcdsaP256(k) => {
                let signature: p256::ecdsa::Signature = k.sign(message);
                signature.to_der().as_bytes().to_vec()
            }
            SigningKey::Ed25519(k) => k.sign(message).to_bytes().to_vec(),
        }
    }

    fn pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        let document = match self {
            SigningKey::EcdsaP256(k) => k.to_pkcs8_der(),
            SigningKey::Ed25519(k) => k.to_pkcs8_der(),
        }
        .expect("keys encode as PKCS#8");
        Zeroizing::new(document.as_bytes().to_vec())
    }

    fn from_pkcs8_der(der: &[u8]) -> Result<SigningKey, KeyError> {
        if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_der(der) {
            return Ok(SigningKey::EcdsaP256(k));
        }
        if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_der(der) {
            return Ok(SigningKey::Ed25519(k));
        }
        let algorithm = p256::pkcs8::PrivateKeyInfo::try_from(der)
            .map(|info| algorithm_name(&info.algorithm.oid.to_string()))
            .unwrap_or_else(|_| "not PKCS#8".to_string());
        Err(KeyError::Unsupported(algorithm))
    }

    /// cosign's encrypted PEM (`ENCRYPTED SIGSTORE PRIVATE KEY`), with a fresh salt
    /// and nonce. An empty password is allowed, as cosign allows it.
    pub fn to_encrypted_pem(&self, password: &[u8]) -> Zeroizing<String> {
        let mut salt = [0u8; 32];
        let mut nonce = [0u8; 24];
        OsRng.fill_bytes(&mut salt);
        OsRng.fill_bytes(&mut nonce);
        let key = secretbox_key(password, &salt, SCRYPT_N).expect("fixed parameters are valid");
        let cipher = crypto_secretbox::XSalsa20Poly1305::new(key.as_ref().into());
        let ciphertext = cipher
            .encrypt(&nonce.into(), self.pkcs8_der().as_slice())
            .expect("secretbox encryption does not fail");
        let envelope = Envelope {
            kdf: Kdf {
                name: "scrypt".into(),
                params: ScryptParams {
                    n: SCRYPT_N.into(),
                    r: 8,
                    p: 1,
                },
                salt: STANDARD.encode(salt),
            },
            cipher: Cipher {
                name: "nacl/secretbox".into(),
                nonce: STANDARD.encode(nonce),
            },
            ciphertext: STANDARD.encode(ciphertext),
        };
        let json = serde_json::to_vec(&envelope).expect("envelopes serialize");
        Zeroizing::new(
            pem_rfc7468::encode_string(
                SIGSTORE_PRIVATE_KEY_LABEL,
                pem_rfc7468::LineEnding::LF,
                &json,
            )
            .expect("PEM encoding does not fail"),
        )
    }

    /// Reads a private key: cosign's encrypted PEM (either label) with `password`,
    /// or an unencrypted PKCS#8 `PRIVATE KEY` PEM.
    pub fn from_pem(pem: &[u8], password: &[u8]) -> Result<SigningKey, KeyError> {
        const EXPECTED: &str = "private key";
        let (label, body) = decode_pem(pem, EXPECTED)?;
        match label.as_str() {
            "PRIVATE KEY" => SigningKey::from_pkcs8_der(&body),
            SIGSTORE_PRIVATE_KEY_LABEL | COSIGN_PRIVATE_KEY_LABEL => {
                let envelope: Envelope = serde_json::from_slice(&body)
                    .map_err(|e| KeyError::Envelope(format!("not cosign's JSON envelope: {e}")))?;
                if envelope.kdf.name != "scrypt" {
                    return Err(KeyError::Envelope(format!(
                        "key derivation {:?} is not scrypt",
                        envelope.kdf.name
                    )));
                }
                if envelope.cipher.name != "nacl/secretbox" {
                    return Err(KeyError::Envelope(format!(
                        "cipher {:?} is not nacl/secretbox",
                        envelope.cipher.name
                    )));
                }
                let ScryptParams { n, r, p } = envelope.kdf.params;
                let n32 = u32::try_from(n)
                    .ok()
                    .filter(|n| ACCEPTED_SCRYPT_N.contains(n));
                let Some(n32) = n32.filter(|_| r == 8 && p == 1) else {
                    return Err(KeyError::ScryptParameters { n, r, p });
                };
                let field = |name: &str, value: &str| {
                    STANDARD
                        .decode(value)
                        .map_err(|e| KeyError::Envelope(format!("{name}: {e}")))
                };
                let salt = field("kdf.salt", &envelope.kdf.salt)?;
                let nonce: [u8; 24] = field("cipher.nonce", &envelope.cipher.nonce)?
                    .try_into()
                    .map_err(|_| KeyError::Envelope("cipher.nonce is not 24 bytes".into()))?;
                let ciphertext = field("ciphertext", &envelope.ciphertext)?;
                let key = secretbox_key(password, &salt, n32)?;
                let cipher = crypto_secretbox::XSalsa20Poly1305::new(key.as_ref().into());
                let der = Zeroizing::new(
                    cipher
                        .decrypt(&nonce.into(), ciphertext.as_slice())
                        .map_err(|_| KeyError::Decrypt)?,
                );
                SigningKey::from_pkcs8_der(&der)
            }
            other => Err(KeyError::Pem {
                expected: EXPECTED,
                message: format!(
                    "the PEM is a {other:?}, not an {SIGSTORE_PRIVATE_KEY_LABEL:?} or \"PRIVATE KEY\""
                ),
            }),
        }
    }
}

fn algorithm_name(oid: &str) -> String {
    match oid {
        "1.2.840.113549.1.1.1" => "RSA".to_string(),
        "1.2.840.10045.2.1" => "ECDSA on a curve other than P-256".to_string(),
        "1.3.101.113" => "Ed448".to_string(),
        other => format!("algorithm {other}"),
    }
}

impl VerifyingKey {
    /// Reads a PKIX `PUBLIC KEY` PEM.
    pub fn from_pem(pem: &[u8]) -> Result<VerifyingKey, KeyError> {
        let (label, der) = decode_pem(pem, "public key")?;
        if label != "PUBLIC KEY" {
            return Err(KeyError::Pem {
                expected: "public key",
                message: format!("the PEM is a {label:?}, not a \"PUBLIC KEY\""),
            });
        }
        VerifyingKey::from_der(&der)
    }

    /// Reads a PKIX (SubjectPublicKeyInfo) DER public key.
    pub fn from_der(der: &[u8]) -> Result<VerifyingKey, KeyError> {
        if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_der(der) {
            return Ok(VerifyingKey::EcdsaP256(k));
        }
        if let Ok(k) = ed25519_dalek::VerifyingKey::from_public_key_der(der) {
            return Ok(VerifyingKey::Ed25519(k));
        }
        let algorithm = spki::SubjectPublicKeyInfoRef::try_from(der)
            .map(|info| algorithm_name(&info.algorithm.oid.to_string()))
            .unwrap_or_else(|e| format!("not a PKIX public key ({e})"));
        Err(KeyError::Unsupported(algorithm))
    }

    /// Its algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self {
            VerifyingKey::EcdsaP256(_) => KeyAlgorithm::EcdsaP256,
            VerifyingKey::Ed25519(_) => KeyAlgorithm::Ed25519,
        }
    }

    /// PKIX DER.
    pub fn to_der(&self) -> Vec<u8> {
        match self {
            VerifyingKey::EcdsaP256(k) => k.to_public_key_der(),
            VerifyingKey::Ed25519(k) => k.to_public_key_der(),
        }
        .expect("public keys encode")
        .into_vec()
    }

    /// PKIX `PUBLIC KEY` PEM, as cosign writes `cosign.pub`.
    pub fn to_pem(&self) -> String {
        pem_rfc7468::encode_string("PUBLIC KEY", pem_rfc7468::LineEnding::LF, &self.to_der())
            .expect("PEM encoding does not fail")
    }

    /// The key's hint in sigstore bundles: base64 of the SHA-256 of its PKIX DER.
    pub fn hint(&self) -> String {
        use sha2::Digest as _;
        STANDARD.encode(sha2::Sha256::digest(self.to_der()))
    }

    /// Checks `signature` over `message` (ECDSA: ASN.1 DER; Ed25519: 64 bytes).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), KeyError> {
        use p256::ecdsa::signature::Verifier as _;
        match self {
            VerifyingKey::EcdsaP256(k) => {
                let signature = p256::ecdsa::Signature::from_der(signature)
                    .map_err(|e| KeyError::MalformedSignature(format!("not ECDSA DER: {e}")))?;
                k.verify(message, &signature)
                    .map_err(|_| KeyError::BadSignature)
            }
            VerifyingKey::Ed25519(k) => {
                let signature = ed25519_dalek::Signature::from_slice(signature).map_err(|_| {
                    KeyError::MalformedSignature(format!(
                        "an Ed25519 signature is 64 bytes, not {}",
                        signature.len()
                    ))
                })?;
                k.verify_strict(message, &signature)
                    .map_err(|_| KeyError::BadSignature)
            }
        }
    }
}

#[cfg(test)]
mod tests;
