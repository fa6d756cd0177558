//! A widget written in JavaScript, run in a [`picasso_browser::Page`] and driven through
//! the same [`Input`]s and [`Effect`]s as the Rust policies, so the driver, the
//! invariants, transcripts and snapshots apply unchanged.
//!
//! The adapter contract (README, "JavaScript widgets"): the entry module exports
//! `createWidget(host)` returning `{ config(cfg), send(id, text), unmount() }`; the widget
//! tells the host what the user sees (`host.render(id, text, cursor)`), how each message
//! ended (`host.settle(id, outcome)`), its metrics (`host.metric(name, id)`) and any
//! wait before a retry (`host.retryWait(id, ms)`). Everything else the records hold is
//! what the network saw: GETs and POSTs per message (from the request URL's and body's
//! `message_id`), and whether an `end` frame reached the page (parsed from the bytes the
//! page was given, so a widget without an `end` branch still counts as having seen it).

use super::{
    ConfigState, ConnId, Effect, Input, Leaks, MessageRecord, Metrics, Mode, SessionCtx, Source,
    Terminal, note,
};
use picasso_browser::{Engine, Host, Page, PageError, PageOptions, Request, WidgetSource};
use picasso_core::rng;
use picasso_core::wire::{ChatRequest, StreamFrame};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, OnceLock};

/// A loaded JavaScript widget, by the index [`register`] gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JsWidgetId(pub(crate) u16);

struct Registered {
    name: &'static str,
    source: WidgetSource,
}

fn registry() -> &'static Mutex<Vec<Registered>> {
    static REGISTRY: OnceLock<Mutex<Vec<Registered>>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(Vec::new()))
}

/// Loads the widget whose entry module is `path` (or `path/widget.js`) once per process;
/// the same entry again returns the same id. Its name, used in reports and snapshot file
/// names, is `js-` and the widget's directory (`widgets/corrected/widget.js` →
/// `js-corrected`), or the file's stem for an entry not called `widget.js`.
pub fn register(path: &std::path::Path) -> Result<JsWidgetId, picasso_browser::SourceError> {
    let source = WidgetSource::load(path)?;
    let entry = std::path::Path::new(source.entry_name());
    let stem = entry.file_stem().map(|s| s.to_string_lossy().into_owned());
    let dir = entry
        .parent()
        .and_then(|p| p.file_name())
        .map(|s| s.to_string_lossy().into_owned());
    let base = match (stem.as_deref(), dir) {
        (Some("widget"), Some(dir)) => dir,
        (Some(stem), _) => stem.to_owned(),
        (None, _) => "widget".to_owned(),
    };
    let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(i) = reg
        .iter()
        .position(|r| r.source.entry_name() == source.entry_name())
    {
        return Ok(JsWidgetId(i as u16));
    }
    let mut name = format!("js-{base}");
    let mut n = 1;
    while reg.iter().any(|r| r.name == name) {
        n += 1;
        name = format!("js-{base}-{n}");
    }
    reg.push(Registered {
        name: Box::leak(name.into_boxed_str()),
        source,
    });
    Ok(JsWidgetId((reg.len() - 1) as u16))
}

/// The `host` object a widget gets (the adapter contract, README): the session's ids and
/// settings from `data`, and the functions it reports through.
const HOST: &str =
    "{ tenantHash: data.tenantHash, sessionId: data.sessionId, settings: data.settings,
  render: __host.render,
  settle: (id, outcome) => __report('settle', id, outcome),
  metric: (name, id) => __report('metric', name, id),
  retryWait: (id, ms) => __report('retryWait', id, ms) }";

thread_local! {
    /// One QuickJS runtime per thread and widget: a simulation's sessions all run on
    /// its thread (a `current_thread` runtime), each in a realm of its own on the shared
    /// runtime, which keeps thousands of concurrent sessions small and cache-friendly.
    static ENGINES: std::cell::RefCell<BTreeMap<JsWidgetId, Engine>> =
        const { std::cell::RefCell::new(BTreeMap::new()) };
}

fn engine(id: JsWidgetId, source: &WidgetSource) -> Result<Engine, PageError> {
    ENGINES.with(|engines| {
        if let Some(e) = engines.borrow().get(&id) {
            return Ok(e.clone());
        }
        let e = Engine::new(source, picasso_browser::DEFAULT_BUDGET)?;
        engines.borrow_mut().insert(id, e.clone());
        Ok(e)
    })
}

