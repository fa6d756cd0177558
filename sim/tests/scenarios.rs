//! Every scenario in `scenarios/` (and the embedded default): run twice under each
//! policy with byte-identical transcripts, the corrected policy breaks no invariant,
//! and each transcript is pinned as an insta snapshot under `snapshots/`.

mod common;

use picasso_core::Scenario;
use picasso_simulator::{Policy, run_scenario};
use std::path::Path;

fn scenarios() -> Vec<(String, Scenario)> {
    common::shipped_scenarios()
}

/// Same scenario, same seed, same policy: the same transcript, byte for byte.
#[test]
fn every_scenario_is_deterministic_under_every_policy() {
    let mut failures = Vec::new();
    for (name, scenario) in scenarios() {
        for policy in Policy::ALL {
            if let Err(e) = picasso_simulator::check_determinism(&scenario, policy) {
                failures.push(format!("{name}: {e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The corrected widget keeps every §B.7 invariant in every shipped scenario.
#[test]
fn corrected_policy_holds_every_invariant_in_every_scenario() {
    let mut failures = Vec::new();
    for (name, scenario) in scenarios() {
        let outcome = run_scenario(&scenario, Policy::Corrected).expect("run");
        for v in &outcome.violations {
            failures.push(format!("{name}: {v}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Transcripts as snapshots, so a change of behaviour shows up as a diff in review.
#[test]
fn transcripts_match_their_snapshots() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("../snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        for (name, scenario) in scenarios() {
            for policy in Policy::ALL {
                let outcome = run_scenario(&scenario, policy).expect("run");
                insta::assert_snapshot!(
                    format!("transcript__{name}__{}", policy.name()),
                    outcome.transcript
                );
            }
        }
    });
}

/// A shipped scenario with no message records an empty transcript, and an empty
/// snapshot pins nothing: every scenario must send at least one message.
#[test]
fn every_scenario_sends_messages() {
    let empty: Vec<String> = scenarios()
        .into_iter()
        .filter(|(_, s)| s.sessions.iter().all(|session| session.messages.is_empty()))
        .map(|(name, _)| name)
        .collect();
    assert!(
        empty.is_empty(),
        "scenarios without a message (their snapshots would be empty): {empty:?}"
    );
}
