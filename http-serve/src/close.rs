//! Closing a connection on purpose: how a handler plays a refused or dropped connection
//! (the gateway's `network` / `refuse`, the Master's `drop`).
//!
//! A scripted "connection refused" or "connection dropped" must close the connection
//! before any response byte, and with hyper only a failing service does that. A handler
//! cannot fail (axum's handlers answer), so it answers with a response marked
//! [`CloseConnection`] ([`closed_connection`] builds one) and [`CloseConnectionLayer`],
//! at the edge of every server [`crate::serve`] runs, turns the marked response into a
//! service error. In process, without a socket, callers (the simulator) look for the
//! marker themselves; the marked response's body fails at once, so a caller that
//! ignores the marker still gets no answer.

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use std::error::Error;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tower::{BoxError, Layer, Service};

/// Put in a response's extensions, it makes [`CloseConnectionLayer`] close the
/// connection without answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseConnection;

/// The service error that makes hyper close a connection.
#[derive(Debug, thiserror::Error)]
#[error("connection closed without an answer (a scripted fault)")]
pub struct Closed;

/// A response that stands for a connection closed before any answer: marked
/// [`CloseConnection`], with `status` for in-process readers that look at it, and a
/// body that fails at once with `error` (what an in-process reader of the body sees).
pub fn closed_connection<E>(status: StatusCode, error: E) -> Response
where
    E: Error + Send + Sync + 'static,
{
    let body = Body::from_stream(futures_util::stream::once(
        async move { Err::<Bytes, E>(error) },
    ));
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.extensions_mut().insert(CloseConnection);
    response
}

/// The layer that closes the connection of every response marked [`CloseConnection`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CloseConnectionLayer;

impl<S> Layer<S> for CloseConnectionLayer {
    type Service = CloseOnMarker<S>;

    fn layer(&self, inner: S) -> CloseOnMarker<S> {
        CloseOnMarker { inner }
    }
}

/// The service of [`CloseConnectionLayer`]: a marked response becomes [`Closed`].
#[derive(Debug, Clone)]
pub struct CloseOnMarker<S> {
    inner: S,
}

impl<S, R, B> Service<R> for CloseOnMarker<S>
where
    S: Service<R, Response = http::Response<B>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<B>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<B>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await.map_err(Into::into)?;
            if response.extensions().get::<CloseConnection>().is_some() {
                return Err(Closed.into());
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::get;
    use tower::ServiceExt;

    #[derive(Debug, thiserror::Error)]
    #[error("gone")]
    struct Gone;

    /// A marked answer is an error at the edge; any other passes untouched; in process
    /// the marked answer's body fails.
    #[tokio::test]
    async fn marked_answers_close_the_connection() {
        let router = Router::new()
            .route(
                "/close",
                get(|| async { closed_connection(StatusCode::BAD_GATEWAY, Gone) }),
            )
            .route("/ok", get(|| async { "fine" }));
        let edge = CloseConnectionLayer.layer(router.clone());
        let call = |path: &str| {
            edge.clone()
                .oneshot(http::Request::get(path).body(Body::empty()).unwrap())
        };
        let err = call("/close").await.unwrap_err();
        assert!(err.is::<Closed>(), "{err}");
        assert_eq!(call("/ok").await.unwrap().status(), StatusCode::OK);

        let inner = router
            .oneshot(http::Request::get("/close").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(inner.status(), StatusCode::BAD_GATEWAY);
        assert!(inner.extensions().get::<CloseConnection>().is_some());
        let body = http_body_util::BodyExt::collect(inner.into_body()).await;
        assert!(body.is_err());
    }
}
