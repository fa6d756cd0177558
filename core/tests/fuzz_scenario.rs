//! Fuzz target: the scenario loader (`core/src/load.rs`), which reads files users write
//! and bodies of `PUT /__admin/scenario` on both admin ports.
//!
//! Inputs are structure-aware: every example in `scenarios/` and the embedded default,
//! each perturbed line by line (a value swapped for another TOML value of any type, a
//! key renamed, a line deleted, duplicated or swapped, a table header repeated, bytes
//! inserted, the text cut short). Checked on every case:
//! - no panic, in the parse, in the error placement, or in printing the errors;
//! - a refusal is `ScenarioError::Invalid` with at least one diagnostic, each naming
//!   the file, a line that exists, a column inside it, the text of that very line, and
//!   a message (the README's "errors that name the file, the line and the field");
//! - an accepted scenario passes `validate` and survives a TOML round trip.
//!
//! Cases: `PICASSO_FUZZ_CASES` (default 500); `PROPTEST_RNG_SEED` replays a run.

use picasso_core::load::validate;
use picasso_core::scenario::DEFAULT_SCENARIO_TOML;
use picasso_core::{Scenario, ScenarioError, parse_scenario};
use proptest::prelude::*;
use std::path::Path;
use std::sync::LazyLock;

fn cases() -> u32 {
    picasso_core::testing::fuzz_cases(500)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        ..ProptestConfig::default()
    }
}

/// The seeds: every example scenario and the embedded default.
static SEEDS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the scenarios directory")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let mut seeds: Vec<String> = files
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("a readable scenario"))
        .collect();
    seeds.push(DEFAULT_SCENARIO_TOML.to_owned());
    seeds
});

/// TOML values of every type, and values at the edges of each field's range.
const VALUES: &[&str] = &[
    "0",
    "-1",
    "1",
    "100",
    "100.0001",
    "140",
    "-0.0",
    "nan",
    "inf",
    "-inf",
    "1e400",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "0x7fffffffffffffff",
    "4294967296",
    "65536",
    "true",
    "false",
    "\"\"",
    "\"x\"",
    "\"fo85e6a06dcdf4\"",
    "\"FO85\"",
    "\"https://example.org\"",
    "\"null\"",
    "\"*\"",
    "\"(unclosed\"",
    "\"[a-\"",
    "\"bedrock\"",
    "\"gateway\"",
    "\"network\"",
    "\"stall\"",
    "\"status\"",
    "\"exception\"",
    "\"throttlingException\"",
    "\"é✓\u{1F600}\"",
    "\"\\u0000\"",
    "\"\\uD800\"",
    "'''multi\nline'''",
    "[]",
    "[1, \"a\"]",
    "[[1]]",
    "{}",
    "{ text = \"a\", delay_ms = 1 }",
    "{ first_token_ms = 1, gap_ms = -5 }",
    "1979-05-27T07:32:00Z",
    "",
    "=",
    "[",
    "\"",
];

/// One change to a scenario's text.
#[derive(Debug, Clone)]
enum Edit {
    /// The value of the n-th `key = value` line becomes another.
    Value(usize, usize),
    /// The key of the n-th `key = value` line gets a suffix (an unknown field).
    RenameKey(usize, String),
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    /// A table header (`[[tenants]]`, `[limits]`, …) inserted before a line.
    Header(usize, usize),
    InsertBytes(usize, String),
    Truncate(usize),
}

const HEADERS: &[&str] = &[
    "[[tenants]]",
    "[[answers]]",
    "[[sessions]]",
    "[[sessions.messages]]",
    "[[faults]]",
    "[limits]",
    "[widget]",
    "[rollout]",
    "[tenants]",
    "[[limits]]",
    "[x.y.z]",
];

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        6 => (any::<usize>(), 0..VALUES.len()).prop_map(|(l, v)| Edit::Value(l, v)),
        1 => (any::<usize>(), "[a-z_]{1,4}").prop_map(|(l, s)| Edit::RenameKey(l, s)),
        2 => any::<usize>().prop_map(Edit::DeleteLine),
        1 => any::<usize>().prop_map(Edit::DuplicateLine),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        1 => (any::<usize>(), 0..HEADERS.len()).prop_map(|(l, h)| Edit::Header(l, h)),
        1 => (any::<usize>(), prop_oneof![".{1,4}", Just("\n".to_owned()), Just("\r".to_owned()), Just("\u{0}".to_owned())])
            .prop_map(|(at, s)| Edit::InsertBytes(at, s)),
        1 => any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(text: &str, edit: &Edit) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let n = lines.len().max(1);
    let assignments: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with('#') && l.contains(" = "))
        .map(|(i, _)| i)
        .collect();
    match edit {
        Edit::Value(k, v) if !assignments.is_empty() => {
            let i = assignments[k % assignments.len()];
            let key = lines[i].split(" = ").next().unwrap_or_default().to_owned();
            lines[i] = format!("{key} = {}", VALUES[*v]);
        }
        Edit::RenameKey(k, suffix) if !assignments.is_empty() => {
            let i = assignments[k % assignments.len()];
            lines[i] = lines[i].replacen(" = ", &format!("{suffix} = "), 1);
        }
        Edit::Value(..) | Edit::RenameKey(..) => {}
        Edit::DeleteLine(i) if !lines.is_empty() => {
            lines.remove(i % n);
        }
        Edit::DuplicateLine(i) if !lines.is_empty() => {
            let l = lines[i % n].clone();
            lines.insert(i % n, l);
        }
        Edit::SwapLines(a, b) if !lines.is_empty() => lines.swap(a % n, b % n),
        Edit::DeleteLine(_) | Edit::DuplicateLine(_) | Edit::SwapLines(..) => {}
        Edit::Header(i, h) => lines.insert(i % (lines.len() + 1), HEADERS[*h].to_owned()),
        Edit::InsertBytes(at, s) => {
            let mut t = lines.join("\n");
            let mut i = at % (t.len() + 1);
            while !t.is_char_boundary(i) {
                i -= 1;
            }
            t.insert_str(i, s);
            return t;
        }
        Edit::Truncate(at) => {
            let t = lines.join("\n");
            let mut i = at % (t.len() + 1);
            while !t.is_char_boundary(i) {
                i -= 1;
            }
            return t[..i].to_owned();
        }
    }
    lines.join("\n") + "\n"
}

