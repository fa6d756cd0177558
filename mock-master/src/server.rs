//! Serving the Master on a socket, with graceful shutdown.
//!
//! hyper-util drives the connections so that a `drop` fault closes the connection
//! with no answer at all (only a failing service makes hyper do that).

use crate::faults::{ConnectionDropped, Dropped};
use crate::state::MasterState;
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

/// How long shutdown waits for requests in flight.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves `state` on `listener` until `shutdown` resolves, then lets requests in
/// flight finish (at most [`SHUTDOWN_GRACE`]).
///
/// # Errors
///
/// None today: accept errors are logged and retried.
pub async fn serve(
    listener: TcpListener,
    state: MasterState,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    serve_router(listener, crate::app(state), shutdown).await
}

/// As [`serve`], for a host that adds routes of its own to the Master's (`picasso-sim
/// serve` adds its demo page): a scripted `drop` still closes the connection for real.
///
/// # Errors
///
/// None today: accept errors are logged and retried.
pub async fn serve_router(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
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
        let connection = graceful.watch(
            builder
                .serve_connection(TokioIo::new(stream), service)
                .into_owned(),
        );
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        biased;
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(SHUTDOWN_GRACE) => tracing::warn!("requests still in flight after the grace period"),
    }
    Ok(())
}

async fn edge(router: Router, request: hyper::Request<Incoming>) -> Result<Response, Dropped> {
    let response = match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    if response.extensions().get::<ConnectionDropped>().is_some() {
        return Err(Dropped);
    }
    Ok(response)
}
