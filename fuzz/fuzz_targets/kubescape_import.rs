//! Any bytes as a Kubescape object: an error or valid profiles, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let options = imprint_schema::kubescape::ImportOptions {
        image_digest: Some(format!("sha256:{}", "a".repeat(64)).parse().unwrap()),
        container: None,
    };
    if let Ok(imported) = imprint_schema::kubescape::import(data, &options) {
        for item in imported {
            assert!(imprint_schema::validate(&item.profile).is_empty());
        }
    }
});
