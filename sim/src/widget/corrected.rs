//! The corrected widget: `widget-and-determinism.md` §B.7.
//!
//! - The session is bucketed once, when the config arrives ([`super::decide::sticky`]).
//! - Every message owns its state, buffer, `EventSource` and timers; an event from a
//!   source that is no longer the message's current one is stale and ignored.
//! - `end` closes the source first, then commits the buffer.
//! - Any stream failure (refused, wrong type, drop, error frame, `T_connect`, `T_idle`,
//!   `T_total`) closes the source (so the browser never reconnects on its own) and falls
//!   back once to the regular chat (STREAM_005): the partial text is discarded and the
//!   POST's answer replaces it.
//! - A failed POST is retried at most once, after `Retry-After`; then the message fails
//!   with a visible code.
//! - With `widget.resume`, a dropped open stream gets one reconnect carrying
//!   `Last-Event-ID` before the fallback.

use super::{
    ConfigState, ConnId, Effect, Input, Leaks, MessageRecord, Metrics, Mode, ReqId, SessionCtx,
    Source, Sources, Terminal, chat_body, decide, note, quote, stream_params,
};
use crate::eventsource::{EsAction, ReadyState};
use picasso_core::wire::{ChatResponse, Code, StreamFrame};
use std::cell::Cell;
use std::collections::BTreeMap;

/// Unparseable frames tolerated before the stream counts as broken.
const MAX_MALFORMED: u32 = 3;
/// `Retry-After` when the response gives none.
const DEFAULT_RETRY_MS: u64 = 1_000;
/// The longest `Retry-After` honoured: a user does not wait longer.
const MAX_RETRY_MS: u64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// `new EventSource`, waiting for `open` until `deadline` (T_connect).
    Connecting { conn: ConnId, deadline: u64 },
    /// Streaming; T_idle and T_total run.
    Open {
        conn: ConnId,
        idle_at: u64,
        total_at: u64,
    },
    /// Resume mode: waiting for the browser's one reconnect with `Last-Event-ID`.
    Resuming {
        conn: ConnId,
        deadline: u64,
        total_at: u64,
    },
    /// A POST in flight (T_post).
    Posting { req: ReqId, deadline: u64 },
    /// Waiting out `Retry-After` before the one retry.
    Retrying { at: u64 },
    /// Complete, Failed or Cancelled.
    Done,
}

#[derive(Debug)]
struct Msg {
    rec: MessageRecord,
    state: State,
    buffer: String,
    malformed: u32,
    resumed: bool,
    /// POST attempts so far.
    attempts: u32,
    /// Whether the POSTs are a fallback, and the stream failure that caused it.
    fallback_from: Option<Code>,
}

/// The corrected widget of one session.
#[derive(Debug)]
pub struct Corrected {
    ctx: SessionCtx,
    pub(crate) config_state: Option<ConfigState>,
    /// The session's streaming URL, when the sticky decision says stream.
    stream_url: Option<String>,
    pub(crate) sources: Sources,
    msgs: BTreeMap<String, Msg>,
    order: Vec<String>,
    /// How many messages at the start of `order` are settled (`Done` is final): the
    /// queries asked on every step start after them, so a long session does not walk
    /// its whole history each time. Advanced by those `&self` queries, hence a `Cell`.
    settled: Cell<usize>,
    next_req: ReqId,
    reqs: BTreeMap<ReqId, String>,
    pub(crate) metrics: Metrics,
}

impl Corrected {
    pub(crate) fn new(ctx: SessionCtx) -> Corrected {
        Corrected {
            ctx,
            config_state: None,
            stream_url: None,
            sources: Sources::default(),
            msgs: BTreeMap::new(),
            order: Vec::new(),
            settled: Cell::new(0),
            next_req: 0,
            reqs: BTreeMap::new(),
            metrics: Metrics::default(),
        }
    }

