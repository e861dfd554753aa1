//! Any bytes as a revocation: as its predicate, and as an in-toto statement
//! about a fixed image digest checked as a revocation. A statement that is
//! accepted names that image, in its subject and its predicate; its predicate
//! survives a JSON round trip.
#![no_main]

use imprint_oci::signing::Statement;
use imprint_oci::{RevocationPredicate, check_revocation_statement, revocation_statement};
use imprint_schema::Digest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let image = Digest::sha256_of(b"the image");
    if let Ok(predicate) = serde_json::from_slice::<RevocationPredicate>(data) {
        let again = serde_json::to_vec(&predicate).expect("predicates serialize");
        let back: RevocationPredicate = serde_json::from_slice(&again).expect("round trip");
        assert_eq!(back, predicate);
    }
    let Ok(statement) = Statement::parse_for(data, &image) else {
        return;
    };
    if let Ok(predicate) = check_revocation_statement(&statement, &image) {
        assert_eq!(predicate.image_digest, image);
        // What it revokes, written again, is accepted again.
        let written = revocation_statement("r/app", &predicate);
        assert_eq!(check_revocation_statement(&written, &image).ok(), Some(predicate));
    }
});
