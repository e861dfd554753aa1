//! A content-addressed cache of verified blobs and manifests on disk:
//! `ROOT/blobs/<algorithm>/<hex>`, as an OCI image layout stores them.
//!
//! Content is addressed by its digest, so an entry never goes stale; it is checked
//! again on every read, so a corrupted or planted file is dropped, not believed.

use std::io;
use std::path::{Path, PathBuf};

use imprint_schema::Digest;

/// A directory of content by digest.
#[derive(Debug, Clone)]
pub struct BlobCache {
    root: PathBuf,
}

impl BlobCache {
    /// Opens (creating) a cache under `root`.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<BlobCache> {
        let root = root.into();
        std::fs::create_dir_all(root.join("blobs/sha256"))?;
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
        let meta = std::fs::metadata(&path).ok()?;
        if meta.len() > limit {
            return None;
        }
        let data = std::fs::read(&path).ok()?;
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
        if path.exists() {
            return Ok(digest);
        }
        imprint_fs::write_atomic(&path, data, imprint_fs::PUBLIC)?;
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
}
