//! Test plumbing: mock Bedrock's router in-process behind the official SDK, tenant
//! configs straight from the scenario, and helpers to call the gateway's router.

use crate::tenants::{ConfigError, ConfigSource};
use crate::{GatewayOptions, GatewayState};
use axum::Router;
use axum::body::Body;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use http::{Request, Response};
use mock_bedrock::MockState;
use picasso_core::Scenario;
use picasso_core::wire::TenantConfig;
use tower::ServiceExt;

/// Tenant configs as the Master would serve them, from the scenario.
#[derive(Debug)]
pub struct FromScenario(pub Scenario);

impl ConfigSource for FromScenario {
    fn tenant_config<'a>(
        &'a self,
        tenant_hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<TenantConfig>, ConfigError>> {
        let config = self.0.tenant(tenant_hash).map(|t| {
            t.config(
                "http://master.test/Master_Function?action=chat",
                Some("http://gateway.test/"),
            )
        });
        Box::pin(async move { Ok(config) })
    }
}

/// A gateway and the mock Bedrock behind it, both in-process.
#[derive(Debug, Clone)]
pub struct World {
    pub gateway: GatewayState,
    pub bedrock: MockState,
    pub app: Router,
}

pub fn world(scenario: Scenario) -> World {
    let bedrock = MockState::new(scenario.clone());
    let client = bedrock_client::in_process::client(mock_bedrock::app(bedrock.clone()));
    let gateway = GatewayState::new(
        scenario.clone(),
        GatewayOptions {
            config: std::sync::Arc::new(FromScenario(scenario)),
            bedrock: client.into(),
        },
    );
    World {
        app: crate::app(gateway.clone()),
        gateway,
        bedrock,
    }
}

pub const FOSTER: &str = "fo85e6a06dcdf4";

/// The `data:` payloads of the default scenario's answer to "Hello", as the contract
/// spells them.
pub const HELLO: [&str; 5] = [
    r#"{"content": "Hello", "type": "text"}"#,
    r#"{"content": ", how", "type": "text"}"#,
    r#"{"content": " can I", "type": "text"}"#,
    r#"{"content": " help?", "type": "text"}"#,
    r#"{"type": "end"}"#,
];
pub const AUSTIN: &str = "au47d9f8e2c31b";

/// `GET /?…` for a tenant, session, message and input (percent-encoding spaces only).
pub fn stream_request(tenant: &str, session: &str, message: &str, input: &str) -> Request<Body> {
    let input = input.replace(' ', "+");
    Request::get(format!(
        "/?tenant_hash={tenant}&user_input={input}&session_id={session}&message_id={message}"
    ))
    .header("accept", "text/event-stream")
    .body(Body::empty())
    .unwrap()
}

impl World {
    pub async fn call(&self, request: Request<Body>) -> Response<Body> {
        match self.app.clone().oneshot(request).await {
            Ok(r) => r,
            Err(never) => match never {},
        }
    }
}

/// The body's chunks as text; a body error becomes `"<error>"` (and ends the list).
pub async fn chunks(response: Response<Body>) -> Vec<String> {
    let mut out = Vec::new();
    let mut body = response.into_body().into_data_stream();
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(b) => out.push(String::from_utf8(b.to_vec()).unwrap()),
            Err(_) => {
                out.push("<error>".into());
                break;
            }
        }
    }
    out
}

/// The `data:` payloads of the frames.
pub fn data(frames: &[String]) -> Vec<String> {
    frames
        .iter()
        .filter_map(|f| {
            f.lines()
                .find_map(|l| l.strip_prefix("data: "))
                .map(str::to_owned)
        })
        .collect()
}

/// The JSON body of a refusal.
pub async fn json(response: Response<Body>) -> serde_json::Value {
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}
