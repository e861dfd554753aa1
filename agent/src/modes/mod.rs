//! The agent's two modes, each run until a signal: [`learn`] writes one profile
//! per image digest; [`enforce`] judges every container against its verified
//! profile and the behaviour rules, and sends alerts.

pub mod enforce;
pub mod learn;

use crate::settings::{Mode, Settings};

/// Runs the mode the settings name.
pub fn run(settings: &Settings) -> anyhow::Result<()> {
    match settings.mode {
        None => anyhow::bail!("no mode: give --mode learn|enforce, or mode: in --config"),
        Some(Mode::Learn) => learn::run(settings),
        Some(Mode::Enforce) => enforce::run(settings),
    }
}
