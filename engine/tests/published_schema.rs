//! `schema/events.v1.schema.json` agrees with the event types and accepts the
//! recorded demo stream.
//!
//! Regenerate after changing the types: `IMPRINT_BLESS=1 cargo test -p imprint-engine --test published_schema`.

use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn published_event_schema_matches_the_types() {
    let path = root().join("schema/events.v1.schema.json");
    let generated =
        serde_json::to_string_pretty(&imprint_engine::event::json_schema()).unwrap() + "\n";
    if std::env::var_os("IMPRINT_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let published = std::fs::read_to_string(&path).expect("schema/events.v1.schema.json");
    assert!(
        published == generated,
        "schema/events.v1.schema.json is out of date with the event types; \
         run IMPRINT_BLESS=1 cargo test -p imprint-engine --test published_schema"
    );
}

#[test]
fn demo_stream_validates_against_the_schema_and_the_types() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("schema/events.v1.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let text = std::fs::read_to_string(root().join("examples/demo/events.jsonl")).unwrap();
    let mut kinds = std::collections::BTreeSet::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.starts_with('#'))
    {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(
            validator.is_valid(&value),
            "line {}: {:?}",
            i + 1,
            validator
                .iter_errors(&value)
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
        );
        let event = imprint_engine::event::parse_line(line.as_bytes(), i as u64 + 1).unwrap();
        kinds.insert(event.kind.type_name());
    }
    assert!(kinds.len() >= 8, "{kinds:?}");
    let mut bad: serde_json::Value = serde_json::from_str(text.lines().nth(2).unwrap()).unwrap();
    bad["type"] = "teleport".into();
    assert!(!validator.is_valid(&bad));
    let mut bad: serde_json::Value = serde_json::from_str(text.lines().nth(2).unwrap()).unwrap();
    bad["imageDigest"] = "sha256:AB".into();
    assert!(!validator.is_valid(&bad));
    let mut bad: serde_json::Value = serde_json::from_str(text.lines().nth(2).unwrap()).unwrap();
    bad.as_object_mut().unwrap().remove("containerId");
    assert!(!validator.is_valid(&bad));
    // An event of a container whose image is not known yet still meets the rules.
    let mut unattributed: serde_json::Value =
        serde_json::from_str(text.lines().nth(2).unwrap()).unwrap();
    unattributed.as_object_mut().unwrap().remove("imageDigest");
    assert!(validator.is_valid(&unattributed));
}
