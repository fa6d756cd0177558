//! A sans-IO model of the browser's `EventSource` (WHATWG HTML §9.2), Chromium flavour.
//!
//! The model owns no socket and no clock. The caller tells it what the network did
//! (a response's status and content type, body bytes, the body's end, a network error)
//! and the time; it answers with [`EsAction`]s: fetch now, dispatch `open` / `message` /
//! `error`. The rules (`widget-and-determinism.md` §B.1–B.3):
//!
//! | what happens | readyState after | `error` | reconnects |
//! |---|---|---|---|
//! | 200 + `text/event-stream` | OPEN, `open` | – | – |
//! | that body ends, cleanly or not | CONNECTING | yes | after the reconnection time |
//! | network error before a response | CONNECTING | yes | after the reconnection time |
//! | any status ≠ 200 (204 included) | CLOSED | yes | never |
//! | 200 with another content type | CLOSED | yes | never |
//!
//! As in Chromium, the reconnect is scheduled *before* `error` is dispatched, and the
//! caller handles `error` synchronously: a `close()` inside the handler cancels the
//! reconnect (the document's hook does exactly that, so as written it never reconnects).

use crate::sse_parser::{Parser, SseItem};

/// `EventSource.readyState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReadyState {
    /// 0: connecting or waiting to reconnect.
    Connecting,
    /// 1: the response headers were accepted.
    Open,
    /// 2: closed for good.
    Closed,
}

impl ReadyState {
    /// The name scripts see (`CONNECTING`, `OPEN`, `CLOSED`).
    pub fn as_str(self) -> &'static str {
        match self {
            ReadyState::Connecting => "CONNECTING",
            ReadyState::Open => "OPEN",
            ReadyState::Closed => "CLOSED",
        }
    }
}

/// What the model asks its caller to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EsAction {
    /// Start a GET of the URL; `last_event_id` goes in the `Last-Event-ID` header.
    Fetch {
        /// The header value, when the last event ID string is not empty.
        last_event_id: Option<String>,
    },
    /// Dispatch `open`.
    Open,
    /// Dispatch a `message` (or named) event.
    Message {
        /// The event type.
        event_type: String,
        /// The data.
        data: String,
        /// `lastEventId`.
        last_event_id: String,
    },
    /// Dispatch `error`; `ready_state` is what the handler sees.
    Error {
        /// CONNECTING (a reconnect is pending) or CLOSED (failed for good).
        ready_state: ReadyState,
        /// Why, for the transcript.
        reason: ErrorReason,
    },
}

/// Why `error` fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorReason {
    /// The body of a 200 stream ended (cleanly or not).
    StreamEnded {
        /// Whether it ended cleanly (FIN / last chunk) rather than reset.
        clean: bool,
    },
    /// No response at all (refused, reset before headers).
    NetworkError,
    /// A status other than 200.
    Status(u16),
    /// A 200 whose content type is not `text/event-stream`.
    ContentType(String),
}

impl std::fmt::Display for ErrorReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ErrorReason::StreamEnded { clean: true } => f.write_str("stream ended"),
            ErrorReason::StreamEnded { clean: false } => f.write_str("stream reset"),
            ErrorReason::NetworkError => f.write_str("network error"),
            ErrorReason::Status(s) => write!(f, "status {s}"),
            ErrorReason::ContentType(c) => write!(f, "content type {c:?}"),
        }
    }
}

/// One `EventSource` object.
#[derive(Debug, Clone)]
pub struct EventSource {
    ready_state: ReadyState,
    reconnection_ms: u64,
    last_event_id: String,
    parser: Parser,
    /// A response whose body is being read.
    body_open: bool,
    /// When a pending reconnect fires (virtual ms).
    reconnect_at: Option<u64>,
    /// Fetches started so far, the first included.
    fetches: u32,
}

/// Whether a `Content-Type` is `text/event-stream` (parameters ignored; a charset, if
/// any, must be UTF-8, as Chromium requires).
pub fn is_event_stream(content_type: &str) -> bool {
    let mut parts = content_type.split(';');
    let essence = parts.next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("text/event-stream") {
        return false;
    }
    parts.all(|p| match p.split_once('=') {
        Some((k, v)) if k.trim().eq_ignore_ascii_case("charset") => {
            v.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        }
        _ => true,
    })
}

