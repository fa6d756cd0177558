//! The gateway's contract, checked in-process against mock Bedrock's router under a
//! paused clock: no sockets, no real time.

use crate::testing::*;
use http::{Request, StatusCode, header};
use mock_bedrock::Outcome;
use picasso_core::Scenario;
use picasso_core::scenario::{Fault, FaultKind, FaultTarget};
use std::time::Duration;
use tokio::time::Instant;

fn scenario_with(faults: Vec<Fault>) -> Scenario {
    let mut s = Scenario::default_scenario();
    s.faults = faults;
    s
}

fn fault(target: FaultTarget, kind: FaultKind) -> Fault {
    Fault::new(target, kind)
}

/// Foster Village streams token by token, each frame with `id: m:seq`, and ends.
#[tokio::test(start_paused = true)]
async fn foster_village_streams_token_by_token_and_ends() {
    let w = world(Scenario::default_scenario());
    let start = Instant::now();
    let response = w.call(stream_request(FOSTER, "s1", "m1", "Hello")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-cache");
    let frames = chunks(response).await;
    assert_eq!(data(&frames), HELLO);
    for (seq, frame) in frames.iter().enumerate() {
        assert!(
            frame.starts_with(&format!("id: m1:{seq}\ndata: ")),
            "{frame}"
        );
        assert!(frame.ends_with("\n\n"));
    }
    // The scripted pacing (800 + 3 × 50 ms) in virtual time.
    assert_eq!(start.elapsed(), Duration::from_millis(950));
    let journal = w.bedrock.journal();
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0].outcome, Outcome::Completed);
    assert_eq!(journal[0].message.as_deref(), Some("m1"));
    let metrics = w.gateway.metrics_text();
    assert!(
        metrics.contains("gateway_time_to_first_token_seconds_count 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            r#"gateway_generations_total{{outcome="completed",tenant="{FOSTER}"}} 1"#
        )),
        "{metrics}"
    );
}

/// Austin Angels does not stream: `403 STREAM_002`, and Bedrock is never called.
#[tokio::test(start_paused = true)]
async fn tenants_without_streaming_and_unknown_tenants_are_refused() {
    let w = world(Scenario::default_scenario());
    for tenant in [AUSTIN, "unknown0tenant"] {
        let response = w.call(stream_request(tenant, "s1", "m1", "Hello")).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(json(response).await["code"], "STREAM_002");
    }
    assert!(w.bedrock.journal().is_empty());
}

/// Bad parameters are `400 STREAM_003`; a URL too long is `414` with the same body.
#[tokio::test(start_paused = true)]
async fn bad_parameters_are_refused_first() {
    let w = world(Scenario::default_scenario());
    let get = |q: String| {
        Request::get(format!("/?{q}"))
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let long = "a".repeat(4001);
    for q in [
        String::new(),
        format!("tenant_hash={FOSTER}&session_id=s&message_id=m"),
        format!("tenant_hash={FOSTER}&user_input=&session_id=s&message_id=m"),
        format!("tenant_hash={FOSTER}&user_input={long}&session_id=s&message_id=m"),
        format!("tenant_hash={FOSTER}&user_input=%00&session_id=s&message_id=m"),
        format!("tenant_hash={FOSTER}&user_input=%FF&session_id=s&message_id=m"),
        // Parameters are checked before the tenant: an unknown tenant with bad input is a 400.
        "tenant_hash=nobody&user_input=%07&session_id=s&message_id=m".into(),
    ] {
        let response = w.call(get(q.clone())).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{q}");
        assert_eq!(json(response).await["code"], "STREAM_003");
    }
    let huge = "a".repeat(60_000);
    let response = w
        .call(get(format!(
            "tenant_hash={FOSTER}&user_input={huge}&session_id=s&message_id=m"
        )))
        .await;
    assert_eq!(response.status(), StatusCode::URI_TOO_LONG);
    assert_eq!(json(response).await["code"], "STREAM_003");
    assert!(w.bedrock.journal().is_empty());
}

/// Only the tenant's origins get the stream and an echoed `Access-Control-Allow-Origin`;
/// another origin is refused before any Bedrock call; no `Origin` is served.
#[tokio::test(start_paused = true)]
async fn cors_answers_the_tenants_origins_only() {
    let w = world(Scenario::default_scenario());
    let with_origin = |origin: &str, message: &str| {
        let mut r = stream_request(FOSTER, "s1", message, "Hello");
        r.headers_mut()
            .insert(header::ORIGIN, origin.parse().unwrap());
        r
    };
    let response = w.call(with_origin("https://evil.example", "m1")).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        response
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
    assert_eq!(json(response).await["code"], "ORIGIN_NOT_ALLOWED");
    assert!(w.bedrock.journal().is_empty());

    let response = w.call(with_origin("https://fostervillage.org", "m2")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://fostervillage.org"
    );
    assert_eq!(response.headers()[header::VARY], "origin");
    assert_eq!(data(&chunks(response).await).len(), 5);

    // Austin's own origin gets a readable STREAM_002.
    let mut r = stream_request(AUSTIN, "s2", "m1", "Hello");
    r.headers_mut()
        .insert(header::ORIGIN, "https://austinangels.com".parse().unwrap());
    let response = w.call(r).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://austinangels.com"
    );
}

