//! The event-stream parser of the WHATWG HTML standard (§9.2.6), sans-IO.
//!
//! Fed bytes in chunks of any size, it yields exactly what a browser's `EventSource`
//! would dispatch. The rules (`widget-and-determinism.md` §B.4):
//! - one leading BOM is stripped, a second one is part of the first field name;
//! - lines end at CRLF, LF or CR, mixed freely; a CR at the end of a chunk waits for the
//!   next byte to know whether an LF belongs to it;
//! - a blank line dispatches; `:` starts a comment; `field: value` loses one leading space;
//! - `id` persists across events until set again (a value with U+0000 is ignored);
//! - `retry` takes ASCII digits only; an empty `retry:` resets the reconnection time to
//!   the browser's default, and a number too large to parse is ignored (Chromium's
//!   `event_source_parser.cc`: `OnReconnectionTimeSet(kDefaultReconnectDelay)` for an
//!   empty value, `ToUInt64Strict` failing for an overflow);
//! - at the end of the body, an event without its blank line is discarded.
//!
//! Lines are split on bytes (CR and LF never occur inside a UTF-8 sequence) and decoded
//! whole, so a code point split across chunks is decoded correctly.

/// What the parser yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseItem {
    /// A dispatched event.
    Event(SseEvent),
    /// A valid `retry:` field: the new reconnection time in milliseconds, or `None` for
    /// an empty `retry:`, which resets it to the browser's default.
    Retry(Option<u64>),
}

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The event type: `message` unless an `event:` field named another.
    pub event_type: String,
    /// The data, lines joined by LF, without the final LF.
    pub data: String,
    /// The last event ID string at dispatch time.
    pub last_event_id: String,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The parser for one connection. Build a new one per connection and carry the last
/// event ID over with [`Parser::with_last_event_id`], as Chromium does.
#[derive(Debug, Clone, Default)]
pub struct Parser {
    /// Bytes of the current, unterminated line (and, at the start, a possible BOM).
    line: Vec<u8>,
    /// Whether the leading-BOM question is settled.
    bom_checked: bool,
    /// The previous chunk ended in CR: an LF at the start of the next one belongs to it.
    skip_lf: bool,
    data: String,
    event_type: String,
    id_buffer: String,
    last_event_id: String,
}

impl Parser {
    /// A parser for a fresh connection.
    pub fn new() -> Parser {
        Parser::default()
    }

    /// A parser for a reconnection: the ID buffer starts at the previous connection's last event ID.
    pub fn with_last_event_id(id: &str) -> Parser {
        Parser {
            id_buffer: id.to_owned(),
            last_event_id: id.to_owned(),
            ..Parser::default()
        }
    }

