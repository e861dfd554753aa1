//! Where profiles are looked for, and which answer wins, without a registry.

use super::*;
use crate::resolver::seen::{MAX_SEEN_REPOSITORIES, SeenRepositories, Sighting};

/// A digest named for the test: the sha256 of its name.
fn d(name: &str) -> Digest {
    Digest::sha256_of(name.as_bytes())
}

fn profile(image: &Digest) -> Box<Profile> {
    Box::new(Profile::new(image.clone()))
}

fn at(second: i64) -> Option<jiff::Timestamp> {
    Some(jiff::Timestamp::from_second(1_700_000_000 + second).unwrap())
}

fn verified(repository: &str, artifact: &str, created: Option<jiff::Timestamp>) -> Answer {
    Answer::Verified(Candidate {
        repository: repository.into(),
        artifact: d(artifact),
        profile: profile(&d("image")),
        content: d(&format!("content-of-{artifact}")),
        created,
        version: 0,
        pinned: false,
        evidence: Default::default(),
    })
}

fn enforced(outcome: &Resolved) -> (String, Digest) {
    match outcome {
        Resolved::Enforce {
            repository,
            artifact,
            ..
        } => (repository.clone(), artifact.clone()),
        Resolved::Not(status) => panic!("nothing enforced: {status:?}"),
    }
}

const SHOP: &str = "registry.example/shop/web";
const TENANT: &str = "registry.example/tenant/web";

fn unsigned() -> Answer {
    Answer::Refused(Status::Unsigned("no signature found".into()))
}

fn unreachable() -> Answer {
    Answer::Refused(Status::Unreachable("connection refused".into()))
}

#[test]
fn the_newest_verified_profile_wins_in_whatever_order_places_answer() {
    let answers = || {
        vec![
            (SHOP.to_string(), verified(SHOP, "new", at(60))),
            (TENANT.to_string(), verified(TENANT, "old", at(0))),
            ("registry.example/junk/web".to_string(), unsigned()),
        ]
    };
    let forward = decide(answers(), None);
    let mut reversed = answers();
    reversed.reverse();
    let backward = decide(reversed, None);
    assert_eq!(enforced(&forward), (SHOP.to_string(), d("new")));
    assert_eq!(enforced(&forward), enforced(&backward));
}

#[test]
fn the_same_artifact_in_two_repositories_is_named_by_one_of_them_every_time() {
    let a = (TENANT.to_string(), verified(TENANT, "same", at(5)));
    let b = (SHOP.to_string(), verified(SHOP, "same", at(5)));
    let one = decide(vec![a, b], None);
    let a = (TENANT.to_string(), verified(TENANT, "same", at(5)));
    let b = (SHOP.to_string(), verified(SHOP, "same", at(5)));
    let other = decide(vec![b, a], None);
    assert_eq!(enforced(&one), enforced(&other));
    // An artifact with a creation time beats one without.
    let dated = decide(
        vec![
            (TENANT.to_string(), verified(TENANT, "undated", None)),
            (SHOP.to_string(), verified(SHOP, "dated", at(0))),
        ],
        None,
    );
    assert_eq!(enforced(&dated).1, d("dated"));
}

#[test]
fn a_place_that_is_down_or_unsigned_never_takes_away_a_profile_found_elsewhere() {
    for failing in [unsigned(), unreachable(), Answer::Nothing] {
        let outcome = decide(
            vec![
                (TENANT.to_string(), failing),
                (SHOP.to_string(), verified(SHOP, "a1", at(0))),
            ],
            Some(SHOP),
        );
        assert_eq!(enforced(&outcome), (SHOP.to_string(), d("a1")));
    }
}

#[test]
fn when_nothing_verifies_the_enforced_place_being_down_keeps_it_and_only_that() {
    // Where the enforced profile came from is down, another place has junk: the
    // profile may still be there, so the state is unreachable (kept in force).
    let down_at_home = decide(
        vec![
            (TENANT.to_string(), unsigned()),
            (SHOP.to_string(), unreachable()),
        ],
        Some(SHOP),
    );
    assert!(matches!(
        down_at_home,
        Resolved::Not(Status::Unreachable(_))
    ));
    // Where it came from says it no longer verifies, another place is down: the
    // revocation is seen, whatever the order.
    for answers in [
        vec![
            (TENANT.to_string(), unreachable()),
            (SHOP.to_string(), unsigned()),
        ],
        vec![
            (SHOP.to_string(), unsigned()),
            (TENANT.to_string(), unreachable()),
        ],
    ] {
        let revoked = decide(answers, Some(SHOP));
        assert!(
            matches!(revoked, Resolved::Not(Status::Unsigned(_))),
            "{revoked:?}"
        );
    }
    // Nowhere holds anything.
    let none = decide(vec![(SHOP.to_string(), Answer::Nothing)], None);
    assert!(matches!(none, Resolved::Not(Status::NoProfile)));
}

#[test]
fn seen_repositories_are_bounded_and_the_verified_ones_place_is_kept() {
    let mut seen = SeenRepositories::default();
    assert_eq!(seen.see(SHOP, None), Sighting::Added);
    assert_eq!(seen.see(SHOP, None), Sighting::Known);
    // A flood of references: each new one pushes out the least recently seen,
    // never the place the verified profile came from.
    for i in 0..3 * MAX_SEEN_REPOSITORIES {
        let name = format!("registry.example/flood/{i}");
        let sighting = seen.see(&name, Some(SHOP));
        if i + 1 < MAX_SEEN_REPOSITORIES {
            assert_eq!(sighting, Sighting::Added);
        } else {
            assert!(matches!(sighting, Sighting::AddedDropping(ref r) if r != SHOP));
        }
        assert!(seen.iter().count() <= MAX_SEEN_REPOSITORIES);
    }
    assert!(seen.iter().any(|r| r == SHOP));
    // Without a verified profile to keep, the least recently seen goes: SHOP, seen
    // again, is the most recent and stays; the oldest flood entry goes instead.
    let oldest = seen.iter().find(|r| *r != SHOP).unwrap().to_string();
    seen.see(SHOP, None);
    assert_eq!(
        seen.see("registry.example/late/web", None),
        Sighting::AddedDropping(oldest)
    );
    assert!(seen.iter().any(|r| r == SHOP));
}

#[test]
fn a_higher_attested_version_wins_over_a_later_creation_time() {
    let with_version = |repository: &str, artifact: &str, version, created| {
        Answer::Verified(Candidate {
            repository: repository.into(),
            artifact: d(artifact),
            profile: profile(&d("image")),
            content: d(&format!("content-of-{artifact}")),
            created,
            version,
            pinned: false,
            evidence: Default::default(),
        })
    };
    let answers = vec![
        (
            "r/a".to_string(),
            with_version("r/a", "late-v1", 1, at(500)),
        ),
        ("r/b".to_string(), with_version("r/b", "early-v2", 2, at(0))),
    ];
    assert_eq!(enforced(&decide(answers, None)).1, d("early-v2"));
}
