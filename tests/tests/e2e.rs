//! End to end over real loopback HTTP: mock Bedrock, the Master and the gateway, each
//! on `127.0.0.1:0`, wired as `picasso-sim serve` wires them (the gateway fetches
//! tenant configs from the Master over HTTP; both call Bedrock through the AWS SDK).

use mock_bedrock::Outcome;
use picasso_core::Scenario;
use picasso_core::scenario::{Fault, FaultKind, FaultTarget};
use picasso_e2e::{AUSTIN, FOSTER, Stack, http, read_stream};
use std::time::Duration;
use tokio::time::Instant;

const HELLO: [&str; 5] = [
    r#"{"content": "Hello", "type": "text"}"#,
    r#"{"content": ", how", "type": "text"}"#,
    r#"{"content": " can I", "type": "text"}"#,
    r#"{"content": " help?", "type": "text"}"#,
    r#"{"type": "end"}"#,
];

const IDLE: Duration = Duration::from_secs(5);

/// A Foster Village message streams token by token (separate chunks, paced as
/// scripted), every frame with its `id:`, and ends.
#[tokio::test]
async fn foster_village_streams_token_by_token_and_ends() {
    let stack = Stack::start(Scenario::default_scenario()).await;
    let config: serde_json::Value = http()
        .get(format!(
            "{}/Master_Function?action=get_config&t={FOSTER}",
            stack.master
        ))
        .send()
        .await
        .unwrap()
        .json_or_panic()
        .await;
    let streaming = config["endpoints"]["streaming"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(streaming, format!("{}/", stack.gateway));

    let start = Instant::now();
    let response = http()
        .get(format!(
            "{streaming}?tenant_hash={FOSTER}&user_input=Hello&session_id=s1&message_id=m1"
        ))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["cache-control"], "no-cache");
    let read = read_stream(response, IDLE).await;
    assert_eq!(read.data(), HELLO);
    assert!(!read.failed);
    for (seq, frame) in read.frames.iter().enumerate() {
        assert!(frame.starts_with(&format!("id: m1:{seq}\n")), "{frame}");
    }
    assert!(
        read.chunks >= 4,
        "token by token, not all at once: {} chunks",
        read.chunks
    );
    assert!(
        start.elapsed() >= Duration::from_millis(950),
        "paced as scripted"
    );
    assert!(
        stack
            .wait_for_journal(|j| j.len() == 1 && j[0].outcome == Outcome::Completed)
            .await
    );
    stack.stop().await;
}

