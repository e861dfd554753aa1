//! The verification policy: who may sign profiles, and what their attestations
//! must say. Pure: [`Registry::verify`](crate::Registry::verify) gathers what the
//! registry holds and [`Verdict::decide`] decides.
//!
//! The file follows the shape Kyverno and sigstore policy-controller users know:
//! `authorities` (keys, or keyless identities), and `attestations` with a
//! predicate type and conditions.
//!
//! ```yaml
//! apiVersion: imprint.dev/v1
//! kind: VerificationPolicy
//! authorities:
//!   - name: ci
//!     key: {path: cosign.pub}          # or {pem: "-----BEGIN PUBLIC KEY-----…"}
//!   - name: github
//!     keyless:
//!       issuer: https://token.actions.githubusercontent.com
//!       # anchored (^…$), one workflow at one ref: an open end trusts every
//!       # workflow and branch of the organisation
//!       subjectRegExp: ^https://github\.com/acme/shop/\.github/workflows/learn\.yaml@refs/heads/main$
//!       trustedRoot: trusted_root.json
//! signatures: {required: true}
//! attestations:
//!   required: true
//!   predicateType: https://imprint.dev/attestation/profile/v1
//!   conditions:
//!     completeness: complete
//!     minLearningDuration: 24h
//!     builderIdRegExp: ^https://github\.com/acme/
//! profiles:
//!   repositories: [registry.example/shop/**]   # absent: any repository
//! ```

use std::path::Path;
use std::time::Duration;

use imprint_schema::{Digest, parse_duration};
use serde::{Deserialize, Serialize};

use crate::keys::{KeyError, VerifyingKey};
use crate::signing::{PROFILE_PREDICATE_TYPE, SignatureError, Statement};

/// `apiVersion` of a policy.
pub const POLICY_API_VERSION: &str = "imprint.dev/v1";
/// `kind` of a policy.
pub const POLICY_KIND: &str = "VerificationPolicy";

/// Why a policy file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file is not a valid policy.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong, with where.
        message: String,
    },
    /// A key the policy names could not be read.
    #[error("{path}: authority {name:?}: {source}")]
    Key {
        /// The policy file.
        path: String,
        /// The authority.
        name: String,
        /// Why.
        source: KeyError,
    },
    /// A file the policy names could not be read.
    #[error("{path}: cannot read {file}: {source}")]
    Io {
        /// The policy file.
        path: String,
        /// The file it names.
        file: String,
        /// Why.
        source: std::io::Error,
    },
}

/// The policy file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyFile {
    /// [`POLICY_API_VERSION`].
    pub api_version: String,
    /// [`POLICY_KIND`].
    pub kind: String,
    /// Who may sign.
    pub authorities: Vec<AuthorityFile>,
    /// Requirements on signatures.
    #[serde(default)]
    pub signatures: SignatureRequirement,
    /// Requirements on attestations.
    #[serde(default)]
    pub attestations: AttestationRequirement,
    /// Where profiles may come from (absent: any repository).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profiles: Option<ProfileSources>,
    /// Who may revoke artifacts (absent: every authority).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocations: Option<RevocationAuthorities>,
}

/// One trusted authority, as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthorityFile {
    /// A name for messages.
    #[serde(default)]
    pub name: Option<String>,
    /// A public key.
    #[serde(default)]
    pub key: Option<KeySource>,
    /// A keyless identity.
    #[serde(default)]
    pub keyless: Option<KeylessIdentity>,
}

/// Where a public key is.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeySource {
    /// A PEM file, relative to the policy file.
    #[serde(default)]
    pub path: Option<String>,
    /// The PEM itself.
    #[serde(default)]
    pub pem: Option<String>,
}

/// A keyless identity: certificates from a Fulcio in `trustedRoot` for this
/// issuer and a subject matching the expression.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeylessIdentity {
    /// The OIDC issuer.
    pub issuer: String,
    /// A regular expression the certificate's subject (SAN) must match.
    pub subject_reg_exp: String,
    /// A `trusted_root.json`, relative to the policy file.
    pub trusted_root: String,
}

/// Requirements on signatures.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignatureRequirement {
    /// A verified signature must exist.
    #[serde(default = "yes")]
    pub required: bool,
}

impl Default for SignatureRequirement {
    fn default() -> Self {
        SignatureRequirement { required: true }
    }
}

fn yes() -> bool {
    true
}

fn profile_predicate_type() -> String {
    PROFILE_PREDICATE_TYPE.to_string()
}

