//! Record and replay: a recording proxy in front of one mock Bedrock writes what it
//! answers; a second mock Bedrock serving the written file answers the same.

use crate::support::{MODEL, PROMPT};
use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ContentBlockDelta, ConversationRole, ConverseStreamOutput, Message,
};
use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use axum::Router;
use axum::body::Body;
use bedrock_client::{BedrockConfig, Runtime, build_client};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use mock_bedrock::record::{self, HttpUpstream, Recorder, RouterUpstream, SigningKeys};
use mock_bedrock::{MockBedrock, MockState, app};
use picasso_core::Scenario;
use picasso_core::scenario::{Answer, StopReason, Token};
use std::path::PathBuf;
use tokio::time::{Duration, Instant};
use tower::ServiceExt;

/// Irregular delays, a zero among them, so a replay that paced by rule would show.
const SCRIPT: [(&str, u64); 5] = [
    ("We", 120),
    (" are", 7),
    (" open", 33),
    (" 9", 0),
    (" to 5.", 250),
];

fn upstream_scenario() -> Scenario {
    let mut s = Scenario::default_scenario();
    s.faults.clear();
    s.answers = vec![
        Answer::from_tokens(SCRIPT.iter().map(|(t, d)| Token::new(*t, *d)))
            .named("hours")
            .for_prompt(PROMPT)
            .usage(11, 5)
            .stop_reason(StopReason::MaxTokens),
    ];
    s
}

fn temp_file(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("mock-bedrock-{}-{name}.toml", std::process::id()))
}

fn request(action: &str) -> http::Request<Body> {
    let converse = action.starts_with("converse");
    let body = if converse {
        serde_json::json!({"messages": [{"role": "user", "content": [{"text": PROMPT}]}]})
    } else {
        serde_json::json!({
            "anthropic_version": "bedrock-2023-05-31", "max_tokens": 50,
            "messages": [{"role": "user", "content": PROMPT}],
        })
    };
    let model = MODEL.replace(':', "%3A");
    http::Request::post(format!("/model/{model}/{action}"))
        .header("content-type", "application/json")
        .header("authorization", "AWS4-HMAC-SHA256 Credential=AKIDCALLER/…")
        .body(Body::from(body.to_string()))
        .unwrap()
}

async fn whole(router: &Router, action: &str) -> (u16, Bytes) {
    let response = router.clone().oneshot(request(action)).await.unwrap();
    let status = response.status().as_u16();
    (
        status,
        response.into_body().collect().await.unwrap().to_bytes(),
    )
}

/// Each ConverseStream text delta with the virtual time it arrived.
async fn timed_deltas(router: &Router) -> Vec<(Duration, String)> {
    let start = Instant::now();
    let response = router
        .clone()
        .oneshot(request("converse-stream"))
        .await
        .unwrap();
    let mut body = response.into_body().into_data_stream();
    let (mut decoder, mut buffer, mut out) =
        (MessageFrameDecoder::new(), BytesMut::new(), Vec::new());
    while let Some(Ok(chunk)) = futures_util::StreamExt::next(&mut body).await {
        buffer.extend_from_slice(&chunk);
        while let Ok(DecodedFrame::Complete(m)) = decoder.decode_frame(&mut buffer) {
            let payload: serde_json::Value = serde_json::from_slice(m.payload()).unwrap();
            if let Some(text) = payload["delta"]["text"].as_str() {
                out.push((start.elapsed(), text.to_owned()));
            }
        }
    }
    out
}

