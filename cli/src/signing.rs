//! `key generate`, `sign`, `attest` and `verify`: cosign-compatible signatures
//! and in-toto attestations of profile artifacts, and the policy that checks them.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use imprint_oci::signing::{PROFILE_PREDICATE_TYPE, ProfilePredicate};
use imprint_oci::{KeyAlgorithm, SigningKey};
use imprint_oci::{Reference, parse_reference};

use crate::connect::{classify, client, runtime};
use crate::files::{
    CmdResult, EXIT_FINDINGS, EXIT_OK, Failure, MAX_SMALL_FILE, read_bounded, write_atomic,
};
use crate::options::{RegistryFlags, TrustArgs};
use crate::output::{OutputFormat, print_written};
use crate::signing_key::{load_signing_key, password};
use crate::version::next_version;

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Write a key pair in cosign's format: PREFIX.key (encrypted with
    /// COSIGN_PASSWORD, or a password typed twice) and PREFIX.pub.
    Generate(KeyGenerateArgs),
    /// Print the public key of a private key, as `cosign public-key` does
    /// (the password from COSIGN_PASSWORD or a prompt).
    PublicKey(KeyPublicArgs),
}

#[derive(Args, Debug)]
pub struct KeyPublicArgs {
    /// The private key (cosign's format, or plain PKCS#8).
    #[arg(long)]
    key: PathBuf,
    /// Write the public key (PEM) here instead of stdout (cosign's flag).
    #[arg(long)]
    outfile: Option<PathBuf>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// ECDSA P-256 with SHA-256 (cosign's default)
    EcdsaP256,
    /// Ed25519
    Ed25519,
}

#[derive(Args, Debug)]
pub struct KeyGenerateArgs {
    /// The key algorithm.
    #[arg(long, value_enum, default_value_t = Algorithm::EcdsaP256)]
    algorithm: Algorithm,
    /// Write PREFIX.key and PREFIX.pub (cosign's flag).
    #[arg(long, default_value = "cosign")]
    output_key_prefix: PathBuf,
    /// Overwrite existing files.
    #[arg(long)]
    force: bool,
}

#[derive(Args, Debug)]
pub struct SignArgs {
    /// The profile artifact, by digest (`registry/repo@sha256:…`).
    artifact: String,
    /// The private key (cosign's format; its password from COSIGN_PASSWORD or a prompt).
    #[arg(long)]
    key: PathBuf,
    /// Write a sigstore bundle v0.3 referrer instead of the `.sig` tag.
    #[arg(long)]
    bundle: bool,
    /// `json` prints a machine-readable result.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
    #[command(flatten)]
    registry: RegistryFlags,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["predicate", "from_profile"])))]
pub struct AttestArgs {
    /// The profile artifact, by digest (`registry/repo@sha256:…`).
    artifact: String,
    /// The private key (cosign's format; its password from COSIGN_PASSWORD or a prompt).
    #[arg(long, required_unless_present = "print_predicate")]
    key: Option<PathBuf>,
    /// Print the predicate (JSON) instead of signing anything: for
    /// `cosign attest --predicate - --type https://imprint.dev/attestation/profile/v1`
    /// (keyless signing with an OIDC identity).
    #[arg(long, conflicts_with_all = ["key", "bundle"])]
    print_predicate: bool,
    /// A predicate file (JSON).
    #[arg(long)]
    predicate: Option<PathBuf>,
    /// Build imprint's learning predicate from the artifact's own profile.
    #[arg(long)]
    from_profile: bool,
    /// The predicate type.
    #[arg(long = "type", default_value = PROFILE_PREDICATE_TYPE)]
    predicate_type: String,
    /// The builder id (the CI run's URL); default: from GitHub Actions, GitLab CI,
    /// Buildkite or Jenkins environment variables.
    #[arg(long)]
    builder_id: Option<String>,
    /// Write a sigstore bundle v0.3 referrer instead of the `.att` tag.
    #[arg(long)]
    bundle: bool,
    /// The profile's version, which orders an image digest's profiles before
    /// their creation time (agents never go back to a lower one on their own).
    /// Default: one more than the newest version the key verifies for the
    /// image digest (1 for the first); with --print-predicate, 0.
    #[arg(long)]
    version: Option<u64>,
    /// `json` prints a machine-readable result.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
    #[command(flatten)]
    registry: RegistryFlags,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The profile artifact (`registry/repo@sha256:…`, or a tag, resolved once).
    artifact: String,
    #[command(flatten)]
    trust: TrustArgs,
    /// `json` prints the verdict for machines.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
    #[command(flatten)]
    registry: RegistryFlags,
}

