//! The driver: carries a widget's effects to the in-process servers and feeds what
//! comes back into the widget, in virtual time.
//!
//! One task per session. It owns the widget, an inbox of [`Input`]s from the request
//! tasks it spawned, and the user's script (when each message is typed). Its loop
//! waits, `biased;`, on the inbox first and then on the earliest of the widget's
//! deadline, the next message and the page closing. Request tasks are aborted when the
//! widget aborts their request (which drops the response body, so the gateway and
//! Bedrock see the client leave) and when the session ends.

use crate::inproc::VirtualTime;
use crate::widget::{
    ConnId, Effect, Input, Leaks, MessageRecord, Metrics, Policy, ReqId, SessionCtx, Widget,
};
use axum::Router;
use axum::body::Body;
use bedrock_client::{BedrockConfig, Runtime};
use http_body_util::BodyExt;
use picasso_core::scenario::{Scenario, Session};
use picasso_core::wire::ChatRequest;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tower::ServiceExt;

/// The streaming endpoint the Master advertises in the simulated world.
pub const STREAM_URL: &str = "http://gateway.sim/";
/// The regular chat endpoint the Master advertises in the simulated world.
pub const CHAT_URL: &str = "http://master.sim/Master_Function?action=chat";
/// Mock Bedrock's address in the simulated world (never resolved: the client is in-process).
pub const BEDROCK_URL: &str = "http://bedrock.sim";

/// How long a user waits for an answer before typing the next message anyway.
pub const PATIENCE_MS: u64 = 120_000;
/// How long the page stays open after the last message if the widget never settles.
pub const LINGER_MS: u64 = 120_000;

/// The three servers, wired to each other in-process (`picasso_world::in_process`).
pub(crate) type World = picasso_world::InProcess;

/// Builds a fresh world. Call inside the (paused) runtime: the SDK's clock starts
/// now, and its sleep is tokio's (virtual).
pub(crate) fn build_world(scenario: &Scenario, transport: picasso_world::Transport) -> World {
    // A new config: a retry token bucket of this world's own.
    let config = BedrockConfig::mock(BEDROCK_URL);
    picasso_world::in_process(
        scenario,
        &picasso_world::Endpoints {
            chat_url: CHAT_URL.to_owned(),
            streaming_url: Some(STREAM_URL.to_owned()),
        },
        &config,
        || Runtime {
            http_client: None,
            sleep: Some(aws_smithy_async::rt::sleep::SharedAsyncSleep::new(
                aws_smithy_async::rt::sleep::TokioSleep::new(),
            )),
            time: Some(aws_smithy_async::time::SharedTimeSource::new(
                VirtualTime::new(),
            )),
            no_upload_stall_check: true,
        },
        transport,
    )
}

/// One streaming GET as the network saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRequest {
    /// The session.
    pub session: String,
    /// The tenant.
    pub tenant: String,
    /// The message.
    pub message: String,
    /// When it was sent.
    pub at_ms: u64,
    /// The status, if a response came.
    pub status: Option<u16>,
    /// `Last-Event-ID`, if sent.
    pub last_event_id: Option<String>,
    /// When its body ended (or it was aborted).
    pub ended_ms: Option<u64>,
}

/// What a run records besides the widgets: the transcript lines and the network's view.
#[derive(Debug)]
pub(crate) struct Log {
    start: Instant,
    record_lines: bool,
    pub(crate) lines: Vec<String>,
    pub(crate) streams: Vec<StreamRequest>,
}

pub(crate) type SharedLog = Arc<Mutex<Log>>;

impl Log {
    pub(crate) fn new(record_lines: bool) -> SharedLog {
        Arc::new(Mutex::new(Log {
            start: Instant::now(),
            record_lines,
            lines: Vec::new(),
            streams: Vec::new(),
        }))
    }
}

/// Virtual milliseconds since the run began.
pub(crate) fn now_ms(log: &SharedLog) -> u64 {
    lock(log).start.elapsed().as_millis() as u64
}

/// A std mutex is right: never held across an `.await`, each section a push.
pub(crate) fn lock(log: &SharedLog) -> MutexGuard<'_, Log> {
    log.lock().unwrap_or_else(|p| p.into_inner())
}