impl EventSource {
    /// `new EventSource(url)`: CONNECTING, and the first fetch starts at once.
    pub fn new(reconnection_ms: u64) -> (EventSource, EsAction) {
        let es = EventSource {
            ready_state: ReadyState::Connecting,
            reconnection_ms,
            last_event_id: String::new(),
            parser: Parser::new(),
            body_open: false,
            reconnect_at: None,
            fetches: 1,
        };
        (
            es,
            EsAction::Fetch {
                last_event_id: None,
            },
        )
    }

    /// `readyState`.
    pub fn ready_state(&self) -> ReadyState {
        self.ready_state
    }

    /// The reconnection time in ms (changed by `retry:`).
    pub fn reconnection_ms(&self) -> u64 {
        self.reconnection_ms
    }

    /// The last event ID string.
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// Fetches started so far.
    pub fn fetches(&self) -> u32 {
        self.fetches
    }

    /// When the pending reconnect fires, if one is pending.
    pub fn next_deadline(&self) -> Option<u64> {
        self.reconnect_at
    }

    /// `close()`: aborts the fetch, cancels any reconnect, fires nothing.
    /// Returns whether a connection was open and must be aborted by the caller.
    pub fn close(&mut self) -> bool {
        let was_reading = self.body_open
            || self.ready_state == ReadyState::Connecting && self.reconnect_at.is_none();
        self.ready_state = ReadyState::Closed;
        self.reconnect_at = None;
        self.body_open = false;
        was_reading
    }

    /// The response headers arrived.
    pub fn on_response(&mut self, status: u16, content_type: Option<&str>) -> Vec<EsAction> {
        if self.ready_state == ReadyState::Closed {
            return Vec::new();
        }
        if status != 200 {
            return self.fail(ErrorReason::Status(status));
        }
        let ct = content_type.unwrap_or("");
        if !is_event_stream(ct) {
            return self.fail(ErrorReason::ContentType(ct.to_owned()));
        }
        self.ready_state = ReadyState::Open;
        self.body_open = true;
        // Chromium builds a new parser per connection, carrying only the last event ID.
        self.parser = Parser::with_last_event_id(&self.last_event_id);
        vec![EsAction::Open]
    }

    /// Body bytes arrived.
    pub fn on_body(&mut self, chunk: &[u8]) -> Vec<EsAction> {
        if self.ready_state != ReadyState::Open || !self.body_open {
            return Vec::new();
        }
        let mut out = Vec::new();
        for item in self.parser.feed(chunk) {
            match item {
                SseItem::Retry(ms) => self.reconnection_ms = ms,
                SseItem::Event(e) => out.push(EsAction::Message {
                    event_type: e.event_type,
                    data: e.data,
                    last_event_id: e.last_event_id,
                }),
            }
        }
        // An id-only block updates the last event ID without an event.
        self.last_event_id = self.parser.last_event_id().to_owned();
        out
    }

    /// The body ended (`clean`: FIN / last chunk; otherwise reset mid-body).
    pub fn on_body_end(&mut self, now_ms: u64, clean: bool) -> Vec<EsAction> {
        if self.ready_state == ReadyState::Closed || !self.body_open {
            return Vec::new();
        }
        self.body_open = false;
        self.parser.finish();
        self.reestablish(now_ms, ErrorReason::StreamEnded { clean })
    }

    /// The fetch failed before any response.
    pub fn on_network_error(&mut self, now_ms: u64) -> Vec<EsAction> {
        if self.ready_state == ReadyState::Closed {
            return Vec::new();
        }
        self.body_open = false;
        self.reestablish(now_ms, ErrorReason::NetworkError)
    }

