//! Any bytes as a ring-buffer record: the decoder returns a record or an error,
//! never panics; a record one byte shorter than the size its type needs is a
//! `Short` error, never a record read past its end.
#![no_main]

use imprint_agent_ebpf::{DecodeError, decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((header, record)) = decode(data) else { return };
    let _ = format!("{header:?} {record:?}");
    // The shortest prefix that still decodes is the size of its type.
    let mut shortest = data.len();
    while shortest > 0 && decode(&data[..shortest - 1]).is_ok() {
        shortest -= 1;
    }
    if shortest > 0 {
        assert!(matches!(decode(&data[..shortest - 1]), Err(DecodeError::Short { .. })));
    }
});