/// Appends `[t=000123ms] who  what`.
pub(crate) fn line(log: &SharedLog, who: &str, what: &str) {
    line_with(log, who, || what.to_owned());
}

/// [`line`] for a line written once per frame: `what` is only formatted when the run
/// keeps a transcript (a benchmark or a swarm case does not).
pub(crate) fn line_with(log: &SharedLog, who: &str, what: impl FnOnce() -> String) {
    let mut log = lock(log);
    if log.record_lines {
        let t = log.start.elapsed().as_millis();
        let what = what();
        log.lines.push(format!("[t={t:06}ms] {who:<24} {what}"));
    }
}

/// What one session's run produced.
#[derive(Debug, Clone)]
pub struct SessionResult {
    /// The session id.
    pub id: String,
    /// The tenant.
    pub tenant: String,
    /// Whether the browser had `EventSource`.
    pub event_source: bool,
    /// Whether the widget got a config (a failed load falls back to the regular chat).
    pub config_loaded: bool,
    /// The messages, in send order.
    pub messages: Vec<MessageRecord>,
    /// The widget's metrics.
    pub metrics: Metrics,
    /// What was still open after the page closed.
    pub leaks: Leaks,
    /// When the page closed.
    pub closed_at_ms: u64,
    /// When its config loaded (virtual ms): the config it decided with is the one in
    /// force then (see `Scenario::tenant_at`).
    pub config_at_ms: Option<u64>,
    /// Why the widget's code stopped, if it did (JavaScript widgets only).
    pub widget_error: Option<String>,
}

/// Percent-encodes a query component (everything but RFC 3986 unreserved characters).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

struct SessionRun {
    world: World,
    log: SharedLog,
    session: Session,
    origin: Option<String>,
    tx: mpsc::UnboundedSender<Input>,
    /// The config fetch, once started.
    config: Option<AbortHandle>,
    conns: BTreeMap<ConnId, AbortHandle>,
    posts: BTreeMap<ReqId, AbortHandle>,
    /// Idle keep-alive connections to the gateway.
    keep_alive: crate::netstack::KeepAlive,
    /// Until when (virtual ms) the page's browser holds a granted preflight for the chat
    /// POST (its preflight cache); 0 before the first is granted.
    preflight_until: Arc<AtomicU64>,
}

