//! Serving the gateway on a socket, with graceful shutdown: the shared socket side
//! (`http-serve`) with the gateway's own shutdown steps. On shutdown the accept loop
//! stops, every running generation ends with an error frame (so open streams get a
//! final frame and close), and connections finish, within a bounded grace period.
//! hyper's own bodiless `400`/`414`/`431` answers get the contract's `STREAM_003` body.

use crate::state::GatewayState;
use picasso_core::wire::Code;
use std::future::Future;
use tokio::net::TcpListener;

pub use http_serve::SHUTDOWN_GRACE;

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
    let on_shutdown = {
        let state = state.clone();
        async move {
            shutdown.await;
            // Before the connections drain: open streams get their final frame now.
            state.shutdown();
        }
    };
    let router = crate::app(state.clone());
    let edge = http_serve::Edge::json_errors(Code::Stream003.as_str()).one_accept_per_turn();
    http_serve::serve(listener, router, on_shutdown, edge).await?;
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, state.wait_for_generations()).await;
    Ok(())
}
