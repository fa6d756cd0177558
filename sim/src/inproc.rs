//! The wiring that lets real servers talk to each other in-process, in virtual time.
//!
//! Under a paused tokio clock a real socket makes the runtime look idle, so timeouts
//! would fire at once (`widget-and-determinism.md` §A.1). Instead every hop is a call of
//! the next server's `Router` through `tower::ServiceExt::oneshot`:
//! - [`RouterHttpClient`]: an AWS SDK `HttpClient` whose connector hands each
//!   `http::Request<SdkBody>` to mock Bedrock's router and streams the body back;
//! - [`RouterConfigSource`]: the gateway's `ConfigSource`, asking the Master's router;
//! - [`VirtualTime`]: the SDK's clock (SigV4's `x-amz-date`), a fixed epoch plus tokio's
//!   virtual elapsed time.

use aws_smithy_async::time::TimeSource;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::Response as SmithyResponse;
use aws_smithy_types::body::SdkBody;
use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use gateway::{ConfigError, ConfigSource};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use picasso_core::wire::TenantConfig;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};
use tower::ServiceExt;

/// The virtual epoch: the design document's date, 2025-07-25T00:00:00Z.
pub const EPOCH_UNIX_S: u64 = 1_753_401_600;

/// The SDK's clock: a fixed epoch plus the virtual time elapsed since the world began.
#[derive(Debug, Clone, Copy)]
pub struct VirtualTime {
    start: tokio::time::Instant,
}

impl VirtualTime {
    /// A clock whose epoch is now (virtual).
    pub fn new() -> VirtualTime {
        VirtualTime {
            start: tokio::time::Instant::now(),
        }
    }
}

impl Default for VirtualTime {
    fn default() -> Self {
        VirtualTime::new()
    }
}

impl TimeSource for VirtualTime {
    fn now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(EPOCH_UNIX_S) + self.start.elapsed()
    }
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

/// The gateway's tenant configs, asked of the Master's router in-process.
#[derive(Debug, Clone)]
pub struct RouterConfigSource {
    master: Router,
}

impl RouterConfigSource {
    /// A source asking `master`.
    pub fn new(master: Router) -> RouterConfigSource {
        RouterConfigSource { master }
    }
}

impl ConfigSource for RouterConfigSource {
    fn tenant_config<'a>(
        &'a self,
        tenant_hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<TenantConfig>, ConfigError>> {
        Box::pin(async move {
            let uri = format!(
                "/Master_Function?action=get_config&t={}",
                crate::driver::percent_encode(tenant_hash)
            );
            let request = http::Request::get(uri)
                .body(Body::empty())
                .map_err(|e| ConfigError::Unavailable(e.to_string()))?;
            let response = self
                .master
                .clone()
                .oneshot(request)
                .await
                .map_err(|e| ConfigError::Unavailable(e.to_string()))?;
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| ConfigError::Unavailable(e.to_string()))?
                .to_bytes();
            match status {
                200 => serde_json::from_slice(&body)
                    .map(Some)
                    .map_err(|e| ConfigError::Malformed(e.to_string())),
                404 => Ok(None),
                s => Err(ConfigError::Unavailable(format!("status {s}"))),
            }
        })
    }
}
