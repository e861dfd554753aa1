//! The registry client cannot be stalled or flooded: against a real
//! `docker-registry` behind a fault-injecting proxy, a registry that drips its
//! bytes hits the operation deadline (and delays no other registry's calls), a
//! listing of 100,000 referrers is examined only up to the bound, and an
//! over-size listing is refused.

use std::sync::Arc;
use std::time::{Duration, Instant};

use imprint_oci::layout::{self, Descriptor, INDEX_MEDIA_TYPE, Index, MANIFEST_MEDIA_TYPE};
use imprint_oci::{
    DEFAULT_MAX_LISTING_BYTES, MAX_REFERRERS_EXAMINED, PROFILE_MEDIA_TYPE, Registry, RegistryError,
    RegistryOptions, parse_reference,
};
use imprint_schema::{Completeness, Digest, Profile};
use imprint_test_support::{Fault, FaultProxy, TestRegistry, push_test_image};

/// A client for the registries at `addrs` (plain HTTP, loopback) with fast retries.
fn client(addrs: &[&str], options: RegistryOptions) -> Registry {
    let probes: Vec<_> = addrs
        .iter()
        .map(|a| parse_reference(&format!("{a}/probe:x")).unwrap())
        .collect();
    let options = RegistryOptions {
        backoff: Duration::from_millis(20),
        ..options
    };
    Registry::new(&options, &probes.iter().collect::<Vec<_>>()).unwrap()
}

fn with_deadline(deadline: Duration) -> RegistryOptions {
    RegistryOptions {
        operation_deadline: deadline,
        ..RegistryOptions::default()
    }
}

/// Pushes a test image and a profile artifact for it to `repo` at `addr`; returns
/// the image digest and the artifact's referrers-list descriptor.
async fn pushed_artifact(addr: &str, repo: &str) -> (Digest, Descriptor) {
    let direct = client(&[addr], RegistryOptions::default());
    let image_digest = push_test_image(addr, repo);
    let image = parse_reference(&format!("{addr}/{repo}@{image_digest}")).unwrap();
    let subject = direct.resolve(&image).await.unwrap();
    let mut profile = Profile::new(image_digest.clone());
    profile.learning.completeness = Completeness::Complete;
    profile.syscalls = vec!["read".into()];
    let created = "2026-11-26T12:00:00Z".parse().unwrap();
    let artifact = layout::build(&profile, &subject, created).unwrap();
    let repository = parse_reference(&format!("{addr}/{repo}")).unwrap();
    direct
        .push_artifact(&repository, &artifact, None)
        .await
        .unwrap();
    (image_digest, layout::referrer_descriptor(&artifact))
}

/// Awaits `work` and says how long it took.
async fn timed<T>(work: impl std::future::Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let out = work.await;
    (out, started.elapsed())
}

