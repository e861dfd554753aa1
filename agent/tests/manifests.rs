//! Every manifest users apply is checked, not just written: each YAML under
//! `deploy/` and `gitops-examples/` parses; Flux's `OCIRepository` and
//! `Kustomization` and Argo CD's `Application` validate against the upstream
//! CRD schemas in `../shared/crds/` with undeclared fields refused; core kinds
//! deserialize into `k8s-openapi` types with unknown fields reported as errors;
//! each `AgentConfig` file parses; and each overlay renders with `kubectl kustomize`
//! (where kubectl exists), its configuration in a ConfigMap whose name changes with
//! its content, so an edit rolls the DaemonSet.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `*.yaml` under `dir`, sorted.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(yaml_files(&path));
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The documents of a YAML stream (empty ones skipped).
fn documents(text: &str, origin: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(text)
        .unwrap_or_else(|e| panic!("{origin}: does not parse: {e}"))
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

/// The upstream CRD schemas, by (apiVersion, kind), made strict: an object
/// schema with declared properties admits no others (the API server would
/// prune them; `kubectl apply` refuses them).
fn crd_schemas() -> BTreeMap<(String, String), Value> {
    let dir = root().join("../shared/crds");
    let mut out = BTreeMap::new();
    for file in yaml_files(&dir) {
        let text = std::fs::read_to_string(&file).unwrap();
        for crd in documents(&text, &file.display().to_string()) {
            let group = crd["spec"]["group"].as_str().unwrap().to_string();
            let kind = crd["spec"]["names"]["kind"].as_str().unwrap().to_string();
            for version in crd["spec"]["versions"].as_array().unwrap() {
                let mut schema = version["schema"]["openAPIV3Schema"].clone();
                strict(&mut schema);
                let name = version["name"].as_str().unwrap();
                out.insert((format!("{group}/{name}"), kind.clone()), schema);
            }
        }
    }
    out
}

fn strict(node: &mut Value) {
    let Some(object) = node.as_object_mut() else {
        return;
    };
    if object.get("nullable") == Some(&Value::Bool(true)) {
        let t = object["type"].clone();
        object.insert("type".into(), serde_json::json!([t, "null"]));
    }
    if object.contains_key("properties")
        && !object.contains_key("additionalProperties")
        && object.get("x-kubernetes-preserve-unknown-fields") != Some(&Value::Bool(true))
    {
        object.insert("additionalProperties".into(), false.into());
    }
    for v in object.values_mut() {
        match v {
            Value::Object(_) => strict(v),
            Value::Array(items) => items.iter_mut().for_each(strict),
            _ => {}
        }
    }
}

/// Deserializes into a k8s-openapi type, failing on any field it does not know.
fn typed<T: DeserializeOwned>(document: &Value, origin: &str) {
    let mut unknown = Vec::new();
    let result: Result<T, _> = serde_ignored::deserialize(document, |path| {
        unknown.push(path.to_string());
    });
    if let Err(e) = result {
        panic!("{origin}: {e}");
    }
    assert!(unknown.is_empty(), "{origin}: unknown fields {unknown:?}");
}

/// Checks one document; returns its kind.
fn check(document: &Value, origin: &str, crds: &BTreeMap<(String, String), Value>) -> String {
    use k8s_openapi::api::{apps, core, rbac};
    let api_version = document["apiVersion"].as_str().unwrap_or_default();
    let kind = document["kind"].as_str().unwrap_or_default();
    let origin = format!("{origin} ({api_version} {kind})");
    match (api_version, kind) {
        ("apps/v1", "DaemonSet") => typed::<apps::v1::DaemonSet>(document, &origin),
        ("v1", "ConfigMap") => {
            typed::<core::v1::ConfigMap>(document, &origin);
            for (key, text) in document["data"].as_object().into_iter().flatten() {
                if text.as_str().is_some_and(|t| t.contains("kind: AgentConfig")) {
                    imprint_agent::settings::Settings::parse_file(text.as_str().unwrap(), key)
                        .unwrap_or_else(|e| panic!("{origin}: {e}"));
                }
            }
        }
        ("v1", "Service") => typed::<core::v1::Service>(document, &origin),
        ("v1", "ServiceAccount") => typed::<core::v1::ServiceAccount>(document, &origin),
        ("v1", "Namespace") => typed::<core::v1::Namespace>(document, &origin),
        ("v1", "Secret") => typed::<core::v1::Secret>(document, &origin),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
            typed::<rbac::v1::ClusterRole>(document, &origin)
        }
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            typed::<rbac::v1::ClusterRoleBinding>(document, &origin)
        }
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => typed::<
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        >(document, &origin),
        ("imprint.dev/v1", "AgentConfig") => {
            let text = serde_json::to_string(document).unwrap();
            imprint_agent::settings::Settings::parse_file(&text, &origin)
                .unwrap_or_else(|e| panic!("{origin}: {e}"));
        }
        ("imprint.dev/v1", "Profile") => {
            let bytes = serde_json::to_vec(document).unwrap();
            imprint_schema::parse_profile(&bytes).unwrap_or_else(|e| panic!("{origin}: {e}"));
        }
        // kustomize's own file: its resources are checked through `kubectl kustomize`.
        ("kustomize.config.k8s.io/v1beta1", "Kustomization" | "Component") => {}
        _ => {
            let schema = crds
                .get(&(api_version.to_string(), kind.to_string()))
                .unwrap_or_else(|| panic!("{origin}: no schema to check this kind against"));
            let validator = jsonschema::validator_for(schema).unwrap();
            let errors: Vec<String> = validator
                .iter_errors(document)
                .map(|e| format!("{}: {e}", e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{origin}: {errors:#?}");
        }
    }
    kind.to_string()
}

#[test]
fn every_manifest_parses_and_validates_against_the_real_schemas() {
    let crds = crd_schemas();
    assert!(
        crds.contains_key(&("source.toolkit.fluxcd.io/v1".into(), "OCIRepository".into())),
        "../shared/crds is missing"
    );
    let mut kinds = BTreeMap::<String, usize>::new();
    for dir in ["deploy", "gitops-examples"] {
        for file in yaml_files(&root().join(dir)) {
            let origin = file.strip_prefix(root()).unwrap().display().to_string();
            let text = std::fs::read_to_string(&file).unwrap();
            for document in documents(&text, &origin) {
                *kinds.entry(check(&document, &origin, &crds)).or_default() += 1;
            }
        }
    }
    // What the examples promise is there.
    for kind in [
        "DaemonSet",
        "ClusterRole",
        "AgentConfig",
        "Service",
        "CustomResourceDefinition",
        "OCIRepository",
        "Kustomization",
        "Application",
    ] {
        assert!(kinds.contains_key(kind), "no {kind} in {kinds:?}");
    }
}

/// The checks refuse what they should: an undeclared field in a Flux object and
/// in a core kind.
#[test]
fn the_checks_refuse_undeclared_fields() {
    let crds = crd_schemas();
    let oci = serde_json::json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "metadata": {"name": "p", "namespace": "flux-system"},
        "spec": {"url": "oci://r.example/p", "interval": "5m", "ref": {"digest": "sha256:aa"}, "verifyy": {}},
    });
    let refused = std::panic::catch_unwind(|| check(&oci, "test", &crds));
    assert!(refused.is_err());
    let service = serde_json::json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 9464, "targetport": 9464}]},
    });
    let refused = std::panic::catch_unwind(|| check(&service, "test", &crds));
    assert!(refused.is_err());
}

