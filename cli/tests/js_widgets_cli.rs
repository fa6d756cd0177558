//! `picasso-sim run --widget` end to end, the acceptance lines: the corrected
//! JavaScript widget passes the suite with the same summary columns as the Rust
//! `corrected` policy; the document's code fails it naming at least three invariants;
//! an unreadable widget is an input error. (The widgets' oracle, snapshot and
//! bad-widget tests are in `sim/tests/js_widgets.rs`.)

mod common;

use picasso_simulator::Property;

fn root() -> std::path::PathBuf {
    common::repo_root()
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
