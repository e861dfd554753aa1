//! The agent's settings: one type that is both the command line and the
//! configuration file (`--config FILE`, `kind: AgentConfig`), so a flag and its
//! key cannot drift apart.
//!
//! The file is nested and the flags are flat: each group below is a nested map
//! in the file and flattened flags on the command line. Every field is optional
//! (or a list) and defaults are applied when a value is read, so "not given" can
//! be told from "given the default". The one precedence rule lives in
//! [`Settings::load`]: the file first, then every flag given on the command line
//! replaces its key (a list flag replaces the whole list).
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
//! persistEvery: 5s
//! learn: {learningPeriod: 24h, out: /var/lib/imprint/profiles, exitWhenLearned: false}
//! enforce:
//!   keys: [/etc/imprint/cosign.pub]   # or policy: /etc/imprint/policy.yaml
//!   profileRepos: [registry.example/profiles]
//!   profileDir: /etc/imprint/profiles   # delivered Profile documents (Flux, ConfigMap)
//!   rules: [/etc/imprint/rules.yaml]
//!   refresh: 30s                        # a bare number is seconds
//! outputs:
//!   alertmanager: {url: http://alertmanager:9093}
//!   webhook: {url: https://hooks.example/imprint, headers: {Authorization: Bearer …}}
//!   # Headers or credentials over plain http:// to a host that is not loopback
//!   # are refused unless `insecure: true` (--webhook-insecure).
//!   syslog: {url: tls://syslog:6514, ca: /etc/imprint/syslog-ca.pem}  # or udp://, tcp://
//!   stdout: true
//!   spoolMaxBytes: 67108864              # per output (64 MiB)
//! ```

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{CommandFactory, FromArgMatches, Parser};
use serde::{Deserialize, Deserializer};

mod values;

pub use values::{
    HttpUrl, MalformedValue, Mode, Period, PinnedRef, Runtime, SyslogUrl, WebhookHeader,
    WebhookHeaderError,
};

/// `apiVersion` of the configuration file.
pub const API_VERSION: &str = "imprint.dev/v1";
/// `kind` of the configuration file.
pub const KIND: &str = "AgentConfig";

const DEFAULT_STATE_DIR: &str = "/var/lib/imprint";
const DEFAULT_LEARNING_PERIOD: &str = "24h";
const DEFAULT_REFRESH: &str = "30s";
const DEFAULT_INCIDENT_WINDOW: &str = "60s";
const DEFAULT_PERSIST_EVERY: &str = "5s";

/// Why the settings are refused.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The command line is wrong (clap's own error, printed as clap prints it).
    #[error(transparent)]
    CommandLine(#[from] clap::Error),
    /// The configuration file cannot be read.
    #[error("cannot read --config {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The configuration file is not a valid `AgentConfig`.
    #[error("{file}: {message}")]
    File {
        /// The file, as given.
        file: String,
        /// What is wrong, with the key and the position when known.
        message: String,
    },
    /// Settings that do not go together (from the flags, the file, or both).
    #[error("{0}")]
    Conflict(String),
    /// An output would send credentials over plain HTTP to a host that is not
    /// loopback, and its insecure option does not allow it.
    #[error(
        "outputs.{output} ({url}): {what} would be sent over plain http:// to a host that is not loopback; use https://, or allow it with --{output}-insecure (outputs.{output}.insecure: true)"
    )]
    PlainHttpCredentials {
        /// The output: `webhook`, `alertmanager`.
        output: &'static str,
        /// Its URL, credentials redacted.
        url: String,
        /// What would be exposed: the headers named, credentials in the URL.
        what: String,
    },
}