fn mutated() -> impl Strategy<Value = (usize, Vec<Edit>)> {
    (any::<usize>(), prop::collection::vec(edit(), 1..5))
}

/// Every diagnostic points into the text: the file, a real line, a column in it, the
/// line's own text, a message, and a printed form that starts `file:line:column:`.
fn check_diagnostics(name: &str, text: &str, err: &ScenarioError) -> Result<(), TestCaseError> {
    let ScenarioError::Invalid(diagnostics) = err else {
        return Err(TestCaseError::fail(format!("not Invalid: {err}")));
    };
    prop_assert!(!diagnostics.is_empty(), "a refusal without a diagnostic");
    for d in diagnostics {
        prop_assert_eq!(&d.file, name);
        prop_assert!(!d.message.is_empty());
        prop_assert!(d.line >= 1 && d.column >= 1, "{:?}", d);
        // `str::lines` is what the loader shows; a span at the very end may sit on the
        // line after the last newline, which is empty.
        let line = text.lines().nth(d.line - 1);
        let trailing = d.line == text.matches('\n').count() + 1;
        prop_assert!(
            line.is_some() || trailing,
            "line {} of {}",
            d.line,
            text.lines().count()
        );
        let line = line.unwrap_or("");
        prop_assert_eq!(&d.source_line, line);
        prop_assert!(d.column <= line.chars().count() + 1, "{:?}", d);
        let shown = d.to_string();
        let head = format!("{name}:{}:{}: ", d.line, d.column);
        prop_assert!(shown.starts_with(&head), "{}", shown);
    }
    Ok(())
}

fn check_accepted(scenario: &Scenario) -> Result<(), TestCaseError> {
    prop_assert!(validate(scenario).is_empty(), "accepted but invalid");
    let text =
        toml::to_string(scenario).map_err(|e| TestCaseError::fail(format!("cannot write: {e}")))?;
    let back = parse_scenario("<round trip>", &text)
        .map_err(|e| TestCaseError::fail(format!("its own TOML is refused: {e}\n{text}")))?;
    prop_assert_eq!(&back, scenario);
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// Perturbed example scenarios are accepted consistently or refused with placed errors.
    #[test]
    fn perturbed_scenarios_are_accepted_or_placed((seed, edits) in mutated()) {
        let mut text = SEEDS[seed % SEEDS.len()].clone();
        for e in &edits {
            text = apply(&text, e);
        }
        let name = "fuzz/case.toml";
        match parse_scenario(name, &text) {
            Ok(scenario) => check_accepted(&scenario)?,
            Err(err) => check_diagnostics(name, &text, &err)?,
        }
    }

    /// Arbitrary text, mostly not TOML at all: still no panic and placed errors.
    #[test]
    fn arbitrary_text_is_refused_with_placed_errors(text in "(.|\n|\r){0,200}") {
        if let Err(err) = parse_scenario("x.toml", &text) {
            check_diagnostics("x.toml", &text, &err)?;
        }
    }
}

/// Every seed is itself valid, so the mutations start from real scenarios.
#[test]
fn seeds_are_valid() {
    assert!(SEEDS.len() >= 10);
    for (i, text) in SEEDS.iter().enumerate() {
        let scenario = parse_scenario("seed", text).unwrap_or_else(|e| panic!("seed {i}: {e}"));
        assert!(validate(&scenario).is_empty());
    }
}

/// Found by `arbitrary_text_is_refused_with_placed_errors`: in a CRLF file an error at
/// the end of a line was placed one column past the line (the CR counted as a column).
#[test]
fn crlf_error_at_line_end_stays_on_the_line() {
    for text in ["'\r\n", "seed = 1\r\nname\r\n"] {
        let err = parse_scenario("crlf.toml", text).expect_err("not a scenario");
        for d in err.diagnostics() {
            assert!(d.column <= d.source_line.chars().count() + 1, "{d:?}");
        }
    }
}
