//! Who may revoke a profile artifact: the policy's `revocations.authorities`,
//! by default every authority of the policy.
//!
//! ```yaml
//! revocations:
//!   authorities: [security]   # names from `authorities`; absent: all of them
//! ```

use serde::{Deserialize, Serialize};

use super::{Authority, Policy};

/// `revocations` in a policy file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RevocationAuthorities {
    /// Names of the policy's `authorities` whose revocations count.
    pub authorities: Vec<String>,
}

impl RevocationAuthorities {
    /// The names, each checked against the names of `authorities` (an authority
    /// without a name is `#<index>`); an unknown one is named with its position.
    pub(super) fn check(&self, authorities: &[Authority]) -> Result<Vec<String>, String> {
        if self.authorities.is_empty() {
            return Err(
                "revocations.authorities: name at least one authority, or leave revocations out (all authorities may revoke)".into(),
            );
        }
        let known: Vec<&str> = authorities.iter().map(Authority::name).collect();
        for (i, name) in self.authorities.iter().enumerate() {
            if !known.contains(&name.as_str()) {
                return Err(format!(
                    "revocations.authorities[{i}]: {name:?} is not the name of an authority ({})",
                    known.join(", ")
                ));
            }
        }
        Ok(self.authorities.clone())
    }
}

impl Authority {
    /// The authority's name, as the policy gives it (or `#<index>`).
    pub fn name(&self) -> &str {
        match self {
            Authority::Key { name, .. } | Authority::Keyless { name, .. } => name,
        }
    }
}

impl Policy {
    /// The authorities whose revocations count: those `revocations.authorities`
    /// names, or all of them.
    pub fn revokers(&self) -> impl Iterator<Item = &Authority> {
        self.authorities.iter().filter(|a| {
            self.revocation_authorities
                .as_ref()
                .is_none_or(|names| names.iter().any(|n| n == a.name()))
        })
    }

    /// This policy with only its revokers as authorities: what a revocation's
    /// signature is checked with. No profile condition applies to a revocation.
    pub fn revoking_policy(&self) -> Policy {
        Policy {
            authorities: self.revokers().cloned().collect(),
            ..self.clone()
        }
    }
}
