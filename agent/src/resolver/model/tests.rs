//! The resolver's decisions, without a registry.

use super::*;

const DIGEST: &str = "sha256:5b0fd3b4c0c1b0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5";

fn profile() -> Box<Profile> {
    let yaml = format!(
        "apiVersion: imprint.dev/v1\nkind: Profile\nimage: {{digest: \"{DIGEST}\"}}\nlearning: {{completeness: complete}}\nexecs: [{{path: /bin/app}}]\n"
    );
    Box::new(imprint_schema::parse_profile(yaml.as_bytes()).unwrap())
}

/// A digest named for the test: the sha256 of its name.
fn d(name: &str) -> Digest {
    Digest::sha256_of(name.as_bytes())
}

fn found(artifact: &str) -> Resolved {
    Resolved::Enforce {
        repository: "registry.example/shop/web".into(),
        artifact: d(artifact),
        profile: profile(),
        content: d(&format!("content-of-{artifact}")),
        evidence: Default::default(),
        rank: Rank {
            version: 0,
            created: None,
            artifact: d(artifact),
        },
        pinned: false,
    }
}

fn unreachable() -> Resolved {
    Resolved::Not(Status::Unreachable("connection refused".into()))
}

#[test]
fn a_verified_artifact_is_enforced_once_and_a_newer_one_replaces_it() {
    let mut w = Watched::default();
    let change = w.settle(found("a1"), |_| true);
    assert!(matches!(change, Change::Enforce { ref artifact, .. } if *artifact == d("a1")));
    assert_eq!(
        w.enforced,
        Some(format!("registry.example/shop/web@{}", d("a1")))
    );
    assert_eq!(w.content, Some(d("content-of-a1")));
    // The same artifact again: nothing to tell the detector.
    assert!(matches!(w.settle(found("a1"), |_| true), Change::Unchanged));
    // Another verified artifact: enforced in its place.
    assert!(matches!(
        w.settle(found("a2"), |_| true),
        Change::Enforce { ref artifact, .. } if *artifact == d("a2")
    ));
}

#[test]
fn an_unreachable_registry_keeps_what_is_enforced_unless_git_pins_other_content() {
    let mut w = Watched::default();
    w.settle(found("a1"), |_| true);
    let change = w.settle(unreachable(), |content| *content == d("content-of-a1"));
    assert!(matches!(change, Change::Status(Status::Unreachable(_))));
    assert!(w.enforced.is_some(), "kept in force");
    // Still unreachable: said once.
    assert!(matches!(
        w.settle(unreachable(), |_| true),
        Change::Unchanged
    ));
    // Git now pins other content: the enforced profile goes even while unreachable.
    assert!(matches!(
        w.settle(unreachable(), |_| false),
        Change::Revoke(Status::Unreachable(_))
    ));
    assert_eq!((w.enforced, w.content), (None, None));
}

#[test]
fn a_profile_that_stops_verifying_is_revoked_and_a_status_is_said_once() {
    let mut w = Watched::default();
    w.settle(found("a1"), |_| true);
    let unsigned = || Resolved::Not(Status::Unsigned("no signature found".into()));
    assert!(matches!(
        w.settle(unsigned(), |_| true),
        Change::Revoke(Status::Unsigned(_))
    ));
    assert!(w.enforced.is_none());
    // Nothing enforced any more: the same status is not told again…
    assert!(matches!(w.settle(unsigned(), |_| true), Change::Unchanged));
    // …another one is, without a revocation.
    assert!(matches!(
        w.settle(Resolved::Not(Status::NoProfile), |_| true),
        Change::Status(Status::NoProfile)
    ));
    // An unreachable registry with nothing enforced is only a status.
    assert!(matches!(
        w.settle(unreachable(), |_| true),
        Change::Status(Status::Unreachable(_))
    ));
}

#[test]
fn an_index_shares_its_manifests_names_and_the_memory_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("verified.json");
    assert_eq!(Remembered::load(&path), Remembered::default());
    let mut remembered = Remembered::default();
    remembered.platforms.insert(d("index"), d("amd64"));
    remembered
        .verified
        .insert(d("amd64"), ("registry.example/shop/web".into(), d("a1")));
    assert_eq!(remembered.names(&d("amd64")), [d("amd64"), d("index")]);
    assert_eq!(remembered.names(&d("other")), [d("other")]);
    remembered.save(&path);
    assert_eq!(Remembered::load(&path), remembered);
    // It says which artifacts a node trusts: the agent's alone.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // A damaged file is as good as none: the registry is asked again.
    std::fs::write(&path, b"{not json").unwrap();
    assert_eq!(Remembered::load(&path), Remembered::default());
}

