//! The published JSON Schema files agree with the Rust types, and accept the
//! documents the types accept.
//!
//! Regenerate after changing the types: `IMPRINT_BLESS=1 cargo test -p imprint-schema --test published_schema`.

use std::path::PathBuf;

use imprint_schema::{Exec, Open, OpenFlags, Peer, Profile, Protocol};

fn schema_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("profile.v1.schema.json")
}

#[test]
fn published_schema_matches_the_types() {
    let generated = serde_json::to_string_pretty(&imprint_schema::json_schema()).unwrap() + "\n";
    if std::env::var_os("IMPRINT_BLESS").is_some() {
        std::fs::write(schema_path(), &generated).unwrap();
    }
    let published = std::fs::read_to_string(schema_path()).expect("schema/profile.v1.schema.json");
    assert!(
        published == generated,
        "schema/profile.v1.schema.json is out of date with the Profile types; \
         run IMPRINT_BLESS=1 cargo test -p imprint-schema --test published_schema"
    );
}

/// `deploy/base/profile-crd.yaml` is what `imprint schema profile-crd` prints.
#[test]
fn published_crd_matches_the_types() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/base/profile-crd.yaml");
    let generated = imprint_schema::crd::profile_crd_yaml();
    if std::env::var_os("IMPRINT_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
    }
    let published = std::fs::read_to_string(&path).expect("deploy/base/profile-crd.yaml");
    assert!(
        published == generated,
        "deploy/base/profile-crd.yaml is out of date with the Profile types; \
         run IMPRINT_BLESS=1 cargo test -p imprint-schema --test published_schema"
    );
}

/// The CRD's schema, read back as a JSON Schema, accepts a profile object the
/// types write and refuses one they refuse: what the API server admits, the
/// agent can parse.
#[test]
fn the_crd_schema_admits_what_the_types_accept() {
    let crd: serde_json::Value =
        serde_saphyr::from_str(&imprint_schema::crd::profile_crd_yaml()).unwrap();
    let mut schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone();
    // OpenAPI's `nullable` is JSON Schema's `type: [T, "null"]`.
    fn denull(v: &mut serde_json::Value) {
        if let Some(o) = v.as_object_mut() {
            if o.remove("nullable") == Some(serde_json::Value::Bool(true)) {
                let t = o["type"].clone();
                o.insert("type".into(), serde_json::json!([t, "null"]));
                if let Some(e) = o.get_mut("enum").and_then(|e| e.as_array_mut())
                    && !e.contains(&serde_json::Value::Null)
                {
                    e.push(serde_json::Value::Null);
                }
            }
            o.values_mut().for_each(denull);
        }
    }
    denull(&mut schema);
    let validator = jsonschema::validator_for(&schema).unwrap();
    let object = serde_json::to_value(sample()).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&object)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    let mut bad = object.clone();
    bad["learning"]["completeness"] = "mostly".into();
    assert!(!validator.is_valid(&bad));
    let mut bad = object.clone();
    bad["network"]["egress"][0]["port"] = 70000.into();
    assert!(!validator.is_valid(&bad));
    let mut bad = object;
    bad["opens"][0]["flags"] = serde_json::json!(["O_SOMETIMES"]);
    assert!(!validator.is_valid(&bad));
}

fn sample() -> Profile {
    let mut p = Profile::new(format!("sha256:{}", "ab".repeat(32)).parse().unwrap());
    p.image.platform = Some("linux/amd64".into());
    p.execs.push(Exec {
        path: "/bin/cat".into(),
        args: Some(vec!["/etc/passwd".into()]),
    });
    p.opens.push(Open {
        path: "/proc/*/stat".into(),
        flags: OpenFlags::from_names(["O_RDONLY", "O_CLOEXEC"]).unwrap(),
    });
    p.syscalls.push("openat".into());
    p.capabilities.push("NET_RAW".into());
    p.network.egress.push(Peer {
        dns: Some("example.com".into()),
        cidr: None,
        port: Some(443),
        protocol: Some(Protocol::Tcp),
    });
    p.network.ingress.push(Peer {
        dns: None,
        cidr: Some("10.0.0.0/8".into()),
        port: Some(80),
        protocol: Some(Protocol::Tcp),
    });
    p.learning.start = Some("2026-11-26T10:00:00Z".parse().unwrap());
    p.learning.end = Some("2026-11-27T10:00:00Z".parse().unwrap());
    p
}

#[test]
fn schema_accepts_what_the_types_write_and_rejects_what_they_refuse() {
    let published: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path()).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&published).expect("the schema compiles");
    let good: serde_json::Value =
        serde_json::from_slice(&imprint_schema::to_canonical_json(&sample())).unwrap();
    assert!(
        validator.is_valid(&good),
        "{:?}",
        validator
            .iter_errors(&good)
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
    );

    let mut bad_digest = good.clone();
    bad_digest["image"]["digest"] = "latest".into();
    let mut unknown_field = good.clone();
    unknown_field["extra"] = true.into();
    let mut bad_flag = good.clone();
    bad_flag["opens"][0]["flags"] = serde_json::json!(["O_BOGUS"]);
    let mut bad_version = good.clone();
    bad_version["apiVersion"] = "imprint.dev/v2".into();
    let mut bad_completeness = good.clone();
    bad_completeness["learning"]["completeness"] = "mostly".into();
    for (name, doc) in [
        ("digest", bad_digest),
        ("unknown field", unknown_field),
        ("flag", bad_flag),
        ("apiVersion", bad_version),
        ("completeness", bad_completeness),
    ] {
        assert!(!validator.is_valid(&doc), "schema accepted a bad {name}");
        // The Rust side refuses it too.
        assert!(
            imprint_schema::parse_profile(doc.to_string().as_bytes()).is_err(),
            "types accepted a bad {name}"
        );
    }
}
