//! The running servers of `serve` as one world: the scenario in force and the three
//! states it is loaded into, so a reload (file change, admin request, demo fault)
//! reaches all of them at once. Also the world's admin routes on the Master's port.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use gateway::GatewayState;
use mock_bedrock::MockState;
use mock_master::MasterState;
use picasso_core::Scenario;
use std::sync::{Arc, Mutex};

/// Everything the demo API touches.
#[derive(Debug, Clone)]
pub(crate) struct World {
    /// The running scenario (with the faults armed so far).
    pub scenario: Arc<Mutex<Scenario>>,
    /// Mock Bedrock's state.
    pub bedrock: MockState,
    /// The Master Function's state.
    pub master: MasterState,
    /// The gateway's state.
    pub gateway: GatewayState,
    /// The page's own origin, added to every tenant's allowed origins.
    pub demo_origin: String,
}

impl World {
    /// The scenario in force.
    pub(crate) fn scenario(&self) -> Scenario {
        self.scenario
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the scenario in all three servers.
    pub(crate) fn reload(&self, scenario: Scenario) {
        let scenario = with_demo_origins(scenario, &self.demo_origin);
        self.bedrock.set_scenario(scenario.clone());
        self.master.load_scenario(scenario.clone());
        self.gateway.load_scenario(scenario.clone());
        *self.scenario.lock().unwrap_or_else(|e| e.into_inner()) = scenario;
    }
}

/// Adds the demo page's origin (and its `localhost` spelling) to every tenant, so the
/// page can open streams for any tenant; `serve` says so when it starts.
pub(crate) fn with_demo_origins(mut scenario: Scenario, origin: &str) -> Scenario {
    let alias = origin.replace("127.0.0.1", "localhost");
    for tenant in &mut scenario.tenants {
        for o in [origin, alias.as_str()] {
            if !tenant.allowed_origins.iter().any(|a| a == o) {
                tenant.allowed_origins.push(o.to_owned());
            }
        }
    }
    scenario
}

/// `GET /__admin/scenario` (the scenario in force, TOML) and `PUT /__admin/scenario`
/// (replace it in all three servers; 400 with the diagnostics when it is not valid).
/// Mock Bedrock's own `/__admin/scenario` replaces Bedrock's alone.
pub(crate) fn admin_routes(world: World) -> Router {
    Router::new()
        .route("/__admin/scenario", get(current).put(replace))
        .with_state(world)
}

async fn current(State(world): State<World>) -> Response {
    match toml::to_string(&world.scenario()) {
        Ok(text) => ([("content-type", "application/toml")], text).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot write the scenario as TOML: {e}\n"),
        )
            .into_response(),
    }
}

async fn replace(State(world): State<World>, body: Bytes) -> Response {
    let Ok(text) = std::str::from_utf8(&body) else {
        return (StatusCode::BAD_REQUEST, "the scenario must be UTF-8 TOML\n").into_response();
    };
    match picasso_core::parse_scenario("<admin>", text) {
        Ok(scenario) => {
            world.reload(scenario);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_origins_are_added_once() {
        let s = with_demo_origins(Scenario::default_scenario(), "http://127.0.0.1:4100");
        let s = with_demo_origins(s, "http://127.0.0.1:4100");
        let origins = &s.tenants[0].allowed_origins;
        assert_eq!(
            origins
                .iter()
                .filter(|o| *o == "http://127.0.0.1:4100")
                .count(),
            1
        );
        assert!(origins.iter().any(|o| o == "http://localhost:4100"));
    }
}
