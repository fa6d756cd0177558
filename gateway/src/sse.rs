//! The bytes of the event stream, written by hand so they are exactly the contract's:
//! `id: {message_id}:{seq}` then `data: {payload}` then a blank line, for every frame,
//! `end` included. No `event:` field (the widget listens with `onmessage`), no `retry:`.

use crate::faults::Frames;
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderValue, StatusCode, header};
use picasso_core::wire::{StreamFrame, event_id};
use std::time::Duration;

/// The heartbeat: a comment line and the blank line after it. The event-stream parser
/// ignores it, so the page sees nothing, but proxies see traffic.
pub const HEARTBEAT: &[u8] = b":\n\n";

/// Whether a chunk is a comment (a heartbeat), not a frame: faults that strike "after
/// N frames" do not count it.
pub fn is_comment(chunk: &Bytes) -> bool {
    chunk.first() == Some(&b':')
}

/// Sends [`HEARTBEAT`] whenever `every` passes without a chunk from `frames`
/// (`widget-and-determinism.md` §B.7: a heartbeat every ~15 s); ends with `frames`.
/// A zero period sends none.
pub fn with_heartbeat(frames: Frames, every: Duration) -> Frames {
    if every.is_zero() {
        return frames;
    }
    futures_util::stream::unfold(frames, move |mut frames| async move {
        tokio::select! {
            biased;
            // `next` is cancel-safe: a frame is never lost to the timer.
            item = frames.next() => item.map(|item| (item, frames)),
            _ = tokio::time::sleep(every) => Some((Ok(Bytes::from_static(HEARTBEAT)), frames)),
        }
    })
    .boxed()
}

/// A frame that ends a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terminal {
    /// `data: {"type": "end"}`.
    End,
    /// `data: {"type": "error", …}`.
    Error,
}

/// Whether `chunk`, one frame as [`encode`] wrote it, is a terminal frame. Reads only
/// the start of the `data:` payload, whose field order [`StreamFrame::to_data`] fixes.
pub fn terminal(chunk: &[u8]) -> Option<Terminal> {
    // Called on every frame that goes out: look only where [`encode`] puts the payload,
    // after an optional `id:` line, rather than searching the chunk.
    let rest = match chunk.strip_prefix(b"id: ") {
        Some(id) => &id[id.iter().position(|b| *b == b'\n')? + 1..],
        None => chunk,
    };
    let payload = rest.strip_prefix(b"data: ")?;
    if payload.starts_with(br#"{"type": "end"}"#) {
        Some(Terminal::End)
    } else if payload.starts_with(br#"{"type": "error""#) {
        Some(Terminal::Error)
    } else {
        None
    }
}

/// How long past `limits.max_stream_ms` an open stream may last before [`capped`] cuts
/// it. The generation's own cap strikes first in every case but a stalled connection
/// (a `gateway` `stall` fault); this is the promise's slack, on the server's clock.
pub const CAP_MARGIN: Duration = Duration::from_millis(100);

/// Ends `frames` with a `STREAM_004` error frame if it is still open `cap` after now:
/// the 30 s cap as a promise to the client, whatever holds the stream up (a stalled
/// edge, a generation that outlives its own deadline). The frame's `id:` continues
/// the sequence from `first_seq` by the `id:` frames that went out (no `id:` when
/// `message_id` is `None`: the as-written Lambda's frames have none).
pub fn capped(frames: Frames, cap: Duration, message_id: Option<String>, first_seq: u64) -> Frames {
    // One timer for the whole stream, kept between frames, rather than a timer set and
    // cleared for every frame (the simulator sends millions of frames).
    let deadline = tokio::time::Instant::now()
        .checked_add(cap)
        .map(|at| Box::pin(tokio::time::sleep_until(at)));
    let state = (Some(frames), first_seq, message_id, deadline);
    futures_util::stream::unfold(
        state,
        move |(frames, seq, message_id, mut deadline)| async move {
            let mut frames = frames?;
            tokio::select! {
                biased;
                item = frames.next() => {
                    let item = item?;
                    let seq = seq + u64::from(item.as_ref().is_ok_and(|b| b.starts_with(b"id: ")));
                    Some((item, (Some(frames), seq, message_id, deadline)))
                }
                _ = until(&mut deadline) => {
                    let frame = StreamFrame::Error {
                        code: picasso_core::wire::Code::Stream004.as_str().to_owned(),
                        message: format!(
                            "the stream stayed open past its cap of {} ms",
                            cap.saturating_sub(CAP_MARGIN).as_millis()
                        ),
                    };
                    let bytes = match &message_id {
                        Some(id) => encode(id, seq, &frame),
                        None => encode_data_only(&frame),
                    };
                    Some((Ok(bytes), (None, seq, message_id, None)))
                }
            }
        },
    )
    .boxed()
}

