//! The router driven in-process (no socket), under tokio's paused clock, the way
//! the simulator drives it.

use crate::{JournalEntry, MockState, Outcome, app};
use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use axum::body::Body;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use picasso_core::Scenario;
use picasso_core::scenario::{Answer, Fault, FaultKind, FaultTarget, Pacing};
use tokio::time::{Duration, Instant};
use tower::ServiceExt;

const MODEL: &str = "anthropic.claude-3-haiku-20240307-v1:0";

fn scenario() -> Scenario {
    let mut s = Scenario::default_scenario();
    s.answers.insert(
        0,
        Answer {
            id: "hi".into(),
            model: None,
            prompt: Some("Hi".into()),
            pattern: None,
            tokens: Vec::new(),
            text: Some("Hello there friend".into()),
            pacing: Some(Pacing {
                first_token_ms: 100,
                gap_ms: 20,
            }),
            usage: None,
            stop_reason: Default::default(),
        },
    );
    s.faults.clear();
    s
}

fn converse_body(prompt: &str, message: &str) -> String {
    serde_json::json!({
        "messages": [{"role": "user", "content": [{"text": prompt}]}],
        "requestMetadata": {"tenant_hash": "t1", "session_id": "s1", "message_id": message, "caller": "gateway"},
    })
    .to_string()
}

fn post(path: &str, body: String) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap()
}

fn stream_path(model: &str) -> String {
    format!("/model/{model}/converse-stream")
}

async fn call(state: &MockState, request: Request<Body>) -> http::Response<Body> {
    app(state.clone()).oneshot(request).await.unwrap()
}

/// Reads a whole event-stream body, noting when each frame arrived.
async fn frames(body: Body) -> Vec<(Duration, String, serde_json::Value)> {
    let start = Instant::now();
    let mut stream = body.into_data_stream();
    let mut decoder = MessageFrameDecoder::new();
    let mut buffer = BytesMut::new();
    let mut out = Vec::new();
    while let Some(Ok(chunk)) = stream.next().await {
        buffer.extend_from_slice(&chunk);
        while let Ok(DecodedFrame::Complete(m)) = decoder.decode_frame(&mut buffer) {
            let kind = m
                .headers()
                .iter()
                .find(|h| matches!(h.name().as_str(), ":event-type" | ":exception-type"))
                .map(|h| h.value().as_string().unwrap().as_str().to_owned())
                .unwrap_or_default();
            let payload = serde_json::from_slice(m.payload()).unwrap_or_default();
            out.push((start.elapsed(), kind, payload));
        }
    }
    out
}

fn last(state: &MockState) -> JournalEntry {
    state.journal().pop().unwrap()
}

#[tokio::test(start_paused = true)]
async fn converse_stream_paces_tokens_at_their_scripted_times() {
    let state = MockState::new(scenario());
    let response = call(&state, post(&stream_path(MODEL), converse_body("Hi", "m1"))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.amazon.eventstream"
    );
    assert!(response.headers().contains_key("x-amzn-requestid"));
    let got = frames(response.into_body()).await;
    let deltas: Vec<(u128, &str)> = got
        .iter()
        .filter(|(_, kind, _)| kind == "contentBlockDelta")
        .map(|(at, _, p)| (at.as_millis(), p["delta"]["text"].as_str().unwrap()))
        .collect();
    assert_eq!(deltas, [(100, "Hello"), (120, " there"), (140, " friend")]);
    let kinds: Vec<&str> = got.iter().map(|(_, k, _)| k.as_str()).collect();
    assert_eq!(kinds.last(), Some(&"metadata"));
    assert_eq!(got.last().unwrap().2["metrics"]["latencyMs"], 140);
    let entry = last(&state);
    assert_eq!(entry.outcome, Outcome::Completed);
    assert_eq!(entry.tokens_sent, 3);
    assert_eq!(entry.prompt, "Hi");
    assert_eq!(entry.message.as_deref(), Some("m1"));
    assert_eq!(entry.answer.as_deref(), Some("hi"));
}