impl JsWidgetId {
    /// Its name in reports and snapshot file names (`js-corrected`).
    pub fn name(self) -> &'static str {
        registry()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(usize::from(self.0))
            .map_or("js:?", |r| r.name)
    }

    /// Its entry module, as `--widget` takes it (for a replay line).
    pub fn entry(self) -> String {
        self.source()
            .map_or_else(|| "?".to_owned(), |s| s.entry_name().to_owned())
    }

    fn source(self) -> Option<WidgetSource> {
        registry()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(usize::from(self.0))
            .map(|r| r.source.clone())
    }
}

/// One session's JavaScript widget.
#[derive(Debug)]
pub struct JsWidget {
    ctx: SessionCtx,
    page: Option<Page>,
    failure: Option<String>,
    pub(crate) config_state: Option<ConfigState>,
    records: Vec<MessageRecord>,
    index: BTreeMap<String, usize>,
    /// Messages for which the widget reported a fallback (STREAM_005).
    fallback: BTreeSet<String>,
    /// The messages whose cursor shows, as last rendered (the user is waiting on them).
    cursors: BTreeSet<String>,
    /// Records without an outcome yet: `busy` asks on every step, so it is counted
    /// rather than found by a walk over a long session's records.
    unsettled: usize,
    /// Which message each `EventSource` was opened for (its URL's `message_id`).
    es_msg: BTreeMap<ConnId, String>,
    /// POSTs in flight, with their message.
    fetches: BTreeMap<u64, String>,
    /// The message whose event is being handled (console lines are attributed to it).
    current: Option<String>,
    now_ms: u64,
    pub(crate) metrics: Metrics,
}

impl JsWidget {
    /// Opens a fresh page for the session and creates the widget in it.
    pub(crate) fn new(id: JsWidgetId, ctx: SessionCtx) -> JsWidget {
        let mut w = JsWidget {
            ctx,
            page: None,
            failure: None,
            config_state: None,
            records: Vec::new(),
            index: BTreeMap::new(),
            fallback: BTreeSet::new(),
            cursors: BTreeSet::new(),
            unsettled: 0,
            es_msg: BTreeMap::new(),
            fetches: BTreeMap::new(),
            current: None,
            now_ms: 0,
            metrics: Metrics::default(),
        };
        let Some(source) = id.source() else {
            w.failure = Some(format!("no JavaScript widget #{}", id.0));
            return w;
        };
        let options = PageOptions {
            random: rng::stream(w.ctx.seed, &format!("math-random/{}", w.ctx.session_id)),
            event_source: w.ctx.event_source,
            reconnect_ms: w.ctx.settings.reconnect_ms,
            now_ms: 0,
            budget: picasso_browser::DEFAULT_BUDGET,
        };
        let data = w.host_data();
        let host = Host {
            expr: HOST,
            data: &data,
        };
        let page = engine(id, &source).and_then(|e| Page::open_in(&e, &source, options, host));
        match page {
            Ok(page) => w.page = Some(page),
            Err(e) => w.failure = Some(format!("{}: {e}", source.entry_name())),
        }
        w
    }

    /// The session's values in the `host` object handed to `createWidget` (see
    /// [`HOST`]), as JSON.
    fn host_data(&self) -> String {
        let s = self.ctx.settings;
        json!({
            "tenantHash": self.ctx.tenant,
            "sessionId": self.ctx.session_id,
            "settings": {
                "connect_timeout_ms": s.connect_timeout_ms,
                "idle_timeout_ms": s.idle_timeout_ms,
                "total_timeout_ms": s.total_timeout_ms,
                "post_timeout_ms": s.post_timeout_ms,
                "reconnect_ms": s.reconnect_ms,
                "resume": s.resume,
            },
        })
        .to_string()
    }

