//! Shared helpers for the end-to-end tests: the three servers on loopback, wired to
//! each other as `picasso-sim serve` wires them, and a small SSE reader.

use futures_util::StreamExt;
use picasso_core::Scenario;
use picasso_world::Loopback;
use std::time::Duration;

/// Foster Village (streams) and Austin Angels (does not), as in the default scenario.
pub const FOSTER: &str = "fo85e6a06dcdf4";
/// Austin Angels.
pub const AUSTIN: &str = "au47d9f8e2c31b";

/// Mock Bedrock, the Master and the gateway, each on `127.0.0.1:0`, wired by the one
/// world builder (`picasso_world::Loopback`, whose fields it derefs to: `bedrock`,
/// `master`, `gateway`, `master_state`, `gateway_state`).
#[derive(Debug)]
pub struct Stack {
    world: Loopback,
}

impl std::ops::Deref for Stack {
    type Target = Loopback;

    fn deref(&self) -> &Loopback {
        &self.world
    }
}

impl Stack {
    /// Starts all three servers for `scenario`.
    ///
    /// # Panics
    ///
    /// When a loopback port cannot be bound.
    pub async fn start(scenario: Scenario) -> Stack {
        Stack {
            world: Loopback::start(scenario)
                .await
                .expect("bind loopback ports"),
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

    /// Shuts the Master and the gateway down gracefully and waits for them.
    pub async fn stop(self) {
        self.world.stop().await;
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
