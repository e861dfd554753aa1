use super::*;
use crate::test_data as data;

#[test]
fn pods_without_a_container_id_or_digest_are_left_out() {
    let list: serde_json::Value = serde_json::from_slice(&data("pod-list.json")).unwrap();
    let pod: Pod = serde_json::from_value(list["items"][0].clone()).unwrap();
    let images = pod_images(&pod);
    // web and the init container; the shipper is still being created.
    assert_eq!(images.len(), 2);
    let mut no_digest = pod.clone();
    let set_image_ids = |pod: &mut Pod, id: &str| {
        let status = pod.status.as_mut().unwrap();
        for s in status.container_statuses.as_mut().unwrap() {
            s.image_id = id.into();
        }
    };
    set_image_ids(&mut no_digest, "docker-pullable://web:latest");
    assert_eq!(pod_images(&no_digest).len(), 1);
    // A bare image id is the config's digest, not the manifest's: not used.
    set_image_ids(&mut no_digest, &format!("sha256:{}", "5".repeat(64)));
    assert_eq!(pod_images(&no_digest).len(), 1);
}
