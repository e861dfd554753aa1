//! Push and pull against a real registry: Debian's `docker-registry` (CNCF
//! distribution), started on a free loopback port for each test and stopped after.
//! `.ci/setup` installs it; where it is absent the tests say so and skip.

use imprint_oci::layout::{self, MANIFEST_MEDIA_TYPE};
use imprint_oci::{Registry, RegistryError, RegistryOptions, parse_reference};
use imprint_schema::{Completeness, Digest, Exec, Profile};

use imprint_test_support::{self as support, TestRegistry, push_test_image};

fn registry_client(addr: &str) -> Registry {
    let reference = parse_reference(&format!("{addr}/probe:x")).unwrap();
    Registry::new(&RegistryOptions::default(), &[&reference]).unwrap()
}

fn profile_for(digest: &Digest, extra_exec: Option<&str>) -> Profile {
    let mut p = Profile::new(digest.clone());
    p.learning.completeness = Completeness::Complete;
    p.syscalls = vec!["read".into(), "write".into()];
    p.execs.push(Exec {
        path: "/bin/busybox".into(),
        args: None,
    });
    if let Some(e) = extra_exec {
        p.execs.push(Exec {
            path: e.into(),
            args: None,
        });
    }
    p
}

fn created() -> jiff::Timestamp {
    "2026-11-26T12:00:00Z".parse().unwrap()
}

#[tokio::test]
async fn push_then_pull_gives_back_the_same_bytes() {
    let Some(reg) = TestRegistry::start() else {
        return;
    };
    let client = registry_client(&reg.addr);
    let image_digest = push_test_image(&reg.addr, "shop/web");
    let image = parse_reference(&format!("{}/shop/web@{image_digest}", reg.addr)).unwrap();

    // The subject comes from the registry, not from the caller.
    let subject = client.resolve(&image).await.unwrap();
    assert_eq!(subject.digest, image_digest);
    assert_eq!(subject.media_type, MANIFEST_MEDIA_TYPE);

    let profile = profile_for(&image_digest, None);
    let artifact = layout::build(&profile, &subject, created()).unwrap();
    let repo = parse_reference(&format!("{}/shop/web", reg.addr)).unwrap();
    let digest = client
        .push_artifact(&repo, &artifact, Some("profile-1.0"))
        .await
        .unwrap();
    assert_eq!(digest, artifact.digest);

    let by_digest = parse_reference(&format!("{}/shop/web@{digest}", reg.addr)).unwrap();
    let pulled = client.pull_artifact(&by_digest).await.unwrap();
    assert_eq!(pulled.manifest_bytes, artifact.manifest_bytes);
    assert_eq!(pulled.profile_bytes, artifact.layers[0].data);
    assert_eq!(pulled.profile, profile.clone().normalized());

    // By tag too, and re-pushing the same profile is idempotent.
    let by_tag = parse_reference(&format!("{}/shop/web:profile-1.0", reg.addr)).unwrap();
    assert_eq!(client.pull_artifact(&by_tag).await.unwrap().digest, digest);
    let again = layout::build(&profile, &subject, created()).unwrap();
    assert_eq!(
        client.push_artifact(&repo, &again, None).await.unwrap(),
        digest
    );
}

#[tokio::test]
async fn two_profiles_for_one_image_are_two_artifacts() {
    let Some(reg) = TestRegistry::start() else {
        return;
    };
    let client = registry_client(&reg.addr);
    let image_digest = push_test_image(&reg.addr, "app");
    let image = parse_reference(&format!("{}/app@{image_digest}", reg.addr)).unwrap();
    let subject = client.resolve(&image).await.unwrap();
    let repo = parse_reference(&format!("{}/app", reg.addr)).unwrap();
    let mut digests = Vec::new();
    for extra in [None, Some("/bin/gzip")] {
        let profile = profile_for(&image_digest, extra);
        let artifact = layout::build(&profile, &subject, created()).unwrap();
        digests.push(client.push_artifact(&repo, &artifact, None).await.unwrap());
    }
    assert_ne!(digests[0], digests[1]);
    for (digest, execs) in digests.iter().zip([1, 2]) {
        let r = parse_reference(&format!("{}/app@{digest}", reg.addr)).unwrap();
        assert_eq!(
            client.pull_artifact(&r).await.unwrap().profile.execs.len(),
            execs
        );
    }
}

