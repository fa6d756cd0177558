//! One way to wire a world: mock Bedrock, the Master Function and the streaming gateway,
//! each wired to the next the way production wires them (the gateway asks the Master for
//! tenant configs, both call Bedrock through the official SDK), either
//!
//! - [`in_process`]: every hop a call of the next server's router, no socket (what a
//!   paused tokio clock needs: the simulator, in-process tests and benches), or
//! - [`Loopback::start`]: each server on its own loopback port (what end-to-end tests
//!   and load tests need), or [`Loopback::start_with_bedrock_in_process`]: the Master
//!   and the gateway on ports, mock Bedrock called in process (the gateway's bench).
//!
//! Every port a world listens on is bound by [`listen`], with a backlog of
//! [`BACKLOG`] (`picasso-sim serve` binds its three ports with it too).
//!
//! One transport seam per hop: Bedrock through `bedrock_client::in_process` or the SDK's
//! own sockets (or, in process, [`DirectTransport`]: mock Bedrock's state asked without
//! the SDK, for campaigns; [`Transport`] chooses); the Master through `gateway::RouterConfigSource` or
//! `gateway::HttpConfigSource`. What differs between callers (the SDK's clock and sleep
//! under virtual time, the URLs a widget is given) is passed in, never rewired.

mod direct;

pub use direct::{DirectTransport, Transport};

use axum::Router;
use bedrock_client::{BedrockConfig, Runtime, build_client};
use gateway::{GatewayOptions, GatewayState, HttpConfigSource, RouterConfigSource};
use mock_bedrock::{MockBedrock, MockState};
use mock_master::{MasterOptions, MasterState};
use picasso_core::Scenario;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The URLs a widget is given in the tenant configs (the Master's `endpoints`).
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// `endpoints.chat`.
    pub chat_url: String,
    /// `endpoints.streaming` (for streaming tenants).
    pub streaming_url: Option<String>,
}

/// The three servers' states and routers, wired in process.
#[derive(Clone)]
pub struct InProcess {
    /// Mock Bedrock's state (journal, faults, mocks).
    pub bedrock: MockState,
    /// The Master's state.
    pub master: MasterState,
    /// The gateway's state.
    pub gateway: GatewayState,
    /// Mock Bedrock's router.
    pub bedrock_router: Router,
    /// The Master's router.
    pub master_router: Router,
    /// The gateway's router.
    pub gateway_router: Router,
}

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcess").finish_non_exhaustive()
    }
}

/// The world for `scenario`, wired in process. `runtime` gives each SDK client its
/// sleep and clock (tokio's and the system's when `Runtime::default()`); its HTTP client
/// is always the in-process one. `transport` is how the gateway and the Master call
/// Bedrock ([`Transport::Sdk`] unless a campaign asks for speed). Call inside the tokio
/// runtime the world will run on.
pub fn in_process(
    scenario: &Scenario,
    endpoints: &Endpoints,
    bedrock: &BedrockConfig,
    runtime: impl Fn() -> Runtime,
    transport: Transport,
) -> InProcess {
    let bedrock_state = MockState::new(scenario.clone());
    let bedrock_router = mock_bedrock::app(bedrock_state.clone());
    let sdk_runtime = || Runtime {
        http_client: Some(bedrock_client::in_process::http_client(
            bedrock_router.clone(),
        )),
        ..runtime()
    };
    let transport = || -> bedrock_client::Bedrock {
        match transport {
            Transport::Sdk => build_client(bedrock, sdk_runtime()).into(),
            Transport::Direct => bedrock_client::Bedrock::new(DirectTransport::new(
                bedrock_state.clone(),
                bedrock.clone(),
                sdk_runtime(),
            )),
        }
    };
    let master = MasterState::new(
        scenario.clone(),
        MasterOptions {
            chat_url: endpoints.chat_url.clone(),
            streaming_url: endpoints.streaming_url.clone(),
            bedrock: transport(),
        },
    );
    let master_router = mock_master::app(master.clone());
    let gateway = GatewayState::new(
        scenario.clone(),
        GatewayOptions {
            config: Arc::new(RouterConfigSource::new(master_router.clone())),
            bedrock: transport(),
        },
    );
    let gateway_router = gateway::app(gateway.clone());
    InProcess {
        bedrock: bedrock_state,
        master,
        gateway,
        bedrock_router,
        master_router,
        gateway_router,
    }
}

