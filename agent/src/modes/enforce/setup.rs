//! What enforce mode reads and checks before anything starts: the policy, the
//! rules, the outputs, and the delivered profiles.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use imprint_engine::{RuleFile, RuleSet};
use imprint_oci::VerifyingKey;
use imprint_oci::policy::{Authority, Policy};

use crate::delivered::{self, SharedDeliveries};
use crate::outputs::{SyslogTarget, Target, TlsFiles};
use crate::settings::Settings;

/// How long the start waits for the first list of `Profile` objects.
const PROFILE_LIST_WAIT: Duration = Duration::from_secs(15);

/// How often a `--profile-dir` is read again.
const PROFILE_DIR_SCAN: Duration = Duration::from_secs(2);

/// The policy `--policy` or `--key` gives: with keys, profiles must be signed and
/// attested (imprint's predicate) by one of them.
pub(super) fn policy(settings: &Settings) -> anyhow::Result<Policy> {
    let enforce = &settings.enforce;
    if let Some(path) = &enforce.policy {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read --policy {}", path.display()))?;
        return Ok(Policy::load(path, &bytes)?);
    }
    let mut keys = Vec::new();
    for path in &enforce.keys {
        let pem =
            std::fs::read(path).with_context(|| format!("cannot read --key {}", path.display()))?;
        let key =
            VerifyingKey::from_pem(&pem).with_context(|| format!("--key {}", path.display()))?;
        keys.push((path.display().to_string(), key));
    }
    let Some((_, first)) = keys.first() else {
        anyhow::bail!(
            "enforce mode needs --policy FILE or at least one --key PUB: profiles are enforced only when verified"
        );
    };
    let mut policy = Policy::for_key(first.clone(), true);
    policy.authorities = keys
        .into_iter()
        .map(|(name, key)| Authority::Key { name, key })
        .collect();
    Ok(policy)
}

/// The built-in rules, then each `--rules` file.
pub(super) fn rules(paths: &[PathBuf]) -> anyhow::Result<RuleSet> {
    let mut files = vec![RuleFile::parse(
        imprint_engine::DEFAULT_RULES,
        "built-in rules",
    )?];
    for path in paths {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read --rules {}", path.display()))?;
        files.push(RuleFile::parse(&text, &path.display().to_string())?);
    }
    Ok(RuleSet::build(&files))
}

/// The receivers alerts are sent to.
pub(super) fn targets(settings: &Settings) -> anyhow::Result<Vec<Target>> {
    let outputs = &settings.outputs;
    let mut out = Vec::new();
    if let Some(url) = &outputs.alertmanager.url {
        out.push(Target::Alertmanager(url.as_str().to_string()));
    }
    if let Some(url) = &outputs.webhook.url {
        let headers = outputs
            .webhook
            .headers
            .iter()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect();
        out.push(Target::Webhook(url.as_str().to_string(), headers));
    }
    if let Some(url) = &outputs.syslog.url {
        let tls = TlsFiles {
            ca: outputs.syslog.ca.clone(),
            cert: outputs.syslog.cert.clone(),
            key: outputs.syslog.key.clone(),
        };
        let target = SyslogTarget::new(url.as_str(), &tls).context("--syslog-url")?;
        out.push(Target::Syslog(target));
    }
    Ok(out)
}

/// Reads `--profile-dir` once now (so the resolver never picks without its pins),
/// then again every [`PROFILE_DIR_SCAN`] on its own thread until `stop`.
pub(super) fn watch_profile_dir(
    dir: PathBuf,
    deliveries: &SharedDeliveries,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        dir.is_dir(),
        "--profile-dir {}: not a directory",
        dir.display()
    );
    let report = |problems: &[String], reported: &[String]| {
        // Each problem once, not every scan.
        for p in problems.iter().filter(|p| !reported.contains(*p)) {
            eprintln!("imprint-agent: delivered profile not used: {p}");
        }
    };
    let mut reported = delivered::scan_dir(&dir, deliveries);
    report(&reported, &[]);
    let (d, s) = (deliveries.clone(), stop.clone());
    std::thread::spawn(move || {
        while !s.load(Ordering::Relaxed) {
            let until = Instant::now() + PROFILE_DIR_SCAN;
            while Instant::now() < until && !s.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
            }
            let problems = delivered::scan_dir(&dir, &d);
            report(&problems, &reported);
            reported = problems;
        }
    });
    Ok(())
}

/// Pins first: waits (up to [`PROFILE_LIST_WAIT`]) until the `Profile` objects
/// are listed, so the resolver does not enforce discovery's choice for a digest
/// that Git pins otherwise.
pub(super) fn wait_for_profile_objects(deliveries: &SharedDeliveries) {
    let listed = || delivered::lock(deliveries).is_listed(crate::kubernetes::PROFILE_SOURCES);
    let deadline = Instant::now() + PROFILE_LIST_WAIT;
    while !listed() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    if !listed() {
        eprintln!(
            "imprint-agent: Profile objects not listed within {PROFILE_LIST_WAIT:?}; resolving without their pins until they are"
        );
    }
}
