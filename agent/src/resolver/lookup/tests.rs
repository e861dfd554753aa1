//! Lookups that decide before (or without) asking a registry.

use imprint_oci::policy::{Finding, Policy, Verdict};
use imprint_oci::{KeyAlgorithm, SigningKey};

use imprint_oci::policy::RepositoryGlobs;

use super::*;
use crate::delivered::{Delivery, SharedDeliveries};

const DIGEST: &str = "sha256:5b0fd3b4c0c1b0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5";

fn digest() -> Digest {
    DIGEST.parse().unwrap()
}

/// A digest named for the test: the sha256 of its name.
fn d(name: &str) -> Digest {
    Digest::sha256_of(name.as_bytes())
}

fn config(dir: &std::path::Path, delivered: SharedDeliveries) -> ResolverConfig {
    let key = SigningKey::generate(KeyAlgorithm::EcdsaP256).verifying_key();
    ResolverConfig {
        policy: Policy::for_key(key, true),
        profile_repos: Vec::new(),
        pinned: Vec::new(),
        registry: Default::default(),
        state_dir: dir.to_path_buf(),
        refresh: std::time::Duration::from_secs(30),
        delivered,
        max_offline_age: None,
    }
}

fn deliver(deliveries: &SharedDeliveries, source: &str, content: &str) {
    lock(deliveries).set(
        source,
        Delivery {
            image_digest: digest(),
            content_digest: d(content),
            artifact: None,
        },
    );
}

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn disagreeing_deliveries_pin_nothing_before_any_registry_is_asked() {
    let dir = tempfile::tempdir().unwrap();
    let delivered = SharedDeliveries::default();
    deliver(&delivered, "Profile/web-v1", "one");
    deliver(&delivered, "dir/web.yaml", "two");
    let config = config(dir.path(), delivered);
    let cache = BlobCache::open(dir.path().join("cache")).unwrap();
    // The image reference names a registry that does not exist: were it asked,
    // the outcome would be `unreachable`.
    let outcome = run(resolve(
        &config,
        &cache,
        &digest(),
        &[digest()],
        &["127.0.0.1:1/shop/web".to_string()],
        None,
        &mut Learned::new(&Default::default()),
    ));
    match outcome {
        Resolved::Not(Status::DeliveryConflict(why)) => {
            assert!(
                why.contains(d("one").as_str()) && why.contains(d("two").as_str()),
                "{why}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Delivered for the index that stands for the digest counts the same.
    let delivered = SharedDeliveries::default();
    deliver(&delivered, "a", "one");
    lock(&delivered).set(
        "b",
        Delivery {
            image_digest: d("index"),
            content_digest: d("two"),
            artifact: None,
        },
    );
    let config = ResolverConfig {
        delivered,
        ..config
    };
    let names = [digest(), d("index")];
    let outcome = run(resolve(
        &config,
        &cache,
        &digest(),
        &names,
        &[],
        None,
        &mut Learned::new(&Default::default()),
    ));
    assert!(matches!(
        outcome,
        Resolved::Not(Status::DeliveryConflict(_))
    ));
}

#[test]
fn with_nowhere_to_look_there_is_no_profile() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), SharedDeliveries::default());
    let cache = BlobCache::open(dir.path().join("cache")).unwrap();
    let outcome = run(resolve(
        &config,
        &cache,
        &digest(),
        &[digest()],
        &[],
        None,
        &mut Learned::new(&Default::default()),
    ));
    assert!(
        matches!(outcome, Resolved::Not(Status::NoProfile)),
        "{outcome:?}"
    );
}

