//! Fuzz target: what mock Bedrock reads from outside — the operation path and model id,
//! the request bodies of the four operations (`src/request.rs`), the metadata and
//! attempt headers, and the `/__admin/` bodies (`PUT scenario`, `POST faults`).
//!
//! Inputs are structure-aware: valid Converse and Anthropic (InvokeModel) bodies, then
//! labelled defects (not JSON, not UTF-8, cut short, not an object, `messages`
//! missing, empty, of the wrong type, without a user message, a user message without
//! content, string-to-non-string `requestMetadata`, 100,000-deep nesting; a malformed
//! model id; an unknown action) and harmless changes (unknown fields, assistant turns,
//! non-text blocks, junk metadata and attempt headers). The label says what Bedrock
//! answers (`bedrock-wire.md` §6.1): `400 ValidationException` / `404
//! UnknownOperationException` with `x-amzn-errortype`, a request id and a JSON
//! `{"message"}`; or `200` with a JSON answer, or event-stream frames whose CRCs all
//! check. Admin bodies get `200` or `400` with the loader's diagnostics, never a `5xx`.
//! The router is called in-process with `oneshot` under a paused clock, each case
//! within 10 minutes of virtual time.
//!
//! Cases: `PICASSO_FUZZ_CASES` (default 500); `PROPTEST_RNG_SEED` replays a run.

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use axum::body::Body;
use bytes::BytesMut;
use http::{Request, StatusCode};
use mock_bedrock::MockState;
use picasso_core::Scenario;
use picasso_core::scenario::DEFAULT_SCENARIO_TOML;
use proptest::prelude::*;
use serde_json::{Value, json};
use std::time::Duration;
use tower::ServiceExt;

fn cases() -> u32 {
    picasso_core::testing::fuzz_cases(500)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        ..ProptestConfig::default()
    }
}

const BUDGET: Duration = Duration::from_secs(600);
const ACTIONS: [&str; 4] = [
    "invoke",
    "invoke-with-response-stream",
    "converse",
    "converse-stream",
];

/// The default scenario without its faults: the oracle is about the parsing.
fn scenario() -> Scenario {
    let mut s = Scenario::default_scenario();
    s.faults.clear();
    s
}

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime");
}

/// Calls a fresh mock with `request`: status, headers, whole body, within [`BUDGET`].
fn send(
    state: &MockState,
    request: Request<Body>,
) -> Result<(http::response::Parts, Vec<u8>), TestCaseError> {
    let app = mock_bedrock::app(state.clone());
    let answered = RUNTIME.with(|rt| {
        rt.block_on(async {
            tokio::time::timeout(BUDGET, async {
                let response = app.oneshot(request).await.unwrap_or_else(|e| match e {});
                let (parts, body) = response.into_parts();
                let mut bytes = Vec::new();
                let mut body = body.into_data_stream();
                while let Some(Ok(chunk)) = futures_util::StreamExt::next(&mut body).await {
                    bytes.extend_from_slice(&chunk);
                }
                (parts, bytes)
            })
            .await
        })
    });
    answered.map_err(|_| TestCaseError::fail("hang: no answer within the virtual-time budget"))
}

/// Bedrock's error shape: the status, `x-amzn-errortype` naming `code`, a request id,
/// and a JSON body with a `message`.
fn check_error(
    parts: &http::response::Parts,
    body: &[u8],
    status: StatusCode,
    code: &str,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(parts.status, status, "{}", String::from_utf8_lossy(body));
    let errortype = parts
        .headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    prop_assert_eq!(errortype.split(':').next(), Some(code));
    prop_assert!(parts.headers.contains_key("x-amzn-requestid"));
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| TestCaseError::fail(format!("error body not JSON: {e}")))?;
    prop_assert!(value["message"].as_str().is_some_and(|m| !m.is_empty()));
    Ok(())
}

