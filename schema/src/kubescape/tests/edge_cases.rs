//! Import tests: refusals, odd input and the less common layouts.

use super::*;

#[test]
fn network_neighborhood_and_legacy_fields() {
    let Some(bytes) = corpus(
        "storage/pkg/apis/softwarecomposition/v1beta1/networkpolicy/v2/testdata/nn-operator.json",
    ) else {
        return;
    };
    let all = import(
        &bytes,
        &ImportOptions {
            image_digest: Some(DIGEST.parse().unwrap()),
            container: Some("operator".into()),
        },
    );
    let p = &all.expect("imports")[0].profile;
    assert!(
        p.dns_names().contains("report.armo.cloud"),
        "{:?}",
        p.dns_names()
    );

    let bytes = corpus("node-agent/legacy-kapprofiler-v1/malicious-job-app-profile.yaml").unwrap();
    let item = one(&bytes, &with_digest());
    assert!(item.profile.dns_names().contains("dl.k8s.io"));
    assert!(item.profile.network.egress.contains(&peer(
        None,
        Some("34.107.204.206/32"),
        Some(443),
        Some(Protocol::Tcp)
    )));
    assert!(
        warned(&item, "\"./kubectl\" (relative path)"),
        "{:?}",
        item.warnings
    );

    let bytes = corpus("node-agent/legacy-kapprofiler-v1/old-nginx-app-profile.yaml").unwrap();
    let err = import(&bytes, &with_digest()).unwrap_err();
    assert!(matches!(
        err,
        ImportError::Unsupported {
            field: "apiVersion",
            ..
        }
    ));
    assert!(err.to_string().contains("\"kubescape.io/v1\""), "{err}");
}

#[test]
fn unknown_api_version_and_kind() {
    let err = import(
        b"{\"apiVersion\": \"v1\", \"kind\": \"ApplicationProfile\"}",
        &with_digest(),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("apiVersion: unsupported \"v1\""), "{text}");
    assert!(
        text.contains(KUBESCAPE_API_VERSION) && text.contains("ContainerProfile"),
        "{text}"
    );

    let yaml = format!("apiVersion: {KUBESCAPE_API_VERSION}\nkind: SeccompProfile\nspec: {{}}\n");
    let err = import(yaml.as_bytes(), &with_digest()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("kind: unsupported \"SeccompProfile\""),
        "{err}"
    );

    let err = import(b"kind: ContainerProfile\n", &with_digest()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("apiVersion: unsupported missing"),
        "{err}"
    );

    let err = import(b"- a\n- b\n", &with_digest()).unwrap_err();
    assert!(matches!(err, ImportError::NotAnObject { .. }), "{err}");
}

#[test]
fn missing_digest_names_the_container() {
    let doc = format!(
        r#"{{"apiVersion": "{KUBESCAPE_API_VERSION}", "kind": "ApplicationProfile",
            "spec": {{"containers": [
                {{"name": "web", "imageID": "docker-pullable://nginx@sha256:{hex}"}},
                {{"name": "sidecar", "imageID": "nginx:latest"}}]}}}}"#,
        hex = &DIGEST[7..]
    );
    let err = import(doc.as_bytes(), &ImportOptions::default()).unwrap_err();
    assert!(
        matches!(&err, ImportError::MissingDigest { container, image_id: Some(id) } if container == "sidecar" && id == "nginx:latest"),
        "{err}"
    );
    assert!(err.to_string().contains("\"sidecar\""));
    let p = one(
        doc.as_bytes(),
        &ImportOptions {
            image_digest: None,
            container: Some("web".into()),
        },
    )
    .profile;
    assert_eq!(p.image.digest, DIGEST);
}

