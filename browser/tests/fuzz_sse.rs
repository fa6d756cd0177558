//! Fuzz target: the event-stream parser (`sim/src/sse_parser.rs`), the one parser in
//! the simulator that reads bytes from outside (the gateway's body, or any server's).
//!
//! Inputs are structure-aware: streams built from the gateway's own frames (`id:` +
//! `data:` of text, end and error frames), comments, `event:`/`retry:` fields, BOMs and
//! all three line endings, then mutated (bytes flipped, inserted, deleted, truncated)
//! and fed in random chunks. Checked on every case:
//! - no panic;
//! - the result does not depend on the chunking (one chunk, random cuts, byte by byte);
//! - it equals a whole-body reference written straight from the WHATWG algorithm
//!   (decode, strip one BOM, split lines, process fields), a differential oracle;
//! - dispatched data has no CR, ids have no NUL or line break, `retry` is digits only;
//! - unmutated gateway streams come back frame for frame, whatever the chunking.
//!
//! Cases: `PICASSO_FUZZ_CASES` (default 1000); `PROPTEST_RNG_SEED` replays a run.

use picasso_browser::sse_parser::{Parser, SseEvent, SseItem, parse_all};
use picasso_core::wire::StreamFrame;
use proptest::prelude::*;

fn cases() -> u32 {
    picasso_core::testing::fuzz_cases(1000)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        ..ProptestConfig::default()
    }
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The WHATWG algorithm over a whole body, written independently of the parser under
/// test: decode first, then split, as the spec words it. Returns the items and the
/// last event ID after the body ends.
fn reference(body: &[u8], initial_id: &str) -> (Vec<SseItem>, String) {
    let body = body.strip_prefix(BOM).unwrap_or(body);
    let text = String::from_utf8_lossy(body);
    let mut lines: Vec<&str> = Vec::new();
    let mut rest: &str = &text;
    // Only terminated lines count: what follows the last line break is discarded.
    while let Some(i) = rest.find(['\r', '\n']) {
        lines.push(&rest[..i]);
        let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
        rest = &rest[i + skip..];
    }
    let (mut data, mut event, mut id_buffer) =
        (String::new(), String::new(), initial_id.to_owned());
    let mut last_id = initial_id.to_owned();
    let mut out = Vec::new();
    for line in lines {
        if line.is_empty() {
            last_id = id_buffer.clone();
            if !data.is_empty() {
                data.pop();
                out.push(SseItem::Event(SseEvent {
                    event_type: if event.is_empty() {
                        "message".into()
                    } else {
                        event.clone()
                    },
                    data: std::mem::take(&mut data),
                    last_event_id: last_id.clone(),
                }));
            }
            data.clear();
            event.clear();
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.find(':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (line, ""),
        };
        match field {
            "event" => event = value.to_owned(),
            "data" => {
                data.push_str(value);
                data.push('\n');
            }
            "id" if !value.contains('\0') => id_buffer = value.to_owned(),
            // Chromium's rules: an empty value resets the delay to the default; digits
            // set it; digits too large for a u64 set nothing.
            "retry" if value.is_empty() => out.push(SseItem::Retry(None)),
            "retry" if value.chars().all(|c| c.is_ascii_digit()) => {
                if let Ok(ms) = value.parse() {
                    out.push(SseItem::Retry(Some(ms)));
                }
            }
            _ => {}
        }
    }
    (out, last_id)
}

/// Feeds `body` to a fresh parser, cut at `cuts` (taken modulo the length).
fn chunked(body: &[u8], cuts: &[usize], initial_id: &str) -> (Vec<SseItem>, String) {
    let mut parser = if initial_id.is_empty() {
        Parser::new()
    } else {
        Parser::with_last_event_id(initial_id)
    };
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
    cuts.sort_unstable();
    let (mut out, mut start) = (Vec::new(), 0);
    for cut in cuts {
        out.extend(parser.feed(&body[start..cut]));
        start = cut;
    }
    out.extend(parser.feed(&body[start..]));
    parser.finish();
    (out, parser.last_event_id().to_owned())
}

fn byte_by_byte(body: &[u8]) -> (Vec<SseItem>, String) {
    let mut parser = Parser::new();
    let mut out = Vec::new();
    for b in body {
        out.extend(parser.feed(std::slice::from_ref(b)));
    }
    parser.finish();
    (out, parser.last_event_id().to_owned())
}

fn line_end() -> impl Strategy<Value = &'static [u8]> {
    prop_oneof![
        4 => Just(&b"\n"[..]),
        1 => Just(&b"\r\n"[..]),
        1 => Just(&b"\r"[..]),
    ]
}

