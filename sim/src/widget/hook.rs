//! The design document's `useStreaming` hook and `ChatProvider.sendMessage`, as written
//! (§2.1–2.3), and the usual first patch of `onerror` ("naive fix").
//!
//! Kept faithful on purpose, defects included (`widget-and-determinism.md` §B.6):
//! - `shouldUseStreaming()` draws `Math.random()` for every message (#11), here from a
//!   seeded stream so runs repeat;
//! - one hook-wide `eventSourceRef`, `isStreaming` and `streamedContent` (#6, #7):
//!   `startStreaming` overwrites the ref without closing the old source, both write into
//!   one buffer, and `stopStreaming` closes whichever source the ref holds now;
//! - `onmessage` does `JSON.parse` without try/catch (#9) and ignores `type` (#1, #10);
//! - `onerror` logs and calls `stopStreaming()` (so `close()` inside `onerror` cancels the
//!   browser's reconnect) and never falls back (#4, #17);
//! - the streamed text is never committed to the message's `content` (#8);
//! - nothing cleans up on unmount (#16).
//!
//! The naive fix changes only `onerror`: a CONNECTING error is "transient" and ignored (the
//! browser reconnects and re-sends the GET, #3), a CLOSED one stops streaming and falls back
//! to the regular chat (#2, the design's STREAM_005 intent).

use super::{
    ConfigState, ConnId, Effect, Input, Leaks, MessageRecord, Metrics, Mode, ReqId, SessionCtx,
    Source, Sources, Terminal, chat_body, decide, note, quote, stream_params,
};
use crate::eventsource::{EsAction, ReadyState};
use picasso_core::rng;
use picasso_core::wire::ChatResponse;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// The hook and provider of one session.
#[derive(Debug)]
pub struct Hook {
    ctx: SessionCtx,
    naive: bool,
    pub(crate) config_state: Option<ConfigState>,
    /// `Math.random()`, seeded per session.
    random: ChaCha8Rng,
    pub(crate) sources: Sources,
    /// Each source's URL and parameters (a reconnect re-sends the same GET).
    urls: BTreeMap<ConnId, (String, Vec<(String, String)>)>,
    /// `eventSourceRef.current`.
    es_ref: Option<ConnId>,
    /// `isStreaming`.
    is_streaming: bool,
    /// `streamedContent`: never cleared.
    streamed_content: String,
    /// The newest assistant bubble: the one `MessageBubble` renders `streamedContent` in.
    live: Option<String>,
    /// Each message's `content` (set only by the regular chat).
    content: BTreeMap<String, String>,
    records: Vec<MessageRecord>,
    index: BTreeMap<String, usize>,
    next_req: ReqId,
    posts: BTreeMap<ReqId, String>,
    pub(crate) metrics: Metrics,
}

impl Hook {
    pub(crate) fn new(ctx: SessionCtx, naive: bool) -> Hook {
        let random = rng::stream(ctx.seed, &format!("math-random/{}", ctx.session_id));
        Hook {
            ctx,
            naive,
            config_state: None,
            random,
            sources: Sources::default(),
            urls: BTreeMap::new(),
            es_ref: None,
            is_streaming: false,
            streamed_content: String::new(),
            live: None,
            content: BTreeMap::new(),
            records: Vec::new(),
            index: BTreeMap::new(),
            next_req: 0,
            posts: BTreeMap::new(),
            metrics: Metrics::default(),
        }
    }

