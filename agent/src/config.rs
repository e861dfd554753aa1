//! The agent's configuration file (`--config FILE`): the same settings as the
//! flags, in one YAML document, checked before the agent starts. A flag given on
//! the command line wins over the file.
//!
//! ```yaml
//! apiVersion: imprint.dev/v1
//! kind: AgentConfig
//! mode: enforce                  # or learn
//! stateDir: /var/lib/imprint
//! metricsAddr: 0.0.0.0:9464
//! runtime: auto                  # podman, cri
//! kubernetes: true               # watch this node's pods and Profile objects
//! node: node-1                   # default: the host name
//! learn: {learningPeriod: 24h, out: /var/lib/imprint/profiles, exitWhenLearned: false}
//! enforce:
//!   keys: [/etc/imprint/cosign.pub]   # or policy: /etc/imprint/policy.yaml
//!   profileRepos: [registry.example/profiles]
//!   profileDir: /etc/imprint/profiles   # delivered Profile documents (Flux, ConfigMap)
//!   rules: [/etc/imprint/rules.yaml]
//!   refresh: 30
//! outputs:
//!   alertmanager: {url: http://alertmanager:9093}
//!   webhook: {url: https://hooks.example/imprint, headers: {Authorization: Bearer …}}
//!   syslog: {url: tls://syslog:6514, ca: /etc/imprint/syslog-ca.pem}  # or udp://, tcp://
//!   stdout: true
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// Why a configuration file is refused.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    /// The file.
    pub path: String,
    /// What is wrong, and where.
    pub message: String,
}

/// The configuration file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentConfig {
    /// `imprint.dev/v1`.
    pub api_version: String,
    /// `AgentConfig`.
    pub kind: String,
    /// `learn` or `enforce`.
    #[serde(default)]
    pub mode: Option<String>,
    /// State directory.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// Metrics address.
    #[serde(default)]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// `auto`, `podman` or `cri`.
    #[serde(default)]
    pub runtime: Option<String>,
    /// A pod list file naming each container's image.
    #[serde(default)]
    pub pod_statuses: Option<PathBuf>,
    /// The node name.
    #[serde(default)]
    pub node: Option<String>,
    /// Report host processes too.
    #[serde(default)]
    pub include_host: Option<bool>,
    /// Watch this node's pods (and `Profile` objects) through the Kubernetes API.
    #[serde(default)]
    pub kubernetes: Option<bool>,
    /// Learn mode.
    #[serde(default)]
    pub learn: LearnConfig,
    /// Enforce mode.
    #[serde(default)]
    pub enforce: EnforceConfig,
    /// Outputs (enforce mode).
    #[serde(default)]
    pub outputs: OutputsConfig,
}

/// Learn-mode settings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LearnConfig {
    /// `24h`, `30m`…
    #[serde(default)]
    pub learning_period: Option<String>,
    /// Where profiles are written.
    #[serde(default)]
    pub out: Option<PathBuf>,
    /// Where the event stream is written.
    #[serde(default)]
    pub events_out: Option<PathBuf>,
    /// Exit once every image seen has been learned (a CI job's learning run).
    #[serde(default)]
    pub exit_when_learned: Option<bool>,
}

/// Enforce-mode settings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnforceConfig {
    /// Trusted public keys.
    #[serde(default)]
    pub keys: Vec<PathBuf>,
    /// A verification policy.
    #[serde(default)]
    pub policy: Option<PathBuf>,
    /// Repositories to look for profiles in.
    #[serde(default)]
    pub profile_repos: Vec<String>,
    /// Behaviour rule files.
    #[serde(default)]
    pub rules: Vec<PathBuf>,
    /// Pinned profile artifacts (`oci://registry/repo@sha256:…`).
    #[serde(default)]
    pub profile_refs: Vec<String>,
    /// A directory of delivered `Profile` documents.
    #[serde(default)]
    pub profile_dir: Option<PathBuf>,
    /// Seconds between lookups.
    #[serde(default)]
    pub refresh: Option<u64>,
    /// Seconds of the incident window.
    #[serde(default)]
    pub incident_window: Option<i64>,
}

/// An output with a URL.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UrlOutput {
    /// Where to.
    pub url: String,
    /// Extra HTTP headers (webhook).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// CA certificates for a `tls://` syslog receiver (PEM).
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// Client certificate chain for a `tls://` syslog receiver (PEM).
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[serde(default)]
    pub key: Option<PathBuf>,
}

/// The outputs.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutputsConfig {
    /// Alertmanager.
    #[serde(default)]
    pub alertmanager: Option<UrlOutput>,
    /// An HTTP webhook.
    #[serde(default)]
    pub webhook: Option<UrlOutput>,
    /// Syslog.
    #[serde(default)]
    pub syslog: Option<UrlOutput>,
    /// JSON lines on stdout.
    #[serde(default)]
    pub stdout: Option<bool>,
}

