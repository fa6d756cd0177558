//! The Picasso widget as a pure state machine: `step(now_ms, input) -> Vec<Effect>`.
//!
//! The widget does no I/O and has no clock: the driver tells it what happened and
//! when, and carries out the effects it returns (fetch the config, open a stream,
//! POST to the regular chat, abort). Timers are deadlines the driver reads with
//! [`Widget::next_deadline`] and answers with [`Input::Timer`].
//!
//! Three policies share the inputs and effects:
//! - [`Policy::AsWritten`]: the design document's `useStreaming` hook and `ChatProvider`
//!   exactly as written, defects included ([`hook`]);
//! - [`Policy::NaiveFix`]: the same with the usual first patch, `onerror` tolerating
//!   transient errors (so the browser reconnects) and falling back only when CLOSED;
//! - [`Policy::Corrected`]: the per-message state machine of `widget-and-determinism.md`
//!   §B.7 ([`corrected`]).
//!
//! Every policy keeps a [`MessageRecord`] per message (what was sent, what the user saw,
//! how it ended) and the seed's [`Metrics`]; the invariant checks read those.

pub mod corrected;
pub mod decide;
pub mod hook;
pub mod js;

use crate::eventsource::{EsAction, EventSource, ReadyState};
use picasso_core::scenario::WidgetSettings;
use picasso_core::wire::{ChatRequest, TenantConfig};
use std::collections::BTreeMap;

/// Which widget logic runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Policy {
    /// The hook and provider as the design document writes them.
    AsWritten,
    /// The usual first patch: `onerror` ignores transient errors and falls back when CLOSED.
    NaiveFix,
    /// The corrected per-message state machine (§B.7).
    Corrected,
    /// A widget written in JavaScript ([`js`]), loaded with [`js::register`]; judged
    /// like `Corrected`.
    Js(js::JsWidgetId),
}

impl Policy {
    /// All three, in the order reports show them.
    pub const ALL: [Policy; 3] = [Policy::AsWritten, Policy::NaiveFix, Policy::Corrected];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Policy::AsWritten => "as-written",
            Policy::NaiveFix => "naive-fix",
            Policy::Corrected => "corrected",
            Policy::Js(id) => id.name(),
        }
    }

    /// Whether a broken invariant fails the job: the corrected policy and every
    /// JavaScript widget (the other two show the document's defects by design).
    pub fn judged(self) -> bool {
        matches!(self, Policy::Corrected | Policy::Js(_))
    }

    /// Parses [`Policy::name`].
    pub fn from_name(name: &str) -> Option<Policy> {
        Policy::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Identifies one `EventSource` object of a widget.
pub type ConnId = u64;
/// Identifies one POST of a widget.
pub type ReqId = u64;

/// What a session is: fixed for its whole life.
#[derive(Debug, Clone)]
pub struct SessionCtx {
    /// The scenario's seed (the as-written `Math.random()` draws from it).
    pub seed: u64,
    /// The tenant hash.
    pub tenant: String,
    /// The session id.
    pub session_id: String,
    /// Whether the browser has `EventSource`.
    pub event_source: bool,
    /// The widget's timers.
    pub settings: WidgetSettings,
}

/// What happened, as the driver tells the widget.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The config request ended: the config, or why there is none.
    ConfigLoaded(Result<TenantConfig, String>),
    /// The user sends a message.
    Send {
        /// The message id.
        message_id: String,
        /// What the user typed.
        text: String,
    },
    /// A stream's response headers.
    StreamResponse {
        /// Which `EventSource`.
        conn: ConnId,
        /// The HTTP status.
        status: u16,
        /// The `Content-Type`, if any.
        content_type: Option<String>,
    },
    /// Stream body bytes.
    StreamBody {
        /// Which `EventSource`.
        conn: ConnId,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// The stream body ended; `clean` unless it was reset.
    StreamEnd {
        /// Which `EventSource`.
        conn: ConnId,
        /// FIN / last chunk rather than a reset.
        clean: bool,
    },
    /// The stream request failed before any response.
    StreamNetworkError {
        /// Which `EventSource`.
        conn: ConnId,
    },
    /// The stream's response failed the CORS check: the page learns nothing of it but
    /// a fatal `error`.
    StreamCorsError {
        /// Which `EventSource`.
        conn: ConnId,
    },
    /// A POST's response.
    PostResponse {
        /// Which POST.
        req: ReqId,
        /// The HTTP status.
        status: u16,
        /// The body.
        body: Vec<u8>,
        /// `Retry-After`, in ms.
        retry_after_ms: Option<u64>,
    },
    /// A POST failed before any response.
    PostNetworkError {
        /// Which POST.
        req: ReqId,
    },
    /// A deadline passed (the driver passes the time to `step`).
    Timer,
    /// The page closes.
    Unmount,
}

/// What the widget asks the driver to do, or tells it for the transcript.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Fetch the tenant config.
    LoadConfig,
    /// Start a GET of the streaming endpoint for an `EventSource`.
    OpenStream {
        /// Which `EventSource`.
        conn: ConnId,
        /// The message the stream was opened for.
        message_id: String,
        /// The endpoint.
        url: String,
        /// The query parameters, in the order the hook builds them.
        params: Vec<(String, String)>,
        /// `Last-Event-ID`, when set.
        last_event_id: Option<String>,
    },
    /// Abort a stream's fetch (the `EventSource` was closed).
    AbortStream {
        /// Which `EventSource`.
        conn: ConnId,
    },
    /// POST to the regular chat.
    Post {
        /// Which POST.
        req: ReqId,
        /// The endpoint.
        url: String,
        /// The body.
        body: ChatRequest,
        /// Whether this POST is a fallback from a failed stream (STREAM_005).
        fallback: bool,
    },
    /// Abort a POST (timed out).
    AbortPost {
        /// Which POST.
        req: ReqId,
    },
    /// Something a person reading the transcript wants to know.
    Note {
        /// The message it concerns, if any.
        message_id: Option<String>,
        /// What happened.
        text: String,
    },
}

