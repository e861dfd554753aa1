//! Reading profile documents: both syntaxes, the canonical form, and every kind of
//! bad input getting a located error instead of a panic.

use imprint_schema::{DocumentError, parse_profile_with_limit};
use imprint_schema::{digest, parse_profile, to_canonical_json, to_yaml};

const DIGEST: &str = "sha256:4d2e3f8c9b1a0e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928170654";

fn yaml() -> String {
    format!(
        r#"apiVersion: imprint.dev/v1
kind: Profile
image:
  digest: {DIGEST}
  reference: registry.test/app:1
learning:
  completeness: complete
  start: 2026-11-26T10:00:00Z
  end: 2026-11-27T10:00:00Z
  observedContainers: 2
execs:
  - path: /bin/sh
  - path: /bin/cat
    args: [/etc/passwd]
opens:
  - path: /etc/passwd
    flags: [O_RDONLY]
  - path: /proc/*/stat
    flags: [O_RDONLY, O_CLOEXEC]
  - path: /etc/passwd
    flags: [O_CLOEXEC]
syscalls: [write, read, read]
capabilities: [NET_BIND_SERVICE]
network:
  egress:
    - dns: example.com
    - cidr: 10.0.0.0/8
      port: 443
      protocol: TCP
"#
    )
}

#[test]
fn yaml_and_json_give_the_same_canonical_bytes() {
    let from_yaml = parse_profile(yaml().as_bytes()).unwrap();
    let json = String::from_utf8(to_canonical_json(&from_yaml)).unwrap();
    assert!(!json.contains('\n') && !json.contains(": "), "{json}");
    let from_json = parse_profile(json.as_bytes()).unwrap();
    assert_eq!(from_yaml, from_json);
    assert_eq!(digest(&from_yaml), digest(&from_json));
    // Sets are normalised: duplicates gone, opens of one path merged.
    assert_eq!(from_yaml.syscalls, ["read", "write"]);
    assert_eq!(from_yaml.opens.len(), 2);
    assert_eq!(from_yaml.opens[0].flags.names(), ["O_CLOEXEC", "O_RDONLY"]);
    // Canonical YAML reads back to the same profile.
    assert_eq!(
        parse_profile(to_yaml(&from_yaml).as_bytes()).unwrap(),
        from_yaml
    );
}

#[test]
fn order_of_input_does_not_change_the_digest() {
    let a = parse_profile(yaml().as_bytes()).unwrap();
    let reordered = yaml().replace("syscalls: [write, read, read]", "syscalls: [read, write]");
    let b = parse_profile(reordered.as_bytes()).unwrap();
    assert_eq!(digest(&a), digest(&b));
    let changed = yaml().replace("syscalls: [write, read, read]", "syscalls: [read]");
    assert_ne!(
        digest(&a),
        digest(&parse_profile(changed.as_bytes()).unwrap())
    );
}

#[test]
fn canonical_json_sorts_keys() {
    let p = parse_profile(yaml().as_bytes()).unwrap();
    let json = String::from_utf8(to_canonical_json(&p)).unwrap();
    assert!(
        json.starts_with(
            r#"{"apiVersion":"imprint.dev/v1","capabilities":["NET_BIND_SERVICE"],"execs":"#
        ),
        "{json}"
    );
}

fn err(input: &[u8]) -> String {
    parse_profile(input).unwrap_err().to_string()
}

#[test]
fn truncated_json_is_located() {
    let json = String::from_utf8(to_canonical_json(
        &parse_profile(yaml().as_bytes()).unwrap(),
    ))
    .unwrap();
    let e = err(&json.as_bytes()[..json.len() / 2]);
    assert!(e.starts_with("1:"), "{e}");
    assert!(e.contains("EOF"), "{e}");
}

#[test]
fn truncated_yaml_is_located() {
    let y = yaml();
    let cut = &y[..y.find("  - path: /proc").unwrap() + 12];
    let e = parse_profile(cut.as_bytes()).unwrap_err();
    assert!(
        matches!(e, DocumentError::Syntax { .. } | DocumentError::Invalid(_)),
        "{e}"
    );
}

#[test]
fn wrong_types_name_the_field() {
    let e = err(yaml()
        .replace("observedContainers: 2", "observedContainers: many")
        .as_bytes());
    assert!(
        e.contains("observedContainers") || e.contains("many"),
        "{e}"
    );
    let json = r#"{"apiVersion":"imprint.dev/v1","kind":"Profile","image":{"digest":"sha256:DIGEST"},"learning":{"completeness":"complete"},"opens":[{"path":"/x","flags":"O_RDONLY"}]}"#;
    let e = err(json.replace("DIGEST", &"ab".repeat(32)).as_bytes());
    assert!(e.contains("opens[0].flags"), "{e}");
    assert!(e.starts_with("1:"), "{e}");
}

#[test]
fn a_bad_digest_is_refused_where_it_stands() {
    let e = err(yaml().replace("sha256:", "sha256:AB").as_bytes());
    assert!(e.contains("image.digest"), "{e}");
    assert!(e.contains("64 lower-case hex digits"), "{e}");
}

#[test]
fn unknown_fields_are_refused() {
    let e = err(yaml().replace("syscalls:", "syscallz:").as_bytes());
    assert!(e.contains("syscallz"), "{e}");
}

#[test]
fn unknown_api_version_is_named() {
    let e = err(yaml()
        .replace("imprint.dev/v1", "imprint.dev/v2")
        .as_bytes());
    assert_eq!(
        e,
        "apiVersion: unsupported \"imprint.dev/v2\"; this imprint reads apiVersion imprint.dev/v1, kind Profile"
    );
    let e = err(yaml()
        .replace("kind: Profile", "kind: ApplicationProfile")
        .as_bytes());
    assert!(
        e.starts_with("kind: unsupported \"ApplicationProfile\""),
        "{e}"
    );
    let e = err(b"{}");
    assert!(e.starts_with("apiVersion: unsupported missing"), "{e}");
}

#[test]
fn invalid_utf8_is_located() {
    let mut bytes = yaml().into_bytes();
    let at = bytes.windows(6).position(|w| w == b"/bin/s").unwrap();
    bytes[at + 1] = 0xff;
    let e = parse_profile(&bytes).unwrap_err();
    match e {
        DocumentError::Utf8 { position, .. } => {
            assert_eq!(position.line, 12);
            assert_eq!(position.column, 12);
        }
        other => panic!("{other}"),
    }
}

#[test]
fn bad_open_pattern_names_the_entry() {
    let e = err(yaml().replace("/proc/*/stat", "/proc/*.stat").as_bytes());
    assert!(e.contains("opens[1].path"), "{e}");
    assert!(e.contains("'*' and '**' must be whole segments"), "{e}");
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let e = parse_profile_with_limit(yaml().as_bytes(), 100).unwrap_err();
    assert!(
        matches!(e, DocumentError::TooLarge { limit: 100, .. }),
        "{e}"
    );
}

#[test]
fn alias_bombs_do_not_explode() {
    let mut bomb = String::from("a: &a [x,x,x,x,x,x,x,x,x,x]\n");
    for i in 1..12 {
        bomb.push_str(&format!(
            "{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n",
            c = (b'a' + i) as char,
            p = (b'a' + i - 1) as char
        ));
    }
    bomb.push_str("apiVersion: imprint.dev/v1\nkind: Profile\n");
    // Either refused by the parser's budget or rejected as not a profile: never hangs or panics.
    assert!(parse_profile(bomb.as_bytes()).is_err());
}

#[test]
fn arbitrary_bytes_never_panic() {
    let base = yaml().into_bytes();
    for i in (0..base.len()).step_by(7) {
        let _ = parse_profile(&base[..i]);
        let mut flipped = base.clone();
        flipped[i] ^= 0x55;
        let _ = parse_profile(&flipped);
    }
}

#[test]
fn kubernetes_metadata_is_accepted_and_not_behaviour() {
    let plain = parse_profile(yaml().as_bytes()).unwrap();
    let object = yaml().replace(
        "kind: Profile\n",
        "kind: Profile\nmetadata:\n  name: web-2-4-1\n  namespace: imprint-system\n  uid: 6f1c\n  resourceVersion: \"42\"\n  labels:\n    app: web\n",
    );
    let object = parse_profile(object.as_bytes()).unwrap();
    let meta = object.metadata.as_ref().unwrap();
    assert_eq!(meta.name.as_deref(), Some("web-2-4-1"));
    assert_eq!(meta.labels["app"], "web");
    assert_eq!(digest(&object), digest(&plain));
    assert_eq!(to_canonical_json(&object), to_canonical_json(&plain));
    assert_eq!(
        imprint_schema::merge(&object, &object).unwrap().metadata,
        None
    );
}