/// Requirements on attestations.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttestationRequirement {
    /// A verified attestation of `predicate_type` that meets the conditions must
    /// exist.
    #[serde(default = "yes")]
    pub required: bool,
    /// The predicate type.
    #[serde(default = "profile_predicate_type")]
    pub predicate_type: String,
    /// Conditions on the predicate.
    #[serde(default)]
    pub conditions: Conditions,
}

impl Default for AttestationRequirement {
    fn default() -> Self {
        AttestationRequirement {
            required: true,
            predicate_type: profile_predicate_type(),
            conditions: Conditions::default(),
        }
    }
}

/// Conditions on imprint's learning predicate.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Conditions {
    /// `complete` to require a complete learning.
    #[serde(default)]
    pub completeness: Option<String>,
    /// The shortest acceptable learning window (`24h`, `90m`, `1d`).
    #[serde(default)]
    pub min_learning_duration: Option<String>,
    /// A regular expression the builder id must match.
    #[serde(default)]
    pub builder_id_reg_exp: Option<String>,
}

/// A trusted authority, loaded.
#[derive(Debug, Clone)]
pub enum Authority {
    /// A public key.
    Key {
        /// Its name.
        name: String,
        /// The key.
        key: VerifyingKey,
    },
    /// A keyless identity with its trusted root's JSON.
    Keyless {
        /// Its name.
        name: String,
        /// The identity.
        identity: KeylessIdentity,
        /// `trusted_root.json`'s bytes.
        trusted_root: Vec<u8>,
    },
}

/// A policy, loaded and checked.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Trusted authorities.
    pub authorities: Vec<Authority>,
    /// Whether a signature is required.
    pub require_signature: bool,
    /// Whether an attestation is required.
    pub require_attestation: bool,
    /// The required predicate type.
    pub predicate_type: String,
    /// Required completeness.
    pub completeness: Option<String>,
    /// Shortest learning window.
    pub min_learning_duration: Option<Duration>,
    /// Builder id expression.
    pub builder_id: Option<regex::Regex>,
    /// The repositories profiles may come from (`None`: any).
    pub profile_repositories: Option<RepositoryGlobs>,
    /// The names of the authorities that may revoke (`None`: all); see
    /// [`Policy::revokers`].
    pub revocation_authorities: Option<Vec<String>>,
}

impl Policy {
    /// A policy trusting one key and requiring only a signature: `verify --key`.
    pub fn for_key(key: VerifyingKey, require_attestation: bool) -> Policy {
        Policy {
            authorities: vec![Authority::Key {
                name: "--key".into(),
                key,
            }],
            require_signature: true,
            require_attestation,
            predicate_type: PROFILE_PREDICATE_TYPE.to_string(),
            completeness: None,
            min_learning_duration: None,
            builder_id: None,
            profile_repositories: None,
            revocation_authorities: None,
        }
    }

