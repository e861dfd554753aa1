//! The imprint node agent's parts: the eBPF [`sensor`], [`attribution`] of events
//! to containers and images, [`translate`] of kernel records into the event
//! model, the [`tracker`] that ties them together, [`learn`] mode, and the
//! [`metrics`] endpoint.
//! `src/main.rs` is the `imprint-agent` binary on top.

pub mod attribution;
pub mod config;
pub mod delivered;
pub mod kubernetes;
pub mod learn;
pub mod metrics;
pub mod outputs;
pub mod resolver;
pub mod sensor;
pub mod tracker;
pub mod translate;

/// Recorded inputs of the unit tests, in `tests/data/`.
#[cfg(test)]
pub(crate) fn test_data(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name),
    )
    .unwrap()
}
