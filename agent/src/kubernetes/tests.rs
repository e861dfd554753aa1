//! The watchers against recorded API server responses (a list, then a watch
//! stream), served through `tower_test`'s mock service: no API server runs here.

use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use kube::client::Body;

use super::*;
use crate::delivered::Deliveries;
use imprint_schema::Digest;

use crate::test_data as data;

/// Serves `list` to the first request and, once the gate opens, `watch` to the
/// second, checking each one's path; later requests (the watch resuming) are
/// left pending. Returns the request URIs seen.
fn serve(
    list: Vec<u8>,
    watch: Vec<u8>,
    path: &'static str,
) -> (
    Client,
    Arc<tokio::sync::Notify>,
    tokio::task::JoinHandle<Vec<String>>,
) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let gate = Arc::new(tokio::sync::Notify::new());
    let opened = gate.clone();
    let server = tokio::spawn(async move {
        let mut handle = Box::pin(handle);
        let mut seen = Vec::new();
        let mut pending = Vec::new();
        for (i, body) in [list, watch].into_iter().enumerate() {
            let Some((request, send)) = handle.next_request().await else {
                break;
            };
            if i == 1 {
                opened.notified().await;
            }
            assert_eq!(request.method(), http::Method::GET);
            assert_eq!(request.uri().path(), path);
            seen.push(request.uri().to_string());
            send.send_response(Response::new(Body::from(body)));
        }
        // Keep the resumed watch open without an answer.
        if let Some(next) = handle.next_request().await {
            seen.push(next.0.uri().to_string());
            pending.push(next.1);
        }
        std::mem::forget(pending);
        seen
    });
    (Client::new(service, "default"), gate, server)
}

async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not reached");
}

#[tokio::test]
async fn the_pod_watcher_keeps_this_nodes_containers_and_their_digests() {
    let (client, gate, server) = serve(
        data("pod-list.json"),
        data("kube/pods-watch.jsonl"),
        "/api/v1/pods",
    );
    let pods: SharedPods = Arc::default();
    let watcher = tokio::spawn(watch_pods(client, "node-1".into(), pods.clone()));
    let web = "4c2b1f8a9d7e6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b";
    let shipper = "5d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c";
    let db = "6e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d";
    // The list: web and its init container; the shipper is still being created.
    eventually("the list applied", || {
        let p = pods.read().unwrap();
        p.get(web).is_some() && p.get(shipper).is_none() && p.len() == 2
    })
    .await;
    gate.notify_one();
    // After the watch: the shipper got its container (MODIFIED), db-0 came and went.
    eventually("the watch applied", || {
        let p = pods.read().unwrap();
        p.get(shipper).is_some() && p.get(db).is_none() && p.len() == 3
    })
    .await;
    let seen = server.await.unwrap();
    watcher.abort();
    let p = pods.read().unwrap();
    let image = p.get(web).unwrap();
    assert_eq!(
        image.digest,
        "sha256:5b0fd3b4c0c1b0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5"
    );
    assert_eq!(
        (image.namespace.as_deref(), image.pod.as_deref()),
        (Some("shop"), Some("web-7d9f"))
    );
    assert_eq!(
        image.reference.as_deref(),
        Some("registry.example/shop/web:2.4.1")
    );
    assert_eq!(
        p.get(shipper).unwrap().digest,
        format!("sha256:{}", "2".repeat(64)).as_str()
    );
    // Limited to the node, by the API server: the field selector is asked for.
    assert!(
        seen.iter()
            .all(|uri| uri.contains("fieldSelector=spec.nodeName%3Dnode-1")),
        "{seen:?}"
    );
    assert!(!seen[0].contains("watch=true"), "{seen:?}");
    assert!(
        seen[1].contains("watch=true") && seen[1].contains("resourceVersion=81234"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn profile_objects_become_deliveries_and_leave_with_their_objects() {
    let (client, gate, server) = serve(
        data("kube/profiles-list.json"),
        data("kube/profiles-watch.jsonl"),
        "/apis/imprint.dev/v1/profiles",
    );
    let deliveries: SharedDeliveries = Arc::default();
    let watcher = tokio::spawn(watch_profiles(client, deliveries.clone()));
    let web: &Digest = &"sha256:5b0fd3b4c0c1b0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5"
        .parse()
        .unwrap();
    let db: Digest = format!("sha256:{}", "3".repeat(64)).parse().unwrap();
    let lock = || deliveries.lock().unwrap();
    let object = |file: &str, pointer: &str| {
        let v: serde_json::Value = serde_json::from_slice(&data(file)).unwrap();
        delivery_of(&serde_json::to_vec(v.pointer(pointer).unwrap()).unwrap()).unwrap()
    };
    let listed_web = object("kube/profiles-list.json", "/items/0");
    let watched = String::from_utf8(data("kube/profiles-watch.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(watched.lines().next().unwrap()).unwrap();
    let modified_web = delivery_of(&serde_json::to_vec(&first["object"]).unwrap()).unwrap();
    assert_ne!(listed_web, modified_web);
    eventually("the list applied", || {
        lock().is_listed(PROFILE_SOURCES)
            && lock().len() == 2
            && lock().for_digest(web) == vec![listed_web.clone()]
            && lock().for_digest(&db).len() == 1
    })
    .await;
    gate.notify_one();
    eventually("the watch applied", || {
        lock().for_digest(&db).is_empty() && lock().for_digest(web) == vec![modified_web.clone()]
    })
    .await;
    server.await.unwrap();
    watcher.abort();
    let d: &Deliveries = &lock();
    assert_eq!(d.for_digest(web)[0].artifact, None);
    // …the one deleted pins nothing, and the malformed one is not used.
    assert_eq!(d.len(), 1);
    assert!(
        d.for_digest(&format!("sha256:{}", "5".repeat(64)).parse().unwrap())
            .is_empty()
    );
}

#[test]
fn the_db_profile_object_carries_its_artifact() {
    let list: serde_json::Value = serde_json::from_slice(&data("kube/profiles-list.json")).unwrap();
    let object: DynamicObject = serde_json::from_value(list["items"][1].clone()).unwrap();
    let d = delivery_of(&serde_json::to_vec(&object).unwrap()).unwrap();
    assert_eq!(
        d.artifact.as_deref(),
        Some(
            format!(
                "oci://registry.example/profiles/db@sha256:{}",
                "4".repeat(64)
            )
            .as_str()
        )
    );
}
