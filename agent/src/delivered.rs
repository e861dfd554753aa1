//! Profiles delivered through GitOps: `Profile` objects that Flux or Argo CD
//! apply to the cluster, or files in a profile directory (Flux's extracted
//! tar+gzip layer, a ConfigMap volume, a copy on a single host).
//!
//! A delivered profile is never enforced as it stands: nothing in a Git checkout
//! or an API object proves who wrote it. It *pins* a choice instead. For its
//! image digest the resolver enforces only an artifact that verifies under the
//! policy and whose profile has the delivered content (the sha256 of the
//! canonical JSON, which is the artifact's layer 0 digest). An annotation
//! `imprint.dev/artifact: oci://registry/repo@sha256:…` also names where that
//! artifact is; without it the usual discovery finds it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use imprint_schema::Digest;

/// The annotation naming the signed artifact a delivered profile came from.
pub const ARTIFACT_ANNOTATION: &str = "imprint.dev/artifact";

/// Largest delivered document read.
const MAX_DOCUMENT_BYTES: u64 = 16 << 20;
/// How deep a profile directory is searched.
const MAX_DEPTH: usize = 4;

/// What one delivered profile pins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The image digest it is for.
    pub image_digest: Digest,
    /// The digest of its canonical JSON.
    pub content_digest: Digest,
    /// The artifact named by [`ARTIFACT_ANNOTATION`], when given.
    pub artifact: Option<String>,
}

/// Why a delivered document is not used.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Not a valid profile.
    #[error(transparent)]
    Document(#[from] imprint_schema::DocumentError),
    /// The artifact annotation does not pin a digest.
    #[error(
        "annotation {ARTIFACT_ANNOTATION}: {0:?} must pin a digest (oci://registry/repo@sha256:…)"
    )]
    Artifact(String),
}

/// Reads a delivered profile document (YAML or JSON).
pub fn delivery_of(bytes: &[u8]) -> Result<Delivery, DeliveryError> {
    let profile = imprint_schema::parse_profile(bytes)?;
    let artifact = profile
        .metadata
        .as_ref()
        .and_then(|m| m.annotations.get(ARTIFACT_ANNOTATION))
        .cloned();
    if let Some(a) = &artifact
        && !a.strip_prefix("oci://").unwrap_or(a).contains("@sha256:")
    {
        return Err(DeliveryError::Artifact(a.clone()));
    }
    Ok(Delivery {
        content_digest: imprint_schema::digest(&profile),
        image_digest: profile.image.digest,
        artifact,
    })
}

/// Every delivered profile, by where it came from (`file:<path>`, `Profile/<name>`).
#[derive(Debug, Default)]
pub struct Deliveries {
    by_source: BTreeMap<String, Delivery>,
    generation: u64,
    listed: BTreeSet<String>,
}

/// Deliveries shared between their watchers and the resolver.
pub type SharedDeliveries = Arc<Mutex<Deliveries>>;

/// The deliveries, even after a thread panicked holding them: every change to
/// them is a single map operation, so they are never left half-written.
pub fn lock(shared: &Mutex<Deliveries>) -> MutexGuard<'_, Deliveries> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether content is what `allowed` (the contents delivered for its digest)
/// admits: anything when nothing is delivered.
pub fn admits(allowed: &[Digest], content: &Digest) -> bool {
    allowed.is_empty() || allowed.iter().any(|a| a == content)
}

impl Deliveries {
    /// Records what a source delivers.
    pub fn set(&mut self, source: &str, delivery: Delivery) {
        if self.by_source.get(source) != Some(&delivery) {
            self.by_source.insert(source.to_string(), delivery);
            self.generation += 1;
        }
    }

    /// Forgets a source.
    pub fn remove(&mut self, source: &str) {
        if self.by_source.remove(source).is_some() {
            self.generation += 1;
        }
    }

    /// Forgets the sources under `prefix` that are not in `keep`.
    pub fn retain_under(&mut self, prefix: &str, keep: &BTreeSet<String>) {
        let before = self.by_source.len();
        self.by_source
            .retain(|s, _| !s.starts_with(prefix) || keep.contains(s));
        if self.by_source.len() != before {
            self.generation += 1;
        }
    }

