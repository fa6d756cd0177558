//! Tenant isolation: kept answers, `Last-Event-ID` replays, joins and the rate limit
//! are keyed by tenant, so no id, origin or `Last-Event-ID` a client sends gets it a
//! byte of another tenant's answer. In-process under a paused clock; the same paths
//! over loopback are in `tests/tests/isolation.rs`.

use crate::testing::*;
use futures_util::future::join_all;
use http::{Request, StatusCode};
use picasso_core::Scenario;
use proptest::prelude::*;
use std::time::Duration;

/// A second streaming tenant for the isolation tests: the default scenario's Foster
/// Village, copied under another hash with its own origin and its own answer.
fn two_tenants() -> Scenario {
    let mut s = Scenario::default_scenario();
    let mut other = s.tenant(FOSTER).unwrap().clone();
    other.hash = OTHER.into();
    other.allowed_origins = vec!["https://b.example".into()];
    s.tenants.push(other);
    let mut answer = s.answers[0].clone();
    answer.id = "b-answer".into();
    answer.prompt = Some("hello b".into());
    answer.pattern = None;
    answer.text = None;
    answer.pacing = None;
    answer.usage = None;
    answer.tokens = vec![picasso_core::scenario::Token {
        text: "BBB only".into(),
        delay_ms: 10,
    }];
    s.answers.insert(0, answer);
    s
}

const OTHER: &str = "tenantb";

