//! The one duration syntax of imprint's files and flags: `30s`, `15m`, `24h`,
//! `1h30m`, `7d` (a day is 24 hours), or ISO 8601 (`PT2H`); positive, with a unit.

use std::time::Duration;

/// Why a duration is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not a duration at all.
    #[error("{text:?} is not a duration such as 30s or 24h: {reason}")]
    Syntax {
        /// What was given.
        text: String,
        /// What the parser said.
        reason: String,
    },
    /// Zero or negative.
    #[error("{0:?}: the duration must be positive")]
    NotPositive(String),
}

/// Parses a positive duration (see the module docs).
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let syntax = |reason: String| DurationError::Syntax {
        text: text.to_string(),
        reason,
    };
    let span: jiff::Span = text.trim().parse().map_err(|e| syntax(format!("{e}")))?;
    let seconds = span
        .total((
            jiff::Unit::Second,
            jiff::SpanRelativeTo::days_are_24_hours(),
        ))
        .map_err(|e| syntax(format!("{e}")))?;
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(DurationError::NotPositive(text.to_string()));
    }
    Duration::try_from_secs_f64(seconds).map_err(|e| syntax(format!("{e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_form_parses_and_the_rest_is_refused() {
        for (text, seconds) in [
            ("30s", 30.0),
            ("15m", 900.0),
            ("24h", 86400.0),
            ("1h30m", 5400.0),
            ("2d", 172800.0),
            ("PT2H", 7200.0),
            ("1.5s", 1.5),
        ] {
            assert_eq!(
                parse_duration(text).unwrap().as_secs_f64(),
                seconds,
                "{text}"
            );
        }
        for bad in ["", "h", "10", "soon", "24x", "1 fortnight"] {
            assert!(
                matches!(parse_duration(bad), Err(DurationError::Syntax { .. })),
                "{bad:?}"
            );
        }
        for bad in ["0s", "-5s", "PT0S"] {
            assert_eq!(
                parse_duration(bad),
                Err(DurationError::NotPositive(bad.into())),
                "{bad:?}"
            );
        }
    }
}