/// Runs one session to the page closing.
pub(crate) async fn run_session(
    world: World,
    scenario: Arc<Scenario>,
    session: Session,
    policy: Policy,
    log: SharedLog,
) -> SessionResult {
    tokio::time::sleep(Duration::from_millis(session.start_ms)).await;
    let ctx = SessionCtx {
        seed: scenario.seed,
        tenant: session.tenant.clone(),
        session_id: session.id.clone(),
        event_source: session.event_source,
        settings: scenario.widget,
    };
    let origin = session.origin.clone().or_else(|| {
        scenario
            .tenant(&session.tenant)
            .and_then(|t| t.allowed_origins.first().cloned())
    });
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (mut widget, first) = Widget::new(policy, ctx);
    let mut run = SessionRun {
        world,
        log: log.clone(),
        session: session.clone(),
        origin,
        tx,
        config: None,
        conns: BTreeMap::new(),
        posts: BTreeMap::new(),
        keep_alive: Default::default(),
        preflight_until: Default::default(),
    };
    let sid = session.id.clone();
    line(
        &log,
        &sid,
        &format!("page opens ({}, tenant {})", policy.name(), session.tenant),
    );
    run.perform(first);

    let mut next_msg = 0usize;
    let mut last_send: Option<u64> = None;
    let mut idle_since: Option<u64> = None;
    let mut config_at: Option<u64> = None;
    let forced_close = session
        .close_at_ms
        .map(|c| session.start_ms.saturating_add(c));
    loop {
        let now = now_ms(&log);
        // A widget that failed (a JavaScript widget that did not load, say) will never
        // load its config: the user types into the dead page all the same, and the
        // invariants judge what came of it.
        if config_at.is_none() && (widget.config_loaded() || widget.failure().is_some()) {
            config_at = Some(now);
        }
        if widget.busy() {
            idle_since = None;
        } else if idle_since.is_none() {
            idle_since = Some(now);
        }
        // When the user types the next message.
        let send_at = config_at.and_then(|c| {
            let m = session.messages.get(next_msg)?;
            let after_prev = match (next_msg, idle_since, last_send) {
                (0, _, _) => Some(c.saturating_add(m.think_ms)),
                (_, Some(idle), _) => Some(idle.saturating_add(m.think_ms)),
                (_, None, Some(sent)) => Some(sent.saturating_add(PATIENCE_MS)),
                _ => None,
            };
            match m.at_ms {
                Some(at) => Some(session.start_ms.saturating_add(at).max(c)),
                None => after_prev,
            }
        });
        // When the page closes: all sent and nothing pending, or the linger runs out.
        let all_sent = next_msg >= session.messages.len() && config_at.is_some();
        let natural_close = if all_sent {
            if widget.quiescent() {
                Some(now)
            } else {
                Some(last_send.unwrap_or(now).saturating_add(LINGER_MS))
            }
        } else {
            None
        };
        // Or when the user closes it (`close_at_ms`), whatever is pending.
        let close_at = match (natural_close, forced_close) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let wake = [
            widget.next_deadline(),
            send_at.map(|s| s.max(now)),
            close_at,
        ]
        .into_iter()
        .flatten()
        .min();
        if close_at.is_some_and(|c| c <= now) {
            if forced_close.is_some_and(|f| f <= now) && natural_close.is_none_or(|n| n > now) {
                line(&log, &sid, "user closes the page");
            }
            break;
        }
        // A wake-up past what the clock can hold (only a scenario that skipped
        // validation has one) never comes: `Instant + Duration` would panic.
        let sleep_until = wake.and_then(|w| log_start(&log).checked_add(Duration::from_millis(w)));
        // Nothing to wake for and nothing in flight that could send an input: waiting
        // would hang the run (the paused clock has no timer to advance to).
        if sleep_until.is_none() && run.idle() && rx.is_empty() {
            line(&log, &sid, "nothing left to happen");
            break;
        }
        tokio::select! {
            biased;
            input = rx.recv() => {
                let Some(input) = input else { break };
                let now = now_ms(&log);
                let fx = widget.step(now, input);
                run.perform(fx);
            }
            () = sleep_opt(sleep_until) => {
                let now = now_ms(&log);
                if widget.next_deadline().is_some_and(|d| d <= now) {
                    let fx = widget.step(now, Input::Timer);
                    run.perform(fx);
                }
                if send_at.is_some_and(|s| s <= now) {
                    let m = &session.messages[next_msg];
                    line(&log, &format!("{sid}/{}", m.id), &format!("user sends {}", crate::widget::quote(&m.text)));
                    let fx = widget.step(now, Input::Send { message_id: m.id.clone(), text: m.text.clone() });
                    next_msg += 1;
                    last_send = Some(now);
                    idle_since = None;
                    run.perform(fx);
                }
            }
        }
    }
    let now = now_ms(&log);
    let fx = widget.step(now, Input::Unmount);
    run.perform(fx);
    let leaks = widget.leaks();
    line(&log, &sid, "page closes");
    for (_, h) in std::mem::take(&mut run.conns) {
        h.abort();
    }
    for (_, h) in std::mem::take(&mut run.posts) {
        h.abort();
    }
    SessionResult {
        id: session.id.clone(),
        tenant: session.tenant.clone(),
        event_source: session.event_source,
        config_loaded: widget.has_config(),
        messages: widget.records(),
        metrics: widget.metrics(),
        leaks,
        closed_at_ms: now,
        config_at_ms: config_at,
        widget_error: widget.failure(),
    }
}

fn log_start(log: &SharedLog) -> Instant {
    lock(log).start
}