/// A whole event stream: complete frames only, every CRC right, each an event.
fn check_event_stream(body: &[u8]) -> Result<(), TestCaseError> {
    let mut decoder = MessageFrameDecoder::new();
    let mut buffer = BytesMut::from(body);
    let mut frames = 0;
    while !buffer.is_empty() {
        match decoder.decode_frame(&mut buffer) {
            Ok(DecodedFrame::Complete(message)) => {
                frames += 1;
                let kind = message
                    .headers()
                    .iter()
                    .find(|h| h.name().as_str() == ":message-type")
                    .and_then(|h| h.value().as_string().ok())
                    .map(|s| s.as_str().to_owned());
                prop_assert_eq!(kind.as_deref(), Some("event"));
            }
            Ok(DecodedFrame::Incomplete) => return Err(TestCaseError::fail("a frame cut short")),
            Err(e) => return Err(TestCaseError::fail(format!("a bad frame: {e}"))),
        }
    }
    prop_assert!(frames >= 2, "{} frames", frames);
    Ok(())
}

#[derive(Debug, Clone)]
enum Model {
    Valid(&'static str),
    Malformed(String),
}

fn model() -> impl Strategy<Value = Model> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "anthropic.claude-3-haiku-20240307-v1:0",
            "us.anthropic.claude-3-5-sonnet-20240620-v1:0",
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile%2Fus.anthropic.claude-3-haiku-20240307-v1:0",
            "amazon.titan-text-express-v1",
            "m",
        ]).prop_map(Model::Valid),
        1 => prop_oneof![
            Just("has%20space".to_owned()),
            Just("%C3%A9t%C3%A9".to_owned()),
            Just("a%00b".to_owned()),
            Just("pipe%7Cmodel".to_owned()),
            Just("a".repeat(2049)),
            Just("%FF".to_owned()),
        ].prop_map(Model::Malformed),
    ]
}

/// A defect in a request body; each is a `ValidationException`.
#[derive(Debug, Clone)]
enum Defect {
    NotJson(String),
    NotUtf8,
    Truncate(usize),
    NotAnObject(Value),
    MessagesMissing,
    MessagesWrongType(Value),
    MessagesEmpty,
    NoUserMessage,
    UserContentMissing,
    UserContentWrongType(Value),
    /// Converse only: `requestMetadata` values must be strings.
    MetadataNotStrings(Value),
    DeepNesting,
}

fn defect() -> impl Strategy<Value = Defect> {
    let wrong = prop_oneof![
        Just(Value::Null),
        Just(json!(7)),
        Just(json!({"a": 1})),
        Just(json!(true))
    ];
    prop_oneof![
        prop_oneof![
            Just(String::new()),
            Just("not json".to_owned()),
            Just("{".to_owned()),
            Just("{}x".to_owned())
        ]
        .prop_map(Defect::NotJson),
        Just(Defect::NotUtf8),
        any::<usize>().prop_map(Defect::Truncate),
        prop_oneof![Just(json!([])), Just(json!("hi")), Just(json!(null))]
            .prop_map(Defect::NotAnObject),
        Just(Defect::MessagesMissing),
        prop_oneof![Just(json!("x")), Just(json!({})), Just(json!(1))]
            .prop_map(Defect::MessagesWrongType),
        Just(Defect::MessagesEmpty),
        Just(Defect::NoUserMessage),
        Just(Defect::UserContentMissing),
        wrong.clone().prop_map(Defect::UserContentWrongType),
        wrong.prop_map(Defect::MetadataNotStrings),
        Just(Defect::DeepNesting),
    ]
}

#[derive(Debug, Clone)]
struct Call {
    action: Option<usize>,
    model: Model,
    prompt: String,
    defect: Option<Defect>,
    history: bool,
    extra_blocks: bool,
    extra_field: bool,
    metadata_header: Option<String>,
    attempt_header: Option<String>,
}

fn call_case() -> impl Strategy<Value = Call> {
    (
        prop_oneof![9 => (0usize..4).prop_map(Some), 1 => Just(None)],
        model(),
        prop_oneof![Just("Hello".to_owned()), any::<String>()],
        prop::option::weighted(0.5, defect()),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::option::of(prop_oneof![
            Just("{\"message_id\":\"m1\"}".to_owned()),
            Just("[1]".to_owned()),
            "[ -~]{0,20}"
        ]),
        prop::option::of(prop_oneof![
            Just("attempt=2; max=3".to_owned()),
            "[ -~]{0,20}"
        ]),
    )
        .prop_map(
            |(
                action,
                model,
                prompt,
                defect,
                history,
                extra_blocks,
                extra_field,
                metadata_header,
                attempt_header,
            )| Call {
                action,
                model,
                prompt,
                defect,
                history,
                extra_blocks,
                extra_field,
                metadata_header,
                attempt_header,
            },
        )
}

