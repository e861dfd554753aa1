//! What the resolver keeps to judge an enforced artifact without its registry:
//! the signed material that verified it (`STATE_DIR/evidence/sha256-<hex>.json`,
//! 0600), judged again under the policy in force at every start, and when it
//! last verified online, against which `--max-offline-age` is measured.

use std::path::{Path, PathBuf};
use std::time::Duration;

use imprint_oci::Evidence;
use imprint_schema::Digest;
use jiff::Timestamp;

/// Largest evidence file read back (signatures and attestations are small).
const MAX_EVIDENCE_BYTES: u64 = 4 << 20;

fn path(state_dir: &Path, artifact: &Digest) -> PathBuf {
    state_dir
        .join("evidence")
        .join(format!("{}.json", artifact.tag_form()))
}

/// Keeps the evidence of `artifact` (atomically; a failure is logged: the
/// artifact then waits for the registry at the next start).
pub(super) fn save(state_dir: &Path, artifact: &Digest, evidence: &Evidence) {
    let path = path(state_dir, artifact);
    let bytes = serde_json::to_vec(evidence).expect("evidence serializes");
    let written = imprint_fs::create_private_dir(&state_dir.join("evidence"))
        .and_then(|()| imprint_fs::write_atomic(&path, &bytes, imprint_fs::PRIVATE));
    if let Err(e) = written {
        eprintln!("imprint-agent: cannot write {}: {e}", path.display());
    }
}

/// The evidence kept for `artifact`, if any and readable.
pub(super) fn load(state_dir: &Path, artifact: &Digest) -> Option<Evidence> {
    let path = path(state_dir, artifact);
    // Not through a link planted there: only what the agent itself wrote.
    let size = std::fs::symlink_metadata(&path).ok()?.len();
    if size > MAX_EVIDENCE_BYTES {
        return None;
    }
    let bytes = imprint_fs::read_no_follow(&path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Why a profile last verified online at `checked` may not be enforced at `now`
/// any more under `max`, if so. Without a limit, or without a record, nothing.
pub(super) fn offline_too_long(
    checked: Option<&Timestamp>,
    max: Option<Duration>,
    now: Timestamp,
) -> Option<String> {
    let (checked, max) = (checked?, max?);
    let age = now.duration_since(*checked);
    let max_signed = jiff::SignedDuration::try_from(max).ok()?;
    (age > max_signed).then(|| {
        format!(
            "not verified against its registry since {checked} ({}s ago), more than --max-offline-age {}s",
            age.as_secs(),
            max.as_secs()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offline_age_counts_only_with_a_limit_and_a_record() {
        let checked: Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
        let later: Timestamp = "2026-12-02T00:00:01Z".parse().unwrap();
        let day = Duration::from_secs(86_400);
        let why = offline_too_long(Some(&checked), Some(day), later).unwrap();
        assert!(
            why.contains("86401s ago") && why.contains("86400s"),
            "{why}"
        );
        assert_eq!(offline_too_long(Some(&checked), Some(day * 2), later), None);
        assert_eq!(offline_too_long(Some(&checked), None, later), None);
        assert_eq!(offline_too_long(None, Some(day), later), None);
    }

    #[test]
    fn evidence_is_kept_private_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let artifact = Digest::sha256_of(b"artifact");
        assert_eq!(load(dir.path(), &artifact), None);
        let evidence = Evidence::default();
        save(dir.path(), &artifact, &evidence);
        assert_eq!(load(dir.path(), &artifact), Some(evidence));
        let mode = std::fs::metadata(path(dir.path(), &artifact))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(path(dir.path(), &artifact), b"{not json").unwrap();
        assert_eq!(load(dir.path(), &artifact), None);
    }
}