async fn sleep_opt(until: Option<Instant>) {
    match until {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl SessionRun {
    /// Whether every request task this page started has finished (so none can still
    /// send the session an input).
    fn idle(&self) -> bool {
        self.config
            .iter()
            .chain(self.conns.values())
            .chain(self.posts.values())
            .all(AbortHandle::is_finished)
    }

    fn who(&self, message: Option<&str>) -> String {
        match message {
            Some(m) => format!("{}/{m}", self.session.id),
            None => self.session.id.clone(),
        }
    }

    fn perform(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::LoadConfig => self.load_config(),
                Effect::OpenStream {
                    conn,
                    message_id,
                    params,
                    last_event_id,
                    ..
                } => self.open_stream(conn, message_id, params, last_event_id),
                Effect::AbortStream { conn } => {
                    if let Some(h) = self.conns.remove(&conn) {
                        h.abort();
                    }
                }
                Effect::Post {
                    req,
                    url,
                    body,
                    fallback,
                } => self.post(req, &url, body, fallback),
                Effect::AbortPost { req } => {
                    if let Some(h) = self.posts.remove(&req) {
                        line(&self.log, &self.who(None), &format!("POST #{req} aborted"));
                        h.abort();
                    }
                }
                Effect::Note { message_id, text } => {
                    line(&self.log, &self.who(message_id.as_deref()), &text);
                }
            }
        }
    }

    fn load_config(&mut self) {
        let master = self.world.master_router.clone();
        let tx = self.tx.clone();
        let log = self.log.clone();
        let who = self.who(None);
        let uri = format!(
            "/Master_Function?action=get_config&t={}",
            percent_encode(&self.session.tenant)
        );
        line(&log, &who, "GET config");
        let handle = tokio::spawn(async move {
            let result = match call(&master, http::Request::get(uri).body(Body::empty())).await {
                Ok((200, _, body)) => {
                    serde_json::from_slice(&body).map_err(|e| format!("malformed config: {e}"))
                }
                Ok((status, _, body)) => Err(format!(
                    "status {status}: {}",
                    String::from_utf8_lossy(&body)
                )),
                Err(e) => Err(e),
            };
            match &result {
                Ok(c) => {
                    let c: &picasso_core::wire::TenantConfig = c;
                    line(
                        &log,
                        &who,
                        &format!(
                            "config: streaming_enabled={} streaming_percentage={} streaming={}",
                            c.features.streaming_enabled,
                            c.features.streaming_percentage,
                            c.endpoints.streaming.as_deref().unwrap_or("(absent)")
                        ),
                    );
                }
                Err(e) => line(&log, &who, &format!("config failed: {e}")),
            }
            let _ = tx.send(Input::ConfigLoaded(result));
        });
        self.config = Some(handle.abort_handle());
    }

    fn open_stream(
        &mut self,
        conn: ConnId,
        message: String,
        params: Vec<(String, String)>,
        last_event_id: Option<String>,
    ) {
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", percent_encode(v)))
            .collect();
        let uri = format!("/?{}", query.join("&"));
        let mut builder = http::Request::get(uri)
            .header("accept", "text/event-stream")
            .header("cache-control", "no-cache");
        if let Some(origin) = &self.origin {
            builder = builder.header("origin", origin.as_str());
        }
        if let Some(id) = &last_event_id {
            builder = builder.header("last-event-id", id.as_str());
        }
        let who = self.who(Some(&message));
        let log = self.log.clone();
        line(
            &log,
            &who,
            &format!(
                "GET stream #{conn}{}",
                last_event_id
                    .as_deref()
                    .map(|i| format!(" Last-Event-ID: {i}"))
                    .unwrap_or_default()
            ),
        );
        let index = {
            let mut l = lock(&log);
            let at_ms = l.start.elapsed().as_millis() as u64;
            l.streams.push(StreamRequest {
                session: self.session.id.clone(),
                tenant: self.session.tenant.clone(),
                message,
                at_ms,
                status: None,
                last_event_id,
                ended_ms: None,
            });
            l.streams.len() - 1
        };
        let gateway = self.world.gateway_router.clone();
        let tx = self.tx.clone();
        let guard = EndGuard {
            log: log.clone(),
            index,
        };
        let page = Page {
            origin: self.origin.clone(),
            keep_alive: self.keep_alive.clone(),
        };
        let handle = tokio::spawn(async move {
            let _guard = guard;
            stream_task(gateway, builder, page, conn, tx, log, who, index).await;
        });
        self.conns.insert(conn, handle.abort_handle());
    }

    fn post(&mut self, req: ReqId, url: &str, body: ChatRequest, fallback: bool) {
        let who = self.who(Some(&body.message_id));
        let log = self.log.clone();
        line(
            &log,
            &who,
            &format!(
                "POST chat #{req}{}",
                if fallback { " (fallback)" } else { "" }
            ),
        );
        // The URL the widget chose: the Master's chat action (absolute, or relative to
        // the Master the config came from), or anything else, which lands on the page's
        // own server and gets its 404 (what `fetch(undefined)` does in a browser).
        if !url.ends_with("/Master_Function?action=chat") {
            line(
                &log,
                &who,
                &format!("POST #{req} → 404 from the page's own server (url {url:?})"),
            );
            let _ = self.tx.send(Input::PostResponse {
                req,
                status: 404,
                body: Vec::new(),
                retry_after_ms: None,
            });
            return;
        }
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut request = http::Request::post("/Master_Function?action=chat")
            .header("content-type", "application/json");
        if let Some(origin) = &self.origin {
            request = request.header("origin", origin.as_str());
        }
        let request = request.body(Body::from(json));
        let origin = self.origin.clone();
        let master = self.world.master_router.clone();
        let tx = self.tx.clone();
        let preflight_until = self.preflight_until.clone();
        let handle = tokio::spawn(async move {
            // A cross-origin page's JSON POST waits for its preflight, as in a browser;
            // a refused one is a network error, and the POST never leaves the page.
            if let Some(origin) = origin.as_deref()
                && let Err(why) = preflight(&master, origin, &preflight_until, &log).await
            {
                line(
                    &log,
                    &who,
                    &format!(
                        "POST #{req}: preflight {why}, blocked by CORS: the page sees a network error and the POST is not sent"
                    ),
                );
                let _ = tx.send(Input::PostNetworkError { req });
                return;
            }
            let input = match call(&master, request).await {
                Ok((status, headers, _))
                    if !crate::netstack::cors_allows(origin.as_deref(), &headers) =>
                {
                    line(
                        &log,
                        &who,
                        &format!(
                            "POST #{req} → {status}, blocked by CORS: the page sees a network error"
                        ),
                    );
                    Input::PostNetworkError { req }
                }
                Ok((status, headers, body)) => {
                    line(
                        &log,
                        &who,
                        &format!(
                            "POST #{req} → {status} {}",
                            crate::widget::quote(&String::from_utf8_lossy(&body))
                        ),
                    );
                    Input::PostResponse {
                        req,
                        status,
                        body,
                        retry_after_ms: crate::netstack::retry_after_ms(
                            origin.as_deref(),
                            &headers,
                        ),
                    }
                }
                Err(e) => {
                    line(&log, &who, &format!("POST #{req} failed: {e}"));
                    Input::PostNetworkError { req }
                }
            };
            let _ = tx.send(input);
        });
        self.posts.insert(req, handle.abort_handle());
    }
}