    /// The sources under a prefix.
    pub fn sources_under(&self, prefix: &str) -> Vec<String> {
        self.by_source
            .keys()
            .filter(|s| s.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// What is delivered for an image digest.
    pub fn for_digest(&self, image_digest: &Digest) -> Vec<Delivery> {
        self.for_any(std::slice::from_ref(image_digest))
    }

    /// What is delivered for any of these digests (a platform manifest and the
    /// indexes that stand for it on this node).
    pub fn for_any(&self, image_digests: &[Digest]) -> Vec<Delivery> {
        self.by_source
            .values()
            .filter(|d| image_digests.contains(&d.image_digest))
            .cloned()
            .collect()
    }

    /// Records that a kind of source (`Profile/`) has been listed once in full.
    pub fn mark_listed(&mut self, prefix: &str) {
        self.listed.insert(prefix.to_string());
    }

    /// Whether a kind of source has been listed once in full.
    pub fn is_listed(&self, prefix: &str) -> bool {
        self.listed.contains(prefix)
    }

    /// The distinct contents delivered for an image digest, sorted.
    pub fn contents_for(&self, image_digest: &Digest) -> Vec<Digest> {
        self.contents_for_any(std::slice::from_ref(image_digest))
    }

    /// The distinct contents delivered for any of these digests.
    pub fn contents_for_any(&self, image_digests: &[Digest]) -> Vec<Digest> {
        let mut contents: Vec<Digest> = self
            .for_any(image_digests)
            .into_iter()
            .map(|d| d.content_digest)
            .collect();
        contents.sort();
        contents.dedup();
        contents
    }

    /// Changes with every change, so the resolver knows to look again.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// How many are delivered.
    pub fn len(&self) -> usize {
        self.by_source.len()
    }

    /// Nothing delivered.
    pub fn is_empty(&self) -> bool {
        self.by_source.is_empty()
    }
}

/// Reads a profile directory into `deliveries`: `*.yaml`, `*.yml` and `*.json`
/// files, in subdirectories too; names starting with `.` are skipped (a
/// ConfigMap volume's `..data` holds the same files again). A file that no
/// longer parses keeps what it delivered before; a file that is gone delivers
/// nothing. Returns what was wrong, a line per file, for the log.
pub fn scan_dir(dir: &Path, deliveries: &Mutex<Deliveries>) -> Vec<String> {
    // One spelling of the directory, so sources compare whatever the flag said.
    let dir: PathBuf = dir.components().collect();
    let dir = dir.as_path();
    let mut files = Vec::new();
    let mut problems = Vec::new();
    let mut unreadable = Vec::new();
    collect(dir, 0, &mut files, &mut problems, &mut unreadable);
    let prefix = format!("file:{}/", dir.display());
    let mut seen = BTreeSet::new();
    let mut parsed = Vec::new();
    for file in files {
        let source = format!("file:{}", file.display());
        seen.insert(source.clone());
        let read = std::fs::File::open(&file).and_then(|f| {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(
                &mut std::io::Read::take(f, MAX_DOCUMENT_BYTES + 1),
                &mut bytes,
            )?;
            Ok(bytes)
        });
        match read {
            Ok(bytes) if bytes.len() as u64 > MAX_DOCUMENT_BYTES => {
                problems.push(format!(
                    "{}: larger than {MAX_DOCUMENT_BYTES} bytes",
                    file.display()
                ));
            }
            Ok(bytes) => match delivery_of(&bytes) {
                Ok(d) => parsed.push((source, d)),
                Err(e) => problems.push(format!("{}: {e}", file.display())),
            },
            Err(e) => problems.push(format!("{}: {e}", file.display())),
        }
    }
    let mut deliveries = lock(deliveries);
    // What sits under a directory that could not be read is kept, not forgotten:
    // a passing I/O error must not widen the choice.
    for source in deliveries.sources_under(&prefix) {
        if unreadable
            .iter()
            .any(|d| source.starts_with(&format!("file:{}/", d.display())))
        {
            seen.insert(source);
        }
    }
    deliveries.retain_under(&prefix, &seen);
    for (source, d) in parsed {
        deliveries.set(&source, d);
    }
    problems
}

fn collect(
    dir: &Path,
    depth: usize,
    files: &mut Vec<PathBuf>,
    problems: &mut Vec<String>,
    unreadable: &mut Vec<PathBuf>,
) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            problems.push(format!("{}: {e}", dir.display()));
            unreadable.push(dir.to_path_buf());
            return;
        }
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        // Directories are entered only as themselves: a symlinked directory could
        // loop or lead anywhere. A symlinked file (a ConfigMap volume's) is read.
        if kind.is_dir() {
            if depth < MAX_DEPTH {
                collect(&path, depth + 1, files, problems, unreadable);
            }
        } else if [".yaml", ".yml", ".json"].iter().any(|s| name.ends_with(s)) {
            // Regular files only: a FIFO or device would block or never end.
            match std::fs::metadata(&path) {
                Ok(m) if m.is_file() => files.push(path),
                Ok(_) => problems.push(format!("{}: not a regular file", path.display())),
                Err(e) => problems.push(format!("{}: {e}", path.display())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(digest_byte: &str, exec: &str) -> String {
        format!(
            "apiVersion: imprint.dev/v1\nkind: Profile\nmetadata:\n  name: x\nimage:\n  digest: sha256:{}\nlearning:\n  completeness: complete\nexecs:\n- path: {exec}\n",
            digest_byte.repeat(64)
        )
    }

    #[test]
    fn a_delivery_pins_the_canonical_content() {
        let d = delivery_of(profile("a", "/bin/cat").as_bytes()).unwrap();
        assert_eq!(
            d.image_digest,
            format!("sha256:{}", "a".repeat(64)).as_str()
        );
        let p = imprint_schema::parse_profile(profile("a", "/bin/cat").as_bytes()).unwrap();
        assert_eq!(d.content_digest, imprint_schema::digest(&p));
        assert_eq!(d.artifact, None);
        // Metadata is not behaviour: another name, the same pin.
        let renamed = profile("a", "/bin/cat").replace("name: x", "name: y");
        assert_eq!(delivery_of(renamed.as_bytes()).unwrap(), d);
        let other = delivery_of(profile("a", "/bin/ls").as_bytes()).unwrap();
        assert_ne!(other.content_digest, d.content_digest);
    }

    #[test]
    fn the_artifact_annotation_must_pin_a_digest() {
        let with = |a: &str| {
            profile("a", "/bin/cat").replace(
                "  name: x\n",
                &format!("  name: x\n  annotations:\n    imprint.dev/artifact: {a}\n"),
            )
        };
        let pinned = format!("oci://r.example/p@sha256:{}", "b".repeat(64));
        assert_eq!(
            delivery_of(with(&pinned).as_bytes()).unwrap().artifact,
            Some(pinned)
        );
        let e = delivery_of(with("oci://r.example/p:latest").as_bytes()).unwrap_err();
        assert!(e.to_string().contains("must pin a digest"), "{e}");
    }

    #[test]
    fn a_directory_scan_keeps_the_last_good_content_and_forgets_removed_files() {
        let dir = tempfile::tempdir().unwrap();
        let deliveries = Mutex::new(Deliveries::default());
        std::fs::create_dir_all(dir.path().join("shop/web")).unwrap();
        std::fs::create_dir_all(dir.path().join("..data")).unwrap();
        std::fs::write(
            dir.path().join("shop/web/profile.yaml"),
            profile("a", "/bin/cat"),
        )
        .unwrap();
        std::fs::write(dir.path().join("db.yaml"), profile("b", "/bin/ls")).unwrap();
        std::fs::write(dir.path().join("..data/db.yaml"), profile("b", "/bin/ls")).unwrap();
        std::fs::write(dir.path().join("README.md"), "not a profile").unwrap();
        assert!(scan_dir(dir.path(), &deliveries).is_empty());
        let g = deliveries.lock().unwrap().generation();
        assert_eq!(deliveries.lock().unwrap().len(), 2);
        let a: Digest = format!("sha256:{}", "a".repeat(64)).parse().unwrap();
        let pinned = deliveries.lock().unwrap().for_digest(&a);
        assert_eq!(pinned.len(), 1);

        // Unchanged: nothing to do.
        assert!(scan_dir(dir.path(), &deliveries).is_empty());
        assert_eq!(deliveries.lock().unwrap().generation(), g);

        // Broken: named, and the last good pin stands.
        std::fs::write(dir.path().join("shop/web/profile.yaml"), "kind: [").unwrap();
        let problems = scan_dir(dir.path(), &deliveries);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].contains("shop/web/profile.yaml"),
            "{problems:?}"
        );
        assert_eq!(deliveries.lock().unwrap().for_digest(&a), pinned);

        // Gone: forgotten.
        std::fs::remove_file(dir.path().join("shop/web/profile.yaml")).unwrap();
        assert!(scan_dir(dir.path(), &deliveries).is_empty());
        assert!(deliveries.lock().unwrap().for_digest(&a).is_empty());
        assert!(deliveries.lock().unwrap().generation() > g);
    }

    #[test]
    fn hostile_directories_neither_loop_nor_block_and_spellings_agree() {
        let dir = tempfile::tempdir().unwrap();
        let deliveries = Mutex::new(Deliveries::default());
        std::fs::write(dir.path().join("web.yaml"), profile("a", "/bin/cat")).unwrap();
        // A symlink loop, a link to /, and a FIFO named like a profile.
        std::os::unix::fs::symlink(dir.path(), dir.path().join("loop")).unwrap();
        std::os::unix::fs::symlink("/", dir.path().join("root")).unwrap();
        let fifo = dir.path().join("pipe.yaml");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let problems = scan_dir(dir.path(), &deliveries);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("pipe.yaml") && problems[0].contains("not a regular file"));
        assert_eq!(deliveries.lock().unwrap().len(), 1);
        // The same directory spelt with a trailing slash: a removed file is forgotten.
        let slashed = PathBuf::from(format!("{}/", dir.path().display()));
        scan_dir(&slashed, &deliveries);
        assert_eq!(deliveries.lock().unwrap().len(), 1);
        std::fs::remove_file(dir.path().join("web.yaml")).unwrap();
        scan_dir(&slashed, &deliveries);
        assert!(deliveries.lock().unwrap().is_empty());
    }