/// How a message ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Terminal {
    /// An answer is shown, from the stream or from the POST.
    Complete(Source),
    /// An error is shown.
    Failed {
        /// The code shown to the user.
        code: String,
    },
    /// The page closed first.
    Cancelled,
}

/// Where a shown answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The stream's `end` arrived.
    Stream,
    /// The regular chat (first choice or fallback).
    Post,
}

/// The mode a message was sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Through the streaming endpoint.
    Stream,
    /// Through the regular chat.
    Regular,
}

/// Everything the invariants need to know about one message, from the widget's side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    /// The message id.
    pub id: String,
    /// What the user typed.
    pub text: String,
    /// When it was sent (virtual ms).
    pub sent_at: u64,
    /// The mode chosen at send time.
    pub mode: Mode,
    /// Streaming GETs started for it (reconnects included).
    pub gets: u32,
    /// Of those, the ones that carried `Last-Event-ID`.
    pub gets_with_last_event_id: u32,
    /// POSTs started for it (retries included).
    pub posts: u32,
    /// Of those, the fallback ones.
    pub fallback_posts: u32,
    /// The `end` frame reached the widget for this message.
    pub end_seen: bool,
    /// Every text the bubble showed while live (streaming), in order, deduplicated.
    pub live_texts: LiveTexts,
    /// The text the bubble holds when the session ends.
    pub final_text: String,
    /// The error shown in the bubble, if any.
    pub error_shown: Option<String>,
    /// How it ended, the first time it did.
    pub terminal: Option<Terminal>,
    /// How many times a terminal state was entered (must be ≤ 1).
    pub terminal_count: u32,
    /// When it ended.
    pub finished_at: Option<u64>,
    /// Time from send to the first token shown.
    pub ttft_ms: Option<u64>,
    /// Errors logged to the console for it.
    pub errors_logged: u32,
    /// How long the widget waited on `Retry-After` (widens the liveness bound).
    pub retry_wait_ms: u64,
}

impl MessageRecord {
    fn new(id: &str, text: &str, sent_at: u64, mode: Mode) -> MessageRecord {
        MessageRecord {
            id: id.to_owned(),
            text: text.to_owned(),
            sent_at,
            mode,
            gets: 0,
            gets_with_last_event_id: 0,
            posts: 0,
            fallback_posts: 0,
            end_seen: false,
            live_texts: LiveTexts::default(),
            final_text: String::new(),
            error_shown: None,
            terminal: None,
            terminal_count: 0,
            finished_at: None,
            ttft_ms: None,
            errors_logged: 0,
            retry_wait_ms: 0,
        }
    }

    fn show_live(&mut self, text: &str) {
        self.live_texts.push(text);
    }

    fn finish(&mut self, now_ms: u64, terminal: Terminal) {
        self.terminal_count += 1;
        if self.terminal.is_none() {
            self.terminal = Some(terminal);
            self.finished_at = Some(now_ms);
        }
    }
}

