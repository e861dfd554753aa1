//! `imprint replay`: the agent's detector and behaviour rules, run offline on a
//! recorded event stream, so CI can test a profile before it is published.

use std::io::BufReader;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use imprint_engine::{Correlator, Detector, EventReader, Outcome, RuleFile, RuleSet};

use crate::files::{CmdResult, EXIT_FINDINGS, EXIT_OK, Failure, load_profile, read_bounded};
use crate::output::OutputFormat;

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// Profiles to enforce (repeatable); each applies to its own image digest.
    #[arg(long = "profile", required = true)]
    profiles: Vec<PathBuf>,
    /// Event files (JSON lines, as `imprint-agent --events-out` writes them).
    #[arg(long = "events", short = 'e', required = true, num_args = 1..)]
    events: Vec<PathBuf>,
    /// Behaviour rule files (`kind: RuleSet`), applied after the built-in ones.
    #[arg(long = "rules")]
    rules: Vec<PathBuf>,
    /// Leave the built-in behaviour rules out.
    #[arg(long)]
    no_builtin_rules: bool,
    /// Seconds after its last alert an incident stays open.
    #[arg(long, default_value_t = 60)]
    incident_window: i64,
    /// `json`: one alert per line, then one incident per line.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
}

pub fn replay(args: ReplayArgs) -> CmdResult {
    let mut files = Vec::new();
    if !args.no_builtin_rules {
        files.push(
            RuleFile::parse(imprint_engine::DEFAULT_RULES, "built-in rules")
                .expect("the built-in rules are valid"),
        );
    }
    for path in &args.rules {
        let bytes = read_bounded(path, 4 << 20)
            .with_context(|| format!("cannot read --rules {}", path.display()))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Failure::invalid(anyhow::anyhow!("{}: not UTF-8", path.display())))?;
        files.push(RuleFile::parse(&text, &path.display().to_string()).map_err(Failure::invalid)?);
    }
    let mut detector = Detector::new(RuleSet::build(&files));
    for path in &args.profiles {
        detector.load(&load_profile(path)?);
    }
    let window = jiff::SignedDuration::from_secs(args.incident_window.max(1));
    let mut correlator = Correlator::new(window, window);
    let mut alerts = Vec::new();
    let mut sent = 0u64;
    for path in &args.events {
        let file = std::fs::File::open(path)
            .with_context(|| format!("cannot open --events {}", path.display()))?;
        for event in EventReader::new(BufReader::new(file)) {
            let event = event.map_err(|e| {
                Failure::invalid(anyhow::Error::new(e).context(path.display().to_string()))
            })?;
            correlator.observe(&event);
            detector.check(&event, &mut alerts);
            for alert in alerts.drain(..) {
                let outcome = correlator.push(alert.clone());
                if matches!(outcome, Outcome::Suppressed(_)) {
                    continue;
                }
                sent += 1;
                match args.output {
                    OutputFormat::Json => println!("{}", serde_json::to_string(&alert)?),
                    OutputFormat::Text => println!(
                        "{} {:?} {} [{}] {} (container {}, pid {})",
                        alert.time,
                        alert.severity,
                        alert.rule,
                        alert.mitre.join(","),
                        alert.message,
                        alert.container_id.chars().take(12).collect::<String>(),
                        alert.pid
                    ),
                }
            }
        }
    }
    let incidents = correlator.expire(jiff::Timestamp::MAX);
    for incident in &incidents {
        match args.output {
            OutputFormat::Json => println!("{}", serde_json::to_string(incident)?),
            OutputFormat::Text => eprintln!(
                "imprint: incident {} ({:?}, container {}): {} kinds of alert, {} processes",
                incident.id,
                incident.severity,
                incident.container_id.chars().take(12).collect::<String>(),
                incident.timeline.len(),
                incident.processes.len()
            ),
        }
    }
    eprintln!("imprint: {sent} alerts in {} incidents", incidents.len());
    Ok(if sent == 0 { EXIT_OK } else { EXIT_FINDINGS })
}
