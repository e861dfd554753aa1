//! A registry client made from [`RegistryFlags`], the runtime it runs on, and how
//! its errors map to exit codes.

use std::time::Duration;

use anyhow::Context;
use imprint_oci::credentials::{self, Credential};
use imprint_oci::{Reference, Registry, RegistryError, RegistryOptions};

use crate::files::Failure;
use crate::options::RegistryFlags;

/// A single-threaded runtime: each command makes a few requests in turn.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The credential for the registry of `reference`: flags first, then the config files.
fn credential(flags: &RegistryFlags, reference: &Reference) -> anyhow::Result<Option<Credential>> {
    if let Some(username) = &flags.username {
        let mut password = String::new();
        std::io::stdin()
            .read_line(&mut password)
            .context("cannot read the password from stdin")?;
        let password = password.trim_end_matches(['\n', '\r']).to_string();
        anyhow::ensure!(
            !password.is_empty(),
            "--password-stdin: no password on stdin"
        );
        return Ok(Some(Credential::Basic {
            username: username.clone(),
            password,
        }));
    }
    let paths = credentials::config_paths(|k| std::env::var(k).ok());
    Ok(credentials::find(
        reference.resolve_registry(),
        &paths,
        None,
    )?)
}

/// A client for the registries of `refs`, authenticated to the last one's.
pub fn client(flags: &RegistryFlags, refs: &[&Reference]) -> anyhow::Result<Registry> {
    let registry = plain_client(flags, refs)?;
    // One set of credentials: those of the registry written to (or read from).
    let target = refs.last().expect("at least one reference");
    Ok(match credential(flags, target)? {
        Some(c) => registry.with_auth(c.into()),
        None => registry,
    })
}

fn plain_client(flags: &RegistryFlags, refs: &[&Reference]) -> anyhow::Result<Registry> {
    let options = RegistryOptions {
        insecure_hosts: if flags.insecure {
            refs.iter()
                .map(|r| r.resolve_registry().to_string())
                .collect()
        } else {
            Vec::new()
        },
        timeout: Duration::from_secs(flags.timeout.max(1)),
        ca_certificates: match &flags.ca_file {
            Some(path) => {
                let pem = std::fs::read(path)
                    .with_context(|| format!("cannot read --ca-file {}", path.display()))?;
                anyhow::ensure!(
                    String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----"),
                    "--ca-file {}: no PEM certificate in it",
                    path.display()
                );
                vec![pem]
            }
            None => Vec::new(),
        },
        ..RegistryOptions::default()
    };
    Ok(Registry::new(&options, refs)?)
}

/// Registry failures are I/O (exit 2); content that is not a valid profile artifact
/// is invalid input (exit 1).
pub fn classify(e: RegistryError) -> Failure {
    match e {
        RegistryError::Layout { .. }
        | RegistryError::TooLarge { .. }
        | RegistryError::Platform { .. }
        | RegistryError::Digest { .. } => Failure::invalid(e),
        RegistryError::Reference { .. }
        | RegistryError::Request { .. }
        | RegistryError::Deadline { .. }
        | RegistryError::Config(_) => Failure::from(anyhow::Error::new(e)),
    }
}
