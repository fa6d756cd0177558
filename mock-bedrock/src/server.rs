//! Serving the router on a socket, and a wiremock-style handle for tests.
//!
//! The socket side is the one all three servers share (`http_serve::serve`): HTTP/1.1
//! and h2c (prior knowledge) on one port. The JS SDK only speaks HTTP/2 to Bedrock,
//! cleartext with prior knowledge against `http://`, and closes its session (GOAWAY) as
//! soon as a stream's headers arrive: hyper-util's `auto::Builder` detects the protocol
//! per connection, and hyper keeps writing the in-flight stream after the client's
//! GOAWAY (bedrock-wire.md §1). hyper's own bodiless `400`/`414` pass as hyper writes
//! them: Bedrock's error shape is not the gateway's `{"code", "message"}`.

use crate::app;
use crate::faults::ArmError;
use crate::journal::JournalEntry;
use crate::mounted::VerificationError;
use crate::state::MockState;
use http_serve::Edge;
use picasso_core::scenario::{Answer, Fault, Scenario};
use std::future::Future;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::time::Duration;

/// How long [`serve`] lets in-flight answers finish after shutdown is asked for.
pub const DRAIN: Duration = http_serve::SHUTDOWN_GRACE;

/// Serves mock Bedrock on `listener` until `shutdown` completes, then lets answers
/// in flight finish for up to [`DRAIN`] and closes the rest.
///
/// # Errors
///
/// None today: a failed accept (e.g. out of file descriptors) is logged and retried
/// after a pause, a failed connection is logged; the `Result` leaves room for
/// listener errors that should end the server.
pub async fn serve(
    listener: TcpListener,
    state: MockState,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve_router(listener, app(state), shutdown).await
}

/// Serves any router the way [`serve`] serves mock Bedrock (HTTP/1.1 and h2c, the
/// same drain): the recording proxy of [`crate::record`] is served with it.
///
/// # Errors
///
/// As [`serve`].
pub async fn serve_router(
    listener: TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    http_serve::serve(listener, router, shutdown, Edge::plain().grace(DRAIN)).await
}

/// A mock Bedrock on a loopback port, for tests: start it, point an SDK at
/// [`MockBedrock::endpoint`], read [`MockBedrock::journal`]. Dropping it shuts the
/// server down, cutting any stream still open.
#[derive(Debug)]
pub struct MockBedrock {
    state: MockState,
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl MockBedrock {
    /// Starts a mock playing `scenario` on `127.0.0.1`, on a port of the OS's choosing.
    ///
    /// # Panics
    ///
    /// When no loopback port can be bound: a test cannot go on without its mock.
    pub async fn start(scenario: Scenario) -> MockBedrock {
        MockBedrock::try_start(scenario)
            .await
            .expect("mock-bedrock: cannot bind 127.0.0.1:0")
    }

    /// Like [`MockBedrock::start`], reporting a failure to bind.
    ///
    /// # Errors
    ///
    /// The bind error.
    pub async fn try_start(scenario: Scenario) -> std::io::Result<MockBedrock> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let state = MockState::new(scenario);
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        // No drain: dropping the handle cuts any stream still open.
        tokio::spawn(http_serve::serve(
            listener,
            app(state.clone()),
            shutdown,
            Edge::plain().grace(Duration::ZERO),
        ));
        Ok(MockBedrock {
            state,
            address,
            stop: Some(stop),
        })
    }

    /// The endpoint to give an SDK, e.g. `http://127.0.0.1:41234`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The socket address served.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The shared state (scenario, faults, journal).
    pub fn state(&self) -> &MockState {
        &self.state
    }

    /// Every request so far, in arrival order.
    pub fn journal(&self) -> Vec<JournalEntry> {
        self.state.journal()
    }

    /// Arms `fault` for the next request it matches.
    ///
    /// # Errors
    ///
    /// [`ArmError`] when the fault cannot strike at Bedrock.
    pub fn arm(&self, fault: Fault) -> Result<(), ArmError> {
        self.state.arm(fault)
    }

    /// Scripts `answer` ahead of the scenario's own.
    pub fn script(&self, answer: Answer) {
        self.state.script(answer);
    }

    /// Every request so far, in arrival order (wiremock's `received_requests`).
    pub async fn received_requests(&self) -> Vec<JournalEntry> {
        self.state.journal()
    }

    /// Waits until `done` holds for the journal, woken by each change to it instead
    /// of polling; see [`MockState::wait_for`].
    pub async fn wait_for(&self, done: impl FnMut(&[JournalEntry]) -> bool) -> Vec<JournalEntry> {
        self.state.wait_for(done).await
    }

    /// Checks the expectations of the mocks mounted with [`crate::Mock::mount`] (the
    /// drop does the same, and panics with the report).
    ///
    /// # Errors
    ///
    /// The report of the unmet expectations and every request received.
    pub fn verify(&self) -> Result<(), VerificationError> {
        self.state.verify()
    }
}

impl Drop for MockBedrock {
    /// Stops the server, then checks the mounted mocks' expectations: an unmet one
    /// panics with the report (unless the test is already panicking, which would abort).
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Err(report) = self.state.verify()
            && !std::thread::panicking()
        {
            panic!("{report}");
        }
    }
}