#[test]
fn only_the_delivered_content_is_admitted() {
    let profile = imprint_schema::parse_profile(
        format!(
            "apiVersion: imprint.dev/v1\nkind: Profile\nimage: {{digest: \"{DIGEST}\"}}\nlearning: {{completeness: complete}}\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let content = imprint_schema::digest(&profile);
    assert_eq!(
        delivered_content(&[], &profile, "r@sha256:a").unwrap(),
        content
    );
    assert_eq!(
        delivered_content(std::slice::from_ref(&content), &profile, "r@sha256:a").unwrap(),
        content
    );
    match delivered_content(&[d("other")], &profile, "r@sha256:a") {
        Err(Status::Unsigned(why)) => {
            assert!(
                why.contains("r@sha256:a verifies") && why.contains(d("other").as_str()),
                "{why}"
            );
        }
        other => panic!("{other:?}"),
    }
}

fn verdict(signed: bool) -> Verdict {
    Verdict {
        digest: d("a"),
        verified: false,
        signatures: vec![Finding {
            source: "tag sha256-a.sig layer 0".into(),
            verified: signed,
            authority: None,
            error: None,
            version: None,
            evidence: None,
        }],
        attestations: Vec::new(),
        failures: vec!["no attestation found".into()],
        version: 0,
        unexamined: Vec::new(),
    }
}

#[test]
fn a_refused_artifact_is_unsigned_or_not_attested() {
    assert_eq!(
        status_of_verdict(&verdict(true), true, "p: "),
        Status::AttestationFailed("p: no attestation found".into())
    );
    assert_eq!(
        status_of_verdict(&verdict(false), true, ""),
        Status::Unsigned("no attestation found".into())
    );
    // A policy that asks for no signature refuses for the attestation only.
    assert_eq!(
        status_of_verdict(&verdict(false), false, ""),
        Status::AttestationFailed("no attestation found".into())
    );
}

#[test]
fn artifacts_are_ordered_by_time_not_text_and_ties_by_digest() {
    // Digests whose text orders as their number.
    let n = |i: u32| format!("sha256:{i:0>64}");
    let found = |i: u32, created: Option<&str>| Discovered {
        digest: n(i).parse().unwrap(),
        size: 1,
        created: created.map(Into::into),
    };
    let mut artifacts = vec![
        found(1, Some("2026-11-26T12:00:00Z")),
        found(2, Some("2026-11-26T12:00:00.5Z")),
        found(3, None),
        found(4, Some("2026-11-26T13:30:00+02:00")),
        found(5, Some("not a time")),
        found(6, Some("2026-11-26T12:00:00.5Z")),
    ];
    newest_first(&mut artifacts);
    let order: Vec<String> = artifacts.iter().map(|a| a.digest.to_string()).collect();
    // 13:30+02:00 is 11:30Z, the oldest stamp; the two at .5 s tie on digest.
    assert_eq!(order, [n(6), n(2), n(1), n(4), n(5), n(3)]);
}

fn with_globs(config: ResolverConfig, globs: &[&str]) -> ResolverConfig {
    let globs: Vec<String> = globs.iter().map(|g| g.to_string()).collect();
    let mut policy = config.policy.clone();
    policy.profile_repositories = Some(RepositoryGlobs::new(&globs).unwrap());
    ResolverConfig { policy, ..config }
}

#[test]
fn a_pin_outside_the_policys_repositories_is_refused_without_asking() {
    let dir = tempfile::tempdir().unwrap();
    let delivered = SharedDeliveries::default();
    // Git pins an artifact in a registry that does not exist: were it asked, the
    // outcome would be `unreachable`.
    let pin = format!("oci://127.0.0.1:1/tenant/web@{}", d("artifact"));
    lock(&delivered).set(
        "Profile/web",
        Delivery {
            image_digest: digest(),
            content_digest: d("content"),
            artifact: Some(pin.clone()),
        },
    );
    let config = with_globs(config(dir.path(), delivered), &["127.0.0.1:1/shop/**"]);
    let cache = BlobCache::open(dir.path().join("cache")).unwrap();
    let outcome = run(resolve(
        &config,
        &cache,
        &digest(),
        &[digest()],
        &[],
        None,
        &mut Learned::new(&Default::default()),
    ));
    match outcome {
        Resolved::Not(Status::RepositoryNotAllowed(why)) => assert!(
            why.contains(&pin)
                && why.contains("127.0.0.1:1/tenant/web is not among")
                && why.contains("127.0.0.1:1/shop/**"),
            "{why}"
        ),
        other => panic!("{other:?}"),
    }
    // Inside the globs it is asked (and the registry is not there).
    let config = with_globs(config, &["127.0.0.1:1/**"]);
    assert!(pin_refusal(&config, &pin).is_none());
    let outcome = run(resolve(
        &config,
        &cache,
        &digest(),
        &[digest()],
        &[],
        None,
        &mut Learned::new(&Default::default()),
    ));
    assert!(
        matches!(outcome, Resolved::Not(Status::Unreachable(ref why)) if why.contains(&pin)),
        "{outcome:?}"
    );
}

#[test]
fn an_unusable_credentials_file_is_named_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), SharedDeliveries::default());
    let auth = dir.path().join("auth.json");
    std::fs::write(
        &auth,
        "{\"auths\": {\"127.0.0.1:1\": {\"auth\": \"not base64!\"}}}",
    )
    .unwrap();
    let reference = parse_reference("127.0.0.1:1/shop/web:latest").unwrap();
    let Err(err) = client_with(&config, &reference, std::slice::from_ref(&auth)) else {
        panic!("an unusable credentials file was skipped");
    };
    let text = err.to_string();
    assert!(
        matches!(err, ClientError::Credentials { .. })
            && text.contains("credentials for 127.0.0.1:1")
            && text.contains(&auth.display().to_string()),
        "{text}"
    );
    // No entry for the host: anonymous, no error.
    std::fs::write(&auth, "{\"auths\": {}}").unwrap();
    assert!(client_with(&config, &reference, &[auth]).is_ok());
}
