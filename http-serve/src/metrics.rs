//! The metrics edge the gateway and the Master share: requests counted as they arrive
//! by a label the server derives from the method and URL ([`CountRequestsLayer`]), the
//! registry's text, and the `/metrics` answer ([`exposition`]).
//!
//! Which routes count and under which label is each server's policy (the gateway's
//! `route`, the Master's `action`); that a request is counted once, when its answer
//! starts (the first poll of the route's future, where the handler used to count it,
//! so a stream's `requests` still equals the sum of its outcomes), before any
//! extractor or handler can fail, is written once, here. Durations
//! (time to first token, the chat's answer time) stay with the servers: each measures
//! a different span of its own work, not the request's.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, Method, Uri, header};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// The content type of the text exposition `/metrics` serves.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The registry's text exposition (OpenMetrics flavour of the Prometheus format).
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

/// The `/metrics` answer for `text` (see [`render`]).
pub fn exposition(text: String) -> Response {
    let mut response = Response::new(Body::from(text));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

/// Counts each request in `family`, under the labels `classify` gives its method and
/// URL (`None`: not counted), when its answer starts.
pub struct CountRequestsLayer<L, F> {
    family: Family<L, Counter>,
    classify: F,
}

impl<L, F> CountRequestsLayer<L, F>
where
    L: Clone + Hash + Eq + EncodeLabelSet + fmt::Debug + Send + Sync + 'static,
    F: Fn(&Method, &Uri) -> Option<L> + Clone,
{
    /// Counts in `family` (registered by the server) by `classify`.
    pub fn new(family: Family<L, Counter>, classify: F) -> CountRequestsLayer<L, F> {
        CountRequestsLayer { family, classify }
    }
}

impl<L, F: Clone> Clone for CountRequestsLayer<L, F> {
    fn clone(&self) -> Self {
        CountRequestsLayer {
            family: self.family.clone(),
            classify: self.classify.clone(),
        }
    }
}

impl<L, F> fmt::Debug for CountRequestsLayer<L, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CountRequestsLayer").finish_non_exhaustive()
    }
}

impl<S, L, F: Clone> Layer<S> for CountRequestsLayer<L, F> {
    type Service = CountRequests<S, L, F>;

    fn layer(&self, inner: S) -> Self::Service {
        CountRequests {
            inner,
            family: self.family.clone(),
            classify: self.classify.clone(),
        }
    }
}

/// The service of [`CountRequestsLayer`].
pub struct CountRequests<S, L, F> {
    inner: S,
    family: Family<L, Counter>,
    classify: F,
}

impl<S: Clone, L, F: Clone> Clone for CountRequests<S, L, F> {
    fn clone(&self) -> Self {
        CountRequests {
            inner: self.inner.clone(),
            family: self.family.clone(),
            classify: self.classify.clone(),
        }
    }
}

impl<S, L, F> fmt::Debug for CountRequests<S, L, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CountRequests").finish_non_exhaustive()
    }
}

impl<S, B, L, F> Service<http::Request<B>> for CountRequests<S, L, F>
where
    S: Service<http::Request<B>>,
    S::Future: Send + 'static,
    L: Clone + Hash + Eq,
    F: Fn(&Method, &Uri) -> Option<L>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let counter = (self.classify)(request.method(), request.uri())
            .map(|labels| self.family.get_or_create(&labels).clone());
        let answer = self.inner.call(request);
        Box::pin(async move {
            if let Some(counter) = counter {
                counter.inc();
            }
            answer.await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::get;
    use tower::ServiceExt;

    #[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct Route {
        route: &'static str,
    }

    /// Requests are counted under their label when their answer starts (a handler
    /// that never finishes still counted), unlabelled ones not at all; the text shows
    /// the counts.
    #[tokio::test]
    async fn counts_by_label_on_arrival() {
        let family = Family::<Route, Counter>::default();
        let mut registry = Registry::with_prefix("test");
        registry.register("requests", "Requests by route", family.clone());
        let classify = |method: &Method, uri: &Uri| {
            (uri.path() == "/" && method == Method::GET).then_some(Route { route: "stream" })
        };
        let app = Router::new()
            .route("/", get(std::future::pending::<()>).post(|| async {}))
            .layer(CountRequestsLayer::new(family.clone(), classify));
        let call = |method: Method| {
            app.clone().oneshot(
                http::Request::builder()
                    .method(method)
                    .uri("/")
                    .body(Body::empty())
                    .unwrap(),
            )
        };
        let pending = tokio::time::timeout(std::time::Duration::ZERO, call(Method::GET)).await;
        assert!(pending.is_err(), "the handler never answers");
        call(Method::POST).await.unwrap();
        let text = render(&registry);
        assert!(
            text.contains(r#"test_requests_total{route="stream"} 1"#),
            "{text}"
        );
        assert_eq!(text.matches("test_requests_total{").count(), 1, "{text}");
        let response = exposition(text);
        assert_eq!(response.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
    }
}
