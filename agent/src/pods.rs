//! The pods this node runs, as attribution needs them: container id → image
//! digest, reference, namespace and pod. Pure: the watcher that keeps it
//! current is in `kubernetes.rs`; pod lists from a file are read here too.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use imprint_schema::Digest;
use k8s_openapi::api::core::v1::Pod;

/// The image a container runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerImage {
    /// The image manifest digest.
    pub digest: Digest,
    /// The reference it was started from, when known.
    pub reference: Option<String>,
    /// The Kubernetes namespace of its pod, when known.
    pub namespace: Option<String>,
    /// Its pod, when known.
    pub pod: Option<String>,
}

/// Container id → image, for the containers of this node's pods.
#[derive(Debug, Default)]
pub struct PodIndex {
    by_container: HashMap<String, ContainerImage>,
    by_pod: HashMap<String, Vec<String>>,
}

/// A [`PodIndex`] shared between the watcher and attribution.
pub type SharedPods = Arc<RwLock<PodIndex>>;

impl PodIndex {
    /// The image of a container, when a pod status names it.
    pub fn get(&self, container_id: &str) -> Option<&ContainerImage> {
        self.by_container.get(container_id)
    }

    /// How many containers are known.
    pub fn len(&self) -> usize {
        self.by_container.len()
    }

    /// No containers known.
    pub fn is_empty(&self) -> bool {
        self.by_container.is_empty()
    }

    /// Records a pod as it is now.
    pub fn apply(&mut self, pod: &Pod) {
        let key = pod_key(pod);
        self.delete_key(&key);
        let containers = pod_images(pod);
        self.by_pod
            .insert(key, containers.iter().map(|(id, _)| id.clone()).collect());
        self.by_container.extend(containers);
    }

    /// Forgets a pod.
    pub fn delete(&mut self, pod: &Pod) {
        self.delete_key(&pod_key(pod));
    }

    fn delete_key(&mut self, key: &str) {
        for id in self.by_pod.remove(key).unwrap_or_default() {
            self.by_container.remove(&id);
        }
    }
}

fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

/// Container id → image for a pod, from each status's `containerID`
/// (`containerd://<id>`) and `imageID` (`…@sha256:…`). A container still being
/// created has no id yet and is left out.
pub fn pod_images(pod: &Pod) -> Vec<(String, ContainerImage)> {
    let Some(status) = &pod.status else {
        return Vec::new();
    };
    let statuses = [
        &status.container_statuses,
        &status.init_container_statuses,
        &status.ephemeral_container_statuses,
    ];
    let mut out = Vec::new();
    for s in statuses.into_iter().flatten().flatten() {
        let id = s
            .container_id
            .as_deref()
            .and_then(|v| v.split_once("://").map(|(_, id)| id.to_string()));
        let digest = digest_of_reference(&s.image_id);
        if let (Some(id), Some(digest)) = (id, digest) {
            out.push((
                id,
                ContainerImage {
                    digest,
                    reference: Some(s.image.clone()).filter(|r| !r.is_empty()),
                    namespace: pod.metadata.namespace.clone(),
                    pod: pod.metadata.name.clone(),
                },
            ));
        }
    }
    out
}

/// Reads a Kubernetes `PodList` (or one `Pod`, or `kubectl get pods -o json`'s
/// `List`): container id → image, as [`pod_images`] reads
/// each pod. Items that are not pods are skipped.
pub fn parse_pod_statuses(json: &[u8]) -> HashMap<String, ContainerImage> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(json) else {
        return HashMap::new();
    };
    let pods: Vec<serde_json::Value> = match value.get("items").and_then(|i| i.as_array()) {
        Some(items) => items.clone(),
        None => vec![value],
    };
    pods.into_iter()
        .filter_map(|p| serde_json::from_value::<Pod>(p).ok())
        .flat_map(|p| pod_images(&p))
        .collect()
}

/// The manifest digest of `repo@sha256:…`. A bare `sha256:…` is an image (config)
/// id, not the manifest's digest, and yields nothing.
pub(crate) fn digest_of_reference(reference: &str) -> Option<Digest> {
    let (_, digest) = reference.rsplit_once('@')?;
    Digest::parse(digest).ok()
}

#[cfg(test)]
mod tests;