impl Call {
    fn converse(&self) -> bool {
        matches!(self.action, Some(2 | 3))
    }

    fn body(&self) -> Vec<u8> {
        let converse = self.converse();
        let text_block = |t: &str| {
            if converse {
                json!({"text": t})
            } else {
                json!({"type": "text", "text": t})
            }
        };
        let mut content = vec![text_block(&self.prompt)];
        if self.extra_blocks {
            let other = if converse {
                json!({"image": {"format": "png"}})
            } else {
                json!({"type": "image"})
            };
            content.insert(0, other);
            content.push(text_block("more"));
        }
        let mut user = json!({"role": "user", "content": content});
        let mut messages = Vec::new();
        if self.history {
            messages.push(json!({"role": "user", "content": [text_block("before")]}));
            messages.push(json!({"role": "assistant", "content": [text_block("answer")]}));
        }
        match &self.defect {
            Some(Defect::UserContentMissing) => user = json!({"role": "user"}),
            Some(Defect::UserContentWrongType(v)) => user["content"] = v.clone(),
            _ => {}
        }
        messages.push(user);
        if let Some(Defect::NoUserMessage) = self.defect {
            messages = vec![json!({"role": "assistant", "content": [text_block("x")]})];
        }
        let mut body = if converse {
            json!({
                "messages": messages,
                "inferenceConfig": {"maxTokens": 100},
                "requestMetadata": {"tenant_hash": "t1", "session_id": "s1", "message_id": "m1", "caller": "gateway"},
            })
        } else {
            json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 100, "messages": messages})
        };
        if self.extra_field {
            body["additionalModelRequestFields"] = json!({"top_k": 5});
        }
        match &self.defect {
            Some(Defect::MessagesMissing) => {
                body.as_object_mut().expect("an object").remove("messages");
            }
            Some(Defect::MessagesWrongType(v)) => body["messages"] = v.clone(),
            Some(Defect::MessagesEmpty) => body["messages"] = json!([]),
            Some(Defect::MetadataNotStrings(v)) => {
                body["requestMetadata"] = json!({"tenant_hash": v})
            }
            _ => {}
        }
        let text = body.to_string();
        match &self.defect {
            Some(Defect::NotJson(s)) => s.clone().into_bytes(),
            Some(Defect::NotUtf8) => {
                let mut b = text.into_bytes();
                b.insert(b.len() / 2, 0xff);
                b
            }
            Some(Defect::Truncate(at)) => text.as_bytes()[..at % text.len()].to_vec(),
            Some(Defect::NotAnObject(v)) => v.to_string().into_bytes(),
            Some(Defect::DeepNesting) => format!(
                "{{\"messages\":{}{}}}",
                "[".repeat(100_000),
                "]".repeat(100_000)
            )
            .into_bytes(),
            _ => text.into_bytes(),
        }
    }

    /// Whether the body defect is one this operation refuses: the metadata is read
    /// from the body only by Converse (InvokeModel takes it from a header, leniently).
    fn refused(&self) -> bool {
        match &self.defect {
            None => false,
            Some(Defect::MetadataNotStrings(_)) => self.converse(),
            Some(_) => true,
        }
    }
}