/// The preflight is answered for the tenant's origins asking for `GET`, and refused otherwise.
#[tokio::test(start_paused = true)]
async fn preflight() {
    let w = world(Scenario::default_scenario());
    let preflight = |origin: &str, method: &str| {
        Request::options(format!(
            "/?tenant_hash={FOSTER}&user_input=x&session_id=s&message_id=m"
        ))
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, method)
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "last-event-id")
        .body(axum::body::Body::empty())
        .unwrap()
    };
    let ok = w.call(preflight("https://fostervillage.org", "GET")).await;
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        ok.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://fostervillage.org"
    );
    assert!(
        ok.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS]
            .to_str()
            .unwrap()
            .contains("last-event-id")
    );
    for (origin, method) in [
        ("https://evil.example", "GET"),
        ("https://fostervillage.org", "POST"),
    ] {
        let no = w.call(preflight(origin, method)).await;
        assert_eq!(no.status(), StatusCode::FORBIDDEN);
        assert!(
            no.headers()
                .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                .is_none()
        );
    }
}

/// One answer per message: a repeat after the end is `204`; with `Last-Event-ID` it
/// replays the rest (`204` when the id is the end's); Bedrock is called once.
#[tokio::test(start_paused = true)]
async fn a_finished_message_is_never_generated_twice() {
    let w = world(Scenario::default_scenario());
    let first = chunks(w.call(stream_request(FOSTER, "s1", "m1", "Hello")).await).await;
    assert_eq!(first.len(), 5);

    let again = w.call(stream_request(FOSTER, "s1", "m1", "Hello")).await;
    assert_eq!(again.status(), StatusCode::NO_CONTENT);

    let resume = |id: &str| {
        let mut r = stream_request(FOSTER, "s1", "m1", "Hello");
        r.headers_mut().insert("last-event-id", id.parse().unwrap());
        r
    };
    let rest = chunks(w.call(resume("m1:1")).await).await;
    assert_eq!(rest, first[2..]);
    assert_eq!(
        w.call(resume("m1:4")).await.status(),
        StatusCode::NO_CONTENT
    );
    // An id of another message is ignored: a plain repeat.
    assert_eq!(
        w.call(resume("m0:1")).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(w.bedrock.journal().len(), 1);
}

/// A resume for an answer the gateway does not keep is `204`, never a new call.
#[tokio::test(start_paused = true)]
async fn a_resume_of_an_unknown_answer_starts_nothing() {
    let w = world(Scenario::default_scenario());
    let mut r = stream_request(FOSTER, "s1", "m9", "Hello");
    r.headers_mut()
        .insert("last-event-id", "m9:2".parse().unwrap());
    assert_eq!(w.call(r).await.status(), StatusCode::NO_CONTENT);
    assert!(w.bedrock.journal().is_empty());
}

/// A repeat while the message streams joins the running generation: both readers
/// get the whole answer, Bedrock is called once.
#[tokio::test(start_paused = true)]
async fn a_repeat_while_streaming_joins() {
    let w = world(Scenario::default_scenario());
    let first = w.call(stream_request(FOSTER, "s1", "m1", "Hello")).await;
    tokio::time::sleep(Duration::from_millis(900)).await;
    let second = w.call(stream_request(FOSTER, "s1", "m1", "Hello")).await;
    assert_eq!(second.status(), StatusCode::OK);
    let (a, b) = tokio::join!(chunks(first), chunks(second));
    assert_eq!(data(&a), HELLO);
    assert_eq!(a, b);
    assert_eq!(w.bedrock.journal().len(), 1);
}

/// The 11th stream request of a session within a minute is `429` with `Retry-After`;
/// `204`s count. Virtual time: a minute later the session is let in again.
#[tokio::test(start_paused = true)]
async fn eleventh_request_is_rate_limited() {
    let w = world(Scenario::default_scenario());
    assert_eq!(
        chunks(w.call(stream_request(FOSTER, "s1", "m1", "Hello")).await)
            .await
            .len(),
        5
    );
    for _ in 1..10 {
        let r = w.call(stream_request(FOSTER, "s1", "m1", "Hello")).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    let limited = w.call(stream_request(FOSTER, "s1", "m2", "Hello")).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(json(limited).await["code"], "RATE_LIMITED");
    // Another session is not affected.
    assert_eq!(
        w.call(stream_request(FOSTER, "s2", "m1", "Hello"))
            .await
            .status(),
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_secs(retry)).await;
    assert_eq!(
        w.call(stream_request(FOSTER, "s1", "m2", "Hello"))
            .await
            .status(),
        StatusCode::OK
    );
}

/// A stream that runs past `limits.max_stream_ms` gets `STREAM_004` and closes, and
/// the Bedrock call is dropped.
#[tokio::test(start_paused = true)]
async fn the_stream_cap_fires() {
    let mut stall = fault(FaultTarget::Bedrock, FaultKind::Stall);
    stall.after_tokens = Some(2);
    let w = world(scenario_with(vec![stall]));
    let start = Instant::now();
    let frames = chunks(w.call(stream_request(FOSTER, "s1", "m1", "Hello")).await).await;
    assert_eq!(start.elapsed(), Duration::from_secs(30));
    let data = data(&frames);
    assert_eq!(data[..2], HELLO[..2]);
    assert!(
        data[2].starts_with(r#"{"type": "error", "code": "STREAM_004""#),
        "{}",
        data[2]
    );
    assert_eq!(data.len(), 3, "no end after an error");
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_ne!(w.bedrock.journal()[0].outcome, Outcome::InProgress);
}

/// Bedrock failing mid-stream becomes an error frame, with no `end` after it.
#[tokio::test(start_paused = true)]
async fn bedrock_failure_mid_stream_is_an_error_frame() {
    for kind in [
        FaultKind::Exception,
        FaultKind::Drop,
        FaultKind::CorruptFrame,
    ] {
        let mut f = fault(FaultTarget::Bedrock, kind);
        f.after_tokens = Some(1);
        let w = world(scenario_with(vec![f]));
        let data = data(&chunks(w.call(stream_request(FOSTER, "s1", "m1", "Hello")).await).await);
        assert_eq!(data[0], HELLO[0], "{kind:?}");
        assert!(
            data.last().unwrap().contains(r#""type": "error""#),
            "{kind:?} {data:?}"
        );
        assert!(!data.iter().any(|d| d.contains(r#""end""#)));
    }
    // Before the stream (after the SDK's retries): still a 200 with an error frame.
    let w = world(scenario_with(vec![fault(
        FaultTarget::Bedrock,
        FaultKind::AccessDenied,
    )]));
    let data = data(&chunks(w.call(stream_request(FOSTER, "s1", "m1", "Hello")).await).await);
    assert_eq!(data.len(), 1);
    assert!(
        data[0].contains("STREAM_001") && data[0].contains("AccessDenied"),
        "{data:?}"
    );
}

/// A client that goes away mid-stream ends the Bedrock call: the mock's journal shows
/// it cut short, and the kept answer ends with an error frame.
#[tokio::test(start_paused = true)]
async fn a_client_that_leaves_ends_the_bedrock_call() {
    let w = world(Scenario::default_scenario());
    let response = w.call(stream_request(FOSTER, "s1", "m1", "Hello")).await;
    let mut body = response.into_body().into_data_stream();
    use futures_util::StreamExt;
    assert!(body.next().await.unwrap().is_ok());
    drop(body);
    for _ in 0..100 {
        if w.bedrock.journal()[0].outcome != Outcome::InProgress {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(w.bedrock.journal()[0].outcome, Outcome::CutShort);
    // A resume after the first frame replays what was kept, then says it is incomplete.
    let mut r = stream_request(FOSTER, "s1", "m1", "Hello");
    r.headers_mut()
        .insert("last-event-id", "m1:0".parse().unwrap());
    let data = data(&chunks(w.call(r).await).await);
    assert!(data.last().unwrap().contains("STREAM_001"), "{data:?}");
    assert_eq!(w.bedrock.journal().len(), 1);
}

/// Each `gateway` fault reaches the client as documented.
#[tokio::test(start_paused = true)]
async fn gateway_faults() {
    let case = |kind: FaultKind| {
        let mut f = fault(FaultTarget::Gateway, kind);
        f.message = Some("m1".into());
        f
    };
    // status
    let mut f = case(FaultKind::Status);
    f.status = Some(503);
    let w = world(scenario_with(vec![f]));
    let r = w.call(stream_request(FOSTER, "s1", "m1", "Hello")).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json(r).await["code"], "STREAM_001");
    // The fault matched m1 only.
    assert_eq!(
        w.call(stream_request(FOSTER, "s1", "m2", "Hello"))
            .await
            .status(),
        StatusCode::OK
    );

    // wrong_content_type
    let w = world(scenario_with(vec![case(FaultKind::WrongContentType)]));
    let r = w.call(stream_request(FOSTER, "s1", "m1", "Hello")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");

    // latency
    let mut f = case(FaultKind::Latency);
    f.delay_ms = Some(2_000);
    let w = world(scenario_with(vec![f]));
    let start = Instant::now();
    let r = w.call(stream_request(FOSTER, "s1", "m1", "Hello")).await;
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_eq!(data(&chunks(r).await), HELLO);

    // drop after 2 frames
    let mut f = case(FaultKind::Drop);
    f.after_tokens = Some(2);
    let w = world(scenario_with(vec![f]));
    let frames = chunks(w.call(stream_request(FOSTER, "s1", "m1", "Hello")).await).await;
    assert_eq!(frames.len(), 3);
    assert_eq!(frames[2], "<error>");

    // stall after 1 frame for 5 s
    let mut f = case(FaultKind::Stall);
    f.after_tokens = Some(1);
    f.delay_ms = Some(5_000);
    let w = world(scenario_with(vec![f]));
    let start = Instant::now();
    let frames = chunks(w.call(stream_request(FOSTER, "s1", "m1", "Hello")).await).await;
    assert_eq!(data(&frames), HELLO);
    assert_eq!(start.elapsed(), Duration::from_millis(5_800));

    // malformed frame after 1
    let mut f = case(FaultKind::MalformedFrame);
    f.after_tokens = Some(1);
    let w = world(scenario_with(vec![f]));
    let frames = chunks(w.call(stream_request(FOSTER, "s1", "m1", "Hello")).await).await;
    assert_eq!(frames.len(), 6);
    assert!(serde_json::from_str::<serde_json::Value>(&data(&frames)[1]).is_err());
}

/// Each `network` fault reaches the client as documented.
#[tokio::test(start_paused = true)]
async fn network_faults() {
    // refuse: a marked response whose body fails at once; nothing reaches Bedrock.
    let w = world(scenario_with(vec![fault(
        FaultTarget::Network,
        FaultKind::Refuse,
    )]));
    let r = w.call(stream_request(FOSTER, "s1", "m1", "Hello")).await;
    assert!(r.extensions().get::<crate::ConnectionRefused>().is_some());
    assert_eq!(chunks(r).await, ["<error>"]);
    assert!(w.bedrock.journal().is_empty());

    // latency
    let mut f = fault(FaultTarget::Network, FaultKind::Latency);
    f.delay_ms = Some(1_500);
    let w = world(scenario_with(vec![f]));
    let start = Instant::now();
    let r = w.call(stream_request(FOSTER, "s1", "m1", "Hello")).await;
    assert_eq!(start.elapsed(), Duration::from_millis(1_500));
    assert_eq!(r.status(), StatusCode::OK);

    // drop after 3 frames: the body fails, the Bedrock call is cut short.
    let mut f = fault(FaultTarget::Network, FaultKind::Drop);
    f.after_tokens = Some(3);
    let w = world(scenario_with(vec![f]));
    let frames = chunks(w.call(stream_request(FOSTER, "s1", "m1", "Hello")).await).await;
    assert_eq!(frames.len(), 4);
    assert_eq!(frames[3], "<error>");

    // stall: headers, then silence.
    let w = world(scenario_with(vec![fault(
        FaultTarget::Network,
        FaultKind::Stall,
    )]));
    let r = w.call(stream_request(FOSTER, "s1", "m1", "Hello")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let mut body = r.into_body().into_data_stream();
    use futures_util::StreamExt;
    let silent = tokio::time::timeout(Duration::from_secs(600), body.next()).await;
    assert!(silent.is_err());
}

/// On shutdown an open stream gets a final error frame, then closes.
#[tokio::test(start_paused = true)]
async fn shutdown_ends_open_streams_with_a_frame() {
    let w = world(Scenario::default_scenario());
    let r = w.call(stream_request(FOSTER, "s1", "m1", "Hello")).await;
    let reader = tokio::spawn(chunks(r));
    tokio::time::sleep(Duration::from_millis(850)).await;
    w.gateway.shutdown();
    let frames = reader.await.unwrap();
    let data = data(&frames);
    assert_eq!(data[0], HELLO[0]);
    assert!(data.last().unwrap().contains("STREAM_001"), "{data:?}");
    w.gateway.wait_for_generations().await;
}

/// `/metrics` is Prometheus text with requests, errors by code and the histograms.
#[tokio::test(start_paused = true)]
async fn metrics_are_exposed() {
    let w = world(Scenario::default_scenario());
    chunks(w.call(stream_request(FOSTER, "s1", "m1", "Hello")).await).await;
    w.call(stream_request(AUSTIN, "s1", "m1", "Hello")).await;
    let r = w
        .call(
            Request::get("/metrics")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let text = chunks(r).await.concat();
    assert!(
        text.contains(r#"gateway_requests_total{route="stream"} 2"#),
        "{text}"
    );
    assert!(text.contains(&format!(
        r#"gateway_errors_total{{code="STREAM_002",tenant="{AUSTIN}"}} 1"#
    )));
    // A made-up tenant is refused without growing the label set.
    w.call(stream_request("nosuchtenant", "s1", "m1", "Hello"))
        .await;
    let text = w.gateway.metrics_text();
    assert!(
        text.contains(r#"gateway_errors_total{code="STREAM_002",tenant=""} 1"#),
        "{text}"
    );
    assert!(!text.contains("nosuchtenant"));
    // Every stream request is counted once by how it ended.
    assert!(text.contains(&format!(
        r#"gateway_stream_outcomes_total{{outcome="completed",tenant="{FOSTER}"}} 1"#
    )));
    assert!(text.contains(&format!(
        r#"gateway_stream_outcomes_total{{outcome="error",tenant="{AUSTIN}"}} 1"#
    )));
    assert!(text.contains(r#"gateway_stream_outcomes_total{outcome="error",tenant=""} 1"#));
    assert!(text.contains("gateway_stream_duration_seconds_bucket"));
    assert!(text.contains("gateway_time_to_first_token_seconds_bucket"));
    assert!(text.contains("# EOF"));
}

/// A HEAD starts nothing (the GET that follows gets the whole answer), other methods
/// and paths get the contract's JSON errors.
#[tokio::test(start_paused = true)]
async fn head_starts_no_answer_and_other_methods_and_paths_get_json() {
    let w = world(Scenario::default_scenario());
    let mut head = stream_request(FOSTER, "s1", "m1", "Hello");
    *head.method_mut() = http::Method::HEAD;
    let response = w.call(head).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        w.bedrock.journal().is_empty(),
        "a HEAD must not call Bedrock"
    );
    let response = w.call(stream_request(FOSTER, "s1", "m1", "Hello")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(data(&chunks(response).await), HELLO);

    let mut put = stream_request(FOSTER, "s1", "m2", "Hello");
    *put.method_mut() = http::Method::PUT;
    let response = w.call(put).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()[header::ALLOW], "GET, OPTIONS");
    assert_eq!(json(response).await["code"], "METHOD_NOT_ALLOWED");

    let response = w
        .call(
            Request::get("/nowhere")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(json(response).await["code"], "NOT_FOUND");
}

/// The cap is a promise to the client: whatever holds a stream up — a Bedrock stall, a
/// slow first token, a `gateway` stall that freezes the edge for good, a joined reader
/// of a stalled generation — the stream ends with `STREAM_004` by `max_stream_ms` plus
/// [`crate::sse::CAP_MARGIN`] after it opened.
#[tokio::test(start_paused = true)]
async fn no_stream_stays_open_past_the_cap() {
    let cap = Duration::from_millis(30_000) + crate::sse::CAP_MARGIN;
    let mut bedrock_stall = fault(FaultTarget::Bedrock, FaultKind::Stall);
    bedrock_stall.after_tokens = Some(1);
    let mut slow_first = fault(FaultTarget::Bedrock, FaultKind::SlowFirstToken);
    slow_first.delay_ms = Some(120_000);
    let mut edge_stall = fault(FaultTarget::Gateway, FaultKind::Stall);
    edge_stall.after_tokens = Some(2);
    for (name, f) in [
        ("bedrock stall", bedrock_stall),
        ("slow first token", slow_first),
        ("gateway stall, for good", edge_stall),
    ] {
        let w = world(scenario_with(vec![f]));
        let start = Instant::now();
        let frames = chunks(w.call(stream_request(FOSTER, "s1", "m1", "Hello")).await).await;
        let open_for = start.elapsed();
        assert!(open_for <= cap, "{name}: open for {open_for:?}");
        let last = data(&frames).pop().unwrap_or_default();
        assert!(last.contains("STREAM_004"), "{name}: {frames:?}");
        // The cut frame keeps the id sequence.
        let ids: Vec<_> = frames
            .iter()
            .filter_map(|f| f.lines().next()?.strip_prefix("id: m1:").map(str::to_owned))
            .collect();
        let expected: Vec<_> = (0..ids.len()).map(|i| i.to_string()).collect();
        assert_eq!(ids, expected, "{name}");
        w.gateway.shutdown();
        w.gateway.wait_for_generations().await;
    }
}

/// A joined reader of a stalled generation, arriving late, ends with the generation's
/// own cap (before its own would strike).
#[tokio::test(start_paused = true)]
async fn a_late_joiner_ends_with_the_generation() {
    let mut stall = fault(FaultTarget::Bedrock, FaultKind::Stall);
    stall.after_tokens = Some(1);
    let w = world(scenario_with(vec![stall]));
    let first = w.call(stream_request(FOSTER, "s1", "m1", "Hello")).await;
    let first = tokio::spawn(chunks(first));
    tokio::time::sleep(Duration::from_secs(20)).await;
    let start = Instant::now();
    let late = chunks(w.call(stream_request(FOSTER, "s1", "m1", "Hello")).await).await;
    assert!(start.elapsed() <= Duration::from_secs(10) + crate::sse::CAP_MARGIN);
    assert!(
        data(&late).pop().unwrap().contains("STREAM_004"),
        "{late:?}"
    );
    assert_eq!(data(&first.await.unwrap()), data(&late));
}

/// A cap too large to add to the clock is no cap, not a panic.
#[tokio::test(start_paused = true)]
async fn a_huge_cap_does_not_overflow() {
    let mut s = Scenario::default_scenario();
    s.limits.max_stream_ms = u64::MAX;
    let w = world(s);
    let frames = chunks(w.call(stream_request(FOSTER, "s1", "m1", "Hello")).await).await;
    assert_eq!(data(&frames), HELLO);
}

/// The design document's Lambda as written: `Access-Control-Allow-Origin: *` for any
/// origin, frames without `id:`, every request a new Bedrock call (a repeat gets the
/// whole answer again, a `Last-Event-ID` is ignored), no rate limit.
#[tokio::test(start_paused = true)]
async fn as_written_servers_behave_as_the_document_wrote_them() {
    let mut s = Scenario::default_scenario();
    s.servers = picasso_core::scenario::Servers::AsWritten;
    let w = world(s);
    for i in 0..12 {
        let mut r = stream_request(FOSTER, "s1", "m1", "Hello");
        r.headers_mut()
            .insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        if i == 1 {
            r.headers_mut()
                .insert("last-event-id", "m1:4".parse().unwrap());
        }
        let response = w.call(r).await;
        assert_eq!(response.status(), StatusCode::OK, "request {i}");
        assert_eq!(response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        let frames = chunks(response).await;
        assert_eq!(data(&frames), HELLO, "request {i}");
        assert!(frames.iter().all(|f| !f.contains("id:")), "{frames:?}");
    }
    assert_eq!(w.bedrock.journal().len(), 12, "a Bedrock call per request");
    // Parameter and tenant checks stay.
    let r = w.call(stream_request(AUSTIN, "s1", "m1", "Hello")).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

/// `gateway_requests_total` counts the stream (`GET /`) and its preflight
/// (`OPTIONS /`) and nothing else: not a refused method, `/metrics` or another path.
#[tokio::test(start_paused = true)]
async fn requests_are_counted_by_route() {
    let w = world(Scenario::default_scenario());
    chunks(w.call(stream_request(FOSTER, "s1", "m1", "Hello")).await).await;
    for (method, uri) in [
        ("OPTIONS", format!("/?tenant_hash={FOSTER}")),
        ("HEAD", "/".to_owned()),
        ("POST", "/".to_owned()),
        ("GET", "/metrics".to_owned()),
        ("GET", "/elsewhere".to_owned()),
    ] {
        w.call(
            Request::builder()
                .method(method)
                .uri(uri)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    }
    let text = w.gateway.metrics_text();
    let mut counted: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("gateway_requests_total"))
        .collect();
    counted.sort_unstable();
    assert_eq!(
        counted,
        [
            r#"gateway_requests_total{route="preflight"} 1"#,
            r#"gateway_requests_total{route="stream"} 1"#,
        ]
    );
}