fn assert_deadline(result: Result<impl std::fmt::Debug, RegistryError>, wanted: &str) {
    match result {
        Err(RegistryError::Deadline { operation, .. }) => assert_eq!(operation, wanted),
        other => panic!("{wanted}: expected the deadline error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_dripping_registry_hits_the_deadline_and_delays_only_its_own_calls() {
    let (Some(slow), Some(healthy)) = (TestRegistry::start(), TestRegistry::start()) else {
        return;
    };
    let (slow_image, slow_artifact) = pushed_artifact(&slow.addr, "drip/app").await;
    let (healthy_image, healthy_artifact) = pushed_artifact(&healthy.addr, "fine/app").await;
    // Every manifest and referrers answer comes one byte every 100 ms: always
    // within the read timeout (30 s), never finished.
    let proxy = FaultProxy::start(&slow.addr, |line, _| {
        if line.contains("/manifests/") || line.contains("/referrers/") {
            Fault::Drip {
                every: Duration::from_millis(100),
            }
        } else {
            Fault::Forward
        }
    });
    let deadline = Duration::from_secs(3);
    // One client for both registries, as the agent has.
    let registry = client(&[&proxy.addr, &healthy.addr], with_deadline(deadline));
    let slow_repo = parse_reference(&format!("{}/drip/app", proxy.addr)).unwrap();
    let slow_pull =
        parse_reference(&format!("{}/drip/app@{}", proxy.addr, slow_artifact.digest)).unwrap();
    let healthy_repo = parse_reference(&format!("{}/fine/app", healthy.addr)).unwrap();
    let ((slow_found, slow_found_after), (slow_pulled, slow_pulled_after), (found, found_after)) = tokio::join!(
        timed(registry.discover(&slow_repo, &slow_image)),
        timed(registry.pull_artifact(&slow_pull)),
        timed(async {
            let found = registry.discover(&healthy_repo, &healthy_image).await?;
            let first = found.artifacts.first().map(|a| a.digest.clone());
            let by_digest =
                parse_reference(&format!("{}/fine/app@{}", healthy.addr, first.unwrap()));
            registry.pull_artifact(&by_digest.unwrap()).await
        }),
    );
    assert_deadline(slow_found, "discover");
    assert_deadline(slow_pulled, "pull");
    for after in [slow_found_after, slow_pulled_after] {
        assert!(
            after >= deadline,
            "ended by the deadline, not before: {after:?}"
        );
        assert!(after < deadline * 5, "the deadline ends it: {after:?}");
    }
    // The healthy registry answered while the slow one was still dripping.
    assert_eq!(found.unwrap().digest, healthy_artifact.digest);
    assert!(
        found_after < deadline,
        "the healthy registry waited: {found_after:?}"
    );
    assert!(
        proxy.heads().iter().any(|h| h.contains("/manifests/")),
        "the slow registry was asked"
    );
}

/// An index of `count` plausible referrers of `subject` that the registry does
/// not hold: half claim to be sigstore bundles, half to be profiles of `subject`
/// older than a genuine one; then `genuine`, last.
fn flooded_index(subject: &Digest, count: u32, genuine: &Descriptor) -> Vec<u8> {
    let mut index = Index::new();
    index.manifests = (0..count)
        .map(|n| {
            let mut entry = Descriptor {
                media_type: MANIFEST_MEDIA_TYPE.to_string(),
                digest: Digest::sha256_of(format!("flood {n}").as_bytes()),
                size: 600 + u64::from(n % 400),
                artifact_type: Some("application/vnd.dev.sigstore.bundle.v0.3+json".into()),
                annotations: Default::default(),
                platform: None,
            };
            if n % 2 == 1 {
                entry.artifact_type = Some(PROFILE_MEDIA_TYPE.to_string());
                entry.annotations = [
                    (
                        layout::ANNOTATION_CREATED,
                        "2025-01-01T00:00:00Z".to_string(),
                    ),
                    (layout::ANNOTATION_IMAGE_DIGEST, subject.to_string()),
                ]
                .map(|(k, v)| (k.to_string(), v))
                .into();
            }
            entry
        })
        .collect();
    index.manifests.push(genuine.clone());
    serde_json::to_vec(&index).unwrap()
}

#[tokio::test]
async fn a_listing_of_100000_referrers_is_examined_only_up_to_the_bound() {
    let Some(reg) = TestRegistry::start() else {
        return;
    };
    const FLOOD: u32 = 100_000;
    let (image, genuine) = pushed_artifact(&reg.addr, "flood/app").await;
    let body: Arc<[u8]> = flooded_index(&image, FLOOD, &genuine).into();
    assert!(
        (body.len() as u64) < DEFAULT_MAX_LISTING_BYTES,
        "{}",
        body.len()
    );
    let proxy = FaultProxy::start(&reg.addr, move |line, _| {
        if line.contains("/referrers/") {
            Fault::Respond {
                status: 200,
                headers: vec![("Content-Type".into(), INDEX_MEDIA_TYPE.into())],
                body: body.clone(),
            }
        } else {
            Fault::Forward
        }
    });
    let deadline = Duration::from_secs(60);
    let registry = client(&[&proxy.addr], with_deadline(deadline));
    let repo = parse_reference(&format!("{}/flood/app", proxy.addr)).unwrap();
    // Ok means within the deadline.
    let found = registry.discover(&repo, &image).await.unwrap();
    let digests: Vec<&Digest> = found.artifacts.iter().map(|a| &a.digest).collect();
    assert_eq!(digests, [&genuine.digest], "the genuine artifact is found");
    assert_eq!(
        found.unexamined,
        FLOOD as usize + 1 - MAX_REFERRERS_EXAMINED
    );
    assert_eq!(found.rejected.len(), MAX_REFERRERS_EXAMINED - 1);
    let fetched = proxy
        .heads()
        .iter()
        .filter(|h| h.starts_with("GET ") && h.contains("/manifests/sha256:"))
        .count();
    assert_eq!(fetched, MAX_REFERRERS_EXAMINED, "manifests fetched");
}

/// A proxy answering each GET whose request line contains `path_part` with
/// `fault`, forwarding the rest.
fn answering(upstream: &str, path_part: &'static str, fault: Fault) -> FaultProxy {
    FaultProxy::start(upstream, move |line, _| {
        if line.starts_with("GET ") && line.contains(path_part) {
            fault.clone()
        } else {
            Fault::Forward
        }
    })
}

fn assert_too_large(result: Result<impl std::fmt::Debug, RegistryError>, what: &str, at: &str) {
    match result {
        Err(RegistryError::TooLarge {
            what: said,
            reference,
            limit,
        }) => {
            assert!(said.contains(what), "{said}");
            assert!(reference.contains(at), "{reference}");
            assert_eq!(limit, 64 << 10);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[tokio::test]
async fn an_over_size_referrers_answer_is_refused_as_too_large() {
    let Some(reg) = TestRegistry::start() else {
        return;
    };
    let (image, genuine) = pushed_artifact(&reg.addr, "big/app").await;
    let options = RegistryOptions {
        max_listing_bytes: 64 << 10,
        ..RegistryOptions::default()
    };
    // 1,000 entries are about 200 KiB, with the length declared.
    let declared = Fault::Respond {
        status: 200,
        headers: vec![("Content-Type".into(), INDEX_MEDIA_TYPE.into())],
        body: flooded_index(&image, 1_000, &genuine).into(),
    };
    // No length declared, no end.
    let endless = Fault::Endless(INDEX_MEDIA_TYPE);
    for fault in [declared, endless] {
        let proxy = answering(&reg.addr, "/referrers/", fault);
        let registry = client(&[&proxy.addr], options.clone());
        let repo = parse_reference(&format!("{}/big/app", proxy.addr)).unwrap();
        let result = registry.discover(&repo, &image).await;
        assert_too_large(result, "referrers API", image.as_str());
    }
}

#[tokio::test]
async fn an_over_size_fallback_index_is_refused_as_too_large() {
    let Some(reg) = TestRegistry::start() else {
        return;
    };
    let (image, genuine) = pushed_artifact(&reg.addr, "bigtag/app").await;
    // The registry has no referrers API (a 404), so the tag is read: too large.
    let tag = format!("/manifests/{}", layout::fallback_tag(&image));
    let body: Arc<[u8]> = flooded_index(&image, 1_000, &genuine).into();
    let proxy = FaultProxy::start(&reg.addr, move |line, _| {
        if line.starts_with("GET ") && line.contains(&tag) {
            Fault::Respond {
                status: 200,
                headers: vec![("Content-Type".into(), INDEX_MEDIA_TYPE.into())],
                body: body.clone(),
            }
        } else {
            Fault::Forward
        }
    });
    let options = RegistryOptions {
        max_listing_bytes: 64 << 10,
        ..RegistryOptions::default()
    };
    let registry = client(&[&proxy.addr], options);
    let repo = parse_reference(&format!("{}/bigtag/app", proxy.addr)).unwrap();
    let result = registry.discover(&repo, &image).await;
    assert_too_large(result, "fallback tag", &layout::fallback_tag(&image));
}

#[tokio::test]
async fn retries_end_inside_the_deadline() {
    let Some(reg) = TestRegistry::start() else {
        return;
    };
    let (_, genuine) = pushed_artifact(&reg.addr, "busy/app").await;
    let proxy = FaultProxy::start(&reg.addr, |_, _| Fault::Status(503));
    let deadline = Duration::from_secs(2);
    // Ten retries, the first after a second: most would end past the deadline.
    let options = RegistryOptions {
        retries: 10,
        ..with_deadline(deadline)
    };
    let probe = parse_reference(&format!("{}/probe:x", proxy.addr)).unwrap();
    let registry = Registry::new(
        &RegistryOptions {
            backoff: Duration::from_secs(1),
            ..options
        },
        &[&probe],
    )
    .unwrap();
    let r = parse_reference(&format!("{}/busy/app@{}", proxy.addr, genuine.digest)).unwrap();
    let (result, after) = timed(registry.pull_artifact(&r)).await;
    // The registry's own answer, not a deadline: no retry was begun that the
    // deadline would have cut.
    match result {
        Err(e @ RegistryError::Request { .. }) => assert!(e.to_string().contains("503"), "{e}"),
        other => panic!("expected the 503, got {other:?}"),
    }
    assert!(after < deadline * 3, "{after:?}");
    // At 0 s and after the 1 s backoff; the next would end at 3 s.
    assert_eq!(proxy.heads().len(), 2, "{:?}", proxy.heads());
}
