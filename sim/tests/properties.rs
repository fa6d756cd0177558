//! Property tests: generated tenants, rollout percentages, answers, fault schedules and
//! sessions, run through the whole in-process stack under each policy.
//!
//! - For `corrected`, every §B.7 invariant holds on every generated scenario.
//! - For `as-written` and `naive-fix`, the same properties find counterexamples.
//! - Under every Rust policy, the direct campaign transport gives the SDK's transcripts.
//! - A table names, for each of the design's defects (`widget-and-determinism.md` §B.6),
//!   the scenario that exposes it and the property that catches it.
//!
//! A failure shrinks to a minimal scenario, prints it as a scenario file with its seed,
//! and writes it to `target/sim-failures/<name>.toml` so `picasso-sim run` replays it;
//! a passing run writes nothing there.
//! Cases: `PICASSO_PROPTEST_CASES` (default 24) for a longer campaign.

use fake::Fake;
use fake::faker::lorem::en::Words;
use picasso_core::Scenario;
use picasso_core::scenario::{
    Answer, Caller, Fault, FaultKind, FaultTarget, Limits, Message, Pacing, Session, StopReason,
    Tenant, WidgetSettings,
};
use picasso_simulator::{Policy, Property, RunOptions, Transport, run_scenario, run_with};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use rand::SeedableRng;
use std::collections::BTreeSet;
use std::path::PathBuf;

const TENANTS: [&str; 2] = ["fo85e6a06dcdf4", "au47d9f8e2c31b"];
const ORIGIN: &str = "https://widget.example";

/// Cases per property: 24 for CI, `PICASSO_PROPTEST_CASES` for a longer campaign (the
/// workspace's one knob, shared with every other property test).
fn cases() -> u32 {
    picasso_core::testing::proptest_cases(24)
}

/// Words from `fake`, seeded by a number proptest drew (never `thread_rng`).
fn words(seed: u64, min: usize, max: usize) -> String {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let w: Vec<String> = Words(min..max + 1).fake_with_rng(&mut rng);
    w.join(" ")
}

fn tenant_strategy(hash: &'static str) -> impl Strategy<Value = Tenant> {
    (
        prop_oneof![3 => Just(true), 1 => Just(false)],
        prop_oneof![
            Just(0.0),
            Just(1.0),
            Just(50.0),
            Just(99.0),
            Just(100.0),
            0.0f64..=100.0
        ],
    )
        .prop_map(move |(enabled, p)| Tenant {
            hash: hash.into(),
            name: String::new(),
            streaming_enabled: enabled,
            streaming_percentage: p,
            streaming_model: picasso_core::scenario::DEFAULT_MODEL.into(),
            allowed_origins: vec![ORIGIN.into()],
        })
}

fn answer_strategy() -> impl Strategy<Value = Answer> {
    (any::<u64>(), 0u64..2_000, 0u64..200).prop_map(|(seed, first, gap)| Answer {
        id: "generated".into(),
        model: None,
        prompt: None,
        pattern: None,
        tokens: Vec::new(),
        text: Some(words(seed, 2, 8)),
        pacing: Some(Pacing {
            first_token_ms: first,
            gap_ms: gap,
        }),
        usage: None,
        stop_reason: StopReason::EndTurn,
    })
}