#[test]
fn truncated_and_mistyped_input() {
    let err = import(
        b"{\"apiVersion\": \"spdx.softwarecomposition.kubescape.io/v1beta1\", \"kind\": \"Appl",
        &with_digest(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            ImportError::Document(DocumentError::Syntax {
                position: Some(_),
                ..
            })
        ),
        "{err}"
    );
    let err = import(&[0xff, 0xfe], &with_digest()).unwrap_err();
    assert!(
        matches!(err, ImportError::Document(DocumentError::Utf8 { .. })),
        "{err}"
    );
    let doc = format!(
        r#"{{"apiVersion": "{KUBESCAPE_API_VERSION}", "kind": "ApplicationProfile",
            "spec": {{"containers": [{{"name": "a", "execs": [{{"path": 5}}]}}]}}}}"#
    );
    let err = import(doc.as_bytes(), &with_digest()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("spec.containers[0].execs[0].path: invalid type: integer `5`"),
        "{err}"
    );
    let err = import(
        format!("apiVersion: {KUBESCAPE_API_VERSION}\nkind: ApplicationProfile\nspec: {{}}\n")
            .as_bytes(),
        &with_digest(),
    )
    .unwrap_err();
    assert!(matches!(err, ImportError::NoContainers), "{err}");
}

#[test]
fn same_digest_containers_merge_and_lists_expand() {
    let container = |name: &str, exec: &str| {
        format!(
            r#"{{"name": "{name}", "imageID": "{DIGEST}", "execs": [{{"path": "{exec}", "args": ["{exec}", "-x"]}}], "capabilities": ["CAP_KILL", "FLY"], "opens": [{{"path": "/data//⋯/x", "flags": ["O_RDONLY", "O_BOGUS"]}}]}}"#
        )
    };
    let doc = format!(
        r#"{{"apiVersion": "v1", "kind": "List", "items": [{{"apiVersion": "{KUBESCAPE_API_VERSION}", "kind": "ApplicationProfile",
            "metadata": {{"annotations": {{"kubescape.io/completion": "complete"}}}},
            "spec": {{"containers": [{}, {}]}}}}]}}"#,
        container("a", "/bin/a"),
        container("b", "/bin/b")
    );
    let item = one(doc.as_bytes(), &ImportOptions::default());
    assert_eq!(item.container, "a, b");
    assert_eq!(item.profile.execs.len(), 2);
    assert_eq!(exec(&item.profile, "/bin/b")[0].args, args(&["-x"]));
    assert_eq!(item.profile.capabilities, ["KILL"]);
    assert_eq!(item.profile.opens[0].path, "/data/*/x");
    assert_eq!(item.profile.opens[0].flags.names(), ["O_RDONLY"]);
    assert_eq!(item.profile.learning.observed_containers, 2);
    assert_eq!(item.profile.learning.completeness, Completeness::Complete);
    assert!(
        warned(&item, "a: dropped 1 unknown capabilit(ies): \"FLY\""),
        "{:?}",
        item.warnings
    );
    assert!(
        warned(&item, "b: skipped unknown open flag(s): \"O_BOGUS\""),
        "{:?}",
        item.warnings
    );
    assert!(warned(&item, "merged into one profile"));
}

#[test]
fn path_mapping() {
    assert_eq!(map_path("/proc/⋯/stat"), Ok(("/proc/*/stat".into(), false)));
    assert_eq!(map_path("/etc/*"), Ok(("/etc/**".into(), false)));
    assert_eq!(map_path("/a/*/*/b"), Ok(("/a/**/b".into(), false)));
    assert_eq!(
        map_path("/var/log/app-⋯.log"),
        Ok(("/var/log/*".into(), true))
    );
    assert_eq!(map_path("//usr/./lib/"), Ok(("/usr/lib".into(), false)));
    assert_eq!(map_path("/"), Ok(("/".into(), false)));
    assert!(map_path("lib/x").is_err());
    assert!(map_path("").is_err());
    assert!(map_path("/lib/lib*.so").is_err());
    assert_eq!(
        map_dns("Svc.⋯.Cluster.Local."),
        Ok(("svc.*.cluster.local".into(), false))
    );
    assert!(map_dns("a.*.b").is_err());
    assert_eq!(map_ip("10.1.2.3/8"), Ok("10.0.0.0/8".into()));
    assert_eq!(map_ip("2001:DB8::1"), Ok("2001:db8::1/128".into()));
    assert_eq!(
        digest_of_image_id(&format!("docker-pullable://nginx@{DIGEST}")),
        Some(DIGEST.parse().unwrap())
    );
    assert_eq!(
        digest_of_image_id(&format!(
            "docker://{}",
            DIGEST.to_uppercase().replace("SHA256", "sha256")
        )),
        Some(DIGEST.parse().unwrap())
    );
    assert_eq!(digest_of_image_id("nginx:latest"), None);
}

