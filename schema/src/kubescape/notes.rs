//! The warnings an import collects: what could not be carried over, per container.

use super::MAX_LISTED;

/// Warnings for one container.
pub(super) struct Notes(pub(super) Vec<String>);

impl Notes {
    pub(super) fn push(&mut self, note: String) {
        self.0.push(note);
    }

    /// One warning naming up to [`MAX_LISTED`] dropped entries.
    pub(super) fn dropped(&mut self, what: &str, items: &[String]) {
        if items.is_empty() {
            return;
        }
        let shown: Vec<&str> = items.iter().take(MAX_LISTED).map(String::as_str).collect();
        let more = items.len().saturating_sub(MAX_LISTED);
        let tail = if more > 0 {
            format!("; and {more} more")
        } else {
            String::new()
        };
        self.0.push(format!(
            "dropped {} {what}: {}{tail}",
            items.len(),
            shown.join("; ")
        ));
    }
}