/// The texts a bubble showed while streaming, in order, each different from the one
/// before. A stream shows its whole text so far after every token, so each text is kept
/// as what it shares with the one before and what it adds: the memory is the characters
/// added, not the texts (which grew with the square of an answer's tokens: 618 MB for
/// one 10,000-token answer).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveTexts {
    /// Per text: the bytes it keeps of the one before, then what follows them.
    steps: Vec<(usize, String)>,
    /// The last text whole.
    last: String,
}

impl LiveTexts {
    /// Records `text` unless it is the text shown last.
    fn push(&mut self, text: &str) {
        if !self.steps.is_empty() && self.last == text {
            return;
        }
        let kept = if text.starts_with(self.last.as_str()) {
            self.last.len()
        } else {
            common_prefix(&self.last, text)
        };
        self.steps.push((kept, text[kept..].to_owned()));
        self.last.truncate(kept);
        self.last.push_str(&text[kept..]);
    }

    /// Whether the bubble showed no live text.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// How many texts were shown.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// The texts, rebuilt one by one.
    pub fn texts(&self) -> Vec<String> {
        let mut text = String::new();
        self.steps
            .iter()
            .map(|(kept, added)| {
                text.truncate(*kept);
                text.push_str(added);
                text.clone()
            })
            .collect()
    }

    /// The first text shown that is not a prefix of `answer`: each text is checked
    /// by what it adds to one already checked, so the whole check reads each added
    /// character once.
    pub fn first_not_prefix_of(&self, answer: &str) -> Option<String> {
        let mut text = String::new();
        for (kept, added) in &self.steps {
            text.truncate(*kept);
            let fits = answer
                .get(*kept..)
                .is_some_and(|rest| rest.starts_with(added.as_str()));
            text.push_str(added);
            if !fits {
                return Some(text);
            }
        }
        None
    }
}

/// The length in bytes of the longest common prefix of `a` and `b`, on a character
/// boundary of both.
fn common_prefix(a: &str, b: &str) -> usize {
    a.char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map_or_else(|| a.len().min(b.len()), |((i, _), _)| i)
}

/// The seed's metrics (§Success Metrics), as the widget counts them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Streams started.
    pub streaming_started: u32,
    /// Streams that delivered a complete answer.
    pub streaming_completed: u32,
    /// Streams counted as failed.
    pub streaming_failed: u32,
    /// Fallbacks to the regular chat (STREAM_005).
    pub fallback_triggered: u32,
    /// Streams cancelled by the page closing.
    pub streaming_cancelled: u32,
    /// Time to first token of every streamed message that showed one.
    pub ttft_ms: Vec<u64>,
}

/// What the widget holds when the page closes: the leaks §B.7 invariant 10 counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Leaks {
    /// `EventSource`s not CLOSED.
    pub open_event_sources: u32,
    /// POSTs still in flight.
    pub posts_in_flight: u32,
    /// Timers still pending.
    pub timers: u32,
}

/// The widget of one session.
#[derive(Debug)]
pub enum Widget {
    /// As written or naive fix.
    Hook(Box<hook::Hook>),
    /// Corrected.
    Corrected(Box<corrected::Corrected>),
    /// JavaScript.
    Js(Box<js::JsWidget>),
}

impl Widget {
    /// A widget for one session under `policy`. Its first effect is [`Effect::LoadConfig`].
    pub fn new(policy: Policy, ctx: SessionCtx) -> (Widget, Vec<Effect>) {
        let widget = match policy {
            Policy::AsWritten => Widget::Hook(Box::new(hook::Hook::new(ctx, false))),
            Policy::NaiveFix => Widget::Hook(Box::new(hook::Hook::new(ctx, true))),
            Policy::Corrected => Widget::Corrected(Box::new(corrected::Corrected::new(ctx))),
            Policy::Js(id) => Widget::Js(Box::new(js::JsWidget::new(id, ctx))),
        };
        (widget, vec![Effect::LoadConfig])
    }

    /// Feeds one input at `now_ms`.
    pub fn step(&mut self, now_ms: u64, input: Input) -> Vec<Effect> {
        match self {
            Widget::Hook(h) => h.step(now_ms, input),
            Widget::Corrected(c) => c.step(now_ms, input),
            Widget::Js(j) => j.step(now_ms, input),
        }
    }

    /// The earliest pending deadline.
    pub fn next_deadline(&self) -> Option<u64> {
        match self {
            Widget::Hook(h) => h.next_deadline(),
            Widget::Corrected(c) => c.next_deadline(),
            Widget::Js(j) => j.next_deadline(),
        }
    }

    /// Whether the user would still be waiting for the current answer (cursor shown,
    /// POST in flight): the next message waits for this to clear.
    pub fn busy(&self) -> bool {
        match self {
            Widget::Hook(h) => h.busy(),
            Widget::Corrected(c) => c.busy(),
            Widget::Js(j) => j.busy(),
        }
    }

