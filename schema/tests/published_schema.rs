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

fn sample() -> Profile {
    let mut p = Profile::new(format!("sha256:{}", "ab".repeat(32)));
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