fn frame() -> impl Strategy<Value = StreamFrame> {
    prop_oneof![
        6 => any::<String>().prop_map(StreamFrame::Text),
        1 => Just(StreamFrame::End),
        1 => ("STREAM_00[1-5]", ".{0,30}").prop_map(|(code, message)| StreamFrame::Error { code, message }),
    ]
}

/// One block of a stream: a gateway frame, or one of the other things a stream may hold.
fn block() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => (frame(), "[a-z0-9:-]{1,12}", 0u64..1000, line_end(), line_end())
            .prop_map(|(f, m, seq, e1, e2)| {
                [format!("id: {m}:{seq}").as_bytes(), e1, format!("data: {}", f.to_data()).as_bytes(), e2, e2].concat()
            }),
        1 => (".{0,20}", line_end()).prop_map(|(c, e)| [b":", c.as_bytes(), e].concat()),
        1 => ("[a-z]{0,8}", ".{0,10}", line_end()).prop_map(|(ev, d, e)| {
            [b"event:", ev.as_bytes(), e, b"data:", d.as_bytes(), e, e].concat()
        }),
        1 => ("[0-9+ x-]{0,25}", line_end()).prop_map(|(r, e)| [b"retry: ", r.as_bytes(), e].concat()),
        1 => (prop::collection::vec(".{0,6}", 1..4), line_end()).prop_map(|(lines, e)| {
            let mut b = Vec::new();
            for l in lines {
                b.extend_from_slice(b"data:");
                b.extend_from_slice(l.as_bytes());
                b.extend_from_slice(e);
            }
            b.extend_from_slice(e);
            b
        }),
        1 => Just(BOM.to_vec()),
        1 => Just(b"id\n\n".to_vec()),
        1 => Just(b"id: a\0b\n\n".to_vec()),
    ]
}

/// A mutation of a body: what a broken proxy, a bit flip or a hostile server does.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let interesting = prop_oneof![
        Just(b"\r".to_vec()),
        Just(b"\n".to_vec()),
        Just(b":".to_vec()),
        Just(b"\0".to_vec()),
        Just(BOM.to_vec()),
        Just(b"\xE2\x9C".to_vec()),
        Just(b"\xFF".to_vec()),
        Just(b"data".to_vec()),
        Just(b"id: ".to_vec()),
        prop::collection::vec(any::<u8>(), 1..4),
    ];
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), interesting).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), 1usize..8).prop_map(|(i, n)| Mutation::Delete(i, n)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(body: &mut Vec<u8>, m: &Mutation) {
    let at = |i: usize, len: usize| i % (len + 1);
    match m {
        Mutation::Flip(i, b) if !body.is_empty() => {
            let i = i % body.len();
            body[i] ^= b | 1;
        }
        Mutation::Flip(..) => {}
        Mutation::Insert(i, bytes) => {
            let i = at(*i, body.len());
            body.splice(i..i, bytes.iter().copied());
        }
        Mutation::Delete(i, n) => {
            let i = at(*i, body.len());
            let end = (i + n).min(body.len());
            body.drain(i..end);
        }
        Mutation::Truncate(i) => body.truncate(at(*i, body.len())),
    }
}

fn mutated_body() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(block(), 0..8),
        prop::collection::vec(mutation(), 0..4),
    )
        .prop_map(|(blocks, mutations)| {
            let mut body = blocks.concat();
            for m in &mutations {
                apply(&mut body, m);
            }
            body
        })
}

