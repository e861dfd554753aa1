//! `imprint`: learn, check and ship container behaviour profiles.
//!
//! Exit codes follow diff(1) and cosign: 0 ok, 1 findings (an invalid document, a
//! difference), 2 usage or I/O error.

mod commands;
mod connect;
mod files;
mod options;
mod output;
mod reference;
mod registry;
mod replay;
mod revoke;
mod signing;
mod signing_key;
mod version;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use files::EXIT_ERROR;
use output::{DiffFormat, ProfileFormat, ReportFormat};

/// Learn how container images behave, and ship that as signed profiles.
#[derive(Parser, Debug)]
#[command(name = "imprint", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Build one profile per image digest from recorded events (JSON lines).
    Learn(LearnArgs),
    /// Check profiles; exit 1 and name every problem when one is invalid.
    Validate(ValidateArgs),
    /// Show what changed from profile A to profile B; exit 1 when they differ.
    Diff(DiffArgs),
    /// Apply an RFC 6902 JSON Patch to a profile.
    Patch(PatchArgs),
    /// Merge profiles of one image (replicas, nodes, runs) into one.
    Merge(MergeArgs),
    /// Import profiles from other tools.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Export a profile to other tools' formats.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Push a profile as an OCI artifact whose subject is the image it describes.
    Push(registry::PushArgs),
    /// List the profile artifacts of an image digest (referrers API or fallback tag),
    /// and the revocations claimed for them (unverified: `verify` checks them).
    Discover(registry::DiscoverArgs),
    /// Pull a profile artifact, check every digest and size, and write the profile.
    Pull(registry::PullArgs),
    /// Manage signing keys (cosign's format).
    #[command(subcommand)]
    Key(signing::KeyCommand),
    /// Sign a profile artifact: cosign's `.sig` tag, or a bundle referrer.
    Sign(signing::SignArgs),
    /// Attest how a profile was learned: in-toto in DSSE, as `.att` or a bundle.
    // `attest --version N` is the profile's place in the order of the image's
    // profiles; `imprint --version` still prints imprint's.
    #[command(disable_version_flag = true)]
    Attest(signing::AttestArgs),
    /// Verify a profile artifact's signatures and attestations against a key or a
    /// policy; exit 0 only when it holds and no revoker of the policy revoked it, 1
    /// naming the failing condition (`revoked by <authority>`) otherwise.
    Verify(signing::VerifyArgs),
    /// Revoke a profile artifact: a signed revocation, stored with the image's
    /// attestations, that `verify` and the agent honour when the policy lets its
    /// signer revoke.
    Revoke(revoke::RevokeArgs),
    /// Run the detector and behaviour rules offline on recorded events; exit 1 when
    /// anything alerts.
    Replay(replay::ReplayArgs),
    /// Print the canonical digest (sha256 of the canonical JSON) of profiles.
    Digest(DigestArgs),
    /// Print a published JSON Schema.
    Schema {
        /// Which document.
        #[arg(value_enum)]
        document: SchemaDocument,
    },
    /// Print shell completions.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print this command-line reference as Markdown (docs/cli.md).
    #[command(hide = true)]
    Reference,
}

#[derive(Args, Debug)]
struct LearnArgs {
    /// Event files (JSON lines); `-` reads stdin.
    #[arg(long = "events", short = 'e', required = true, num_args = 1..)]
    events: Vec<PathBuf>,
    /// Learn only this image digest (`sha256:…`).
    #[arg(long)]
    image_digest: Option<imprint_schema::Digest>,
    /// Directory to write one profile per image digest into (created if missing).
    #[arg(long, short = 'o')]
    out: PathBuf,
    /// A directory with more distinct children than this becomes `*`.
    #[arg(long, default_value_t = 50)]
    collapse_threshold: usize,
    /// Per-prefix threshold, `PREFIX=N` (repeatable), e.g. `/proc=10`.
    #[arg(long = "collapse-override", value_parser = parse_override)]
    collapse_overrides: Vec<(String, usize)>,
    /// Learning period a profile must span to be `complete`, e.g. `30s`, `24h`.
    #[arg(long, value_parser = parse_duration)]
    learning_period: Option<jiff::SignedDuration>,
    /// Skip event lines that do not parse (counted and reported) instead of failing.
    #[arg(long)]
    skip_invalid: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ProfileFormat::Yaml)]
    format: ProfileFormat,
}

#[derive(Args, Debug)]
struct ValidateArgs {
    /// Profile files (JSON or YAML).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Report format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    output: ReportFormat,
}

#[derive(Args, Debug)]
struct DiffArgs {
    /// The old profile.
    a: PathBuf,
    /// The new profile.
    b: PathBuf,
    /// `text`: unified diff of the canonical YAML; `patch`: RFC 6902 JSON Patch;
    /// `json`: added and removed entries per category.
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    format: DiffFormat,
}

#[derive(Args, Debug)]
struct PatchArgs {
    /// The profile to patch.
    profile: PathBuf,
    /// The RFC 6902 patch (JSON).
    patch: PathBuf,
    /// Where to write the result (default stdout).
    #[arg(long, short = 'o')]
    out: Option<PathBuf>,
    /// Output format (default: from the file extension, else YAML).
    #[arg(long, value_enum)]
    format: Option<ProfileFormat>,
}

#[derive(Args, Debug)]
struct MergeArgs {
    /// Profiles of one image digest.
    #[arg(required = true, num_args = 2..)]
    profiles: Vec<PathBuf>,
    /// Where to write the merged profile.
    #[arg(long, short = 'o')]
    out: PathBuf,
    /// Output format (default: from the file extension, else YAML).
    #[arg(long, value_enum)]
    format: Option<ProfileFormat>,
}

