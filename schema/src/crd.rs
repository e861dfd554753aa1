//! The `Profile` CustomResourceDefinition, generated from the same Rust types as
//! the JSON Schema, so a profile applied by Flux or Argo CD is checked by the API
//! server against exactly what the agent parses.
//!
//! Kubernetes wants a *structural* OpenAPI v3 schema, narrower than the draft
//! 2020-12 one schemars writes, so the schema is rewritten:
//! `$ref` inlined; `type: [T, null]` and `anyOf [X, null]` become `nullable`;
//! `const` and one-of-constants become `enum`; `uniqueItems` becomes
//! `x-kubernetes-list-type: set` (the API server refuses `uniqueItems: true`);
//! `additionalProperties: false` is dropped (the server prunes unknown fields instead);
//! `default`s are dropped (the server would write them into stored objects); and
//! `metadata` is left to the server.
//!
//! Decision: the CRD is cluster-scoped. A profile is keyed by an image digest,
//! which means the same thing in every namespace, and the agent enforces it for
//! every container of that digest wherever it runs.

use serde_json::{Map, Value, json};

/// The CRD's group.
pub const GROUP: &str = "imprint.dev";
/// The CRD's name, `<plural>.<group>`.
pub const CRD_NAME: &str = "profiles.imprint.dev";

/// The `Profile` CustomResourceDefinition (`apiextensions.k8s.io/v1`).
pub fn profile_crd() -> Value {
    let schema = crate::json_schema();
    let definitions = schema
        .get("$defs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut root = structural(&schema, &definitions);
    if let Some(properties) = root.get_mut("properties").and_then(Value::as_object_mut) {
        properties.remove("metadata");
        for field in ["apiVersion", "kind"] {
            properties.insert(field.into(), json!({"type": "string"}));
        }
    }
    if let Some(required) = root.get_mut("required").and_then(Value::as_array_mut) {
        required.retain(|r| r != "apiVersion" && r != "kind");
    }
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": CRD_NAME,
            "labels": {"app.kubernetes.io/name": "imprint"},
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": crate::KIND,
                "listKind": "ProfileList",
                "plural": "profiles",
                "singular": "profile",
                "categories": ["imprint"],
            },
            "scope": "Cluster",
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "schema": {"openAPIV3Schema": root},
                "additionalPrinterColumns": [
                    {"name": "Image", "type": "string", "jsonPath": ".image.reference"},
                    {"name": "Digest", "type": "string", "jsonPath": ".image.digest"},
                    {"name": "Completeness", "type": "string", "jsonPath": ".learning.completeness"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
            }],
        },
    })
}

/// The CRD as the YAML file `deploy/base/profile-crd.yaml` holds.
pub fn profile_crd_yaml() -> String {
    format!(
        "# Generated from the Rust types by `imprint schema profile-crd`; do not edit.\n{}",
        serde_saphyr::to_string(&profile_crd()).expect("a JSON value serializes as YAML")
    )
}

/// Rewrites one draft 2020-12 schema node into a structural OpenAPI v3 one.
fn structural(node: &Value, definitions: &Map<String, Value>) -> Value {
    let Some(object) = node.as_object() else {
        return node.clone();
    };
    // A reference: inline the definition, keeping the description given here.
    if let Some(target) = object.get("$ref").and_then(Value::as_str) {
        let name = target.trim_start_matches("#/$defs/");
        let mut inlined = structural(&definitions[name], definitions);
        if let (Some(d), Some(out)) = (object.get("description"), inlined.as_object_mut()) {
            out.insert("description".into(), d.clone());
        }
        return inlined;
    }
    // `anyOf: [X, {type: null}]`: X, nullable.
    if let Some(any) = object.get("anyOf").and_then(Value::as_array) {
        let non_null: Vec<&Value> = any
            .iter()
            .filter(|v| v.get("type") != Some(&json!("null")))
            .collect();
        if non_null.len() == 1 {
            let mut out = structural(non_null[0], definitions);
            if let Some(out) = out.as_object_mut() {
                if non_null.len() < any.len() {
                    out.insert("nullable".into(), true.into());
                    null_in_enum(out);
                }
                if let Some(d) = object.get("description") {
                    out.insert("description".into(), d.clone());
                }
            }
            return out;
        }
    }
    // `oneOf` string constants: an enum.
    if let Some(one) = object.get("oneOf").and_then(Value::as_array)
        && let Some(values) = one
            .iter()
            .map(|v| v.get("const").cloned())
            .collect::<Option<Vec<_>>>()
    {
        let mut out = Map::new();
        out.insert("type".into(), "string".into());
        out.insert("enum".into(), values.into());
        if let Some(d) = object.get("description") {
            out.insert("description".into(), d.clone());
        }
        return Value::Object(out);
    }
    let mut out = structural_fields(object, definitions);
    if out.get("nullable") == Some(&Value::Bool(true)) {
        null_in_enum(&mut out);
    }
    Value::Object(out)
}