/// What every dispatched item must look like, whatever the input.
fn check_shape(items: &[SseItem], last_id: &str) -> Result<(), TestCaseError> {
    for item in items {
        if let SseItem::Event(e) = item {
            prop_assert!(!e.data.contains('\r'), "CR in data {:?}", e.data);
            prop_assert!(!e.last_event_id.contains(['\0', '\r', '\n']));
            prop_assert!(!e.event_type.is_empty());
            prop_assert!(!e.event_type.contains(['\r', '\n']));
        }
    }
    prop_assert!(!last_id.contains(['\0', '\r', '\n']));
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// Mutated streams: chunking never matters, and the parser agrees with the reference.
    #[test]
    fn mutated_streams_match_the_reference_in_any_chunking(
        body in mutated_body(),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
        resumed in any::<bool>(),
    ) {
        let initial = if resumed { "m1:3" } else { "" };
        let expected = reference(&body, initial);
        let whole = chunked(&body, &[], initial);
        prop_assert_eq!(&whole, &expected, "whole body vs reference");
        let split = chunked(&body, &cuts, initial);
        prop_assert_eq!(&split, &expected, "cut at {:?}", cuts);
        if !resumed {
            prop_assert_eq!(&byte_by_byte(&body), &expected, "byte by byte");
        }
        check_shape(&expected.0, &expected.1)?;
    }

    /// Raw bytes, no structure: still no panic, still the reference's answer.
    #[test]
    fn random_bytes_match_the_reference(
        body in prop::collection::vec(any::<u8>(), 0..256),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        let expected = reference(&body, "");
        prop_assert_eq!(&chunked(&body, &cuts, ""), &expected);
        check_shape(&expected.0, &expected.1)?;
    }

    /// Unmutated gateway streams come back frame for frame, ids and all.
    #[test]
    fn gateway_streams_round_trip(
        frames in prop::collection::vec(frame(), 0..10),
        message in "[a-zA-Z0-9_-]{1,16}",
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut body = Vec::new();
        for (seq, f) in frames.iter().enumerate() {
            body.extend(format!("id: {message}:{seq}\ndata: {}\n\n", f.to_data()).into_bytes());
        }
        let (items, last) = chunked(&body, &cuts, "");
        prop_assert_eq!(items.len(), frames.len());
        for (seq, (item, f)) in items.iter().zip(&frames).enumerate() {
            let SseItem::Event(e) = item else {
                return Err(TestCaseError::fail("a retry item from a gateway stream"));
            };
            prop_assert_eq!(&e.last_event_id, &format!("{message}:{seq}"));
            prop_assert_eq!(StreamFrame::parse(&e.data), Some(f.clone()));
            prop_assert_eq!(
                picasso_core::wire::parse_event_id(&e.last_event_id),
                Some((message.as_str(), seq as u64))
            );
        }
        if !frames.is_empty() {
            prop_assert_eq!(last, format!("{message}:{}", frames.len() - 1));
        }
    }
}

/// The reference itself against the spec's own examples, so the oracle is not wrong
/// in the same way as the parser.
#[test]
fn reference_agrees_with_the_spec_examples() {
    let (items, last) = reference(b"data: a\n\nid: 7\ndata: b\r\ndata: c\r\r\n", "");
    assert_eq!(
        items,
        [
            SseItem::Event(SseEvent {
                event_type: "message".into(),
                data: "a".into(),
                last_event_id: String::new()
            }),
            SseItem::Event(SseEvent {
                event_type: "message".into(),
                data: "b\nc".into(),
                last_event_id: "7".into()
            }),
        ]
    );
    assert_eq!(last, "7");
    assert_eq!(reference(b"\xEF\xBB\xBF\xEF\xBB\xBFdata:x\n\n", "").0, []);
    assert_eq!(parse_all(b"retry: 12\n"), reference(b"retry: 12\n", "").0);
}