#[tokio::test]
async fn pulling_what_is_not_a_profile_artifact_fails_clearly() {
    let Some(reg) = TestRegistry::start() else {
        return;
    };
    let client = registry_client(&reg.addr);
    let image_digest = push_test_image(&reg.addr, "plain");
    // The image itself is not a profile artifact.
    let image = parse_reference(&format!("{}/plain@{image_digest}", reg.addr)).unwrap();
    let err = client.pull_artifact(&image).await.unwrap_err();
    assert!(matches!(err, RegistryError::Layout { .. }), "{err}");
    assert!(err.to_string().contains("artifactType"), "{err}");

    // A digest the registry does not have.
    let missing =
        parse_reference(&format!("{}/plain@sha256:{}", reg.addr, "0".repeat(64))).unwrap();
    let err = client.pull_artifact(&missing).await.unwrap_err();
    assert!(matches!(err, RegistryError::Request { .. }), "{err}");
}

#[tokio::test]
async fn an_unreachable_registry_is_an_error_not_a_hang() {
    // A port nothing listens on.
    let addr = support::free_loopback_addr();
    let client = registry_client(&addr);
    let r = parse_reference(&format!("{addr}/x@sha256:{}", "1".repeat(64))).unwrap();
    let err = client.resolve(&r).await.unwrap_err();
    assert!(err.to_string().starts_with("resolve 127.0.0.1:"), "{err}");
}

#[tokio::test]
async fn discover_finds_every_profile_and_rejects_bogus_entries() {
    let Some(reg) = TestRegistry::start() else {
        return;
    };
    let client = registry_client(&reg.addr);
    let image_digest = push_test_image(&reg.addr, "shop/api");
    let image = parse_reference(&format!("{}/shop/api@{image_digest}", reg.addr)).unwrap();
    let subject = client.resolve(&image).await.unwrap();
    let repo = parse_reference(&format!("{}/shop/api", reg.addr)).unwrap();

    // Nothing pushed yet: an empty list, not an error (the registry has no referrers API).
    assert!(
        client
            .discover(&repo, &image_digest)
            .await
            .unwrap()
            .artifacts
            .is_empty()
    );

    let mut pushed = Vec::new();
    for extra in [None, Some("/bin/sh")] {
        let artifact =
            layout::build(&profile_for(&image_digest, extra), &subject, created()).unwrap();
        pushed.push(client.push_artifact(&repo, &artifact, None).await.unwrap());
        // Re-pushing does not add a second entry.
        client.push_artifact(&repo, &artifact, None).await.unwrap();
    }
    let found = client.discover(&repo, &image_digest).await.unwrap();
    let mut digests: Vec<Digest> = found.artifacts.iter().map(|a| a.digest.clone()).collect();
    digests.sort();
    pushed.sort();
    assert_eq!(digests, pushed);
    assert!(found.rejected.is_empty(), "{:?}", found.rejected);
    assert_eq!(
        found.artifacts[0].created.as_deref(),
        Some("2026-11-26T12:00:00Z")
    );

    // A hostile fallback index: entries that claim to be profile artifacts of this
    // image but are not. (distribution checks that listed manifests exist, so only
    // existing content can be listed here.)
    let other_image = push_test_image(&reg.addr, "shop/other");
    let other_subject = client
        .resolve(&parse_reference(&format!("{}/shop/other:1.0", reg.addr)).unwrap())
        .await
        .unwrap();
    let foreign =
        layout::build(&profile_for(&other_image, None), &other_subject, created()).unwrap();
    let foreign_digest = client.push_artifact(&repo, &foreign, None).await.unwrap();
    let first = layout::build(&profile_for(&image_digest, None), &subject, created()).unwrap();
    let claim = |digest: &Digest, size: u64| {
        serde_json::json!({"mediaType": MANIFEST_MEDIA_TYPE, "digest": digest, "size": size,
                           "artifactType": "application/vnd.imprint.profile.v1+json"})
    };
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": layout::INDEX_MEDIA_TYPE,
        "manifests": [
            claim(&first.digest, first.manifest_bytes.len() as u64),
            claim(&image_digest, subject.size),
            claim(&foreign_digest, foreign.manifest_bytes.len() as u64),
        ]
    });
    let tag = parse_reference(&format!(
        "{}/shop/api:{}",
        reg.addr,
        layout::fallback_tag(&image_digest)
    ))
    .unwrap();
    client
        .push_manifest(
            &tag,
            &serde_json::to_vec(&index).unwrap(),
            layout::INDEX_MEDIA_TYPE,
        )
        .await
        .unwrap();
    let found = client.discover(&repo, &image_digest).await.unwrap();
    let digests: Vec<&str> = found.artifacts.iter().map(|a| a.digest.as_str()).collect();
    assert_eq!(digests, [first.digest.as_str()]);
    let why: Vec<&str> = found.rejected.iter().map(|(_, w)| w.as_str()).collect();
    assert_eq!(why.len(), 2, "{why:?}");
    assert!(why[0].contains("artifactType"), "{why:?}");
    assert!(why[1].contains("its subject is"), "{why:?}");
}