/// A nullable enum lists null too: the API server checks the enum before nullable.
fn null_in_enum(node: &mut Map<String, Value>) {
    if let Some(values) = node.get_mut("enum").and_then(Value::as_array_mut)
        && !values.contains(&Value::Null)
    {
        values.push(Value::Null);
    }
}

fn structural_fields(
    object: &Map<String, Value>,
    definitions: &Map<String, Value>,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in object {
        match key.as_str() {
            "$defs" | "$id" | "$schema" | "title" | "default" => {}
            "additionalProperties" if value == &Value::Bool(false) => {}
            "const" => {
                out.insert("enum".into(), json!([value]));
            }
            "uniqueItems" if value == &Value::Bool(true) => {
                out.insert("x-kubernetes-list-type".into(), "set".into());
            }
            // Kubernetes knows int32/int64; uint16 and friends are bounds it gets from min/max.
            "format" if value.as_str().is_some_and(|f| f.starts_with("uint")) => {}
            "type" => match value.as_array() {
                Some(types) => {
                    let non_null: Vec<&Value> = types.iter().filter(|t| *t != "null").collect();
                    out.insert("type".into(), non_null[0].clone());
                    if non_null.len() < types.len() {
                        out.insert("nullable".into(), true.into());
                    }
                }
                None => {
                    out.insert("type".into(), value.clone());
                }
            },
            "properties" => {
                let properties = value
                    .as_object()
                    .map(|p| {
                        p.iter()
                            .map(|(k, v)| (k.clone(), structural(v, definitions)))
                            .collect::<Map<_, _>>()
                    })
                    .unwrap_or_default();
                out.insert(key.clone(), Value::Object(properties));
            }
            "items" | "additionalProperties" => {
                out.insert(key.clone(), structural(value, definitions));
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks every schema node with its path.
    fn walk<'a>(node: &'a Value, path: String, visit: &mut impl FnMut(&str, &'a Value)) {
        visit(&path, node);
        if let Some(properties) = node.get("properties").and_then(Value::as_object) {
            for (k, v) in properties {
                walk(v, format!("{path}.{k}"), visit);
            }
        }
        for key in ["items", "additionalProperties"] {
            if let Some(v) = node.get(key).filter(|v| v.is_object()) {
                walk(v, format!("{path}[{key}]"), visit);
            }
        }
    }

    #[test]
    fn the_schema_is_structural() {
        let crd = profile_crd();
        let root = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        walk(root, "$".into(), &mut |path, node| {
            assert!(
                node.get("type").is_some_and(Value::is_string),
                "{path}: no single type"
            );
            for forbidden in [
                "$ref",
                "anyOf",
                "oneOf",
                "const",
                "uniqueItems",
                "default",
                "$defs",
            ] {
                assert!(node.get(forbidden).is_none(), "{path}: {forbidden}");
            }
            assert_ne!(
                node.get("additionalProperties"),
                Some(&Value::Bool(false)),
                "{path}"
            );
        });
        assert!(root["properties"].get("metadata").is_none());
        assert_eq!(root["required"], json!(["image", "learning"]));
        assert_eq!(
            root["properties"]["learning"]["properties"]["completeness"]["enum"],
            json!(["partial", "complete"])
        );
        assert_eq!(
            root["properties"]["opens"]["items"]["properties"]["flags"]["x-kubernetes-list-type"],
            "set"
        );
        let port =
            &root["properties"]["network"]["properties"]["egress"]["items"]["properties"]["port"];
        assert_eq!(port["type"], "integer");
        assert_eq!(port["nullable"], true);
        assert_eq!(port["maximum"], 65535);
    }
}
