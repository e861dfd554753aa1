//! Output formats the commands offer (`--output`, `--format`), and the printing of
//! results more than one command gives.

use clap::ValueEnum;
use imprint_oci::Written;
use imprint_oci::policy::Verdict;

/// `--output` of the registry, signing and replay commands.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
}

/// The format a profile is written in.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProfileFormat {
    Yaml,
    Json,
}

impl From<ProfileFormat> for imprint_schema::Format {
    fn from(f: ProfileFormat) -> Self {
        match f {
            ProfileFormat::Yaml => imprint_schema::Format::Yaml,
            ProfileFormat::Json => imprint_schema::Format::Json,
        }
    }
}

/// `validate --output`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportFormat {
    Text,
    Json,
}

/// `diff --format`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiffFormat {
    Text,
    Patch,
    Json,
}

/// Prints a verification verdict: each finding and the outcome on stderr, the
/// verified digest on stdout; or the whole verdict as JSON.
pub fn report(verdict: &Verdict, output: OutputFormat) {
    match output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(verdict).expect("verdicts serialize")
        ),
        OutputFormat::Text => {
            for (kind, findings) in [
                ("signature", &verdict.signatures),
                ("attestation", &verdict.attestations),
            ] {
                for f in findings {
                    match (&f.authority, &f.error) {
                        (Some(a), _) if f.verified => {
                            eprintln!("imprint: {kind} {}: verified by {a}", f.source)
                        }
                        (_, Some(e)) => eprintln!("imprint: {kind} {}: {e}", f.source),
                        _ => {}
                    }
                }
            }
            if verdict.verified {
                println!("verified {}", verdict.digest);
            } else {
                for failure in &verdict.failures {
                    eprintln!("imprint: policy fails: {failure}");
                }
            }
        }
    }
}

/// Prints what a signature or attestation write left: its reference on stdout and
/// `what` with its digest on stderr, or the result as JSON.
pub fn print_written(written: &Written, output: OutputFormat, what: &str) {
    match output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string(written).expect("results serialize")
        ),
        OutputFormat::Text => {
            println!("{}", written.reference);
            eprintln!("imprint: {what} {}", written.digest);
        }
    }
}
