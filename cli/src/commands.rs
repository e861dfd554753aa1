//! The subcommands. Each returns its exit code, or a [`Failure`] that carries one.

use std::fs;
use std::io::BufReader;
use std::path::Path;

use anyhow::Context;
use imprint_engine::{CollapseConfig, EventReader, Learner, LearnerConfig};
use imprint_schema::seccomp::{DefaultAction, to_seccomp};
use imprint_schema::{Completeness, Profile, diff as pdiff};
use imprint_schema::{DEFAULT_MAX_DOCUMENT_BYTES, Format};

use crate::files::{
    CmdResult, EXIT_FINDINGS, EXIT_OK, Failure, load_profile, output_format, read_bounded,
    render_profile, write_atomic, write_output,
};
use crate::output::{DiffFormat, ReportFormat};
use crate::{
    DiffArgs, DigestArgs, ExportSeccompArgs, ImportKubescapeArgs, LearnArgs, MergeArgs, PatchArgs,
    SchemaDocument, SeccompAction, ValidateArgs,
};

/// File name for a digest's profile: `sha256-<hex>.yaml`, as OCI fallback tags spell it.
fn profile_file_name(digest: &imprint_schema::Digest, format: Format) -> String {
    let ext = match format {
        Format::Json => "json",
        Format::Yaml => "yaml",
    };
    format!("{}.{ext}", digest.tag_form())
}

pub fn learn(args: LearnArgs) -> CmdResult {
    let config = LearnerConfig {
        collapse: CollapseConfig {
            threshold: args.collapse_threshold,
            overrides: args.collapse_overrides.clone(),
        },
        learning_period: args.learning_period,
        ..LearnerConfig::default()
    };
    let mut learner = Learner::new(config);
    let mut skipped = 0u64;
    for path in &args.events {
        let reader: Box<dyn std::io::BufRead> = if path == Path::new("-") {
            Box::new(std::io::stdin().lock())
        } else {
            let file =
                fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            Box::new(BufReader::with_capacity(1 << 16, file))
        };
        for event in EventReader::new(reader) {
            match event {
                Ok(event) => {
                    if args
                        .image_digest
                        .as_ref()
                        .is_none_or(|d| Some(d) == event.image_digest.as_ref())
                    {
                        learner.observe(&event);
                    }
                }
                Err(e @ imprint_engine::event::EventError::Io { .. }) => {
                    return Err(anyhow::Error::new(e)
                        .context(path.display().to_string())
                        .into());
                }
                Err(e)
                    if args.skip_invalid
                        && !matches!(e, imprint_engine::event::EventError::LineTooLong { .. }) =>
                {
                    eprintln!("imprint: skipped {}: {e}", path.display());
                    skipped += 1;
                }
                Err(e) => {
                    return Err(Failure::invalid(
                        anyhow::Error::new(e).context(path.display().to_string()),
                    ));
                }
            }
        }
    }
    let profiles = learner.profiles();
    if profiles.is_empty() {
        let what = match &args.image_digest {
            Some(d) => format!("no events for image {d}"),
            None => "no events".to_string(),
        };
        return Err(Failure::invalid(anyhow::anyhow!(
            "{what}: nothing to learn"
        )));
    }
    fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let format: Format = args.format.into();
    for profile in &profiles {
        let path = args
            .out
            .join(profile_file_name(&profile.image.digest, format));
        write_atomic(
            &path,
            render_profile(profile, format).as_bytes(),
            imprint_fs::PUBLIC,
        )?;
        let l = &profile.learning;
        let completeness = match l.completeness {
            Completeness::Complete => "complete",
            Completeness::Partial => "partial",
        };
        eprintln!(
            "imprint: wrote {} ({} entries, {completeness}, {} container(s))",
            path.display(),
            profile.entry_count(),
            l.observed_containers
        );
        if !l.truncated.is_empty() {
            let fields: Vec<&str> = l.truncated.iter().map(|c| c.field()).collect();
            eprintln!(
                "imprint: warning: {}: size bound hit in {}; behaviour past it was dropped",
                profile.image.digest,
                fields.join(", ")
            );
        }
    }
    let stats = learner.stats();
    eprintln!(
        "imprint: {} events, {} unusable, {} dropped at bounds, {} invalid lines skipped",
        stats.events, stats.unusable, stats.dropped, skipped
    );
    Ok(EXIT_OK)
}

pub fn validate(args: ValidateArgs) -> CmdResult {
    let mut report = Vec::new();
    let mut invalid = 0;
    for path in &args.files {
        let result = read_bounded(path, DEFAULT_MAX_DOCUMENT_BYTES).map_err(|e| {
            // Too large is a property of the document; a missing file is I/O.
            match e.downcast::<imprint_schema::DocumentError>() {
                Ok(doc) => Ok(vec![doc.to_string()]),
                Err(io) => Err(io),
            }
        });
        let problems: Vec<String> = match result {
            Ok(bytes) => match imprint_schema::parse_profile(&bytes) {
                Ok(_) => Vec::new(),
                Err(e) => e.issues(),
            },
            Err(Ok(problems)) => problems,
            Err(Err(io)) => return Err(io.into()),
        };
        if !problems.is_empty() {
            invalid += 1;
        }
        report.push((path.display().to_string(), problems));
    }
    match args.output {
        ReportFormat::Text => {
            for (file, problems) in &report {
                if problems.is_empty() {
                    println!("{file}: valid");
                }
                for p in problems {
                    println!("{file}: {p}");
                }
            }
        }
        ReportFormat::Json => {
            let items: Vec<serde_json::Value> = report
                .iter()
                .map(|(file, problems)| {
                    serde_json::json!({"file": file, "valid": problems.is_empty(), "problems": problems})
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&items)?);
        }
    }
    Ok(if invalid > 0 { EXIT_FINDINGS } else { EXIT_OK })
}

