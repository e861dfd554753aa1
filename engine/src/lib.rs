//! imprint's pure logic: the event model, the learner, the detector (profile
//! anomalies and behaviour rules) and the incident correlator.
//!
//! Nothing here does I/O beyond reading from a caller's `BufRead`: the agent and the
//! CLI own files, sockets and the kernel. That keeps this crate fast to test and
//! lets the same code run live in the agent and offline in `imprint learn`.

#![warn(unreachable_pub)]

mod alert;
mod collapse;
mod detector;
pub mod event;
mod incident;
mod learner;
mod rules;

// Alerts and where they come from.
pub use alert::{Alert, Severity, Source};
// Collapsing paths that vary (temporary names, PIDs) into patterns.
pub use collapse::CollapseConfig;
// Detection against a profile.
pub use detector::{Anomaly, CompiledProfile, Detector};
// The event model (the format itself is the [`event`] namespace).
pub use event::{Event, EventKind, EventReader};
// Correlating alerts into incidents.
pub use incident::{Correlator, Incident, Occurrence, Outcome, ProcessNode};
// Learning profiles from events.
pub use learner::{Learner, LearnerConfig, LearnerStats, Limits};
// Behaviour rules.
pub use rules::{Condition, DEFAULT_RULES, Exception, Rule, RuleError, RuleFile, RuleSet};
