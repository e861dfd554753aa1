//! Which container an event belongs to, and which image that container runs.
//!
//! The kernel gives each event the cgroup v2 id of its task: the inode of the
//! cgroup's directory. [`CgroupIndex`] maps ids to directories by walking the
//! cgroup2 mount (again when an unknown id appears: a container just started), and
//! [`container_id`] reads the container id from the directory name as containerd,
//! CRI-O, podman and docker write it. [`ImageResolver`] asks the runtime which
//! image digest the container runs.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::pods::{ContainerImage, SharedPods, digest_of_reference};

/// The container id in a cgroup path, as the common runtimes name their cgroups:
///
/// - podman: `…/libpod-<id>` (cgroupfs) or `…/libpod-<id>.scope` (systemd);
/// - docker: `…/docker-<id>.scope` or `…/docker/<id>`;
/// - containerd (Kubernetes): `…/cri-containerd-<id>.scope`, or `…/kubepods/…/<id>`;
/// - CRI-O: `…/crio-<id>.scope`.
///
/// Runtime helpers (`libpod-conmon-…`, `crio-conmon-…`) and anything else are not
/// containers. A container's sub-cgroups (systemd inside, `…/<id>/init.scope`)
/// belong to it.
pub fn container_id(cgroup_path: &str) -> Option<String> {
    for component in cgroup_path.rsplit('/') {
        let name = component.strip_suffix(".scope").unwrap_or(component);
        if name.contains("conmon") {
            return None;
        }
        let id = [
            "libpod-",
            "docker-",
            "cri-containerd-",
            "crio-",
            "containerd-",
        ]
        .iter()
        .find_map(|prefix| name.strip_prefix(prefix))
        .unwrap_or(name);
        if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Some(id.to_ascii_lowercase());
        }
    }
    None
}

/// Where the cgroup v2 hierarchy is mounted: `/sys/fs/cgroup` on unified hosts,
/// `/sys/fs/cgroup/unified` on hybrid ones (as here).
pub fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let fstype = right.split_whitespace().next()?;
        let mount_point = left.split_whitespace().nth(4)?;
        (fstype == "cgroup2").then(|| PathBuf::from(mount_point))
    })
}

/// cgroup id → path (relative to the cgroup2 mount), refreshed on demand.
pub struct CgroupIndex {
    root: PathBuf,
    paths: HashMap<u64, String>,
}

impl CgroupIndex {
    /// An index of the hierarchy at `root`, walked once now.
    pub fn new(root: &Path) -> CgroupIndex {
        let mut index = CgroupIndex {
            root: root.to_path_buf(),
            paths: HashMap::new(),
        };
        index.rescan();
        index
    }

    /// Walks the hierarchy again.
    pub fn rescan(&mut self) {
        let mut paths = HashMap::new();
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(meta) = std::fs::metadata(&dir) else {
                continue;
            };
            let relative = dir
                .strip_prefix(&self.root)
                .map(|p| format!("/{}", p.display()))
                .unwrap_or_default();
            paths.insert(meta.ino(), relative);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(entry.path());
                }
            }
        }
        self.paths = paths;
    }

    /// The path of a cgroup id, walking again once when it is unknown.
    pub fn path(&mut self, cgroup_id: u64) -> Option<&str> {
        if !self.paths.contains_key(&cgroup_id) {
            self.rescan();
        }
        self.paths.get(&cgroup_id).map(String::as_str)
    }

    /// The container ids of every container cgroup present now.
    pub fn containers(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .paths
            .values()
            .filter_map(|p| container_id(p))
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

/// Reads `podman container inspect --format json` output.
///
/// A container started by digest (`repo@sha256:…`) runs exactly that registry
/// manifest, so its `ImageName` digest is the one. `ImageDigest` is podman's own
/// copy of the manifest, which differs from the registry's when podman
/// recompressed or converted it on push or pull: used only when the container was
/// started by tag.
pub fn parse_podman_inspect(json: &[u8]) -> Option<ContainerImage> {
    let value: serde_json::Value = serde_json::from_slice(json).ok()?;
    let first = value.as_array()?.first()?;
    let name = first.get("ImageName").and_then(|v| v.as_str());
    let digest = name.and_then(digest_of_reference).or_else(|| {
        first
            .get("ImageDigest")
            .and_then(|v| v.as_str())
            .and_then(|d| imprint_schema::Digest::parse(d).ok())
    })?;
    Some(ContainerImage {
        digest,
        reference: name.map(str::to_string),
        namespace: None,
        pod: None,
    })
}

/// Reads `podman events --format json` lines for a container: the image it was
/// created from, when that names a digest. A short-lived `--rm` container is
/// gone before `podman container inspect` can be asked; its events remain.
pub fn parse_podman_events(json_lines: &[u8]) -> Option<ContainerImage> {
    String::from_utf8_lossy(json_lines)
        .lines()
        .find_map(|line| {
            let event: serde_json::Value = serde_json::from_str(line).ok()?;
            let image = event.get("Image")?.as_str()?;
            Some(ContainerImage {
                digest: digest_of_reference(image)?,
                reference: Some(image.to_string()),
                namespace: None,
                pod: None,
            })
        })
}

/// Reads `crictl inspect <id>` output (CRI `ContainerStatus` with its info).
pub fn parse_cri_inspect(json: &[u8]) -> Option<ContainerImage> {
    let value: serde_json::Value = serde_json::from_slice(json).ok()?;
    let status = value.get("status")?;
    let image_ref = status.get("imageRef")?.as_str()?;
    Some(ContainerImage {
        digest: digest_of_reference(image_ref)?,
        reference: status
            .pointer("/image/image")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        namespace: status
            .pointer("/labels/io.kubernetes.pod.namespace")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        pod: status
            .pointer("/labels/io.kubernetes.pod.name")
            .and_then(|v| v.as_str())
            .map(str::to_string),
    })
}

/// Which runtime to ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// `podman container inspect`.
    Podman,
    /// `crictl inspect` (containerd, CRI-O).
    Cri,
}

