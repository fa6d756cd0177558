//! "Validated means runnable": every scenario `validate` accepts runs to an end.
//!
//! The generator builds scenarios that are valid by construction, with every numeric
//! field drawn from its extremes: 0, 1, the default, the documented maximum
//! (`picasso_core::bounds`), and `u32::MAX` / `i64::MAX` where `validate` accepts
//! them. Each case checks that `validate` accepts the scenario, then runs it under all
//! three policies and asserts the run returns (no panic, no overflow, no endless loop)
//! with an outcome the CLI turns into pass or fail (exit 0 or 1), never an error.
//!
//! Wall time per case is bounded by construction: at most two sessions of three
//! messages, answers of at most three tokens, two faults; virtual time may reach days,
//! which the paused clock skips in no time.
//!
//! Cases: `PICASSO_PROPTEST_CASES` (default 16).

use picasso_core::bounds::{MAX_MS, MIN_HEARTBEAT_MS, MIN_RECONNECT_MS};
use picasso_core::load::validate;
use picasso_core::scenario::{
    Answer, Caller, Fault, FaultKind, FaultTarget, Limits, Message, Pacing, Session, StopReason,
    Tenant, Token, Usage, WidgetSettings,
};
use picasso_core::{Scenario, parse_scenario};
use picasso_simulator::{Policy, run_scenario};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

const TENANTS: [&str; 2] = ["fo85e6a06dcdf4", "au47d9f8e2c31b"];
const ORIGIN: &str = "https://widget.example";
const TARGETS: [FaultTarget; 5] = [
    FaultTarget::Bedrock,
    FaultTarget::MasterConfig,
    FaultTarget::MasterChat,
    FaultTarget::Gateway,
    FaultTarget::Network,
];

/// A time field: 0, 1, its default, the 24 h maximum, or anything up to it.
fn ms(default: u64) -> impl Strategy<Value = u64> {
    prop_oneof![Just(0), Just(1), Just(default), Just(MAX_MS), 0..=MAX_MS]
}

/// A count field with no upper bound in `validate`: 0, 1, its default or `u32::MAX`.
fn count(default: u32) -> impl Strategy<Value = u32> {
    prop_oneof![Just(0), Just(1), Just(default), Just(u32::MAX)]
}