/// A mutated admin body: the default scenario's text with a line changed.
fn scenario_text() -> impl Strategy<Value = Vec<u8>> {
    let lines = DEFAULT_SCENARIO_TOML.lines().count();
    (
        0..lines,
        prop_oneof![
            Just(None),
            Just(Some("".to_owned())),
            Just(Some("seed = -1".to_owned())),
            Just(Some("streaming_percentage = 140".to_owned())),
            Just(Some("[[tenants]]".to_owned())),
            Just(Some("kind = \"teleport\"".to_owned())),
            Just(Some("x = 1".to_owned())),
            Just(Some("\u{0}".to_owned())),
            ".{0,10}".prop_map(Some),
        ],
        any::<bool>(),
    )
        .prop_map(|(at, replacement, bad_utf8)| {
            let mut text: Vec<String> = DEFAULT_SCENARIO_TOML.lines().map(str::to_owned).collect();
            if let Some(r) = replacement {
                text[at] = r;
            }
            let mut bytes = (text.join("\n") + "\n").into_bytes();
            if bad_utf8 {
                bytes.insert(bytes.len().min(at * 7), 0xc3);
            }
            bytes
        })
}

/// What an armed fault is, as far as the contract goes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum FaultLabel {
    /// Deliverable at Bedrock.
    Ok,
    /// Not a fault at all (syntax, unknown field or kind, wrong type): `400`.
    Malformed,
    /// A fault for another place, or a kind Bedrock cannot deliver: `400`.
    NotForBedrock,
    /// A fault the scenario loader would refuse (a missing `delay_ms`, `times = 0`, a
    /// probability over 1, a field the kind does not take): `400` too.
    Inconsistent,
}

fn fault_body() -> impl Strategy<Value = (Value, FaultLabel)> {
    let base = prop_oneof![
        Just(json!({"where": "bedrock", "kind": "throttling"})),
        Just(json!({"where": "bedrock", "kind": "slow_first_token", "delay_ms": 500})),
        Just(json!({"where": "bedrock", "kind": "stall", "after_tokens": 2})),
        Just(
            json!({"where": "bedrock", "kind": "exception", "exception": "throttlingException", "after_tokens": 1})
        ),
        Just(json!({"where": "bedrock", "kind": "corrupt_frame", "message": "m1", "times": 2})),
        Just(json!({"where": "bedrock", "kind": "internal", "via": "master", "probability": 0.5})),
    ];
    let change = prop_oneof![
        3 => Just((None, FaultLabel::Ok)),
        1 => Just((Some(("where", json!("gateway"))), FaultLabel::NotForBedrock)),
        1 => Just((Some(("kind", json!("malformed_frame"))), FaultLabel::NotForBedrock)),
        1 => Just((Some(("kind", json!("teleport"))), FaultLabel::Malformed)),
        1 => Just((Some(("bogus", json!(1))), FaultLabel::Malformed)),
        1 => Just((Some(("delay_ms", json!(-1))), FaultLabel::Malformed)),
        1 => Just((Some(("times", json!("twice"))), FaultLabel::Malformed)),
        1 => Just((Some(("times", json!(0))), FaultLabel::Inconsistent)),
        1 => Just((Some(("probability", json!(2.5))), FaultLabel::Inconsistent)),
        1 => Just((Some(("status", json!(503))), FaultLabel::Inconsistent)),
        1 => Just((Some(("attempts", json!(0))), FaultLabel::Inconsistent)),
    ];
    (base, change).prop_map(|(mut fault, (change, label))| {
        if let Some((k, v)) = change {
            fault[k] = v;
        }
        (fault, label)
    })
}

