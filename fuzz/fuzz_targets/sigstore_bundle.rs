//! Any bytes as a sigstore bundle (a bundle referrer's layer): imprint's
//! `Bundle::parse` refuses or returns a bundle with one content, and then
//! sigstore's own parser, where it accepts the bytes, reads the same content: the
//! same DSSE payload type and payload bytes, or a message signature. That is the
//! property the keyless check relies on (what is verified is what is used).
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use imprint_oci::signing::{Bundle, check_bundle_unambiguous};
use libfuzzer_sys::fuzz_target;
use sigstore_verify::types::SignatureContent;

fuzz_target!(|data: &[u8]| {
    let ours = Bundle::parse(data);
    if ours.is_ok() {
        check_bundle_unambiguous(data).expect("a parsed bundle is unambiguous");
    }
    let Ok(ours) = ours else {
        return;
    };
    assert!(ours.dsse_envelope.is_some() != ours.message_signature.is_some());
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(theirs) = sigstore_verify::types::Bundle::from_json(text) else {
        return;
    };
    match (&ours.dsse_envelope, &theirs.content) {
        (Some(envelope), SignatureContent::DsseEnvelope(verified)) => {
            assert_eq!(envelope.payload_type, verified.payload_type);
            if let Ok(payload) = STANDARD.decode(&envelope.payload) {
                assert_eq!(payload, verified.payload.as_bytes());
            }
        }
        (None, SignatureContent::MessageSignature(_)) => {}
        (mine, _) => panic!(
            "imprint read {}, sigstore read another content",
            if mine.is_some() {
                "a DSSE envelope"
            } else {
                "a message signature"
            }
        ),
    }
});