/// Marks a stream request ended when its task finishes or is aborted.
struct EndGuard {
    log: SharedLog,
    index: usize,
}

impl Drop for EndGuard {
    fn drop(&mut self) {
        let mut l = lock(&self.log);
        let now = l.start.elapsed().as_millis() as u64;
        if let Some(s) = l.streams.get_mut(self.index)
            && s.ended_ms.is_none()
        {
            s.ended_ms = Some(now);
        }
    }
}

/// What the page's network stack knows beyond one request.
struct Page {
    origin: Option<String>,
    keep_alive: crate::netstack::KeepAlive,
}

/// The chat POST's preflight, unless the page's browser still holds a granted one:
/// `OPTIONS` with the page's origin, asking for `POST` with `content-type`. A granted
/// answer is cached for its `Access-Control-Max-Age` (virtual time); a refusal says why.
/// Granted preflights are not written to the transcript (they change nothing a page or a
/// server does).
async fn preflight(
    master: &Router,
    origin: &str,
    until: &AtomicU64,
    log: &SharedLog,
) -> Result<(), String> {
    let now = now_ms(log);
    if now < until.load(Ordering::Relaxed) {
        return Ok(());
    }
    let request = http::Request::options("/Master_Function?action=chat")
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .body(Body::empty());
    let (status, headers, _) = call(master, request).await?;
    match crate::netstack::json_post_preflight(origin, status, &headers) {
        Some(max_age_ms) => {
            until.store(now + max_age_ms, Ordering::Relaxed);
            Ok(())
        }
        None => Err(format!("→ {status}")),
    }
}