fn fast_retries(addr: &str) -> Registry {
    let reference = parse_reference(&format!("{addr}/probe:x")).unwrap();
    let options = RegistryOptions {
        backoff: std::time::Duration::from_millis(20),
        ..RegistryOptions::default()
    };
    Registry::new(&options, &[&reference]).unwrap()
}

async fn pushed_artifact(client: &Registry, addr: &str, repo: &str) -> (Digest, Digest) {
    let image_digest = push_test_image(addr, repo);
    let image = parse_reference(&format!("{addr}/{repo}@{image_digest}")).unwrap();
    let subject = client.resolve(&image).await.unwrap();
    let artifact = layout::build(&profile_for(&image_digest, None), &subject, created()).unwrap();
    let repository = parse_reference(&format!("{addr}/{repo}")).unwrap();
    (
        image_digest,
        client
            .push_artifact(&repository, &artifact, None)
            .await
            .unwrap(),
    )
}

#[tokio::test]
async fn transient_server_errors_are_retried() {
    let Some(reg) = TestRegistry::start() else {
        return;
    };
    let (_, digest) = pushed_artifact(&registry_client(&reg.addr), &reg.addr, "retry/app").await;
    // The first three requests get 503, 429 and 502; then the registry answers.
    let proxy = support::FaultProxy::start(&reg.addr, |_, n| match n {
        0 => support::Fault::Status(503),
        1 => support::Fault::Status(429),
        2 => support::Fault::Status(502),
        _ => support::Fault::Forward,
    });
    let client = fast_retries(&proxy.addr);
    let r = parse_reference(&format!("{}/retry/app@{digest}", proxy.addr)).unwrap();
    let pulled = client.pull_artifact(&r).await.unwrap();
    assert_eq!(pulled.digest, digest);
}

