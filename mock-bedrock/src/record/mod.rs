//! Record and replay: a proxy that sends each Bedrock call to an upstream, passes
//! the response through to the caller unchanged, and writes each answer, with the
//! delays measured between its tokens, as a scenario `[[answers]]` entry (prompt,
//! model, tokens with `delay_ms`, usage, stop reason). Serving the written file
//! replays the answers: the same token texts at the same times.
//!
//! The file is the scenario the recorder was given with the recorded answers first
//! (so they win over its own), rewritten whole after each answer. Only what an answer
//! is made of is written: never a header, a credential or a request id. Errors,
//! exceptions and answers the caller left before their end are passed through and
//! not recorded.

mod capture;
mod upstream;

pub use capture::Capture;
pub use upstream::{
    HttpUpstream, RouterUpstream, SigningKeys, Upstream, UpstreamError, UpstreamFuture,
};

use crate::operations::Operation;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use http::{HeaderMap, Method, Request, StatusCode};
use picasso_core::Scenario;
use picasso_core::scenario::Answer;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::time::Instant;

/// Headers never forwarded: the caller's signature (made for this proxy, not the
/// upstream), hop-by-hop headers, and the length the client recomputes.
const DROPPED: [&str; 8] = [
    "authorization",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
    "host",
    "connection",
    "content-length",
    "transfer-encoding",
];

/// A recording proxy's state: the upstream, and the answers recorded so far.
#[derive(Debug, Clone)]
pub struct Recorder {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    upstream: Box<dyn Upstream>,
    sink: Mutex<Sink>,
    /// How many answers are recorded: an answer is recorded when its body is
    /// dropped, a moment after the caller saw its end, so a test waits on this.
    count: tokio::sync::watch::Sender<usize>,
}

#[derive(Debug)]
struct Sink {
    base: Scenario,
    path: Option<PathBuf>,
    recorded: Vec<Answer>,
    last_error: Option<String>,
}

impl Recorder {
    /// Records what `upstream` answers into `path` (when given): `base` with the
    /// recorded answers before its own.
    pub fn new(upstream: impl Upstream, base: Scenario, path: Option<PathBuf>) -> Recorder {
        Recorder {
            shared: Arc::new(Shared {
                upstream: Box::new(upstream),
                sink: Mutex::new(Sink {
                    base,
                    path,
                    recorded: Vec::new(),
                    last_error: None,
                }),
                count: tokio::sync::watch::Sender::new(0),
            }),
        }
    }

    fn sink(&self) -> MutexGuard<'_, Sink> {
        self.shared
            .sink
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The answers recorded so far, in the order they ended.
    pub fn recorded(&self) -> Vec<Answer> {
        self.sink().recorded.clone()
    }

    /// Waits until at least `n` answers are recorded (woken by each one, no
    /// polling), then returns them.
    pub async fn recorded_at_least(&self, n: usize) -> Vec<Answer> {
        let mut count = self.shared.count.subscribe();
        // The sender lives as long as `self`, so `wait_for` only ends when it holds.
        let _ = count.wait_for(|c| *c >= n).await;
        self.recorded()
    }

    /// The scenario the file holds: the base with the recorded answers first.
    pub fn scenario(&self) -> Scenario {
        self.sink().scenario()
    }

    /// The last failure to write the file, if any (the proxy goes on serving).
    pub fn last_error(&self) -> Option<String> {
        self.sink().last_error.clone()
    }

    fn record(&self, mut answer: Answer) {
        let mut sink = self.sink();
        answer.id = format!("recorded-{}", sink.recorded.len() + 1);
        sink.recorded.push(answer);
        if let Err(e) = sink.write() {
            tracing::warn!(error = %e, "record: cannot write the recording");
            sink.last_error = Some(e);
        }
        let recorded = sink.recorded.len();
        drop(sink);
        self.shared.count.send_replace(recorded);
    }
}

impl Sink {
    fn scenario(&self) -> Scenario {
        let mut scenario = self.base.clone();
        let mut answers = self.recorded.clone();
        answers.append(&mut scenario.answers);
        scenario.answers = answers;
        scenario
    }

    /// Rewrites the file whole (through a temporary file, so a reader never sees half).
    fn write(&self) -> Result<(), String> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let text = toml::to_string(&self.scenario()).map_err(|e| e.to_string())?;
        let header =
            "# Recorded by `picasso-sim serve --record-from`: the recorded answers come first.\n";
        let tmp = path.with_extension("toml.partial");
        std::fs::write(&tmp, format!("{header}{text}"))
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// The proxy's router: every request goes upstream; Bedrock's four operations are
/// recorded on their way back.
pub fn app(recorder: Recorder) -> Router {
    Router::new()
        .fallback(proxy)
        .layer(axum::extract::DefaultBodyLimit::max(
            crate::BODY_LIMIT_BYTES,
        ))
        .with_state(recorder)
}

async fn proxy(
    State(recorder): State<Recorder>,
    uri: http::Uri,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let capture = capture_for(&uri, &method, &headers, &body, started);
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in &headers {
        if !DROPPED.contains(&name.as_str()) {
            request = request.header(name, value);
        }
    }
    let Ok(request) = request.body(body) else {
        return (StatusCode::BAD_REQUEST, "unreadable request").into_response();
    };
    let response = match recorder.shared.upstream.call(request).await {
        Ok(response) => response,
        Err(e) => {
            tracing::warn!(error = %e, "record: upstream call failed");
            return (StatusCode::BAD_GATEWAY, e.to_string()).into_response();
        }
    };
    let (mut parts, body) = response.into_parts();
    parts.headers.remove(http::header::TRANSFER_ENCODING);
    parts.headers.remove(http::header::CONNECTION);
    let body = match capture {
        Some(capture) if parts.status == StatusCode::OK => tee(body, capture, recorder),
        _ => body,
    };
    Response::from_parts(parts, body)
}

/// A capture for a call to one of the four operations whose prompt can be read.
fn capture_for(
    uri: &http::Uri,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
    started: Instant,
) -> Option<Capture> {
    if method != Method::POST {
        return None;
    }
    let (model, action) = crate::whole::split_path(uri.path())?;
    let op = Operation::from_action(action)?;
    let parsed = crate::request::parse(op, headers, body).ok()?;
    Some(Capture::new(op, model, parsed.prompt, started))
}

/// The same body, read by `capture` as it passes; recorded when it is dropped
/// whole. Not at its end: a server that knows the length (`content-length`) stops
/// polling after the last byte, so the end may never be seen, but the drop always is.
fn tee(body: Body, capture: Capture, recorder: Recorder) -> Body {
    let state = (
        body.into_data_stream(),
        Tee {
            capture: Some(capture),
            recorder,
        },
    );
    Body::from_stream(futures_util::stream::unfold(
        state,
        |(mut stream, mut tee)| async move {
            match stream.next().await? {
                Ok(chunk) => {
                    if let Some(c) = tee.capture.as_mut() {
                        c.feed(&chunk, Instant::now());
                    }
                    Some((Ok(chunk), (stream, tee)))
                }
                Err(e) => {
                    tee.capture = None;
                    Some((Err(e), (stream, tee)))
                }
            }
        },
    ))
}

/// A capture that records its answer when dropped, if the answer is whole.
#[derive(Debug)]
struct Tee {
    capture: Option<Capture>,
    recorder: Recorder,
}

impl Drop for Tee {
    fn drop(&mut self) {
        if let Some(answer) = self.capture.take().and_then(Capture::finish) {
            self.recorder.record(answer);
        }
    }
}
