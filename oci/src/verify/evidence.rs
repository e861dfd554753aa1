//! What a verdict's accepted signatures and attestations were, kept so the same
//! checks can run again without the registry: at an agent's restart, and while
//! the registry cannot be reached, a cached artifact is judged by the policy in
//! force now, so a key taken out of the policy or a stricter condition takes
//! effect at once.

use imprint_schema::Digest;

use super::{Accepted, Rejection, check_bundle, failed, passed};
use crate::evidence::{Evidence, Piece};
use crate::policy::{self, Finding, Policy, Verdict};
use crate::signing::Envelope;

impl Evidence {
    /// Judges the kept material again under `policy`, offline: the verdict a
    /// verification that read exactly this material would give now.
    pub fn check(&self, policy: &Policy, digest: &Digest) -> Verdict {
        let mut signatures: Vec<Finding> = Vec::new();
        let mut attestations: Vec<Finding> = Vec::new();
        for (i, piece) in self.pieces.iter().enumerate() {
            let source = format!("kept {} {i}", piece.kind());
            let result = piece.check(policy, digest);
            let finding = match result {
                Ok(accepted) => passed(source, accepted),
                Err(e) => failed(source, e),
            };
            if piece.is_signature() {
                signatures.push(finding);
            } else {
                attestations.push(finding);
            }
        }
        Verdict::decide(policy, digest, signatures, attestations)
    }
}

impl Piece {
    fn kind(&self) -> &'static str {
        match self {
            Piece::Signature { .. } => "signature",
            Piece::Envelope { .. } => "attestation",
            Piece::Bundle { .. } => "bundle",
        }
    }

    fn is_signature(&self) -> bool {
        match self {
            Piece::Signature { .. } => true,
            Piece::Envelope { .. } => false,
            Piece::Bundle { signature, .. } => *signature,
        }
    }

    fn check(&self, policy: &Policy, digest: &Digest) -> Result<Accepted, Rejection> {
        match self {
            Piece::Signature { payload, signature } => {
                let authority = policy::check_signature(policy, digest, payload, signature)?;
                Ok(Accepted::signed_by(authority))
            }
            Piece::Envelope { envelope } => {
                let parsed = Envelope::parse(envelope)?;
                let (statement, authority) = policy::check_envelope(policy, digest, &parsed)?;
                policy.check_statement(&statement)?;
                Ok(Accepted {
                    authority,
                    version: policy.attested_version(&statement),
                    piece: None,
                })
            }
            Piece::Bundle { bundle, signature } => check_bundle(policy, digest, bundle, *signature),
        }
    }
}

impl Verdict {
    /// The signed material of what verified, to judge again offline.
    pub fn evidence(&self) -> Evidence {
        let pieces = (self.signatures.iter())
            .chain(&self.attestations)
            .filter(|f| f.verified)
            .filter_map(|f| f.evidence.clone())
            .collect();
        Evidence { pieces }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyAlgorithm, SigningKey};
    use crate::signing::{self, PROFILE_PREDICATE_TYPE, Statement};

    fn signed(key: &SigningKey, digest: &Digest) -> Evidence {
        let payload = signing::simple_signing_payload("r/app", digest);
        let signature = key.sign(&payload);
        let statement = Statement::new(
            "r/app",
            digest,
            PROFILE_PREDICATE_TYPE,
            serde_json::json!({
                "imageDigest": Digest::sha256_of(b"image"),
                "profileLayerDigest": Digest::sha256_of(b"layer"),
                "learning": {"completeness": "complete", "observedContainers": 1},
                "builder": {"id": "https://ci.example/1"},
                "version": 4,
            }),
        );
        let envelope = Envelope::sign(
            signing::IN_TOTO_PAYLOAD_TYPE,
            &serde_json::to_vec(&statement).unwrap(),
            key,
        );
        Evidence {
            pieces: vec![
                Piece::Signature { payload, signature },
                Piece::Envelope {
                    envelope: serde_json::to_vec(&envelope).unwrap(),
                },
            ],
        }
    }

    #[test]
    fn kept_material_verifies_again_offline_and_a_removed_key_takes_effect() {
        let key = SigningKey::generate(KeyAlgorithm::EcdsaP256);
        let digest = Digest::sha256_of(b"artifact");
        let evidence = signed(&key, &digest);
        let verdict = evidence.check(&Policy::for_key(key.verifying_key(), true), &digest);
        assert!(verdict.verified, "{:?}", verdict.failures);
        assert_eq!(verdict.version, 4);
        // The same material under a policy without that key: refused.
        let other = SigningKey::generate(KeyAlgorithm::EcdsaP256).verifying_key();
        let verdict = evidence.check(&Policy::for_key(other, true), &digest);
        assert!(!verdict.verified);
        // About another artifact: refused.
        let verdict = evidence.check(
            &Policy::for_key(key.verifying_key(), true),
            &Digest::sha256_of(b"other"),
        );
        assert!(!verdict.verified);
        // A stricter condition takes effect.
        let mut stricter = Policy::for_key(key.verifying_key(), true);
        stricter.min_learning_duration = Some(std::time::Duration::from_secs(3600));
        assert!(!evidence.check(&stricter, &digest).verified);
    }

    #[test]
    fn evidence_round_trips_as_json_and_tampering_is_refused() {
        let key = SigningKey::generate(KeyAlgorithm::EcdsaP256);
        let digest = Digest::sha256_of(b"artifact");
        let evidence = signed(&key, &digest);
        let json = serde_json::to_vec(&evidence).unwrap();
        let back: Evidence = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, evidence);
        let mut tampered = back;
        if let Piece::Signature { payload, .. } = &mut tampered.pieces[0] {
            payload.push(b' ');
        }
        let policy = Policy::for_key(key.verifying_key(), true);
        assert!(!tampered.check(&policy, &digest).verified);
        assert!(
            serde_json::from_str::<Evidence>(
                r#"{"pieces":[{"kind":"signature","payload":"%%","signature":""}]}"#
            )
            .is_err()
        );
    }
}
