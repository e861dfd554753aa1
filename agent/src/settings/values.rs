//! The typed values of the settings: each parses the same from a flag's text and
//! from the file, so both are checked by one function.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use imprint_schema::{DocumentError, DurationError};
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

/// A positive duration: `30s`, `15m`, `24h`, `1h30m`, `7d` (a day is 24 hours),
/// `PT2H`, or a bare number of seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period(Duration);

impl Period {
    /// The duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

impl FromStr for Period {
    type Err = DurationError;

    fn from_str(text: &str) -> Result<Period, DurationError> {
        parse_duration(text).map(Period)
    }
}

/// Parses a [`Period`]: the one duration syntax of imprint
/// ([`imprint_schema::parse_duration`]), or a bare number of seconds, which the
/// agent's integer-second keys (`refresh: 30`) and flags have always taken.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    match text.trim().parse::<u64>() {
        Ok(0) => Err(DurationError::NotPositive(text.to_string())),
        Ok(seconds) => Ok(Duration::from_secs(seconds)),
        Err(_) => imprint_schema::parse_duration(text),
    }
}

/// Text that is not of the form its setting takes (an `http://` URL, say). The
/// message shows URLs in it redacted: a mistaken URL may carry credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{:?} must {rule}", imprint_oci::redact::redact_urls(text))]
pub struct MalformedValue {
    /// The text given.
    pub text: String,
    /// What the text must do, such as `start with http:// or https://`.
    pub rule: &'static str,
}

/// A setting whose value is text of a checked form: the type, its doc, what the
/// text must do (for the error), and the check.
macro_rules! checked_text {
    ($(#[$doc:meta])* $name:ident, $rule:expr, $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            /// The text, as given.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = MalformedValue;

            fn from_str(text: &str) -> Result<$name, MalformedValue> {
                let check: fn(&str) -> bool = $check;
                if check(text) {
                    Ok($name(text.to_string()))
                } else {
                    Err(MalformedValue {
                        text: text.to_string(),
                        rule: $rule,
                    })
                }
            }
        }
    };
}

checked_text!(
    /// An `http://` or `https://` URL.
    HttpUrl,
    "start with http:// or https://",
    |text| text.starts_with("http://") || text.starts_with("https://")
);

impl HttpUrl {
    /// Whether it is `http://`, not `https://`.
    pub fn is_plain_http(&self) -> bool {
        self.0.starts_with("http://")
    }

    /// The authority, `[userinfo@]host[:port]`.
    fn authority(&self) -> &str {
        let rest = self.0.split_once("://").map_or("", |(_, rest)| rest);
        rest.split(['/', '?', '#']).next().unwrap_or("")
    }

    /// Whether credentials come before the host (`http://user:pass@host`).
    pub fn has_userinfo(&self) -> bool {
        self.authority().contains('@')
    }

    /// Whether the host is `localhost` or a loopback address (`127.0.0.0/8`,
    /// `[::1]`): nothing it is sent leaves the machine.
    pub fn is_loopback(&self) -> bool {
        let authority = self.authority();
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = match host_port.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => host_port.split(':').next().unwrap_or(""),
        };
        host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.to_canonical().is_loopback())
    }
}

checked_text!(
    /// A syslog receiver's URL: `udp://`, `tcp://` or `tls://` (the rest is checked
    /// when the output is made, with its TLS files).
    SyslogUrl,
    "start with udp:// or tcp:// or tls:// (udp://HOST:PORT)",
    |text| ["udp://", "tcp://", "tls://"].iter().any(|s| text.starts_with(s))
);

checked_text!(
    /// A pinned profile artifact: `oci://registry/repo@sha256:…`.
    PinnedRef,
    "pin a digest (oci://registry/repo@sha256:…)",
    |text| text.strip_prefix("oci://").unwrap_or(text).contains("@sha256:")
);

/// A webhook header, `Name: value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookHeader {
    /// The header's name.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// Why a webhook header's text is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookHeaderError {
    /// No `:` between name and value.
    #[error("{text:?}: expected `Name: value`")]
    NoColon {
        /// The text given.
        text: String,
    },
    /// Nothing before the `:`.
    #[error("{text:?}: the header has no name")]
    NoName {
        /// The text given.
        text: String,
    },
}

impl FromStr for WebhookHeader {
    type Err = WebhookHeaderError;

    fn from_str(text: &str) -> Result<WebhookHeader, WebhookHeaderError> {
        let (name, value) = text
            .split_once(':')
            .ok_or_else(|| WebhookHeaderError::NoColon {
                text: text.to_string(),
            })?;
        let name = name.trim();
        if name.is_empty() {
            return Err(WebhookHeaderError::NoName {
                text: text.to_string(),
            });
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

/// A configuration document the reader refused. Its message names the key first
/// (`outputs.webhook.url: …`), then the position; the reader's own error is inside.
#[derive(Debug, thiserror::Error)]
#[error("{}", key_first(.0))]
pub(crate) struct ConfigDocumentError(pub(crate) DocumentError);

fn key_first(e: &DocumentError) -> String {
    match e {
        DocumentError::Syntax {
            position,
            field,
            message,
        } => {
            let at = position
                .map(|p| format!(" (line {}, column {})", p.line, p.column))
                .unwrap_or_default();
            match field {
                Some(field) => format!("{field}: {message}{at}"),
                None => format!("{message}{at}"),
            }
        }
        other => other.to_string(),
    }
}

/// Reads a configuration document with the reader of every imprint document.
pub(crate) fn from_yaml<T: DeserializeOwned>(text: &str) -> Result<T, ConfigDocumentError> {
    imprint_schema::from_text(text).map_err(ConfigDocumentError)
}