/// Waits for the cap's timer; forever when the cap is too far to represent.
async fn until(deadline: &mut Option<std::pin::Pin<Box<tokio::time::Sleep>>>) {
    match deadline {
        Some(sleep) => sleep.as_mut().await,
        None => std::future::pending().await,
    }
}

/// One frame on the wire: `id:` and `data:` lines and the blank line that dispatches it.
///
/// `data` never holds a raw newline: [`StreamFrame::to_data`] is JSON, which escapes them.
pub fn encode(message_id: &str, seq: u64, frame: &StreamFrame) -> Bytes {
    use std::fmt::Write as _;
    // Written into one buffer sized for the frame: this runs for every token.
    let data = frame.to_data();
    let mut out = String::with_capacity(message_id.len() + data.len() + 40);
    let _ = write!(out, "id: {message_id}:{seq}\ndata: {data}\n\n");
    // The `id:` is spelled as `event_id` spells it.
    debug_assert!(out.starts_with(&format!("id: {}\n", event_id(message_id, seq))));
    Bytes::from(out)
}

/// One frame as the design document's Lambda writes it: `data:` and the blank line,
/// no `id:` (so a browser has no `Last-Event-ID` to resume with).
pub fn encode_data_only(frame: &StreamFrame) -> Bytes {
    Bytes::from(format!("data: {}\n\n", frame.to_data()))
}

/// A `data:` line that is not JSON, for the `malformed_frame` fault: it looks like the
/// start of a text frame cut off mid-write, and carries no `id:` so it takes no seq.
pub fn malformed() -> Bytes {
    Bytes::from_static(b"data: {\"content\": \"Hel\n\n")
}

/// A `200` event stream with the contract's headers around `body`.
pub fn response(body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Proxies such as nginx buffer responses unless told not to: the tokens would
    // arrive all at once at the end.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_frames_are_told_apart() {
        let error = StreamFrame::Error {
            code: "STREAM_004".into(),
            message: "m".into(),
        };
        assert_eq!(
            terminal(&encode("m", 9, &StreamFrame::End)),
            Some(Terminal::End)
        );
        assert_eq!(terminal(&encode("m", 9, &error)), Some(Terminal::Error));
        // A text that reads like a terminal frame is still text.
        let sly = StreamFrame::Text(r#"{"type": "end"}"#.into());
        assert_eq!(terminal(&encode("m", 0, &sly)), None);
        assert_eq!(terminal(HEARTBEAT), None);
        // The as-written Lambda's frames have no `id:` line.
        assert_eq!(
            terminal(&encode_data_only(&StreamFrame::End)),
            Some(Terminal::End)
        );
        assert_eq!(terminal(&encode_data_only(&error)), Some(Terminal::Error));
        assert_eq!(terminal(&malformed()), None);
    }

    /// Silence is filled with heartbeats at the period, counted from the last chunk.
    #[tokio::test(start_paused = true)]
    async fn heartbeats_fill_silence_and_stop_with_the_stream() {
        let frames: Frames = futures_util::stream::unfold(0u8, |i| async move {
            let delay = if i == 0 { 40_000 } else { 1_000 };
            (i < 2).then_some(())?;
            tokio::time::sleep(Duration::from_millis(delay)).await;
            Some((Ok(Bytes::from(format!("f{i}"))), i + 1))
        })
        .boxed();
        let start = tokio::time::Instant::now();
        let got: Vec<(u64, String)> = with_heartbeat(frames, Duration::from_millis(15_000))
            .map(|b| {
                (
                    start.elapsed().as_millis() as u64,
                    String::from_utf8(b.unwrap().to_vec()).unwrap(),
                )
            })
            .collect()
            .await;
        let expected: Vec<(u64, String)> = vec![
            (15_000, ":\n\n".into()),
            (30_000, ":\n\n".into()),
            (40_000, "f0".into()),
            (41_000, "f1".into()),
        ];
        assert_eq!(got, expected);
        assert!(is_comment(&Bytes::from_static(HEARTBEAT)));
        assert!(!is_comment(&Bytes::from_static(b"id: m:0\n")));
    }

    #[test]
    fn frames_carry_id_and_data_lines() {
        assert_eq!(
            encode("m1", 0, &StreamFrame::Text("Hello".into())),
            Bytes::from_static(b"id: m1:0\ndata: {\"content\": \"Hello\", \"type\": \"text\"}\n\n")
        );
        assert_eq!(
            encode("m1", 4, &StreamFrame::End),
            Bytes::from_static(b"id: m1:4\ndata: {\"type\": \"end\"}\n\n")
        );
        let multi = encode("m", 1, &StreamFrame::Text("a\nb".into()));
        assert_eq!(multi.iter().filter(|b| **b == b'\n').count(), 3);
    }
}