    /// The last event ID string (updated at every dispatch, even of an empty block).
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// Feeds a chunk of the body; returns what it completes, in order.
    ///
    /// A line's bytes are copied a run at a time, up to the next CR or LF, into a
    /// buffer that keeps its capacity from line to line: the simulator feeds every
    /// frame of every stream through here.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseItem> {
        let mut out = Vec::new();
        let mut rest = chunk;
        while let Some((&first, after)) = rest.split_first() {
            if self.skip_lf {
                self.skip_lf = false;
                if first == b'\n' {
                    rest = after;
                    continue;
                }
            }
            match rest.iter().position(|&b| b == b'\r' || b == b'\n') {
                Some(at) => {
                    self.extend_line(&rest[..at]);
                    self.skip_lf = rest[at] == b'\r';
                    self.end_line(&mut out);
                    rest = &rest[at + 1..];
                }
                None => {
                    self.extend_line(rest);
                    rest = &[];
                }
            }
        }
        out
    }

    /// Appends bytes of the current line. The BOM is settled as soon as the line is
    /// long enough to tell (or already differs from it): the same answer byte by byte
    /// or a run at a time, since a line starts with the BOM exactly when its first
    /// three bytes are the BOM.
    fn extend_line(&mut self, bytes: &[u8]) {
        self.line.extend_from_slice(bytes);
        if !self.bom_checked && (self.line.len() >= BOM.len() || !BOM.starts_with(&self.line)) {
            self.settle_bom();
        }
    }

    /// The body ended: whatever was not dispatched is discarded (spec: "discard pending data").
    pub fn finish(&mut self) {
        self.line.clear();
        self.data.clear();
        self.event_type.clear();
        self.skip_lf = false;
    }

    fn settle_bom(&mut self) {
        self.bom_checked = true;
        if self.line.starts_with(BOM) {
            self.line.drain(..BOM.len());
        }
    }

    fn end_line(&mut self, out: &mut Vec<SseItem>) {
        if !self.bom_checked {
            self.settle_bom();
        }
        let mut bytes = std::mem::take(&mut self.line);
        {
            let line = String::from_utf8_lossy(&bytes);
            self.process_line(&line, out);
        }
        // The buffer goes back, emptied, so the next line does not allocate.
        bytes.clear();
        self.line = bytes;
    }

    fn process_line(&mut self, line: &str, out: &mut Vec<SseItem>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            "event" => self.event_type = value.to_owned(),
            "id" if !value.contains('\0') => {
                self.id_buffer.clear();
                self.id_buffer.push_str(value);
            }
            "retry" if value.is_empty() => out.push(SseItem::Retry(None)),
            // Digits only, so the one parse failure left is overflow: ignored, as
            // Chromium's strict parse fails and sets nothing.
            "retry" if value.bytes().all(|b| b.is_ascii_digit()) => {
                if let Ok(ms) = value.parse() {
                    out.push(SseItem::Retry(Some(ms)));
                }
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseItem>) {
        self.last_event_id.clone_from(&self.id_buffer);
        if self.data.is_empty() {
            self.event_type.clear();
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop();
        let event_type = match std::mem::take(&mut self.event_type) {
            t if t.is_empty() => "message".to_owned(),
            t => t,
        };
        out.push(SseItem::Event(SseEvent {
            event_type,
            data,
            last_event_id: self.last_event_id.clone(),
        }));
    }
}

/// Parses a whole body at once (tests and reports).
pub fn parse_all(body: &[u8]) -> Vec<SseItem> {
    let mut parser = Parser::new();
    let out = parser.feed(body);
    parser.finish();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn events(items: &[SseItem]) -> Vec<(&str, &str, &str)> {
        items
            .iter()
            .filter_map(|i| match i {
                SseItem::Event(e) => Some((
                    e.event_type.as_str(),
                    e.data.as_str(),
                    e.last_event_id.as_str(),
                )),
                SseItem::Retry(_) => None,
            })
            .collect()
    }

    #[test]
    fn design_document_frames() {
        let body =
            b"data: {\"content\": \"Hello\", \"type\": \"text\"}\n\ndata: {\"type\": \"end\"}\n\n";
        let items = parse_all(body);
        assert_eq!(
            events(&items),
            [
                ("message", r#"{"content": "Hello", "type": "text"}"#, ""),
                ("message", r#"{"type": "end"}"#, "")
            ]
        );
    }

    #[test]
    fn mixed_line_endings_and_comments() {
        // WPT format-comments mixes all three line endings.
        let body = b"data:1\r:comment\ndata:2\r\n\r\n:x\rdata:3\n\n";
        assert_eq!(
            events(&parse_all(body)),
            [("message", "1\n2", ""), ("message", "3", "")]
        );
    }

    #[test]
    fn one_bom_is_stripped_a_second_is_not() {
        let one = parse_all(b"\xEF\xBB\xBFdata:a\n\n");
        assert_eq!(events(&one), [("message", "a", "")]);
        // WPT format-bom-2: the second BOM makes the field name "\u{feff}data", ignored.
        let two = parse_all(b"\xEF\xBB\xBF\xEF\xBB\xBFdata:a\n\ndata:b\n\n");
        assert_eq!(events(&two), [("message", "b", "")]);
    }

    #[test]
    fn id_persists_changes_and_resets() {
        let body = b"id: 1\ndata: a\n\ndata: b\n\nid: 2\ndata: c\n\nid\ndata: d\n\n";
        assert_eq!(
            events(&parse_all(body)),
            [
                ("message", "a", "1"),
                ("message", "b", "1"),
                ("message", "c", "2"),
                ("message", "d", "")
            ]
        );
    }

    #[test]
    fn id_only_block_updates_silently_and_nul_is_ignored() {
        let mut p = Parser::new();
        assert!(p.feed(b"id: m:3\n\n").is_empty());
        assert_eq!(p.last_event_id(), "m:3");
        p.feed(b"id: a\0b\n\n");
        assert_eq!(p.last_event_id(), "m:3");
    }

    #[test]
    fn empty_retry_resets_and_an_overflowing_one_is_ignored() {
        // Chromium: an empty value sets the default delay; a value ToUInt64Strict
        // cannot parse sets nothing (it used to saturate to u64::MAX here).
        assert_eq!(parse_all(b"retry:\n"), [SseItem::Retry(None)]);
        assert_eq!(parse_all(b"retry\n"), [SseItem::Retry(None)]);
        assert!(parse_all(b"retry: 99999999999999999999999\n").is_empty());
        assert_eq!(
            parse_all(b"retry: 18446744073709551615\n"),
            [SseItem::Retry(Some(u64::MAX))]
        );
    }

    #[test]
    fn retry_digits_only() {
        assert_eq!(parse_all(b"retry: 1000\n"), [SseItem::Retry(Some(1000))]);
        assert!(parse_all(b"retry: 1000x\n").is_empty());
        assert!(parse_all(b"retry: -5\n").is_empty());
    }

    #[test]
    fn trailing_incomplete_event_is_discarded() {
        // WPT format-data-before-final-empty-line: the id of the incomplete block is lost too.
        let mut p = Parser::new();
        let items = p.feed(b"data: a\n\nid: test\ndata: b\n");
        p.finish();
        assert_eq!(events(&items), [("message", "a", "")]);
        assert_eq!(p.last_event_id(), "");
    }

    #[test]
    fn event_type_and_space_rules() {
        let body = b"event: ping\ndata:  two spaces\n\ndata\n\ndata: x\n\n";
        assert_eq!(
            events(&parse_all(body)),
            [
                ("ping", " two spaces", ""),
                ("message", "", ""),
                ("message", "x", "")
            ]
        );
    }

    #[test]
    fn cr_at_chunk_end_waits_for_the_next_byte() {
        let mut p = Parser::new();
        let mut items = p.feed(b"data: a\r");
        items.extend(p.feed(b"\n\r\n"));
        assert_eq!(events(&items), [("message", "a", "")]);
    }

    #[test]
    fn reconnect_parser_carries_the_id() {
        let p = Parser::with_last_event_id("m:4");
        assert_eq!(p.last_event_id(), "m:4");
        let mut p = p;
        assert_eq!(events(&p.feed(b"data: z\n\n")), [("message", "z", "m:4")]);
    }

    fn feed_in_chunks(body: &[u8], cuts: &[usize]) -> (Vec<SseItem>, String) {
        let mut p = Parser::new();
        let mut out = Vec::new();
        let mut start = 0;
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
        cuts.sort_unstable();
        for cut in cuts {
            out.extend(p.feed(&body[start..cut]));
            start = cut;
        }
        out.extend(p.feed(&body[start..]));
        p.finish();
        (out, p.last_event_id().to_owned())
    }

    /// Bytes that exercise every branch: field names, colons, spaces, all line endings,
    /// BOM bytes, a multi-byte code point and arbitrary bytes.
    fn body_strategy() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(b"data".to_vec()),
            Just(b"id".to_vec()),
            Just(b"retry".to_vec()),
            Just(b"event".to_vec()),
            Just(b":".to_vec()),
            Just(b" ".to_vec()),
            Just(b"\n".to_vec()),
            Just(b"\r".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(BOM.to_vec()),
            Just("é✓".as_bytes().to_vec()),
            Just(b"12".to_vec()),
            any::<u8>().prop_map(|b| vec![b]),
        ];
        proptest::collection::vec(piece, 0..40).prop_map(|v| v.concat())
    }

    proptest! {
        // Cases: proptest's usual 256 (cheap), or PICASSO_PROPTEST_CASES.
        #![proptest_config(ProptestConfig::with_cases(picasso_core::testing::proptest_cases(256)))]

        /// Splitting the body anywhere (mid-line, mid-CRLF, mid-code point, mid-BOM)
        /// never changes what is dispatched.
        #[test]
        fn chunk_split_invariance(body in body_strategy(), cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
            let whole = feed_in_chunks(&body, &[]);
            let split = feed_in_chunks(&body, &cuts);
            prop_assert_eq!(&whole, &split);
            // One byte per chunk: each line is built a byte at a time.
            let every: Vec<usize> = (0..body.len()).collect();
            prop_assert_eq!(whole, feed_in_chunks(&body, &every));
        }

        /// Frames written the way the gateway writes them come back unchanged, whatever the split.
        #[test]
        fn gateway_frames_round_trip(
            texts in proptest::collection::vec("[^\r\n]{0,12}", 0..6),
            cuts in proptest::collection::vec(any::<usize>(), 0..6),
        ) {
            let mut body = Vec::new();
            for (i, t) in texts.iter().enumerate() {
                let data = picasso_core::wire::StreamFrame::Text(t.clone()).to_data();
                body.extend(format!("id: m:{i}\ndata: {data}\n\n").into_bytes());
            }
            let (items, last) = feed_in_chunks(&body, &cuts);
            prop_assert_eq!(items.len(), texts.len());
            for (i, (item, t)) in items.iter().zip(&texts).enumerate() {
                let SseItem::Event(e) = item else { panic!("not an event") };
                prop_assert_eq!(e.last_event_id.clone(), format!("m:{i}"));
                prop_assert_eq!(
                    picasso_core::wire::StreamFrame::parse(&e.data),
                    Some(picasso_core::wire::StreamFrame::Text(t.clone()))
                );
            }
            if !texts.is_empty() {
                prop_assert_eq!(last, format!("m:{}", texts.len() - 1));
            }
        }
    }
}
