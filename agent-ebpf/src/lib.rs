//! imprint's kernel programs.
//!
//! The C sources and their `build.rs` arrive with the sensor work; until then this
//! crate exposes no object, and [`OBJECT`] is `None` so callers can say so plainly.

/// The compiled BPF object, when one was built.
pub const OBJECT: Option<&[u8]> = None;