fn container_profile(spec: &str) -> String {
    format!(
        "apiVersion: spdx.softwarecomposition.kubescape.io/v1beta1\nkind: ContainerProfile\nmetadata:\n  name: x\nspec:\n{spec}"
    )
}

fn import_with_digest(text: &str) -> Result<Vec<Imported>, ImportError> {
    let options = ImportOptions {
        image_digest: Some(DIGEST.parse().unwrap()),
        container: None,
    };
    import(text.as_bytes(), &options)
}

#[test]
fn hosts_times_ports_is_bounded() {
    // 400 names × 400 ports would be 160,000 peers: cut at the bound, marked truncated.
    let names: Vec<String> = (0..400).map(|i| format!("h{i}.example.com")).collect();
    let ports: Vec<String> = (1..=400)
        .map(|p| format!("{{name: TCP-{p}, protocol: TCP, port: {p}}}"))
        .collect();
    let spec = format!(
        "  egress:\n  - identifier: x\n    type: external\n    dnsNames: [{}]\n    ports: [{}]\n",
        names.join(", "),
        ports.join(", ")
    );
    let imported = import_with_digest(&container_profile(&spec)).unwrap();
    let p = &imported[0].profile;
    assert_eq!(p.network.egress.len(), MAX_ENTRIES_PER_SET);
    assert_eq!(p.learning.truncated, [crate::profile::Category::Egress]);
}

#[test]
fn a_trailing_empty_document_is_fine() {
    let text = container_profile("  syscalls: [read]\n") + "---\n";
    let imported = import_with_digest(&text).unwrap();
    assert_eq!(imported[0].profile.syscalls, ["read"]);
}

#[test]
fn odd_ports_are_refused_not_widened() {
    let spec = "  egress:\n  - identifier: x\n    type: external\n    dns: a.example.com\n    ports: [{name: TCP-443, protocol: TCP, port: 443.5}, {name: ICMP-0, protocol: '', port: 0}]\n";
    let imported = import_with_digest(&container_profile(spec)).unwrap();
    // Both ports unusable: the neighbour is dropped rather than allowed on any port.
    assert!(imported[0].profile.network.egress.is_empty());
    assert!(
        imported[0]
            .warnings
            .iter()
            .any(|w| w.contains("not an integer")),
        "{:?}",
        imported[0].warnings
    );
}

#[test]
fn too_many_containers_are_refused() {
    let containers: String = (0..=MAX_CONTAINERS)
        .map(|i| format!("    - name: c{i}\n      imageID: docker-pullable://x@{DIGEST}\n"))
        .collect();
    let text = format!(
        "apiVersion: spdx.softwarecomposition.kubescape.io/v1beta1\nkind: ApplicationProfile\nmetadata:\n  name: x\nspec:\n  containers:\n{containers}"
    );
    let err = import(text.as_bytes(), &ImportOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("more than the limit of 256"),
        "{err}"
    );
}

#[test]
fn kapprofiler_args_keep_their_first_argument() {
    let doc = |labels: &str| {
        format!(
            "apiVersion: spdx.softwarecomposition.kubescape.io/v1beta1\nkind: ContainerProfile\nmetadata:\n  name: x\n{labels}spec:\n  execs:\n  - path: /bin/kubectl\n    args: [get, secrets]\n  - path: /bin/cat\n    args: [cat, /etc/passwd]\n"
        )
    };
    let args = |text: String| {
        let imported = import_with_digest(&text).unwrap();
        imported[0]
            .profile
            .execs
            .iter()
            .map(|e| (e.path.clone(), e.args.clone().unwrap_or_default()))
            .collect::<Vec<_>>()
    };
    let kap = args(doc(
        "  labels:\n    kapprofiler.kubescape.io/final: \"true\"\n",
    ));
    assert_eq!(
        kap,
        [
            ("/bin/cat".to_string(), vec!["/etc/passwd".to_string()]),
            (
                "/bin/kubectl".to_string(),
                vec!["get".to_string(), "secrets".to_string()]
            ),
        ]
    );
    let current = args(doc(""));
    assert_eq!(current[1].1, ["secrets"]);
}
