//! Property: any valid scenario, written out as TOML, parses back to the same value.

use picasso_core::parse_scenario;
use picasso_core::scenario::*;
use proptest::prelude::*;

fn tenant(i: usize) -> impl Strategy<Value = Tenant> {
    (
        "[a-z0-9]{1,20}",
        any::<bool>(),
        prop_oneof![Just(0.0), Just(100.0), 0.0..=100.0f64],
        proptest::collection::vec("https://[a-z]{1,10}\\.(org|com)(:[0-9]{2,4})?", 0..3),
        ".{0,12}",
    )
        .prop_map(
            move |(hash, streaming_enabled, streaming_percentage, allowed_origins, name)| Tenant {
                hash: format!("{hash}{i}"),
                name,
                streaming_enabled,
                streaming_percentage,
                streaming_model: DEFAULT_MODEL.into(),
                allowed_origins,
            },
        )
}

fn answer(i: usize) -> impl Strategy<Value = Answer> {
    let body = prop_oneof![
        proptest::collection::vec((".{1,8}", 0..5000u64), 1..6).prop_map(|ts| (
            ts.into_iter()
                .map(|(text, delay_ms)| Token { text, delay_ms })
                .collect(),
            None,
            None
        )),
        (".{1,40}", proptest::option::of((0..5000u64, 0..500u64))).prop_map(|(text, pacing)| {
            (
                Vec::new(),
                Some(text),
                pacing.map(|(first_token_ms, gap_ms)| Pacing {
                    first_token_ms,
                    gap_ms,
                }),
            )
        }),
    ];
    let matcher = prop_oneof![
        Just((None, None)),
        ".{0,20}".prop_map(|p| (Some(p), None)),
        "[a-z]{1,8}".prop_map(|p| (None, Some(p))),
    ];
    (
        body,
        matcher,
        proptest::option::of((0..1000u32, 0..1000u32)),
        0..3usize,
    )
        .prop_map(
            move |((tokens, text, pacing), (prompt, pattern), usage, stop)| Answer {
                id: format!("a{i}"),
                model: None,
                prompt,
                pattern,
                tokens,
                text,
                pacing,
                usage: usage.map(|(input_tokens, output_tokens)| Usage {
                    input_tokens,
                    output_tokens,
                }),
                stop_reason: [
                    StopReason::EndTurn,
                    StopReason::MaxTokens,
                    StopReason::StopSequence,
                ][stop],
            },
        )
}

