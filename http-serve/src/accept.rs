//! The accept loop all three servers run: HTTP/1.1 and h2c (prior knowledge) on one
//! port, each connection behind [`CloseConnectionLayer`] and, where the server's
//! contract wants it, [`ParseErrorBodies`]; graceful shutdown within a grace period,
//! then every connection still open is cut.
//!
//! hyper-util's `auto` builder drives the connections (not `axum::serve`): it detects
//! the protocol per connection (the JS SDK speaks h2c with prior knowledge to Bedrock),
//! keeps writing an in-flight stream after the client's GOAWAY (bedrock-wire.md §1), and
//! lets a failing service close a connection unanswered, which `axum::serve` cannot.

use crate::close::CloseConnectionLayer;
use crate::parse_errors::ParseErrorBodies;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::io;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::Layer;

/// How long shutdown waits for open connections before cutting them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What differs between the servers at the socket: the code of the JSON body hyper's
/// own refusals get, and how long shutdown lets connections finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    parse_error_code: Option<&'static str>,
    grace: Duration,
}

impl Edge {
    /// hyper's bodiless `400`/`414` get `{"code": code, "message"}` (the gateway's and
    /// the Master's contracts); shutdown grace [`SHUTDOWN_GRACE`].
    pub fn json_errors(code: &'static str) -> Edge {
        Edge {
            parse_error_code: Some(code),
            grace: SHUTDOWN_GRACE,
        }
    }

    /// hyper's own answers pass as hyper writes them (mock Bedrock: Bedrock's error
    /// shape is not `{"code", "message"}`); shutdown grace [`SHUTDOWN_GRACE`].
    pub fn plain() -> Edge {
        Edge {
            parse_error_code: None,
            grace: SHUTDOWN_GRACE,
        }
    }

    /// The same edge with another shutdown grace (`Duration::ZERO`: a test's server
    /// that cuts its streams as soon as it is dropped).
    pub fn grace(self, grace: Duration) -> Edge {
        Edge { grace, ..self }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting, lets
/// open connections finish for the edge's grace period, and cuts the rest (a stalled
/// stream would otherwise hold its task for good).
///
/// # Errors
///
/// None today: a failed accept (e.g. out of file descriptors) is logged and retried
/// after a pause; the `Result` leaves room for listener errors that should end the
/// server.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()>,
    edge: Edge,
) -> io::Result<()> {
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    let hard_stop = CancellationToken::new();
    let service = TowerToHyperService::new(CloseConnectionLayer.layer(router));
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Frames are small and paced: send each as soon as it is written.
        let _ = stream.set_nodelay(true);
        let socket = TokioIo::new(ParseErrorBodies::new(stream, edge.parse_error_code));
        let connection = graceful.watch(
            builder
                .serve_connection(socket, service.clone())
                .into_owned(),
        );
        let stop = hard_stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                result = connection => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                }
                () = stop.cancelled() => {}
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(edge.grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("connections still open after the grace period: cut");
    }
    hard_stop.cancel();
    Ok(())
}
