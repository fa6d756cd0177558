//! The routes, as `system.md` gives them:
//! `GET /Master_Function?action=get_config&t={tenant_hash}` and
//! `POST /Master_Function?action=chat` with `{"tenant_hash", "user_input", "session_id", "message_id"}`;
//! plus `GET /metrics`, and CORS for the tenants' widget origins (a widget in a
//! browser loads its config and posts its chat from the tenant's page).

use crate::error::MasterError;
use crate::faults;
use crate::metrics::ActionLabels;
use crate::state::MasterState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bedrock_client::Call;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use http_serve::cors;
use http_serve::metrics::CountRequestsLayer;
use picasso_core::fault::RequestFacts;
use picasso_core::scenario::{Caller, Fault, FaultKind, FaultTarget};
use picasso_core::wire::{ChatRequest, ChatResponse, is_valid_tenant_hash};
use std::collections::BTreeMap;
use std::time::Duration;

type Params = Result<Query<BTreeMap<String, String>>, QueryRejection>;

/// The Master's router.
pub fn router(state: MasterState) -> Router {
    let count = CountRequestsLayer::new(state.metrics().requests.clone(), action_label);
    Router::new()
        .route(
            "/Master_Function",
            get(get_action)
                .post(post_action)
                .options(preflight)
                .fallback(method_not_allowed)
                .layer(count),
        )
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(state)
}

/// What `master_requests_total` counts on `/Master_Function`, under which `action`:
/// `GET ?action=get_config`, `POST ?action=chat`, and `other` for a `GET` or `POST`
/// with any other action (the query read as the handlers' `Query` extractor reads it).
/// A preflight or a refused method is not counted; a `HEAD` is, as the `GET` axum
/// routes it to.
fn action_label(method: &Method, uri: &Uri) -> Option<ActionLabels> {
    let served = match *method {
        Method::GET | Method::HEAD => "get_config",
        Method::POST => "chat",
        _ => return None,
    };
    let params: Params = Query::try_from_uri(uri);
    let action = if action(&params) == Some(served) {
        served
    } else {
        "other"
    };
    Some(ActionLabels { action })
}

/// `405` for a method the Master Function does not take.
async fn method_not_allowed() -> Response {
    let mut response = http_serve::error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "the Master Function takes GET ?action=get_config and POST ?action=chat",
    );
    response.headers_mut().insert(
        header::ALLOW,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    response
}

/// `404` for any other path.
async fn not_found() -> Response {
    http_serve::error_response(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "the Master Function is at /Master_Function",
    )
}

async fn metrics(State(state): State<MasterState>) -> Response {
    http_serve::metrics::exposition(state.metrics_text())
}

fn action(params: &Params) -> Option<&str> {
    params.as_ref().ok()?.get("action").map(String::as_str)
}

async fn get_action(
    State(state): State<MasterState>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    if action(&params) != Some("get_config") {
        return finish(
            &state,
            Err(MasterError::Invalid("GET takes action=get_config".into())),
            None,
        );
    }
    let t = params
        .as_ref()
        .ok()
        .and_then(|q| q.get("t"))
        .cloned()
        .unwrap_or_default();
    let origin = allowed_origin(&state, &headers, &t);
    let result = get_config(&state, &t).await;
    finish(&state, result, origin.as_deref())
}