#[tokio::test(start_paused = true)]
async fn arns_with_encoded_slashes_stay_one_model_id() {
    let state = MockState::new(scenario());
    let arn = "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.x";
    let response = call(
        &state,
        post(&format!("/model/{arn}/converse"), converse_body("Hi", "m")),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(
        body["output"]["message"]["content"][0]["text"],
        "Hello there friend"
    );
    assert_eq!(
        last(&state).model,
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.x"
    );
}

#[tokio::test(start_paused = true)]
async fn unknown_operations_and_bad_bodies_get_bedrocks_errors() {
    let state = MockState::new(scenario());
    for (request, status, code) in [
        (
            post("/model/m.x/chat", "{}".into()),
            404,
            "UnknownOperationException",
        ),
        (
            post("/nothing/here", "{}".into()),
            404,
            "UnknownOperationException",
        ),
        (
            Request::get("/model/m.x/converse")
                .body(Body::empty())
                .unwrap(),
            404,
            "UnknownOperationException",
        ),
        (
            post("/model/m.x/converse", "{".into()),
            400,
            "ValidationException",
        ),
        (
            post("/model/m.x/invoke", "{}".into()),
            400,
            "ValidationException",
        ),
        (
            post("/model/bad%20id/converse", converse_body("Hi", "m")),
            400,
            "ValidationException",
        ),
    ] {
        let response = call(&state, request).await;
        assert_eq!(response.status().as_u16(), status);
        let errortype = response.headers()["x-amzn-errortype"].to_str().unwrap();
        assert!(errortype.starts_with(code), "{errortype}");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(body["message"].is_string());
    }
    let journal = state.journal();
    assert_eq!(
        journal.len(),
        3,
        "only requests that reached an operation are journaled"
    );
    assert!(journal.iter().all(|e| e.outcome == Outcome::Refused));
}

/// With a model catalogue in the scenario, an id outside it gets what Bedrock gives
/// for a model it does not have; listed ids, and inference profiles of them, answer.
#[tokio::test(start_paused = true)]
async fn models_outside_the_catalogue_are_invalid() {
    let mut s = scenario();
    s.models = vec!["amazon.nova-lite-v1:0".into()];
    let state = MockState::new(s);
    let response = call(
        &state,
        post(
            "/model/anthropic.claude-nope-v9%3A0/converse",
            converse_body("Hi", "m1"),
        ),
    )
    .await;
    assert_eq!(response.status().as_u16(), 400);
    assert!(
        response.headers()["x-amzn-errortype"]
            .to_str()
            .unwrap()
            .starts_with("ValidationException")
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["message"], "The provided model identifier is invalid.");
    for model in ["amazon.nova-lite-v1%3A0", "us.amazon.nova-lite-v1%3A0"] {
        let response = call(
            &state,
            post(
                &format!("/model/{model}/converse"),
                converse_body("Hi", "m2"),
            ),
        )
        .await;
        assert_eq!(response.status().as_u16(), 200, "{model}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_same_requests_give_the_same_bytes() {
    async fn run() -> Vec<Bytes> {
        let state = MockState::new(scenario());
        let mut out = Vec::new();
        for (path, prompt) in [
            (stream_path(MODEL), "Hi"),
            (
                format!("/model/{MODEL}/invoke-with-response-stream"),
                "Hello",
            ),
        ] {
            let body = if path.ends_with("invoke-with-response-stream") {
                serde_json::json!({"messages": [{"role": "user", "content": prompt}]}).to_string()
            } else {
                converse_body(prompt, "m")
            };
            let response = call(&state, post(&path, body)).await;
            out.push(Bytes::from(format!("{:?}", response.headers())));
            out.push(response.into_body().collect().await.unwrap().to_bytes());
        }
        out
    }
    assert_eq!(run().await, run().await);
}

#[tokio::test(start_paused = true)]
async fn a_slow_first_token_and_a_finite_stall_shift_the_tokens() {
    let state = MockState::new(scenario());
    let mut slow = Fault::new(FaultTarget::Bedrock, FaultKind::SlowFirstToken);
    slow.delay_ms = Some(1000);
    state.arm(slow).unwrap();
    let got = frames(
        call(&state, post(&stream_path(MODEL), converse_body("Hi", "m")))
            .await
            .into_body(),
    )
    .await;
    assert_eq!(got[1].0.as_millis(), 1100);
    let mut stall = Fault::new(FaultTarget::Bedrock, FaultKind::Stall);
    stall.delay_ms = Some(5000);
    stall.after_tokens = Some(1);
    state.arm(stall).unwrap();
    let got = frames(
        call(&state, post(&stream_path(MODEL), converse_body("Hi", "m")))
            .await
            .into_body(),
    )
    .await;
    let times: Vec<u128> = got.iter().map(|(at, _, _)| at.as_millis()).collect();
    assert_eq!(&times[1..4], &[100, 5120, 5140]);
    let journal = state.journal();
    assert_eq!(journal[1].fault.as_deref(), Some("bedrock/stall"));
    assert_eq!(journal[1].outcome, Outcome::Fault);
}

#[tokio::test(start_paused = true)]
async fn a_client_that_leaves_is_journaled_as_cut_short() {
    let state = MockState::new(scenario());
    let response = call(&state, post(&stream_path(MODEL), converse_body("Hi", "m"))).await;
    let mut body = response.into_body().into_data_stream();
    let _opening = body.next().await;
    let _first = body.next().await;
    drop(body);
    let entry = last(&state);
    assert_eq!(entry.outcome, Outcome::CutShort);
    assert_eq!(entry.tokens_sent, 1);
}

#[tokio::test(start_paused = true)]
async fn exception_frames_come_after_the_scripted_tokens() {
    let state = MockState::new(scenario());
    let mut f = Fault::new(FaultTarget::Bedrock, FaultKind::Exception);
    f.after_tokens = Some(2);
    f.exception = Some("ThrottlingException".into());
    state.arm(f).unwrap();
    let got = frames(
        call(&state, post(&stream_path(MODEL), converse_body("Hi", "m")))
            .await
            .into_body(),
    )
    .await;
    let kinds: Vec<&str> = got.iter().map(|(_, k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "messageStart",
            "contentBlockDelta",
            "contentBlockDelta",
            "throttlingException"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_drop_breaks_the_body_mid_frame() {
    let state = MockState::new(scenario());
    let mut f = Fault::new(FaultTarget::Bedrock, FaultKind::Drop);
    f.after_tokens = Some(1);
    state.arm(f).unwrap();
    let response = call(&state, post(&stream_path(MODEL), converse_body("Hi", "m"))).await;
    let mut stream = response.into_body().into_data_stream();
    let mut results = Vec::new();
    while let Some(item) = stream.next().await {
        results.push(item.is_ok());
    }
    // opening, one token, half a frame, then the error.
    assert_eq!(results, [true, true, true, false]);
    assert_eq!(last(&state).outcome, Outcome::Fault);
}

#[tokio::test(start_paused = true)]
async fn scenario_faults_filter_on_request_metadata() {
    let mut s = scenario();
    let mut f = Fault::new(FaultTarget::Bedrock, FaultKind::Throttling);
    f.message = Some("m-bad".into());
    s.faults.push(f);
    let state = MockState::new(s);
    let ok = call(
        &state,
        post(&stream_path(MODEL), converse_body("Hi", "m-good")),
    )
    .await;
    assert_eq!(ok.status(), StatusCode::OK);
    let refused = call(
        &state,
        post(&stream_path(MODEL), converse_body("Hi", "m-bad")),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(start_paused = true)]
async fn admin_replaces_the_scenario_arms_faults_and_resets() {
    let state = MockState::new(scenario());
    let toml = "name = \"tiny\"\n[[tenants]]\nhash = \"t1\"\n\n[[answers]]\nid = \"only\"\ntext = \"Only this\"\n";
    let response = call(
        &state,
        Request::put("/__admin/scenario")
            .body(Body::from(toml))
            .unwrap(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(state.scenario().name, "tiny");
    let response = call(
        &state,
        Request::put("/__admin/scenario")
            .body(Body::from("nope = 1"))
            .unwrap(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let text = response.into_body().collect().await.unwrap().to_bytes();
    assert!(
        String::from_utf8_lossy(&text).contains("<admin>:"),
        "{text:?}"
    );

    let fault = r#"{"where":"bedrock","kind":"internal"}"#;
    let response = call(&state, post("/__admin/faults", fault.into())).await;
    assert_eq!(response.status(), StatusCode::OK);
    let bad = r#"{"where":"gateway","kind":"drop"}"#;
    assert_eq!(
        call(&state, post("/__admin/faults", bad.into()))
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    let response = call(
        &state,
        post(&format!("/model/{MODEL}/converse"), converse_body("x", "m")),
    )
    .await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);

    let response = call(
        &state,
        Request::get("/__admin/requests")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let journal: serde_json::Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(journal[0]["outcome"], "fault");
    assert_eq!(journal[0]["fault"], "bedrock/internal");

    // Queried by tenant, session and message (converse_body sends tenant "t1").
    let filtered = |q: &'static str| {
        let state = state.clone();
        async move {
            let response = call(&state, Request::get(q).body(Body::empty()).unwrap()).await;
            let status = response.status();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (
                status,
                serde_json::from_slice::<serde_json::Value>(&bytes).ok(),
            )
        }
    };
    let all = journal.as_array().unwrap().len();
    let (status, mine) = filtered("/__admin/requests?tenant=t1&message=m").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(mine.unwrap().as_array().unwrap().len(), all);
    let (_, none) = filtered("/__admin/requests?tenant=other&message=m").await;
    assert_eq!(none.unwrap(), serde_json::json!([]));
    let (status, _) = filtered("/__admin/requests?tenants=t1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let response = call(&state, post("/__admin/reset", String::new())).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(state.journal().is_empty());
    let response = call(
        &state,
        post(&format!("/model/{MODEL}/converse"), converse_body("x", "m")),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(last(&state).seq, 1);
}

/// An exception outside the operation's stream union (armed in-process or through
/// the admin API, which the scenario loader's check does not see) never goes on the
/// wire: `modelTimeoutException` is in IMWRS's union only (bedrock-wire.md §6.2).
#[tokio::test(start_paused = true)]
async fn stream_exceptions_stay_within_the_operations_union() {
    let state = MockState::new(scenario());
    let invoke_body =
        serde_json::json!({"messages": [{"role": "user", "content": "Hi"}]}).to_string();
    for (path, body, expected) in [
        (
            stream_path(MODEL),
            converse_body("Hi", "m"),
            "modelStreamErrorException",
        ),
        (
            format!("/model/{MODEL}/invoke-with-response-stream"),
            invoke_body,
            "modelTimeoutException",
        ),
    ] {
        let mut f = Fault::new(FaultTarget::Bedrock, FaultKind::Exception);
        f.after_tokens = Some(1);
        f.exception = Some("modelTimeoutException".into());
        state.arm(f).unwrap();
        let got = frames(call(&state, post(&path, body)).await.into_body()).await;
        let (_, kind, payload) = got.last().unwrap();
        assert_eq!(kind, expected, "{path}");
        assert!(payload["message"].is_string(), "{payload}");
    }
}

/// A scenario fault with a `model` fails that model only: one server answers one
/// model and throttles another.
#[tokio::test(start_paused = true)]
async fn a_fault_for_one_model_spares_the_others() {
    const NOVA: &str = "amazon.nova-lite-v1:0";
    let mut s = scenario();
    s.faults = vec![Fault::bedrock(FaultKind::Throttling).for_model(NOVA)];
    let state = MockState::new(s);
    let haiku = call(&state, post(&stream_path(MODEL), converse_body("Hi", "m1"))).await;
    assert_eq!(haiku.status(), StatusCode::OK);
    let nova = call(&state, post(&stream_path(NOVA), converse_body("Hi", "m2"))).await;
    assert_eq!(nova.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(last(&state).fault.as_deref(), Some("bedrock/throttling"));
}
