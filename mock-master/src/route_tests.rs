//! The Master's contract, in-process against mock Bedrock's router, paused clock.

use crate::testing::*;
use http::{Request, StatusCode, header};
use mock_bedrock::Outcome;
use picasso_core::Scenario;
use picasso_core::scenario::{Caller, Fault, FaultKind, FaultTarget};
use std::time::Duration;
use tokio::time::Instant;

fn scenario_with(faults: Vec<Fault>) -> Scenario {
    let mut s = Scenario::default_scenario();
    s.faults = faults;
    s
}

/// A streaming tenant's config has both endpoints; a non-streaming one has `chat`
/// and no `streaming` key at all.
#[tokio::test(start_paused = true)]
async fn configs_are_shaped_as_the_design_document_says() {
    let w = world(Scenario::default_scenario());
    let r = w.get_config(FOSTER).await;
    assert_eq!(r.status(), StatusCode::OK);
    let fv = json(r).await;
    assert_eq!(fv["tenant_hash"], FOSTER);
    assert_eq!(fv["features"]["streaming_enabled"], true);
    assert_eq!(fv["features"]["streaming_percentage"], 100.0);
    assert_eq!(
        fv["features"]["streaming_model"],
        "anthropic.claude-3-haiku-20240307-v1:0"
    );
    assert_eq!(
        fv["endpoints"]["chat"],
        "http://127.0.0.1:4100/Master_Function?action=chat"
    );
    assert_eq!(fv["endpoints"]["streaming"], "http://127.0.0.1:4101/");
    assert_eq!(fv["allowed_origins"][0], "https://fostervillage.org");

    let aa = json(w.get_config(AUSTIN).await).await;
    assert_eq!(aa["features"]["streaming_enabled"], false);
    assert!(aa["endpoints"]["chat"].is_string());
    assert!(
        aa["endpoints"].get("streaming").is_none(),
        "absent, not null"
    );
}

