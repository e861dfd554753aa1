//! `push`, `discover` and `pull`: the commands that talk to a registry.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use imprint_oci::credentials::{self, Credential};
use imprint_oci::layout;
use imprint_oci::registry::{Registry, RegistryError, RegistryOptions, parse_reference};

use crate::files::{CmdResult, EXIT_OK, Failure, load_profile, render_profile, write_output};

/// Options every registry command takes.
#[derive(Args, Debug)]
pub struct RegistryFlags {
    /// Allow plain HTTP to this registry even though it is not on loopback
    /// (loopback registries always use HTTP).
    #[arg(long)]
    insecure: bool,
    /// Timeout for connecting and for each read, in seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// A CA certificate (PEM) to trust beside the system roots; with it, loopback
    /// registries are reached over TLS too.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// User name for the registry (the password is read with --password-stdin).
    /// Without it, credentials come from REGISTRY_AUTH_FILE, DOCKER_CONFIG,
    /// ~/.docker/config.json or credential helpers, as docker and podman keep them.
    #[arg(long, requires = "password_stdin")]
    username: Option<String>,
    /// Read the password from stdin (one line).
    #[arg(long, requires = "username")]
    password_stdin: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// The profile to push.
    profile: PathBuf,
    /// The image the profile describes (`registry/repo:tag` or `@sha256:…`); its
    /// manifest digest must equal the profile's image digest.
    #[arg(long)]
    image: String,
    /// Repository (and optional tag) to push to; default: the image's repository.
    #[arg(long)]
    to: Option<String>,
    /// For a multi-platform image: the platform (`linux/amd64`); default: the profile's.
    #[arg(long)]
    platform: Option<String>,
    /// `json` prints a machine-readable result.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
    #[command(flatten)]
    registry: RegistryFlags,
}

#[derive(Args, Debug)]
pub struct DiscoverArgs {
    /// The image, by digest (`registry/repo@sha256:…`) or tag.
    image: String,
    /// Repository to look in; default: the image's repository.
    #[arg(long)]
    to: Option<String>,
    /// `json` prints a machine-readable list.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
    #[command(flatten)]
    registry: RegistryFlags,
}

#[derive(Args, Debug)]
pub struct PullArgs {
    /// The artifact (`registry/repo@sha256:…`, or a tag).
    reference: String,
    /// Where to write the profile: `.yaml`/`.yml` as YAML, anything else as the
    /// artifact's canonical JSON bytes.
    #[arg(long, short = 'o')]
    out: PathBuf,
    /// Write the profile only when its signatures and attestations verify
    /// (against --key or --policy); nothing is written otherwise.
    #[arg(long)]
    verify: bool,
    #[command(flatten)]
    trust: PullTrust,
    #[command(flatten)]
    registry: RegistryFlags,
}

/// `pull --verify`'s trust: a key or a policy.
#[derive(Args, Debug)]
pub struct PullTrust {
    /// With --verify: a public key (PKIX PEM) whose signature is required.
    #[arg(long, requires = "verify", conflicts_with = "policy")]
    key: Option<PathBuf>,
    /// With --verify: a verification policy (YAML).
    #[arg(long, requires = "verify")]
    policy: Option<PathBuf>,
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The credential for the registry of `reference`: flags first, then the config files.
fn credential(
    flags: &RegistryFlags,
    reference: &imprint_oci::registry::Reference,
) -> anyhow::Result<Option<Credential>> {
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

pub(crate) fn client(
    flags: &RegistryFlags,
    refs: &[&imprint_oci::registry::Reference],
) -> anyhow::Result<Registry> {
    let registry = plain_client(flags, refs)?;
    // One set of credentials: those of the registry written to (or read from).
    let target = refs.last().expect("at least one reference");
    Ok(match credential(flags, target)? {
        Some(c) => registry.with_auth(c.into()),
        None => registry,
    })
}

fn plain_client(
    flags: &RegistryFlags,
    refs: &[&imprint_oci::registry::Reference],
) -> anyhow::Result<Registry> {
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
pub(crate) fn classify(e: RegistryError) -> Failure {
    match e {
        RegistryError::Layout { .. }
        | RegistryError::TooLarge { .. }
        | RegistryError::Platform { .. } => Failure::invalid(e),
        RegistryError::Reference { .. }
        | RegistryError::Request { .. }
        | RegistryError::Config(_) => Failure::from(anyhow::Error::new(e)),
    }
}

/// The tag written in a reference, if any. The parsed reference says `latest`
/// when none is written, and a push must not move `latest` unasked: without a
/// tag the artifact is found by its subject (referrers, fallback tag) or digest.
fn written_tag(text: &str) -> Option<&str> {
    let name = text.split('@').next()?;
    let last = name.rsplit('/').next()?;
    last.split_once(':').map(|(_, tag)| tag)
}

/// Whether `digest` is the multi-platform index `image` names.
async fn learned_from_index(
    registry: &imprint_oci::registry::Registry,
    image: &imprint_oci::registry::Reference,
    digest: &str,
) -> bool {
    registry.resolve(image).await.is_ok_and(|top| {
        top.digest == digest
            && [
                imprint_oci::layout::INDEX_MEDIA_TYPE,
                imprint_oci::layout::DOCKER_MANIFEST_LIST_MEDIA_TYPE,
            ]
            .contains(&top.media_type.as_str())
    })
}

pub fn push(args: PushArgs) -> CmdResult {
    let mut profile = load_profile(&args.profile)?;
    let image = parse_reference(&args.image).map_err(classify)?;
    let target = match &args.to {
        Some(to) => parse_reference(to).map_err(classify)?,
        None => image.clone(),
    };
    let tag = args.to.as_deref().and_then(written_tag).map(str::to_string);
    let registry = client(&args.registry, &[&image, &target])?;
    let platform = args
        .platform
        .clone()
        .or_else(|| profile.image.platform.clone());
    let rt = runtime()?;
    let (subject, digest) = rt.block_on(async {
        let subject = registry
            .resolve_platform(&image, platform.as_deref())
            .await
            .map_err(classify)?;
        if subject.digest != profile.image.digest
            && learned_from_index(&registry, &image, &profile.image.digest).await
        {
            // Learned from a container started by the index (as containerd and
            // `podman run repo@index` report it): it ran this platform's manifest,
            // and profiles are bound to manifests.
            eprintln!(
                "imprint: {} is a multi-platform index; the profile is bound to its {} manifest {} (to pin it in Git, commit the pushed profile, as `imprint pull` gives it, not the learned file)",
                profile.image.digest,
                platform.as_deref().unwrap_or("?"),
                subject.digest
            );
            profile.image.digest = subject.digest.clone();
            profile.image.platform = platform.clone();
        }
        if subject.digest != profile.image.digest {
            return Err(Failure::invalid(anyhow::anyhow!(
                "{} describes image {}, but {} is {}",
                args.profile.display(),
                profile.image.digest,
                args.image,
                subject.digest
            )));
        }
        // `created` is when the profile was made (the end of learning), so pushing
        // the same profile again gives the same artifact digest.
        let created = profile.learning.end.unwrap_or_else(jiff::Timestamp::now);
        let artifact = layout::build(&profile, &subject, created).map_err(Failure::invalid)?;
        let digest = registry
            .push_artifact(&target, &artifact, tag.as_deref())
            .await
            .map_err(classify)?;
        Ok::<_, Failure>((subject, digest))
    })?;
    let repository = format!("{}/{}", target.registry(), target.repository());
    match args.output {
        OutputFormat::Text => println!("{repository}@{digest}"),
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "digest": digest,
                "repository": repository,
                "reference": format!("{repository}@{digest}"),
                "tag": tag,
                "subject": subject,
            }))?
        ),
    }
    Ok(EXIT_OK)
}