/// One request to a router, the whole body read: status, headers, body.
async fn call(
    router: &Router,
    request: Result<http::Request<Body>, http::Error>,
) -> Result<(u16, http::HeaderMap, Vec<u8>), String> {
    let request = request.map_err(|e| e.to_string())?;
    let response = router
        .clone()
        .oneshot(request)
        .await
        .map_err(|e| e.to_string())?;
    // The Master marks a scripted `drop`: over a socket the connection closes unanswered.
    if response
        .extensions()
        .get::<mock_master::ConnectionDropped>()
        .is_some()
    {
        return Err("connection dropped: closed without an answer".into());
    }
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("connection dropped: {e}"))?
        .to_bytes();
    Ok((status, headers, body.to_vec()))
}

#[allow(clippy::too_many_arguments)]
async fn stream_task(
    gateway: Router,
    builder: http::request::Builder,
    page: Page,
    conn: ConnId,
    tx: mpsc::UnboundedSender<Input>,
    log: SharedLog,
    who: String,
    index: usize,
) {
    let mut reused = page.keep_alive.take();
    let response = loop {
        let request = match clone_get(&builder) {
            Some(r) => r,
            None => {
                let _ = tx.send(Input::StreamNetworkError { conn });
                return;
            }
        };
        let Ok(response) = gateway.clone().oneshot(request).await;
        if response
            .extensions()
            .get::<gateway::ConnectionRefused>()
            .is_none()
        {
            break response;
        }
        if reused {
            // Chromium re-sends a request that failed before any byte on a reused
            // keep-alive connection, at once, on a fresh one: no `error`, no wait.
            line(
                &log,
                &who,
                &format!(
                    "stream #{conn}: refused on a reused keep-alive connection; the browser re-sends at once"
                ),
            );
            reused = false;
            continue;
        }
        line(&log, &who, &format!("stream #{conn}: connection refused"));
        let _ = tx.send(Input::StreamNetworkError { conn });
        return;
    };
    if !crate::netstack::cors_allows(page.origin.as_deref(), response.headers()) {
        let status = response.status().as_u16();
        if let Some(s) = lock(&log).streams.get_mut(index) {
            s.status = Some(status);
        }
        line(
            &log,
            &who,
            &format!("stream #{conn} → {status}, blocked by CORS: fatal for the EventSource"),
        );
        let _ = tx.send(Input::StreamCorsError { conn });
        return;
    }
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(s) = lock(&log).streams.get_mut(index) {
        s.status = Some(status);
    }
    let mut body = response.into_body();
    if status != 200 {
        let text = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        line(
            &log,
            &who,
            &format!(
                "stream #{conn} → {status} {}",
                crate::widget::quote(&String::from_utf8_lossy(&text))
            ),
        );
        let _ = tx.send(Input::StreamResponse {
            conn,
            status,
            content_type,
        });
        return;
    }
    line(
        &log,
        &who,
        &format!(
            "stream #{conn} → 200 {}",
            content_type.as_deref().unwrap_or("(no content type)")
        ),
    );
    let _ = tx.send(Input::StreamResponse {
        conn,
        status,
        content_type,
    });
    loop {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    line_with(&log, &who, || {
                        if data.first() == Some(&b':') {
                            // A comment: the gateway's heartbeat. The page sees no event.
                            "heartbeat comment".to_owned()
                        } else {
                            format!("frame {}", compact_frame(&data))
                        }
                    });
                    let _ = tx.send(Input::StreamBody {
                        conn,
                        bytes: data.to_vec(),
                    });
                }
            }
            Some(Err(e)) => {
                line(&log, &who, &format!("stream #{conn} reset: {e}"));
                let _ = tx.send(Input::StreamEnd { conn, clean: false });
                return;
            }
            None => {
                line(&log, &who, &format!("stream #{conn} ends"));
                page.keep_alive.put();
                let _ = tx.send(Input::StreamEnd { conn, clean: true });
                return;
            }
        }
    }
}

/// A fresh GET from the builder's parts (a request is sent at most twice).
fn clone_get(builder: &http::request::Builder) -> Option<http::Request<Body>> {
    let uri = builder.uri_ref()?.clone();
    let mut request = http::Request::get(uri).body(Body::empty()).ok()?;
    *request.headers_mut() = builder.headers_ref()?.clone();
    Some(request)
}

/// An SSE chunk on one line: `id: m1:0 | data: {…}`.
fn compact_frame(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data);
    text.trim_end_matches(['\n', '\r'])
        .split('\n')
        .collect::<Vec<_>>()
        .join(" | ")
}
