use std::path::Path;

use super::read::{Stored, read_unverified, verify_stored};
use super::*;
use crate::keys::{KeyAlgorithm, SigningKey};
use crate::policy::{Policy, PolicyError};
use crate::signing::{Envelope, IN_TOTO_PAYLOAD_TYPE, PROFILE_PREDICATE_TYPE};

fn image() -> Digest {
    Digest::sha256_of(b"image")
}

fn revocation_of(artifact: &[u8]) -> RevocationPredicate {
    RevocationPredicate {
        revoked_artifact: Digest::sha256_of(artifact),
        image_digest: image(),
        reason: Some("key rotated".into()),
    }
}

/// `statement` signed by `key`, as `.att` stores it.
fn signed(statement: &Statement, key: &SigningKey) -> Stored {
    let payload = serde_json::to_vec(statement).unwrap();
    Stored::Envelope(Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &payload, key))
}

/// A policy with two key authorities, `ci` and `security`, and `body` appended.
fn two_key_policy(
    dir: &Path,
    ci: &SigningKey,
    security: &SigningKey,
    body: &str,
) -> Result<Policy, PolicyError> {
    let text = format!(
        "apiVersion: imprint.dev/v1\nkind: VerificationPolicy\nauthorities:\n  - name: ci\n    key: {{pem: {:?}}}\n  - name: security\n    key: {{pem: {:?}}}\n{body}",
        ci.verifying_key().to_pem(),
        security.verifying_key().to_pem(),
    );
    let path = dir.join("policy.yaml");
    std::fs::write(&path, &text).unwrap();
    Policy::load(&path, text.as_bytes())
}

#[test]
fn the_predicate_is_camel_case_and_refuses_unknown_fields() {
    let predicate = revocation_of(b"artifact");
    let value = serde_json::to_value(&predicate).unwrap();
    assert_eq!(
        value["revokedArtifact"],
        predicate.revoked_artifact.as_str()
    );
    assert_eq!(value["imageDigest"], image().as_str());
    assert_eq!(value["reason"], "key rotated");
    assert_eq!(
        serde_json::from_value::<RevocationPredicate>(value.clone()).unwrap(),
        predicate
    );
    let mut extra = value.clone();
    extra["revokedBy"] = "someone".into();
    let err = serde_json::from_value::<RevocationPredicate>(extra).unwrap_err();
    assert!(err.to_string().contains("revokedBy"), "{err}");
    let mut bad = value;
    bad["revokedArtifact"] = "sha256:nothex".into();
    assert!(serde_json::from_value::<RevocationPredicate>(bad).is_err());
}

#[test]
fn a_revocation_statement_is_about_the_image_and_checks_out() {
    let predicate = revocation_of(b"artifact");
    let statement = revocation_statement("r.example/shop/web", &predicate);
    let payload = serde_json::to_vec(&statement).unwrap();
    // Found from the image: its subject is the image, not the artifact.
    let parsed = Statement::parse_for(&payload, &image()).unwrap();
    assert!(Statement::parse_for(&payload, &predicate.revoked_artifact).is_err());
    assert_eq!(
        check_revocation_statement(&parsed, &image()).unwrap(),
        predicate
    );
}

#[test]
fn a_statement_of_another_type_or_image_is_no_revocation() {
    let predicate = revocation_of(b"artifact");
    let mut statement = revocation_statement("r.example/shop/web", &predicate);
    statement.predicate_type = PROFILE_PREDICATE_TYPE.into();
    let err = check_revocation_statement(&statement, &image()).unwrap_err();
    assert!(matches!(err, RevocationError::NotARevocation(_)), "{err}");

    // Subject the image, predicate naming another image: made for someone else's
    // artifact, refused rather than applied here.
    let other = RevocationPredicate {
        image_digest: Digest::sha256_of(b"other image"),
        ..predicate.clone()
    };
    let mut statement = revocation_statement("r.example/shop/web", &predicate);
    statement.predicate = serde_json::to_value(&other).unwrap();
    let err = check_revocation_statement(&statement, &image()).unwrap_err();
    assert!(matches!(err, RevocationError::OtherImage { .. }), "{err}");
    assert!(
        err.to_string().contains(other.image_digest.as_str()),
        "{err}"
    );

    statement.predicate = serde_json::json!({"revokedArtifact": predicate.revoked_artifact});
    let err = check_revocation_statement(&statement, &image()).unwrap_err();
    assert!(matches!(err, RevocationError::Predicate(_)), "{err}");
}