    #[test]
    fn a_directory_that_cannot_be_read_keeps_its_pins() {
        let dir = tempfile::tempdir().unwrap();
        let deliveries = Mutex::new(Deliveries::default());
        let sub = dir.path().join("shop");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("web.yaml"), profile("a", "/bin/cat")).unwrap();
        std::fs::write(dir.path().join("db.yaml"), profile("b", "/bin/ls")).unwrap();
        scan_dir(dir.path(), &deliveries);
        assert_eq!(deliveries.lock().unwrap().len(), 2);
        // The directory cannot be listed for a moment (here: it is not one):
        // every pin under it stays.
        let moved = dir.path().with_extension("moved");
        std::fs::rename(dir.path(), &moved).unwrap();
        std::fs::write(dir.path(), "").unwrap();
        let problems = scan_dir(dir.path(), &deliveries);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(deliveries.lock().unwrap().len(), 2);
        std::fs::remove_file(dir.path()).unwrap();
        std::fs::rename(&moved, dir.path()).unwrap();
    }

    #[test]
    fn an_oversized_file_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let deliveries = Mutex::new(Deliveries::default());
        let big = vec![b' '; (MAX_DOCUMENT_BYTES + 10) as usize];
        std::fs::write(dir.path().join("huge.yaml"), big).unwrap();
        let problems = scan_dir(dir.path(), &deliveries);
        assert!(
            problems[0].contains("huge.yaml") && problems[0].contains("larger than"),
            "{problems:?}"
        );
        assert!(deliveries.lock().unwrap().is_empty());
    }
}
