//! The agent's view of the Kubernetes API, kept thin: the pods on this node
//! (`spec.nodeName`), for each container's image digest, namespace and pod; and
//! the `Profile` objects Flux or Argo CD apply, as delivered profiles.
//!
//! Both are `kube` watchers (list, then watch, re-listing with backoff after an
//! error), so an API server outage leaves the last known state in place.

use std::collections::BTreeSet;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher as watch};
use kube::{Api, Client};

use crate::delivered::{SharedDeliveries, delivery_of, lock};
use crate::pods::{PodIndex, SharedPods};

/// The `Profile` custom resource.
pub fn profile_resource() -> ApiResource {
    ApiResource {
        group: imprint_schema::crd::GROUP.into(),
        version: "v1".into(),
        api_version: imprint_schema::API_VERSION.into(),
        kind: imprint_schema::KIND.into(),
        plural: "profiles".into(),
    }
}

/// Keeps `pods` equal to the pods on `node`, until the task is dropped.
pub async fn watch_pods(client: Client, node: String, pods: SharedPods) {
    let api: Api<Pod> = Api::all(client);
    let config = watcher::Config::default().fields(&format!("spec.nodeName={node}"));
    let mut stream = watch(api, config).default_backoff().boxed();
    let mut listing: Option<PodIndex> = None;
    while let Some(event) = stream.next().await {
        let write = || pods.write().unwrap_or_else(|p| p.into_inner());
        match event {
            Ok(Event::Init) => listing = Some(PodIndex::default()),
            Ok(Event::InitApply(pod)) => {
                if let Some(l) = listing.as_mut() {
                    l.apply(&pod);
                }
            }
            Ok(Event::InitDone) => {
                if let Some(l) = listing.take() {
                    *write() = l;
                }
            }
            Ok(Event::Apply(pod)) => write().apply(&pod),
            Ok(Event::Delete(pod)) => write().delete(&pod),
            Err(e) => eprintln!("imprint-agent: watching pods on {node}: {e}; retrying"),
        }
    }
}

/// The prefix of `Profile` objects' source names among the deliveries.
pub const PROFILE_SOURCES: &str = "Profile/";

/// The source name of a `Profile` object among the deliveries.
fn source_of(object: &DynamicObject) -> String {
    format!(
        "{PROFILE_SOURCES}{}",
        object.metadata.name.as_deref().unwrap_or_default()
    )
}

/// Keeps `deliveries` equal to the `Profile` objects in the cluster, and marks
/// [`PROFILE_SOURCES`] listed once the first list is in. An object that does not
/// parse is named in the log and keeps what it delivered before.
pub async fn watch_profiles(client: Client, deliveries: SharedDeliveries) {
    let api: Api<DynamicObject> = Api::all_with(client, &profile_resource());
    let mut stream = watch(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut listed: BTreeSet<String> = BTreeSet::new();
    let set = |object: &DynamicObject| {
        let source = source_of(object);
        let parsed = serde_json::to_vec(object)
            .map_err(|e| e.to_string())
            .and_then(|bytes| delivery_of(&bytes).map_err(|e| e.to_string()));
        match parsed {
            Ok(d) => lock(&deliveries).set(&source, d),
            Err(e) => eprintln!("imprint-agent: {source} is not used: {e}"),
        }
        source
    };
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init) => listed.clear(),
            Ok(Event::InitApply(object)) => {
                listed.insert(set(&object));
            }
            Ok(Event::InitDone) => {
                let mut d = lock(&deliveries);
                d.retain_under(PROFILE_SOURCES, &listed);
                d.mark_listed(PROFILE_SOURCES);
            }
            Ok(Event::Apply(object)) => {
                set(&object);
            }
            Ok(Event::Delete(object)) => lock(&deliveries).remove(&source_of(&object)),
            Err(e) => eprintln!("imprint-agent: watching Profile objects: {e}; retrying"),
        }
    }
}

#[cfg(test)]
mod tests;
