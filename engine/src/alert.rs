//! What the detector and the behaviour rules report.

use imprint_schema::Digest;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// How bad it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth a look.
    Low,
    /// Unexpected.
    Medium,
    /// Likely malicious.
    High,
    /// Act now.
    Critical,
}

/// Where an alert comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A deviation from the image's verified profile.
    Anomaly,
    /// A behaviour rule, which runs for every container.
    Behaviour,
    /// The agent itself: a part of it that judges containers has stopped, so a
    /// silence would not mean nothing happened.
    Agent,
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// The rule's stable id (`anomaly.exec`, `reverse-shell`…).
    pub rule: String,
    /// Anomaly or behaviour.
    pub source: Source,
    /// Severity.
    pub severity: Severity,
    /// MITRE ATT&CK technique ids.
    pub mitre: Vec<String>,
    /// One line for humans.
    pub message: String,
    /// What the alert is about, for dedup: the path, the peer, the syscall…
    pub subject: String,
    /// When the event happened.
    pub time: Timestamp,
    /// The container.
    pub container_id: String,
    /// Its image digest, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<Digest>,
    /// The node, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The acting process.
    pub pid: u32,
    /// Its command name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm: Option<String>,
}