/// The Master and the gateway of a world served over HTTP, wired to each other: the
/// configs name `{master_url}/Master_Function?action=chat` and `gateway_url`, the gateway
/// asks the Master at `master_url` for tenant configs, and both call Bedrock with
/// `bedrock`. The caller binds and serves them (`serve` adds the demo page and admin
/// routes to the Master's port; [`Loopback`] serves them as they are).
pub fn over_http(
    scenario: &Scenario,
    master_url: &str,
    gateway_url: &str,
    bedrock: aws_sdk_bedrockruntime::Client,
) -> (MasterState, GatewayState) {
    let master = MasterState::new(
        scenario.clone(),
        MasterOptions {
            chat_url: format!("{master_url}/Master_Function?action=chat"),
            streaming_url: Some(gateway_url.to_owned()),
            bedrock: bedrock.clone().into(),
        },
    );
    let gateway = GatewayState::new(
        scenario.clone(),
        GatewayOptions {
            config: Arc::new(HttpConfigSource::new(master_url)),
            bedrock: bedrock.into(),
        },
    );
    (master, gateway)
}

/// The listen backlog of every socket a world listens on: a load test that opens
/// thousands of connections at once must find them queued, not dropped (a dropped SYN
/// is retried after a second, which a client measures as a second of latency that is
/// not the server's).
pub const BACKLOG: u32 = 8192;

/// A listener on `addr` with a backlog of [`BACKLOG`] (tokio's `TcpListener::bind`
/// takes the OS default, 128 on Linux) and `SO_REUSEADDR`, so a restarted server gets
/// its port back at once. Port 0: one of the OS's choosing.
///
/// # Errors
/// The socket, bind or listen error.
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// A loopback address on a port of the OS's choosing.
fn any_loopback_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// The Master and the gateway, each on its own `127.0.0.1` port, wired over loopback,
/// calling a Bedrock `B`: [`MockBedrock`] on its own port ([`Loopback::start`]), or mock
/// Bedrock's [`MockState`] called in process ([`Loopback::start_with_bedrock_in_process`],
/// for load tests whose file descriptors must all go to client and gateway sockets).
#[derive(Debug)]
pub struct Loopback<B = MockBedrock> {
    /// Mock Bedrock (its journal shows every call).
    pub bedrock: B,
    /// The SDK client the Master and the gateway call Bedrock with.
    pub bedrock_client: aws_sdk_bedrockruntime::Client,
    /// `http://127.0.0.1:PORT` of the Master.
    pub master: String,
    /// `http://127.0.0.1:PORT` of the gateway.
    pub gateway: String,
    /// The Master's state.
    pub master_state: MasterState,
    /// The gateway's state.
    pub gateway_state: GatewayState,
    stops: Vec<oneshot::Sender<()>>,
    tasks: Vec<JoinHandle<std::io::Result<()>>>,
}

impl Loopback {
    /// Starts all three servers for `scenario` on ports of the OS's choosing; the
    /// configs name the Master's chat and the gateway's URLs.
    ///
    /// # Errors
    /// A loopback port that cannot be bound.
    pub async fn start(scenario: Scenario) -> std::io::Result<Loopback> {
        let bedrock = MockBedrock::try_start(scenario.clone()).await?;
        let client = build_client(&BedrockConfig::mock(bedrock.endpoint()), Runtime::default());
        Loopback::serve(scenario, bedrock, client)
    }
}

impl Loopback<MockState> {
    /// Starts the Master and the gateway for `scenario` on ports of the OS's choosing,
    /// calling a mock Bedrock in process (`bedrock_client::in_process`), not over a
    /// socket.
    ///
    /// # Errors
    /// A loopback port that cannot be bound.
    pub async fn start_with_bedrock_in_process(
        scenario: Scenario,
    ) -> std::io::Result<Loopback<MockState>> {
        let bedrock = MockState::new(scenario.clone());
        let client = bedrock_client::in_process::client(mock_bedrock::app(bedrock.clone()));
        Loopback::serve(scenario, bedrock, client)
    }
}

impl<B> Loopback<B> {
    /// Binds the Master's and the gateway's ports, wires them with [`over_http`] to
    /// call Bedrock with `client`, and serves them.
    fn serve(
        scenario: Scenario,
        bedrock: B,
        client: aws_sdk_bedrockruntime::Client,
    ) -> std::io::Result<Loopback<B>> {
        let master_listener = listen(any_loopback_port())?;
        let gateway_listener = listen(any_loopback_port())?;
        let master = format!("http://{}", master_listener.local_addr()?);
        let gateway = format!("http://{}", gateway_listener.local_addr()?);
        let (master_state, gateway_state) =
            over_http(&scenario, &master, &format!("{gateway}/"), client.clone());
        let (stop_master, master_stopped) = oneshot::channel::<()>();
        let (stop_gateway, gateway_stopped) = oneshot::channel::<()>();
        let tasks = vec![
            tokio::spawn(mock_master::serve(
                master_listener,
                master_state.clone(),
                async move {
                    let _ = master_stopped.await;
                },
            )),
            tokio::spawn(gateway::serve(
                gateway_listener,
                gateway_state.clone(),
                async move {
                    let _ = gateway_stopped.await;
                },
            )),
        ];
        Ok(Loopback {
            bedrock,
            bedrock_client: client,
            master,
            gateway,
            master_state,
            gateway_state,
            stops: vec![stop_master, stop_gateway],
            tasks,
        })
    }