/// `kubectl kustomize DIR`, or `None` when kubectl is not installed.
fn kustomize(dir: &Path) -> Option<String> {
    let out = std::process::Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

/// The agent's ConfigMap in a rendering: its name, and the name the DaemonSet
/// mounts.
fn config_map_names(docs: &[Value]) -> (String, String) {
    let generated: Vec<&str> = docs
        .iter()
        .filter(|d| d["kind"] == "ConfigMap")
        .filter_map(|d| d["metadata"]["name"].as_str())
        .collect();
    let [generated] = generated[..] else {
        panic!("one ConfigMap expected, got {generated:?}");
    };
    let daemonset = docs.iter().find(|d| d["kind"] == "DaemonSet").unwrap();
    let mounted = daemonset["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "config")
        .and_then(|v| v["configMap"]["name"].as_str())
        .expect("the DaemonSet mounts a config volume");
    (generated.to_string(), mounted.to_string())
}

#[test]
fn every_overlay_renders_with_kustomize() {
    let crds = crd_schemas();
    for overlay in ["learn", "enforce"] {
        let dir = root().join("deploy/overlays").join(overlay);
        let Some(rendered) = kustomize(&dir) else {
            imprint_test_support::skip("kubectl is not installed (bash .ci/setup installs it)");
            return;
        };
        let origin = format!("kubectl kustomize deploy/overlays/{overlay}");
        let docs = documents(&rendered, &origin);
        let mut modes = Vec::new();
        for d in &docs {
            check(d, &origin, &crds);
            if d["kind"] == "ConfigMap" {
                for text in d["data"].as_object().into_iter().flatten().map(|(_, v)| v) {
                    let text = text.as_str().unwrap();
                    imprint_agent::settings::Settings::parse_file(text, &origin)
                        .unwrap_or_else(|e| panic!("{origin}: {e}"));
                    if let Some(mode) = text.lines().find(|l| l.starts_with("mode:")) {
                        modes.push(mode.trim_start_matches("mode:").trim().to_string());
                    }
                }
            }
        }
        assert_eq!(modes, vec![overlay.to_string()], "{origin}");
        let (generated, mounted) = config_map_names(&docs);
        assert_eq!(generated, mounted, "{origin}");
        assert!(
            generated.starts_with("imprint-agent-config-"),
            "{origin}: {generated} has no content hash"
        );
    }
}

/// An edit to the agent's configuration renders a ConfigMap of another name, and
/// the DaemonSet mounts the new one: applying it rolls the agents.
#[test]
fn a_configuration_change_rolls_the_daemonset() {
    let copy = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(root().join("deploy"))
        .arg(copy.path())
        .status()
        .unwrap();
    assert!(status.success());
    let overlay = copy.path().join("deploy/overlays/learn");
    let Some(before) = kustomize(&overlay) else {
        imprint_test_support::skip("kubectl is not installed (bash .ci/setup installs it)");
        return;
    };
    let config = overlay.join("agent.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("learningPeriod: 24h"), "{text}");
    std::fs::write(
        &config,
        text.replace("learningPeriod: 24h", "learningPeriod: 12h"),
    )
    .unwrap();
    let after = kustomize(&overlay).unwrap();
    let (before, _) = config_map_names(&documents(&before, "before"));
    let (after, mounted) = config_map_names(&documents(&after, "after"));
    assert_ne!(before, after);
    assert_eq!(after, mounted);
}

/// The workflows validate against the published GitHub workflow schema
/// (SchemaStore's, as `check-jsonschema` vendors it; `.ci/setup` installs it),
/// and the reusable one is callable.
#[test]
fn workflows_validate_against_the_published_schema() {
    let workflows = root().join(".github/workflows");
    let files = yaml_files(&workflows);
    assert!(files.len() >= 2, "{files:?}");
    let reusable = std::fs::read_to_string(workflows.join("learn-and-publish.yml")).unwrap();
    let parsed = documents(&reusable, "learn-and-publish.yml");
    assert!(
        parsed[0]["on"]["workflow_call"]["inputs"]["image"].is_object(),
        "learn-and-publish.yml is not a reusable workflow with an image input"
    );
    let Ok(out) = std::process::Command::new("check-jsonschema")
        .args(["--builtin-schema", "vendor.github-workflows"])
        .args(&files)
        .output()
    else {
        imprint_test_support::skip(
            "check-jsonschema is not installed (bash .ci/setup installs it)",
        );
        return;
    };
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