/// The imprint node agent.
#[derive(Parser, Deserialize, Debug, Clone, Default, PartialEq)]
#[command(name = "imprint-agent", version, about)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// `imprint.dev/v1` (the file only).
    #[arg(skip)]
    #[serde(default)]
    pub api_version: Option<String>,
    /// `AgentConfig` (the file only).
    #[arg(skip)]
    #[serde(default)]
    pub kind: Option<String>,
    /// What to do.
    #[arg(long, value_enum)]
    #[serde(default)]
    pub mode: Option<Mode>,
    /// A configuration file (YAML, `kind: AgentConfig`); flags given win over it.
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Where learning state, verified profiles and the output spools are kept
    /// [default: /var/lib/imprint].
    #[arg(long)]
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// Serve Prometheus metrics (`/metrics`), `/healthz`, `/readyz` and (enforcing) `/status` on
    /// this address.
    #[arg(long)]
    #[serde(default)]
    pub metrics_addr: Option<SocketAddr>,
    /// Which container runtime to ask for a container's image [default: auto].
    #[arg(long, value_enum)]
    #[serde(default)]
    pub runtime: Option<Runtime>,
    /// A Kubernetes pod list (JSON, as `kubectl get pods -o json` prints it) naming
    /// each container's image digest; read at start.
    #[arg(long)]
    #[serde(default)]
    pub pod_statuses: Option<PathBuf>,
    /// The node name written in events, and whose pods --kubernetes watches
    /// (default: the host name).
    #[arg(long)]
    #[serde(default)]
    pub node: Option<String>,
    /// Also report events from processes outside containers (to --events-out).
    #[arg(long, num_args = 0, default_missing_value = "true")]
    #[serde(default)]
    pub include_host: Option<bool>,
    /// Ask the Kubernetes API (in-cluster service account, or KUBECONFIG): watch
    /// this node's pods for each container's image digest, namespace and pod,
    /// and (enforce) `Profile` objects as delivered profiles.
    #[arg(long, num_args = 0, default_missing_value = "true")]
    #[serde(default)]
    pub kubernetes: Option<bool>,
    /// How often state is persisted (`5s`; a bare number is seconds) [default: 5s].
    #[arg(long)]
    #[serde(default)]
    pub persist_every: Option<Period>,
    /// Learn mode.
    #[command(flatten, next_help_heading = "Learn mode")]
    #[serde(default)]
    pub learn: LearnSettings,
    /// Enforce mode.
    #[command(flatten, next_help_heading = "Enforce mode")]
    #[serde(default)]
    pub enforce: EnforceSettings,
    /// Where alerts go (enforce mode).
    #[command(flatten, next_help_heading = "Outputs (enforce mode)")]
    #[serde(default)]
    pub outputs: OutputSettings,
}

/// Learn-mode settings (`learn:` in the file).
#[derive(clap::Args, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LearnSettings {
    /// How long each image is learned, from when it is first seen (`30s`, `15m`,
    /// `24h`) [default: 24h].
    #[arg(long)]
    #[serde(default)]
    pub learning_period: Option<Period>,
    /// Where finished profiles are written (`sha256-<hex>.yaml`).
    #[arg(long)]
    #[serde(default)]
    pub out: Option<PathBuf>,
    /// Also write every event to this file, in the documented JSON-lines format.
    #[arg(long)]
    #[serde(default)]
    pub events_out: Option<PathBuf>,
    /// Exit (0) once every image seen has been learned and its profile written,
    /// as a CI job's learning run wants.
    #[arg(long, num_args = 0, default_missing_value = "true")]
    #[serde(default)]
    pub exit_when_learned: Option<bool>,
}

/// Enforce-mode settings (`enforce:` in the file).
#[derive(clap::Args, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnforceSettings {
    /// A trusted public key (cosign.pub; repeatable). Profiles must be signed and
    /// attested by one of them.
    #[arg(long = "key", conflicts_with = "policy")]
    #[serde(default)]
    pub keys: Vec<PathBuf>,
    /// A verification policy file (instead of --key).
    #[arg(long)]
    #[serde(default)]
    pub policy: Option<PathBuf>,
    /// Also look for profiles in this repository (repeatable).
    #[arg(long = "profile-repo")]
    #[serde(default)]
    pub profile_repos: Vec<String>,
    /// A pinned profile artifact, `oci://registry/repo@sha256:…` (repeatable);
    /// verified like any other, used for the digest it names.
    #[arg(long = "profile-ref")]
    #[serde(default)]
    pub profile_refs: Vec<PinnedRef>,
    /// Behaviour rule files, after the built-in ones (repeatable).
    #[arg(long = "rules")]
    #[serde(default)]
    pub rules: Vec<PathBuf>,
    /// A directory of delivered `Profile` documents (Flux's extracted layer, a
    /// ConfigMap volume); each pins the content the agent enforces for its
    /// digest, once a signed artifact with that content verifies.
    #[arg(long)]
    #[serde(default)]
    pub profile_dir: Option<PathBuf>,
    /// How often profiles are looked up again (`30s`; a bare number is seconds)
    /// [default: 30s].
    #[arg(long)]
    #[serde(default)]
    pub refresh: Option<Period>,
    /// How long related alerts are grouped into one incident, and a repeat is not
    /// sent again (`60s`; a bare number is seconds) [default: 60s].
    #[arg(long)]
    #[serde(default)]
    pub incident_window: Option<Period>,
    /// Stop enforcing a profile that could not be verified again against its
    /// registry for this long (`7d`; a bare number is seconds), with an alert
    /// [default: no limit].
    #[arg(long)]
    #[serde(default)]
    pub max_offline_age: Option<Period>,
}

