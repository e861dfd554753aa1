//! A content-addressed cache of verified blobs and manifests on disk:
//! `ROOT/blobs/sha256/<hex>`, as an OCI image layout stores them.
//!
//! Content is addressed by its digest, so an entry never goes stale; it is checked
//! again on every read, so a corrupted or planted file is dropped, not believed.

use std::io;
use std::path::{Path, PathBuf};

use imprint_schema::sha256_digest;

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

    /// Where `digest` lives; `None` for anything but `sha256:<64 hex>`, so a digest
    /// can never name a path outside the cache.
    fn path(&self, digest: &str) -> Option<PathBuf> {
        let hex = digest.strip_prefix("sha256:")?;
        let ok = hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| self.root.join("blobs/sha256").join(hex))
    }

    /// The content of `digest`, if cached, intact and at most `limit` bytes.
    pub fn get(&self, digest: &str, limit: u64) -> Option<Vec<u8>> {
        let path = self.path(digest)?;
        let meta = std::fs::metadata(&path).ok()?;
        if meta.len() > limit {
            return None;
        }
        let data = std::fs::read(&path).ok()?;
        if sha256_digest(&data) != digest {
            // Corrupted or planted: forget it.
            let _ = std::fs::remove_file(&path);
            return None;
        }
        Some(data)
    }

    /// Stores `data` under its digest (written to a temporary file, then renamed).
    pub fn put(&self, data: &[u8]) -> io::Result<String> {
        let digest = sha256_digest(data);
        let path = self.path(&digest).expect("sha256 digests are valid");
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
        let path = cache.path(&digest).unwrap();
        std::fs::write(&path, b"evil").unwrap();
        assert_eq!(cache.get(&digest, 100), None);
        assert!(!path.exists());
        // Digests cannot escape the cache.
        assert!(cache.path("sha256:../../etc/passwd").is_none());
        assert!(cache.get("md5:abc", 100).is_none());
    }
}