    /// Why the widget stopped for good, if it did.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    pub(crate) fn step(&mut self, now_ms: u64, input: Input) -> Vec<Effect> {
        let mut out = Vec::new();
        self.now_ms = now_ms;
        let Some(page) = self.page.take() else {
            return out;
        };
        page.set_now(now_ms);
        let result = self.feed(&page, now_ms, input);
        self.drain(&page, &mut out);
        if let Err(e) = result.and_then(|()| page.failure().map_or(Ok(()), Err)) {
            let during = self
                .current
                .as_deref()
                .map(|m| format!(" while handling message {m}"))
                .unwrap_or_default();
            let text = format!("JavaScript error{during}: {e}");
            out.push(note(self.current.as_deref(), text.clone()));
            self.failure = Some(text);
            // A failed page is gone: nothing it opened stays open.
            for (conn, _) in std::mem::take(&mut self.es_msg) {
                out.push(Effect::AbortStream { conn });
            }
            for (req, _) in std::mem::take(&mut self.fetches) {
                out.push(Effect::AbortPost { req });
            }
            self.cursors.clear();
            return out;
        }
        self.page = Some(page);
        out
    }

    fn feed(&mut self, page: &Page, now_ms: u64, input: Input) -> Result<(), PageError> {
        match input {
            Input::ConfigLoaded(result) => {
                let config = result.ok();
                let arg = config
                    .as_ref()
                    .map_or(Value::Null, |c| serde_json::to_value(c).unwrap_or_default());
                self.config_state = Some(ConfigState { config });
                self.current = None;
                page.call_widget("config", &json!([arg]).to_string())
            }
            Input::Send { message_id, text } => {
                self.index.insert(message_id.clone(), self.records.len());
                self.records.push(MessageRecord::new(
                    &message_id,
                    &text,
                    now_ms,
                    Mode::Regular,
                ));
                self.unsettled += 1;
                self.current = Some(message_id.clone());
                page.call_widget("send", &json!([message_id, text]).to_string())
            }
            Input::StreamResponse {
                conn,
                status,
                content_type,
            } => {
                self.at_stream(conn);
                page.deliver_stream_response(es(conn), status, content_type.as_deref())
            }
            Input::StreamBody { conn, bytes } => {
                self.at_stream(conn);
                page.deliver_stream_body(es(conn), &bytes)
            }
            Input::StreamEnd { conn, .. } => {
                self.at_stream(conn);
                page.deliver_stream_end(es(conn))
            }
            Input::StreamNetworkError { conn } => {
                self.at_stream(conn);
                page.deliver_stream_network_error(es(conn))
            }
            Input::StreamCorsError { conn } => {
                self.at_stream(conn);
                page.deliver_stream_cors_error(es(conn))
            }
            Input::PostResponse {
                req,
                status,
                body,
                retry_after_ms,
            } => {
                self.current = self.fetches.remove(&req);
                let mut headers =
                    BTreeMap::from([("content-type".to_owned(), "application/json".to_owned())]);
                if let Some(ms) = retry_after_ms {
                    headers.insert("retry-after".into(), (ms / 1000).to_string());
                }
                page.deliver_fetch_response(
                    fetch_id(req),
                    status,
                    &headers,
                    &String::from_utf8_lossy(&body),
                )
            }
            Input::PostNetworkError { req } => {
                self.current = self.fetches.remove(&req);
                page.deliver_fetch_failure(fetch_id(req), "Failed to fetch")
            }
            Input::Timer => {
                self.current = None;
                page.run_due(now_ms)
            }
            Input::Unmount => {
                self.current = None;
                page.call_widget("unmount", "[]")
            }
        }
    }

    fn at_stream(&mut self, conn: ConnId) {
        self.current = self.es_msg.get(&conn).cloned();
    }

    /// Turns what the page asked for into effects, until it asks for nothing more.
    fn drain(&mut self, page: &Page, out: &mut Vec<Effect>) {
        loop {
            let requests = page.take_requests();
            if requests.is_empty() {
                return;
            }
            for r in requests {
                self.request(page, r, out);
            }
        }
    }

    fn request(&mut self, page: &Page, request: Request, out: &mut Vec<Effect>) {
        match request {
            Request::OpenStream {
                es,
                url,
                last_event_id,
            } => {
                let conn = ConnId::from(es);
                let (base, params) = split_url(&url);
                let message_id = params
                    .iter()
                    .find(|(k, _)| k == "message_id")
                    .map(|(_, v)| v.clone())
                    .or_else(|| self.current.clone())
                    .unwrap_or_default();
                self.es_msg.insert(conn, message_id.clone());
                if let Some(r) = self.record(&message_id) {
                    if r.gets == 0 && r.posts == 0 {
                        r.mode = Mode::Stream;
                    }
                    r.gets += 1;
                    r.gets_with_last_event_id += u32::from(last_event_id.is_some());
                }
                out.push(Effect::OpenStream {
                    conn,
                    message_id,
                    url: base,
                    params,
                    last_event_id,
                });
            }
            Request::AbortStream { es } => out.push(Effect::AbortStream {
                conn: ConnId::from(es),
            }),
            Request::Fetch {
                id,
                method,
                url,
                body,
            } => {
                let chat = (method == "POST")
                    .then(|| {
                        body.as_deref()
                            .and_then(|b| serde_json::from_str::<ChatRequest>(b).ok())
                    })
                    .flatten();
                let Some(chat) = chat else {
                    let _ = page.deliver_fetch_failure(
                        id,
                        &format!(
                            "{method} {url}: only the chat POST is reachable in the simulator"
                        ),
                    );
                    return;
                };
                let message_id = chat.message_id.clone();
                let fallback = self.fallback.contains(&message_id);
                if let Some(r) = self.record(&message_id) {
                    r.posts += 1;
                    r.fallback_posts += u32::from(fallback);
                }
                self.fetches.insert(u64::from(id), message_id);
                out.push(Effect::Post {
                    req: u64::from(id),
                    url,
                    body: chat,
                    fallback,
                });
            }
            Request::AbortFetch { id } => {
                self.fetches.remove(&u64::from(id));
                out.push(Effect::AbortPost { req: u64::from(id) });
            }
            Request::Console { level, text } => {
                if level == "error"
                    && let Some(m) = self.current.clone()
                    && let Some(r) = self.record(&m)
                {
                    r.errors_logged += 1;
                }
                out.push(note(
                    self.current.as_deref(),
                    format!("console.{level}: {text}"),
                ));
            }
            Request::Uncaught { message, stack } => {
                if let Some(m) = self.current.clone()
                    && let Some(r) = self.record(&m)
                {
                    r.errors_logged += 1;
                }
                let at = stack.lines().next().map(str::trim).unwrap_or_default();
                out.push(note(
                    self.current.as_deref(),
                    format!("uncaught {message} {at}"),
                ));
            }
            Request::Render { id, text, cursor } => self.render(id, text, cursor),
            // The page dispatched the `end` frame: it reached the widget (as the Rust
            // policies record it when they read the frame; bytes after a `close()` were
            // never dispatched, so they do not count).
            Request::Dispatched { es, data } => {
                if is_end_frame(&data)
                    && let Some(m) = self.es_msg.get(&ConnId::from(es)).cloned()
                    && let Some(r) = self.record(&m)
                {
                    r.end_seen = true;
                }
            }
            Request::Report { kind, args } => self.report(&kind, &args),
        }
    }

    fn report(&mut self, kind: &str, args: &str) {
        let args: Vec<Value> = serde_json::from_str(args).unwrap_or_default();
        let s = |i: usize| {
            args.get(i)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let now = self.now_ms;
        match kind {
            "settle" => {
                let id = s(0);
                let outcome = args.get(1).cloned().unwrap_or_default();
                let field = |k: &str| outcome.get(k).and_then(Value::as_str).map(str::to_owned);
                let terminal = match field("kind").as_deref() {
                    Some("complete") => Terminal::Complete(match field("source").as_deref() {
                        Some("stream") => Source::Stream,
                        _ => Source::Post,
                    }),
                    Some("failed") => Terminal::Failed {
                        code: field("code").unwrap_or_else(|| "UNKNOWN".into()),
                    },
                    _ => Terminal::Cancelled,
                };
                self.cursors.remove(&id);
                let Some(r) = self.record(&id) else { return };
                let first_outcome = r.terminal.is_none();
                match &terminal {
                    Terminal::Complete(_) => {
                        if let Some(text) = field("text") {
                            r.final_text = text;
                        }
                    }
                    Terminal::Failed { code } => {
                        r.error_shown = Some(code.clone());
                        r.final_text.clear();
                    }
                    Terminal::Cancelled => {}
                }
                r.finish(now, terminal);
                if first_outcome {
                    self.unsettled -= 1;
                }
            }
            "metric" => {
                let m = &mut self.metrics;
                match s(0).as_str() {
                    "streaming_started" => m.streaming_started += 1,
                    "streaming_completed" => m.streaming_completed += 1,
                    "streaming_failed" => m.streaming_failed += 1,
                    "streaming_cancelled" => m.streaming_cancelled += 1,
                    "fallback_triggered" => {
                        m.fallback_triggered += 1;
                        self.fallback.insert(s(1));
                    }
                    _ => {}
                }
            }
            "retryWait" => {
                let ms = args.get(1).and_then(Value::as_u64).unwrap_or(0);
                if let Some(r) = self.record(&s(0)) {
                    r.retry_wait_ms += ms;
                }
            }
            _ => {}
        }
    }

    /// `host.render(id, text, cursor)`: what the bubble shows now.
    fn render(&mut self, id: String, text: String, cursor: bool) {
        let now = self.now_ms;
        let Some(r) = self.record(&id) else {
            self.set_cursor(id, cursor);
            return;
        };
        let mut first_token = None;
        if r.terminal.is_none() && !text.is_empty() {
            r.show_live(&text);
            if r.ttft_ms.is_none() {
                let ttft = now.saturating_sub(r.sent_at);
                r.ttft_ms = Some(ttft);
                first_token = Some(ttft);
            }
        }
        r.final_text = text;
        self.metrics.ttft_ms.extend(first_token);
        self.set_cursor(id, cursor);
    }

    fn set_cursor(&mut self, id: String, shows: bool) {
        if shows {
            self.cursors.insert(id);
        } else {
            self.cursors.remove(&id);
        }
    }

    fn record(&mut self, id: &str) -> Option<&mut MessageRecord> {
        let i = *self.index.get(id)?;
        self.records.get_mut(i)
    }

    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.page.as_ref()?.next_deadline()
    }

    /// The user waits while a cursor shows, a POST is in flight, or an unsettled message
    /// has a timer pending (a retry after `Retry-After`).
    pub(crate) fn busy(&self) -> bool {
        let Some(page) = &self.page else {
            return false;
        };
        !self.cursors.is_empty()
            || !self.fetches.is_empty()
            || page.pending_timers() > 0 && self.unsettled > 0
    }

    pub(crate) fn leaks(&self) -> Leaks {
        let Some(page) = &self.page else {
            return Leaks::default();
        };
        Leaks {
            open_event_sources: page.open_event_sources() as u32,
            posts_in_flight: self.fetches.len() as u32,
            timers: page.pending_timers() as u32,
        }
    }

    pub(crate) fn records(&self) -> Vec<MessageRecord> {
        self.records.clone()
    }
}