/// The outputs (`outputs:` in the file).
#[derive(clap::Args, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutputSettings {
    /// Alertmanager (`outputs.alertmanager`).
    #[command(flatten)]
    #[serde(default)]
    pub alertmanager: AlertmanagerSettings,
    /// An HTTP webhook (`outputs.webhook`).
    #[command(flatten)]
    #[serde(default)]
    pub webhook: WebhookSettings,
    /// Syslog (`outputs.syslog`).
    #[command(flatten)]
    #[serde(default)]
    pub syslog: SyslogSettings,
    /// Print alerts as JSON lines on stdout.
    #[arg(long, num_args = 0, default_missing_value = "true")]
    #[serde(default)]
    pub stdout: Option<bool>,
    /// Most bytes each network output's spool keeps while its receiver is down
    /// or slow; past it the least severe alerts are dropped, counted and
    /// reported [default: 67108864 (64 MiB)].
    #[arg(long)]
    #[serde(default)]
    pub spool_max_bytes: Option<u64>,
}

/// `outputs.alertmanager`.
#[derive(clap::Args, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlertmanagerSettings {
    /// Send alerts to this Alertmanager (`http://host:9093`).
    #[arg(long = "alertmanager-url", id = "alertmanager_url")]
    pub url: Option<HttpUrl>,
    /// Allow credentials in --alertmanager-url (`http://user:pass@host`) over plain
    /// http:// to a host that is not loopback.
    #[arg(
        long = "alertmanager-insecure",
        id = "alertmanager_insecure",
        num_args = 0,
        default_missing_value = "true"
    )]
    #[serde(default)]
    pub insecure: Option<bool>,
}

/// `outputs.webhook`.
#[derive(clap::Args, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookSettings {
    /// POST alert batches (JSON) to this URL.
    #[arg(long = "webhook-url", id = "webhook_url")]
    pub url: Option<HttpUrl>,
    /// A webhook header, `Name: value` (repeatable; a map in the file).
    #[arg(long = "webhook-header", id = "webhook_headers")]
    #[serde(default, deserialize_with = "header_map")]
    pub headers: Vec<WebhookHeader>,
    /// Allow the headers (and credentials in the URL) over plain http:// to a host
    /// that is not loopback.
    #[arg(
        long = "webhook-insecure",
        id = "webhook_insecure",
        num_args = 0,
        default_missing_value = "true"
    )]
    #[serde(default)]
    pub insecure: Option<bool>,
}

/// `outputs.syslog`.
#[derive(clap::Args, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyslogSettings {
    /// Send RFC 5424 syslog to `udp://host:port`, `tcp://host:port` or
    /// `tls://host:port` (RFC 5425).
    #[arg(long = "syslog-url", id = "syslog_url")]
    pub url: Option<SyslogUrl>,
    /// CA certificates (PEM) a `tls://` syslog receiver must chain to (default:
    /// the system's roots).
    #[arg(long = "syslog-ca", id = "syslog_ca")]
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// A client certificate (PEM) for a `tls://` syslog receiver that
    /// authenticates senders; with --syslog-key.
    #[arg(long = "syslog-cert", id = "syslog_cert")]
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// The private key (PEM) of --syslog-cert.
    #[arg(long = "syslog-key", id = "syslog_key")]
    #[serde(default)]
    pub key: Option<PathBuf>,
}

/// The file's `headers: {Name: value}` map as the flags' list.
fn header_map<'de, D: Deserializer<'de>>(de: D) -> Result<Vec<WebhookHeader>, D::Error> {
    let map = BTreeMap::<String, String>::deserialize(de)?;
    Ok(map
        .into_iter()
        .map(|(name, value)| WebhookHeader { name, value })
        .collect())
}