/// A fault a scenario author could write: a kind allowed at its place, with its knobs.
fn fault_strategy() -> impl Strategy<Value = Fault> {
    // Every kind once, drops of an open stream four times: they are what a `Last-Event-ID`
    // resume recovers from, and the resume path is otherwise rarely reached.
    let placed = prop_oneof![
        1 => Just((FaultTarget::Bedrock, FaultKind::Throttling)),
        1 => Just((FaultTarget::Bedrock, FaultKind::Internal)),
        1 => Just((FaultTarget::Bedrock, FaultKind::AccessDenied)),
        1 => Just((FaultTarget::Bedrock, FaultKind::SlowFirstToken)),
        1 => Just((FaultTarget::Bedrock, FaultKind::Stall)),
        1 => Just((FaultTarget::Bedrock, FaultKind::Exception)),
        1 => Just((FaultTarget::Bedrock, FaultKind::Drop)),
        1 => Just((FaultTarget::Bedrock, FaultKind::CorruptFrame)),
        1 => Just((FaultTarget::Gateway, FaultKind::Latency)),
        1 => Just((FaultTarget::Gateway, FaultKind::Status)),
        4 => Just((FaultTarget::Gateway, FaultKind::Drop)),
        1 => Just((FaultTarget::Gateway, FaultKind::Stall)),
        1 => Just((FaultTarget::Gateway, FaultKind::MalformedFrame)),
        1 => Just((FaultTarget::Gateway, FaultKind::WrongContentType)),
        1 => Just((FaultTarget::Network, FaultKind::Refuse)),
        4 => Just((FaultTarget::Network, FaultKind::Drop)),
        1 => Just((FaultTarget::Network, FaultKind::Stall)),
        1 => Just((FaultTarget::MasterChat, FaultKind::Status)),
        1 => Just((FaultTarget::MasterChat, FaultKind::Drop)),
        1 => Just((FaultTarget::MasterConfig, FaultKind::Status)),
    ];
    (
        placed,
        0u32..6,
        prop_oneof![Just(500u64), Just(5_000), Just(20_000)],
        prop_oneof![Just(400u16), Just(403), Just(429), Just(500), Just(503)],
        prop_oneof![Just(None), Just(Some(1u32))],
        proptest::option::of(prop_oneof![Just(Caller::Gateway), Just(Caller::Master)]),
    )
        .prop_map(|((target, kind), after, delay, status, times, via)| {
            let mut f = Fault::new(target, kind);
            f.after_tokens = kind.takes_after_tokens().then_some(after);
            // A stall without a delay lasts forever (what the unmount cleanup is for);
            // every third stall is one.
            f.delay_ms = if kind == FaultKind::Stall {
                (after % 3 != 2).then_some(delay)
            } else {
                kind.needs_delay().then_some(delay)
            };
            f.status = (kind == FaultKind::Status).then_some(status);
            f.times = times;
            f.via = via.filter(|_| target == FaultTarget::Bedrock);
            f
        })
}

fn session_strategy(index: usize) -> impl Strategy<Value = Session> {
    (
        0usize..TENANTS.len(),
        prop_oneof![5 => Just(true), 1 => Just(false)],
        0u64..2_000,
        // Each message after its think time, or (1 in 4) at a fixed time whether or
        // not the previous one ended: users who type while an answer streams.
        proptest::collection::vec(
            (
                any::<u64>(),
                0u64..3_000,
                prop_oneof![3 => Just(None), 1 => (0u64..4_000).prop_map(Some)],
            ),
            1..4,
        ),
    )
        .prop_map(move |(tenant, es, start, msgs)| Session {
            id: format!("s{index}"),
            tenant: TENANTS[tenant].into(),
            start_ms: start,
            event_source: es,
            origin: None,
            close_at_ms: None,
            messages: msgs
                .into_iter()
                .enumerate()
                .map(|(i, (seed, think, at))| Message {
                    id: format!("s{index}-m{i}"),
                    text: words(seed, 1, 5),
                    think_ms: think,
                    at_ms: at,
                })
                .collect(),
        })
}

prop_compose! {
    fn scenario_strategy()(
        seed in 0u64..(1 << 62),
        a in tenant_strategy(TENANTS[0]),
        b in tenant_strategy(TENANTS[1]),
        answer in answer_strategy(),
        faults in proptest::collection::vec(fault_strategy(), 0..3),
        s0 in session_strategy(0),
        s1 in proptest::option::of(session_strategy(1)),
        resume in any::<bool>(),
    ) -> Scenario {
        let mut sessions = vec![s0];
        sessions.extend(s1);
        Scenario {
            name: "generated".into(),
            description: String::new(),
            seed,
            models: Vec::new(),
            tenants: vec![a, b],
            answers: vec![answer],
            faults,
            sessions,
            limits: Limits::default(),
            widget: WidgetSettings { resume, ..WidgetSettings::default() },
            rollout: None,
            servers: Default::default(),
            config_changes: Vec::new(),
        }
    }
}

