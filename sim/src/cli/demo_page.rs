//! The demo page that `serve` puts next to the Master Function: a minimal chat widget
//! in plain HTML and JavaScript with the browser's real `EventSource`, and the small
//! API it uses to list tenants and arm a fault for the next message.
//!
//! Arming a fault appends it to the running scenario, limited to that message id,
//! and reloads all three servers, so every fault kind works the way the scenario
//! file would make it work.

use super::world::World;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use picasso_core::scenario::{Caller, Fault, FaultKind, FaultTarget};
use serde::Deserialize;

const PAGE: &str = include_str!("../../assets/demo.html");
/// The corrected JavaScript widget, byte for byte as `widgets/` ships it: the page
/// imports it as a module, unchanged.
const CORRECTED_WIDGET: &str = include_str!("../../../widgets/corrected/widget.js");

/// The page and its API.
pub(crate) fn router(world: World) -> Router {
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route(
            "/widgets/corrected/widget.js",
            get(|| async {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/javascript; charset=utf-8",
                    )],
                    CORRECTED_WIDGET,
                )
            }),
        )
        .route("/demo/api/tenants", get(tenants))
        .route("/demo/api/faults", get(faults))
        .route("/demo/api/arm", post(arm))
        .with_state(world)
}

async fn tenants(State(world): State<World>) -> Response {
    let scenario = world
        .scenario
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let list: Vec<serde_json::Value> = scenario
        .tenants
        .iter()
        .map(|t| serde_json::json!({ "hash": t.hash, "name": t.name }))
        .collect();
    Json(list).into_response()
}

/// A fault the page offers: a name, a label, and how to build it for one message.
struct Preset {
    name: &'static str,
    label: &'static str,
    /// `None` for "no fault".
    build: Option<fn() -> Fault>,
}

fn bedrock(kind: FaultKind, after: Option<u32>) -> Fault {
    let mut f = Fault::new(FaultTarget::Bedrock, kind);
    f.after_tokens = after;
    f.via = Some(Caller::Gateway);
    f
}

const PRESETS: &[Preset] = &[
    Preset {
        name: "none",
        label: "no fault",
        build: None,
    },
    Preset {
        name: "bedrock-drop",
        label: "Bedrock drops the stream after 3 tokens",
        build: Some(|| bedrock(FaultKind::Drop, Some(3))),
    },
    Preset {
        name: "bedrock-exception",
        label: "Bedrock exception frame after 3 tokens",
        build: Some(|| bedrock(FaultKind::Exception, Some(3))),
    },
    Preset {
        name: "bedrock-corrupt",
        label: "Bedrock corrupt frame (bad CRC) after 2 tokens",
        build: Some(|| bedrock(FaultKind::CorruptFrame, Some(2))),
    },
    Preset {
        name: "bedrock-throttling",
        label: "Bedrock throttles the stream (every attempt)",
        build: Some(|| bedrock(FaultKind::Throttling, None)),
    },
    Preset {
        name: "slow-first-token",
        label: "first token 20 s late (idle timeout)",
        build: Some(|| {
            let mut f = bedrock(FaultKind::SlowFirstToken, None);
            f.delay_ms = Some(20_000);
            f
        }),
    },
    Preset {
        name: "bedrock-stall",
        label: "Bedrock stalls after 2 tokens",
        build: Some(|| bedrock(FaultKind::Stall, Some(2))),
    },
    Preset {
        name: "gateway-503",
        label: "gateway answers 503",
        build: Some(|| {
            let mut f = Fault::new(FaultTarget::Gateway, FaultKind::Status);
            f.status = Some(503);
            f
        }),
    },
    Preset {
        name: "wrong-content-type",
        label: "gateway answers JSON, not an event stream",
        build: Some(|| Fault::new(FaultTarget::Gateway, FaultKind::WrongContentType)),
    },
    Preset {
        name: "malformed-frame",
        label: "a frame that is not JSON after 2 tokens",
        build: Some(|| {
            let mut f = Fault::new(FaultTarget::Gateway, FaultKind::MalformedFrame);
            f.after_tokens = Some(2);
            f
        }),
    },
    Preset {
        name: "network-drop",
        label: "network drops the stream after 3 frames",
        build: Some(|| {
            let mut f = Fault::new(FaultTarget::Network, FaultKind::Drop);
            f.after_tokens = Some(3);
            f
        }),
    },
    Preset {
        name: "network-refuse",
        label: "connection to the gateway refused",
        build: Some(|| Fault::new(FaultTarget::Network, FaultKind::Refuse)),
    },
    Preset {
        name: "everything-down",
        label: "Bedrock denies every call (stream and fallback)",
        build: Some(|| Fault::new(FaultTarget::Bedrock, FaultKind::AccessDenied)),
    },
];

async fn faults() -> Response {
    let list: Vec<serde_json::Value> = PRESETS
        .iter()
        .map(|p| serde_json::json!({ "name": p.name, "label": p.label }))
        .collect();
    Json(list).into_response()
}

#[derive(Debug, Deserialize)]
struct Arm {
    fault: String,
    message_id: String,
}

async fn arm(State(world): State<World>, Json(arm): Json<Arm>) -> Response {
    let Some(preset) = PRESETS.iter().find(|p| p.name == arm.fault) else {
        return (
            StatusCode::BAD_REQUEST,
            format!("no fault preset {:?}", arm.fault),
        )
            .into_response();
    };
    let Some(build) = preset.build else {
        return StatusCode::NO_CONTENT.into_response();
    };
    let mut fault = build();
    fault.id = Some(format!("demo:{}", preset.name));
    fault.message = Some(arm.message_id);
    let mut scenario = world
        .scenario
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    scenario.faults.push(fault);
    world.reload(scenario);
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use picasso_core::Scenario;

    #[test]
    fn every_preset_is_a_valid_fault() {
        let mut scenario = Scenario::default_scenario();
        for build in PRESETS.iter().filter_map(|p| p.build) {
            let mut f = build();
            f.message = Some("fv1-m1".into());
            scenario.faults.push(f);
        }
        let problems = picasso_core::load::validate(&scenario);
        assert!(problems.is_empty(), "{problems:?}");
    }
}