    /// Whether nothing is pending at all: no open stream, no POST, no timer.
    pub fn quiescent(&self) -> bool {
        self.leaks() == Leaks::default()
    }

    /// What is still open.
    pub fn leaks(&self) -> Leaks {
        match self {
            Widget::Hook(h) => h.leaks(),
            Widget::Corrected(c) => c.leaks(),
            Widget::Js(j) => j.leaks(),
        }
    }

    /// The messages, in send order.
    pub fn records(&self) -> Vec<MessageRecord> {
        match self {
            Widget::Hook(h) => h.records(),
            Widget::Corrected(c) => c.records(),
            Widget::Js(j) => j.records(),
        }
    }

    /// The metrics.
    pub fn metrics(&self) -> Metrics {
        match self {
            Widget::Hook(h) => h.metrics.clone(),
            Widget::Corrected(c) => c.metrics.clone(),
            Widget::Js(j) => j.metrics.clone(),
        }
    }

    /// Whether a config was actually received (not just attempted).
    pub fn has_config(&self) -> bool {
        let state = match self {
            Widget::Hook(h) => &h.config_state,
            Widget::Corrected(c) => &c.config_state,
            Widget::Js(j) => &j.config_state,
        };
        state.as_ref().is_some_and(|s| s.config.is_some())
    }

    /// Whether the config request has ended, with a config or without one.
    pub fn config_loaded(&self) -> bool {
        match self {
            Widget::Hook(h) => h.config_state.is_some(),
            Widget::Corrected(c) => c.config_state.is_some(),
            Widget::Js(j) => j.config_state.is_some(),
        }
    }

    /// How many `EventSource`s a Rust policy still holds (closed ones with nothing
    /// queued are forgotten).
    #[cfg(test)]
    pub(crate) fn sources_held(&self) -> usize {
        match self {
            Widget::Hook(h) => h.sources.map.len(),
            Widget::Corrected(c) => c.sources.map.len(),
            Widget::Js(_) => 0,
        }
    }

    /// Why the widget's code stopped for good (a JavaScript error or an exhausted
    /// instruction budget), if it did.
    pub fn failure(&self) -> Option<String> {
        match self {
            Widget::Js(j) => j.failure().map(str::to_owned),
            _ => None,
        }
    }
}

/// The `EventSource`s of a widget, by id, each with the message it was opened for. A
/// source that is closed and has nothing queued is forgotten: it can do nothing more
/// (what the network still delivers for it is ignored, as a closed source ignores it),
/// and a long session opens one per message, which every deadline query would walk.
#[derive(Debug, Default)]
pub(crate) struct Sources {
    next: ConnId,
    pub(crate) map: BTreeMap<ConnId, (EventSource, String)>,
}

impl Sources {
    /// `new EventSource(url)`: returns its id and the first fetch.
    pub(crate) fn open(&mut self, message_id: &str, reconnect_ms: u64) -> (ConnId, EsAction) {
        self.next += 1;
        let (es, first) = EventSource::new(reconnect_ms);
        self.map.insert(self.next, (es, message_id.to_owned()));
        (self.next, first)
    }

    /// `close()`; the abort effect when a fetch was running.
    pub(crate) fn close(&mut self, conn: ConnId) -> Option<Effect> {
        let (es, _) = self.map.get_mut(&conn)?;
        if es.ready_state() == ReadyState::Closed {
            return None;
        }
        let abort = es.close().then_some(Effect::AbortStream { conn });
        // Nothing is dispatched after `close()`, so nothing of it is left to pull.
        self.map.remove(&conn);
        abort
    }