pub fn discover(args: DiscoverArgs) -> CmdResult {
    let image = parse_reference(&args.image).map_err(classify)?;
    let repository = match &args.to {
        Some(to) => parse_reference(to).map_err(classify)?,
        None => image.clone(),
    };
    let registry = client(&args.registry, &[&image, &repository])?;
    let rt = runtime()?;
    let found = rt.block_on(async {
        let subject = match image.digest() {
            Some(d) => d.to_string(),
            None => registry.resolve(&image).await.map_err(classify)?.digest,
        };
        registry
            .discover(&repository, &subject)
            .await
            .map_err(classify)
    })?;
    for (digest, why) in &found.rejected {
        eprintln!("imprint: warning: ignored referrer {digest}: {why}");
    }
    match args.output {
        OutputFormat::Text => {
            for a in &found.artifacts {
                println!(
                    "{}/{}@{}\t{}",
                    repository.registry(),
                    repository.repository(),
                    a.digest,
                    a.created.as_deref().unwrap_or("-")
                );
            }
        }
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&found.artifacts)?),
    }
    Ok(EXIT_OK)
}

pub fn pull(args: PullArgs) -> CmdResult {
    let reference = parse_reference(&args.reference).map_err(classify)?;
    let registry = client(&args.registry, &[&reference])?;
    let rt = runtime()?;
    let pulled = rt
        .block_on(registry.pull_artifact(&reference))
        .map_err(classify)?;
    if args.verify {
        if args.trust.key.is_none() && args.trust.policy.is_none() {
            return Err(Failure::from(anyhow::anyhow!(
                "--verify needs --key or --policy"
            )));
        }
        let policy = crate::signing::load_policy(&crate::signing::TrustArgs {
            key: args.trust.key.clone(),
            attestation: false,
            policy: args.trust.policy.clone(),
        })?;
        // The digest verified is the one pulled and checked, not a tag's.
        let verdict = rt
            .block_on(registry.verify(&reference, &pulled.digest, &policy))
            .map_err(classify)?;
        if !verdict.verified {
            crate::signing::report(&verdict, OutputFormat::Text);
            return Err(Failure::invalid(anyhow::anyhow!(
                "{} does not verify; {} not written",
                pulled.digest,
                args.out.display()
            )));
        }
    }
    let yaml = matches!(
        args.out.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    );
    let bytes = if yaml {
        render_profile(&pulled.profile, imprint_schema::document::Format::Yaml).into_bytes()
    } else {
        pulled.profile_bytes.clone()
    };
    write_output(Some(&args.out), &bytes)?;
    eprintln!(
        "imprint: pulled {} (image {}) to {}",
        pulled.digest,
        pulled.profile.image.digest,
        args.out.display()
    );
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::written_tag;

    #[test]
    fn only_a_written_tag_is_a_tag() {
        assert_eq!(written_tag("r.example/p/web:v1"), Some("v1"));
        assert_eq!(written_tag("localhost:5000/p/web:v1"), Some("v1"));
        assert_eq!(written_tag("localhost:5000/p/web"), None);
        assert_eq!(written_tag("r.example/p/web"), None);
        assert_eq!(written_tag("r.example/p/web@sha256:ab"), None);
        assert_eq!(written_tag("r.example/p/web:v2@sha256:ab"), Some("v2"));
    }
}