/// Whether a `message` event's data is the stream's `end` frame. Only data that spells
/// `end`, or escapes a character (`"\u0065nd"`), can be: the JSON parse is skipped for
/// the text frames, all but one of a stream's.
fn is_end_frame(data: &str) -> bool {
    (data.contains("end") || data.contains("\\u"))
        && matches!(StreamFrame::parse(data), Some(StreamFrame::End))
}

fn es(conn: ConnId) -> u32 {
    u32::try_from(conn).unwrap_or(u32::MAX)
}

fn fetch_id(req: u64) -> u32 {
    u32::try_from(req).unwrap_or(u32::MAX)
}

/// `https://h/p?a=1&b=x+y` → (`https://h/p`, [(a, 1), (b, x y)]), decoded as a form.
fn split_url(url: &str) -> (String, Vec<(String, String)>) {
    let url = url.split('#').next().unwrap_or_default();
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let params = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    (base.to_owned(), params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_and_decode_as_forms() {
        let (base, params) = split_url("https://gw.example/?a=x+y&b=%C3%A9%26&c");
        assert_eq!(base, "https://gw.example/");
        assert_eq!(
            params,
            [
                ("a".into(), "x y".into()),
                ("b".into(), "é&".into()),
                ("c".into(), String::new())
            ]
        );
        // A `%` that starts no escape stays as it is.
        let (_, params) = split_url("/s?p=100%&q=%4");
        assert_eq!(
            params,
            [("p".into(), "100%".into()), ("q".into(), "%4".into())]
        );
    }

    #[test]
    fn the_end_frame_is_seen_however_it_is_spelled() {
        assert!(is_end_frame(r#"{"type": "end"}"#));
        assert!(is_end_frame(r#"{"type":"\u0065nd"}"#));
        assert!(!is_end_frame(r#"{"content": "the end", "type": "text"}"#));
        assert!(!is_end_frame(r#"{"content": "w1 ", "type": "text"}"#));
        assert!(!is_end_frame("end"));
    }
}
