//! What an enforcing agent says about itself: per running image digest, what is
//! enforced and from where, or why the digest is on behaviour rules only; and
//! whether the resolver still runs. Served as JSON at `GET /status` on
//! `--metrics-addr`; `imprint-agent status` reads it.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use imprint_schema::Digest;
use serde::{Deserialize, Serialize};

use crate::resolver::{Status, Update};

/// The agent's status document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    /// The resolver, which finds and verifies profiles.
    pub resolver: ResolverHealth,
    /// Each running image digest (platform manifests, not the indexes that stand
    /// for them).
    pub digests: BTreeMap<Digest, DigestStatus>,
}

/// Whether the resolver runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolverHealth {
    /// It runs.
    pub running: bool,
    /// Why it stopped, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

impl Default for ResolverHealth {
    fn default() -> Self {
        ResolverHealth {
            running: true,
            stopped: None,
        }
    }
}

/// One digest's profile state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DigestStatus {
    /// The state, as the `imprint_profiles` metric labels it (`verified`,
    /// `no-profile`, `unsigned`, `unreachable`…).
    pub state: String,
    /// The artifact enforced (`registry/repo@sha256:…`), when one is: also while
    /// the registry is unreachable, since the last verified profile stays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforced: Option<String>,
    /// Why there is no (other) profile: the resolver's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Multi-platform indexes that stand for this manifest on this node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<Digest>,
}

impl StatusReport {
    /// Takes in one resolver decision.
    pub fn apply(&mut self, update: &Update) {
        match update {
            Update::Enforce {
                digest, artifact, ..
            } => {
                let entry = self.digests.entry(digest.clone()).or_default();
                entry.state = "verified".into();
                entry.enforced = Some(artifact.clone());
                entry.detail = None;
            }
            Update::Revoke { digest, status } => {
                let entry = self.digests.entry(digest.clone()).or_default();
                entry.state = status.label().into();
                entry.enforced = None;
                entry.detail = detail_of(status);
            }
            // What is enforced (if anything) stays: only the state and reason change.
            Update::Status { digest, status } => {
                let entry = self.digests.entry(digest.clone()).or_default();
                entry.state = status.label().into();
                entry.detail = detail_of(status);
            }
            Update::Flooded { .. } => {}
            Update::Platform { index, manifest } => {
                self.digests.remove(index);
                let entry = self.digests.entry(manifest.clone()).or_default();
                if entry.state.is_empty() {
                    entry.state = "resolving".into();
                }
                if !entry.indexes.contains(index) {
                    entry.indexes.push(index.clone());
                }
            }
        }
    }

    /// How many digests are in each state the resolver has decided (digests
    /// still `resolving` are not counted).
    pub fn count_by_state(&self) -> BTreeMap<String, u64> {
        let mut counts = BTreeMap::new();
        for status in self.digests.values().filter(|s| s.state != "resolving") {
            *counts.entry(status.state.clone()).or_insert(0) += 1;
        }
        counts
    }

    /// A digest seen running, before the resolver has said anything of it.
    pub fn seen(&mut self, digest: &Digest) {
        let entry = self.digests.entry(digest.clone()).or_default();
        if entry.state.is_empty() {
            entry.state = "resolving".into();
        }
    }
}

/// The reason a status carries, as `/status` and the logs say it.
fn detail_of(status: &Status) -> Option<String> {
    // The serialized form (`{"state": …, "detail": …}`) is the one users see.
    let value = serde_json::to_value(status).ok()?;
    value.get("detail")?.as_str().map(str::to_string)
}

/// `imprint-agent status`: asks a running agent.
#[derive(Debug, clap::Parser)]
#[command(
    name = "imprint-agent status",
    about = "Shows what a running agent enforces per image digest, and why a digest is on behaviour rules only"
)]
pub struct StatusCommand {
    /// The agent's `--metrics-addr`.
    #[arg(long, default_value = "127.0.0.1:9464")]
    pub metrics_addr: SocketAddr,
    /// `text` (a table) or `json` (the `/status` document).
    #[arg(long, short = 'o', value_enum, default_value_t = StatusOutput::Text)]
    pub output: StatusOutput,
}

/// How `imprint-agent status` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusOutput {
    /// A table.
    Text,
    /// JSON.
    Json,
}

/// Why `imprint-agent status` could not say.
#[derive(Debug, thiserror::Error)]
pub enum StatusCommandError {
    /// The agent did not answer.
    #[error("cannot ask the agent at http://{addr}/status: {source}")]
    Request {
        /// Where it was asked.
        addr: SocketAddr,
        /// Why not.
        source: reqwest::Error,
    },
    /// The answer is not a status document.
    #[error("http://{addr}/status did not answer a status document: {source}")]
    Document {
        /// Where it was asked.
        addr: SocketAddr,
        /// Why not.
        source: serde_json::Error,
    },
    /// No runtime for the request.
    #[error("a tokio runtime: {0}")]
    Runtime(std::io::Error),
}

impl StatusCommand {
    /// Asks the agent and prints its answer; `Ok(false)` when the resolver has
    /// stopped (the node is on behaviour rules only).
    pub fn run(&self) -> Result<bool, StatusCommandError> {
        let report = self.fetch()?;
        match self.output {
            StatusOutput::Json => println!(
                "{}",
                serde_json::to_string_pretty(&report).expect("reports serialize")
            ),
            StatusOutput::Text => print!("{}", render_text(&report)),
        }
        Ok(report.resolver.running)
    }

    fn fetch(&self) -> Result<StatusReport, StatusCommandError> {
        let addr = self.metrics_addr;
        let request = |source| StatusCommandError::Request { addr, source };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(StatusCommandError::Runtime)?;
        let body = runtime.block_on(async {
            let client = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .map_err(request)?;
            let response = client
                .get(format!("http://{addr}/status"))
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(request)?;
            response.bytes().await.map_err(request)
        })?;
        serde_json::from_slice(&body)
            .map_err(|source| StatusCommandError::Document { addr, source })
    }
}

/// The table `imprint-agent status` prints.
pub fn render_text(report: &StatusReport) -> String {
    let mut out = String::new();
    match &report.resolver.stopped {
        None => out.push_str("resolver: running\n"),
        Some(why) => out.push_str(&format!(
            "resolver: STOPPED ({why}); every container is on behaviour rules only\n"
        )),
    }
    if report.digests.is_empty() {
        out.push_str("no container seen yet\n");
        return out;
    }
    out.push_str("DIGEST                                                                   STATE               ENFORCED / WHY\n");
    for (digest, status) in &report.digests {
        let why = match (&status.enforced, &status.detail) {
            (Some(artifact), Some(detail)) => format!("{artifact} (now: {detail})"),
            (Some(artifact), None) => artifact.clone(),
            (None, Some(detail)) => detail.clone(),
            (None, None) => "-".into(),
        };
        out.push_str(&format!("{digest:<72} {:<19} {why}\n", status.state));
        for index in &status.indexes {
            out.push_str(&format!("  (index {index})\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
