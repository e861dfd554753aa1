//! Any bytes as a DSSE envelope (an `.att` layer, or the inside of a bundle):
//! `Envelope::parse` refuses or returns an envelope that survives a JSON round
//! trip; its payload, read as an in-toto statement about a fixed digest, is
//! refused or about that digest; verifying it with a key never panics.
#![no_main]

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use imprint_oci::signing::{Envelope, Statement, pae};
use imprint_oci::{KeyAlgorithm, SigningKey, VerifyingKey};
use imprint_schema::Digest;
use libfuzzer_sys::fuzz_target;

/// One key for the whole run: generating one per input would be all the run did.
fn key() -> &'static VerifyingKey {
    static KEY: OnceLock<VerifyingKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate(KeyAlgorithm::EcdsaP256).verifying_key())
}

fn subject() -> Digest {
    Digest::sha256_of(b"the artifact")
}

fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = Envelope::parse(data) else {
        return;
    };
    let again = serde_json::to_vec(&envelope).expect("envelopes serialize");
    assert_eq!(
        Envelope::parse(&again).expect("a written envelope parses"),
        envelope
    );
    let Ok(payload) = STANDARD.decode(&envelope.payload) else {
        return;
    };
    let message = pae(&envelope.payload_type, &payload);
    assert!(message.ends_with(&payload));
    if let Ok(statement) = Statement::parse_for(&payload, &subject()) {
        let hex = subject().hex().to_string();
        assert!(
            statement
                .subject
                .iter()
                .any(|s| s.digest.get("sha256") == Some(&hex))
        );
    }
    // A random key verifies nothing a fuzzer writes; it must only not panic.
    assert!(envelope.verify(std::slice::from_ref(key())).is_err());
});