    pub(crate) fn step(&mut self, now_ms: u64, input: Input) -> Vec<Effect> {
        let mut out = Vec::new();
        match input {
            Input::ConfigLoaded(result) => self.on_config(result, &mut out),
            Input::Send { message_id, text } => self.send(now_ms, &message_id, &text, &mut out),
            Input::StreamResponse { .. }
            | Input::StreamBody { .. }
            | Input::StreamEnd { .. }
            | Input::StreamNetworkError { .. }
            | Input::StreamCorsError { .. } => {
                if let Some(conn) = self.sources.feed(now_ms, &input) {
                    while let Some(a) = self.sources.pull(conn) {
                        self.on_es_action(now_ms, conn, a, &mut out);
                    }
                }
            }
            Input::PostResponse {
                req,
                status,
                body,
                retry_after_ms,
            } => self.on_post(now_ms, req, Some((status, body, retry_after_ms)), &mut out),
            Input::PostNetworkError { req } => self.on_post(now_ms, req, None, &mut out),
            Input::Timer => self.on_timer(now_ms, &mut out),
            Input::Unmount => self.unmount(now_ms, &mut out),
        }
        out
    }

    fn on_config(
        &mut self,
        result: Result<picasso_core::wire::TenantConfig, String>,
        out: &mut Vec<Effect>,
    ) {
        let config = match result {
            Ok(c) => Some(c),
            Err(e) => {
                out.push(note(
                    None,
                    format!("config unavailable ({e}): regular chat"),
                ));
                None
            }
        };
        if let Some(c) = &config {
            let eligible = decide::eligible(c, self.ctx.event_source);
            let p = c.features.streaming_percentage;
            let bucket = decide::bucket(&self.ctx.tenant, &self.ctx.session_id);
            let admitted = decide::admitted(p);
            let stream = eligible.is_some() && bucket < admitted;
            out.push(note(
                None,
                match &eligible {
                    None => "decision: regular (streaming not enabled, no streaming URL, or no EventSource)".to_owned(),
                    Some(_) => format!(
                        "decision: {} (bucket {bucket} {} {admitted} for {p} %)",
                        if stream { "stream" } else { "regular" },
                        if stream { "<" } else { ">=" }
                    ),
                },
            ));
            self.stream_url = eligible.filter(|_| stream);
        }
        self.config_state = Some(ConfigState { config });
    }

    fn send(&mut self, now_ms: u64, id: &str, text: &str, out: &mut Vec<Effect>) {
        if self.msgs.contains_key(id) {
            out.push(note(Some(id), "duplicate send ignored"));
            return;
        }
        let mode = if self.stream_url.is_some() {
            Mode::Stream
        } else {
            Mode::Regular
        };
        let msg = Msg {
            rec: MessageRecord::new(id, text, now_ms, mode),
            state: State::Done,
            buffer: String::new(),
            malformed: 0,
            resumed: false,
            attempts: 0,
            fallback_from: None,
        };
        self.msgs.insert(id.to_owned(), msg);
        self.order.push(id.to_owned());
        match self.stream_url.clone() {
            Some(_) => {
                let (conn, first) = self.sources.open(id, self.ctx.settings.reconnect_ms);
                self.metrics.streaming_started += 1;
                self.set(
                    id,
                    State::Connecting {
                        conn,
                        deadline: now_ms.saturating_add(self.ctx.settings.connect_timeout_ms),
                    },
                );
                self.on_es_action(now_ms, conn, first, out);
            }
            None => self.post(now_ms, id, out),
        }
    }

    fn set(&mut self, id: &str, state: State) {
        if let Some(m) = self.msgs.get_mut(id) {
            m.state = state;
        }
    }

    /// The message whose *current* source is `conn`, if any (else the event is stale).
    fn owner(&self, conn: ConnId) -> Option<String> {
        let id = self.sources.message_of(conn)?;
        let m = self.msgs.get(id)?;
        match m.state {
            State::Connecting { conn: c, .. }
            | State::Open { conn: c, .. }
            | State::Resuming { conn: c, .. }
                if c == conn =>
            {
                Some(id.to_owned())
            }
            _ => None,
        }
    }

    fn on_es_action(&mut self, now_ms: u64, conn: ConnId, action: EsAction, out: &mut Vec<Effect>) {
        let Some(id) = self.owner(conn) else {
            return;
        };
        let s = self.ctx.settings;
        match action {
            EsAction::Fetch { last_event_id } => {
                let url = self.stream_url.clone().unwrap_or_default();
                let text = self.msgs[&id].rec.text.clone();
                let m = self.msgs.get_mut(&id).expect("owner exists");
                m.rec.gets += 1;
                m.rec.gets_with_last_event_id += u32::from(last_event_id.is_some());
                out.push(Effect::OpenStream {
                    conn,
                    message_id: id.clone(),
                    url,
                    params: stream_params(&self.ctx, &id, &text),
                    last_event_id,
                });
            }
            EsAction::Open => {
                let total_at = match self.msgs[&id].state {
                    State::Resuming { total_at, .. } => total_at,
                    _ => now_ms.saturating_add(s.total_timeout_ms),
                };
                self.set(
                    &id,
                    State::Open {
                        conn,
                        idle_at: now_ms.saturating_add(s.idle_timeout_ms),
                        total_at,
                    },
                );
            }
            EsAction::Message {
                event_type, data, ..
            } => {
                if event_type == "message" {
                    self.on_frame(now_ms, &id, conn, &data, out);
                }
            }
            EsAction::Error { ready_state } => self.on_error(now_ms, &id, conn, ready_state, out),
        }
    }

