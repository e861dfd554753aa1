//! Merging profiles of one image, learned by several replicas, nodes or runs.
//!
//! `merge` is a join: every behaviour set is a set union, the learning window widens,
//! and completeness drops to `partial` if any input is partial. Each of those is
//! commutative, associative and idempotent, so the result does not depend on the order
//! the inputs arrive in (the property tests below check it).

use crate::digest::Digest;
use crate::profile::{Completeness, Profile};

/// Why two profiles cannot be merged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// The profiles describe different images.
    #[error("image digests differ: {0} and {1}; a profile describes one image")]
    DifferentImage(Digest, Digest),
    /// The profiles describe different platforms of an image.
    #[error("platforms differ: {0} and {1}")]
    DifferentPlatform(String, String),
}

/// Merges `other` into a copy of `a`; both must describe the same image digest.
pub fn merge(a: &Profile, b: &Profile) -> Result<Profile, MergeError> {
    if a.image.digest != b.image.digest {
        return Err(MergeError::DifferentImage(
            a.image.digest.clone(),
            b.image.digest.clone(),
        ));
    }
    let mut out = a.clone();
    // Object metadata names one object; a merge is a new one.
    out.metadata = None;
    out.image.platform = match (&a.image.platform, &b.image.platform) {
        (Some(x), Some(y)) if x != y => {
            return Err(MergeError::DifferentPlatform(x.clone(), y.clone()));
        }
        (x, y) => x.clone().or_else(|| y.clone()),
    };
    // The smallest reference wins so the choice does not depend on argument order.
    out.image.reference = match (&a.image.reference, &b.image.reference) {
        (Some(x), Some(y)) => Some(x.min(y).clone()),
        (x, y) => x.clone().or_else(|| y.clone()),
    };
    let (la, lb) = (&a.learning, &b.learning);
    out.learning.start = min_some(la.start, lb.start);
    out.learning.end = la.end.max(lb.end);
    out.learning.completeness = la.completeness.min(lb.completeness);
    out.learning.observed_containers = la.observed_containers.max(lb.observed_containers);
    out.learning.nodes.extend(lb.nodes.iter().cloned());
    out.learning.truncated.extend(lb.truncated.iter().copied());
    out.execs.extend(b.execs.iter().cloned());
    out.opens.extend(b.opens.iter().cloned());
    out.syscalls.extend(b.syscalls.iter().cloned());
    out.capabilities.extend(b.capabilities.iter().cloned());
    out.network.egress.extend(b.network.egress.iter().cloned());
    out.network
        .ingress
        .extend(b.network.ingress.iter().cloned());
    out.normalize();
    debug_assert!(
        out.learning.truncated.is_empty() || out.learning.completeness == Completeness::Partial
    );
    Ok(out)
}

/// Merges any number of profiles of one image. `None` for an empty input.
pub fn merge_all<'a>(
    profiles: impl IntoIterator<Item = &'a Profile>,
) -> Result<Option<Profile>, MergeError> {
    let mut acc: Option<Profile> = None;
    for p in profiles {
        acc = Some(match acc {
            None => p.clone().normalized(),
            Some(a) => merge(&a, p)?,
        });
    }
    Ok(acc)
}

