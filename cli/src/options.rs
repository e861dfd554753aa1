//! Flag groups several commands share: how to reach a registry, and whom to trust.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use imprint_oci::VerifyingKey;
use imprint_oci::policy::Policy;

use crate::files::{Failure, MAX_SMALL_FILE, read_bounded};

/// Options every registry command takes.
#[derive(Args, Debug)]
pub struct RegistryFlags {
    /// Allow plain HTTP to this registry even though it is not on loopback
    /// (loopback registries always use HTTP).
    #[arg(long)]
    pub insecure: bool,
    /// Timeout for connecting and for each read, in seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
    /// A CA certificate (PEM) to trust beside the system roots; with it, loopback
    /// registries are reached over TLS too.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// User name for the registry (the password is read with --password-stdin).
    /// Without it, credentials come from REGISTRY_AUTH_FILE, DOCKER_CONFIG,
    /// ~/.docker/config.json or credential helpers, as docker and podman keep them.
    #[arg(long, requires = "password_stdin")]
    pub username: Option<String>,
    /// Read the password from stdin (one line).
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
}

/// How to trust: a key, or a policy file.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("trust").required(true).args(["key", "policy"])))]
pub struct TrustArgs {
    /// A public key (PKIX PEM, as `cosign.pub`): signatures by it are required.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// With --key: require an attestation of imprint's predicate type too.
    #[arg(long, requires = "key")]
    pub attestation: bool,
    /// A verification policy (YAML): keys or keyless identities, and conditions.
    #[arg(long)]
    pub policy: Option<PathBuf>,
}

impl TrustArgs {
    /// The policy `--key` or `--policy` gives.
    pub fn load_policy(&self) -> Result<Policy, Failure> {
        if let Some(path) = &self.key {
            let pem = read_bounded(path, MAX_SMALL_FILE)
                .with_context(|| format!("cannot read --key {}", path.display()))?;
            let key = VerifyingKey::from_pem(&pem)
                .with_context(|| format!("--key {}", path.display()))
                .map_err(Failure::invalid)?;
            return Ok(Policy::for_key(key, self.attestation));
        }
        let path = self
            .policy
            .as_ref()
            .expect("clap requires --key or --policy");
        let bytes = read_bounded(path, MAX_SMALL_FILE)
            .with_context(|| format!("cannot read --policy {}", path.display()))?;
        Policy::load(path, &bytes).map_err(Failure::invalid)
    }
}