    /// Loads a policy file; paths in it are relative to its directory.
    pub fn load(path: &Path, bytes: &[u8]) -> Result<Policy, PolicyError> {
        let shown = path.display().to_string();
        let invalid = |message: String| PolicyError::Invalid {
            path: shown.clone(),
            message,
        };
        let text = std::str::from_utf8(bytes).map_err(|_| invalid("not UTF-8".into()))?;
        let file: PolicyFile = serde_saphyr::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if file.api_version != POLICY_API_VERSION || file.kind != POLICY_KIND {
            return Err(invalid(format!(
                "apiVersion/kind are {}/{}, not {POLICY_API_VERSION}/{POLICY_KIND}",
                file.api_version, file.kind
            )));
        }
        if file.authorities.is_empty() {
            return Err(invalid("authorities: at least one is required".into()));
        }
        if !file.signatures.required && !file.attestations.required {
            return Err(invalid(
                "signatures.required and attestations.required are both false: the policy would trust anything".into(),
            ));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let read = |file: &str| {
            let p = base.join(file);
            std::fs::read(&p).map_err(|source| PolicyError::Io {
                path: shown.clone(),
                file: p.display().to_string(),
                source,
            })
        };
        let mut authorities = Vec::new();
        for (i, a) in file.authorities.iter().enumerate() {
            let name = a.name.clone().unwrap_or_else(|| format!("#{i}"));
            match (&a.key, &a.keyless) {
                (Some(source), None) => {
                    let pem = match (&source.path, &source.pem) {
                        (Some(p), None) => read(p)?,
                        (None, Some(pem)) => pem.as_bytes().to_vec(),
                        _ => {
                            return Err(invalid(format!(
                                "authorities[{i}].key: give exactly one of path and pem"
                            )));
                        }
                    };
                    let key = VerifyingKey::from_pem(&pem).map_err(|source| PolicyError::Key {
                        path: shown.clone(),
                        name: name.clone(),
                        source,
                    })?;
                    authorities.push(Authority::Key { name, key });
                }
                (None, Some(identity)) => {
                    check_subject_reg_exp(&identity.subject_reg_exp).map_err(|e| {
                        invalid(format!(
                            "authorities[{i}] ({name}).keyless.subjectRegExp: {e}"
                        ))
                    })?;
                    let trusted_root = read(&identity.trusted_root)?;
                    authorities.push(Authority::Keyless {
                        name,
                        identity: identity.clone(),
                        trusted_root,
                    });
                }
                _ => {
                    return Err(invalid(format!(
                        "authorities[{i}]: give exactly one of key and keyless"
                    )));
                }
            }
        }
        let conditions = &file.attestations.conditions;
        if let Some(c) = &conditions.completeness
            && c != "complete"
            && c != "partial"
        {
            return Err(invalid(format!(
                "attestations.conditions.completeness: {c:?} is not complete or partial"
            )));
        }
        let min_learning_duration = conditions
            .min_learning_duration
            .as_deref()
            .map(parse_duration)
            .transpose()
            .map_err(|e| invalid(format!("attestations.conditions.minLearningDuration: {e}")))?;
        let builder_id = conditions
            .builder_id_reg_exp
            .as_deref()
            .map(regex::Regex::new)
            .transpose()
            .map_err(|e| invalid(format!("attestations.conditions.builderIdRegExp: {e}")))?;
        let profile_repositories = file
            .profiles
            .as_ref()
            .map(|p| RepositoryGlobs::new(&p.repositories))
            .transpose()
            .map_err(|e| invalid(e.to_string()))?;
        let revocation_authorities = (file.revocations.as_ref())
            .map(|r| r.check(&authorities))
            .transpose()
            .map_err(invalid)?;
        Ok(Policy {
            authorities,
            require_signature: file.signatures.required,
            require_attestation: file.attestations.required,
            predicate_type: file.attestations.predicate_type.clone(),
            completeness: conditions.completeness.clone(),
            min_learning_duration,
            builder_id,
            profile_repositories,
            revocation_authorities,
        })
    }

    /// The public keys the policy trusts, with their authority names.
    pub fn keys(&self) -> (Vec<VerifyingKey>, Vec<String>) {
        self.authorities
            .iter()
            .filter_map(|a| match a {
                Authority::Key { name, key } => Some((key.clone(), name.clone())),
                Authority::Keyless { .. } => None,
            })
            .unzip()
    }
}

/// One signature or attestation found, and what became of it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Where it was found (`tag sha256-….sig layer 2`, `referrer sha256:…`).
    pub source: String,
    /// Whether it verified (and, for attestations, met the conditions).
    pub verified: bool,
    /// The authority that verified it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    /// Why it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The version a verified learning attestation gives the artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// The signed material, when it verified: kept to judge again offline
    /// ([`Verdict::evidence`]).
    #[serde(skip)]
    pub evidence: Option<crate::evidence::Piece>,
}

/// The outcome of verifying an artifact against a policy.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    /// The artifact digest verified.
    pub digest: Digest,
    /// Whether the policy holds.
    pub verified: bool,
    /// Signatures examined.
    pub signatures: Vec<Finding>,
    /// Attestations examined.
    pub attestations: Vec<Finding>,
    /// The failing conditions, each named.
    pub failures: Vec<String>,
    /// The artifact's version: the highest one a verified learning attestation
    /// gives it (0 when none does). It orders an image digest's profiles before
    /// their creation time.
    pub version: u64,
    /// Cosign tags holding more layers than are examined (`tag …: N more`): a
    /// flood can hide a signature, so the caller says so rather than skip it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unexamined: Vec<String>,
}

