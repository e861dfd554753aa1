//! A policy's fingerprint: the digest of everything in it that decides what
//! verifies. An agent remembers, per image digest, the newest artifact it has
//! verified and never goes back to an older one on its own; a changed policy
//! (a key removed after a compromise, a stricter condition) is the explicit act
//! that lets that memory start again. So any change that could change a verdict
//! must change the fingerprint, and nothing else should.

use imprint_schema::Digest;

use super::{Authority, Policy};

impl Policy {
    /// The digest of the policy's decisive content: its authorities (names, key
    /// material, keyless identities and trusted roots), what it requires, its
    /// conditions, where profiles may come from and who may revoke.
    pub fn fingerprint(&self) -> Digest {
        let authorities: Vec<serde_json::Value> = (self.authorities.iter())
            .map(|authority| match authority {
                Authority::Key { name, key } => serde_json::json!({
                    "name": name, "key": key.to_pem(),
                }),
                Authority::Keyless {
                    name,
                    identity,
                    trusted_root,
                } => serde_json::json!({
                    "name": name,
                    "issuer": identity.issuer,
                    "subject": identity.subject_reg_exp,
                    "trustedRoot": Digest::sha256_of(trusted_root).to_string(),
                }),
            })
            .collect();
        let decisive = serde_json::json!({
            "authorities": authorities,
            "requireSignature": self.require_signature,
            "requireAttestation": self.require_attestation,
            "predicateType": self.predicate_type,
            "completeness": self.completeness,
            "minLearningSeconds": self.min_learning_duration.map(|d| d.as_secs()),
            "builderId": self.builder_id.as_ref().map(|r| r.as_str()),
            "profileRepositories": self.profile_repositories.as_ref().map(|g| g.globs()),
            "revocationAuthorities": self.revocation_authorities,
        });
        // serde_json's maps are sorted by key: the same policy, the same bytes.
        Digest::sha256_of(&serde_json::to_vec(&decisive).expect("JSON values serialize"))
    }
}

#[cfg(test)]
mod tests {
    use crate::keys::{KeyAlgorithm, SigningKey};
    use crate::policy::Policy;

    #[test]
    fn what_decides_a_verdict_changes_the_fingerprint_and_nothing_else_does() {
        let key = SigningKey::generate(KeyAlgorithm::EcdsaP256).verifying_key();
        let policy = Policy::for_key(key.clone(), true);
        assert_eq!(
            policy.fingerprint(),
            Policy::for_key(key.clone(), true).fingerprint()
        );
        let other_key = SigningKey::generate(KeyAlgorithm::EcdsaP256).verifying_key();
        assert_ne!(
            policy.fingerprint(),
            Policy::for_key(other_key, true).fingerprint()
        );
        assert_ne!(
            policy.fingerprint(),
            Policy::for_key(key.clone(), false).fingerprint()
        );
        let mut stricter = Policy::for_key(key, true);
        stricter.completeness = Some("complete".into());
        assert_ne!(policy.fingerprint(), stricter.fingerprint());
    }
}