/// Austin Angels' config has no streaming endpoint, and the gateway refuses it with
/// `403 STREAM_002` without calling Bedrock.
#[tokio::test]
async fn austin_angels_has_no_stream() {
    let stack = Stack::start(Scenario::default_scenario()).await;
    let config: serde_json::Value = http()
        .get(format!(
            "{}/Master_Function?action=get_config&t={AUSTIN}",
            stack.master
        ))
        .send()
        .await
        .unwrap()
        .json_or_panic()
        .await;
    assert!(config["endpoints"]["chat"].is_string());
    assert!(config["endpoints"].get("streaming").is_none());
    let r = http()
        .get(stack.stream_url(AUSTIN, "s1", "m1", "Hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json_or_panic().await;
    assert_eq!(body["code"], "STREAM_002");
    // The regular chat works for it.
    let r = http()
        .post(format!("{}/Master_Function?action=chat", stack.master))
        .header("content-type", "application/json")
        .body(r#"{"tenant_hash": "au47d9f8e2c31b", "user_input": "Hello", "session_id": "s1", "message_id": "m-chat"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json_or_panic().await;
    assert_eq!(body["content"], "Hello, how can I help?");
    assert_eq!(body["type"], "text");
    let journal = stack.bedrock.journal();
    assert_eq!(journal.len(), 1, "only the regular chat reached Bedrock");
    stack.stop().await;
}

fn on(message: &str, target: FaultTarget, kind: FaultKind) -> Fault {
    let mut f = Fault::new(target, kind);
    f.message = Some(message.into());
    f
}

/// Every gateway, network and Bedrock fault reaches the client over real HTTP as its
/// documented status, code or frame.
#[tokio::test]
async fn every_stream_fault_reaches_the_client() {
    let mut s = Scenario::default_scenario();
    s.limits.max_stream_ms = 1_500;
    let mut status = on("g-status", FaultTarget::Gateway, FaultKind::Status);
    status.status = Some(503);
    let mut latency = on("g-latency", FaultTarget::Gateway, FaultKind::Latency);
    latency.delay_ms = Some(400);
    let mut gdrop = on("g-drop", FaultTarget::Gateway, FaultKind::Drop);
    gdrop.after_tokens = Some(2);
    let mut gstall = on("g-stall", FaultTarget::Gateway, FaultKind::Stall);
    gstall.after_tokens = Some(1);
    gstall.delay_ms = Some(600);
    let mut malformed = on(
        "g-malformed",
        FaultTarget::Gateway,
        FaultKind::MalformedFrame,
    );
    malformed.after_tokens = Some(1);
    let wct = on("g-wct", FaultTarget::Gateway, FaultKind::WrongContentType);
    let refuse = on("n-refuse", FaultTarget::Network, FaultKind::Refuse);
    let mut nlatency = on("n-latency", FaultTarget::Network, FaultKind::Latency);
    nlatency.delay_ms = Some(400);
    let mut ndrop = on("n-drop", FaultTarget::Network, FaultKind::Drop);
    ndrop.after_tokens = Some(3);
    let nstall = on("n-stall", FaultTarget::Network, FaultKind::Stall);
    let mut exception = on("b-exception", FaultTarget::Bedrock, FaultKind::Exception);
    exception.after_tokens = Some(2);
    let mut bstall = on("b-stall", FaultTarget::Bedrock, FaultKind::Stall);
    bstall.after_tokens = Some(1);
    s.faults = vec![
        status, latency, gdrop, gstall, malformed, wct, refuse, nlatency, ndrop, nstall, exception,
        bstall,
    ];
    let stack = Stack::start(s).await;
    let get = |message: &str| {
        http()
            .get(stack.stream_url(FOSTER, message, message, "Hello"))
            .send()
    };

    let r = get("g-status").await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.json_or_panic::<serde_json::Value>().await["code"],
        "STREAM_001"
    );

    let start = Instant::now();
    let r = get("g-latency").await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(400));
    assert_eq!(read_stream(r, IDLE).await.data(), HELLO);

    let read = read_stream(get("g-drop").await.unwrap(), IDLE).await;
    assert_eq!(read.data(), HELLO[..2]);
    assert!(read.failed, "the connection drops after two frames");

    let start = Instant::now();
    let read = read_stream(get("g-stall").await.unwrap(), IDLE).await;
    assert_eq!(read.data(), HELLO);
    assert!(start.elapsed() >= Duration::from_millis(600));

    let read = read_stream(get("g-malformed").await.unwrap(), IDLE).await;
    assert_eq!(read.data().len(), 6);
    assert!(serde_json::from_str::<serde_json::Value>(&read.data()[1]).is_err());

    let r = get("g-wct").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");

    let refused = get("n-refuse").await;
    assert!(refused.is_err(), "no response at all: {refused:?}");

    let start = Instant::now();
    let r = get("n-latency").await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(400));
    assert_eq!(read_stream(r, IDLE).await.data(), HELLO);

    let read = read_stream(get("n-drop").await.unwrap(), IDLE).await;
    assert_eq!(read.data(), HELLO[..3]);
    assert!(read.failed);

    let r = get("n-stall").await.unwrap();
    assert_eq!(r.status(), 200, "headers arrive");
    let read = read_stream(r, Duration::from_millis(1_500)).await;
    assert!(
        read.timed_out && read.frames.is_empty(),
        "then silence: {read:?}"
    );

    let read = read_stream(get("b-exception").await.unwrap(), IDLE).await;
    let data = read.data();
    assert_eq!(data[..2], HELLO[..2]);
    assert!(
        data[2].contains(r#""type": "error""#) && data[2].contains("STREAM_001"),
        "{data:?}"
    );
    assert_eq!(data.len(), 3, "no end after an error");
    assert!(!read.failed, "closed cleanly after the error frame");

    let read = read_stream(get("b-stall").await.unwrap(), IDLE).await;
    let data = read.data();
    assert_eq!(data[0], HELLO[0]);
    assert!(
        data[1].contains("STREAM_004"),
        "the cap (1.5 s here) fires: {data:?}"
    );
    stack.stop().await;
}

/// Every Master fault reaches its client: on config (in order, one each) and on chat.
#[tokio::test]
async fn every_master_fault_reaches_the_client() {
    let mut s = Scenario::default_scenario();
    let mut status = Fault::new(FaultTarget::MasterConfig, FaultKind::Status);
    status.status = Some(500);
    status.times = Some(1);
    let mut drop = Fault::new(FaultTarget::MasterConfig, FaultKind::Drop);
    drop.times = Some(1);
    let mut malformed = Fault::new(FaultTarget::MasterConfig, FaultKind::MalformedBody);
    malformed.times = Some(1);
    let mut latency = Fault::new(FaultTarget::MasterConfig, FaultKind::Latency);
    latency.delay_ms = Some(300);
    latency.times = Some(1);
    let mut chat_status = on("c-status", FaultTarget::MasterChat, FaultKind::Status);
    chat_status.status = Some(429);
    let chat_drop = on("c-drop", FaultTarget::MasterChat, FaultKind::Drop);
    let chat_malformed = on(
        "c-malformed",
        FaultTarget::MasterChat,
        FaultKind::MalformedBody,
    );
    s.faults = vec![
        status,
        drop,
        malformed,
        latency,
        chat_status,
        chat_drop,
        chat_malformed,
    ];
    let stack = Stack::start(s).await;
    let config = || {
        http()
            .get(format!(
                "{}/Master_Function?action=get_config&t={AUSTIN}",
                stack.master
            ))
            .send()
    };
    let r = config().await.unwrap();
    assert_eq!(r.status(), 500);
    assert!(config().await.is_err(), "dropped: no response");
    let r = config().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(serde_json::from_slice::<serde_json::Value>(&r.bytes().await.unwrap()).is_err());
    let start = Instant::now();
    assert_eq!(config().await.unwrap().status(), 200);
    assert!(start.elapsed() >= Duration::from_millis(300));

    let chat = |message: &str| {
        http()
            .post(format!("{}/Master_Function?action=chat", stack.master))
            .body(format!(
                r#"{{"tenant_hash": "{AUSTIN}", "user_input": "Hi", "session_id": "s", "message_id": "{message}"}}"#
            ))
            .send()
    };
    let r = chat("c-status").await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(
        r.json_or_panic::<serde_json::Value>().await["code"],
        "INJECTED_FAULT"
    );
    assert!(chat("c-drop").await.is_err());
    let r = chat("c-malformed").await.unwrap();
    assert!(serde_json::from_slice::<serde_json::Value>(&r.bytes().await.unwrap()).is_err());
    assert!(
        stack.bedrock.journal().is_empty(),
        "no fault above let a request through"
    );
    stack.stop().await;
}

/// The 11th stream request of a session within a minute gets `429` with `Retry-After`
/// (repeats answered `204` count). No sleeping: eleven requests take milliseconds.
#[tokio::test]
async fn eleventh_request_gets_429() {
    let stack = Stack::start(Scenario::default_scenario()).await;
    let url = stack.stream_url(FOSTER, "s-rate", "m1", "Hello");
    let first = read_stream(http().get(&url).send().await.unwrap(), IDLE).await;
    assert_eq!(first.data(), HELLO);
    for _ in 1..10 {
        assert_eq!(http().get(&url).send().await.unwrap().status(), 204);
    }
    let r = http().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(
        r.json_or_panic::<serde_json::Value>().await["code"],
        "RATE_LIMITED"
    );
    assert_eq!(
        stack.bedrock.journal().len(),
        1,
        "one Bedrock call for the message"
    );
    stack.stop().await;
}

/// Sends raw bytes on a fresh connection and reads until the server closes it.
async fn raw_exchange(base: &str, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    // A server that refuses a request head too large to read may close before the
    // rest is written; its answer is what counts.
    let _ = socket.write_all(request).await;
    let mut out = Vec::new();
    let read = tokio::time::timeout(IDLE, socket.read_to_end(&mut out))
        .await
        .expect("the server closes the connection");
    // Closing with request bytes still unread makes the kernel reset the connection:
    // the answer that came before the reset is still whole.
    if let Err(e) = read {
        assert!(!out.is_empty(), "no answer before {e}");
    }
    String::from_utf8(out).unwrap()
}

/// Status, lower-cased head and body of the last response in `raw`.
fn last_response(raw: &str) -> (u16, String, serde_json::Value) {
    let start = raw.rfind("HTTP/1.1 ").expect("a response");
    let (head, body) = raw[start..].split_once("\r\n\r\n").expect("a head");
    let status = head[9..12].parse().unwrap();
    let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {raw}"));
    (status, head.to_ascii_lowercase(), body)
}

/// Requests that hyper refuses before the router sees them (a request target over its
/// 65,534-byte cap, a head over its ~400 KB read buffer, a raw byte that is not UTF-8 in
/// the query) still get the contract's JSON body with `STREAM_003`, on a fresh
/// connection and on a kept-alive one.
#[tokio::test]
async fn refusals_hyper_makes_itself_carry_the_json_body() {
    let stack = Stack::start(Scenario::default_scenario()).await;
    let too_long = format!(
        "GET /?tenant_hash={FOSTER}&user_input={}&session_id=s&message_id=m HTTP/1.1\r\nhost: x\r\n\r\n",
        "a".repeat(70_000)
    );
    let mut not_utf8 = format!("GET /?tenant_hash={FOSTER}&user_input=a").into_bytes();
    not_utf8.extend_from_slice(b"\xff&session_id=s&message_id=m HTTP/1.1\r\nhost: x\r\n\r\n");
    let huge_head = format!(
        "GET /?tenant_hash={FOSTER}&user_input=a&session_id=s&message_id=m HTTP/1.1\r\nhost: x\r\nx-padding: {}\r\n\r\n",
        "a".repeat(1_000_000)
    );
    for (request, want) in [
        (too_long.as_bytes(), 414),
        (huge_head.as_bytes(), 431),
        (&not_utf8[..], 400),
    ] {
        let raw = raw_exchange(&stack.gateway, request).await;
        let (status, head, body) = last_response(&raw);
        assert_eq!(status, want, "{raw}");
        assert!(head.contains("content-type: application/json"), "{head}");
        assert_eq!(body["code"], "STREAM_003", "{raw}");
    }
    // The second request of a kept-alive connection: the first is answered by the router.
    let first = "GET /?tenant_hash=x HTTP/1.1\r\nhost: x\r\n\r\n";
    let raw = raw_exchange(&stack.gateway, format!("{first}{too_long}").as_bytes()).await;
    assert_eq!(raw.matches("HTTP/1.1 ").count(), 2, "{raw}");
    assert!(raw.starts_with("HTTP/1.1 400 "), "{raw}");
    let (status, _, body) = last_response(&raw);
    assert_eq!((status, body["code"].as_str()), (414, Some("STREAM_003")));
    assert!(stack.bedrock.journal().is_empty());
    stack.stop().await;
}

/// The Master too: a `t` with a raw byte that is not UTF-8 (hyper refuses the request
/// line itself) is a `400` with a JSON error body, as a malformed `t` must be.
#[tokio::test]
async fn a_master_request_hyper_refuses_carries_a_json_body() {
    let stack = Stack::start(Scenario::default_scenario()).await;
    let request = b"GET /Master_Function?action=get_config&t=fo\xff85 HTTP/1.1\r\nhost: x\r\n\r\n";
    let raw = raw_exchange(&stack.master, request).await;
    let (status, head, body) = last_response(&raw);
    assert_eq!(status, 400, "{raw}");
    assert!(head.contains("content-type: application/json"), "{head}");
    assert_eq!(body["code"], "INVALID_REQUEST", "{raw}");
    stack.stop().await;
}

/// A client that disconnects mid-stream ends the Bedrock call: the journal shows it
/// cut short.
#[tokio::test]
async fn a_client_disconnect_cuts_the_bedrock_call_short() {
    let mut s = Scenario::default_scenario();
    // A slow answer, so the disconnect surely lands mid-stream.
    s.answers.insert(
        0,
        picasso_core::scenario::Answer {
            pacing: Some(picasso_core::scenario::Pacing {
                first_token_ms: 50,
                gap_ms: 200,
            }),
            text: Some("one two three four five six seven eight nine ten".into()),
            prompt: Some("slow".into()),
            ..picasso_core::scenario::Answer::unscripted()
        },
    );
    let stack = Stack::start(s).await;
    let mut body = http()
        .get(stack.stream_url(FOSTER, "s1", "m-cut", "slow"))
        .send()
        .await
        .unwrap()
        .bytes_stream();
    use futures_util::StreamExt;
    let first = body.next().await.unwrap().unwrap();
    assert!(first.starts_with(b"id: m-cut:0\n"));
    drop(body);
    assert!(
        stack
            .wait_for_journal(|j| j.len() == 1 && j[0].outcome == Outcome::CutShort)
            .await,
        "{:?}",
        stack.bedrock.journal()
    );
    stack.stop().await;
}

/// Graceful shutdown: an open stream gets a final error frame, then closes.
#[tokio::test]
async fn shutdown_sends_a_final_frame() {
    let stack = Stack::start(Scenario::default_scenario()).await;
    let response = http()
        .get(stack.stream_url(FOSTER, "s1", "m-shut", "Hello"))
        .send()
        .await
        .unwrap();
    let reader = tokio::spawn(read_stream(response, IDLE));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopping = tokio::spawn(stack.stop());
    let read = reader.await.unwrap();
    let data = read.data();
    assert!(data.last().unwrap().contains("STREAM_001"), "{data:?}");
    assert!(!read.failed);
    stopping.await.unwrap();
}

/// Both servers expose Prometheus text under `/metrics`.
#[tokio::test]
async fn metrics_are_served() {
    let stack = Stack::start(Scenario::default_scenario()).await;
    read_stream(
        http()
            .get(stack.stream_url(FOSTER, "s1", "m1", "Hello"))
            .send()
            .await
            .unwrap(),
        IDLE,
    )
    .await;
    let text = http()
        .get(format!("{}/metrics", stack.gateway))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"gateway_requests_total{route="stream"} 1"#),
        "{text}"
    );
    assert!(text.contains("gateway_time_to_first_token_seconds_count 1"));
    let text = http()
        .get(format!("{}/metrics", stack.master))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"master_requests_total{action="get_config"} 1"#),
        "{text}"
    );
    stack.stop().await;
}

/// `reqwest` here has no `json` feature: parse by hand.
trait JsonOrPanic {
    async fn json_or_panic<T: serde::de::DeserializeOwned>(self) -> T;
}

impl JsonOrPanic for reqwest::Response {
    async fn json_or_panic<T: serde::de::DeserializeOwned>(self) -> T {
        let bytes = self.bytes().await.expect("a body");
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}: {bytes:?}"))
    }
}