proptest! {
    #![proptest_config(config())]

    /// The four operations: every defect is Bedrock's `ValidationException`, an unknown
    /// action its `UnknownOperationException`; a good call gets its whole answer.
    #[test]
    fn operation_requests_answer_per_contract(call in call_case()) {
        let state = MockState::new(scenario());
        let (model, model_ok) = match &call.model {
            Model::Valid(m) => (m.to_string(), true),
            Model::Malformed(m) => (m.clone(), false),
        };
        let action = call.action.map_or("Converse", |i| ACTIONS[i]);
        let mut request = Request::post(format!("/model/{model}/{action}")).header("content-type", "application/json");
        if let Some(h) = &call.metadata_header {
            request = request.header("x-amzn-bedrock-request-metadata", h.as_str());
        }
        if let Some(h) = &call.attempt_header {
            request = request.header("amz-sdk-request", h.as_str());
        }
        let (parts, body) = send(&state, request.body(Body::from(call.body())).expect("a valid request"))?;
        // A model id that is not UTF-8 once decoded fails the path itself, before the
        // action is looked at: a `400` whatever the action.
        let undecodable = matches!(&call.model, Model::Malformed(m) if m == "%FF");
        if call.action.is_none() && !undecodable {
            check_error(&parts, &body, StatusCode::NOT_FOUND, "UnknownOperationException")?;
        } else if !model_ok || call.refused() {
            check_error(&parts, &body, StatusCode::BAD_REQUEST, "ValidationException")?;
        } else if matches!(call.action, Some(1 | 3)) {
            prop_assert_eq!(parts.status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
            check_event_stream(&body)?;
        } else {
            prop_assert_eq!(parts.status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
            let value: Value = serde_json::from_slice(&body).map_err(|e| TestCaseError::fail(format!("{e}")))?;
            let text = if call.converse() {
                &value["output"]["message"]["content"][0]["text"]
            } else {
                &value["content"][0]["text"]
            };
            prop_assert!(text.as_str().is_some_and(|t| !t.is_empty()), "{}", value);
        }
    }

    /// `PUT /__admin/scenario`: `200` and the summary for a valid scenario, `400` with
    /// the loader's placed diagnostics for anything else, and the old scenario kept.
    #[test]
    fn admin_scenario_bodies_answer_200_or_400(text in scenario_text()) {
        let state = MockState::new(scenario());
        let request = Request::put("/__admin/scenario").body(Body::from(text.clone())).expect("a valid request");
        let (parts, body) = send(&state, request)?;
        let expected = std::str::from_utf8(&text).ok().map(|t| picasso_core::parse_scenario("<admin>", t));
        match expected {
            Some(Ok(s)) => {
                prop_assert_eq!(parts.status, StatusCode::OK);
                let v: Value = serde_json::from_slice(&body).map_err(|e| TestCaseError::fail(format!("{e}")))?;
                prop_assert_eq!(v["faults"].as_u64(), Some(s.faults.len() as u64));
                prop_assert_eq!(&*state.scenario(), &s);
            }
            Some(Err(_)) | None => {
                prop_assert_eq!(parts.status, StatusCode::BAD_REQUEST);
                let text = String::from_utf8_lossy(&body);
                prop_assert!(text.starts_with("<admin>:") || text.contains("UTF-8"), "{}", text);
                prop_assert_eq!(&*state.scenario(), &scenario());
            }
        }
    }

    /// `POST /__admin/faults`: `200` and the count for a fault Bedrock can deliver; `400`
    /// for anything else, nothing armed.
    #[test]
    fn admin_fault_bodies_answer_200_or_400((fault, label) in fault_body(), garble in prop::option::weighted(0.1, any::<usize>())) {
        let state = MockState::new(scenario());
        let mut bytes = fault.to_string().into_bytes();
        let label = match garble {
            Some(at) => {
                bytes.truncate(at % bytes.len());
                FaultLabel::Malformed
            }
            None => label,
        };
        let request = Request::post("/__admin/faults").body(Body::from(bytes)).expect("a valid request");
        let (parts, body) = send(&state, request)?;
        if label == FaultLabel::Ok {
            prop_assert_eq!(parts.status, StatusCode::OK, "{} {}", fault, String::from_utf8_lossy(&body));
            let v: Value = serde_json::from_slice(&body).map_err(|e| TestCaseError::fail(format!("{e}")))?;
            prop_assert_eq!(v["armed"].as_u64(), Some(1));
        } else {
            prop_assert_eq!(parts.status, StatusCode::BAD_REQUEST, "{:?} {} {}", label, fault, String::from_utf8_lossy(&body));
        }
    }
}

/// The deepest body alone: serde_json's depth limit makes it a `400`, not a stack overflow.
#[test]
fn a_body_nested_100000_deep_is_a_validation_error() {
    let body = format!(
        "{{\"messages\":{}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let state = MockState::new(scenario());
    let request = Request::post("/model/m/converse")
        .body(Body::from(body))
        .expect("a valid request");
    let (parts, _) = send(&state, request).expect("an answer");
    assert_eq!(parts.status, StatusCode::BAD_REQUEST);
}
