//! The typed values of the settings: each parses the same from a flag's text and
//! from the file, so both are checked by one function.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};

/// What the agent does.
#[derive(clap::ValueEnum, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Learn profiles from what containers do.
    Learn,
    /// Enforce verified profiles and run the behaviour rules; send alerts.
    Enforce,
}

/// Which container runtime is asked for a container's image.
#[derive(clap::ValueEnum, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// podman, then crictl.
    #[default]
    Auto,
    /// podman only.
    Podman,
    /// crictl only (containerd, CRI-O).
    Cri,
}

/// A positive duration: `30s`, `15m`, `24h`, `1h30m`, `7d` (a day is 24 hours), or
/// a bare number of seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period(Duration);

impl Period {
    /// The duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

impl FromStr for Period {
    type Err = String;

    fn from_str(text: &str) -> Result<Period, String> {
        parse_duration(text).map(Period)
    }
}

/// Parses a positive duration (see [`Period`]).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let duration = if let Ok(seconds) = text.parse::<u64>() {
        Duration::from_secs(seconds)
    } else {
        let span: jiff::Span = text
            .parse()
            .map_err(|e| format!("{text:?} is not a duration such as 30s or 24h: {e}"))?;
        let seconds = span
            .total((
                jiff::Unit::Second,
                jiff::SpanRelativeTo::days_are_24_hours(),
            ))
            .map_err(|e| format!("{text:?} is not a duration such as 30s or 24h: {e}"))?;
        if !seconds.is_finite() || seconds < 0.0 {
            return Err(format!("{text:?}: the duration must be positive"));
        }
        Duration::from_secs_f64(seconds)
    };
    if duration.is_zero() {
        return Err(format!("{text:?}: the duration must be positive"));
    }
    Ok(duration)
}

/// An `http://` or `https://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl(String);

impl HttpUrl {
    /// The URL's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for HttpUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<HttpUrl, String> {
        if text.starts_with("http://") || text.starts_with("https://") {
            Ok(HttpUrl(text.to_string()))
        } else {
            Err(format!("{text:?} must start with http:// or https://"))
        }
    }
}

/// A syslog receiver's URL: `udp://`, `tcp://` or `tls://` (the rest is checked
/// when the output is made, with its TLS files).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyslogUrl(String);

impl SyslogUrl {
    /// The URL's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SyslogUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<SyslogUrl, String> {
        if ["udp://", "tcp://", "tls://"]
            .iter()
            .any(|s| text.starts_with(s))
        {
            Ok(SyslogUrl(text.to_string()))
        } else {
            Err(format!(
                "{text:?} must start with udp:// or tcp:// or tls:// (udp://HOST:PORT)"
            ))
        }
    }
}

/// A pinned profile artifact: `oci://registry/repo@sha256:…`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinnedRef(String);

impl PinnedRef {
    /// The reference's text, as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PinnedRef {
    type Err = String;

    fn from_str(text: &str) -> Result<PinnedRef, String> {
        if text
            .strip_prefix("oci://")
            .unwrap_or(text)
            .contains("@sha256:")
        {
            Ok(PinnedRef(text.to_string()))
        } else {
            Err(format!(
                "{text:?} must pin a digest (oci://registry/repo@sha256:…)"
            ))
        }
    }
}

/// A webhook header, `Name: value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookHeader {
    /// The header's name.
    pub name: String,
    /// Its value.
    pub value: String,
}

impl FromStr for WebhookHeader {
    type Err = String;

    fn from_str(text: &str) -> Result<WebhookHeader, String> {
        let (name, value) = text
            .split_once(':')
            .ok_or_else(|| format!("{text:?}: expected `Name: value`"))?;
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("{text:?}: the header has no name"));
        }
        Ok(WebhookHeader {
            name: name.to_string(),
            value: value.trim().to_string(),
        })
    }
}

impl fmt::Display for WebhookHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.value)
    }
}

/// The file's form of a value is its flag's text (a duration may also be a
/// number of seconds), parsed by the same `FromStr`.
macro_rules! deserialize_from_text {
    ($($t:ty),*) => {$(
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(de: D) -> Result<$t, D::Error> {
                #[derive(Deserialize)]
                #[serde(untagged)]
                enum Text {
                    Text(String),
                    Number(u64),
                }
                let text = match Text::deserialize(de)? {
                    Text::Text(t) => t,
                    Text::Number(n) => n.to_string(),
                };
                text.parse().map_err(D::Error::custom)
            }
        }
    )*};
}

deserialize_from_text!(Period, HttpUrl, SyslogUrl, PinnedRef);

/// Deserializes YAML, naming the key (`outputs.webhook.url`) and the position of
/// what is wrong.
pub(crate) fn from_yaml<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    let mut path = None;
    serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize::<_, T>(de).map_err(|e| {
            path = Some(e.path().to_string()).filter(|p| p != ".");
            e.into_inner()
        })
    })
    .map_err(|e| {
        // The rendered error starts with the position and may carry a snippet over
        // several lines: keep the first line's message, and say the position after.
        let rendered = e.to_string();
        let mut message = rendered.lines().next().unwrap_or("").trim();
        message = message.strip_prefix("error: ").unwrap_or(message);
        if message.starts_with("line ")
            && let Some(i) = message.find(": ")
        {
            message = &message[i + 2..];
        }
        let at = e
            .location()
            .filter(|l| l.line() > 0)
            .map(|l| format!(" (line {}, column {})", l.line(), l.column()))
            .unwrap_or_default();
        match path {
            Some(path) => format!("{path}: {message}{at}"),
            None => format!("{message}{at}"),
        }
    })
}