#[test]
fn this_nodes_platform_is_named_as_indexes_name_it() {
    let platforms = node_platforms();
    #[cfg(target_arch = "x86_64")]
    assert_eq!(platforms, ["linux/amd64"]);
    #[cfg(target_arch = "aarch64")]
    assert_eq!(platforms, ["linux/arm64/v8", "linux/arm64"]);
    assert!(platforms.iter().all(|p| p.starts_with("linux/")));
}

#[test]
fn every_status_has_its_metric_label() {
    let labels: Vec<&str> = [
        Status::Verified(String::new()),
        Status::NoProfile,
        Status::Unsigned(String::new()),
        Status::AttestationFailed(String::new()),
        Status::SubjectMismatch(String::new()),
        Status::Unreachable(String::new()),
        Status::DeliveryConflict(String::new()),
        Status::RepositoryNotAllowed(String::new()),
    ]
    .iter()
    .map(Status::label)
    .collect();
    assert_eq!(
        labels,
        [
            "verified",
            "no-profile",
            "unsigned",
            "attestation-failed",
            "subject-mismatch",
            "unreachable",
            "delivery-conflict",
            "repository-not-allowed"
        ]
    );
}

#[test]
fn every_repository_a_digest_was_seen_from_is_asked_after_a_restart_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("verified.json");
    let mut remembered = Remembered::default();
    let digest = d("image");
    assert_eq!(
        remembered.see(&digest, "registry.example/shop/web"),
        Sighting::Added
    );
    // A tenant runs the same digest from its own repository: a place is added,
    // none is replaced.
    remembered.see(&digest, "registry.example/tenant/web");
    remembered.save(&path);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let restored = Remembered::load(&path);
    assert_eq!(restored, remembered);
    let configured = ["registry.example/profiles/web".to_string()];
    assert_eq!(
        restored.places(&digest, &configured, None),
        [
            "registry.example/profiles/web",
            "registry.example/shop/web",
            "registry.example/tenant/web"
        ]
    );
    // Where an index standing for the digest was seen counts for its manifest.
    let mut remembered = restored;
    remembered.platforms.insert(d("index"), digest.clone());
    remembered.see(&d("index"), "registry.example/multi/web");
    assert!(
        remembered
            .places(&digest, &[], None)
            .contains(&"registry.example/multi/web".to_string())
    );
    // The policy's globs leave out everything else, configured repositories too.
    let globs =
        imprint_oci::policy::RepositoryGlobs::new(&["registry.example/shop/**".into()]).unwrap();
    assert_eq!(
        remembered.places(&digest, &configured, Some(&globs)),
        ["registry.example/shop/web"]
    );
}

#[test]
fn references_are_named_by_registry_and_repository() {
    assert_eq!(
        repository_name("registry.example/shop/web:2.4@sha256:5b0fd3b4c0c1b0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5")
            .as_deref(),
        Some("registry.example/shop/web")
    );
    assert_eq!(
        repository_name("127.0.0.1:5000/shop/web").as_deref(),
        Some("127.0.0.1:5000/shop/web")
    );
    assert_eq!(repository_name("not a reference"), None);
}

#[test]
fn a_policy_change_lets_the_memory_of_the_newest_start_again_and_nothing_else_does() {
    let mut remembered = Remembered::default();
    // The first start records the policy; there was nothing to forget.
    assert!(!remembered.under_policy(&d("policy-1")));
    remembered.marks.insert(
        d("image"),
        Mark {
            repository: "registry.example/shop/web".into(),
            rank: Rank {
                version: 3,
                created: None,
                artifact: d("v3"),
            },
        },
    );
    // The same policy: the marks stay.
    assert!(!remembered.under_policy(&d("policy-1")));
    assert_eq!(remembered.marks.len(), 1);
    // Another policy (a key removed, a condition added): they start again.
    assert!(remembered.under_policy(&d("policy-2")));
    assert!(remembered.marks.is_empty());
    assert_eq!(remembered.policy, Some(d("policy-2")));
}
