use super::*;
use imprint_schema::{Completeness, Exec};

const IMAGE: &str = "sha256:5b0f3a8c2d1e4f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8";

fn profile() -> Profile {
    let mut p = Profile::new(IMAGE.parse().unwrap());
    p.image.reference = Some("registry.test/shop/web:2.4.1".into());
    p.learning.completeness = Completeness::Complete;
    p.execs.push(Exec {
        path: "/bin/cat".into(),
        args: None,
    });
    p.syscalls = vec!["read".into(), "openat".into()];
    p
}

fn subject() -> Descriptor {
    Descriptor {
        media_type: MANIFEST_MEDIA_TYPE.into(),
        digest: IMAGE.parse().unwrap(),
        size: 1234,
        artifact_type: None,
        annotations: BTreeMap::new(),
        platform: None,
    }
}

fn created() -> Timestamp {
    "2026-11-26T12:00:00Z".parse().unwrap()
}

fn pulled(a: &Artifact) -> (Vec<u8>, Vec<Vec<u8>>) {
    (
        a.config.data.clone(),
        a.layers.iter().map(|l| l.data.clone()).collect(),
    )
}

#[test]
fn layout_is_exactly_as_designed() {
    let a = build(&profile(), &subject(), created()).unwrap();
    let m: serde_json::Value = serde_json::from_slice(&a.manifest_bytes).unwrap();
    assert_eq!(m["schemaVersion"], 2);
    assert_eq!(m["mediaType"], MANIFEST_MEDIA_TYPE);
    assert_eq!(m["artifactType"], "application/vnd.imprint.profile.v1+json");
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    assert_eq!(
        m["config"]["digest"],
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    );
    assert_eq!(m["config"]["size"], 2);
    assert_eq!(m["layers"][0]["mediaType"], PROFILE_MEDIA_TYPE);
    assert_eq!(
        m["layers"][1]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    assert_eq!(m["subject"]["digest"], IMAGE);
    assert_eq!(m["subject"]["size"], 1234);
    assert_eq!(m["annotations"][ANNOTATION_CREATED], "2026-11-26T12:00:00Z");
    assert_eq!(m["annotations"][ANNOTATION_IMAGE_DIGEST], IMAGE);
    assert_eq!(
        m["annotations"][ANNOTATION_IMAGE_REFERENCE],
        "registry.test/shop/web:2.4.1"
    );
    assert_eq!(
        a.layers[0].data,
        imprint_schema::to_canonical_json(&profile())
    );
    assert_eq!(a.digest, Digest::sha256_of(&a.manifest_bytes));
}

#[test]
fn building_is_reproducible() {
    let a = build(&profile(), &subject(), created()).unwrap();
    let b = build(&profile(), &subject(), created()).unwrap();
    assert_eq!(a.manifest_bytes, b.manifest_bytes);
    assert_eq!(a.layers[1].data, b.layers[1].data);
}

#[test]
fn tarball_holds_a_kubernetes_profile_object() {
    let a = build(&profile(), &subject(), created()).unwrap();
    let object = read_tarball(&a.layers[1].data, DEFAULT_MAX_BLOB_BYTES).unwrap();
    let meta = object.metadata.as_ref().unwrap();
    assert_eq!(meta.name.as_deref(), Some(&*IMAGE.replace(':', "-")));
    assert_eq!(object.api_version, "imprint.dev/v1");
    assert_eq!(object.kind, "Profile");
    // One entry, a plain file, named profile.yaml.
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&a.layers[1].data[..]));
    let names: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["profile.yaml"]);
}

#[test]
fn a_built_artifact_opens_to_the_same_profile() {
    let a = build(&profile(), &subject(), created()).unwrap();
    let m = parse_manifest(&a.manifest_bytes, Some(&a.digest), &Limits::default()).unwrap();
    let (config, layers) = pulled(&a);
    let p = open(&m, &config, &layers, &Limits::default()).unwrap();
    assert_eq!(p, profile().normalized());
}

#[test]
fn subject_must_be_the_profiles_image_manifest() {
    let mut other = subject();
    other.digest = format!("sha256:{}", "0".repeat(64)).parse().unwrap();
    assert!(matches!(
        build(&profile(), &other, created()),
        Err(LayoutError::SubjectMismatch { .. })
    ));
    let mut index = subject();
    index.media_type = INDEX_MEDIA_TYPE.into();
    assert!(matches!(
        build(&profile(), &index, created()),
        Err(LayoutError::SubjectMediaType(_))
    ));
}

