//! The JavaScript widgets under `widgets/`, run in the simulator's QuickJS host:
//! - `widgets/corrected` keeps every invariant in every shipped scenario, and agrees with
//!   the Rust `corrected` policy on every message's outcome, text, GETs, POSTs,
//!   fallbacks and Bedrock calls (`picasso_simulator::oracle`); `widgets/as-written` and
//!   `widgets/naive-fix` agree with their Rust models the same way;
//! - two runs with the same seed give the same transcript bytes;
//! - each transcript is pinned as a snapshot (`transcript__<scenario>__js-<widget>.snap`);
//! - a widget that throws, one that never answers and one that loops each fail with a
//!   clear error, and none hangs.

mod common;

use picasso_core::Scenario;
use picasso_simulator::widget::js;
use picasso_simulator::{Policy, Property, oracle, run_scenario};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn scenarios() -> Vec<(String, Scenario)> {
    common::shipped_scenarios()
}

fn widget(path: &str) -> Policy {
    Policy::Js(js::register(&root().join(path)).unwrap_or_else(|e| panic!("{e}")))
}

/// Each shipped JS widget next to the Rust policy that is its oracle.
fn pairs() -> [(Policy, Policy); 3] {
    [
        (widget("widgets/corrected"), Policy::Corrected),
        (widget("widgets/as-written"), Policy::AsWritten),
        (widget("widgets/naive-fix"), Policy::NaiveFix),
    ]
}

