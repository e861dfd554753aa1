//! imprint's pure logic: the event model and the learner.
//!
//! Nothing here does I/O beyond reading from a caller's `BufRead`: the agent and the
//! CLI own files, sockets and the kernel. That keeps this crate fast to test and
//! lets the same code run live in the agent and offline in `imprint learn`.

pub mod collapse;
pub mod event;
pub mod learner;

pub use collapse::CollapseConfig;
pub use event::{Event, EventKind, EventReader};
pub use learner::{Learner, LearnerConfig, LearnerStats, Limits};