#[test]
fn only_the_revokers_keys_verify_a_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let ci = SigningKey::generate(KeyAlgorithm::EcdsaP256);
    let security = SigningKey::generate(KeyAlgorithm::Ed25519);
    let stranger = SigningKey::generate(KeyAlgorithm::EcdsaP256);
    let statement = revocation_statement("r.example/shop/web", &revocation_of(b"a"));

    // By default every authority revokes.
    let all = two_key_policy(dir.path(), &ci, &security, "").unwrap();
    let names: Vec<&str> = all.revokers().map(|a| a.name()).collect();
    assert_eq!(names, ["ci", "security"]);
    let revokers = all.revoking_policy();
    let (predicate, by) = verify_stored(&revokers, &image(), signed(&statement, &ci)).unwrap();
    assert_eq!(
        (predicate.revoked_artifact, by.as_str()),
        (Digest::sha256_of(b"a"), "ci")
    );
    let err = verify_stored(&revokers, &image(), signed(&statement, &stranger)).unwrap_err();
    assert!(err.to_string().contains("no trusted key"), "{err}");

    // Naming one: the other's signature, trusted for profiles, does not revoke.
    let only = two_key_policy(
        dir.path(),
        &ci,
        &security,
        "revocations:\n  authorities: [security]\n",
    )
    .unwrap();
    let revokers = only.revoking_policy();
    assert!(verify_stored(&revokers, &image(), signed(&statement, &ci)).is_err());
    let (_, by) = verify_stored(&revokers, &image(), signed(&statement, &security)).unwrap();
    assert_eq!(by, "security");
    // The profile authorities are untouched.
    assert_eq!(only.authorities.len(), 2);

    // Read for another image, the same signed statement is not about it.
    let err = verify_stored(
        &revokers,
        &Digest::sha256_of(b"other"),
        signed(&statement, &security),
    )
    .unwrap_err();
    assert!(err.to_string().contains("not for"), "{err}");
}

#[test]
fn unverified_claims_still_check_the_statement() {
    let stranger = SigningKey::generate(KeyAlgorithm::EcdsaP256);
    let statement = revocation_statement("r.example/shop/web", &revocation_of(b"a"));
    let claim = read_unverified(&image(), signed(&statement, &stranger)).unwrap();
    assert_eq!(claim.revoked_artifact, Digest::sha256_of(b"a"));
    let err = read_unverified(&Digest::sha256_of(b"x"), signed(&statement, &stranger));
    assert!(err.is_err());
}

#[test]
fn revocation_authorities_must_name_authorities() {
    let dir = tempfile::tempdir().unwrap();
    let ci = SigningKey::generate(KeyAlgorithm::EcdsaP256);
    let security = SigningKey::generate(KeyAlgorithm::EcdsaP256);
    let err = two_key_policy(
        dir.path(),
        &ci,
        &security,
        "revocations:\n  authorities: [security, ops]\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("revocations.authorities[1]"), "{err}");
    assert!(err.contains("\"ops\""), "{err}");
    assert!(err.contains("ci, security"), "{err}");
    let err = two_key_policy(
        dir.path(),
        &ci,
        &security,
        "revocations:\n  authorities: []\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("at least one"), "{err}");
    let err = two_key_policy(dir.path(), &ci, &security, "revocations:\n  keys: [ci]\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("keys"), "{err}");
}
