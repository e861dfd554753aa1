//! Skipping a test, honestly: a skip for something the machine lacks fails when
//! `IMPRINT_NO_SKIP=1` (as CI sets it); a skip for another architecture never does.

use std::ffi::OsStr;
use std::fmt::Display;

/// The environment variable that turns skips into failures when it is `1`.
pub const NO_SKIP_VARIABLE: &str = "IMPRINT_NO_SKIP";

/// Whether skips are failures here (`IMPRINT_NO_SKIP=1`).
pub fn no_skip() -> bool {
    means_no_skip(std::env::var_os(NO_SKIP_VARIABLE).as_deref())
}

fn means_no_skip(value: Option<&OsStr>) -> bool {
    value.is_some_and(|v| v == "1")
}

/// Prints `skipped: {why}`; the caller then returns. With `IMPRINT_NO_SKIP=1` it
/// panics instead: what the test needs (a package, a service, root, a kernel
/// feature, a `../shared` file) should have been installed.
pub fn skip(why: impl Display) {
    skip_unless(why, no_skip());
}

fn skip_unless(why: impl Display, fail: bool) {
    eprintln!("skipped: {why}");
    if fail {
        panic!("{why} ({NO_SKIP_VARIABLE}=1: a skipped real-component test fails)");
    }
}

/// Prints `skipped: {why}` and never fails: for a test that cannot run on this
/// host's architecture, which no install step can change.
pub fn skip_other_arch(why: impl Display) {
    eprintln!("skipped: {why}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_value_one_turns_skips_into_failures() {
        assert!(means_no_skip(Some(OsStr::new("1"))));
        for value in [None, Some("0"), Some(""), Some("yes"), Some("11")] {
            assert!(!means_no_skip(value.map(OsStr::new)), "{value:?}");
        }
    }

    #[test]
    fn a_skip_fails_with_its_reason_when_skips_are_failures() {
        assert!(std::panic::catch_unwind(|| skip_unless("nothing needed", false)).is_ok());
        let failed = std::panic::catch_unwind(|| skip_unless("docker-registry absent", true))
            .expect_err("a skip with IMPRINT_NO_SKIP=1 fails");
        assert_eq!(
            failed.downcast_ref::<String>().map(String::as_str),
            Some("docker-registry absent (IMPRINT_NO_SKIP=1: a skipped real-component test fails)")
        );
    }

    #[test]
    fn the_variable_is_read_from_the_environment() {
        assert_eq!(
            no_skip(),
            std::env::var(NO_SKIP_VARIABLE).is_ok_and(|v| v == "1")
        );
        // Whatever the environment says, another architecture is only a skip.
        skip_other_arch("the test needs an arm64 host");
    }
}