/// Writes the shrunk scenario where `picasso-sim run` can replay it. Called only on the
/// way to a panic: a passing suite leaves `target/sim-failures/` alone.
fn save_failure(name: &str, scenario: &Scenario) -> (PathBuf, String) {
    let toml = toml::to_string(scenario).unwrap_or_else(|e| format!("# cannot render: {e}"));
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/sim-failures");
    let path = dir.join(format!("{name}.toml"));
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(&path, &toml);
    (path, toml)
}

/// Saves the shrunk scenario as `name` and fails the test with `what`, the reason and
/// the scenario (to paste into a file, or replay from the one written).
fn fail_with(name: &str, what: &str, reason: &dyn std::fmt::Display, scenario: &Scenario) -> ! {
    let (path, toml) = save_failure(name, scenario);
    panic!(
        "{what}:\n{reason}\n\nminimal scenario (seed {}), written to {}:\n{toml}",
        scenario.seed,
        path.display()
    );
}

/// A shrunk counterexample: the scenario, the properties it breaks on replay, the
/// failure message the search recorded.
type Found = Box<(Scenario, BTreeSet<Property>, String)>;

/// Runs the generator against `policy`; `Ok` when every case held, else the shrunk
/// scenario and the properties it broke.
fn search(policy: Policy, cases: u32) -> Result<(), Found> {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    });
    let result = runner.run(&scenario_strategy(), |scenario| {
        let outcome =
            run_scenario(&scenario, policy).map_err(|e| TestCaseError::fail(e.to_string()))?;
        if outcome.violations.is_empty() {
            Ok(())
        } else {
            let text: Vec<String> = outcome.violations.iter().map(ToString::to_string).collect();
            Err(TestCaseError::fail(text.join("\n")))
        }
    });
    match result {
        Ok(()) => Ok(()),
        Err(TestError::Fail(reason, scenario)) => {
            let outcome = run_scenario(&scenario, policy).expect("replay");
            let props = outcome.violations.iter().map(|v| v.property).collect();
            Err(Box::new((scenario, props, reason.to_string())))
        }
        Err(TestError::Abort(reason)) => panic!("proptest aborted: {reason}"),
    }
}

/// Every invariant holds for the corrected widget on every generated scenario.
#[test]
fn corrected_policy_holds_every_invariant() {
    if let Err(found) = search(Policy::Corrected, cases()) {
        let (scenario, _, reason) = *found;
        fail_with(
            "corrected",
            "an invariant broke for `corrected`",
            &reason,
            &scenario,
        );
    }
}

/// The campaign transport (`picasso_world::DirectTransport`) gives the transcript the
/// official SDK gives, byte for byte, under every Rust policy, on every generated
/// scenario (faults at every hop, Bedrock's included).
#[test]
fn direct_transport_gives_the_sdk_transcripts() {
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    });
    let result = runner.run(&scenario_strategy(), |scenario| {
        for policy in Policy::ALL {
            let run = |transport| {
                let options = RunOptions {
                    transport,
                    ..RunOptions::default()
                };
                run_with(&scenario, policy, options)
                    .map(|o| o.transcript)
                    .map_err(|e| TestCaseError::fail(e.to_string()))
            };
            let (sdk, direct) = (run(Transport::Sdk)?, run(Transport::Direct)?);
            if sdk != direct {
                let first = sdk
                    .lines()
                    .zip(direct.lines())
                    .find(|(a, b)| a != b)
                    .map(|(a, b)| format!("\n  sdk:    {a}\n  direct: {b}"))
                    .unwrap_or_else(|| " (one transcript is longer)".into());
                return Err(TestCaseError::fail(format!(
                    "{} differs{first}",
                    policy.name()
                )));
            }
        }
        Ok(())
    });
    if let Err(TestError::Fail(reason, scenario)) = result {
        fail_with("transports", "the transports differ", &reason, &scenario);
    }
}

