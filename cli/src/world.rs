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
    /// What `serve`'s flags add to every scenario it loads (the page's own origin
    /// among them), so a reload keeps them.
    pub overrides: Overrides,
}

/// What `serve` puts on every scenario it runs, whatever the file says.
#[derive(Debug, Clone, Default)]
pub(crate) struct Overrides {
    /// Origins added to every tenant's allowed origins: the demo page's own (and its
    /// `localhost` spelling) and each `--allow-origin`.
    pub origins: Vec<String>,
    /// `--servers`: which gateway and Master to run.
    pub servers: Option<picasso_core::scenario::Servers>,
}

impl Overrides {
    /// The demo page's origin (and its `localhost` spelling), then `extra`.
    pub(crate) fn new(
        demo_origin: &str,
        extra: &[String],
        servers: Option<picasso_core::scenario::Servers>,
    ) -> Overrides {
        let mut origins = vec![
            demo_origin.to_owned(),
            demo_origin.replace("127.0.0.1", "localhost"),
        ];
        for o in extra {
            if !origins.contains(o) {
                origins.push(o.clone());
            }
        }
        Overrides { origins, servers }
    }

    /// `scenario` with the overrides applied.
    pub(crate) fn apply(&self, mut scenario: Scenario) -> Scenario {
        for tenant in &mut scenario.tenants {
            for o in &self.origins {
                if !tenant.allowed_origins.contains(o) {
                    tenant.allowed_origins.push(o.clone());
                }
            }
        }
        if let Some(servers) = self.servers {
            scenario.servers = servers;
        }
        scenario
    }
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
        let scenario = self.overrides.apply(scenario);
        self.bedrock.set_scenario(scenario.clone());
        self.master.load_scenario(scenario.clone());
        self.gateway.load_scenario(scenario.clone());
        *self.scenario.lock().unwrap_or_else(|e| e.into_inner()) = scenario;
    }
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
    fn overrides_add_origins_once_and_set_the_servers() {
        let o = Overrides::new(
            "http://127.0.0.1:4100",
            &[
                "http://localhost:5173".to_owned(),
                "http://localhost:5173".to_owned(),
            ],
            Some(picasso_core::scenario::Servers::AsWritten),
        );
        let s = o.apply(o.apply(Scenario::default_scenario()));
        for tenant in &s.tenants {
            let origins = &tenant.allowed_origins;
            for want in [
                "http://127.0.0.1:4100",
                "http://localhost:4100",
                "http://localhost:5173",
            ] {
                assert_eq!(origins.iter().filter(|o| *o == want).count(), 1, "{want}");
            }
        }
        assert_eq!(s.servers, picasso_core::scenario::Servers::AsWritten);
        // No --servers: the file decides.
        let o = Overrides::new("http://127.0.0.1:4100", &[], None);
        let mut file = Scenario::default_scenario();
        file.servers = picasso_core::scenario::Servers::AsWritten;
        assert_eq!(
            o.apply(file).servers,
            picasso_core::scenario::Servers::AsWritten
        );
    }
}
