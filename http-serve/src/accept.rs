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
use crate::on_wake::on_wake;
use crate::parse_errors::ParseErrorBodies;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::io;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::Layer;

/// How long shutdown waits for open connections before cutting them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What differs between the servers at the socket: the code of the JSON body hyper's
/// own refusals get, how long shutdown lets connections finish, and whether a burst of
/// connects is accepted one per turn of the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    parse_error_code: Option<&'static str>,
    grace: Duration,
    one_accept_per_turn: bool,
}

impl Edge {
    /// hyper's bodiless `400`/`414`/`431` get `{"code": code, "message"}` (the gateway's and
    /// the Master's contracts); shutdown grace [`SHUTDOWN_GRACE`].
    pub fn json_errors(code: &'static str) -> Edge {
        Edge {
            parse_error_code: Some(code),
            grace: SHUTDOWN_GRACE,
            one_accept_per_turn: false,
        }
    }

    /// hyper's own answers pass as hyper writes them (mock Bedrock: Bedrock's error
    /// shape is not `{"code", "message"}`); shutdown grace [`SHUTDOWN_GRACE`].
    pub fn plain() -> Edge {
        Edge {
            parse_error_code: None,
            grace: SHUTDOWN_GRACE,
            one_accept_per_turn: false,
        }
    }

    /// The same edge with another shutdown grace (`Duration::ZERO`: a test's server
    /// that cuts its streams as soon as it is dropped).
    pub fn grace(self, grace: Duration) -> Edge {
        Edge { grace, ..self }
    }