#[tokio::test]
async fn persistent_server_errors_fail_after_the_retries() {
    let Some(reg) = TestRegistry::start() else {
        return;
    };
    let (_, digest) = pushed_artifact(&registry_client(&reg.addr), &reg.addr, "down/app").await;
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    let proxy = support::FaultProxy::start(&reg.addr, move |line, _| {
        // Count the manifest requests (the client also probes /v2/ for auth).
        if line.contains("/manifests/") {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        support::Fault::Status(503)
    });
    let client = fast_retries(&proxy.addr);
    let r = parse_reference(&format!("{}/down/app@{digest}", proxy.addr)).unwrap();
    let err = client.pull_artifact(&r).await.unwrap_err();
    assert!(matches!(err, RegistryError::Request { .. }), "{err}");
    assert!(err.to_string().contains("503"), "{err}");
    // One try and three retries.
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_registry_that_goes_away_mid_push_reports_failure_and_leaves_no_artifact() {
    let Some(reg) = TestRegistry::start() else {
        return;
    };
    let direct = registry_client(&reg.addr);
    let image_digest = push_test_image(&reg.addr, "gone/app");
    let image = parse_reference(&format!("{}/gone/app@{image_digest}", reg.addr)).unwrap();
    let subject = direct.resolve(&image).await.unwrap();
    let artifact = layout::build(&profile_for(&image_digest, None), &subject, created()).unwrap();
    // Blob uploads go through; every manifest PUT finds the registry gone.
    let proxy = support::FaultProxy::start(&reg.addr, |line, _| {
        if line.starts_with("PUT ") && line.contains("/manifests/") {
            support::Fault::Drop
        } else {
            support::Fault::Forward
        }
    });
    let client = fast_retries(&proxy.addr);
    let repository = parse_reference(&format!("{}/gone/app", proxy.addr)).unwrap();
    let err = client
        .push_artifact(&repository, &artifact, None)
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("push manifest to"), "{err}");
    // Nothing half-written is visible as an artifact.
    let r = parse_reference(&format!("{}/gone/app@{}", reg.addr, artifact.digest)).unwrap();
    assert!(direct.pull_artifact(&r).await.is_err());
    assert!(
        direct
            .discover(
                &parse_reference(&format!("{}/gone/app", reg.addr)).unwrap(),
                &image_digest
            )
            .await
            .unwrap()
            .artifacts
            .is_empty()
    );
}

/// Runs the oras interop script; `None` (a skip) when Python's `oras` is absent.
fn oras(args: &[&str]) -> Option<std::process::Output> {
    let has_oras = std::process::Command::new("python3")
        .args(["-c", "import oras.client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_oras {
        support::skip("Python package oras absent (bash .ci/setup installs it)");
        return None;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/oras_interop.py");
    Some(
        std::process::Command::new("python3")
            .arg(script)
            .args(args)
            .output()
            .unwrap(),
    )
}

#[tokio::test]
async fn oras_pulls_what_imprint_pushed_and_imprint_pulls_what_oras_pushed() {
    let Some(reg) = TestRegistry::start() else {
        return;
    };
    let client = registry_client(&reg.addr);
    let image_digest = push_test_image(&reg.addr, "interop/app");
    let image = parse_reference(&format!("{}/interop/app@{image_digest}", reg.addr)).unwrap();
    let subject = client.resolve(&image).await.unwrap();
    let artifact = layout::build(&profile_for(&image_digest, None), &subject, created()).unwrap();
    let repo = parse_reference(&format!("{}/interop/app", reg.addr)).unwrap();
    let digest = client.push_artifact(&repo, &artifact, None).await.unwrap();

    // oras pulls imprint's artifact: the same bytes, under the layers' titles.
    let out = tempfile::tempdir().unwrap();
    let reference = format!("{}/interop/app@{digest}", reg.addr);
    let Some(pulled) = oras(&["pull", &reference, out.path().to_str().unwrap()]) else {
        return;
    };
    assert!(
        pulled.status.success(),
        "{}",
        String::from_utf8_lossy(&pulled.stderr)
    );
    assert_eq!(
        std::fs::read(out.path().join("profile.json")).unwrap(),
        artifact.layers[0].data
    );
    // oras unpacks a tar+gzip layer, as Flux's `extract` does: the Profile object.
    let object =
        imprint_schema::parse_profile(&std::fs::read(out.path().join("profile.yaml")).unwrap())
            .unwrap();
    assert_eq!(
        imprint_schema::to_canonical_json(&object),
        artifact.layers[0].data
    );
    assert!(object.metadata.is_some());

    // oras pushes a profile artifact it built; imprint pulls and checks it.
    let other = profile_for(&image_digest, Some("/bin/sh"));
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("profile.json");
    let tgz = dir.path().join("profile.tar.gz");
    std::fs::write(&json, imprint_schema::to_canonical_json(&other)).unwrap();
    std::fs::write(&tgz, layout::profile_tarball(&other)).unwrap();
    let target = format!("{}/interop/app:from-oras", reg.addr);
    let pushed = oras(&[
        "push",
        &target,
        image_digest.as_str(),
        &subject.size.to_string(),
        json.to_str().unwrap(),
        tgz.to_str().unwrap(),
    ])
    .unwrap();
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let got = client
        .pull_artifact(&parse_reference(&target).unwrap())
        .await
        .unwrap();
    assert_eq!(got.profile, other.normalized());
}

#[tokio::test]
async fn a_redirect_loop_is_an_error() {
    let Some(reg) = TestRegistry::start() else {
        return;
    };
    let (_, digest) = pushed_artifact(&registry_client(&reg.addr), &reg.addr, "loop/app").await;
    let proxy = support::FaultProxy::start(&reg.addr, |line, _| {
        if line.contains("/manifests/") {
            support::Fault::RedirectLoop
        } else {
            support::Fault::Forward
        }
    });
    let client = fast_retries(&proxy.addr);
    let r = parse_reference(&format!("{}/loop/app@{digest}", proxy.addr)).unwrap();
    let err = client.pull_artifact(&r).await.unwrap_err();
    assert!(err.to_string().to_lowercase().contains("redirect"), "{err}");
}

#[tokio::test]
async fn an_html_404_on_the_referrers_endpoint_falls_back_to_the_tag() {
    let Some(reg) = TestRegistry::start() else {
        return;
    };
    let (image_digest, digest) =
        pushed_artifact(&registry_client(&reg.addr), &reg.addr, "html/app").await;
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let saw = seen.clone();
    let proxy = support::FaultProxy::start(&reg.addr, move |line, _| {
        if line.contains("/referrers/") {
            saw.store(true, std::sync::atomic::Ordering::SeqCst);
            support::Fault::Html404
        } else {
            support::Fault::Forward
        }
    });
    let client = fast_retries(&proxy.addr);
    let repo = parse_reference(&format!("{}/html/app", proxy.addr)).unwrap();
    let found = client.discover(&repo, &image_digest).await.unwrap();
    assert!(
        seen.load(std::sync::atomic::Ordering::SeqCst),
        "the referrers API was asked"
    );
    let digests: Vec<&str> = found.artifacts.iter().map(|a| a.digest.as_str()).collect();
    assert_eq!(digests, [digest.as_str()]);
}

/// Makes the body a hostile registry serves.
type Body = fn() -> Vec<u8>;

/// A proxy that answers every manifest GET with `body`, and forwards the rest.
fn serving_manifests(upstream: &str, body: Body) -> support::FaultProxy {
    support::FaultProxy::start(upstream, move |line, _| {
        if line.starts_with("GET ") && line.contains("/manifests/") {
            support::Fault::Serve(MANIFEST_MEDIA_TYPE, body)
        } else {
            support::Fault::Forward
        }
    })
}

#[tokio::test]
async fn hostile_manifests_from_a_registry_are_refused() {
    let Some(reg) = TestRegistry::start() else {
        return;
    };
    let (_, digest) = pushed_artifact(&registry_client(&reg.addr), &reg.addr, "hostile/app").await;
    // (what the registry serves, pulled by digest?, what the error says)
    let cases: [(Body, bool, &str); 5] = [
        // Larger than the 4 MiB bound, by tag: refused by size.
        (
            || vec![b' '; 5 << 20],
            false,
            "larger than the limit of 4194304",
        ),
        // A manifest that is not a profile artifact.
        (
            || {
                br#"{"schemaVersion":2,"config":{"mediaType":"a","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1},"layers":[]}"#.to_vec()
            },
            false,
            "artifactType",
        ),
        // A descriptor whose digest is not one (a path, say): refused where it stands.
        (
            || {
                br#"{"schemaVersion":2,"config":{"mediaType":"a","digest":"sha256:../../etc/passwd","size":1},"layers":[]}"#.to_vec()
            },
            false,
            "is not a digest",
        ),
        // An HTML login page.
        (
            || b"<html><body>login</body></html>".to_vec(),
            false,
            "manifest: expected value",
        ),
        // By digest: other bytes than asked for.
        (|| b"{}".to_vec(), true, "does not match its descriptor"),
    ];
    for (body, by_digest, needle) in cases {
        let proxy = serving_manifests(&reg.addr, body);
        let client = fast_retries(&proxy.addr);
        let reference = if by_digest {
            format!("{}/hostile/app@{digest}", proxy.addr)
        } else {
            format!("{}/hostile/app:whatever", proxy.addr)
        };
        let err = client
            .pull_artifact(&parse_reference(&reference).unwrap())
            .await
            .unwrap_err();
        assert!(err.to_string().contains(needle), "{needle}: {err}");
    }
}

#[tokio::test]
async fn the_cache_serves_verified_artifacts_when_the_registry_is_down() {
    let Some(reg) = TestRegistry::start() else {
        return;
    };
    let (_, digest) = pushed_artifact(&registry_client(&reg.addr), &reg.addr, "cached/app").await;
    let dir = tempfile::tempdir().unwrap();
    let cache = imprint_oci::BlobCache::open(dir.path()).unwrap();
    let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let is_up = up.clone();
    let proxy = support::FaultProxy::start(&reg.addr, move |_, _| {
        if is_up.load(std::sync::atomic::Ordering::SeqCst) {
            support::Fault::Forward
        } else {
            support::Fault::Drop
        }
    });
    let client = fast_retries(&proxy.addr);
    let r = parse_reference(&format!("{}/cached/app@{digest}", proxy.addr)).unwrap();
    let first = client.pull_artifact_cached(&r, &cache).await.unwrap();

    // The registry goes away: the cache still serves the verified artifact.
    up.store(false, std::sync::atomic::Ordering::SeqCst);
    let second = client.pull_artifact_cached(&r, &cache).await.unwrap();
    assert_eq!(second.profile, first.profile);
    assert_eq!(second.manifest_bytes, first.manifest_bytes);

    // A tampered cache entry is not believed; with the registry down, that is an error.
    let layer = &first.manifest.layers[0].digest;
    let path = dir.path().join("blobs/sha256").join(layer.hex());
    std::fs::write(&path, b"{\"apiVersion\":\"imprint.dev/v1\"}").unwrap();
    assert!(client.pull_artifact_cached(&r, &cache).await.is_err());
    // Back up: pulled again and the cache repaired.
    up.store(true, std::sync::atomic::Ordering::SeqCst);
    let third = client.pull_artifact_cached(&r, &cache).await.unwrap();
    assert_eq!(third.profile, first.profile);
    assert!(cache.get(layer, 1 << 20).is_some());
}

#[tokio::test]
async fn a_manifest_without_a_length_is_cut_off_at_the_limit() {
    let Some(reg) = TestRegistry::start() else {
        return;
    };
    let proxy = support::FaultProxy::start(&reg.addr, |line, _| {
        if line.contains("/manifests/") {
            support::Fault::Endless(MANIFEST_MEDIA_TYPE)
        } else {
            support::Fault::Forward
        }
    });
    let client = fast_retries(&proxy.addr);
    let r = parse_reference(&format!("{}/endless/app:v1", proxy.addr)).unwrap();
    let err = client.pull_artifact(&r).await.unwrap_err();
    assert!(
        matches!(err, RegistryError::TooLarge { limit: 4194304, .. }),
        "{err}"
    );
}

/// The `If-Match` / `If-None-Match` header of the PUTs to the fallback tag.
fn fallback_tag_conditions(proxy: &support::FaultProxy) -> Vec<String> {
    proxy
        .heads()
        .iter()
        .filter(|h| h.starts_with("PUT ") && h.contains("/manifests/sha256-"))
        .map(|h| {
            h.lines()
                .find(|l| {
                    let l = l.to_ascii_lowercase();
                    l.starts_with("if-match:") || l.starts_with("if-none-match:")
                })
                .unwrap_or("none")
                .to_ascii_lowercase()
        })
        .collect()
}

#[tokio::test]
async fn the_fallback_tag_is_updated_on_the_etag_it_was_read_with() {
    let Some(reg) = TestRegistry::start() else {
        return;
    };
    let proxy = support::FaultProxy::start(&reg.addr, |_, _| support::Fault::Forward);
    let client = registry_client(&proxy.addr);
    let image_digest = push_test_image(&proxy.addr, "etag/app");
    let image = parse_reference(&format!("{}/etag/app@{image_digest}", proxy.addr)).unwrap();
    let subject = client.resolve(&image).await.unwrap();
    let repository = parse_reference(&format!("{}/etag/app", proxy.addr)).unwrap();
    for extra in ["/bin/a", "/bin/b"] {
        let artifact = layout::build(
            &profile_for(&image_digest, Some(extra)),
            &subject,
            created(),
        )
        .unwrap();
        client
            .push_artifact(&repository, &artifact, None)
            .await
            .unwrap();
    }
    let conditions = fallback_tag_conditions(&proxy);
    assert_eq!(conditions.len(), 2, "{conditions:?}");
    // Created only if absent, then replaced only if unchanged since read.
    assert_eq!(conditions[0], "if-none-match: *");
    assert!(
        conditions[1].starts_with("if-match: \"sha256:"),
        "{conditions:?}"
    );
    let found = client.discover(&repository, &image_digest).await.unwrap();
    assert_eq!(found.artifacts.len(), 2);
}

#[tokio::test]
async fn a_fallback_tag_changed_under_the_push_is_read_again_and_merged() {
    let Some(reg) = TestRegistry::start() else {
        return;
    };
    let direct = registry_client(&reg.addr);
    let image_digest = push_test_image(&reg.addr, "race/app");
    let image = parse_reference(&format!("{}/race/app@{image_digest}", reg.addr)).unwrap();
    let subject = direct.resolve(&image).await.unwrap();
    let first = layout::build(
        &profile_for(&image_digest, Some("/bin/a")),
        &subject,
        created(),
    )
    .unwrap();
    let second = layout::build(
        &profile_for(&image_digest, Some("/bin/b")),
        &subject,
        created(),
    )
    .unwrap();
    let repository = parse_reference(&format!("{}/race/app", reg.addr)).unwrap();
    direct
        .push_artifact(&repository, &first, None)
        .await
        .unwrap();
    // The first PUT of the tag finds it changed (412), as when another pusher won.
    let puts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = puts.clone();
    let proxy = support::FaultProxy::start(&reg.addr, move |line, _| {
        if line.starts_with("PUT ")
            && line.contains("/manifests/sha256-")
            && counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0
        {
            return support::Fault::Status(412);
        }
        support::Fault::Forward
    });
    let client = fast_retries(&proxy.addr);
    let via_proxy = parse_reference(&format!("{}/race/app", proxy.addr)).unwrap();
    client
        .push_artifact(&via_proxy, &second, None)
        .await
        .unwrap();
    assert_eq!(puts.load(std::sync::atomic::Ordering::SeqCst), 2);
    let found = direct.discover(&repository, &image_digest).await.unwrap();
    let mut digests: Vec<_> = found.artifacts.iter().map(|a| a.digest.clone()).collect();
    digests.sort();
    let mut expected = vec![first.digest.clone(), second.digest.clone()];
    expected.sort();
    assert_eq!(digests, expected);
}

#[tokio::test]
async fn a_fallback_tag_that_keeps_changing_fails_the_push_clearly() {
    let Some(reg) = TestRegistry::start() else {
        return;
    };
    let direct = registry_client(&reg.addr);
    let image_digest = push_test_image(&reg.addr, "churn/app");
    let image = parse_reference(&format!("{}/churn/app@{image_digest}", reg.addr)).unwrap();
    let subject = direct.resolve(&image).await.unwrap();
    let artifact = layout::build(&profile_for(&image_digest, None), &subject, created()).unwrap();
    let proxy = support::FaultProxy::start(&reg.addr, |line, _| {
        if line.starts_with("PUT ") && line.contains("/manifests/sha256-") {
            support::Fault::Status(412)
        } else {
            support::Fault::Forward
        }
    });
    let client = fast_retries(&proxy.addr);
    let repository = parse_reference(&format!("{}/churn/app", proxy.addr)).unwrap();
    let err = client
        .push_artifact(&repository, &artifact, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("kept changing"), "{err}");
    assert!(err.to_string().contains("412"), "{err}");
}