/// A reference that names a digest; signing a tag would sign whatever it points
/// to at the time.
fn by_digest(text: &str) -> Result<Reference, Failure> {
    let reference = parse_reference(text).map_err(classify)?;
    if reference.digest().is_none() {
        return Err(Failure::invalid(anyhow::anyhow!(
            "{text}: sign and attest by digest (registry/repo@sha256:…), so what is signed cannot change under you"
        )));
    }
    Ok(reference)
}

pub fn key_generate(args: KeyGenerateArgs) -> CmdResult {
    let prefix = args.output_key_prefix.display().to_string();
    let (private, public) = (
        PathBuf::from(format!("{prefix}.key")),
        PathBuf::from(format!("{prefix}.pub")),
    );
    for path in [&private, &public] {
        if path.exists() && !args.force {
            return Err(Failure::from(anyhow::anyhow!(
                "{} exists; pass --force to overwrite it",
                path.display()
            )));
        }
    }
    let algorithm = match args.algorithm {
        Algorithm::EcdsaP256 => KeyAlgorithm::EcdsaP256,
        Algorithm::Ed25519 => KeyAlgorithm::Ed25519,
    };
    let password = password(true)?;
    let key = SigningKey::generate(algorithm);
    let pem = key.to_encrypted_pem(password.as_bytes());
    write_atomic(&private, pem.as_bytes(), imprint_fs::PRIVATE)?;
    let public_pem = key.verifying_key().to_pem();
    write_atomic(&public, public_pem.as_bytes(), imprint_fs::PUBLIC)?;
    eprintln!(
        "imprint: wrote {} ({}) and {}",
        private.display(),
        algorithm.name(),
        public.display()
    );
    Ok(EXIT_OK)
}

pub fn key_public(args: KeyPublicArgs) -> CmdResult {
    let key = load_signing_key(&args.key)?;
    let pem = key.verifying_key().to_pem();
    match &args.outfile {
        Some(path) => {
            write_atomic(path, pem.as_bytes(), imprint_fs::PUBLIC)?;
            eprintln!(
                "imprint: wrote the public key of {} to {}",
                args.key.display(),
                path.display()
            );
        }
        None => print!("{pem}"),
    }
    Ok(EXIT_OK)
}

pub fn sign(args: SignArgs) -> CmdResult {
    let reference = by_digest(&args.artifact)?;
    let key = load_signing_key(&args.key)?;
    let registry = client(&args.registry, &[&reference])?;
    let written = runtime()?
        .block_on(registry.sign(&reference, &key, args.bundle, jiff::Timestamp::now()))
        .map_err(classify)?;
    print_written(&written, args.output, "wrote signature");
    Ok(EXIT_OK)
}

/// The CI run's URL, from the environment the common CI systems set.
fn builder_id_from_env(get: impl Fn(&str) -> Option<String>) -> Option<String> {
    if let (Some(server), Some(repo), Some(run)) = (
        get("GITHUB_SERVER_URL"),
        get("GITHUB_REPOSITORY"),
        get("GITHUB_RUN_ID"),
    ) {
        let attempt = get("GITHUB_RUN_ATTEMPT")
            .map(|a| format!("/attempts/{a}"))
            .unwrap_or_default();
        return Some(format!("{server}/{repo}/actions/runs/{run}{attempt}"));
    }
    ["CI_JOB_URL", "BUILDKITE_BUILD_URL", "BUILD_URL"]
        .iter()
        .find_map(|k| get(k).filter(|v| !v.is_empty()))
}