/// The JavaScript corrected widget (`widgets/corrected`) on the same generator: every
/// invariant holds, and every message ends as the Rust `corrected` policy ends it (same
/// outcome, text, GETs, POSTs, fallbacks, Bedrock calls, metrics).
#[test]
fn js_corrected_widget_holds_every_invariant_and_agrees_with_rust() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../widgets/corrected");
    let js = Policy::Js(picasso_simulator::widget::js::register(&path).expect("widget"));
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    });
    let result = runner.run(&scenario_strategy(), |scenario| {
        let a = run_scenario(&scenario, js).map_err(|e| TestCaseError::fail(e.to_string()))?;
        if !a.violations.is_empty() {
            let text: Vec<String> = a.violations.iter().map(ToString::to_string).collect();
            return Err(TestCaseError::fail(text.join("\n")));
        }
        let b = run_scenario(&scenario, Policy::Corrected)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let (va, vb) = (
            picasso_simulator::oracle::view(&a),
            picasso_simulator::oracle::view(&b),
        );
        if va != vb {
            return Err(TestCaseError::fail(format!(
                "js and rust differ:\n  js:   {va:?}\n  rust: {vb:?}"
            )));
        }
        Ok(())
    });
    if let Err(TestError::Fail(reason, scenario)) = result {
        fail_with("js-corrected", "js-corrected", &reason, &scenario);
    }
}

/// The properties named in a failure message (`VIOLATED <name> at …` lines).
fn named_in(report: &str) -> BTreeSet<Property> {
    Property::ALL
        .into_iter()
        .filter(|p| report.contains(&format!("VIOLATED {} at ", p.name())))
        .collect()
}

/// The properties the defect table says `policy` breaks.
fn table_properties(policy: Policy) -> BTreeSet<Property> {
    defect_table()
        .iter()
        .filter(|r| r.policy == policy)
        .map(|r| r.property)
        .collect()
}