/// Asks the cluster, then runtimes, which image a container runs, and remembers
/// the runtimes' answers.
pub struct ImageResolver {
    runtimes: Vec<Runtime>,
    known: HashMap<String, Option<ContainerImage>>,
    cluster: Option<SharedPods>,
}

impl ImageResolver {
    /// A resolver asking these runtimes, in order.
    pub fn new(runtimes: Vec<Runtime>) -> ImageResolver {
        ImageResolver {
            runtimes,
            known: HashMap::new(),
            cluster: None,
        }
    }

    /// Also asks the pod watcher's index, first.
    pub fn with_cluster(mut self, pods: SharedPods) -> ImageResolver {
        self.cluster = Some(pods);
        self
    }

    /// Whether a pod watcher is asked (it may name a container later).
    pub fn watches_cluster(&self) -> bool {
        self.cluster.is_some()
    }

    /// What the cluster says now. Not remembered when absent: a pod's status
    /// names its container a moment after the container starts.
    pub fn from_cluster(&self, container_id: &str) -> Option<ContainerImage> {
        let pods = self.cluster.as_ref()?;
        let pods = pods.read().unwrap_or_else(|p| p.into_inner());
        pods.get(container_id).cloned()
    }

    /// Records what the cluster says (from pod statuses).
    pub fn learn(&mut self, images: HashMap<String, ContainerImage>) {
        for (id, image) in images {
            self.known.insert(id, Some(image));
        }
    }

    /// The image of a container; `None` when no runtime knows it. Negative answers
    /// are remembered too: a container the runtime does not know will not become
    /// known, and asking costs a process per event.
    pub fn resolve(&mut self, container_id: &str) -> Option<ContainerImage> {
        if let Some(found) = self.from_cluster(container_id) {
            return Some(found);
        }
        if let Some(known) = self.known.get(container_id) {
            return known.clone();
        }
        let mut found = None;
        for runtime in &self.runtimes {
            let (program, args): (&str, &[&str]) = match runtime {
                Runtime::Podman => ("podman", &["container", "inspect", "--format", "json"]),
                Runtime::Cri => ("crictl", &["inspect", "--output", "json"]),
            };
            let ask = |program: &str, args: &[&str]| {
                std::process::Command::new(program)
                    .args(args)
                    .stdin(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .output()
                    .ok()
                    .filter(|o| o.status.success())
                    .map(|o| o.stdout)
            };
            let mut full: Vec<&str> = args.to_vec();
            full.push(container_id);
            found = match runtime {
                Runtime::Podman => ask(program, &full)
                    .and_then(|out| parse_podman_inspect(&out))
                    .or_else(|| {
                        let filter = format!("container={container_id}");
                        ask(
                            "podman",
                            &[
                                "events",
                                "--stream=false",
                                "--since",
                                "24h",
                                "--filter",
                                &filter,
                                "--filter",
                                "event=init",
                                "--format",
                                "json",
                            ],
                        )
                        .and_then(|out| parse_podman_events(&out))
                    }),
                Runtime::Cri => ask(program, &full).and_then(|out| parse_cri_inspect(&out)),
            };
            if found.is_some() {
                break;
            }
        }
        self.known.insert(container_id.to_string(), found.clone());
        found
    }
}

#[cfg(test)]
mod tests;