    fn on_frame(&mut self, now_ms: u64, id: &str, conn: ConnId, data: &str, out: &mut Vec<Effect>) {
        let idle = self.ctx.settings.idle_timeout_ms;
        let m = self.msgs.get_mut(id).expect("owner exists");
        let State::Open { total_at, .. } = m.state else {
            return;
        };
        match StreamFrame::parse(data) {
            Some(StreamFrame::Text(t)) => {
                m.buffer.push_str(&t);
                m.state = State::Open {
                    conn,
                    idle_at: now_ms.saturating_add(idle),
                    total_at,
                };
                if m.rec.ttft_ms.is_none() && !t.is_empty() {
                    let ttft = now_ms.saturating_sub(m.rec.sent_at);
                    m.rec.ttft_ms = Some(ttft);
                    self.metrics.ttft_ms.push(ttft);
                }
                let buffer = m.buffer.clone();
                m.rec.show_live(&buffer);
            }
            Some(StreamFrame::End) => {
                // close() first, so the browser cannot reconnect after the body ends.
                if let Some(abort) = self.sources.close(conn) {
                    out.push(abort);
                }
                let m = self.msgs.get_mut(id).expect("owner exists");
                m.rec.end_seen = true;
                m.rec.final_text = m.buffer.clone();
                m.rec.finish(now_ms, Terminal::Complete(Source::Stream));
                m.state = State::Done;
                self.metrics.streaming_completed += 1;
                out.push(note(
                    Some(id),
                    format!("complete (stream): {}", quote(&m.rec.final_text)),
                ));
            }
            Some(StreamFrame::Error { code, message }) => {
                let code = Code::parse(&code).unwrap_or(Code::Stream001);
                out.push(note(Some(id), format!("error frame {code}: {message}")));
                self.close_and_fall_back(now_ms, id, conn, code, out);
            }
            None => {
                m.malformed += 1;
                out.push(note(
                    Some(id),
                    format!("unparseable frame ignored: {}", quote(data)),
                ));
                if m.malformed >= MAX_MALFORMED {
                    // A stream that fails: STREAM_003 is the server's "invalid
                    // parameters", not something this page could tell.
                    self.close_and_fall_back(now_ms, id, conn, Code::Stream001, out);
                }
            }
        }
    }

    fn on_error(
        &mut self,
        now_ms: u64,
        id: &str,
        conn: ConnId,
        ready_state: ReadyState,
        out: &mut Vec<Effect>,
    ) {
        let s = self.ctx.settings;
        let m = self.msgs.get_mut(id).expect("owner exists");
        let last_id = self
            .sources
            .es(conn)
            .map(|es| es.last_event_id().to_owned())
            .unwrap_or_default();
        if let State::Open { total_at, .. } = m.state
            && ready_state == ReadyState::Connecting
            && s.resume
            && !m.resumed
            && !last_id.is_empty()
        {
            m.resumed = true;
            let wait = self
                .sources
                .es(conn)
                .map_or(s.reconnect_ms, |es| es.reconnection_ms());
            m.state = State::Resuming {
                conn,
                deadline: now_ms
                    .saturating_add(wait)
                    .saturating_add(s.connect_timeout_ms),
                total_at,
            };
            out.push(note(
                Some(id),
                format!("onerror (CONNECTING): resuming after {last_id}"),
            ));
            return;
        }
        // A page sees only `error` and a readyState, never the status behind it: every
        // stream failure is the document's STREAM_001 ("EventSource connection failed").
        // The server's own code (STREAM_002, STREAM_003, RATE_LIMITED …) stays in the
        // gateway's response, logs and metrics.
        let code = Code::Stream001;
        out.push(note(
            Some(id),
            format!("onerror ({}): {code}", ready_state.as_str()),
        ));
        self.close_and_fall_back(now_ms, id, conn, code, out);
    }