    pub(crate) fn open_count(&self) -> u32 {
        self.map
            .values()
            .filter(|(es, _)| es.ready_state() != ReadyState::Closed)
            .count() as u32
    }

    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.map
            .values()
            .filter_map(|(es, _)| es.next_deadline())
            .min()
    }

    /// Feeds a network input to the right `EventSource`; the actions it queued are then
    /// pulled one at a time with [`Sources::pull`].
    pub(crate) fn feed(&mut self, now_ms: u64, input: &Input) -> Option<ConnId> {
        match input {
            Input::StreamResponse {
                conn,
                status,
                content_type,
            } => self
                .es(*conn)?
                .on_response(*status, content_type.as_deref()),
            Input::StreamBody { conn, bytes } => self.es(*conn)?.on_body(bytes),
            Input::StreamEnd { conn, .. } => self.es(*conn)?.on_body_end(now_ms),
            Input::StreamNetworkError { conn } => self.es(*conn)?.on_network_error(now_ms),
            Input::StreamCorsError { conn } => self.es(*conn)?.on_cors_failure(),
            _ => return None,
        }
        Some(input_conn(input))
    }

    /// The next action of `conn` to dispatch: pulled one at a time, so a `close()` in a
    /// handler stops the rest.
    pub(crate) fn pull(&mut self, conn: ConnId) -> Option<EsAction> {
        let es = self.es(conn)?;
        let action = es.next_action();
        if action.is_none() && es.ready_state() == ReadyState::Closed {
            self.map.remove(&conn);
        }
        action
    }

    /// The sources whose reconnect falls due at `now_ms` (their `Fetch` is queued).
    pub(crate) fn due(&mut self, now_ms: u64) -> Vec<ConnId> {
        let mut out = Vec::new();
        for (conn, (es, _)) in self.map.iter_mut() {
            if es.next_deadline().is_some_and(|d| d <= now_ms) {
                es.on_timer(now_ms);
                out.push(*conn);
            }
        }
        out
    }

    pub(crate) fn es(&mut self, conn: ConnId) -> Option<&mut EventSource> {
        self.map.get_mut(&conn).map(|(es, _)| es)
    }

    pub(crate) fn message_of(&self, conn: ConnId) -> Option<&str> {
        self.map.get(&conn).map(|(_, m)| m.as_str())
    }
}

fn input_conn(input: &Input) -> ConnId {
    match input {
        Input::StreamResponse { conn, .. }
        | Input::StreamBody { conn, .. }
        | Input::StreamEnd { conn, .. }
        | Input::StreamNetworkError { conn }
        | Input::StreamCorsError { conn } => *conn,
        _ => 0,
    }
}

/// The stream URL's query parameters, in the hook's order.
pub(crate) fn stream_params(
    ctx: &SessionCtx,
    message_id: &str,
    text: &str,
) -> Vec<(String, String)> {
    vec![
        ("tenant_hash".into(), ctx.tenant.clone()),
        ("user_input".into(), text.to_owned()),
        ("session_id".into(), ctx.session_id.clone()),
        ("message_id".into(), message_id.to_owned()),
    ]
}

/// The regular chat's body.
pub(crate) fn chat_body(ctx: &SessionCtx, message_id: &str, text: &str) -> ChatRequest {
    ChatRequest {
        tenant_hash: ctx.tenant.clone(),
        user_input: text.to_owned(),
        session_id: ctx.session_id.clone(),
        message_id: message_id.to_owned(),
    }
}

/// The chat endpoint the widget uses when the config names none (or failed to load).
pub const DEFAULT_CHAT_URL: &str = "/Master_Function?action=chat";

pub(crate) fn note(message_id: Option<&str>, text: impl Into<String>) -> Effect {
    Effect::Note {
        message_id: message_id.map(str::to_owned),
        text: text.into(),
    }
}

/// What the config told the widget.
#[derive(Debug, Clone)]
pub(crate) struct ConfigState {
    pub(crate) config: Option<TenantConfig>,
}

impl ConfigState {
    /// The chat URL a widget that reads `endpoints.chat` uses: the config's, the
    /// default when no config loaded, and what JavaScript makes of a missing key
    /// (`"undefined"`, a path on the page's own server) when the config has none, as
    /// the document's Master leaves it for streaming tenants.
    pub(crate) fn chat_url(&self) -> String {
        match &self.config {
            Some(c) => c
                .endpoints
                .chat
                .clone()
                .unwrap_or_else(|| UNDEFINED_CHAT_URL.to_owned()),
            None => DEFAULT_CHAT_URL.to_owned(),
        }
    }

    /// The chat URL a careful widget uses: the config's, else the Master's own (the
    /// widget loaded its config from the Master Function, whose chat action is fixed).
    pub(crate) fn chat_url_or_default(&self) -> String {
        self.config
            .as_ref()
            .and_then(|c| c.endpoints.chat.clone())
            .unwrap_or_else(|| DEFAULT_CHAT_URL.to_owned())
    }
}

/// Where `fetch(config.endpoints.chat)` goes when the key is missing: JavaScript turns
/// `undefined` into the relative URL `undefined`, on the page's own server.
pub const UNDEFINED_CHAT_URL: &str = "undefined";

/// Shortens text for a transcript line, quoted.
pub fn quote(text: &str) -> String {
    const MAX: usize = 60;
    let mut s: String = text.chars().take(MAX).collect();
    if text.chars().count() > MAX {
        s.push('…');
    }
    format!("{s:?}")
}

#[cfg(test)]
mod tests;
