//! Discover, pull and validate 100 profiles from a local docker-registry, cold and
//! through the content-addressed cache, measured in the same run.
//!
//! `cargo bench -p imprint-oci --bench pull_profiles` (needs /usr/bin/docker-registry)

use std::time::{Duration, Instant};

use imprint_oci::BlobCache;
use imprint_oci::layout;
use imprint_oci::{Registry, RegistryOptions, parse_reference};

use imprint_test_support as support;

const PROFILES: usize = 100;
const ROUNDS: usize = 5;

/// Pulls one artifact by digest (through the cache when given) and validates it.
async fn pull_checked(
    client: &Registry,
    addr: &str,
    digest: &imprint_schema::Digest,
    cache: Option<&BlobCache>,
) {
    let r = parse_reference(&format!("{addr}/bench/app@{digest}")).unwrap();
    let pulled = match cache {
        Some(c) => client.pull_artifact_cached(&r, c).await.unwrap(),
        None => client.pull_artifact(&r).await.unwrap(),
    };
    assert!(imprint_schema::validate(&pulled.profile).is_empty());
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing useful: run only for bench.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let Some(reg) = support::TestRegistry::start() else {
        return;
    };
    let probe = parse_reference(&format!("{}/x:y", reg.addr)).unwrap();
    let client = Registry::new(&RegistryOptions::default(), &[&probe]).unwrap();
    let repo = parse_reference(&format!("{}/bench/app", reg.addr)).unwrap();
    let mut targets = Vec::new();
    for i in 0..PROFILES {
        let image = support::push_image(
            &reg.addr,
            "bench/app",
            &format!("v{i}"),
            &format!("arch{i}"),
        );
        let subject = client
            .resolve(&parse_reference(&format!("{}/bench/app@{image}", reg.addr)).unwrap())
            .await
            .unwrap();
        let mut profile = imprint_schema::Profile::new(image.clone());
        profile.syscalls = (0..60).map(|s| format!("sys{s}")).collect();
        profile.opens = (0..200)
            .map(|o| imprint_schema::Open {
                path: format!("/usr/lib/pkg{o}/file.so"),
                flags: imprint_schema::OpenFlags::from_names(["O_RDONLY", "O_CLOEXEC"]).unwrap(),
            })
            .collect();
        let artifact =
            layout::build(&profile, &subject, "2026-11-26T12:00:00Z".parse().unwrap()).unwrap();
        client.push_artifact(&repo, &artifact, None).await.unwrap();
        targets.push(image);
    }

    let round = |cache: Option<BlobCache>| {
        let (client, repo, targets, addr) = (&client, &repo, &targets, reg.addr.clone());
        async move {
            let start = Instant::now();
            for image in targets {
                let found = client.discover(repo, image).await.unwrap();
                let digest = &found.artifacts[0].digest;
                pull_checked(client, &addr, digest, cache.as_ref()).await;
            }
            start.elapsed()
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::open(dir.path()).unwrap();
    // Warm the cache once.
    round(Some(cache.clone())).await;

    let mut cold = Vec::new();
    let mut warm = Vec::new();
    for _ in 0..ROUNDS {
        cold.push(round(None).await);
        warm.push(round(Some(cache.clone())).await);
    }
    // Pull + validate only, by known digest (what an agent with pinned references does).
    let digests: Vec<imprint_schema::Digest> = {
        let mut d = Vec::new();
        for image in &targets {
            d.push(
                client.discover(&repo, image).await.unwrap().artifacts[0]
                    .digest
                    .clone(),
            );
        }
        d
    };
    let pull_round = |cache: Option<BlobCache>| {
        let (client, digests, addr) = (&client, &digests, reg.addr.clone());
        async move {
            let start = Instant::now();
            for digest in digests {
                pull_checked(client, &addr, digest, cache.as_ref()).await;
            }
            start.elapsed()
        }
    };
    let mut pull_cold = Vec::new();
    let mut pull_warm = Vec::new();
    for _ in 0..ROUNDS {
        pull_cold.push(pull_round(None).await);
        pull_warm.push(pull_round(Some(cache.clone())).await);
    }
    let (c, w, pc, pw) = (
        median(cold),
        median(warm),
        median(pull_cold),
        median(pull_warm),
    );
    println!("{PROFILES} profiles, median of {ROUNDS} rounds:");
    println!("  discover + pull + validate, cold:   {c:?}");
    println!(
        "  discover + pull + validate, cached: {w:?}  ({:.1}x faster)",
        c.as_secs_f64() / w.as_secs_f64()
    );
    println!("  pull + validate by digest, cold:    {pc:?}");
    println!(
        "  pull + validate by digest, cached:  {pw:?}  ({:.1}x faster)",
        pc.as_secs_f64() / pw.as_secs_f64()
    );
}
