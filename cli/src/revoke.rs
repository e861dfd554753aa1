//! `revoke`: a signed revocation of a profile artifact, and how `verify`,
//! `pull --verify` and `discover` show the revocations of an artifact's image.

use std::path::PathBuf;

use clap::Args;
use imprint_oci::policy::{Policy, Verdict};
use imprint_oci::{
    Discovered, Reference, Registry, RegistryError, RevocationClaims, Revocations, parse_reference,
};
use imprint_schema::Digest;

use crate::connect::{classify, client, runtime};
use crate::files::{CmdResult, EXIT_OK, Failure};
use crate::options::RegistryFlags;
use crate::output::{OutputFormat, report};
use crate::signing_key::load_signing_key;

/// Longest `--reason` accepted: it is for people, and travels in every lookup.
const MAX_REASON_CHARS: usize = 1024;

#[derive(Args, Debug)]
pub struct RevokeArgs {
    /// The profile artifact to revoke, by digest (`registry/repo@sha256:…`).
    artifact: String,
    /// The private key (cosign's format; its password from COSIGN_PASSWORD or a
    /// prompt). The revocation counts where the policy lets this key revoke
    /// (`revocations.authorities`, by default every authority).
    #[arg(long)]
    key: PathBuf,
    /// Why, for people (`key compromised`, `wrong profile`).
    #[arg(long)]
    reason: Option<String>,
    /// Write a sigstore bundle v0.3 referrer of the image instead of a layer of
    /// the image's `.att` tag.
    #[arg(long)]
    bundle: bool,
    /// `json` prints a machine-readable result.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
    #[command(flatten)]
    registry: RegistryFlags,
}

pub fn revoke(args: RevokeArgs) -> CmdResult {
    let reference = parse_reference(&args.artifact).map_err(classify)?;
    if reference.digest().is_none() {
        return Err(Failure::invalid(anyhow::anyhow!(
            "{}: revoke by digest (registry/repo@sha256:…): a tag can point at another artifact tomorrow",
            args.artifact
        )));
    }
    if let Some(reason) = &args.reason
        && reason.chars().count() > MAX_REASON_CHARS
    {
        return Err(Failure::invalid(anyhow::anyhow!(
            "--reason: {} characters, more than the limit of {MAX_REASON_CHARS}",
            reason.chars().count()
        )));
    }
    let key = load_signing_key(&args.key)?;
    let registry = client(&args.registry, &[&reference])?;
    let revoked = runtime()?
        .block_on(registry.revoke(
            &reference,
            &key,
            args.reason.clone(),
            args.bundle,
            jiff::Timestamp::now(),
        ))
        .map_err(classify)?;
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string(&revoked)?),
        OutputFormat::Text => {
            println!("{}", revoked.written.reference);
            eprintln!(
                "imprint: revoked {} (image {}): wrote revocation {}",
                revoked.predicate.revoked_artifact,
                revoked.predicate.image_digest,
                revoked.written.digest
            );
        }
    }
    Ok(EXIT_OK)
}

/// The verified revocations of the image `verdict`'s artifact is bound to, in
/// `repository`; when one of the policy's revokers revoked the artifact, the
/// verdict fails, saying `revoked by <authority>`.
pub async fn judge_revocations(
    registry: &Registry,
    repository: &Reference,
    mut verdict: Verdict,
    policy: &Policy,
) -> Result<(Verdict, Revocations), RegistryError> {
    let image = registry
        .artifact_subject(repository, &verdict.digest)
        .await?;
    let revocations = registry.revocations(repository, &image, policy).await?;
    if let Some(revocation) = revocations.revoking(&verdict.digest) {
        let reason = (revocation.reason.as_ref()).map_or(String::new(), |r| format!(": {r:?}"));
        verdict.verified = false;
        verdict.failures.push(format!(
            "revoked by {} ({}){reason}",
            revocation.authority, revocation.source
        ));
    }
    Ok((verdict, revocations))
}

/// The verdict as JSON: its own fields, and `revocations` beside them.
#[derive(serde::Serialize)]
struct VerdictWithRevocations<'a> {
    #[serde(flatten)]
    verdict: &'a Verdict,
    revocations: &'a Revocations,
}

/// Prints a verdict ([`report`]) with the revocations read for it: in text, the
/// ones that did not verify and any left unexamined, on stderr.
pub fn report_with_revocations(verdict: &Verdict, revocations: &Revocations, output: OutputFormat) {
    if output == OutputFormat::Json {
        let both = VerdictWithRevocations {
            verdict,
            revocations,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&both).expect("verdicts serialize")
        );
        return;
    }
    for r in &revocations.rejected {
        eprintln!(
            "imprint: revocation {}: not accepted: {}",
            r.source, r.error
        );
    }
    warn_unexamined(revocations.unexamined);
    report(verdict, output);
}

fn warn_unexamined(unexamined: usize) {
    if unexamined > 0 {
        eprintln!(
            "imprint: warning: {unexamined} attestation layers or bundle referrers of the image beyond the {} examined were not read (a flood can hide a revocation)",
            imprint_oci::signing::MAX_LAYERS_PER_TAG
        );
    }
}

/// The claimed revocations of `subject` in `repository`, for `discover`.
pub async fn claims(
    registry: &Registry,
    repository: &Reference,
    subject: &Digest,
) -> Result<RevocationClaims, Failure> {
    (registry.revocation_claims(repository, subject).await).map_err(classify)
}

/// Prints `discover`'s list: each artifact, and each claimed revocation (not
/// verified: discover has no policy). In JSON, an artifact's claims are its
/// `revocationClaims`; a claim naming an artifact not listed is said on stderr.
pub fn print_discovered(
    repository: &Reference,
    artifacts: &[Discovered],
    claims: &RevocationClaims,
    output: OutputFormat,
) -> anyhow::Result<()> {
    let name = format!("{}/{}", repository.registry(), repository.repository());
    for r in &claims.unreadable {
        eprintln!(
            "imprint: warning: ignored revocation {}: {}",
            r.source, r.error
        );
    }
    warn_unexamined(claims.unexamined);
    let listed = |digest: &Digest| artifacts.iter().any(|a| a.digest == *digest);
    match output {
        OutputFormat::Text => {
            for a in artifacts {
                let created = a.created.as_deref().unwrap_or("-");
                println!("{name}@{}\t{created}", a.digest);
            }
            for c in &claims.claims {
                let reason = (c.reason.as_ref()).map_or(String::new(), |r| format!(" {r:?}"));
                println!(
                    "revocation of {name}@{}\t{}{reason}\t(unverified: use imprint verify)",
                    c.artifact, c.source
                );
            }
        }
        OutputFormat::Json => {
            let mut list = Vec::new();
            for a in artifacts {
                let mut value = serde_json::to_value(a)?;
                let mine: Vec<_> = (claims.claims.iter())
                    .filter(|c| c.artifact == a.digest)
                    .collect();
                if !mine.is_empty() {
                    value["revocationClaims"] = serde_json::to_value(mine)?;
                }
                list.push(value);
            }
            for c in claims.claims.iter().filter(|c| !listed(&c.artifact)) {
                eprintln!(
                    "imprint: warning: {} claims to revoke {name}@{}, which is not listed (unverified: use imprint verify)",
                    c.source, c.artifact
                );
            }
            println!("{}", serde_json::to_string_pretty(&list)?);
        }
    }
    Ok(())
}