async fn get_config(state: &MasterState, t: &str) -> Result<Response, MasterError> {
    if !is_valid_tenant_hash(t) {
        return Err(MasterError::Invalid(
            "`t` must be a tenant hash: 1-64 characters of a-z0-9".into(),
        ));
    }
    let facts = RequestFacts {
        tenant: Some(t),
        ..RequestFacts::default()
    };
    if let Some(response) = apply_fault(
        state,
        state.strike(FaultTarget::MasterConfig, &facts),
        || format!(r#"{{"tenant_hash": "{t}", "features": {{"streaming_enabled": tr"#),
    )
    .await?
    {
        return Ok(response);
    }
    let config = state
        .tenant_config(t)
        .ok_or_else(|| MasterError::UnknownTenant(t.to_owned()))?;
    Ok(Json(config).into_response())
}

async fn post_action(
    State(state): State<MasterState>,
    headers: HeaderMap,
    params: Params,
    body: Bytes,
) -> Response {
    if action(&params) != Some("chat") {
        return finish(
            &state,
            Err(MasterError::Invalid("POST takes action=chat".into())),
            None,
        );
    }
    let request: Result<ChatRequest, _> = serde_json::from_slice(&body);
    let origin = request
        .as_ref()
        .ok()
        .and_then(|r| allowed_origin(&state, &headers, &r.tenant_hash));
    let result = match request {
        Ok(request) => chat(&state, request).await,
        Err(e) => Err(MasterError::Invalid(format!("the chat body: {e}"))),
    };
    finish(&state, result, origin.as_deref())
}

async fn chat(state: &MasterState, request: ChatRequest) -> Result<Response, MasterError> {
    if !is_valid_tenant_hash(&request.tenant_hash) {
        return Err(MasterError::Invalid("malformed tenant_hash".into()));
    }
    for (name, value) in [
        ("user_input", &request.user_input),
        ("session_id", &request.session_id),
        ("message_id", &request.message_id),
    ] {
        if value.is_empty() {
            return Err(MasterError::Invalid(format!("empty `{name}`")));
        }
    }
    let facts = RequestFacts {
        tenant: Some(&request.tenant_hash),
        session: Some(&request.session_id),
        message: Some(&request.message_id),
        ..RequestFacts::default()
    };
    let fault = state.strike(FaultTarget::MasterChat, &facts);
    if let Some(response) = apply_fault(state, fault, || {
        format!(
            r#"{{"message_id": "{}", "session_id": "{}", "content": "Thanks for"#,
            request.message_id, request.session_id
        )
    })
    .await?
    {
        return Ok(response);
    }
    let scenario = state.scenario();
    let tenant = scenario
        .tenant(&request.tenant_hash)
        .ok_or_else(|| MasterError::UnknownTenant(request.tenant_hash.clone()))?;
    let started = tokio::time::Instant::now();
    let content = state
        .options()
        .bedrock
        .converse(Call {
            model: &tenant.streaming_model,
            prompt: &request.user_input,
            tenant: &request.tenant_hash,
            session: &request.session_id,
            message: &request.message_id,
            caller: Caller::Master,
        })
        .await?;
    state
        .metrics()
        .chat_duration
        .observe(started.elapsed().as_secs_f64());
    Ok(Json(ChatResponse {
        message_id: request.message_id,
        session_id: request.session_id,
        content,
        kind: "text".into(),
    })
    .into_response())
}

/// Applies a struck fault: `Ok(None)` lets the request go on (after any latency),
/// `Ok(Some(_))` is the faulty answer, `Err(_)` an injected error status.
async fn apply_fault(
    state: &MasterState,
    fault: Option<Fault>,
    partial_body: impl FnOnce() -> String,
) -> Result<Option<Response>, MasterError> {
    let Some(fault) = fault else { return Ok(None) };
    match fault.kind {
        FaultKind::Latency => {
            tokio::time::sleep(Duration::from_millis(fault.delay_ms.unwrap_or(0))).await;
            Ok(None)
        }
        FaultKind::Status => Err(MasterError::Injected(fault.status.unwrap_or(500))),
        FaultKind::Drop => {
            state.metrics().error("DROPPED");
            Ok(Some(faults::dropped()))
        }
        FaultKind::MalformedBody => {
            state.metrics().error("MALFORMED_BODY");
            Ok(Some(faults::malformed(&partial_body())))
        }
        _ => Ok(None),
    }
}

/// Turns a result into the answer, counting errors, with CORS for an allowed origin.
fn finish(
    state: &MasterState,
    result: Result<Response, MasterError>,
    origin: Option<&str>,
) -> Response {
    let mut response = match result {
        Ok(response) => response,
        Err(e) => {
            state.metrics().error(e.status_and_code().1);
            e.into_response()
        }
    };
    let headers = response.headers_mut();
    cors::apply(headers, origin);
    if origin.is_some() {
        // A cross-origin page reads only CORS-safelisted headers unless told: the
        // widget must see `Retry-After` on a `429` to honour it.
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("retry-after"),
        );
    }
    response
}

/// The request's `Origin` when it is one of the tenant's widget origins.
fn allowed_origin(state: &MasterState, headers: &HeaderMap, tenant: &str) -> Option<String> {
    let scenario = state.scenario();
    let tenant = scenario.tenant(tenant)?;
    let allowed = tenant.allowed_origins.iter().map(String::as_str);
    cors::check(headers.get(header::ORIGIN), allowed)
        .allowed()
        .map(str::to_owned)
}

/// What the chat POST's preflight grants: `GET` and `POST` with a JSON body.
const PREFLIGHT: cors::Preflight = cors::Preflight {
    methods: "GET, POST",
    headers: "content-type",
    max_age_s: 600,
};

/// The preflight of the chat POST (JSON needs one). The tenant is in the body, which a
/// preflight lacks, so any tenant's widget origin is accepted here; the POST itself is
/// answered with CORS only for its own tenant's origins.
async fn preflight(State(state): State<MasterState>, headers: HeaderMap) -> Response {
    let scenario = state.scenario();
    let any_widget_origin = scenario
        .tenants
        .iter()
        .flat_map(|t| t.allowed_origins.iter().map(String::as_str));
    let check = cors::check(headers.get(header::ORIGIN), any_widget_origin);
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    cors::apply(h, check.allowed());
    if check.allowed().is_some() {
        cors::apply_preflight(h, &PREFLIGHT);
    }
    response
}