    fn close_and_fall_back(
        &mut self,
        now_ms: u64,
        id: &str,
        conn: ConnId,
        code: Code,
        out: &mut Vec<Effect>,
    ) {
        if let Some(abort) = self.sources.close(conn) {
            out.push(abort);
        }
        let m = self.msgs.get_mut(id).expect("message exists");
        // The partial text is hidden: the POST's answer will replace it, never join it.
        m.buffer.clear();
        m.fallback_from = Some(code);
        self.metrics.streaming_failed += 1;
        self.metrics.fallback_triggered += 1;
        out.push(note(
            Some(id),
            format!("{}: fallback to regular chat after {code}", Code::Stream005),
        ));
        self.post(now_ms, id, out);
    }

    fn post(&mut self, now_ms: u64, id: &str, out: &mut Vec<Effect>) {
        self.next_req += 1;
        let req = self.next_req;
        self.reqs.insert(req, id.to_owned());
        let url = self
            .config_state
            .as_ref()
            .map(ConfigState::chat_url_or_default)
            .unwrap_or_else(|| super::DEFAULT_CHAT_URL.to_owned());
        let deadline = now_ms.saturating_add(self.ctx.settings.post_timeout_ms);
        let m = self.msgs.get_mut(id).expect("message exists");
        m.attempts += 1;
        m.rec.posts += 1;
        let fallback = m.fallback_from.is_some();
        m.rec.fallback_posts += u32::from(fallback);
        m.state = State::Posting { req, deadline };
        out.push(Effect::Post {
            req,
            url,
            body: chat_body(&self.ctx, id, &m.rec.text),
            fallback,
        });
    }

    fn on_post(
        &mut self,
        now_ms: u64,
        req: ReqId,
        response: Option<(u16, Vec<u8>, Option<u64>)>,
        out: &mut Vec<Effect>,
    ) {
        let Some(id) = self.reqs.remove(&req) else {
            return;
        };
        let Some(m) = self.msgs.get_mut(&id) else {
            return;
        };
        if !matches!(m.state, State::Posting { req: r, .. } if r == req) {
            return; // stale: this POST timed out already
        }
        let answer = response.as_ref().and_then(|(status, body, _)| {
            ((200..300).contains(status))
                .then(|| serde_json::from_slice::<ChatResponse>(body).ok())
                .flatten()
        });
        if let Some(answer) = answer {
            m.rec.final_text = answer.content;
            m.rec.finish(now_ms, Terminal::Complete(Source::Post));
            m.state = State::Done;
            out.push(note(
                Some(&id),
                format!("complete (post): {}", quote(&m.rec.final_text)),
            ));
            return;
        }
        let (retryable, retry_after, why) = match &response {
            None => (true, None, "network error".to_owned()),
            Some((status, _, ra)) if *status == 429 || *status >= 500 => {
                (true, *ra, format!("status {status}"))
            }
            Some((status, _, _)) if (200..300).contains(status) => {
                (true, None, "malformed body".to_owned())
            }
            Some((status, _, _)) => (false, None, format!("status {status}")),
        };
        self.post_failed(now_ms, &id, retryable, retry_after, &why, out);
    }

    fn post_failed(
        &mut self,
        now_ms: u64,
        id: &str,
        retryable: bool,
        retry_after: Option<u64>,
        why: &str,
        out: &mut Vec<Effect>,
    ) {
        let m = self.msgs.get_mut(id).expect("message exists");
        if retryable && m.attempts < 2 {
            let wait = retry_after.unwrap_or(DEFAULT_RETRY_MS).min(MAX_RETRY_MS);
            m.rec.retry_wait_ms = m.rec.retry_wait_ms.saturating_add(wait);
            m.state = State::Retrying {
                at: now_ms.saturating_add(wait),
            };
            out.push(note(
                Some(id),
                format!("chat POST failed ({why}): one retry in {wait} ms"),
            ));
            return;
        }
        let code = match m.fallback_from {
            Some(code) => code.as_str().to_owned(),
            None => "CHAT_UNAVAILABLE".to_owned(),
        };
        m.rec.error_shown = Some(code.clone());
        m.rec.final_text.clear();
        m.rec
            .finish(now_ms, Terminal::Failed { code: code.clone() });
        m.state = State::Done;
        out.push(note(
            Some(id),
            format!("failed ({why}): error {code} shown"),
        ));
    }