impl Settings {
    /// The settings from these command-line arguments (the first is the program)
    /// and the `--config` file they name.
    ///
    /// The precedence rule: the file's values first, then each flag given on the
    /// command line replaces its key. Nothing else merges.
    pub fn load<I, T>(args: I) -> Result<Settings, SettingsError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let matches = Settings::command().try_get_matches_from(args)?;
        let config = matches.get_one::<PathBuf>("config").cloned();
        let mut settings = match &config {
            Some(path) => Settings::from_file(path)?,
            None => Settings::default(),
        };
        settings.update_from_arg_matches(&matches)?;
        settings.config = config;
        settings.check()?;
        Ok(settings)
    }

    /// Reads a configuration file.
    pub fn from_file(path: &Path) -> Result<Settings, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Settings::parse_file(&text, &path.display().to_string())
    }

    /// Parses a configuration file's text; `file` names it in errors.
    pub fn parse_file(text: &str, file: &str) -> Result<Settings, SettingsError> {
        let refuse = |message: String| SettingsError::File {
            file: file.to_string(),
            message,
        };
        let settings = values::from_yaml::<Settings>(text).map_err(|e| refuse(e.to_string()))?;
        let (api_version, kind) = (settings.api_version.as_deref(), settings.kind.as_deref());
        if api_version != Some(API_VERSION) || kind != Some(KIND) {
            return Err(refuse(format!(
                "apiVersion/kind are {}/{}, not {API_VERSION}/{KIND}",
                api_version.unwrap_or("(missing)"),
                kind.unwrap_or("(missing)")
            )));
        }
        settings.check().map_err(|e| refuse(e.to_string()))?;
        Ok(settings)
    }

    /// What the flags' own parser cannot check: combinations.
    fn check(&self) -> Result<(), SettingsError> {
        if !self.enforce.keys.is_empty() && self.enforce.policy.is_some() {
            return Err(SettingsError::Conflict(
                "give enforce keys (--key) or a policy (--policy), not both".into(),
            ));
        }
        let (webhook, alertmanager) = (&self.outputs.webhook, &self.outputs.alertmanager);
        if let Some(url) = &webhook.url {
            let names: Vec<&str> = webhook.headers.iter().map(|h| h.name.as_str()).collect();
            check_plain_http("webhook", url, &names, webhook.insecure)?;
        }
        if let Some(url) = &alertmanager.url {
            check_plain_http("alertmanager", url, &[], alertmanager.insecure)?;
        }
        Ok(())
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        self.state_dir
            .as_deref()
            .unwrap_or(Path::new(DEFAULT_STATE_DIR))
    }

    /// Which runtimes to ask, in order.
    pub fn runtime(&self) -> Runtime {
        self.runtime.unwrap_or_default()
    }

    /// Whether host processes are reported too.
    pub fn include_host(&self) -> bool {
        self.include_host.unwrap_or(false)
    }

    /// Whether the Kubernetes API is watched.
    pub fn kubernetes(&self) -> bool {
        self.kubernetes.unwrap_or(false)
    }

    /// How often state is persisted.
    pub fn persist_every(&self) -> std::time::Duration {
        or_default(self.persist_every, DEFAULT_PERSIST_EVERY)
    }

    /// The node's name: `--node`, or the host name.
    pub fn node_name(&self) -> Option<String> {
        self.node.clone().or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
    }
}

impl LearnSettings {
    /// How long each image is learned.
    pub fn learning_period(&self) -> std::time::Duration {
        or_default(self.learning_period, DEFAULT_LEARNING_PERIOD)
    }

    /// Whether the agent exits once every image seen is learned.
    pub fn exit_when_learned(&self) -> bool {
        self.exit_when_learned.unwrap_or(false)
    }
}

impl EnforceSettings {
    /// How often profiles are looked up again.
    pub fn refresh(&self) -> std::time::Duration {
        or_default(self.refresh, DEFAULT_REFRESH)
    }

    /// The incident window.
    pub fn incident_window(&self) -> std::time::Duration {
        or_default(self.incident_window, DEFAULT_INCIDENT_WINDOW)
    }

    /// How long a profile may be enforced without verifying again online.
    pub fn max_offline_age(&self) -> Option<std::time::Duration> {
        self.max_offline_age.map(Period::get)
    }
}

impl OutputSettings {
    /// Whether alerts are printed on stdout.
    pub fn stdout(&self) -> bool {
        self.stdout.unwrap_or(false)
    }
}

/// Refuses credentials (these headers, userinfo in the URL) over plain HTTP to a
/// host that is not loopback, unless `insecure` allows it: anyone on the path
/// would read them.
fn check_plain_http(
    output: &'static str,
    url: &HttpUrl,
    headers: &[&str],
    insecure: Option<bool>,
) -> Result<(), SettingsError> {
    if insecure == Some(true) || !url.is_plain_http() || url.is_loopback() {
        return Ok(());
    }
    let mut exposed = Vec::new();
    if !headers.is_empty() {
        exposed.push(format!("the headers {}", headers.join(", ")));
    }
    if url.has_userinfo() {
        exposed.push("the credentials in the URL".to_string());
    }
    if exposed.is_empty() {
        return Ok(());
    }
    Err(SettingsError::PlainHttpCredentials {
        output,
        url: imprint_oci::redact::redact_url(url.as_str()),
        what: exposed.join(" and "),
    })
}

fn or_default(value: Option<Period>, default: &str) -> std::time::Duration {
    value
        .unwrap_or_else(|| default.parse().expect("the defaults are durations"))
        .get()
}

#[cfg(test)]
mod tests;