#[derive(Subcommand, Debug)]
enum ImportCommand {
    /// Import a Kubescape ApplicationProfile or ContainerProfile
    /// (spdx.softwarecomposition.kubescape.io/v1beta1).
    Kubescape(ImportKubescapeArgs),
}

#[derive(Args, Debug)]
struct ImportKubescapeArgs {
    /// The Kubescape object (JSON or YAML).
    file: PathBuf,
    /// Output: a file when one profile results, else a directory.
    #[arg(long, short = 'o')]
    out: PathBuf,
    /// The image digest, for objects that do not record one.
    #[arg(long)]
    image_digest: Option<imprint_schema::Digest>,
    /// Import only this container.
    #[arg(long)]
    container: Option<String>,
    /// Output format (default: from the file extension, else YAML).
    #[arg(long, value_enum)]
    format: Option<ProfileFormat>,
}

#[derive(Subcommand, Debug)]
enum ExportCommand {
    /// Write the profile's syscalls as an OCI/Docker seccomp profile (JSON).
    Seccomp(ExportSeccompArgs),
}

#[derive(Args, Debug)]
struct ExportSeccompArgs {
    /// The profile.
    profile: PathBuf,
    /// What happens to syscalls the profile does not list.
    #[arg(long, value_enum, default_value_t = SeccompAction::Errno)]
    default_action: SeccompAction,
    /// Where to write it (default stdout).
    #[arg(long, short = 'o')]
    out: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct DigestArgs {
    /// Profile files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum SeccompAction {
    /// SCMP_ACT_ERRNO (EPERM)
    Errno,
    /// SCMP_ACT_LOG (audit only)
    Log,
    /// SCMP_ACT_KILL_PROCESS
    Kill,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum SchemaDocument {
    /// Profile v1
    Profile,
    /// One line of the event stream
    Events,
    /// The `Profile` CustomResourceDefinition (YAML), as deploy/base holds it
    ProfileCrd,
}

fn parse_override(s: &str) -> Result<(String, usize), String> {
    let (prefix, n) = s
        .rsplit_once('=')
        .ok_or_else(|| format!("{s:?}: expected PREFIX=N, such as /proc=10"))?;
    if !prefix.starts_with('/') {
        return Err(format!("{prefix:?}: the prefix must be an absolute path"));
    }
    let n = n
        .parse()
        .map_err(|_| format!("{n:?}: expected a whole number"))?;
    Ok((prefix.to_string(), n))
}

/// Parses durations as Kubernetes and Go write them: `30s`, `15m`, `24h`, `1h30m`.
/// `--learning-period`: the one duration syntax (`imprint_schema::parse_duration`).
fn parse_duration(s: &str) -> Result<jiff::SignedDuration, String> {
    let d = imprint_schema::parse_duration(s).map_err(|e| e.to_string())?;
    jiff::SignedDuration::try_from(d).map_err(|e| format!("{s:?}: {e}"))
}

/// An error and its causes on one line. Library errors often show their cause in
/// their own message too; a cause already said is not said again.
fn error_chain(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        // Causes quote URLs (reqwest, oci-client): their credentials are not printed.
        let text = imprint_oci::redact::redact_urls(&cause.to_string()).into_owned();
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Learn(args) => commands::learn(args),
        Command::Validate(args) => commands::validate(args),
        Command::Diff(args) => commands::diff(args),
        Command::Patch(args) => commands::patch(args),
        Command::Merge(args) => commands::merge(args),
        Command::Import(ImportCommand::Kubescape(args)) => commands::import_kubescape(args),
        Command::Export(ExportCommand::Seccomp(args)) => commands::export_seccomp(args),
        Command::Digest(args) => commands::digest(args),
        Command::Push(args) => registry::push(args),
        Command::Discover(args) => registry::discover(args),
        Command::Pull(args) => registry::pull(args),
        Command::Key(signing::KeyCommand::Generate(args)) => signing::key_generate(args),
        Command::Key(signing::KeyCommand::PublicKey(args)) => signing::key_public(args),
        Command::Sign(args) => signing::sign(args),
        Command::Attest(args) => signing::attest(args),
        Command::Verify(args) => signing::verify(args),
        Command::Revoke(args) => revoke::revoke(args),
        Command::Replay(args) => replay::replay(args),
        Command::Schema { document } => commands::schema(document),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "imprint",
                &mut std::io::stdout(),
            );
            Ok(0)
        }
        Command::Reference => {
            print!("{}", reference::markdown(Cli::command()));
            Ok(0)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("imprint: error: {}", error_chain(&failure.error));
            ExitCode::from(if failure.code == 0 {
                EXIT_ERROR
            } else {
                failure.code
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn printed_errors_redact_the_urls_of_every_cause() {
        let cause = anyhow::anyhow!(
            "error sending request for url (https://u:s3cret@r.example/v2/?X-Amz-Signature=s3cret)"
        );
        let e = cause.context("pull r.example/p:1");
        assert_eq!(
            error_chain(&e),
            "pull r.example/p:1: error sending request for url (https://***@r.example/v2/?X-Amz-Signature=***)"
        );
    }

    #[test]
    fn durations_parse_like_kubernetes() {
        assert_eq!(parse_duration("30s").unwrap().as_secs(), 30);
        assert_eq!(parse_duration("24h").unwrap().as_secs(), 86_400);
        assert_eq!(parse_duration("1h30m").unwrap().as_secs(), 5_400);
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn overrides_parse() {
        assert_eq!(parse_override("/proc=10").unwrap(), ("/proc".into(), 10));
        assert!(parse_override("proc=10").is_err());
        assert!(parse_override("/proc").is_err());
        assert!(parse_override("/proc=x").is_err());
    }
}