/// As written (`get_config_for_tenant_by_hash`), a streaming tenant's `endpoints` is
/// replaced by `{"streaming": …}`: `endpoints.chat` is gone; others keep theirs.
#[tokio::test(start_paused = true)]
async fn as_written_config_drops_chat_for_streaming_tenants() {
    let mut s = Scenario::default_scenario();
    s.servers = picasso_core::scenario::Servers::AsWritten;
    let w = world(s);
    let fv = json(w.get_config(FOSTER).await).await;
    assert_eq!(
        fv["endpoints"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["streaming"],
        "{fv}"
    );
    let aa = json(w.get_config(AUSTIN).await).await;
    assert!(aa["endpoints"]["chat"].is_string(), "{aa}");
}

/// Without a configured streaming URL nobody gets `endpoints.streaming`.
#[tokio::test(start_paused = true)]
async fn no_streaming_url_no_streaming_endpoint() {
    let w = world(Scenario::default_scenario());
    let mut options = crate::MasterOptions {
        chat_url: "c".into(),
        streaming_url: None,
        bedrock: bedrock_client::in_process::client(mock_bedrock::app(w.bedrock.clone())).into(),
    };
    let s = Scenario::default_scenario();
    let config = crate::config_of(s.tenant(FOSTER).unwrap(), &options);
    assert!(config.endpoints.streaming.is_none());
    options.streaming_url = Some("u".into());
    assert_eq!(
        crate::config_of(s.tenant(FOSTER).unwrap(), &options)
            .endpoints
            .streaming
            .as_deref(),
        Some("u")
    );
}

/// Unknown tenant `404`, missing or malformed `t` `400`, both JSON; unknown actions `400`.
#[tokio::test(start_paused = true)]
async fn config_errors() {
    let w = world(Scenario::default_scenario());
    let r = w.get_config("nobody123").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(json(r).await["code"], "TENANT_NOT_FOUND");
    for t in ["", "UPPER", "has-dash", &"a".repeat(65)] {
        let r = w.get_config(t).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{t}");
        assert_eq!(json(r).await["code"], "INVALID_REQUEST");
    }
    let r = w
        .call(
            Request::get("/Master_Function?action=nope")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = w
        .call(
            Request::get("/Master_Function")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

/// The regular chat answers with Bedrock's whole text, through `Converse`, caller `master`.
#[tokio::test(start_paused = true)]
async fn chat_answers_through_bedrock() {
    let w = world(Scenario::default_scenario());
    let r = w.chat(chat_body(AUSTIN, "m1", "Hello")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let answer = json(r).await;
    assert_eq!(
        answer,
        serde_json::json!({"message_id": "m1", "session_id": "s1", "content": "Hello, how can I help?", "type": "text"})
    );
    let journal = w.bedrock.journal();
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0].caller, Some(Caller::Master));
    assert_eq!(journal[0].outcome, Outcome::Completed);
    assert!(
        w.master
            .metrics_text()
            .contains("master_chat_duration_seconds_count 1")
    );
}

/// Bad bodies are `400`; Bedrock's throttling after the SDK's retries is `429` with
/// `Retry-After`, other Bedrock errors `502`.
#[tokio::test(start_paused = true)]
async fn chat_errors() {
    let w = world(Scenario::default_scenario());
    let r = w
        .call(
            Request::post("/Master_Function?action=chat")
                .body(axum::body::Body::from("not json"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        w.chat(chat_body(AUSTIN, "", "Hello")).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        w.chat(chat_body("nobody1", "m1", "Hi")).await.status(),
        StatusCode::NOT_FOUND
    );

    let w = world(scenario_with(vec![Fault::new(
        FaultTarget::Bedrock,
        FaultKind::Throttling,
    )]));
    let r = w.chat(chat_body(AUSTIN, "m1", "Hello")).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()[header::RETRY_AFTER], "1");
    assert_eq!(json(r).await["code"], "BEDROCK_THROTTLED");
    assert_eq!(w.bedrock.journal().len(), 3, "the SDK retried");

    let w = world(scenario_with(vec![Fault::new(
        FaultTarget::Bedrock,
        FaultKind::AccessDenied,
    )]));
    let r = w.chat(chat_body(AUSTIN, "m1", "Hello")).await;
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(json(r).await["code"], "BEDROCK_ERROR");
}

/// Every Master fault, on config and on chat, per message.
#[tokio::test(start_paused = true)]
async fn master_faults() {
    for target in [FaultTarget::MasterConfig, FaultTarget::MasterChat] {
        let call = |w: World| async move {
            match target {
                FaultTarget::MasterConfig => w.get_config(FOSTER).await,
                _ => w.chat(chat_body(FOSTER, "m1", "Hello")).await,
            }
        };
        let mut latency = Fault::new(target, FaultKind::Latency);
        latency.delay_ms = Some(3_000);
        let w = world(scenario_with(vec![latency]));
        let start = Instant::now();
        let r = call(w.clone()).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(start.elapsed() >= Duration::from_secs(3));

        let mut status = Fault::new(target, FaultKind::Status);
        status.status = Some(503);
        status.tenant = Some(FOSTER.into());
        let w = world(scenario_with(vec![status]));
        let r = call(w.clone()).await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(json(r).await["code"], "INJECTED_FAULT");

        let w = world(scenario_with(vec![Fault::new(target, FaultKind::Drop)]));
        let r = call(w.clone()).await;
        assert!(r.extensions().get::<crate::ConnectionDropped>().is_some());
        assert!(body(r).await.is_err());
        assert!(w.bedrock.journal().is_empty());

        let w = world(scenario_with(vec![Fault::new(
            target,
            FaultKind::MalformedBody,
        )]));
        let r = call(w.clone()).await;
        assert_eq!(r.status(), StatusCode::OK);
        let bytes = body(r).await.unwrap();
        assert!(serde_json::from_slice::<serde_json::Value>(&bytes).is_err());
    }
    // A fault for one message leaves the others alone.
    let mut f = Fault::new(FaultTarget::MasterChat, FaultKind::Status);
    f.message = Some("m2".into());
    let w = world(scenario_with(vec![f]));
    assert_eq!(
        w.chat(chat_body(FOSTER, "m1", "Hello")).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        w.chat(chat_body(FOSTER, "m2", "Hello")).await.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
}

/// CORS: the tenant's own origins only.
#[tokio::test(start_paused = true)]
async fn cors_for_the_tenants_origins() {
    let w = world(Scenario::default_scenario());
    let get = |origin: &str| {
        Request::get(format!("/Master_Function?action=get_config&t={FOSTER}"))
            .header(header::ORIGIN, origin)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let ok = w.call(get("https://fostervillage.org")).await;
    assert_eq!(
        ok.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://fostervillage.org"
    );
    assert_eq!(
        ok.headers()[header::ACCESS_CONTROL_EXPOSE_HEADERS],
        "retry-after",
        "a page must be able to read Retry-After"
    );
    let other = w.call(get("https://austinangels.com")).await;
    assert!(
        other
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
}

/// Loading a new scenario replaces the tenants.
#[tokio::test(start_paused = true)]
async fn scenarios_can_be_replaced() {
    let w = world(Scenario::default_scenario());
    let mut s = Scenario::default_scenario();
    s.tenants.retain(|t| t.hash == AUSTIN);
    w.master.load_scenario(s);
    assert_eq!(w.get_config(FOSTER).await.status(), StatusCode::NOT_FOUND);
    let metrics = w.master.metrics_text();
    assert!(
        metrics.contains(r#"master_requests_total{action="get_config"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"master_errors_total{code="TENANT_NOT_FOUND"} 1"#));
}

/// A method the Master does not take, or a path it does not have: JSON errors too.
#[tokio::test(start_paused = true)]
async fn other_methods_and_paths_get_json_errors() {
    let w = world(Scenario::default_scenario());
    let put = Request::put("/Master_Function?action=chat")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = w.call(put).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        response.headers()[http::header::ALLOW],
        "GET, POST, OPTIONS"
    );
    assert_eq!(json(response).await["code"], "METHOD_NOT_ALLOWED");
    let response = w
        .call(
            Request::get("/elsewhere")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(json(response).await["code"], "NOT_FOUND");
}

/// `master_requests_total` counts by action as the handlers read the query:
/// `get_config` (a `HEAD` too: axum runs the `GET` for it), `chat`, and `other` for a
/// `GET` or `POST` naming another action or none; a preflight, another method or
/// another path is not counted.
#[tokio::test(start_paused = true)]
async fn requests_are_counted_by_action() {
    let w = world(Scenario::default_scenario());
    w.get_config(FOSTER).await;
    w.chat(chat_body(FOSTER, "m1", "Hello")).await;
    for (method, uri) in [
        (
            "HEAD",
            "/Master_Function?action=get_config&t=fo85e6a06dcdf4",
        ),
        ("GET", "/Master_Function?action=chat"),
        ("POST", "/Master_Function?action=get_config"),
        ("GET", "/Master_Function"),
        ("OPTIONS", "/Master_Function?action=chat"),
        ("PUT", "/Master_Function?action=chat"),
        ("GET", "/elsewhere?action=get_config"),
        ("GET", "/metrics"),
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
    let text = w.master.metrics_text();
    let mut counted: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("master_requests_total"))
        .collect();
    counted.sort_unstable();
    assert_eq!(
        counted,
        [
            r#"master_requests_total{action="chat"} 1"#,
            r#"master_requests_total{action="get_config"} 2"#,
            r#"master_requests_total{action="other"} 3"#,
        ]
    );
}