fn min_some<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::OpenFlags;
    use crate::profile::{Category, Exec, Open, Peer, Protocol};
    use proptest::prelude::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn arb_profile() -> impl Strategy<Value = Profile> {
        let exec = (
            "/bin/[a-c]",
            prop::option::of(prop::collection::vec("[xy*]", 0..3)),
        )
            .prop_map(|(path, args)| Exec { path, args });
        let open = ("/etc/[a-d]", 0u32..(1 << 20)).prop_map(|(path, bits)| Open {
            path,
            flags: OpenFlags::from_bits_truncate(bits),
        });
        let peer = (
            prop::option::of("[ab]\\.example\\.com"),
            prop::option::of(0u16..3),
            prop::option::of(prop_oneof![Just(Protocol::Tcp), Just(Protocol::Udp)]),
        )
            .prop_map(|(dns, port, protocol)| Peer {
                dns,
                cidr: None,
                port,
                protocol,
            });
        (
            prop::collection::vec(exec, 0..4),
            prop::collection::vec(open, 0..4),
            prop::collection::vec("(read|write|openat|close)", 0..4),
            prop::collection::vec("(CHOWN|KILL|NET_RAW)", 0..3),
            prop::collection::vec(peer.clone(), 0..3),
            prop::collection::vec(peer, 0..3),
            (
                prop::option::of(0i64..1000),
                prop::option::of(1000i64..2000),
                any::<bool>(),
                0u64..5,
                prop::collection::vec("node-[ab]", 0..2),
                prop::option::of("app:[12]"),
                any::<bool>(),
            ),
        )
            .prop_map(|(execs, opens, syscalls, caps, egress, ingress, l)| {
                let mut p = Profile::new(DIGEST.parse().unwrap());
                p.execs = execs;
                p.opens = opens;
                p.syscalls = syscalls;
                p.capabilities = caps;
                p.network.egress = egress;
                p.network.ingress = ingress;
                p.learning.start = l.0.map(|s| jiff::Timestamp::from_second(s).unwrap());
                p.learning.end = l.1.map(|s| jiff::Timestamp::from_second(s).unwrap());
                p.learning.completeness = if l.2 {
                    Completeness::Complete
                } else {
                    Completeness::Partial
                };
                p.learning.observed_containers = l.3;
                p.learning.nodes = l.4;
                p.image.reference = l.5;
                if l.6 {
                    p.learning.truncated = vec![Category::Opens];
                    p.learning.completeness = Completeness::Partial;
                }
                p
            })
    }

    proptest! {
        #[test]
        fn merge_is_commutative(a in arb_profile(), b in arb_profile()) {
            prop_assert_eq!(merge(&a, &b).unwrap(), merge(&b, &a).unwrap());
        }

        #[test]
        fn merge_is_associative(a in arb_profile(), b in arb_profile(), c in arb_profile()) {
            let left = merge(&merge(&a, &b).unwrap(), &c).unwrap();
            let right = merge(&a, &merge(&b, &c).unwrap()).unwrap();
            prop_assert_eq!(left, right);
        }

        #[test]
        fn merge_is_idempotent(a in arb_profile()) {
            prop_assert_eq!(merge(&a, &a).unwrap(), a.normalized());
        }

        #[test]
        fn merge_keeps_every_entry(a in arb_profile(), b in arb_profile()) {
            let m = merge(&a, &b).unwrap();
            for e in a.execs.iter().chain(&b.execs) {
                prop_assert!(m.execs.contains(e));
            }
            for o in a.opens.iter().chain(&b.opens) {
                let kept = m.opens.iter().find(|x| x.path == o.path).unwrap();
                prop_assert!(kept.flags.contains(o.flags));
            }
        }
    }

    #[test]
    fn different_images_do_not_merge() {
        let a = Profile::new(DIGEST.parse().unwrap());
        let b = Profile::new(DIGEST.replace('0', "f").parse().unwrap());
        assert!(matches!(merge(&a, &b), Err(MergeError::DifferentImage(..))));
    }

    #[test]
    fn partial_wins_and_window_widens() {
        let mut a = Profile::new(DIGEST.parse().unwrap());
        a.learning.completeness = Completeness::Complete;
        a.learning.start = Some(jiff::Timestamp::from_second(10).unwrap());
        a.learning.end = Some(jiff::Timestamp::from_second(20).unwrap());
        let mut b = Profile::new(DIGEST.parse().unwrap());
        b.learning.start = Some(jiff::Timestamp::from_second(5).unwrap());
        let m = merge(&a, &b).unwrap();
        assert_eq!(m.learning.completeness, Completeness::Partial);
        assert_eq!(m.learning.start.unwrap().as_second(), 5);
        assert_eq!(m.learning.end.unwrap().as_second(), 20);
    }
}