impl AgentConfig {
    /// Parses and checks a configuration file.
    pub fn parse(text: &str, path: &str) -> Result<AgentConfig, ConfigError> {
        let err = |message: String| ConfigError {
            path: path.to_string(),
            message,
        };
        let config: AgentConfig = serde_saphyr::from_str(text).map_err(|e| err(e.to_string()))?;
        if config.api_version != "imprint.dev/v1" || config.kind != "AgentConfig" {
            return Err(err(format!(
                "apiVersion/kind are {}/{}, not imprint.dev/v1/AgentConfig",
                config.api_version, config.kind
            )));
        }
        if let Some(mode) = &config.mode
            && mode != "learn"
            && mode != "enforce"
        {
            return Err(err(format!("mode: {mode:?} is not learn or enforce")));
        }
        if let Some(runtime) = &config.runtime
            && !["auto", "podman", "cri"].contains(&runtime.as_str())
        {
            return Err(err(format!(
                "runtime: {runtime:?} is not auto, podman or cri"
            )));
        }
        if let Some(p) = &config.learn.learning_period {
            let d: jiff::SignedDuration = p
                .parse()
                .map_err(|e| err(format!("learn.learningPeriod: {p:?}: {e}")))?;
            if d.is_negative() || d.is_zero() {
                return Err(err(format!("learn.learningPeriod: {p:?} must be positive")));
            }
        }
        for (i, r) in config.enforce.profile_refs.iter().enumerate() {
            let text = r.strip_prefix("oci://").unwrap_or(r);
            if !text.contains("@sha256:") {
                return Err(err(format!(
                    "enforce.profileRefs[{i}]: {r:?} must pin a digest (oci://registry/repo@sha256:…)"
                )));
            }
        }
        if !config.enforce.keys.is_empty() && config.enforce.policy.is_some() {
            return Err(err("enforce: give keys or policy, not both".into()));
        }
        for (name, output, schemes) in [
            (
                "outputs.alertmanager.url",
                &config.outputs.alertmanager,
                &["http://", "https://"][..],
            ),
            (
                "outputs.webhook.url",
                &config.outputs.webhook,
                &["http://", "https://"][..],
            ),
            (
                "outputs.syslog.url",
                &config.outputs.syslog,
                &["udp://", "tcp://", "tls://"][..],
            ),
        ] {
            if let Some(o) = output
                && !schemes.iter().any(|s| o.url.starts_with(s))
            {
                return Err(err(format!(
                    "{name}: {:?} must start with {}",
                    o.url,
                    schemes.join(" or ")
                )));
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_config_parses() {
        let c = AgentConfig::parse(
            "apiVersion: imprint.dev/v1\nkind: AgentConfig\nmode: enforce\nstateDir: /var/lib/imprint\nmetricsAddr: 0.0.0.0:9464\nkubernetes: true\nnode: node-1\nenforce:\n  keys: [/etc/imprint/cosign.pub]\n  profileDir: /etc/imprint/profiles\n  refresh: 10\noutputs:\n  alertmanager: {url: http://am:9093}\n  webhook: {url: https://h.example/x, headers: {Authorization: Bearer t}}\n  syslog: {url: tls://127.0.0.1:6514, ca: /etc/imprint/ca.pem}\n  stdout: true\n",
            "agent.yaml",
        )
        .unwrap();
        assert_eq!(c.mode.as_deref(), Some("enforce"));
        assert_eq!(c.enforce.refresh, Some(10));
        assert_eq!(c.kubernetes, Some(true));
        assert_eq!(
            c.enforce.profile_dir.as_deref(),
            Some(std::path::Path::new("/etc/imprint/profiles"))
        );
        assert_eq!(
            c.outputs.syslog.as_ref().unwrap().ca.as_deref(),
            Some(std::path::Path::new("/etc/imprint/ca.pem"))
        );
        assert_eq!(
            c.outputs.webhook.unwrap().headers["Authorization"],
            "Bearer t"
        );
        let c = AgentConfig::parse(
            "apiVersion: imprint.dev/v1\nkind: AgentConfig\nmode: learn\nlearn: {learningPeriod: 10m, out: /tmp/p, exitWhenLearned: true}\n",
            "agent.yaml",
        )
        .unwrap();
        assert_eq!(c.learn.exit_when_learned, Some(true));
    }

    #[test]
    fn mistakes_are_named_with_the_file() {
        for (body, needle) in [
            ("mode: guard\n", "mode: \"guard\""),
            ("surprise: 1\n", "surprise"),
            ("learn: {learningPeriod: soon}\n", "learn.learningPeriod"),
            (
                "outputs: {alertmanager: {url: am:9093}}\n",
                "outputs.alertmanager.url",
            ),
            (
                "outputs: {syslog: {url: ssl://x:6514}}\n",
                "outputs.syslog.url",
            ),
            ("enforce: {keys: [a], policy: p}\n", "keys or policy"),
            (
                "enforce: {profileRefs: [\"oci://r/p:latest\"]}\n",
                "must pin a digest",
            ),
            ("metricsAddr: nowhere\n", "metricsAddr"),
        ] {
            let text = format!("apiVersion: imprint.dev/v1\nkind: AgentConfig\n{body}");
            let e = AgentConfig::parse(&text, "agent.yaml")
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("agent.yaml: "), "{e}");
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }
}
