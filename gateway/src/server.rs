//! Serving the gateway on a socket, with graceful shutdown.
//!
//! hyper-util drives the connections (not `axum::serve`) for one reason: a
//! `network`/`refuse` fault must close the connection before any response byte, and
//! only a failing service does that. On shutdown the accept loop stops, every running
//! generation ends with an error frame (so open streams get a final frame and close),
//! and connections finish, within a bounded grace period.

use crate::faults::{ConnectionRefused, EdgeError};
use crate::state::GatewayState;
use axum::Router;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// How long shutdown waits for open connections before giving up on them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves `state` on `listener` until `shutdown` resolves, then shuts down gracefully.
///
/// # Errors
///
/// None today: accept errors (e.g. too many open files) are logged and retried.
pub async fn serve(
    listener: TcpListener,
    state: GatewayState,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let router = crate::app(state.clone());
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |request| edge(router.clone(), request));
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    state.shutdown();
    tokio::select! {
        biased;
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(SHUTDOWN_GRACE) => tracing::warn!("connections still open after the grace period"),
    }
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, state.wait_for_generations()).await;
    Ok(())
}

/// Runs the router; a response marked [`ConnectionRefused`] becomes a service error,
/// which makes hyper close the connection without answering.
async fn edge(router: Router, request: hyper::Request<Incoming>) -> Result<Response, EdgeError> {
    let response = match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    if response.extensions().get::<ConnectionRefused>().is_some() {
        return Err(EdgeError::Refused);
    }
    Ok(response)
}
