//! The order of an image's profiles and the memory of the newest.

use super::*;
use crate::resolver::rank::Rank;
use imprint_schema::Digest;
use jiff::Timestamp;

fn d(name: &str) -> Digest {
    Digest::sha256_of(name.as_bytes())
}

fn at(second: i64) -> Option<Timestamp> {
    Some(Timestamp::from_second(1_780_000_000 + second).unwrap())
}

fn found(artifact: &str, version: u64, created: Option<Timestamp>, pinned: bool) -> Resolved {
    Resolved::Enforce {
        repository: "registry.example/shop/web".into(),
        artifact: d(artifact),
        profile: Box::new(imprint_schema::Profile::new(d("image"))),
        content: d(&format!("content of {artifact}")),
        evidence: Default::default(),
        rank: Rank {
            version,
            created,
            artifact: d(artifact),
        },
        pinned,
    }
}

fn mark(artifact: &str, version: u64, created: Option<Timestamp>) -> Mark {
    Mark {
        repository: "registry.example/shop/web".into(),
        rank: Rank {
            version,
            created,
            artifact: d(artifact),
        },
    }
}

fn enforced(outcome: &Resolved) -> Option<Digest> {
    match outcome {
        Resolved::Enforce { artifact, .. } => Some(artifact.clone()),
        Resolved::Not(_) => None,
    }
}

#[test]
fn the_version_orders_before_the_time_and_the_first_verified_becomes_the_mark() {
    // Version 2 created earlier is newer than version 1 created later.
    let v1_late = Rank {
        version: 1,
        created: at(100),
        artifact: d("a"),
    };
    let v2_early = Rank {
        version: 2,
        created: at(0),
        artifact: d("b"),
    };
    assert!(v2_early > v1_late);
    // Attested before versions (0): the creation time decides among them.
    let old_a = Rank {
        version: 0,
        created: at(0),
        artifact: d("a"),
    };
    let old_b = Rank {
        version: 0,
        created: at(5),
        artifact: d("b"),
    };
    assert!(old_b > old_a);
    let (outcome, new_mark) = hold(found("a", 1, at(0), false), None, false);
    assert_eq!(enforced(&outcome), Some(d("a")));
    assert_eq!(new_mark, Some(mark("a", 1, at(0))));
}

#[test]
fn an_older_artifact_is_never_enforced_over_the_mark_on_its_own() {
    // The newest (v3) was deleted or its signature tag flooded: v2 verifies now.
    let newest = mark("v3", 3, at(30));
    let (outcome, kept) = hold(found("v2", 2, at(90), false), Some(&newest), false);
    match outcome {
        Resolved::Not(Status::Withdrawn(why)) => {
            assert!(
                why.contains(d("v3").as_str()) && why.contains("version 3"),
                "{why}"
            );
            assert!(why.contains(d("v2").as_str()), "{why}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(kept, Some(newest.clone()));
    // A newer one replaces it and becomes the mark.
    let (outcome, moved) = hold(found("v4", 4, at(0), false), Some(&newest), false);
    assert_eq!(enforced(&outcome), Some(d("v4")));
    assert_eq!(moved, Some(mark("v4", 4, at(0))));
    // The same one again stays.
    let (outcome, same) = hold(found("v3", 3, at(30), false), Some(&newest), false);
    assert_eq!(enforced(&outcome), Some(d("v3")));
    assert_eq!(same, Some(newest));
}

#[test]
fn a_pin_goes_back_without_lowering_the_mark() {
    let newest = mark("v3", 3, at(30));
    let (outcome, kept) = hold(found("v1", 1, at(0), true), Some(&newest), false);
    assert_eq!(enforced(&outcome), Some(d("v1")), "Git's choice stands");
    assert_eq!(
        kept,
        Some(newest.clone()),
        "and the memory of the newest stays"
    );
    let (_, raised) = hold(found("v5", 5, at(0), true), Some(&newest), false);
    assert_eq!(raised, Some(mark("v5", 5, at(0))));
}

#[test]
fn when_nothing_verifies_the_mark_makes_it_a_withdrawal_unless_an_explicit_act() {
    let newest = mark("v3", 3, at(30));
    for status in [
        Status::NoProfile,
        Status::Unsigned("no signature found".into()),
        Status::AttestationFailed("no attestation".into()),
        Status::SubjectMismatch("other subject".into()),
    ] {
        let (outcome, kept) = hold(Resolved::Not(status.clone()), Some(&newest), false);
        assert!(
            matches!(outcome, Resolved::Not(Status::Withdrawn(_))),
            "{status:?} became {outcome:?}"
        );
        assert_eq!(kept, Some(newest.clone()));
    }
    for status in [
        Status::Unreachable("connection refused".into()),
        Status::DeliveryConflict("two pins".into()),
        Status::RepositoryNotAllowed("tenant/web".into()),
    ] {
        let (outcome, _) = hold(Resolved::Not(status.clone()), Some(&newest), false);
        assert!(
            matches!(&outcome, Resolved::Not(s) if *s == status),
            "{status:?} became {outcome:?}"
        );
    }
    // Without a mark nothing is withdrawn: the status stands.
    let (outcome, none) = hold(Resolved::Not(Status::NoProfile), None, false);
    assert!(matches!(outcome, Resolved::Not(Status::NoProfile)));
    assert_eq!(none, None);
}

#[test]
fn when_git_delivers_for_the_digest_its_pin_decides_and_nothing_is_withdrawn() {
    let newest = mark("v3", 3, at(30));
    let not_delivered = Status::Unsigned("its profile is not the delivered one".into());
    let (outcome, kept) = hold(Resolved::Not(not_delivered.clone()), Some(&newest), true);
    assert!(
        matches!(&outcome, Resolved::Not(s) if *s == not_delivered),
        "{outcome:?}"
    );
    assert_eq!(kept, Some(newest));
}
