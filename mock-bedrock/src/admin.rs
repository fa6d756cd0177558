//! The control surface under `/__admin/`: what a test or a person uses to steer the
//! mock over HTTP. The same operations are methods on [`MockState`] for in-process use.
//!
//! - `GET  /__admin/requests`: the journal, a JSON array in arrival order; with
//!   `?tenant=…`, `&session=…`, `&message=…` only the entries whose `requestMetadata`
//!   matches every one given (a session is a session of its tenant: ask with both);
//! - `GET  /__admin/scenario`: the scenario in force, as JSON;
//! - `PUT  /__admin/scenario`: replace it (TOML body; 400 with the diagnostics);
//! - `POST /__admin/faults`: arm a one-off fault (JSON of a scenario `Fault`);
//! - `POST /__admin/reset`: clear the journal, the fault counts and the armed faults.

use crate::state::MockState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use http::StatusCode;
use picasso_core::scenario::Fault;
use serde_json::json;

/// The admin routes, to be nested under `/__admin`.
pub(crate) fn routes() -> Router<MockState> {
    Router::new()
        .route("/requests", get(requests))
        .route("/scenario", get(scenario).put(replace_scenario))
        .route("/faults", post(arm_fault))
        .route("/reset", post(reset))
}

/// The journal query: each field given must equal the entry's own.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct JournalQuery {
    tenant: Option<String>,
    session: Option<String>,
    message: Option<String>,
}

impl JournalQuery {
    fn admits(&self, entry: &crate::JournalEntry) -> bool {
        let matches = |want: &Option<String>, have: &Option<String>| {
            want.as_ref().is_none_or(|w| have.as_ref() == Some(w))
        };
        matches(&self.tenant, &entry.tenant)
            && matches(&self.session, &entry.session)
            && matches(&self.message, &entry.message)
    }
}

async fn requests(
    State(state): State<MockState>,
    query: Result<Query<JournalQuery>, QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(q) => q,
        Err(err) => {
            let text = format!("the journal takes ?tenant=, &session=, &message=: {err}\n");
            return (StatusCode::BAD_REQUEST, text).into_response();
        }
    };
    let entries: Vec<_> = state
        .journal()
        .into_iter()
        .filter(|e| query.admits(e))
        .collect();
    Json(entries).into_response()
}

async fn scenario(State(state): State<MockState>) -> Response {
    Json(&*state.scenario()).into_response()
}

async fn replace_scenario(State(state): State<MockState>, body: Bytes) -> Response {
    let Ok(text) = std::str::from_utf8(&body) else {
        return (StatusCode::BAD_REQUEST, "the scenario must be UTF-8 TOML\n").into_response();
    };
    match picasso_core::parse_scenario("<admin>", text) {
        Ok(scenario) => {
            let summary = json!({
                "name": scenario.name,
                "answers": scenario.answers.len(),
                "faults": scenario.faults.len(),
            });
            state.set_scenario(scenario);
            Json(summary).into_response()
        }
        Err(err) => (StatusCode::BAD_REQUEST, format!("{err}\n")).into_response(),
    }
}

async fn arm_fault(State(state): State<MockState>, body: Bytes) -> Response {
    let fault: Fault = match serde_json::from_slice(&body) {
        Ok(fault) => fault,
        Err(err) => {
            return (StatusCode::BAD_REQUEST, format!("not a fault: {err}\n")).into_response();
        }
    };
    match state.arm(fault) {
        Ok(()) => Json(json!({"armed": state.armed()})).into_response(),
        Err(err) => (StatusCode::BAD_REQUEST, format!("{err}\n")).into_response(),
    }
}

async fn reset(State(state): State<MockState>) -> StatusCode {
    state.reset();
    StatusCode::NO_CONTENT
}
