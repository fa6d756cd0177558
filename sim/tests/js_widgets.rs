//! The JavaScript widgets under `widgets/`, run in the simulator's QuickJS host:
//! - `widgets/corrected` keeps every invariant in every shipped scenario, and agrees with
//!   the Rust `corrected` policy on every message's outcome, text, GETs, POSTs,
//!   fallbacks and Bedrock calls (`picasso_sim::oracle`); `widgets/as-written` and
//!   `widgets/naive-fix` agree with their Rust models the same way;
//! - two runs with the same seed give the same transcript bytes;
//! - each transcript is pinned as a snapshot (`transcript__<scenario>__js-<widget>.snap`);
//! - a widget that throws, one that never answers and one that loops each fail with a
//!   clear error, and none hangs.

use picasso_core::Scenario;
use picasso_sim::widget::js;
use picasso_sim::{Policy, Property, oracle, run_scenario};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn scenarios() -> Vec<(String, Scenario)> {
    let dir = root().join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    files.sort();
    let mut out = vec![("default".to_owned(), Scenario::default_scenario())];
    for f in files {
        let name = f
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.push((
            name,
            picasso_core::load_file(&f).unwrap_or_else(|e| panic!("{e}")),
        ));
    }
    out
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

#[test]
fn a_throwing_widget_fails_with_the_js_error_its_place_and_the_message() {
    let outcome = run_scenario(&happy_path(), widget("sim/tests/widgets/throwing")).expect("run");
    let v = outcome
        .violations
        .iter()
        .find(|v| v.property == Property::WidgetRuns)
        .unwrap_or_else(|| panic!("no widget-runs violation: {:?}", outcome.violations));
    let text = v.to_string();
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
    assert!(
        !outcome
            .violations
            .iter()
            .any(|v| v.property == Property::WidgetRuns)
    );
}

#[test]
fn a_looping_widget_is_stopped_by_the_instruction_budget() {
    let outcome = run_scenario(&happy_path(), widget("sim/tests/widgets/looping")).expect("run");
    let v = outcome
        .violations
        .iter()
        .find(|v| v.property == Property::WidgetRuns)
        .unwrap_or_else(|| panic!("no widget-runs violation: {:?}", outcome.violations));
    let text = v.to_string();
    assert!(text.contains("instruction budget exhausted"), "{text}");
    assert!(text.contains("an EventSource event"), "{text}");
    assert!(text.contains("fv-1-m1"), "{text}");
    // The page is gone, and so is what it held open.
    for s in &outcome.sessions {
        assert_eq!(s.leaks.open_event_sources, 0);
    }
}

fn picasso(args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_picasso-sim"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("picasso-sim runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The acceptance lines: `--widget widgets/corrected` passes the suite, the
/// document's code fails it naming at least three invariants, and an unreadable widget
/// is an input error.
#[test]
fn run_with_a_js_widget_from_the_command_line() {
    let (code, js) = picasso(&[
        "run",
        "scenarios/",
        "--widget",
        "widgets/corrected/widget.js",
    ]);
    assert_eq!(code, 0, "{js}");
    let (code, rust) = picasso(&["run", "scenarios/", "--policy", "corrected"]);
    assert_eq!(code, 0, "{rust}");
    // The summary table: scenario, policy, then msgs streams fallbacks errors bedrock
    // violations result. Every column but the policy's name must match.
    let columns = |out: &str, policy: &str| -> Vec<String> {
        out.lines()
            .filter(|l| l.split_whitespace().nth(1) == Some(policy))
            .map(|l| {
                let mut w: Vec<&str> = l.split_whitespace().collect();
                w.remove(1);
                w.join(" ")
            })
            .collect()
    };
    let (a, b) = (columns(&js, "js-corrected"), columns(&rust, "corrected"));
    assert!(a.len() >= 30, "{js}");
    assert_eq!(a, b);

    let (code, out) = picasso(&[
        "run",
        "scenarios/",
        "--widget",
        "widgets/as-written/widget.js",
        "--replay",
    ]);
    assert_eq!(code, 1, "{out}");
    let named: std::collections::BTreeSet<&str> = Property::ALL
        .iter()
        .map(|p| p.name())
        .filter(|name| out.contains(&format!("VIOLATED {name} at ")))
        .collect();
    assert!(named.len() >= 3, "only {named:?} named");

    let (code, _) = picasso(&["run", "--widget", "widgets/no-such-widget"]);
    assert_eq!(code, 2);
}
