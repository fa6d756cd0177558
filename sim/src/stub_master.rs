//! TEMPORARY stand-in for `mock_master` until issue 5 lands: config and chat only, no faults.

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use picasso_core::scenario::{Caller, Scenario};
use picasso_core::wire::{ChatRequest, ChatResponse, Endpoints, Features, TenantConfig};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Clone)]
pub(crate) struct Stub {
    scenario: Arc<Scenario>,
    bedrock: aws_sdk_bedrockruntime::Client,
    chat_url: String,
    streaming_url: Option<String>,
}

pub(crate) fn app(
    scenario: Scenario,
    chat_url: String,
    streaming_url: Option<String>,
    bedrock: aws_sdk_bedrockruntime::Client,
) -> Router {
    let stub = Stub {
        scenario: Arc::new(scenario),
        bedrock,
        chat_url,
        streaming_url,
    };
    Router::new()
        .route("/Master_Function", get(config).post(chat))
        .with_state(stub)
}

async fn config(State(s): State<Stub>, Query(q): Query<BTreeMap<String, String>>) -> Response {
    let Some(t) = q.get("t").and_then(|t| s.scenario.tenant(t)) else {
        return (http::StatusCode::NOT_FOUND, "{}").into_response();
    };
    Json(TenantConfig {
        tenant_hash: t.hash.clone(),
        tenant_name: None,
        features: Features {
            streaming_enabled: t.streaming_enabled,
            streaming_percentage: t.streaming_percentage,
            streaming_model: t.streaming_model.clone(),
        },
        endpoints: Endpoints {
            chat: s.chat_url.clone(),
            streaming: s.streaming_url.clone().filter(|_| t.streaming_enabled),
        },
        allowed_origins: t.allowed_origins.clone(),
    })
    .into_response()
}

async fn chat(State(s): State<Stub>, Json(r): Json<ChatRequest>) -> Response {
    let Some(t) = s.scenario.tenant(&r.tenant_hash) else {
        return (http::StatusCode::NOT_FOUND, "{}").into_response();
    };
    let call = bedrock_client::Call {
        model: &t.streaming_model,
        prompt: &r.user_input,
        tenant: &t.hash,
        session: &r.session_id,
        message: &r.message_id,
        caller: Caller::Master,
    };
    match bedrock_client::complete(&s.bedrock, call).await {
        Ok(content) => Json(ChatResponse {
            message_id: r.message_id,
            session_id: r.session_id,
            content,
            kind: "text".into(),
        })
        .into_response(),
        Err(e) => (http::StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}
