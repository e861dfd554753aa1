//! Any bytes as a pulled manifest: `layout::parse_manifest` (default limits)
//! refuses or returns a manifest; the verdict is the same whether or not the caller
//! pulled it by its own digest; a manifest serde reads survives a round trip.
#![no_main]

use imprint_oci::layout::{Limits, Manifest, parse_manifest};
use imprint_schema::Digest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let unpinned = parse_manifest(data, None, &limits);
    let pinned = parse_manifest(data, Some(&Digest::sha256_of(data)), &limits);
    assert_eq!(unpinned.as_ref().ok(), pinned.as_ref().ok());
    // Pinned to other bytes' digest, it is always refused.
    if data != b"other" {
        let other = Digest::sha256_of(b"other");
        assert!(parse_manifest(data, Some(&other), &limits).is_err());
    }
    if let Ok(manifest) = serde_json::from_slice::<Manifest>(data) {
        let again = serde_json::to_vec(&manifest).expect("manifests serialize");
        let back: Manifest = serde_json::from_slice(&again).expect("a written manifest parses");
        assert_eq!(back, manifest);
    }
    if let Ok(manifest) = unpinned {
        assert_eq!(manifest.schema_version, 2);
    }
});