fn with_headers(mut r: Request<axum::body::Body>, h: &[(&str, &str)]) -> Request<axum::body::Body> {
    for (k, v) in h {
        r.headers_mut().insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    r
}

/// Tenant B sending tenant A's session and message ids, with and without a
/// `Last-Event-ID`, from B's own origin: a new answer of its own every time, never A's.
#[tokio::test(start_paused = true)]
async fn another_tenants_ids_never_reach_its_answer() {
    let w = world(two_tenants());
    let a = data(&chunks(w.call(stream_request(FOSTER, "s1", "m1", "Hello")).await).await);
    assert_eq!(a, HELLO);
    for last_event_id in [None, Some("m1:0"), Some("m1:4")] {
        let mut h = vec![("origin", "https://b.example")];
        if let Some(id) = last_event_id {
            h.push(("last-event-id", id));
        }
        let r = w
            .call(with_headers(
                stream_request(OTHER, "s1", "m1", "hello b"),
                &h,
            ))
            .await;
        let status = r.status();
        let body = chunks(r).await.concat();
        assert!(
            !body.contains("Hello") && !body.contains("help?"),
            "{last_event_id:?}: {body}"
        );
        match last_event_id {
            // B's first request for its own m1 is B's answer.
            None => {
                assert_eq!(status, StatusCode::OK);
                assert!(body.contains("BBB only"), "{body}");
            }
            // A resume of B's m1 replays B's answer, or 204 after B's end.
            Some("m1:0") => {
                assert_eq!(status, StatusCode::OK);
                assert!(body.contains("id: m1:1\n"), "{body}");
                assert!(!body.contains("BBB only"), "seq 0 is not replayed: {body}");
            }
            Some(_) => assert_eq!(status, StatusCode::NO_CONTENT, "{body}"),
        }
    }
    let journal = w.bedrock.journal();
    assert_eq!(journal.len(), 2, "one Bedrock call per tenant's message");
    assert_eq!(journal[1].tenant.as_deref(), Some(OTHER));
}

/// A resume from tenant B for a message only tenant A has: `204`, nothing replayed,
/// and no Bedrock call.
#[tokio::test(start_paused = true)]
async fn a_resume_of_another_tenants_message_replays_nothing() {
    let w = world(two_tenants());
    chunks(w.call(stream_request(FOSTER, "s1", "m1", "Hello")).await).await;
    let r = w
        .call(with_headers(
            stream_request(OTHER, "s1", "m1", "Hello"),
            &[("origin", "https://b.example"), ("last-event-id", "m1:0")],
        ))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(chunks(r).await.concat().is_empty());
    assert_eq!(w.bedrock.journal().len(), 1);
}

/// While tenant A's answer streams, tenant B with the same ids does not join it.
#[tokio::test(start_paused = true)]
async fn a_join_while_streaming_stays_within_the_tenant() {
    let w = world(two_tenants());
    let a = w.call(stream_request(FOSTER, "s1", "m1", "Hello")).await;
    let b = w
        .call(with_headers(
            stream_request(OTHER, "s1", "m1", "Hello"),
            &[("origin", "https://b.example")],
        ))
        .await;
    let (a, b) = tokio::join!(chunks(a), chunks(b));
    assert_eq!(data(&a), HELLO);
    // B asked "Hello" too, so Bedrock answers it the same text: what matters is that
    // it was B's own call, not a join of A's.
    assert_eq!(data(&b), HELLO);
    let journal = w.bedrock.journal();
    assert_eq!(journal.len(), 2);
    let tenants: Vec<_> = journal.iter().map(|e| e.tenant.clone().unwrap()).collect();
    assert!(tenants.contains(&FOSTER.to_owned()) && tenants.contains(&OTHER.to_owned()));
}

/// The rate limit counts a session within its tenant: tenant A's ten requests do not
/// limit tenant B's session of the same id.
#[tokio::test(start_paused = true)]
async fn rate_limits_are_per_tenant_session() {
    let w = world(two_tenants());
    for i in 0..10 {
        let r = w
            .call(stream_request(FOSTER, "s1", &format!("m{i}"), "Hello"))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        chunks(r).await;
    }
    let r = w.call(stream_request(FOSTER, "s1", "m10", "Hello")).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let r = w
        .call(with_headers(
            stream_request(OTHER, "s1", "m10", "hello b"),
            &[("origin", "https://b.example")],
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(chunks(r).await.concat().contains("BBB only"));
}

/// One request of the property test below.
#[derive(Debug, Clone)]
struct Op {
    tenant_b: bool,
    session: u8,
    message: u8,
    last_event_id: Option<(u8, u8)>,
    origin: OriginChoice,
    delay_ms: u64,
}

#[derive(Debug, Clone, Copy)]
enum OriginChoice {
    Own,
    Others,
    None,
}

fn op() -> impl Strategy<Value = Op> {
    (
        any::<bool>(),
        0u8..2,
        0u8..2,
        proptest::option::of((0u8..2, 0u8..6)),
        prop_oneof![
            Just(OriginChoice::Own),
            Just(OriginChoice::Others),
            Just(OriginChoice::None)
        ],
        0u64..1_500,
    )
        .prop_map(
            |(tenant_b, session, message, last_event_id, origin, delay_ms)| Op {
                tenant_b,
                session,
                message,
                last_event_id,
                origin,
                delay_ms,
            },
        )
}

fn cases() -> u32 {
    picasso_core::testing::proptest_cases(32)
}

/// Runs `ops` at their virtual start times against one gateway; each response's whole
/// body, by tenant (`true`: tenant B).
fn run_ops(ops: &[Op]) -> Vec<(bool, StatusCode, String)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut scenario = two_tenants();
        scenario.limits.rate_limit = 1_000;
        let w = world(scenario);
        let calls = ops.iter().map(|op| {
            let w = w.clone();
            let op = op.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(op.delay_ms)).await;
                let (tenant, input, own, others) = if op.tenant_b {
                    (
                        OTHER,
                        "hello b",
                        "https://b.example",
                        "https://fostervillage.org",
                    )
                } else {
                    (
                        FOSTER,
                        "Hello",
                        "https://fostervillage.org",
                        "https://b.example",
                    )
                };
                let mut h = Vec::new();
                match op.origin {
                    OriginChoice::Own => h.push(("origin", own.to_owned())),
                    OriginChoice::Others => h.push(("origin", others.to_owned())),
                    OriginChoice::None => {}
                }
                if let Some((m, seq)) = op.last_event_id {
                    h.push(("last-event-id", format!("m{m}:{seq}")));
                }
                let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let request = with_headers(
                    stream_request(
                        tenant,
                        &format!("s{}", op.session),
                        &format!("m{}", op.message),
                        input,
                    ),
                    &h,
                );
                let response = w.call(request).await;
                let status = response.status();
                (op.tenant_b, status, chunks(response).await.concat())
            }
        });
        let out = join_all(calls).await;
        w.gateway.shutdown();
        w.gateway.wait_for_generations().await;
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// For any interleaving of two tenants' requests with colliding session and
    /// message ids, resumes and origins, no frame of one tenant's answer reaches the
    /// other.
    #[test]
    fn no_frame_of_one_tenants_answer_reaches_the_other(ops in proptest::collection::vec(op(), 1..16)) {
        for (tenant_b, status, body) in run_ops(&ops) {
            if tenant_b {
                prop_assert!(!body.contains("Hello") && !body.contains("help?"), "B got A's text ({status}): {body}");
            } else {
                prop_assert!(!body.contains("BBB"), "A got B's text ({status}): {body}");
            }
        }
    }
}

/// The markers the property looks for are really in each tenant's answer, so a leak
/// would show (with the tenant dropped from `MessageKey`, the property fails at once).
#[test]
fn each_tenants_answer_carries_its_marker() {
    let a = Op {
        tenant_b: false,
        session: 0,
        message: 0,
        last_event_id: None,
        origin: OriginChoice::Own,
        delay_ms: 0,
    };
    let b = Op {
        tenant_b: true,
        session: 1,
        ..a.clone()
    };
    let out = run_ops(&[a, b]);
    assert_eq!(out[0].1, StatusCode::OK);
    assert!(out[0].2.contains("Hello"), "{}", out[0].2);
    assert_eq!(out[1].1, StatusCode::OK);
    assert!(out[1].2.contains("BBB only"), "{}", out[1].2);
}
