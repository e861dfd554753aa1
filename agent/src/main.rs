//! `imprint-agent`, the node agent: parses its settings (flags and `--config`)
//! and runs the mode they name; `imprint-agent status` asks a running one.
//! Everything else is in the library.

use std::process::ExitCode;

use clap::Parser;
use imprint_agent::settings::{Settings, SettingsError};
use imprint_agent::status::StatusCommand;

fn main() -> ExitCode {
    // `imprint-agent status` asks a running agent; everything else runs one.
    if std::env::args_os().nth(1).is_some_and(|a| a == "status") {
        return status(std::env::args_os().skip(1));
    }
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

/// Exit 0: the resolver runs; 1: it has stopped; 2: the agent cannot be asked.
fn status(args: impl Iterator<Item = std::ffi::OsString>) -> ExitCode {
    match StatusCommand::parse_from(args).run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => fail(&anyhow::Error::new(e)),
    }
}

fn fail(error: &anyhow::Error) -> ExitCode {
    // Causes quote URLs (reqwest, oci-client): their credentials are not printed.
    let error = imprint_oci::redact::Redacted(error);
    eprintln!("imprint-agent: error: {error:#}");
    ExitCode::from(2)
}
