//! Serving the Master on a socket, with graceful shutdown: the shared socket side
//! (`http-serve`), so a `drop` fault closes the connection with no answer at all and
//! hyper's own bodiless `400`/`414`/`431` answers get an `INVALID_REQUEST` JSON body.

use crate::state::MasterState;
use axum::Router;
use std::future::Future;
use tokio::net::TcpListener;

pub use http_serve::SHUTDOWN_GRACE;

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
    http_serve::serve(
        listener,
        router,
        shutdown,
        http_serve::Edge::json_errors("INVALID_REQUEST"),
    )
    .await
}
