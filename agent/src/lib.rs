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