fn fault(tenants: Vec<String>, messages: Vec<(String, String)>) -> impl Strategy<Value = Fault> {
    let targets = [
        FaultTarget::Bedrock,
        FaultTarget::MasterConfig,
        FaultTarget::MasterChat,
        FaultTarget::Gateway,
        FaultTarget::Network,
    ];
    (
        0..targets.len(),
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        proptest::option::of(0.0..=1.0f64),
        0..20u32,
        0..3u32,
        any::<bool>(),
    )
        .prop_map(move |(t, k, who, probability, n, times, pick_message)| {
            let target = targets[t];
            let kinds: Vec<FaultKind> = FaultKind::ALL
                .into_iter()
                .filter(|k| k.allowed_at(target))
                .collect();
            let kind = kinds[k.index(kinds.len())];
            let mut f = Fault::new(target, kind);
            if kind.needs_delay() || (kind == FaultKind::Stall && n % 2 == 0) {
                f.delay_ms = Some(u64::from(n) * 100);
            }
            if kind == FaultKind::Status {
                f.status = Some(400 + (n as u16 * 7) % 200);
            }
            if kind.takes_after_tokens() {
                f.after_tokens = Some(n % 5);
            }
            if target == FaultTarget::Bedrock && n % 3 == 0 {
                f.attempts = Some(1 + n % 2);
                f.via = Some(Caller::Gateway);
            }
            f.probability = probability;
            f.times = (times > 0).then_some(times);
            if pick_message && !messages.is_empty() {
                let (session, message) = &messages[who.index(messages.len())];
                f.session = Some(session.clone());
                f.message = Some(message.clone());
            } else if !tenants.is_empty() && n % 2 == 1 {
                f.tenant = Some(tenants[who.index(tenants.len())].clone());
            }
            f
        })
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (1..4usize, 0..4usize, 0..i64::MAX as u64)
        .prop_flat_map(|(n_tenants, n_answers, seed)| {
            let tenants: Vec<_> = (0..n_tenants).map(tenant).collect();
            let answers: Vec<_> = (0..n_answers).map(answer).collect();
            (tenants, answers, Just(seed))
        })
        .prop_flat_map(|(tenants, answers, seed)| {
            let hashes: Vec<String> = tenants.iter().map(|t| t.hash.clone()).collect();
            let sessions = proptest::collection::vec(
                (
                    any::<prop::sample::Index>(),
                    proptest::collection::vec(
                        (".{0,30}", 0..5000u64, proptest::option::of(0..9000u64)),
                        0..4,
                    ),
                    0..1000u64,
                    any::<bool>(),
                ),
                0..4,
            )
            .prop_map(move |raw| {
                raw.into_iter()
                    .enumerate()
                    .map(|(i, (t, msgs, start_ms, event_source))| Session {
                        id: format!("s{i}"),
                        tenant: hashes[t.index(hashes.len())].clone(),
                        start_ms,
                        event_source,
                        origin: None,
                        close_at_ms: None,
                        messages: msgs
                            .into_iter()
                            .enumerate()
                            .map(|(j, (text, think_ms, at_ms))| Message {
                                id: format!("s{i}m{j}"),
                                text,
                                think_ms,
                                at_ms,
                            })
                            .collect(),
                    })
                    .collect::<Vec<_>>()
            });
            (Just(tenants), Just(answers), sessions, Just(seed))
        })
        .prop_flat_map(|(tenants, answers, sessions, seed)| {
            let hashes: Vec<String> = tenants.iter().map(|t| t.hash.clone()).collect();
            let messages: Vec<(String, String)> = sessions
                .iter()
                .flat_map(|s: &Session| {
                    s.messages.iter().map(move |m| (s.id.clone(), m.id.clone()))
                })
                .collect();
            let faults = proptest::collection::vec(fault(hashes.clone(), messages), 0..4);
            let rollout = proptest::option::of(Just(Rollout {
                tenant: hashes[0].clone(),
                steps: vec![0.0, 10.0, 50.0, 100.0],
                sessions_per_step: 50,
                messages_per_session: 2,
            }));
            (
                Just(tenants),
                Just(answers),
                Just(sessions),
                faults,
                rollout,
                Just(seed),
                (
                    any::<bool>(),
                    proptest::collection::vec("[a-z]{2,8}\\.[a-z0-9-]{2,12}(:[0-9])?", 0..3),
                    any::<bool>(),
                ),
            )
        })
        .prop_map(
            |(tenants, answers, sessions, faults, rollout, seed, (resume, models, as_written))| {
                Scenario {
                    name: "generated".into(),
                    description: String::new(),
                    seed,
                    models,
                    tenants,
                    answers,
                    faults,
                    sessions,
                    limits: Limits::default(),
                    widget: WidgetSettings {
                        resume,
                        ..WidgetSettings::default()
                    },
                    rollout,
                    servers: if as_written {
                        picasso_core::scenario::Servers::AsWritten
                    } else {
                        picasso_core::scenario::Servers::Hardened
                    },
                    // A full rollback at a time drawn from the seed.
                    config_changes: if as_written {
                        vec![picasso_core::scenario::ConfigChange {
                            at_ms: seed % 100_000,
                            tenant: None,
                            streaming_percentage: Some(0.0),
                            streaming_enabled: Some(false),
                        }]
                    } else {
                        Vec::new()
                    },
                }
            },
        )
}

proptest! {
    // Cases: 256 (cheap), or PICASSO_PROPTEST_CASES.
    #![proptest_config(ProptestConfig::with_cases(picasso_core::testing::proptest_cases(256)))]

    #[test]
    fn scenarios_survive_a_toml_round_trip(s in scenario()) {
        let text = toml::to_string(&s).expect("serializes");
        let back = parse_scenario("generated.toml", &text).map_err(|e| TestCaseError::fail(format!("{e}\n---\n{text}")))?;
        prop_assert_eq!(back, s);
    }
}