    /// Shuts the Master and the gateway down gracefully and waits for them (mock
    /// Bedrock stops when dropped).
    pub async fn stop(mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    /// In process: a stream through the gateway reaches mock Bedrock through the SDK,
    /// and the gateway's config came from the Master's router.
    #[tokio::test(start_paused = true)]
    async fn in_process_world_streams_an_answer() {
        let endpoints = Endpoints {
            chat_url: "http://master.test/Master_Function?action=chat".into(),
            streaming_url: Some("http://gateway.test/".into()),
        };
        let w = in_process(
            &Scenario::default_scenario(),
            &endpoints,
            &BedrockConfig::mock("http://bedrock.test"),
            Runtime::default,
            Transport::Sdk,
        );
        let request = http::Request::get(
            "/?tenant_hash=fo85e6a06dcdf4&user_input=Hello&session_id=s&message_id=m",
        )
        .body(axum::body::Body::empty())
        .unwrap();
        let response = w.gateway_router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains(r#"{"type": "end"}"#), "{text}");
        assert_eq!(w.bedrock.journal().len(), 1);
        let config = w.master.tenant_config("fo85e6a06dcdf4").unwrap();
        assert_eq!(
            config.endpoints.streaming.as_deref(),
            Some("http://gateway.test/")
        );
    }

    /// In process with the direct transport: the same answer, the same journal.
    #[tokio::test(start_paused = true)]
    async fn in_process_world_streams_the_same_answer_directly() {
        let endpoints = Endpoints {
            chat_url: "http://master.test/Master_Function?action=chat".into(),
            streaming_url: Some("http://gateway.test/".into()),
        };
        let mut bodies = Vec::new();
        let mut journals = Vec::new();
        for transport in [Transport::Sdk, Transport::Direct] {
            let w = in_process(
                &Scenario::default_scenario(),
                &endpoints,
                &BedrockConfig::mock("http://bedrock.test"),
                Runtime::default,
                transport,
            );
            let request = http::Request::get(
                "/?tenant_hash=fo85e6a06dcdf4&user_input=Hello&session_id=s&message_id=m",
            )
            .body(axum::body::Body::empty())
            .unwrap();
            let response = w.gateway_router.clone().oneshot(request).await.unwrap();
            bodies.push(response.into_body().collect().await.unwrap().to_bytes());
            journals.push(w.bedrock.journal());
        }
        assert_eq!(bodies[0], bodies[1]);
        assert_eq!(journals[0], journals[1]);
        assert_eq!(journals[1].len(), 1);
    }

    /// The Master and the gateway on loopback, mock Bedrock in process: a stream
    /// through the gateway's port reaches the in-process journal.
    #[tokio::test]
    async fn loopback_with_bedrock_in_process_streams_an_answer() {
        let w = Loopback::start_with_bedrock_in_process(Scenario::default_scenario())
            .await
            .unwrap();
        let url = format!(
            "{}/?tenant_hash=fo85e6a06dcdf4&user_input=Hello&session_id=s&message_id=m",
            w.gateway
        );
        let text = reqwest::get(url).await.unwrap().text().await.unwrap();
        assert!(text.contains(r#"{"type": "end"}"#), "{text}");
        assert_eq!(w.bedrock.journal().len(), 1);
        w.stop().await;
    }

    /// A listener takes the backlog asked for, on the address asked for.
    #[tokio::test]
    async fn listen_binds_the_address() {
        let listener = listen(any_loopback_port()).unwrap();
        let addr = listener.local_addr().unwrap();
        assert!(addr.ip().is_loopback());
        assert_ne!(addr.port(), 0);
        assert!(listen(addr).is_err(), "the port is taken");
    }

    /// On loopback: the three servers answer on their ports and stop cleanly.
    #[tokio::test]
    async fn loopback_world_starts_and_stops() {
        let w = Loopback::start(Scenario::default_scenario()).await.unwrap();
        assert!(w.master.starts_with("http://127.0.0.1:"));
        assert!(w.gateway.starts_with("http://127.0.0.1:"));
        assert_ne!(w.master, w.gateway);
        w.stop().await;
    }
}
