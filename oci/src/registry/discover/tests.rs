use std::collections::BTreeMap;

use super::*;

fn subject() -> Digest {
    Digest::sha256_of(b"the image")
}

/// A listed entry claiming `artifact_type`, naming `names` as its image, created at
/// `created`.
fn entry(n: u32, artifact_type: &str, names: &Digest, created: &str) -> Descriptor {
    Descriptor {
        media_type: layout::MANIFEST_MEDIA_TYPE.to_string(),
        digest: Digest::sha256_of(&n.to_be_bytes()),
        size: 700,
        artifact_type: Some(artifact_type.to_string()),
        annotations: BTreeMap::from([
            (layout::ANNOTATION_CREATED.to_string(), created.to_string()),
            (
                layout::ANNOTATION_IMAGE_DIGEST.to_string(),
                names.to_string(),
            ),
        ]),
        platform: None,
    }
}

fn genuine(n: u32, created: &str) -> Descriptor {
    entry(n, crate::PROFILE_MEDIA_TYPE, &subject(), created)
}

fn order(entries: Vec<Descriptor>) -> (Vec<Descriptor>, usize) {
    examination_order(entries, &subject(), &Limits::default())
}

#[test]
fn a_flood_of_other_referrers_does_not_push_a_profile_out() {
    let mut listed: Vec<Descriptor> = (0..1000)
        .map(|n| {
            entry(
                n,
                "application/spdx+json",
                &subject(),
                "2030-01-01T00:00:00Z",
            )
        })
        .collect();
    listed.push(genuine(5000, "2026-01-01T00:00:00Z"));
    let (examined, unexamined) = order(listed);
    assert_eq!(examined.len(), MAX_REFERRERS_EXAMINED);
    assert_eq!(unexamined, 1001 - MAX_REFERRERS_EXAMINED);
    assert_eq!(examined[0], genuine(5000, "2026-01-01T00:00:00Z"));
}

#[test]
fn profiles_of_another_image_and_impossible_sizes_rank_after_plausible_ones() {
    let other = Digest::sha256_of(b"another image");
    let mut listed: Vec<Descriptor> = (0..200)
        .map(|n| entry(n, crate::PROFILE_MEDIA_TYPE, &other, "2026-06-01T00:00:00Z"))
        .collect();
    let mut huge = genuine(300, "2026-06-01T00:00:00Z");
    huge.size = u64::MAX;
    listed.push(huge.clone());
    listed.push(genuine(301, "2025-01-01T00:00:00Z"));
    let (examined, _) = order(listed);
    assert_eq!(examined[0], genuine(301, "2025-01-01T00:00:00Z"));
    assert_eq!(examined[1], huge);
}

#[test]
fn newest_plausible_first_and_a_future_created_last() {
    let listed = vec![
        genuine(1, "2024-01-01T00:00:00Z"),
        genuine(2, "2999-01-01T00:00:00Z"),
        genuine(3, "not a time"),
        genuine(4, "2025-01-01T00:00:00Z"),
    ];
    let (examined, unexamined) = order(listed.clone());
    assert_eq!(unexamined, 0);
    // Both implausible ones keep the registry's order among themselves.
    let expected = [&listed[3], &listed[0], &listed[1], &listed[2]];
    assert_eq!(examined.iter().collect::<Vec<_>>(), expected);
}

#[test]
fn duplicates_are_dropped_before_the_bound_is_counted() {
    let listed: Vec<Descriptor> = (0..MAX_REFERRERS_EXAMINED as u32 + 10)
        .flat_map(|n| {
            let e = genuine(n % MAX_REFERRERS_EXAMINED as u32, "2025-01-01T00:00:00Z");
            [e.clone(), e]
        })
        .collect();
    let (examined, unexamined) = order(listed);
    assert_eq!(examined.len(), MAX_REFERRERS_EXAMINED);
    assert_eq!(unexamined, 0);
}
