//! The in-process transport of the Bedrock hop: an AWS SDK `HttpClient` that hands each
//! request to a router (`tower::ServiceExt::oneshot`, usually mock Bedrock's) and
//! streams the body back, with no socket.
//!
//! Under a paused tokio clock a real socket makes the runtime look idle, so timeouts
//! would fire at once (`widget-and-determinism.md` §A.1); the simulator, the servers'
//! tests and their benchmarks call mock Bedrock this way instead. Build the SDK client
//! with `bedrock_client::build_client(&config, Runtime { http_client:
//! Some(bedrock_client::in_process::http_client(router)), .. })`. When the SDK drops a response body,
//! the router's body is dropped with it, as a closed connection would: the journal
//! shows the call cut short.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::Response as SmithyResponse;
use aws_smithy_types::body::SdkBody;
use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use tower::ServiceExt;

/// An SDK client whose every call goes to `router` (usually `mock_bedrock::app(state)`):
/// dummy credentials, an endpoint that is never resolved, the SDK's own sleep and
/// clock. The servers' tests and benches take this one; a caller that must give the
/// SDK a clock or a sleep of its own (the simulator, under virtual time) builds its
/// client with [`crate::build_client`] and [`http_client`].
pub fn client(router: Router) -> aws_sdk_bedrockruntime::Client {
    crate::build_client(
        &crate::BedrockConfig::mock("http://bedrock.test"),
        crate::Runtime {
            http_client: Some(http_client(router)),
            ..crate::Runtime::default()
        },
    )
}

/// The SDK `HttpClient` for `router` (usually `mock_bedrock::app(state)`).
pub fn http_client(router: Router) -> SharedHttpClient {
    SharedHttpClient::new(RouterHttpClient::new(router))
}

/// An SDK `HttpClient` that calls a router in-process.
#[derive(Debug, Clone)]
pub struct RouterHttpClient {
    router: Router,
}

impl RouterHttpClient {
    /// A client whose every request goes to `router`.
    pub fn new(router: Router) -> RouterHttpClient {
        RouterHttpClient { router }
    }
}

impl HttpClient for RouterHttpClient {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

impl HttpConnector for RouterHttpClient {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let router = self.router.clone();
        HttpConnectorFuture::new(async move {
            let request = request
                .try_into_http1x()
                .map_err(|e| ConnectorError::other(e.into(), None))?;
            let (parts, body) = request.into_parts();
            let request = http::Request::from_parts(parts, Body::new(body));
            let response = router
                .oneshot(request)
                .await
                .map_err(|e| ConnectorError::other(e.into(), None))?;
            let (parts, body) = response.into_parts();
            let response =
                http::Response::from_parts(parts, SdkBody::from_body_1_x(SyncBody::new(body)));
            SmithyResponse::try_from(response).map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

/// The router's response body as the SDK needs it.
///
/// axum's `Body` is `Send` but not `Sync`; the SDK wants both. The body is only ever
/// polled through `&mut`, so a `Mutex` that is never locked (`get_mut`) adds `Sync`.
/// It is also fused: the SDK polls once more for trailers after the end, which hyper's
/// `Incoming` tolerates but a body built on `futures::stream::unfold` does not.
#[derive(Debug)]
struct SyncBody(Mutex<Body>, bool);

impl SyncBody {
    fn new(body: Body) -> SyncBody {
        SyncBody(Mutex::new(body), false)
    }

    fn body(&mut self) -> &mut Body {
        self.0.get_mut().unwrap_or_else(|p| p.into_inner())
    }
}

impl http_body::Body for SyncBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        if this.1 {
            return Poll::Ready(None);
        }
        let polled = Pin::new(this.body()).poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
            this.1 = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.1
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
