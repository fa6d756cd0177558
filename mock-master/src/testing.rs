//! Test plumbing: mock Bedrock's router in-process behind the official SDK, and
//! helpers to call the Master's router.

use crate::{MasterOptions, MasterState};
use axum::Router;
use axum::body::Body;
use http::{Request, Response};
use mock_bedrock::MockState;
use picasso_core::Scenario;
use tower::ServiceExt;

/// A Master and the mock Bedrock behind it, both in-process.
#[derive(Debug, Clone)]
pub struct World {
    pub master: MasterState,
    pub bedrock: MockState,
    pub app: Router,
}

pub fn world(scenario: Scenario) -> World {
    let bedrock = MockState::new(scenario.clone());
    let master = MasterState::new(
        scenario,
        MasterOptions {
            chat_url: "http://127.0.0.1:4100/Master_Function?action=chat".into(),
            streaming_url: Some("http://127.0.0.1:4101/".into()),
            bedrock: bedrock_client::in_process::client(mock_bedrock::app(bedrock.clone())).into(),
        },
    );
    World {
        app: crate::app(master.clone()),
        master,
        bedrock,
    }
}

pub const FOSTER: &str = "fo85e6a06dcdf4";
pub const AUSTIN: &str = "au47d9f8e2c31b";

impl World {
    pub async fn call(&self, request: Request<Body>) -> Response<Body> {
        match self.app.clone().oneshot(request).await {
            Ok(r) => r,
            Err(never) => match never {},
        }
    }

    pub async fn get_config(&self, t: &str) -> Response<Body> {
        self.call(
            Request::get(format!("/Master_Function?action=get_config&t={t}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    pub async fn chat(&self, body: serde_json::Value) -> Response<Body> {
        self.call(
            Request::post("/Master_Function?action=chat")
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
    }
}

pub fn chat_body(tenant: &str, message: &str, input: &str) -> serde_json::Value {
    serde_json::json!({
        "tenant_hash": tenant,
        "user_input": input,
        "session_id": "s1",
        "message_id": message,
    })
}

/// The whole body as bytes; `Err` when the body fails (a dropped connection).
pub async fn body(response: Response<Body>) -> Result<bytes::Bytes, axum::Error> {
    http_body_util::BodyExt::collect(response.into_body())
        .await
        .map(|c| c.to_bytes())
}

pub async fn json(response: Response<Body>) -> serde_json::Value {
    serde_json::from_slice(&body(response).await.unwrap()).unwrap()
}
