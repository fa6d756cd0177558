//! The campaign transport gives the transcripts the SDK gives: every scenario in
//! `scenarios/` (and the embedded default), and the swarm's generated cases, run under
//! every Rust policy with the servers calling Bedrock through the official SDK and
//! through `picasso_world::DirectTransport`, compared byte for byte. (The property
//! test over `tests/properties.rs`'s generator is there, beside the others.)

mod common;

use picasso_core::Scenario;
use picasso_simulator::{Policy, RunOptions, Transport, run_with};

fn scenarios() -> Vec<(String, Scenario)> {
    common::shipped_scenarios()
}

fn transcript(scenario: &Scenario, policy: Policy, transport: Transport) -> String {
    let options = RunOptions {
        transport,
        ..RunOptions::default()
    };
    run_with(scenario, policy, options)
        .unwrap_or_else(|e| panic!("{} under {}: {e}", scenario.name, transport.name()))
        .transcript
}

/// `None` when the two transports agree, else where they first differ.
fn difference(scenario: &Scenario, policy: Policy) -> Option<String> {
    let sdk = transcript(scenario, policy, Transport::Sdk);
    let direct = transcript(scenario, policy, Transport::Direct);
    if sdk == direct {
        return None;
    }
    let (a, b): (Vec<&str>, Vec<&str>) = (sdk.lines().collect(), direct.lines().collect());
    let i = a
        .iter()
        .zip(&b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    Some(format!(
        "{} under {}: line {}\n  sdk:    {}\n  direct: {}",
        scenario.name,
        policy.name(),
        i + 1,
        a.get(i).unwrap_or(&"(end)"),
        b.get(i).unwrap_or(&"(end)")
    ))
}

#[test]
fn every_scenario_gives_the_same_transcript_under_both_transports() {
    let scenarios = scenarios();
    assert!(scenarios.len() > 30, "the shipped scenarios were found");
    let failures: Vec<String> = scenarios
        .iter()
        .flat_map(|(_, s)| Policy::ALL.map(|p| difference(s, p)))
        .flatten()
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The swarm's generator (config changes, closed pages, either servers, fault
/// schedules on every hop): the first cases of two seeds.
#[test]
fn swarm_cases_give_the_same_transcript_under_both_transports() {
    let cases = u64::from(picasso_core::testing::proptest_cases(24));
    let failures: Vec<String> = [1u64, 2]
        .into_iter()
        .flat_map(|seed| (0..cases).map(move |case| picasso_simulator::swarm::generate(seed, case)))
        .flat_map(|s| Policy::ALL.map(|p| difference(&s, p)))
        .flatten()
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
