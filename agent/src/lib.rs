//! The imprint node agent, `imprint-agent`.
//!
//! - [`settings`]: the flags and the `AgentConfig` file, one type;
//! - [`modes`]: learn and enforce mode, each a loop over [`sensing`];
//! - [`sensing`]: the eBPF [`sensor`], [`attribution`] of events to containers
//!   and images ([`pods`], the [`kubernetes`] watchers), [`translate`] of kernel
//!   records into the event model, and the [`tracker`] that ties them together;
//! - [`learn`]: the learning session and its state log;
//! - [`resolver`]: which verified profile is enforced for each image digest, from
//!   the registry and the [`delivered`] profiles;
//! - [`outputs`] for alerts, [`metrics`] for Prometheus and the health endpoints,
//!   and [`status`] for what is enforced where (`/status`, `imprint-agent status`).
//!
//! `src/main.rs` is the binary on top: it parses the settings and runs the mode.

pub mod attribution;
pub mod delivered;
pub mod kubernetes;
pub mod learn;
pub mod metrics;
pub mod modes;
pub mod outputs;
pub mod pods;
pub mod resolver;
pub mod sensing;
pub mod sensor;
pub mod settings;
pub mod status;
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
