//! Test plumbing: mock Bedrock's router in-process behind the official SDK, and
//! helpers to call the Master's router.

use crate::{MasterOptions, MasterState};
use aws_sdk_bedrockruntime::Client;
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, SharedHttpConnector, http_client_fn,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::http::Response as SdkResponse;
use aws_smithy_types::body::SdkBody;
use axum::Router;
use axum::body::Body;
use bedrock_client::{BedrockConfig, Runtime, build_client};
use futures_util::StreamExt;
use http::{Request, Response};
use mock_bedrock::MockState;
use picasso_core::Scenario;
use tower::ServiceExt;

/// Hands the SDK's requests to a router in-process: no sockets, so a paused clock works.
#[derive(Debug, Clone)]
pub struct InProcess(pub Router);

impl HttpConnector for InProcess {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let router = self.0.clone();
        HttpConnectorFuture::new(async move {
            let request = request
                .try_into_http1x()
                .map_err(|e| ConnectorError::other(e.into(), None))?
                .map(Body::new);
            let response = match router.oneshot(request).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            SdkResponse::try_from(response.map(|b| SdkBody::from_body_1_x(sync_body(b))))
                .map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

/// `SdkBody` wants a `Sync` body and axum's is not: relay it through a channel. The
/// relay stops (dropping the router's body, as a closed connection would) as soon as
/// the SDK drops its end.
fn sync_body(body: Body) -> ChannelBody {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        let mut data = body.into_data_stream();
        loop {
            let next = tokio::select! {
                biased;
                _ = tx.closed() => return,
                next = data.next() => next,
            };
            let Some(chunk) = next else { return };
            if tx.send(chunk).await.is_err() {
                return;
            }
        }
    });
    ChannelBody(rx)
}

struct ChannelBody(tokio::sync::mpsc::Receiver<Result<bytes::Bytes, axum::Error>>);

impl http_body::Body for ChannelBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, axum::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|item| item.map(|r| r.map(http_body::Frame::data)))
    }
}

/// An SDK client whose every call goes to `router`.
pub fn client_for(router: Router) -> Client {
    let http = http_client_fn(move |_, _| SharedHttpConnector::new(InProcess(router.clone())));
    build_client(
        &BedrockConfig::mock("http://bedrock.test"),
        Runtime {
            http_client: Some(http),
            ..Runtime::default()
        },
    )
}

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
            bedrock: client_for(mock_bedrock::app(bedrock.clone())),
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