impl Verdict {
    /// Decides, from the findings, whether `policy` holds.
    pub fn decide(
        policy: &Policy,
        digest: &Digest,
        signatures: Vec<Finding>,
        attestations: Vec<Finding>,
    ) -> Verdict {
        let mut failures = Vec::new();
        let explain = |what: &str, findings: &[Finding]| {
            if findings.is_empty() {
                format!("no {what} found")
            } else {
                let reasons: Vec<String> = findings
                    .iter()
                    .map(|f| {
                        format!(
                            "{}: {}",
                            f.source,
                            f.error.as_deref().unwrap_or("not verified")
                        )
                    })
                    .collect();
                format!(
                    "no {what} verifies under the policy ({})",
                    reasons.join("; ")
                )
            }
        };
        if policy.require_signature && !signatures.iter().any(|f| f.verified) {
            failures.push(explain("signature", &signatures));
        }
        if policy.require_attestation && !attestations.iter().any(|f| f.verified) {
            failures.push(explain(
                &format!("attestation of type {}", policy.predicate_type),
                &attestations,
            ));
        }
        let version = (attestations.iter())
            .filter(|f| f.verified)
            .filter_map(|f| f.version)
            .max()
            .unwrap_or(0);
        Verdict {
            digest: digest.clone(),
            verified: failures.is_empty(),
            signatures,
            attestations,
            failures,
            version,
            unexamined: Vec::new(),
        }
    }
}

/// Verifies a signature found: a simple-signing payload and its signature.
pub fn check_signature(
    policy: &Policy,
    digest: &Digest,
    payload: &[u8],
    signature: &[u8],
) -> Result<String, SignatureError> {
    crate::signing::check_simple_signing_payload(payload, digest)?;
    let (keys, names) = policy.keys();
    if keys.is_empty() {
        return Err(SignatureError::NoKey(
            "the policy trusts no key, and this signature has no certificate".into(),
        ));
    }
    let mut last = KeyError::BadSignature;
    for (key, name) in keys.iter().zip(names) {
        match key.verify(payload, signature) {
            Ok(()) => return Ok(name),
            Err(e) => last = e,
        }
    }
    Err(SignatureError::NoKey(last.to_string()))
}

/// Checks that a keyless subject expression compiles and is anchored at both
/// ends. The regex crate finds a match anywhere, so `^https://github\.com/acme/`
/// also accepts every workflow and ref of the organisation and
/// `https://github\.com/acme/x` accepts `https://evil.example/?https://github.com/acme/x`.
///
/// The rule is regex-syntax's, not a look at the first and last characters:
/// every match must begin at the start of the text and end at its end (its
/// `look_set_prefix`/`look_set_suffix` hold `Start` and `End`). So `^a|b$`
/// (two halves, each anchored at one end), `(?m)^a$` (line anchors) and `^a$?`
/// are refused; `^(a|b)$` and `^a$|^b$` are anchored.
fn check_subject_reg_exp(pattern: &str) -> Result<(), String> {
    regex::Regex::new(pattern).map_err(|e| e.to_string())?;
    let hir = regex_syntax::Parser::new()
        .parse(pattern)
        .map_err(|e| e.to_string())?;
    let properties = hir.properties();
    let start = properties
        .look_set_prefix()
        .contains(regex_syntax::hir::Look::Start);
    let end = properties
        .look_set_suffix()
        .contains(regex_syntax::hir::Look::End);
    if start && end {
        return Ok(());
    }
    Err(format!(
        "{pattern:?} is not anchored at {}: write it as ^(...)$, naming one workflow and ref, \
         so that it matches the whole certificate subject and nothing that only contains it",
        match (start, end) {
            (false, false) => "either end",
            (false, true) => "the start",
            _ => "the end",
        }
    ))
}

/// Verifies a DSSE envelope with the policy's keys and parses the statement,
/// which must be about `digest`. Returns the statement and the authority.
pub fn check_envelope(
    policy: &Policy,
    digest: &Digest,
    envelope: &crate::signing::Envelope,
) -> Result<(Statement, String), SignatureError> {
    if envelope.payload_type != crate::signing::IN_TOTO_PAYLOAD_TYPE {
        return Err(SignatureError::Malformed(format!(
            "DSSE payloadType is {:?}, not {:?}",
            envelope.payload_type,
            crate::signing::IN_TOTO_PAYLOAD_TYPE
        )));
    }
    let (keys, names) = policy.keys();
    if keys.is_empty() {
        return Err(SignatureError::NoKey(
            "the policy trusts no key, and this envelope has no certificate".into(),
        ));
    }
    let (payload, index) = envelope.verify(&keys)?;
    let statement = Statement::parse_for(&payload, digest)?;
    Ok((statement, names[index].clone()))
}

mod conditions;
mod fingerprint;
mod repositories;
mod revokers;

pub use conditions::ConditionFailed;
pub use repositories::{ProfileSources, RepositoryGlobError, RepositoryGlobs};
pub use revokers::RevocationAuthorities;

#[cfg(test)]
mod tests;
