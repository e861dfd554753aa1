//! Any bytes: `parse_profile` returns an error or a profile, never panics; a profile
//! it returns survives a canonical round trip with its behaviour unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(profile) = imprint_schema::parse_profile(data) {
        let canonical = imprint_schema::to_canonical_json(&profile);
        let again = imprint_schema::parse_profile(&canonical).expect("canonical JSON parses");
        // The canonical form leaves Kubernetes metadata out; the behaviour is all there.
        let mut behaviour = profile.clone();
        behaviour.metadata = None;
        assert_eq!(again, behaviour);
        let yaml = imprint_schema::to_yaml(&profile);
        let again = imprint_schema::parse_profile(yaml.as_bytes()).expect("canonical YAML parses");
        assert_eq!(imprint_schema::digest(&again), imprint_schema::digest(&profile));
    }
});