fn tenant(hash: &'static str) -> impl Strategy<Value = Tenant> {
    (
        any::<bool>(),
        prop_oneof![
            Just(0.0),
            Just(100.0),
            Just(f64::MIN_POSITIVE),
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

fn answer() -> impl Strategy<Value = Answer> {
    let tokens = proptest::collection::vec(ms(50), 1..=3).prop_map(|delays| {
        delays
            .into_iter()
            .enumerate()
            .map(|(i, delay_ms)| Token {
                text: format!(" t{i}"),
                delay_ms,
            })
            .collect::<Vec<_>>()
    });
    let usage = proptest::option::of((count(12), count(5)).prop_map(
        |(input_tokens, output_tokens)| Usage {
            input_tokens,
            output_tokens,
        },
    ));
    (any::<bool>(), tokens, ms(300), ms(50), usage).prop_map(
        |(as_text, tokens, first_token_ms, gap_ms, usage)| Answer {
            id: "extreme".into(),
            model: None,
            prompt: None,
            pattern: None,
            text: as_text.then(|| "Extreme numbers everywhere".to_owned()),
            pacing: as_text.then_some(Pacing {
                first_token_ms,
                gap_ms,
            }),
            tokens: if as_text { Vec::new() } else { tokens },
            usage,
            stop_reason: StopReason::EndTurn,
        },
    )
}

/// Any kind at any place it may strike, every knob it takes at an extreme.
fn fault() -> impl Strategy<Value = Fault> {
    let placed: Vec<(FaultTarget, FaultKind)> = TARGETS
        .iter()
        .flat_map(|t| {
            FaultKind::ALL
                .iter()
                .filter(|k| k.allowed_at(*t))
                .map(|k| (*t, *k))
        })
        .collect();
    let times = prop_oneof![Just(None), Just(Some(1u32)), Just(Some(u32::MAX))];
    (
        proptest::sample::select(placed),
        ms(1_000),
        any::<bool>(),
        prop_oneof![Just(0u32), Just(1), Just(u32::MAX)],
        prop_oneof![Just(400u16), Just(429), Just(599)],
        times.clone(),
        times,
        prop_oneof![
            Just(None),
            Just(Some(0.0)),
            Just(Some(0.5)),
            Just(Some(1.0))
        ],
        proptest::option::of(prop_oneof![Just(Caller::Gateway), Just(Caller::Master)]),
    )
        .prop_map(
            |((target, kind), delay, forever, after, status, attempts, times, probability, via)| {
                let bedrock = target == FaultTarget::Bedrock;
                let mut f = Fault::new(target, kind);
                f.delay_ms = if kind.needs_delay() || (kind == FaultKind::Stall && !forever) {
                    Some(delay)
                } else {
                    None
                };
                f.status = (kind == FaultKind::Status).then_some(status);
                f.after_tokens = kind.takes_after_tokens().then_some(after);
                f.attempts = attempts.filter(|_| bedrock);
                f.times = times;
                f.probability = probability;
                f.via = via.filter(|_| bedrock);
                f
            },
        )
}

fn session(index: usize) -> impl Strategy<Value = Session> {
    let message = (
        ms(1_000),
        prop_oneof![2 => Just(None), 1 => ms(500).prop_map(Some)],
        prop_oneof![Just("Hello"), Just("  "), Just("How do I volunteer?")],
    );
    (
        0..TENANTS.len(),
        prop_oneof![3 => Just(true), 1 => Just(false)],
        ms(0),
        proptest::collection::vec(message, 1..=3),
    )
        .prop_map(move |(tenant, event_source, start_ms, messages)| Session {
            id: format!("s{index}"),
            tenant: TENANTS[tenant].into(),
            start_ms,
            event_source,
            origin: None,
            close_at_ms: None,
            messages: messages
                .into_iter()
                .enumerate()
                .map(|(i, (think_ms, at_ms, text))| Message {
                    id: format!("s{index}-m{i}"),
                    text: text.into(),
                    think_ms,
                    at_ms,
                })
                .collect(),
        })
}

fn limits() -> impl Strategy<Value = Limits> {
    (
        ms(30_000),
        count(10),
        ms(60_000),
        count(4_000),
        ms(5_000),
        prop_oneof![
            Just(0),
            Just(MIN_HEARTBEAT_MS),
            Just(15_000),
            Just(MAX_MS),
            MIN_HEARTBEAT_MS..=MAX_MS
        ],
    )
        .prop_map(
            |(max_stream_ms, rate_limit, rate_window_ms, max_input_chars, config_ttl_ms, hb)| {
                Limits {
                    max_stream_ms,
                    rate_limit,
                    rate_window_ms,
                    max_input_chars,
                    config_ttl_ms,
                    heartbeat_ms: hb,
                }
            },
        )
}

fn widget() -> impl Strategy<Value = WidgetSettings> {
    (
        ms(10_000),
        ms(15_000),
        ms(35_000),
        ms(30_000),
        prop_oneof![
            Just(MIN_RECONNECT_MS),
            Just(3_000),
            Just(MAX_MS),
            MIN_RECONNECT_MS..=MAX_MS
        ],
        any::<bool>(),
    )
        .prop_map(
            |(connect, idle, total, post, reconnect_ms, resume)| WidgetSettings {
                connect_timeout_ms: connect,
                idle_timeout_ms: idle,
                total_timeout_ms: total,
                post_timeout_ms: post,
                reconnect_ms,
                resume,
            },
        )
}

prop_compose! {
    fn valid_scenario()(
        seed in prop_oneof![Just(0u64), Just(1), Just(i64::MAX as u64), any::<u64>().prop_map(|s| s >> 1)],
        a in tenant(TENANTS[0]),
        b in tenant(TENANTS[1]),
        answer in answer(),
        faults in proptest::collection::vec(fault(), 0..=2),
        s0 in session(0),
        s1 in proptest::option::of(session(1)),
        limits in limits(),
        widget in widget(),
        as_written in any::<bool>(),
        change in proptest::option::of((ms(5_000), any::<bool>(), prop_oneof![Just(0.0f64), Just(100.0)])),
        close_at in proptest::option::of(ms(3_000)),
    ) -> Scenario {
        let mut sessions = vec![s0];
        sessions.extend(s1);
        sessions[0].close_at_ms = close_at;
        let config_changes = change
            .map(|(at_ms, all, p)| picasso_core::scenario::ConfigChange {
                at_ms,
                tenant: (!all).then(|| TENANTS[0].to_owned()),
                streaming_percentage: Some(p),
                streaming_enabled: all.then_some(false),
            })
            .into_iter()
            .collect();
        Scenario {
            name: "extreme".into(),
            description: String::new(),
            seed,
            models: Vec::new(),
            tenants: vec![a, b],
            answers: vec![answer],
            faults,
            sessions,
            limits,
            widget,
            rollout: None,
            servers: if as_written {
                picasso_core::scenario::Servers::AsWritten
            } else {
                picasso_core::scenario::Servers::Hardened
            },
            config_changes,
        }
    }
}

/// Every valid scenario, extremes included, runs to an end under every policy.
#[test]
fn every_valid_scenario_runs_to_an_end() {
    let mut runner = TestRunner::new(Config {
        cases: picasso_core::testing::proptest_cases(16),
        failure_persistence: None,
        max_shrink_iters: 100,
        ..Config::default()
    });
    let result = runner.run(&valid_scenario(), |scenario| {
        let problems = validate(&scenario);
        prop_assert!(problems.is_empty(), "validate refused: {problems:?}");
        // The file form is accepted too, so `picasso-sim run` would take it.
        let text = toml::to_string(&scenario).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(parse_scenario("generated.toml", &text).is_ok());
        for policy in [Policy::Corrected, Policy::AsWritten, Policy::NaiveFix] {
            // Returning at all is the property (no panic, no endless run); an `Err`
            // would be exit 2, neither pass nor fail.
            let outcome = run_scenario(&scenario, policy)
                .map_err(|e| TestCaseError::fail(format!("{}: {e}", policy.name())))?;
            // Every message is sent, unless the user closed the page first.
            for s in &scenario.sessions {
                let recorded = outcome.messages().filter(|(id, _)| *id == s.id).count();
                if s.close_at_ms.is_none() {
                    prop_assert_eq!(recorded, s.messages.len(), "session {}", s.id);
                } else {
                    prop_assert!(recorded <= s.messages.len(), "session {}", s.id);
                }
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// A scenario built in code that skips `validate`, every number at `u64::MAX`, is
/// refused by `validate` and still cannot panic the parts that combine its numbers:
/// the saturating arithmetic holds without the bounds.
#[test]
fn unvalidated_extremes_are_refused_and_do_not_overflow() {
    let mut s = Scenario::default_scenario();
    s.widget = WidgetSettings {
        connect_timeout_ms: u64::MAX,
        idle_timeout_ms: u64::MAX,
        total_timeout_ms: u64::MAX,
        post_timeout_ms: u64::MAX,
        reconnect_ms: u64::MAX,
        resume: true,
    };
    s.limits.max_stream_ms = u64::MAX;
    s.limits.rate_window_ms = u64::MAX;
    let problems = validate(&s);
    for field in [
        "widget.post_timeout_ms",
        "widget.total_timeout_ms",
        "limits.max_stream_ms",
    ] {
        assert!(
            problems.iter().any(|(p, _)| p == field),
            "{field} not refused: {problems:?}"
        );
    }
    // Run anyway: every sum of these timers saturates instead of overflowing.
    for policy in [Policy::Corrected, Policy::AsWritten, Policy::NaiveFix] {
        let outcome = run_scenario(&s, policy).expect("runs");
        assert!(outcome.messages().count() > 0);
    }
}