    pub(crate) fn step(&mut self, now_ms: u64, input: Input) -> Vec<Effect> {
        let mut out = Vec::new();
        match input {
            Input::ConfigLoaded(result) => {
                let config = match result {
                    Ok(c) => Some(c),
                    Err(e) => {
                        out.push(note(None, format!("getConfig() = null ({e})")));
                        None
                    }
                };
                self.config_state = Some(ConfigState { config });
            }
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
                req, status, body, ..
            } => self.on_post(now_ms, req, Some((status, body)), &mut out),
            Input::PostNetworkError { req } => self.on_post(now_ms, req, None, &mut out),
            Input::Timer => {
                for conn in self.sources.due(now_ms) {
                    while let Some(a) = self.sources.pull(conn) {
                        self.on_es_action(now_ms, conn, a, &mut out);
                    }
                }
            }
            Input::Unmount => {
                let open = self.sources.open_count();
                if open > 0 {
                    out.push(note(
                        None,
                        format!("unmount: no cleanup, {open} EventSource(s) left open"),
                    ));
                }
            }
        }
        self.render();
        out
    }

    fn send(&mut self, now_ms: u64, id: &str, text: &str, out: &mut Vec<Effect>) {
        let config = self.config_state.as_ref().and_then(|c| c.config.clone());
        let url = config
            .as_ref()
            .and_then(|c| decide::eligible(c, self.ctx.event_source));
        // `supportsStreaming && shouldUseStreaming()`: JS's `&&` draws only when supported.
        let stream_url = url.filter(|_| {
            let p = config
                .as_ref()
                .map(|c| c.features.streaming_percentage)
                .filter(|p| *p != 0.0 && !p.is_nan())
                .unwrap_or(0.0);
            let draw: f64 = self.random.random();
            let yes = draw * 100.0 < p;
            out.push(note(
                Some(id),
                format!(
                    "Math.random()*100 = {:.2} vs {p} → {}",
                    draw * 100.0,
                    if yes { "stream" } else { "regular" }
                ),
            ));
            yes
        });
        let mode = if stream_url.is_some() {
            Mode::Stream
        } else {
            Mode::Regular
        };
        self.index.insert(id.to_owned(), self.records.len());
        self.records
            .push(MessageRecord::new(id, text, now_ms, mode));
        self.live = Some(id.to_owned());
        match stream_url {
            Some(url) => self.start_streaming(id, text, url, out),
            None => self.post(id, text, false, out),
        }
    }

    /// `startStreaming(url, params)`.
    fn start_streaming(&mut self, id: &str, text: &str, url: String, out: &mut Vec<Effect>) {
        let (conn, first) = self.sources.open(id, self.ctx.settings.reconnect_ms);
        let params = stream_params(&self.ctx, id, text);
        self.urls.insert(conn, (url, params));
        if let Some(old) = self.es_ref.replace(conn)
            && self
                .sources
                .es(old)
                .is_some_and(|es| es.ready_state() != ReadyState::Closed)
        {
            out.push(note(
                Some(id),
                format!("eventSourceRef overwritten: EventSource #{old} left open"),
            ));
        }
        self.is_streaming = true;
        self.metrics.streaming_started += 1;
        self.on_es_action(0, conn, first, out);
    }

    /// `stopStreaming()`: closes whatever the ref holds now, not the caller's source.
    fn stop_streaming(&mut self, out: &mut Vec<Effect>) {
        if let Some(conn) = self.es_ref.take()
            && let Some(abort) = self.sources.close(conn)
        {
            out.push(abort);
        }
        self.is_streaming = false;
    }

    fn on_es_action(&mut self, now_ms: u64, conn: ConnId, action: EsAction, out: &mut Vec<Effect>) {
        let Some(msg) = self.sources.message_of(conn).map(str::to_owned) else {
            return;
        };
        match action {
            EsAction::Fetch { last_event_id } => {
                let Some((url, params)) = self.urls.get(&conn).cloned() else {
                    return;
                };
                if let Some(r) = self.record(&msg) {
                    r.gets += 1;
                    r.gets_with_last_event_id += u32::from(last_event_id.is_some());
                }
                out.push(Effect::OpenStream {
                    conn,
                    message_id: msg,
                    url,
                    params,
                    last_event_id,
                });
            }
            EsAction::Open => {}
            EsAction::Message {
                event_type, data, ..
            } => {
                if event_type == "message" {
                    self.on_message(now_ms, &msg, &data, out);
                }
            }
            EsAction::Error { ready_state } => {
                let transient = ready_state == ReadyState::Connecting;
                if self.naive && transient {
                    out.push(note(
                        Some(&msg),
                        "onerror (CONNECTING): ignored as transient; the browser reconnects",
                    ));
                    return;
                }
                out.push(note(
                    Some(&msg),
                    format!(
                        "console.error('Streaming error') ({})",
                        ready_state.as_str()
                    ),
                ));
                if let Some(r) = self.record(&msg) {
                    r.errors_logged += 1;
                }
                self.metrics.streaming_failed += 1;
                self.stop_streaming(out);
                if self.naive {
                    self.metrics.fallback_triggered += 1;
                    let text = self
                        .record(&msg)
                        .map(|r| r.text.clone())
                        .unwrap_or_default();
                    out.push(note(Some(&msg), "STREAM_005: fallback to regular chat"));
                    self.post(&msg, &text, true, out);
                }
            }
        }
    }

    /// `onmessage`: `JSON.parse`, then append `data.content` if truthy; `type` ignored.
    fn on_message(&mut self, now_ms: u64, msg: &str, data: &str, out: &mut Vec<Effect>) {
        let value: serde_json::Value = match serde_json::from_str(data) {
            Ok(v) => v,
            Err(_) => {
                out.push(note(
                    Some(msg),
                    format!(
                        "uncaught SyntaxError in onmessage: JSON.parse({}): token lost",
                        quote(data)
                    ),
                ));
                if let Some(r) = self.record(msg) {
                    r.errors_logged += 1;
                }
                return;
            }
        };
        if value.get("type").and_then(|t| t.as_str()) == Some("end")
            && let Some(r) = self.record(msg)
        {
            // The frame reached the widget; the hook just has no branch for it (bug 1).
            r.end_seen = true;
        }
        if let Some(content) = value
            .get("content")
            .and_then(|c| c.as_str())
            .filter(|c| !c.is_empty())
        {
            self.streamed_content.push_str(content);
            if let Some(r) = self.record(msg)
                && r.ttft_ms.is_none()
            {
                let ttft = now_ms.saturating_sub(r.sent_at);
                r.ttft_ms = Some(ttft);
                self.metrics.ttft_ms.push(ttft);
            }
        }
    }

    fn post(&mut self, id: &str, text: &str, fallback: bool, out: &mut Vec<Effect>) {
        self.next_req += 1;
        self.posts.insert(self.next_req, id.to_owned());
        if let Some(r) = self.record(id) {
            r.posts += 1;
            r.fallback_posts += u32::from(fallback);
        }
        let url = self
            .config_state
            .as_ref()
            .map(ConfigState::chat_url)
            .unwrap_or_else(|| super::DEFAULT_CHAT_URL.to_owned());
        out.push(Effect::Post {
            req: self.next_req,
            url,
            body: chat_body(&self.ctx, id, text),
            fallback,
        });
    }

    fn on_post(
        &mut self,
        now_ms: u64,
        req: ReqId,
        response: Option<(u16, Vec<u8>)>,
        out: &mut Vec<Effect>,
    ) {
        let Some(id) = self.posts.remove(&req) else {
            return;
        };
        let answer = response.as_ref().and_then(|(status, body)| {
            ((200..300).contains(status))
                .then(|| serde_json::from_slice::<ChatResponse>(body).ok())
                .flatten()
        });
        match answer {
            Some(answer) => {
                self.content.insert(id.clone(), answer.content);
                if let Some(r) = self.record(&id) {
                    r.finish(now_ms, Terminal::Complete(Source::Post));
                }
            }
            None => {
                let code = match &response {
                    Some((status, _)) => format!("CHAT_{status}"),
                    None => "CHAT_NETWORK".to_owned(),
                };
                out.push(note(
                    Some(&id),
                    format!("regular chat failed: {code} shown"),
                ));
                if let Some(r) = self.record(&id) {
                    r.error_shown = Some(code.clone());
                    r.finish(now_ms, Terminal::Failed { code });
                }
            }
        }
    }

    /// `MessageBubble`: the newest bubble shows `streamedContent` while `isStreaming`,
    /// every bubble otherwise shows its `content`.
    fn render(&mut self) {
        if self.is_streaming
            && let Some(live) = self.live.clone()
        {
            let text = self.streamed_content.clone();
            if let Some(r) = self.record(&live)
                && !text.is_empty()
            {
                r.show_live(&text);
            }
        }
    }

    fn record(&mut self, id: &str) -> Option<&mut MessageRecord> {
        let i = *self.index.get(id)?;
        self.records.get_mut(i)
    }

    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.sources.next_deadline()
    }

    pub(crate) fn busy(&self) -> bool {
        self.is_streaming || !self.posts.is_empty()
    }

    pub(crate) fn leaks(&self) -> Leaks {
        Leaks {
            open_event_sources: self.sources.open_count(),
            posts_in_flight: self.posts.len() as u32,
            timers: 0,
        }
    }

    pub(crate) fn records(&self) -> Vec<MessageRecord> {
        let mut records = self.records.clone();
        for r in &mut records {
            r.final_text = if self.is_streaming && self.live.as_deref() == Some(r.id.as_str()) {
                self.streamed_content.clone()
            } else {
                self.content.get(&r.id).cloned().unwrap_or_default()
            };
        }
        records
    }
}