/// The same generator and properties find the document's defects in `as-written` and
/// `naive-fix`, and what they find agrees with the rest of the suite:
/// - the shrunk counterexample breaks, on replay, exactly the properties the search
///   reported (so the scenario printed is the one that failed), and the corrected
///   widget keeps every property on it (the policy is at fault, not the scenario);
/// - over a fixed sample of generated scenarios, each faulty policy breaks every
///   property the defect table below pins on it, and the corrected widget none.
#[test]
fn as_written_and_naive_fix_fail_the_same_properties() {
    let mut problems = Vec::new();
    for policy in [Policy::AsWritten, Policy::NaiveFix] {
        let found = match search(policy, cases().max(32)) {
            Ok(()) => {
                problems.push(format!("{}: no counterexample found", policy.name()));
                continue;
            }
            Err(found) => *found,
        };
        let (scenario, replayed, reason) = found;
        let reported = named_in(&reason);
        let corrected = run_scenario(&scenario, Policy::Corrected).expect("run");
        let mut wrong = Vec::new();
        if reported.is_empty() || replayed != reported {
            wrong.push(format!(
                "the search reported {reported:?}, the replay breaks {replayed:?}"
            ));
        }
        if !corrected.violations.is_empty() {
            wrong.push(format!(
                "the corrected widget breaks it too: {:?}",
                corrected.violations
            ));
        }
        eprintln!(
            "{}: shrunk to seed {} breaking {replayed:?}",
            policy.name(),
            scenario.seed
        );
        if !wrong.is_empty() {
            let (path, toml) = save_failure(policy.name(), &scenario);
            problems.push(format!(
                "{}: {}\nscenario (seed {}), written to {}:\n{toml}",
                policy.name(),
                wrong.join("; "),
                scenario.seed,
                path.display()
            ));
        }
    }

    // A fixed sample (the same 200 scenarios as the coverage goals below), so the
    // comparison with the table does not depend on the draw; runs are cheap.
    let mut runner = TestRunner::deterministic();
    let strategy = scenario_strategy();
    let mut broken: Vec<(Policy, BTreeSet<Property>)> = [Policy::AsWritten, Policy::NaiveFix]
        .into_iter()
        .map(|p| (p, BTreeSet::new()))
        .collect();
    for _ in 0..cases().max(200) {
        let scenario = strategy.new_tree(&mut runner).expect("generate").current();
        let corrected = run_scenario(&scenario, Policy::Corrected).expect("run");
        if !corrected.violations.is_empty() {
            let (path, _) = save_failure("sample-corrected", &scenario);
            problems.push(format!(
                "corrected breaks a sampled scenario (seed {}, {}): {:?}",
                scenario.seed,
                path.display(),
                corrected.violations
            ));
        }
        for (policy, seen) in &mut broken {
            let outcome = run_scenario(&scenario, *policy).expect("run");
            seen.extend(outcome.violations.iter().map(|v| v.property));
        }
    }
    for (policy, seen) in &broken {
        let table = table_properties(*policy);
        eprintln!(
            "{}: the generator breaks {seen:?}; the table pins {table:?}",
            policy.name()
        );
        let missed: Vec<&str> = table.difference(seen).map(|p| p.name()).collect();
        if !missed.is_empty() {
            problems.push(format!(
                "{}: the defect table's {missed:?} never broke on the generated sample (broke: {seen:?})",
                policy.name()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Coverage goals ("sometimes", Antithesis style): the generators reach the paths that
/// matter, so the invariants above are tested where they can break.
#[test]
fn generators_reach_interesting_paths() {
    use picasso_simulator::widget::{Source, Terminal};
    const GOALS: [&str; 6] = [
        "complete from the stream",
        "fell back after ≥1 token shown",
        "fell back before any token",
        "regular chat",
        "visible failure",
        "resumed with Last-Event-ID",
    ];
    let mut runner = TestRunner::deterministic();
    let strategy = scenario_strategy();
    // Per goal, how many generated scenarios reached it.
    let mut reached: std::collections::BTreeMap<&str, u32> =
        GOALS.iter().map(|g| (*g, 0)).collect();
    // A resume needs a streaming session, `resume` on and a drop after a token: rarer
    // than the rest, so the fixed sample is larger than the random searches' (the runs
    // are cheap: virtual time).
    let sample = cases().max(200);
    for _ in 0..sample {
        let scenario = strategy.new_tree(&mut runner).expect("generate").current();
        let outcome = run_scenario(&scenario, Policy::Corrected).expect("run");
        let mut seen = BTreeSet::new();
        for (_, m) in outcome.messages() {
            match &m.terminal {
                Some(Terminal::Complete(Source::Stream)) => seen.insert(GOALS[0]),
                Some(Terminal::Complete(Source::Post))
                    if m.fallback_posts > 0 && !m.live_texts.is_empty() =>
                {
                    seen.insert(GOALS[1])
                }
                Some(Terminal::Complete(Source::Post)) if m.fallback_posts > 0 => {
                    seen.insert(GOALS[2])
                }
                Some(Terminal::Complete(Source::Post)) => seen.insert(GOALS[3]),
                Some(Terminal::Failed { .. }) => seen.insert(GOALS[4]),
                _ => false,
            };
            if m.gets_with_last_event_id > 0 {
                seen.insert(GOALS[5]);
            }
        }
        for goal in seen {
            *reached.entry(goal).or_default() += 1;
        }
    }
    eprintln!("coverage over {sample} generated scenarios: {reached:?}");
    let never: Vec<&str> = reached
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(g, _)| *g)
        .collect();
    assert!(
        never.is_empty(),
        "never reached in {sample} scenarios: {never:?} (reached: {reached:?})"
    );
}

/// The base of the defect scenarios: Foster Village streaming at 100 %, one visitor, one message.
fn base() -> Scenario {
    let mut s = Scenario {
        name: "defect".into(),
        description: String::new(),
        seed: 7,
        models: Vec::new(),
        tenants: vec![
            Tenant {
                hash: TENANTS[0].into(),
                name: String::new(),
                streaming_enabled: true,
                streaming_percentage: 100.0,
                streaming_model: picasso_core::scenario::DEFAULT_MODEL.into(),
                allowed_origins: vec![ORIGIN.into()],
            },
            Tenant {
                hash: TENANTS[1].into(),
                name: String::new(),
                streaming_enabled: false,
                streaming_percentage: 0.0,
                streaming_model: picasso_core::scenario::DEFAULT_MODEL.into(),
                allowed_origins: vec![ORIGIN.into()],
            },
        ],
        answers: vec![],
        faults: vec![],
        sessions: vec![Session {
            id: "s0".into(),
            tenant: TENANTS[0].into(),
            start_ms: 0,
            event_source: true,
            origin: None,
            close_at_ms: None,
            messages: vec![Message {
                id: "m0".into(),
                text: "Hello".into(),
                think_ms: 1000,
                at_ms: None,
            }],
        }],
        limits: Limits::default(),
        widget: WidgetSettings::default(),
        rollout: None,
        servers: Default::default(),
        config_changes: Vec::new(),
    };
    let mut a = Answer::unscripted();
    a.id = "answer".into();
    a.text = Some("Hello there, how can I help you today?".into());
    a.pacing = Some(Pacing {
        first_token_ms: 300,
        gap_ms: 50,
    });
    s.answers.push(a);
    s
}

fn with_fault(target: FaultTarget, kind: FaultKind, f: impl FnOnce(&mut Fault)) -> Scenario {
    let mut s = base();
    let mut fault = Fault::new(target, kind);
    f(&mut fault);
    s.faults.push(fault);
    s
}

fn more_messages(n: usize, at_ms: Option<u64>) -> Scenario {
    let mut s = base();
    for i in 1..n {
        s.sessions[0].messages.push(Message {
            id: format!("m{i}"),
            text: format!("Question {i}"),
            think_ms: 1000,
            at_ms: at_ms.map(|a| a * i as u64),
        });
    }
    s
}

/// A defect of §B.6, the scenario that exposes it, and the property that catches it.
struct Row {
    defect: u8,
    what: &'static str,
    policy: Policy,
    scenario: fn() -> Scenario,
    property: Property,
}

fn defect_table() -> Vec<Row> {
    use Property::*;
    vec![
        Row {
            defect: 1,
            what: "`end` never handled: every good answer ends in onerror",
            policy: Policy::AsWritten,
            scenario: base,
            property: CleanPath,
        },
        Row {
            defect: 2,
            what: "fallback on onerror + no `end`: a POST after every good stream",
            policy: Policy::NaiveFix,
            scenario: base,
            property: NoFallbackAfterEnd,
        },
        Row {
            defect: 3,
            what: "naive fix: the browser reconnects and re-sends the GET",
            policy: Policy::NaiveFix,
            scenario: base,
            property: NoHiddenReconnects,
        },
        Row {
            defect: 4,
            what: "no fallback wired: a refused stream shows nothing",
            policy: Policy::AsWritten,
            scenario: || {
                with_fault(FaultTarget::Gateway, FaultKind::Status, |f| {
                    f.status = Some(503)
                })
            },
            property: NoSilentDrop,
        },
        Row {
            defect: 5,
            what: "partial text, then nothing: the truncated answer stays",
            policy: Policy::AsWritten,
            scenario: || {
                with_fault(FaultTarget::Bedrock, FaultKind::Drop, |f| {
                    f.after_tokens = Some(2);
                    f.via = Some(Caller::Gateway);
                })
            },
            property: OneOutcome,
        },
        Row {
            defect: 6,
            what: "streamedContent never reset: answer 1 + answer 2",
            policy: Policy::AsWritten,
            scenario: || more_messages(2, None),
            property: ExactText,
        },
        Row {
            defect: 7,
            what: "one hook-wide slot: the old source is left open and reconnects",
            policy: Policy::AsWritten,
            scenario: || more_messages(2, Some(1_300)),
            property: NoHiddenReconnects,
        },
        Row {
            defect: 8,
            what: "streamed text never committed: the answer vanishes",
            policy: Policy::AsWritten,
            scenario: base,
            property: NoSilentDrop,
        },
        Row {
            defect: 10,
            what: "`type` ignored: an error frame reads as a short answer",
            policy: Policy::NaiveFix,
            scenario: || {
                with_fault(FaultTarget::Bedrock, FaultKind::Exception, |f| {
                    f.after_tokens = Some(2);
                    f.via = Some(Caller::Gateway);
                })
            },
            property: NoHiddenReconnects,
        },
        Row {
            defect: 11,
            what: "Math.random() per message: the session flips modes",
            policy: Policy::AsWritten,
            scenario: || {
                let mut s = more_messages(8, None);
                s.tenants[0].streaming_percentage = 50.0;
                s
            },
            property: StickyMode,
        },
        Row {
            defect: 12,
            what: "no client timeouts: headers, then silence, forever",
            policy: Policy::AsWritten,
            scenario: || {
                with_fault(FaultTarget::Gateway, FaultKind::Stall, |f| {
                    f.after_tokens = Some(1)
                })
            },
            property: OneOutcome,
        },
        Row {
            defect: 14,
            what: "user text in the query string: a long message is refused, silently",
            policy: Policy::AsWritten,
            scenario: || {
                let mut s = base();
                s.sessions[0].messages[0].text = "x".repeat(5_000);
                s
            },
            property: NoSilentDrop,
        },
        Row {
            defect: 16,
            what: "no cleanup on unmount: the source stays open",
            policy: Policy::AsWritten,
            // A frozen network: the gateway's own cap ends a stalled edge with
            // STREAM_004, but no server can reach a client through a frozen link.
            scenario: || {
                with_fault(FaultTarget::Network, FaultKind::Stall, |f| {
                    f.after_tokens = Some(1)
                })
            },
            property: NoLeaks,
        },
    ]
}

/// Each defect is caught by its property under the faulty policy, and the corrected
/// widget passes every property on the same scenario.
#[test]
fn each_defect_is_caught_by_its_property() {
    let mut report = Vec::new();
    let mut problems = Vec::new();
    for row in defect_table() {
        let scenario = (row.scenario)();
        let faulty = run_scenario(&scenario, row.policy).expect("run");
        let caught: BTreeSet<Property> = faulty.violations.iter().map(|v| v.property).collect();
        report.push(format!(
            "#{:<2} {:<11} {:<28} {:?} — {}",
            row.defect,
            row.policy.name(),
            row.property.name(),
            caught,
            row.what
        ));
        if !caught.contains(&row.property) {
            problems.push(format!(
                "defect {} not caught by {} under {} (caught: {caught:?})",
                row.defect,
                row.property.name(),
                row.policy.name()
            ));
        }
        let fixed = run_scenario(&scenario, Policy::Corrected).expect("run");
        if !fixed.violations.is_empty() {
            problems.push(format!(
                "defect {} scenario breaks corrected: {:?}",
                row.defect, fixed.violations
            ));
        }
    }
    eprintln!("{}", report.join("\n"));
    // Exactly these 13 of §B.6's 18 defects, each once, so a row lost, renumbered or
    // duplicated shows here. The other five (9, 13, 15, 17, 18: a lost token's exception,
    // the Master's config, gateway idempotency, readyState in logs, CORS `*`) have no
    // widget property of their own to catch them.
    let defects: Vec<u8> = defect_table().iter().map(|r| r.defect).collect();
    assert_eq!(
        defects,
        [1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 14, 16],
        "the defect table's rows"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
