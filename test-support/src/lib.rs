//! Test support shared by imprint's tests (a dev-dependency only): a real
//! `docker-registry` on loopback, a fault-injecting HTTP proxy in front of it,
//! one-layer test images pushed over the registry's HTTP API, and the skip switch.
//!
//! A test that needs something the machine lacks (a package, a service, root, a
//! kernel feature, a `../shared` file) calls [`skip`] and returns; CI sets
//! `IMPRINT_NO_SKIP=1`, which turns each such skip into a failure, so a missing
//! install step cannot pass as a green run. Only [`skip_other_arch`] stays a skip.

mod image;
mod proxy;
mod registry;
mod skip;

pub use image::{TestImage, push_image, push_test_image};
pub use proxy::{Fault, FaultProxy};
pub use registry::{TestRegistry, free_loopback_addr};
pub use skip::{NO_SKIP_VARIABLE, no_skip, skip, skip_other_arch};