#[test]
fn js_widgets_agree_with_their_rust_oracles_on_every_scenario() {
    let mut failures = Vec::new();
    for (name, scenario) in scenarios() {
        for (js, rust) in pairs() {
            let a = run_scenario(&scenario, js).expect("js run");
            let b = run_scenario(&scenario, rust).expect("rust run");
            let (va, vb) = (oracle::view(&a), oracle::view(&b));
            if va != vb {
                failures.push(format!(
                    "{name}: {js} vs {rust}:\n  js:   {va:?}\n  rust: {vb:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn js_corrected_holds_every_invariant_in_every_scenario() {
    let corrected = widget("widgets/corrected");
    let mut failures = Vec::new();
    for (name, scenario) in scenarios() {
        let outcome = run_scenario(&scenario, corrected).expect("run");
        for v in &outcome.violations {
            failures.push(format!("{name}: {v}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Same scenario, seed and widget file: the same transcript, byte for byte; and each
/// transcript is pinned as a snapshot.
#[test]
fn js_transcripts_are_deterministic_and_match_their_snapshots() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(root().join("snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        for (name, scenario) in scenarios() {
            for (js, _) in pairs() {
                let first = run_scenario(&scenario, js).expect("run");
                let again = run_scenario(&scenario, js).expect("run");
                assert_eq!(
                    first.transcript, again.transcript,
                    "{name} · {js}: two runs differ"
                );
                insta::assert_snapshot!(
                    format!("transcript__{name}__{}", js.name()),
                    first.transcript
                );
            }
        }
    });
}

fn happy_path() -> Scenario {
    picasso_core::load_file(&root().join("scenarios/happy-path.toml")).expect("scenario")
}

/// Every `widget-runs` violation of a run, as `run` prints it.
fn widget_errors(outcome: &picasso_simulator::Outcome) -> Vec<String> {
    outcome
        .violations
        .iter()
        .filter(|v| v.property == Property::WidgetRuns)
        .map(ToString::to_string)
        .collect()
}

/// The run's first `widget-runs` violation; the test fails when there is none.
fn first_widget_error(outcome: &picasso_simulator::Outcome) -> String {
    widget_errors(outcome)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no widget-runs violation: {:?}", outcome.violations))
}

#[test]
fn a_throwing_widget_fails_with_the_js_error_its_place_and_the_message() {
    let outcome = run_scenario(&happy_path(), widget("sim/tests/widgets/throwing")).expect("run");
    let text = first_widget_error(&outcome);
    assert!(text.contains("TypeError"), "{text}");
    assert!(text.contains("while handling message fv-1-m1"), "{text}");
    assert!(
        text.contains("sim/tests/widgets/throwing/widget.js:8:"),
        "file:line:column missing: {text}"
    );
}

#[test]
fn a_silent_widget_is_caught_by_the_liveness_invariant() {
    let outcome = run_scenario(&happy_path(), widget("sim/tests/widgets/silent")).expect("run");
    assert!(
        outcome
            .violations
            .iter()
            .any(|v| v.property == Property::OneOutcome && v.place == "fv-1/fv-1-m1"),
        "{:?}",
        outcome.violations
    );
    assert!(widget_errors(&outcome).is_empty());
}

#[test]
fn a_looping_widget_is_stopped_by_the_instruction_budget() {
    let outcome = run_scenario(&happy_path(), widget("sim/tests/widgets/looping")).expect("run");
    let text = first_widget_error(&outcome);
    assert!(text.contains("instruction budget exhausted"), "{text}");
    assert!(text.contains("an EventSource event"), "{text}");
    assert!(text.contains("fv-1-m1"), "{text}");
    // The page is gone, and so is what it held open.
    for s in &outcome.sessions {
        assert_eq!(s.leaks.open_event_sources, 0);
    }
}

#[test]
fn a_widget_that_does_not_parse_fails_every_session_and_the_run_ends() {
    // Before the page had a way out, a widget that never loaded left its session
    // waiting for a config that could not come: the run hung.
    let outcome = run_scenario(&happy_path(), widget("sim/tests/widgets/unparsable")).expect("run");
    let failed = widget_errors(&outcome);
    assert_eq!(failed.len(), outcome.sessions.len(), "{failed:?}");
    for text in &failed {
        assert!(text.contains("SyntaxError"), "{text}");
        assert!(
            text.contains("sim/tests/widgets/unparsable/widget.js:3:"),
            "file:line:column missing: {text}"
        );
    }
}

/// The sticky bucket `widgets/corrected` computes (FNV-1a 64 in 32-bit halves, no
/// BigInt) is the Rust policy's for any tenant and session id, whatever their
/// characters: the two agree on which sessions stream only if this holds.
mod bucket {
    use picasso_browser::{Host, Page, PageOptions, Request, WidgetSource};
    use picasso_simulator::widget::decide;
    use proptest::prelude::*;

    const ENTRY: &str = "import { bucket } from './widget.js';\n\
        export function createWidget(host) {\n\
          for (const [t, s] of host.pairs) console.log(String(bucket(t, s)));\n\
          return {};\n\
        }\n";

    fn js_buckets(pairs: &[(String, String)]) -> Vec<u64> {
        let widget = include_str!("../../widgets/corrected/widget.js");
        let source = WidgetSource::from_sources(
            "w/entry.js",
            &[("w/entry.js", ENTRY), ("w/widget.js", widget)],
        );
        let data = serde_json::to_string(pairs).unwrap();
        let host = Host {
            expr: "{ pairs: data }",
            data: &data,
        };
        let page = Page::open(&source, PageOptions::chromium(1), host).expect("page");
        page.take_requests()
            .into_iter()
            .filter_map(|r| match r {
                Request::Console { text, .. } => Some(text.parse().expect("a number")),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn known_values() {
        let pairs: Vec<(String, String)> = [
            ("", ""),
            ("tenant-a", "s1"),
            ("é", "😀"),
            ("t", "\u{7f}\u{80}\u{7ff}\u{800}\u{ffff}\u{10000}"),
        ]
        .iter()
        .map(|(t, s)| (t.to_string(), s.to_string()))
        .collect();
        let want: Vec<u64> = pairs.iter().map(|(t, s)| decide::bucket(t, s)).collect();
        assert_eq!(js_buckets(&pairs), want);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(picasso_core::testing::proptest_cases(32)))]
        #[test]
        fn the_js_bucket_is_the_rust_bucket(pairs in proptest::collection::vec(("\\PC{0,12}", "\\PC{0,24}"), 1..24)) {
            let want: Vec<u64> = pairs.iter().map(|(t, s)| decide::bucket(t, s)).collect();
            prop_assert_eq!(js_buckets(&pairs), want);
        }
    }
}
