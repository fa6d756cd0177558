//! The invariant checker can fail: for the invariants no shipped scenario breaks
//! (`bedrock-budget`, `rollout-gate`, `non-streaming-tenant-off-gateway`), a clean
//! corrected run is mutated the way the bug would show in the run record, and the
//! checker must name the invariant, at the right place.
//!
//! Each test first checks that the unmutated run holds the invariant, so the
//! violation comes from the mutation and nothing else.

use picasso_core::Scenario;
use picasso_simulator::driver::StreamRequest;
use picasso_simulator::invariants::check;
use picasso_simulator::widget::{Mode, Source, Terminal};
use picasso_simulator::{Outcome, Policy, Property, run_scenario};
use std::path::Path;

/// A shipped scenario, by file stem.
fn shipped(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(format!("{name}.toml"));
    picasso_core::load_file(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// The corrected run of `scenario`, which must hold every invariant.
fn clean_run(scenario: &Scenario) -> Outcome {
    let outcome = run_scenario(scenario, Policy::Corrected).expect("run");
    assert!(
        outcome.violations.is_empty(),
        "the unmutated run already breaks: {:?}",
        outcome.violations
    );
    outcome
}

/// The checker's verdict on `outcome`, as the lines `run` prints.
fn verdict(scenario: &Scenario, outcome: &Outcome) -> Vec<String> {
    check(scenario, outcome)
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// Asserts that `property` is reported at `place`.
fn assert_fires(lines: &[String], property: Property, place: &str) {
    let head = format!("VIOLATED {} at {place}:", property.name());
    assert!(
        lines.iter().any(|l| l.starts_with(&head)),
        "expected `{head} …`, the checker said:\n{}",
        lines.join("\n")
    );
}

/// A session's message record, for mutation.
fn record<'a>(
    outcome: &'a mut Outcome,
    session: &str,
    message: &str,
) -> &'a mut picasso_simulator::widget::MessageRecord {
    outcome
        .sessions
        .iter_mut()
        .find(|s| s.id == session)
        .and_then(|s| s.messages.iter_mut().find(|m| m.id == message))
        .unwrap_or_else(|| panic!("no message {session}/{message}"))
}

/// A second Bedrock generation for a message whose stream completed (what a gateway
/// retry or a reconnect without idempotency would cost) breaks the budget.
#[test]
fn bedrock_budget_fires_on_a_second_call_for_a_completed_stream() {
    let scenario = shipped("happy-path");
    let mut outcome = clean_run(&scenario);
    let m = &outcome.sessions[0].messages[0];
    let (session, message) = (outcome.sessions[0].id.clone(), m.id.clone());
    assert_eq!(m.terminal, Some(Terminal::Complete(Source::Stream)));
    assert_eq!(outcome.bedrock_calls(&session, &message), 1);

    let mut again = outcome
        .bedrock
        .iter()
        .find(|e| e.session.as_deref() == Some(&session) && e.message.as_deref() == Some(&message))
        .expect("the message's Bedrock call")
        .clone();
    again.seq = outcome.bedrock.len() as u64 + 1;
    again.request_id = format!("{}-again", again.request_id);
    outcome.bedrock.push(again);

    let lines = verdict(&scenario, &outcome);
    assert_fires(
        &lines,
        Property::BedrockBudget,
        &format!("{session}/{message}"),
    );
}

/// A streaming GET from a session the gate keeps closed (no `EventSource`) breaks the
/// rollout gate.
#[test]
fn rollout_gate_fires_on_a_get_through_a_closed_gate() {
    let scenario = shipped("rollout");
    let mut outcome = clean_run(&scenario);
    let session = scenario
        .sessions
        .iter()
        .find(|s| !s.event_source)
        .expect("rollout.toml has a visitor without EventSource")
        .clone();
    let m = record(&mut outcome, &session.id, &session.messages[0].id);
    assert_eq!((m.mode, m.gets), (Mode::Regular, 0));
    m.gets = 1;

    let lines = verdict(&scenario, &outcome);
    assert_fires(&lines, Property::RolloutGate, &session.id);
}

/// At `streaming_percentage = 100` every message must stream: the same run checked
/// against a scenario that puts Foster Village at 100 % (its sessions at 50 % did not
/// all stream) breaks the gate at a message that went to the regular chat.
#[test]
fn rollout_gate_fires_when_p_100_leaves_a_message_on_the_regular_chat() {
    let scenario = shipped("rollout");
    let outcome = clean_run(&scenario);
    let (session, message) = outcome
        .sessions
        .iter()
        .filter(|s| s.event_source && s.tenant == scenario.tenants[0].hash)
        .find_map(|s| {
            s.messages
                .iter()
                .find(|m| m.mode == Mode::Regular)
                .map(|m| (s.id.clone(), m.id.clone()))
        })
        .expect("a Foster Village visitor the 50 % gate kept on the regular chat");

    let mut at_100 = scenario.clone();
    at_100.tenants[0].streaming_percentage = 100.0;
    let lines = verdict(&at_100, &outcome);
    assert_fires(
        &lines,
        Property::RolloutGate,
        &format!("{session}/{message}"),
    );
}

/// A tenant without streaming whose visitor's GET reaches the gateway breaks the
/// non-streaming-tenant invariant (the network's record, not the widget's, is checked).
#[test]
fn non_streaming_tenant_fires_when_its_get_reaches_the_gateway() {
    let scenario = shipped("happy-path");
    let mut outcome = clean_run(&scenario);
    let tenant = scenario
        .tenants
        .iter()
        .find(|t| !t.streaming_enabled)
        .expect("happy-path.toml has a tenant without streaming");
    let session = outcome
        .sessions
        .iter()
        .find(|s| s.tenant == tenant.hash)
        .expect("a visitor of that tenant");
    let (session_id, message) = (session.id.clone(), session.messages[0].id.clone());
    assert!(outcome.streams.iter().all(|r| r.tenant != tenant.hash));

    outcome.streams.push(StreamRequest {
        session: session_id.clone(),
        tenant: tenant.hash.clone(),
        message: message.clone(),
        at_ms: 1_000,
        status: Some(403),
        last_event_id: None,
        ended_ms: Some(1_000),
    });

    let lines = verdict(&scenario, &outcome);
    assert_fires(
        &lines,
        Property::NonStreamingTenantOffGateway,
        &format!("{session_id}/{message}"),
    );
}

/// `rollback-holds`, both promises: a stream in flight at the instant rollback that
/// never delivers its `end` (a gateway that cut streams on a config change), and a
/// stream served long after streaming was disabled (a gateway that never re-reads the
/// config).
#[test]
fn rollback_holds_fires_on_a_cut_stream_and_on_a_late_stream() {
    let scenario = shipped("rollback-instant");
    let mut outcome = clean_run(&scenario);
    assert!(
        !verdict(&scenario, &outcome)
            .iter()
            .any(|l| l.contains("rollback-holds")),
        "the clean run holds"
    );
    record(&mut outcome, "fv-1", "fv-1-m1").end_seen = false;
    assert_fires(
        &verdict(&scenario, &outcome),
        Property::RollbackHolds,
        "fv-1/fv-1-m1",
    );

    let scenario = shipped("rollback-full");
    let mut outcome = clean_run(&scenario);
    let late = StreamRequest {
        session: "fv-1".into(),
        tenant: "fo85e6a06dcdf4".into(),
        message: "fv-1-m2".into(),
        at_ms: 30_000,
        status: Some(200),
        last_event_id: None,
        ended_ms: Some(31_000),
    };
    outcome.streams.push(late);
    assert_fires(
        &verdict(&scenario, &outcome),
        Property::RollbackHolds,
        "fv-1/fv-1-m2",
    );
}

/// Found by the swarm (seed 1, case 93019): sent and closed in one instant, the message
/// is cancelled before its POST reaches Bedrock. Zero calls is right for a cancelled
/// message; `clean-path` used to call it a broken fault-free run.
#[test]
fn a_message_cancelled_before_its_request_reached_bedrock_keeps_the_clean_path() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/found/send-and-close-in-one-instant.toml");
    let scenario = picasso_core::load_file(&path).unwrap_or_else(|e| panic!("{e}"));
    let outcome = clean_run(&scenario);
    let m = &outcome.sessions[0].messages[0];
    assert_eq!(m.terminal, Some(Terminal::Cancelled));
    assert_eq!(outcome.bedrock_calls("s1", "s1-m0"), 0);
}
