//! imprint's pure logic: the event model, the learner, the detector (profile
//! anomalies and behaviour rules) and the incident correlator.
//!
//! Nothing here does I/O beyond reading from a caller's `BufRead`: the agent and the
//! CLI own files, sockets and the kernel. That keeps this crate fast to test and
//! lets the same code run live in the agent and offline in `imprint learn`.

pub mod alert;
pub mod collapse;
pub mod detector;
pub mod event;
pub mod incident;
pub mod learner;
pub mod rules;

pub use alert::{Alert, Severity, Source};
pub use collapse::CollapseConfig;
pub use detector::{CompiledProfile, Detector};
pub use event::{Event, EventKind, EventReader};
pub use incident::{Correlator, Incident, Outcome};
pub use learner::{Learner, LearnerConfig, LearnerStats, Limits};
pub use rules::{RuleFile, RuleSet};