/// Under the paused clock: the proxy passes every operation's bytes through
/// unchanged, records the scripted delays exactly, and a second mock serving the
/// written file sends the same texts at the recorded times (well within 1 ms).
#[tokio::test(start_paused = true)]
async fn record_then_replay_through_two_servers_keeps_texts_and_delays() {
    let path = temp_file("paused");
    let upstream = MockState::new(upstream_scenario());
    let twin = app(MockState::new(upstream_scenario()));
    let recorder = Recorder::new(
        RouterUpstream(app(upstream.clone())),
        Scenario::default_scenario(),
        Some(path.clone()),
    );
    let proxy = record::app(recorder.clone());
    for action in ["converse-stream", "invoke-with-response-stream", "converse"] {
        let through = whole(&proxy, action).await;
        let direct = whole(&twin, action).await;
        assert_eq!(through.0, 200, "{action}");
        assert_eq!(through, direct, "{action}: the proxy changed the response");
    }

    let recorded = recorder.recorded();
    assert_eq!(recorded.len(), 3);
    let scripted: Vec<Token> = SCRIPT.iter().map(|(t, d)| Token::new(*t, *d)).collect();
    for answer in &recorded[..2] {
        assert_eq!(answer.tokens, scripted, "{}", answer.id);
        assert_eq!(answer.prompt.as_deref(), Some(PROMPT));
        assert_eq!(answer.model.as_deref(), Some(MODEL));
        assert_eq!(answer.stop_reason, StopReason::MaxTokens);
    }
    assert_eq!(
        recorded[0].usage.map(|u| (u.input_tokens, u.output_tokens)),
        Some((11, 5))
    );
    // Converse answers whole: one token, the whole text, at the whole time.
    assert_eq!(recorded[2].tokens, [Token::new("We are open 9 to 5.", 410)]);

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("AKIDCALLER"), "a credential was written");
    let replayed = picasso_core::load_file(&path).expect("the recording is a valid scenario");
    std::fs::remove_file(&path).unwrap();
    let replay = app(MockState::new(replayed));
    let deltas = timed_deltas(&replay).await;
    let texts: Vec<&str> = deltas.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(texts, SCRIPT.map(|(t, _)| t));
    let mut before = Duration::ZERO;
    for ((at, text), token) in deltas.iter().zip(&recorded[0].tokens) {
        let delay = at.saturating_sub(before).as_secs_f64() * 1000.0;
        assert!(
            (delay - token.delay_ms as f64).abs() <= 1.0,
            "{text:?}: replayed after {delay} ms, recorded {} ms",
            token.delay_ms
        );
        before = *at;
    }
}

fn client(endpoint: String) -> Client {
    build_client(&BedrockConfig::mock(endpoint), Runtime::default())
}

async fn converse_texts(client: &Client) -> Vec<String> {
    let message = Message::builder()
        .role(ConversationRole::User)
        .content(ContentBlock::Text(PROMPT.into()))
        .build()
        .unwrap();
    let mut out = client
        .converse_stream()
        .model_id(MODEL)
        .messages(message)
        .send()
        .await
        .unwrap();
    let mut texts = Vec::new();
    while let Some(event) = out.stream.recv().await.unwrap() {
        if let ConverseStreamOutput::ContentBlockDelta(d) = event
            && let Some(ContentBlockDelta::Text(t)) = d.delta
        {
            texts.push(t);
        }
    }
    texts
}

/// Over sockets with the official SDK: the proxy signs its upstream calls with the
/// keys it is given and writes none of them; the replaying server answers the same
/// texts. (Timings over sockets are the paused test's business.)
#[tokio::test]
async fn the_sdk_records_through_the_proxy_and_replays_from_the_file() {
    let path = temp_file("sockets");
    // No timing is checked here, so no time is spent on it.
    let mut scenario = upstream_scenario();
    scenario.answers[0]
        .tokens
        .iter_mut()
        .for_each(|t| t.delay_ms = 0);
    let upstream = MockBedrock::start(scenario).await;
    let keys = SigningKeys {
        access_key_id: "AKIDRECORDTEST".into(),
        secret_access_key: "secret-never-written".into(),
        session_token: Some("token-never-written".into()),
        region: "us-east-1".into(),
    };
    let recorder = Recorder::new(
        HttpUpstream::new(&upstream.endpoint(), Some(keys)).unwrap(),
        Scenario::default_scenario(),
        Some(path.clone()),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(mock_bedrock::serve_router(
        listener,
        record::app(recorder.clone()),
        async move {
            let _ = stopped.await;
        },
    ));

    let recorded_texts = converse_texts(&client(proxy_url)).await;
    assert_eq!(recorded_texts, SCRIPT.map(|(t, _)| t));
    let seen = upstream.received_requests().await;
    assert_eq!(seen.len(), 1);
    assert_eq!(recorder.recorded_at_least(1).await.len(), 1);

    let text = std::fs::read_to_string(&path).unwrap();
    for secret in [
        "AKIDRECORDTEST",
        "secret-never-written",
        "token-never-written",
    ] {
        assert!(!text.contains(secret), "{secret} was written");
    }
    let replay = MockBedrock::start(picasso_core::load_file(&path).unwrap()).await;
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        converse_texts(&client(replay.endpoint())).await,
        recorded_texts
    );
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