pub fn attest(args: AttestArgs) -> CmdResult {
    let reference = by_digest(&args.artifact)?;
    let registry = client(&args.registry, &[&reference])?;
    let rt = runtime()?;
    let key = args.key.as_deref().map(load_signing_key).transpose()?;
    let predicate = match &args.predicate {
        Some(path) => {
            let bytes = read_bounded(path, MAX_SMALL_FILE)
                .with_context(|| format!("cannot read --predicate {}", path.display()))?;
            let value: serde_json::Value = serde_json::from_slice(&bytes)
                .with_context(|| format!("--predicate {}: not JSON", path.display()))
                .map_err(Failure::invalid)?;
            if args.predicate_type == PROFILE_PREDICATE_TYPE {
                serde_json::from_value::<ProfilePredicate>(value.clone())
                    .with_context(|| {
                        format!(
                            "--predicate {}: not imprint's learning predicate",
                            path.display()
                        )
                    })
                    .map_err(Failure::invalid)?;
            }
            let mut value = value;
            if let (Some(version), Some(object)) = (args.version, value.as_object_mut()) {
                object.insert("version".into(), version.into());
            }
            value
        }
        None => {
            if args.predicate_type != PROFILE_PREDICATE_TYPE {
                return Err(Failure::invalid(anyhow::anyhow!(
                    "--from-profile builds imprint's predicate ({PROFILE_PREDICATE_TYPE}), not {}",
                    args.predicate_type
                )));
            }
            let builder_id = args
                .builder_id
                .clone()
                .or_else(|| builder_id_from_env(|k| std::env::var(k).ok()))
                .ok_or_else(|| {
                    Failure::invalid(anyhow::anyhow!(
                        "no builder id: pass --builder-id (the CI run's URL), or run in GitHub Actions, GitLab CI, Buildkite or Jenkins"
                    ))
                })?;
            // The predicate describes what the artifact holds: read and check it.
            let pulled = rt
                .block_on(registry.pull_artifact(&reference))
                .map_err(classify)?;
            let version = match (args.version, &key) {
                (Some(version), _) => version,
                (None, Some(key)) => {
                    // The image's profiles in the artifact's own repository.
                    let image = &pulled.profile.image.digest;
                    rt.block_on(next_version(&registry, &reference, image, key))
                        .map_err(classify)?
                }
                (None, None) => {
                    eprintln!(
                        "imprint: no key to verify the image's other profiles with: version 0 (give --version N)"
                    );
                    0
                }
            };
            serde_json::to_value(ProfilePredicate::for_artifact(
                &pulled.manifest,
                &pulled.profile,
                &builder_id,
                version,
            ))
            .expect("predicates serialize")
        }
    };
    let Some(key) = &key else {
        // --print-predicate: clap allows no key only with it.
        let mut out = serde_json::to_string_pretty(&predicate).expect("JSON values serialize");
        out.push('\n');
        crate::files::write_output(None, out.as_bytes())?;
        return Ok(EXIT_OK);
    };
    let written = rt
        .block_on(registry.attest(
            &reference,
            key,
            &args.predicate_type,
            predicate,
            args.bundle,
            jiff::Timestamp::now(),
        ))
        .map_err(classify)?;
    print_written(&written, args.output, "wrote attestation");
    Ok(EXIT_OK)
}

pub fn verify(args: VerifyArgs) -> CmdResult {
    let policy = args.trust.load_policy()?;
    let reference = parse_reference(&args.artifact).map_err(classify)?;
    let registry = client(&args.registry, &[&reference])?;
    let rt = runtime()?;
    let (verdict, revocations) = rt
        .block_on(async {
            let digest = registry.resolve(&reference).await?.digest;
            let verdict = registry.verify(&reference, &digest, &policy).await?;
            // A revocation by one of the policy's revokers fails the verdict.
            crate::revoke::judge_revocations(&registry, &reference, verdict, &policy).await
        })
        .map_err(classify)?;
    crate::revoke::report_with_revocations(&verdict, &revocations, args.output);
    Ok(if verdict.verified {
        EXIT_OK
    } else {
        EXIT_FINDINGS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_ids_come_from_the_ci_environment() {
        let github = |k: &str| {
            Some(
                match k {
                    "GITHUB_SERVER_URL" => "https://github.com",
                    "GITHUB_REPOSITORY" => "acme/app",
                    "GITHUB_RUN_ID" => "42",
                    "GITHUB_RUN_ATTEMPT" => "2",
                    _ => return None,
                }
                .to_string(),
            )
        };
        assert_eq!(
            builder_id_from_env(github).unwrap(),
            "https://github.com/acme/app/actions/runs/42/attempts/2"
        );
        let gitlab =
            |k: &str| (k == "CI_JOB_URL").then(|| "https://gitlab.example/j/7".to_string());
        assert_eq!(
            builder_id_from_env(gitlab).unwrap(),
            "https://gitlab.example/j/7"
        );
        assert_eq!(builder_id_from_env(|_| None), None);
    }
}