    fn on_timer(&mut self, now_ms: u64, out: &mut Vec<Effect>) {
        for conn in self.sources.due(now_ms) {
            while let Some(a) = self.sources.pull(conn) {
                self.on_es_action(now_ms, conn, a, out);
            }
        }
        let ids: Vec<String> = self.order.clone();
        for id in ids {
            let state = self.msgs[&id].state;
            match state {
                State::Connecting { conn, deadline } | State::Resuming { conn, deadline, .. }
                    if deadline <= now_ms =>
                {
                    out.push(note(Some(&id), "T_connect expired"));
                    self.close_and_fall_back(now_ms, &id, conn, Code::Stream001, out);
                }
                State::Open {
                    conn,
                    idle_at,
                    total_at,
                } if idle_at.min(total_at) <= now_ms => {
                    let which = if idle_at <= now_ms {
                        "T_idle"
                    } else {
                        "T_total"
                    };
                    out.push(note(Some(&id), format!("{which} expired")));
                    self.close_and_fall_back(now_ms, &id, conn, Code::Stream004, out);
                }
                State::Resuming { conn, total_at, .. } if total_at <= now_ms => {
                    out.push(note(Some(&id), "T_total expired"));
                    self.close_and_fall_back(now_ms, &id, conn, Code::Stream004, out);
                }
                State::Posting { req, deadline } if deadline <= now_ms => {
                    self.reqs.remove(&req);
                    out.push(Effect::AbortPost { req });
                    self.post_failed(now_ms, &id, true, None, "T_post expired", out);
                }
                State::Retrying { at } if at <= now_ms => self.post(now_ms, &id, out),
                _ => {}
            }
        }
    }

    fn unmount(&mut self, now_ms: u64, out: &mut Vec<Effect>) {
        let ids: Vec<String> = self.order.clone();
        for id in ids {
            let state = self.msgs[&id].state;
            match state {
                State::Done => continue,
                State::Connecting { conn, .. }
                | State::Open { conn, .. }
                | State::Resuming { conn, .. } => {
                    if let Some(abort) = self.sources.close(conn) {
                        out.push(abort);
                    }
                    self.metrics.streaming_cancelled += 1;
                }
                State::Posting { req, .. } => {
                    self.reqs.remove(&req);
                    out.push(Effect::AbortPost { req });
                }
                State::Retrying { .. } => {}
            }
            let m = self.msgs.get_mut(&id).expect("listed");
            // The bubble holds what streamed so far when the page goes.
            m.rec.final_text = m.buffer.clone();
            m.rec.finish(now_ms, Terminal::Cancelled);
            m.state = State::Done;
            out.push(note(Some(&id), "cancelled: the page closed"));
        }
    }

    /// The messages from the first unsettled one on, in send order (a `send` sets its
    /// message's state before it returns, so no query sees a new one as `Done`).
    fn unsettled(&self) -> impl Iterator<Item = &Msg> {
        let mut i = self.settled.get();
        while self
            .order
            .get(i)
            .is_some_and(|id| self.msgs[id].state == State::Done)
        {
            i += 1;
        }
        self.settled.set(i);
        self.order[i..].iter().map(|id| &self.msgs[id])
    }

    pub(crate) fn next_deadline(&self) -> Option<u64> {
        let own = self
            .unsettled()
            .filter_map(|m| match m.state {
                State::Connecting { deadline, .. } | State::Posting { deadline, .. } => {
                    Some(deadline)
                }
                State::Resuming {
                    deadline, total_at, ..
                } => Some(deadline.min(total_at)),
                State::Open {
                    idle_at, total_at, ..
                } => Some(idle_at.min(total_at)),
                State::Retrying { at } => Some(at),
                State::Done => None,
            })
            .min();
        match (own, self.sources.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub(crate) fn busy(&self) -> bool {
        self.unsettled().any(|m| m.state != State::Done)
    }

    pub(crate) fn leaks(&self) -> Leaks {
        Leaks {
            open_event_sources: self.sources.open_count(),
            posts_in_flight: self.reqs.len() as u32,
            timers: self.unsettled().filter(|m| m.state != State::Done).count() as u32,
        }
    }

    pub(crate) fn records(&self) -> Vec<MessageRecord> {
        self.order
            .iter()
            .map(|id| self.msgs[id].rec.clone())
            .collect()
    }
}