pub fn diff(args: DiffArgs) -> CmdResult {
    let a = load_profile(&args.a)?;
    let b = load_profile(&args.b)?;
    let summary = pdiff::summarize(&a, &b);
    let out = match args.format {
        DiffFormat::Text => pdiff::unified_diff(
            &a,
            &b,
            &args.a.display().to_string(),
            &args.b.display().to_string(),
        ),
        DiffFormat::Patch => {
            let mut s = serde_json::to_string_pretty(&pdiff::json_patch(&a, &b))?;
            s.push('\n');
            s
        }
        DiffFormat::Json => {
            let mut s = serde_json::to_string_pretty(&summary)?;
            s.push('\n');
            s
        }
    };
    write_output(None, out.as_bytes())?;
    Ok(if summary.is_empty() {
        EXIT_OK
    } else {
        EXIT_FINDINGS
    })
}

pub fn patch(args: PatchArgs) -> CmdResult {
    let profile = load_profile(&args.profile)?;
    let bytes = read_bounded(&args.patch, DEFAULT_MAX_DOCUMENT_BYTES)?;
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).map_err(|e| {
        Failure::invalid(anyhow::anyhow!(
            "{}: not an RFC 6902 patch: {e}",
            args.patch.display()
        ))
    })?;
    let patched = imprint_schema::diff::apply_patch(&profile, &patch).map_err(|e| {
        Failure::invalid(anyhow::Error::new(e).context(args.patch.display().to_string()))
    })?;
    let format = output_format(args.format.map(Into::into), args.out.as_deref());
    write_output(
        args.out.as_deref(),
        render_profile(&patched, format).as_bytes(),
    )?;
    Ok(EXIT_OK)
}

pub fn merge(args: MergeArgs) -> CmdResult {
    let profiles = args
        .profiles
        .iter()
        .map(|p| load_profile(p))
        .collect::<Result<Vec<Profile>, Failure>>()?;
    let merged = imprint_schema::merge_all(&profiles)
        .map_err(Failure::invalid)?
        .expect("clap requires at least two profiles");
    let format = output_format(args.format.map(Into::into), Some(&args.out));
    write_output(Some(&args.out), render_profile(&merged, format).as_bytes())?;
    Ok(EXIT_OK)
}

pub fn import_kubescape(args: ImportKubescapeArgs) -> CmdResult {
    use imprint_schema::kubescape::{ImportOptions, import};
    let bytes = read_bounded(&args.file, DEFAULT_MAX_DOCUMENT_BYTES).map_err(Failure::invalid)?;
    let options = ImportOptions {
        image_digest: args.image_digest.clone(),
        container: args.container.clone(),
    };
    let imported = import(&bytes, &options).map_err(|e| {
        Failure::invalid(anyhow::Error::new(e).context(args.file.display().to_string()))
    })?;
    for item in &imported {
        for w in &item.warnings {
            eprintln!(
                "imprint: warning: {}: container {}: {w}",
                args.file.display(),
                item.container
            );
        }
    }
    let single = imported.len() == 1 && !args.out.is_dir();
    if single {
        let format = output_format(args.format.map(Into::into), Some(&args.out));
        write_output(
            Some(&args.out),
            render_profile(&imported[0].profile, format).as_bytes(),
        )?;
        eprintln!("imprint: wrote {}", args.out.display());
    } else {
        let format: Format = args.format.map(Into::into).unwrap_or(Format::Yaml);
        fs::create_dir_all(&args.out)
            .with_context(|| format!("cannot create {}", args.out.display()))?;
        for item in &imported {
            let path = args
                .out
                .join(profile_file_name(&item.profile.image.digest, format));
            write_atomic(
                &path,
                render_profile(&item.profile, format).as_bytes(),
                imprint_fs::PUBLIC,
            )?;
            eprintln!(
                "imprint: wrote {} (container {})",
                path.display(),
                item.container
            );
        }
    }
    Ok(EXIT_OK)
}

pub fn export_seccomp(args: ExportSeccompArgs) -> CmdResult {
    let profile = load_profile(&args.profile)?;
    let action = match args.default_action {
        SeccompAction::Errno => DefaultAction::Errno,
        SeccompAction::Log => DefaultAction::Log,
        SeccompAction::Kill => DefaultAction::KillProcess,
    };
    if profile.syscalls.is_empty() {
        eprintln!(
            "imprint: warning: {} lists no syscalls; this seccomp profile allows none",
            args.profile.display()
        );
    }
    let mut out = serde_json::to_string_pretty(&to_seccomp(&profile, action))?;
    out.push('\n');
    write_output(args.out.as_deref(), out.as_bytes())?;
    Ok(EXIT_OK)
}

pub fn digest(args: DigestArgs) -> CmdResult {
    let mut out = String::new();
    for path in &args.files {
        let profile = load_profile(path)?;
        out.push_str(&format!(
            "{}  {}\n",
            imprint_schema::digest(&profile),
            path.display()
        ));
    }
    write_output(None, out.as_bytes())?;
    Ok(EXIT_OK)
}

pub fn schema(document: SchemaDocument) -> CmdResult {
    let value = match document {
        SchemaDocument::Profile => imprint_schema::json_schema(),
        SchemaDocument::Events => imprint_engine::event::json_schema(),
        SchemaDocument::ProfileCrd => {
            write_output(None, imprint_schema::crd::profile_crd_yaml().as_bytes())?;
            return Ok(EXIT_OK);
        }
    };
    let mut out = serde_json::to_string_pretty(&value)?;
    out.push('\n');
    write_output(None, out.as_bytes())?;
    Ok(EXIT_OK)
}
