use super::*;

const ID: &str = "3f4e8a6d0c1b2a39485766554433221100ffeeddccbbaa998877665544332211";

#[test]
fn container_ids_from_every_runtimes_cgroup_names() {
    for path in [
        format!("/libpod_parent/libpod-{ID}"),
        format!("/machine.slice/libpod-{ID}.scope"),
        format!("/machine.slice/libpod-{ID}.scope/container"),
        format!("/system.slice/docker-{ID}.scope"),
        format!("/docker/{ID}"),
        format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/cri-containerd-{ID}.scope"
        ),
        format!("/kubepods/burstable/pod5a4e-11/{ID}"),
        format!("/kubepods.slice/kubepods-pod99.slice/crio-{ID}.scope"),
        format!("/system.slice/docker-{ID}.scope/init.scope"),
    ] {
        assert_eq!(container_id(&path).as_deref(), Some(ID), "{path}");
    }
    for path in [
        "/".to_string(),
        "/user.slice/user-0.slice/session-1.scope".to_string(),
        format!("/machine.slice/libpod-conmon-{ID}.scope"),
        format!("/kubepods.slice/crio-conmon-{ID}.scope"),
        "/libpod_parent/libpod-abc".to_string(),
    ] {
        assert_eq!(container_id(&path), None, "{path}");
    }
}

#[test]
fn the_cgroup2_mount_is_found_on_hybrid_and_unified_hosts() {
    let hybrid = "29 24 0:26 / /sys/fs/cgroup/unified rw,nosuid shared:9 - cgroup2 cgroup2 rw\n30 24 0:27 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n";
    assert_eq!(
        cgroup2_mount(hybrid),
        Some(PathBuf::from("/sys/fs/cgroup/unified"))
    );
    let unified = "25 1 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
    assert_eq!(
        cgroup2_mount(unified),
        Some(PathBuf::from("/sys/fs/cgroup"))
    );
    assert_eq!(cgroup2_mount("1 0 0:1 / / rw - ext4 /dev/sda rw\n"), None);
}

#[test]
fn the_index_maps_directory_inodes_to_paths() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join(format!("libpod_parent/libpod-{ID}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut index = CgroupIndex::new(root.path());
    let inode = std::fs::metadata(&dir).unwrap().ino();
    assert_eq!(
        index.path(inode),
        Some(format!("/libpod_parent/libpod-{ID}").as_str())
    );
    assert_eq!(index.containers(), vec![ID.to_string()]);
    // A cgroup created later is found by walking again.
    let later = root
        .path()
        .join("libpod_parent/libpod-".to_string() + &"a".repeat(64));
    std::fs::create_dir_all(&later).unwrap();
    let inode = std::fs::metadata(&later).unwrap().ino();
    assert!(index.path(inode).is_some());
}

use crate::pods::parse_pod_statuses;
use crate::test_data as data;

#[test]
fn runtimes_and_the_cluster_name_the_image_digest() {
    // Recorded from `podman run <registry>/imprint/test@sha256:4709…`: the registry
    // digest it was run by, not podman's local ImageDigest (sha256:1ddc…).
    let podman = parse_podman_inspect(&data("podman-inspect.json")).unwrap();
    assert_eq!(
        podman.digest,
        "sha256:4709d554cbb09e0954311aa74d26c10a1ee213941debe882f18757dd802fb443"
    );
    assert!(podman.reference.unwrap().ends_with(podman.digest.as_str()));
    let cri = parse_cri_inspect(&data("crictl-inspect.json")).unwrap();
    assert_eq!(
        cri.digest,
        "sha256:0e5e1a1f1c1ae4f3c2b0d9a4a3f0b8e3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7"
    );
    assert_eq!(
        cri.reference.as_deref(),
        Some("registry.example/shop/web:2.4.1")
    );
    let pods = parse_pod_statuses(&data("pod-list.json"));
    let web = pods
        .get("4c2b1f8a9d7e6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b")
        .unwrap();
    assert_eq!(
        web.digest,
        "sha256:5b0fd3b4c0c1b0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5"
    );
    assert_eq!(
        (web.namespace.as_deref(), web.pod.as_deref()),
        (Some("shop"), Some("web-7d9f"))
    );
    // A container still creating has no containerID: skipped.
    assert_eq!(pods.len(), 2);
    // Recorded from `podman events --stream=false --filter container=… --format json`.
    let from_events = parse_podman_events(&data("podman-events.jsonl")).unwrap();
    assert_eq!(
        from_events.digest,
        "sha256:4709d554cbb09e0954311aa74d26c10a1ee213941debe882f18757dd802fb443"
    );
    assert!(parse_podman_events(b"{\"Image\":\"localhost/x:latest\"}").is_none());
    assert!(parse_podman_inspect(b"[]").is_none());
    assert!(parse_cri_inspect(b"{\"status\":{}}").is_none());
    assert!(parse_pod_statuses(b"not json").is_empty());
}
