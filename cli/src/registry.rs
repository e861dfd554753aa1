//! `push`, `discover` and `pull`: the commands that talk to a registry.

use std::path::PathBuf;

use clap::Args;
use imprint_oci::layout;
use imprint_oci::parse_reference;

use crate::connect::{classify, client, runtime};
use crate::files::{CmdResult, EXIT_OK, Failure, load_profile, render_profile, write_output};
use crate::options::{RegistryFlags, TrustArgs};
use crate::output::{OutputFormat, report};

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
    /// The artifact's created time (RFC 3339, `2026-11-26T12:00:00Z`) for a
    /// profile without a learning end (an imported one). Default: the
    /// `SOURCE_DATE_EPOCH` environment variable (seconds since 1970), else
    /// 1970-01-01T00:00:00Z; never the clock, so pushing the same profile twice
    /// gives the same artifact digest. A learned profile's created time is the
    /// end of its learning window.
    #[arg(long, value_name = "RFC3339")]
    created: Option<jiff::Timestamp>,
    /// `json` prints a machine-readable result.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
    #[command(flatten)]
    registry: RegistryFlags,
}

/// The reproducible-builds variable: a build's time as seconds since the epoch.
const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";

/// The created time of a pushed artifact, and where it came from: the end of
/// learning, else `--created`, else `SOURCE_DATE_EPOCH`, else the Unix epoch.
/// Never the clock: the time is part of the manifest, so it decides the digest.
fn created_time(
    learning_end: Option<jiff::Timestamp>,
    flag: Option<jiff::Timestamp>,
    source_date_epoch: Option<std::ffi::OsString>,
) -> anyhow::Result<(jiff::Timestamp, &'static str)> {
    if let Some(end) = learning_end {
        return Ok((end, "the end of learning"));
    }
    if let Some(created) = flag {
        return Ok((created, "--created"));
    }
    let Some(value) = source_date_epoch else {
        return Ok((jiff::Timestamp::UNIX_EPOCH, "the Unix epoch"));
    };
    let malformed = || {
        anyhow::anyhow!(
            "{SOURCE_DATE_EPOCH}={value:?} is not a time: give whole seconds since 1970-01-01T00:00:00Z, as `date +%s` prints them"
        )
    };
    // Digits only, as the convention says: no sign, fraction or blanks.
    let text = value
        .to_str()
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()));
    let seconds: i64 = text.and_then(|t| t.parse().ok()).ok_or_else(malformed)?;
    let created = jiff::Timestamp::from_second(seconds).map_err(|e| malformed().context(e))?;
    Ok((created, SOURCE_DATE_EPOCH))
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
    registry: &imprint_oci::Registry,
    image: &imprint_oci::Reference,
    digest: &imprint_schema::Digest,
) -> bool {
    registry.resolve(image).await.is_ok_and(|top| {
        top.digest == *digest
            && [
                imprint_oci::layout::INDEX_MEDIA_TYPE,
                imprint_oci::layout::DOCKER_MANIFEST_LIST_MEDIA_TYPE,
            ]
            .contains(&top.media_type.as_str())
    })
}

pub fn push(args: PushArgs) -> CmdResult {
    let mut profile = load_profile(&args.profile)?;
    let (created, created_from) = created_time(
        profile.learning.end,
        args.created,
        std::env::var_os(SOURCE_DATE_EPOCH),
    )
    .map_err(Failure::invalid)?;
    if args.created.is_some() && created_from != "--created" {
        eprintln!(
            "imprint: --created is not used: {} has a learning window, and its end ({created}) is the artifact's created time",
            args.profile.display()
        );
    }
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
        // `created` is when the profile was made, never the clock, so pushing
        // the same profile again gives the same artifact digest.
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
    let (found, revocations) = rt.block_on(async {
        let subject = match image.digest() {
            Some(d) => d
                .parse()
                .map_err(|e| Failure::invalid(anyhow::anyhow!("{}: {e}", args.image)))?,
            None => registry.resolve(&image).await.map_err(classify)?.digest,
        };
        let found = registry
            .discover(&repository, &subject)
            .await
            .map_err(classify)?;
        let revocations = crate::revoke::claims(&registry, &repository, &subject).await?;
        Ok::<_, Failure>((found, revocations))
    })?;
    for (digest, why) in &found.rejected {
        eprintln!("imprint: warning: ignored referrer {digest}: {why}");
    }
    if found.unexamined > 0 {
        // More referrers than are examined: possibly a flood hiding the real one.
        eprintln!(
            "imprint: warning: the referrers list of {subject} has {} entries beyond the {} examined; they were not checked (a flooded list can hide a genuine profile)",
            found.unexamined,
            imprint_oci::MAX_REFERRERS_EXAMINED,
            subject = args.image,
        );
    }
    crate::revoke::print_discovered(&repository, &found.artifacts, &revocations, args.output)?;
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
        let policy = TrustArgs {
            key: args.trust.key.clone(),
            attestation: false,
            policy: args.trust.policy.clone(),
        }
        .load_policy()?;
        // The digest verified is the one pulled and checked, not a tag's.
        let (verdict, _) = rt
            .block_on(async {
                let verdict = registry.verify(&reference, &pulled.digest, &policy).await?;
                crate::revoke::judge_revocations(&registry, &reference, verdict, &policy).await
            })
            .map_err(classify)?;
        if !verdict.verified {
            report(&verdict, OutputFormat::Text);
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
        render_profile(&pulled.profile, imprint_schema::Format::Yaml).into_bytes()
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
    use super::*;

    #[test]
    fn only_a_written_tag_is_a_tag() {
        assert_eq!(written_tag("r.example/p/web:v1"), Some("v1"));
        assert_eq!(written_tag("localhost:5000/p/web:v1"), Some("v1"));
        assert_eq!(written_tag("localhost:5000/p/web"), None);
        assert_eq!(written_tag("r.example/p/web"), None);
        assert_eq!(written_tag("r.example/p/web@sha256:ab"), None);
        assert_eq!(written_tag("r.example/p/web:v2@sha256:ab"), Some("v2"));
    }

    fn at(text: &str) -> jiff::Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn the_created_time_is_never_the_clock() {
        let end = at("2026-11-26T12:00:00Z");
        let flag = at("2026-01-02T03:04:05Z");
        let epoch = Some("1764000000".into());
        assert_eq!(
            created_time(Some(end), Some(flag), epoch.clone())
                .unwrap()
                .0,
            end
        );
        assert_eq!(
            created_time(None, Some(flag), epoch.clone()).unwrap().0,
            flag
        );
        assert_eq!(
            created_time(None, None, epoch).unwrap(),
            (
                jiff::Timestamp::from_second(1_764_000_000).unwrap(),
                SOURCE_DATE_EPOCH
            )
        );
        assert_eq!(
            created_time(None, None, None).unwrap().0,
            at("1970-01-01T00:00:00Z")
        );
    }

    #[test]
    fn a_malformed_source_date_epoch_is_named() {
        for bad in ["", "-1", "+5", "1.5", " 17", "soon", "99999999999999999999"] {
            let err = created_time(None, None, Some(bad.into())).unwrap_err();
            let message = format!("{err:#}");
            assert!(
                message.contains(&format!("SOURCE_DATE_EPOCH={bad:?}")),
                "{message}"
            );
        }
        // Ignored when a learning end or --created decides.
        assert!(created_time(None, Some(at("2026-01-01T00:00:00Z")), Some("x".into())).is_ok());
    }
}