    /// Time passed: a due reconnect starts its fetch.
    pub fn on_timer(&mut self, now_ms: u64) -> Vec<EsAction> {
        match self.reconnect_at {
            Some(at) if at <= now_ms && self.ready_state == ReadyState::Connecting => {
                self.reconnect_at = None;
                self.fetches += 1;
                let id = (!self.last_event_id.is_empty()).then(|| self.last_event_id.clone());
                vec![EsAction::Fetch { last_event_id: id }]
            }
            _ => Vec::new(),
        }
    }

    fn reestablish(&mut self, now_ms: u64, reason: ErrorReason) -> Vec<EsAction> {
        self.ready_state = ReadyState::Connecting;
        self.reconnect_at = Some(now_ms.saturating_add(self.reconnection_ms));
        vec![EsAction::Error {
            ready_state: ReadyState::Connecting,
            reason,
        }]
    }

    fn fail(&mut self, reason: ErrorReason) -> Vec<EsAction> {
        self.ready_state = ReadyState::Closed;
        self.reconnect_at = None;
        self.body_open = false;
        vec![EsAction::Error {
            ready_state: ReadyState::Closed,
            reason,
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> EventSource {
        let (mut es, first) = EventSource::new(3000);
        assert_eq!(
            first,
            EsAction::Fetch {
                last_event_id: None
            }
        );
        assert_eq!(
            es.on_response(200, Some("text/event-stream; charset=utf-8")),
            [EsAction::Open]
        );
        es
    }

    #[test]
    fn clean_end_reconnects_after_the_reconnection_time_with_last_event_id() {
        let mut es = open();
        let msgs = es.on_body(b"id: m:0\ndata: a\n\n");
        assert_eq!(msgs.len(), 1);
        let err = es.on_body_end(100, true);
        assert!(matches!(
            err[..],
            [EsAction::Error {
                ready_state: ReadyState::Connecting,
                ..
            }]
        ));
        assert_eq!(es.next_deadline(), Some(3100));
        assert!(es.on_timer(3099).is_empty());
        assert_eq!(
            es.on_timer(3100),
            [EsAction::Fetch {
                last_event_id: Some("m:0".into())
            }]
        );
        assert_eq!(es.fetches(), 2);
    }

    #[test]
    fn close_inside_onerror_cancels_the_reconnect() {
        let mut es = open();
        let _ = es.on_body_end(0, true);
        es.close();
        assert_eq!(es.ready_state(), ReadyState::Closed);
        assert_eq!(es.next_deadline(), None);
        assert!(es.on_timer(10_000).is_empty());
    }

    #[test]
    fn non_200_and_wrong_type_fail_for_good() {
        for status in [204u16, 205, 404, 429, 503] {
            let (mut es, _) = EventSource::new(3000);
            let out = es.on_response(status, Some("text/event-stream"));
            assert!(matches!(
                out[..],
                [EsAction::Error {
                    ready_state: ReadyState::Closed,
                    ..
                }]
            ));
            assert_eq!(es.next_deadline(), None);
        }
        for ct in [
            Some("application/json"),
            None,
            Some("text/event-stream; charset=latin1"),
        ] {
            let (mut es, _) = EventSource::new(3000);
            let out = es.on_response(200, ct);
            assert!(matches!(
                out[..],
                [EsAction::Error {
                    ready_state: ReadyState::Closed,
                    ..
                }]
            ));
        }
    }

    #[test]
    fn retry_changes_the_delay_and_network_error_reconnects() {
        let mut es = open();
        let _ = es.on_body(b"retry: 500\n\n");
        assert_eq!(es.reconnection_ms(), 500);
        let _ = es.on_body_end(1000, false);
        assert_eq!(
            es.on_timer(1500),
            [EsAction::Fetch {
                last_event_id: None
            }]
        );
        let out = es.on_network_error(1600);
        assert!(matches!(
            out[..],
            [EsAction::Error {
                ready_state: ReadyState::Connecting,
                reason: ErrorReason::NetworkError
            }]
        ));
        assert_eq!(es.next_deadline(), Some(2100));
    }

    #[test]
    fn messages_after_close_are_not_dispatched() {
        let mut es = open();
        es.close();
        assert!(es.on_body(b"data: x\n\n").is_empty());
        assert!(es.on_body_end(0, true).is_empty());
    }
}
