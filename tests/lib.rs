//! Shared helpers for the end-to-end tests: the three servers on loopback, wired to
//! each other as `picasso-sim serve` wires them, and a small SSE reader.

use bedrock_client::{BedrockConfig, Runtime, build_client};
use futures_util::StreamExt;
use gateway::{GatewayOptions, GatewayState, HttpConfigSource};
use mock_bedrock::MockBedrock;
use mock_master::{MasterOptions, MasterState};
use picasso_core::Scenario;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Foster Village (streams) and Austin Angels (does not), as in the default scenario.
pub const FOSTER: &str = "fo85e6a06dcdf4";
/// Austin Angels.
pub const AUSTIN: &str = "au47d9f8e2c31b";

/// Mock Bedrock, the Master and the gateway, each on `127.0.0.1:0`.
#[derive(Debug)]
pub struct Stack {
    /// Mock Bedrock (its journal shows every call).
    pub bedrock: MockBedrock,
    /// `http://127.0.0.1:PORT` of the Master.
    pub master: String,
    /// `http://127.0.0.1:PORT` of the gateway.
    pub gateway: String,
    /// The gateway's state.
    pub gateway_state: GatewayState,
    /// The Master's state.
    pub master_state: MasterState,
    stops: Vec<oneshot::Sender<()>>,
    tasks: Vec<JoinHandle<std::io::Result<()>>>,
}

impl Stack {
    /// Starts all three servers for `scenario`.
    ///
    /// # Panics
    ///
    /// When a loopback port cannot be bound.
    pub async fn start(scenario: Scenario) -> Stack {
        let bedrock = MockBedrock::start(scenario.clone()).await;
        let master_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let gateway_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let master = format!("http://{}", master_listener.local_addr().expect("addr"));
        let gateway = format!("http://{}", gateway_listener.local_addr().expect("addr"));
        let client = build_client(&BedrockConfig::mock(bedrock.endpoint()), Runtime::default());
        let master_state = MasterState::new(
            scenario.clone(),
            MasterOptions {
                chat_url: format!("{master}/Master_Function?action=chat"),
                streaming_url: Some(format!("{gateway}/")),
                bedrock: client.clone(),
            },
        );
        let gateway_state = GatewayState::new(
            scenario,
            GatewayOptions {
                config: Arc::new(HttpConfigSource::new(master.clone())),
                bedrock: client,
            },
        );
        let mut stops = Vec::new();
        let mut tasks = Vec::new();
        let (stop, stopped) = oneshot::channel::<()>();
        stops.push(stop);
        tasks.push(tokio::spawn(mock_master::serve(
            master_listener,
            master_state.clone(),
            async move {
                let _ = stopped.await;
            },
        )));
        let (stop, stopped) = oneshot::channel::<()>();
        stops.push(stop);
        tasks.push(tokio::spawn(gateway::serve(
            gateway_listener,
            gateway_state.clone(),
            async move {
                let _ = stopped.await;
            },
        )));
        Stack {
            bedrock,
            master,
            gateway,
            gateway_state,
            master_state,
            stops,
            tasks,
        }
    }

    /// The gateway URL for a stream request.
    pub fn stream_url(&self, tenant: &str, session: &str, message: &str, input: &str) -> String {
        format!(
            "{}/?tenant_hash={tenant}&user_input={}&session_id={session}&message_id={message}",
            self.gateway,
            input.replace(' ', "+")
        )
    }

    /// Shuts both servers down gracefully and waits for them.
    pub async fn stop(mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }

    /// Waits (real time, bounded) until `check` holds for the Bedrock journal.
    pub async fn wait_for_journal(
        &self,
        check: impl Fn(&[mock_bedrock::JournalEntry]) -> bool,
    ) -> bool {
        for _ in 0..200 {
            if check(&self.bedrock.journal()) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        false
    }
}

/// A reqwest client that never goes through a proxy (loopback only).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a reqwest client")
}

/// What reading an event stream gave: the frames (text between blank lines), and
/// whether the body failed rather than ended.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Read {
    /// Each frame's lines, without the blank line.
    pub frames: Vec<String>,
    /// Body chunks received.
    pub chunks: usize,
    /// The body failed (a dropped connection).
    pub failed: bool,
    /// The read gave up waiting (silence).
    pub timed_out: bool,
}

impl Read {
    /// The `data:` payloads.
    pub fn data(&self) -> Vec<String> {
        self.frames
            .iter()
            .filter_map(|f| {
                f.lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .map(str::to_owned)
            })
            .collect()
    }
}

/// Reads an event-stream body to its end, its failure, or `idle` of silence.
pub async fn read_stream(response: reqwest::Response, idle: Duration) -> Read {
    let mut read = Read::default();
    let mut text = String::new();
    let mut body = response.bytes_stream();
    loop {
        match tokio::time::timeout(idle, body.next()).await {
            Err(_) => {
                read.timed_out = true;
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(_))) => {
                read.failed = true;
                break;
            }
            Ok(Some(Ok(chunk))) => {
                read.chunks += 1;
                text.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = text.find("\n\n") {
                    read.frames.push(text[..end].to_owned());
                    text.drain(..end + 2);
                }
            }
        }
    }
    read
}
