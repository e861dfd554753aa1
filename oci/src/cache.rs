//! A content-addressed cache of verified blobs and manifests on disk:
//! `ROOT/blobs/<algorithm>/<hex>`, as an OCI image layout stores them.
//!
//! Content is addressed by its digest, so an entry never goes stale; it is checked
//! again on every read, so a corrupted or planted file is dropped, not believed.
//! The cache is the agent's own: directories 0700, files 0600, written atomically,
//! and a symbolic link planted in it is neither read through nor written through.

use std::io;
use std::path::{Path, PathBuf};

use imprint_schema::Digest;

/// A directory of content by digest.
#[derive(Debug, Clone)]
pub struct BlobCache {
    root: PathBuf,
}

impl BlobCache {
    /// Opens (creating) a cache under `root`; its directories are made 0700, and
    /// one that is a symbolic link is refused.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<BlobCache> {
        let root = root.into();
        for dir in [root.clone(), root.join("blobs"), root.join("blobs/sha256")] {
            imprint_fs::create_private_dir(&dir)?;
        }
        Ok(BlobCache { root })
    }

    /// Where `digest` lives. A [`Digest`] is an algorithm name and hex digits
    /// only, so it can never name a path outside the cache.
    fn path(&self, digest: &Digest) -> PathBuf {
        (self.root.join("blobs"))
            .join(digest.algorithm().name())
            .join(digest.hex())
    }

    /// The content of `digest`, if cached, intact and at most `limit` bytes.
    pub fn get(&self, digest: &Digest, limit: u64) -> Option<Vec<u8>> {
        let path = self.path(digest);
        let meta = std::fs::symlink_metadata(&path).ok()?;
        if !meta.is_file() {
            // Planted (a link, a FIFO): forget it, so a pull can store the content.
            let _ = std::fs::remove_file(&path);
            return None;
        }
        if meta.len() > limit {
            return None;
        }
        let data = imprint_fs::read_no_follow(&path).ok()?;
        if !digest.matches(&data) {
            // Corrupted or planted: forget it.
            let _ = std::fs::remove_file(&path);
            return None;
        }
        Some(data)
    }

    /// Stores `data` under its digest (written to a temporary file, then renamed).
    pub fn put(&self, data: &[u8]) -> io::Result<Digest> {
        let digest = Digest::sha256_of(data);
        let path = self.path(&digest);
        // A regular file is there: content by digest, checked when read. A link
        // there is replaced by the rename, not written through.
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            return Ok(digest);
        }
        imprint_fs::write_atomic(&path, data, imprint_fs::PRIVATE)?;
        Ok(digest)
    }

    /// The cache's root.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_checks_and_drops_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::open(dir.path()).unwrap();
        let digest = cache.put(b"hello").unwrap();
        assert_eq!(cache.get(&digest, 100).as_deref(), Some(&b"hello"[..]));
        assert_eq!(cache.get(&digest, 2), None, "over the bound");
        // A planted file under a digest it does not hash to is not believed.
        let path = cache.path(&digest);
        std::fs::write(&path, b"evil").unwrap();
        assert_eq!(cache.get(&digest, 100), None);
        assert!(!path.exists());
        // A digest that could name a path outside the cache is not a digest.
        assert!(Digest::parse("sha256:../../etc/passwd").is_err());
    }

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn entries_are_private_and_a_planted_link_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cache");
        let cache = BlobCache::open(&root).unwrap();
        for d in ["", "blobs", "blobs/sha256"] {
            assert_eq!(mode(&root.join(d)), 0o700, "{d}");
        }
        let digest = cache.put(b"profile").unwrap();
        assert_eq!(mode(&cache.path(&digest)), 0o600);

        // A link at an entry, to a file holding that very content: not believed,
        // not read through; the next put writes a file of its own in its place.
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"content").unwrap();
        std::fs::set_permissions(&victim, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        let planted = Digest::sha256_of(b"content");
        std::os::unix::fs::symlink(&victim, cache.path(&planted)).unwrap();
        assert_eq!(cache.get(&planted, 100), None);
        assert!(
            std::fs::symlink_metadata(cache.path(&planted)).is_err(),
            "dropped"
        );
        std::os::unix::fs::symlink(&victim, cache.path(&planted)).unwrap();
        cache.put(b"content").unwrap();
        let entry = std::fs::symlink_metadata(cache.path(&planted)).unwrap();
        assert!(entry.is_file());
        assert_eq!(cache.get(&planted, 100).as_deref(), Some(&b"content"[..]));
        assert_eq!(std::fs::read(&victim).unwrap(), b"content");
        assert_eq!(mode(&victim), 0o644, "the link's target is untouched");

        // A cache directory that is a link is refused.
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.path().join("linked")).unwrap();
        let e = BlobCache::open(dir.path().join("linked")).unwrap_err();
        assert!(e.to_string().contains("a symbolic link"), "{e}");
        assert!(std::fs::read_dir(&elsewhere).unwrap().next().is_none());
    }
}
