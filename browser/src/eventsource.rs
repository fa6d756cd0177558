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
//! | a CORS failure (no matching `Access-Control-Allow-Origin`) | CLOSED | yes | never |
//!
//! What the page sees is only what a browser exposes: `open`, `message` events and
//! `error` with a `readyState`. The status, the body and the reason behind an `error`
//! stay in the transcript the driver writes; [`EsAction::Error`] carries none of them,
//! so no widget can label a failure with something a real page cannot know.
//!
//! Dispatch is pulled one event at a time ([`EventSource::next_action`]) and checks
//! readyState each time: after `close()` nothing more is dispatched, not even the rest
//! of a chunk already parsed (Chromium's dispatch task checks `kClosed`).
//!
//! As in Chromium, the reconnect is scheduled *before* `error` is dispatched, and the
//! caller handles `error` synchronously: a `close()` inside the handler cancels the
//! reconnect (the document's hook does exactly that, so as written it never reconnects).

use crate::sse_parser::{Parser, SseItem};
use std::collections::VecDeque;

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

    /// The number scripts see (`0`, `1`, `2`).
    pub fn as_number(self) -> u8 {
        match self {
            ReadyState::Connecting => 0,
            ReadyState::Open => 1,
            ReadyState::Closed => 2,
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
    /// Dispatch `error`; `ready_state` is all the handler can learn.
    Error {
        /// CONNECTING (a reconnect is pending) or CLOSED (failed for good).
        ready_state: ReadyState,
    },
}

/// One `EventSource` object.
#[derive(Debug, Clone)]
pub struct EventSource {
    ready_state: ReadyState,
    /// The browser's default reconnection time (an empty `retry:` goes back to it).
    default_ms: u64,
    reconnection_ms: u64,
    last_event_id: String,
    parser: Parser,
    /// A response whose body is being read.
    body_open: bool,
    /// When a pending reconnect fires (virtual ms).
    reconnect_at: Option<u64>,
    /// Fetches started so far, the first included.
    fetches: u32,
    /// Actions not yet dispatched, oldest first.
    queue: VecDeque<EsAction>,
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
    /// `reconnection_ms` is the browser's default reconnection time.
    pub fn new(reconnection_ms: u64) -> (EventSource, EsAction) {
        let es = EventSource {
            ready_state: ReadyState::Connecting,
            default_ms: reconnection_ms,
            reconnection_ms,
            last_event_id: String::new(),
            parser: Parser::new(),
            body_open: false,
            reconnect_at: None,
            fetches: 1,
            queue: VecDeque::new(),
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

    /// The next action to carry out, if any. A `close()` between two calls empties the
    /// queue, so a handler that closes stops the rest of the chunk.
    pub fn next_action(&mut self) -> Option<EsAction> {
        self.queue.pop_front()
    }

    /// `close()`: aborts the fetch, cancels any reconnect, drops undispatched events,
    /// fires nothing. Returns whether a connection was open and must be aborted by the caller.
    pub fn close(&mut self) -> bool {
        let was_reading = self.body_open
            || self.ready_state == ReadyState::Connecting && self.reconnect_at.is_none();
        self.ready_state = ReadyState::Closed;
        self.reconnect_at = None;
        self.body_open = false;
        self.queue.clear();
        was_reading
    }

    /// The response headers arrived (after the CORS check passed).
    pub fn on_response(&mut self, status: u16, content_type: Option<&str>) {
        if self.ready_state == ReadyState::Closed {
            return;
        }
        if status != 200 {
            return self.fail();
        }
        if !is_event_stream(content_type.unwrap_or("")) {
            return self.fail();
        }
        self.ready_state = ReadyState::Open;
        self.body_open = true;
        // Chromium builds a new parser per connection, carrying only the last event ID.
        self.parser = Parser::with_last_event_id(&self.last_event_id);
        self.queue.push_back(EsAction::Open);
    }

    /// The response failed the CORS check: fatal, as Chromium's `DidFail` with
    /// `IsAccessCheck` aborts the connection attempt (no reconnect).
    pub fn on_cors_failure(&mut self) {
        if self.ready_state != ReadyState::Closed {
            self.fail();
        }
    }

    /// Body bytes arrived.
    pub fn on_body(&mut self, chunk: &[u8]) {
        if self.ready_state != ReadyState::Open || !self.body_open {
            return;
        }
        for item in self.parser.feed(chunk) {
            match item {
                SseItem::Retry(Some(ms)) => self.reconnection_ms = ms,
                SseItem::Retry(None) => self.reconnection_ms = self.default_ms,
                SseItem::Event(e) => self.queue.push_back(EsAction::Message {
                    event_type: e.event_type,
                    data: e.data,
                    last_event_id: e.last_event_id,
                }),
            }
        }
        // An id-only block updates the last event ID without an event.
        self.last_event_id = self.parser.last_event_id().to_owned();
    }

    /// The body ended (`clean`: FIN / last chunk; otherwise reset mid-body).
    pub fn on_body_end(&mut self, now_ms: u64) {
        if self.ready_state == ReadyState::Closed || !self.body_open {
            return;
        }
        self.body_open = false;
        self.parser.finish();
        self.reestablish(now_ms);
    }

    /// The fetch failed before any response.
    pub fn on_network_error(&mut self, now_ms: u64) {
        if self.ready_state == ReadyState::Closed {
            return;
        }
        self.body_open = false;
        self.reestablish(now_ms);
    }

    /// Time passed: a due reconnect starts its fetch.
    pub fn on_timer(&mut self, now_ms: u64) {
        match self.reconnect_at {
            Some(at) if at <= now_ms && self.ready_state == ReadyState::Connecting => {
                self.reconnect_at = None;
                self.fetches += 1;
                let id = (!self.last_event_id.is_empty()).then(|| self.last_event_id.clone());
                self.queue.push_back(EsAction::Fetch { last_event_id: id });
            }
            _ => {}
        }
    }

    fn reestablish(&mut self, now_ms: u64) {
        self.ready_state = ReadyState::Connecting;
        self.reconnect_at = Some(now_ms.saturating_add(self.reconnection_ms));
        self.queue.push_back(EsAction::Error {
            ready_state: ReadyState::Connecting,
        });
    }

    fn fail(&mut self) {
        self.ready_state = ReadyState::Closed;
        self.reconnect_at = None;
        self.body_open = false;
        self.queue.push_back(EsAction::Error {
            ready_state: ReadyState::Closed,
        });
    }

    /// Takes everything queued (tests).
    #[cfg(test)]
    fn drain(&mut self) -> Vec<EsAction> {
        std::iter::from_fn(|| self.next_action()).collect()
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
        es.on_response(200, Some("text/event-stream; charset=utf-8"));
        assert_eq!(es.drain(), [EsAction::Open]);
        es
    }

    const CONNECTING: EsAction = EsAction::Error {
        ready_state: ReadyState::Connecting,
    };
    const CLOSED: EsAction = EsAction::Error {
        ready_state: ReadyState::Closed,
    };

    #[test]
    fn clean_end_reconnects_after_the_reconnection_time_with_last_event_id() {
        let mut es = open();
        es.on_body(b"id: m:0\ndata: a\n\n");
        assert_eq!(es.drain().len(), 1);
        es.on_body_end(100);
        assert_eq!(es.drain(), [CONNECTING]);
        assert_eq!(es.next_deadline(), Some(3100));
        es.on_timer(3099);
        assert!(es.drain().is_empty());
        es.on_timer(3100);
        assert_eq!(
            es.drain(),
            [EsAction::Fetch {
                last_event_id: Some("m:0".into())
            }]
        );
        assert_eq!(es.fetches(), 2);
    }

    #[test]
    fn close_inside_onerror_cancels_the_reconnect() {
        let mut es = open();
        es.on_body_end(0);
        assert_eq!(es.next_action(), Some(CONNECTING));
        es.close();
        assert_eq!(es.ready_state(), ReadyState::Closed);
        assert_eq!(es.next_deadline(), None);
        es.on_timer(10_000);
        assert!(es.drain().is_empty());
    }

    #[test]
    fn non_200_and_wrong_type_fail_for_good() {
        for status in [204u16, 205, 404, 429, 503] {
            let (mut es, _) = EventSource::new(3000);
            es.on_response(status, Some("text/event-stream"));
            assert_eq!(es.drain(), [CLOSED]);
            assert_eq!(es.next_deadline(), None);
        }
        for ct in [
            Some("application/json"),
            None,
            Some("text/event-stream; charset=latin1"),
        ] {
            let (mut es, _) = EventSource::new(3000);
            es.on_response(200, ct);
            assert_eq!(es.drain(), [CLOSED]);
        }
    }

    /// A CORS failure is fatal: CLOSED, one `error`, no reconnect ever (Chromium
    /// `DidFail` → `AbortConnectionAttempt` for an access check).
    #[test]
    fn cors_failure_is_fatal() {
        let (mut es, _) = EventSource::new(3000);
        es.on_cors_failure();
        assert_eq!(es.drain(), [CLOSED]);
        assert_eq!(es.ready_state(), ReadyState::Closed);
        assert_eq!(es.next_deadline(), None);
        es.on_timer(u64::MAX);
        es.on_network_error(5);
        assert!(es.drain().is_empty());
        assert_eq!(es.fetches(), 1);
    }

    #[test]
    fn retry_changes_the_delay_and_network_error_reconnects() {
        let mut es = open();
        es.on_body(b"retry: 500\n\n");
        assert_eq!(es.reconnection_ms(), 500);
        es.on_body_end(1000);
        es.drain();
        es.on_timer(1500);
        assert_eq!(
            es.drain(),
            [EsAction::Fetch {
                last_event_id: None
            }]
        );
        es.on_network_error(1600);
        assert_eq!(es.drain(), [CONNECTING]);
        assert_eq!(es.next_deadline(), Some(2100));
    }

    /// An empty `retry:` goes back to the browser's default, as Chromium's parser does.
    #[test]
    fn empty_retry_resets_the_reconnection_time_to_the_default() {
        let mut es = open();
        es.on_body(b"retry: 500\n\n");
        assert_eq!(es.reconnection_ms(), 500);
        es.on_body(b"retry:\n\n");
        assert_eq!(es.reconnection_ms(), 3000);
        es.on_body_end(0);
        assert_eq!(es.next_deadline(), Some(3000));
    }

    /// A `retry:` too large for 64 bits is ignored, not saturated to "never".
    #[test]
    fn overflowing_retry_is_ignored() {
        let mut es = open();
        es.on_body(b"retry: 700\n\nretry: 99999999999999999999999\n\n");
        assert_eq!(es.reconnection_ms(), 700);
        es.on_body_end(0);
        assert_eq!(es.next_deadline(), Some(700));
    }

    #[test]
    fn messages_after_close_are_not_dispatched() {
        let mut es = open();
        es.close();
        es.on_body(b"data: x\n\n");
        es.on_body_end(0);
        assert!(es.drain().is_empty());
    }

    /// A handler that closes on the first event of a chunk stops the rest of the chunk.
    #[test]
    fn close_drops_the_rest_of_a_parsed_chunk() {
        let mut es = open();
        es.on_body(b"data: one\n\ndata: two\n\ndata: three\n\n");
        assert!(matches!(es.next_action(), Some(EsAction::Message { data, .. }) if data == "one"));
        es.close();
        assert_eq!(es.next_action(), None);
    }
}
