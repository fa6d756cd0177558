//! Test support shared by every crate's property tests.
//!
//! One knob, `PICASSO_PROPTEST_CASES`, sets the case count of every property test in
//! the workspace: CI keeps each test's small default, a longer campaign raises them all
//! at once (`PICASSO_PROPTEST_CASES=2000 scripts/test.sh`). It lives here because every
//! crate with a property test already depends on this one; it is a plain function (no
//! proptest types), so the library gains no dependency for it.

/// The environment variable that sets the case count of every property test.
pub const PROPTEST_CASES_VAR: &str = "PICASSO_PROPTEST_CASES";

/// The number of cases a property test runs: `PICASSO_PROPTEST_CASES` when it is set
/// to a positive number, else `default` (the test's own, sized for CI).
///
/// An unparsable or zero value is ignored rather than fatal, so a typo never turns a
/// test into one that runs no case at all.
pub fn proptest_cases(default: u32) -> u32 {
    cases_from(std::env::var(PROPTEST_CASES_VAR).ok().as_deref(), default)
}

/// The environment variable that sets the case count of every fuzz target.
pub const FUZZ_CASES_VAR: &str = "PICASSO_FUZZ_CASES";

/// The number of cases a fuzz target runs: `PICASSO_FUZZ_CASES` when it is set to a
/// positive number (a campaign: `scripts/fuzz.sh 1000000`), else `default` (small,
/// for `cargo test`).
pub fn fuzz_cases(default: u32) -> u32 {
    cases_from(std::env::var(FUZZ_CASES_VAR).ok().as_deref(), default)
}

fn cases_from(value: Option<&str>, default: u32) -> u32 {
    value
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::cases_from;

    #[test]
    fn the_variable_overrides_the_default_and_nonsense_is_ignored() {
        assert_eq!(cases_from(None, 24), 24);
        assert_eq!(cases_from(Some("2000"), 24), 2000);
        assert_eq!(cases_from(Some(" 7 "), 24), 7);
        assert_eq!(cases_from(Some("0"), 24), 24);
        assert_eq!(cases_from(Some("lots"), 24), 24);
        assert_eq!(cases_from(Some(""), 256), 256);
    }
}