    /// The same edge accepting one connection per turn of the scheduler, for a server
    /// whose set-up of a request is heavy beside the streams it already serves (the
    /// gateway: the request, the config, the SDK call). Accepted in one go, a burst of a
    /// thousand connects queues a thousand set-ups on the workers, and every paced frame
    /// whose timer fires meanwhile waits behind them: in `bench gateway` mock Bedrock's
    /// first token left up to 80 ms after its deadline and a third to a half of the runs
    /// had a pacing p99 over 5 ms. One per turn interleaves accepting with the running work
    /// (README, *Decisions*, has the numbers). Mock Bedrock's set-up is light and its
    /// bench shows no gain, but 4 % more CPU per frame, so it accepts in one go.
    pub fn one_accept_per_turn(self) -> Edge {
        Edge {
            one_accept_per_turn: true,
            ..self
        }
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
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // One buffer per write, not a `writev` of the chunk's size line, the frame and its
    // CRLF: frames are small, so copying them costs less than the vectored call. Mock
    // Bedrock at 1,000 streams, four interleaved pairs: 0.0098–0.0103 vs 0.0103–0.0105
    // CPU-s per 1,000 frames (lower in 4 of 4); the whole world unchanged (0.0193 vs
    // 0.0194, medians of 4).
    builder.http1().writev(false);
    // Shutdown in two steps, each a token every connection's task waits on: `graceful`
    // asks each connection to finish its in-flight requests and close, `hard_stop`
    // cuts what is still open after the grace period. (hyper-util's `GracefulShutdown`
    // did the first step, but its connection future checked its signal on every poll,
    // that is every frame of every stream; these are checked only when they fire, see
    // `on_wake`.)
    let graceful = CancellationToken::new();
    let hard_stop = CancellationToken::new();
    let connections = TaskTracker::new();
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
        let connection = builder
            .serve_connection(socket, service.clone())
            .into_owned();
        let (graceful, stop) = (graceful.clone(), hard_stop.clone());
        connections.spawn(async move {
            tokio::pin!(connection);
            let mut stop = on_wake(stop.cancelled_owned());
            let mut graceful = on_wake(graceful.cancelled_owned());
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = &mut stop => return,
                () = &mut graceful => {
                    connection.as_mut().graceful_shutdown();
                    tokio::select! {
                        result = connection.as_mut() => result,
                        () = &mut stop => return,
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
        if edge.one_accept_per_turn {
            tokio::task::yield_now().await;
        }
    }
    drop(listener);
    graceful.cancel();
    connections.close();
    if tokio::time::timeout(edge.grace, connections.wait())
        .await
        .is_err()
    {
        tracing::debug!("connections still open after the grace period: cut");
    }
    hard_stop.cancel();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::close::closed_connection;
    use axum::routing::get;
    use http::StatusCode;
    use std::net::SocketAddr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::sync::oneshot;

    #[derive(Debug, thiserror::Error)]
    #[error("gone")]
    struct Gone;

    type JoinHandle = tokio::task::JoinHandle<io::Result<()>>;

    fn router() -> Router {
        Router::new()
            .route("/ok", get(|| async { "fine" }))
            .route(
                "/close",
                get(|| async { closed_connection(StatusCode::BAD_GATEWAY, Gone) }),
            )
            .route("/never", get(std::future::pending::<()>))
    }

    /// Serves `router()` with `edge` on a loopback port; the sender stops it.
    async fn start(edge: Edge) -> (SocketAddr, oneshot::Sender<()>, JoinHandle) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(serve(listener, router(), shutdown, edge));
        (addr, stop, task)
    }

    /// Sends `request` as raw bytes and reads until the server closes the connection.
    async fn exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
        let mut socket = TcpStream::connect(addr).await.unwrap();
        socket.write_all(request).await.unwrap();
        let mut answer = Vec::new();
        // A bound for a failing test only: a passing one ends when the server closes.
        let read = tokio::time::timeout(Duration::from_secs(30), socket.read_to_end(&mut answer));
        let _ = read.await.expect("the server closes the connection");
        answer
    }

    const NOT_UTF8: &[u8] = b"GET /ok?q=\xff HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n";

    /// On a socket: a marked answer closes the connection before any byte, others pass;
    /// hyper's own `400` gets the edge's JSON body, or stays bare on a plain edge.
    #[tokio::test]
    async fn closes_marked_answers_and_gives_hypers_refusals_a_body() {
        let (addr, stop, task) = start(Edge::json_errors("TEST_CODE")).await;
        let ok = exchange(
            addr,
            b"GET /ok HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n",
        )
        .await;
        assert!(ok.starts_with(b"HTTP/1.1 200 OK\r\n"));
        assert!(ok.ends_with(b"fine"));
        let closed = exchange(addr, b"GET /close HTTP/1.1\r\nhost: t\r\n\r\n").await;
        assert!(closed.is_empty(), "{}", String::from_utf8_lossy(&closed));
        let refused = String::from_utf8(exchange(addr, NOT_UTF8).await).unwrap();
        assert!(refused.starts_with("HTTP/1.1 400 "), "{refused}");
        assert!(refused.contains(r#""code":"TEST_CODE""#), "{refused}");
        stop.send(()).unwrap();
        task.await.unwrap().unwrap();

        let (addr, stop, task) = start(Edge::plain()).await;
        let refused = String::from_utf8(exchange(addr, NOT_UTF8).await).unwrap();
        assert!(refused.starts_with("HTTP/1.1 400 "), "{refused}");
        assert!(refused.ends_with("\r\n\r\n"), "no body: {refused}");
        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
    }

    /// Shutdown stops accepting and, after the grace period, cuts a connection whose
    /// answer never comes: the serve future ends and the client sees the close.
    #[tokio::test]
    async fn shutdown_cuts_what_is_still_open_after_the_grace() {
        let (addr, stop, task) = start(Edge::plain().grace(Duration::ZERO)).await;
        let mut socket = TcpStream::connect(addr).await.unwrap();
        socket
            .write_all(b"GET /never HTTP/1.1\r\nhost: t\r\n\r\n")
            .await
            .unwrap();
        // The request is in once a second connection's answer came back.
        let ok = exchange(
            addr,
            b"GET /ok HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n",
        )
        .await;
        assert!(ok.ends_with(b"fine"));
        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(30), socket.read_to_end(&mut answer));
        let _ = read.await.expect("the connection is cut");
        assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "no longer accepting"
        );
    }

    /// What one thread runs while a burst of connects waits in the backlog: `R` for a
    /// request answered, `.` for a turn of another task that was ready all along (a
    /// paced stream, in a server). The clients connect and send before the server runs.
    async fn burst_order(edge: Edge) -> String {
        use std::sync::{Arc, Mutex};
        const CLIENTS: usize = 8;
        let log = Arc::new(Mutex::new(String::new()));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut clients = Vec::new();
        for _ in 0..CLIENTS {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            std::io::Write::write_all(&mut c, b"GET /r HTTP/1.1\r\nhost: t\r\n\r\n").unwrap();
            clients.push(c);
        }
        let router = {
            let log = log.clone();
            Router::new().route(
                "/r",
                get(move || async move {
                    log.lock().unwrap().push('R');
                    "r"
                }),
            )
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            listener,
            router,
            async move {
                let _ = stopped.await;
            },
            edge,
        ));
        let other = {
            let log = log.clone();
            tokio::spawn(async move {
                while log.lock().unwrap().matches('R').count() < CLIENTS {
                    log.lock().unwrap().push('.');
                    tokio::task::yield_now().await;
                }
            })
        };
        other.await.unwrap();
        stop.send(()).unwrap();
        drop(clients);
        server.await.unwrap().unwrap();
        log.lock().unwrap().clone()
    }

    /// `one_accept_per_turn`: a burst of connects is accepted one per turn, so a task
    /// that was ready runs between the set-ups instead of after all of them.
    #[tokio::test(flavor = "current_thread")]
    async fn a_burst_is_accepted_one_connection_per_turn() {
        let once = burst_order(Edge::plain()).await;
        assert!(once.contains("RRRRRRRR"), "in one go: {once}");
        let turns = burst_order(Edge::plain().one_accept_per_turn()).await;
        assert!(!turns.contains("RR"), "one per turn: {turns}");
        assert_eq!(turns.matches('R').count(), 8, "{turns}");
    }
}
