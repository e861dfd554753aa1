//! The attestation conditions of a policy, checked on a verified statement.

use super::Policy;
use crate::signing::{PROFILE_PREDICATE_TYPE, ProfilePredicate, Statement};

/// The first condition of the policy that a verified statement fails.
#[derive(Debug, thiserror::Error)]
pub enum ConditionFailed {
    /// The statement's predicate type is not the one the policy requires.
    #[error("predicateType is {found:?}, the policy requires {required:?}")]
    PredicateType {
        /// The statement's.
        found: String,
        /// The policy's.
        required: String,
    },
    /// The predicate does not parse as imprint's learning predicate.
    #[error("predicate is not imprint's learning predicate: {0}")]
    NotLearningPredicate(#[source] serde_json::Error),
    /// The profile was learned partially; the policy requires complete.
    #[error("completeness is {found:?}, the policy requires \"complete\"")]
    Completeness {
        /// The predicate's completeness.
        found: String,
    },
    /// The policy requires a minimum learning duration and the window is open.
    #[error("the learning window has no start or end, the policy requires a minimum duration")]
    NoLearningWindow,
    /// The learning window is shorter than the policy's minimum.
    #[error("learned for {seconds}s, the policy requires at least {required}s")]
    TooShort {
        /// The window's length.
        seconds: i64,
        /// The policy's minimum.
        required: u64,
    },
    /// The builder id does not match the policy's expression.
    #[error("builder id {found:?} does not match {pattern:?}")]
    BuilderId {
        /// The predicate's builder id.
        found: String,
        /// The policy's expression.
        pattern: String,
    },
}

impl Policy {
    /// The version a statement that passed [`Policy::check_statement`] gives its
    /// artifact: its learning predicate's `version` (0 before versions), or
    /// `None` for another predicate type.
    pub fn attested_version(&self, statement: &Statement) -> Option<u64> {
        if statement.predicate_type != PROFILE_PREDICATE_TYPE {
            return None;
        }
        let predicate: ProfilePredicate =
            serde_json::from_value(statement.predicate.clone()).ok()?;
        Some(predicate.version)
    }

    /// Checks a verified statement's predicate against the conditions; the first
    /// failing condition is named.
    pub fn check_statement(&self, statement: &Statement) -> Result<(), ConditionFailed> {
        if statement.predicate_type != self.predicate_type {
            return Err(ConditionFailed::PredicateType {
                found: statement.predicate_type.clone(),
                required: self.predicate_type.clone(),
            });
        }
        if self.predicate_type != PROFILE_PREDICATE_TYPE {
            return Ok(());
        }
        let predicate: ProfilePredicate = serde_json::from_value(statement.predicate.clone())
            .map_err(ConditionFailed::NotLearningPredicate)?;
        if let Some(required) = &self.completeness
            && required == "complete"
            && predicate.learning.completeness != "complete"
        {
            return Err(ConditionFailed::Completeness {
                found: predicate.learning.completeness,
            });
        }
        if let Some(min) = self.min_learning_duration {
            let (Some(start), Some(end)) = (predicate.learning.start, predicate.learning.end)
            else {
                return Err(ConditionFailed::NoLearningWindow);
            };
            let seconds = end.as_second().saturating_sub(start.as_second());
            if seconds < min.as_secs() as i64 {
                return Err(ConditionFailed::TooShort {
                    seconds,
                    required: min.as_secs(),
                });
            }
        }
        if let Some(re) = &self.builder_id
            && !re.is_match(&predicate.builder.id)
        {
            return Err(ConditionFailed::BuilderId {
                found: predicate.builder.id,
                pattern: re.as_str().to_string(),
            });
        }
        Ok(())
    }
}
