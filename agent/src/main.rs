//! `imprint-agent`, the node agent: parses its settings (flags and `--config`)
//! and runs the mode they name. Everything else is in the library.

use std::process::ExitCode;

use imprint_agent::settings::{Settings, SettingsError};

fn main() -> ExitCode {
    let settings = match Settings::load(std::env::args_os()) {
        Ok(s) => s,
        // clap prints help, versions and usage errors its own way (exit 0 or 2).
        Err(SettingsError::CommandLine(e)) => e.exit(),
        Err(e) => return fail(&anyhow::Error::new(e)),
    };
    match imprint_agent::modes::run(&settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(error: &anyhow::Error) -> ExitCode {
    eprintln!("imprint-agent: error: {error:#}");
    ExitCode::from(2)
}