#[test]
fn hostile_manifests_are_refused() {
    let a = build(&profile(), &subject(), created()).unwrap();
    let limits = Limits::default();
    // Pulled by digest, but other bytes came back.
    let mut tampered = a.manifest_bytes.clone();
    tampered.push(b' ');
    let e = parse_manifest(&tampered, Some(&a.digest), &limits).unwrap_err();
    assert!(matches!(e, LayoutError::DigestMismatch { .. }), "{e}");
    // Too large.
    let small = Limits {
        max_manifest_bytes: 100,
        ..limits
    };
    assert!(matches!(
        parse_manifest(&a.manifest_bytes, None, &small),
        Err(LayoutError::TooLarge { .. })
    ));
    // Not JSON.
    assert!(matches!(
        parse_manifest(b"<html>404</html>", None, &limits),
        Err(LayoutError::Manifest(_))
    ));
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v: serde_json::Value = serde_json::from_slice(&a.manifest_bytes).unwrap();
        f(&mut v);
        parse_manifest(&serde_json::to_vec(&v).unwrap(), None, &limits)
            .unwrap_err()
            .to_string()
    };
    assert!(
        edit(&|v| v["artifactType"] = "application/vnd.example+json".into())
            .contains("artifactType")
    );
    assert!(edit(&|v| v["mediaType"] = INDEX_MEDIA_TYPE.into()).contains("media type"));
    assert!(
        edit(&|v| v["config"]["mediaType"] = "application/vnd.oci.image.config.v1+json".into())
            .contains("config media type")
    );
    assert!(edit(&|v| v["layers"][1]["mediaType"] = "text/html".into()).contains("layers"));
    assert!(
        edit(&|v| {
            v.as_object_mut().unwrap().remove("subject");
        })
        .contains("no subject")
    );
    assert!(
        edit(&|v| v["layers"][0]["size"] = (DEFAULT_MAX_BLOB_BYTES + 1).into())
            .contains("more than the limit")
    );
}

#[test]
fn hostile_layers_are_refused() {
    let a = build(&profile(), &subject(), created()).unwrap();
    let limits = Limits::default();
    let (config, layers) = pulled(&a);

    // A tampered profile layer no longer matches its digest.
    let mut bad = layers.clone();
    bad[0][5] ^= 1;
    let e = open(&a.manifest, &config, &bad, &limits).unwrap_err();
    assert!(
        e.to_string().starts_with("layer 0: content does not match"),
        "{e}"
    );

    // A subject that names another image than the profile inside.
    let mut m = a.manifest.clone();
    m.subject.as_mut().unwrap().digest = format!("sha256:{}", "1".repeat(64)).parse().unwrap();
    assert!(matches!(
        open(&m, &config, &layers, &limits),
        Err(LayoutError::SubjectMismatch { .. })
    ));

    // A profile layer that is not a profile, with a matching descriptor.
    let mut m = a.manifest.clone();
    let junk = b"{\"apiVersion\":\"imprint.dev/v2\"}".to_vec();
    m.layers[0] = Descriptor::of(PROFILE_MEDIA_TYPE, &junk);
    let e = open(&m, &config, &[junk, layers[1].clone()], &limits).unwrap_err();
    assert!(
        e.to_string().contains("unsupported \"imprint.dev/v2\""),
        "{e}"
    );

    // A tarball whose profile disagrees with the canonical layer.
    let mut other = profile();
    other.syscalls.push("ptrace".into());
    let tar = profile_tarball(&other);
    let mut m = a.manifest.clone();
    m.layers[1] = Descriptor::of(PROFILE_TARBALL_MEDIA_TYPE, &tar);
    let e = open(&m, &config, &[layers[0].clone(), tar], &limits).unwrap_err();
    assert!(
        e.to_string().contains("does not hold the same profile"),
        "{e}"
    );

    // A gzip bomb in the tarball layer is cut at the bound.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, &vec![0u8; 64 << 20]).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 1 << 20);
    assert!(read_tarball(&bomb, DEFAULT_MAX_BLOB_BYTES).is_err());

    // An oversized layer, whatever its descriptor says.
    let big = vec![b' '; (DEFAULT_MAX_BLOB_BYTES + 1) as usize];
    let e = check_blob(
        "layer 0",
        &a.manifest.layers[0],
        &big,
        DEFAULT_MAX_BLOB_BYTES,
    )
    .unwrap_err();
    assert!(matches!(e, LayoutError::TooLarge { .. }), "{e}");
}

#[test]
fn a_malformed_listing_entry_is_set_aside_not_a_reason_to_lose_the_others() {
    let good = serde_json::json!({"mediaType": MANIFEST_MEDIA_TYPE, "digest": IMAGE, "size": 10});
    let listed = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [
            {"mediaType": MANIFEST_MEDIA_TYPE, "digest": "sha256:junk", "size": 1},
            good,
            {"mediaType": MANIFEST_MEDIA_TYPE, "digest": IMAGE},
        ]
    });
    let listing = Listing::parse(listed).unwrap();
    assert_eq!(listing.manifests.len(), 1);
    assert_eq!(listing.manifests[0].digest, IMAGE);
    assert_eq!(listing.rejected.len(), 2, "{:?}", listing.rejected);
    assert!(
        listing.rejected[0].1.contains("not a digest"),
        "{:?}",
        listing.rejected
    );
    assert!(
        listing.rejected[1].1.contains("size"),
        "{:?}",
        listing.rejected
    );
    // A listing with no entries is empty; one that is not an index is an error.
    assert_eq!(
        Listing::parse(serde_json::json!({})).unwrap(),
        Listing::default()
    );
    assert!(Listing::parse(serde_json::json!([1])).is_err());
    assert!(Listing::parse(serde_json::json!({"manifests": 3})).is_err());
    let huge = "x".repeat(10_000);
    let listing = Listing::parse(serde_json::json!({"manifests": [huge]})).unwrap();
    assert!(listing.rejected[0].0.len() <= 200);
}
