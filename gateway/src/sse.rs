//! The bytes of the event stream, written by hand so they are exactly the contract's:
//! `id: {message_id}:{seq}` then `data: {payload}` then a blank line, for every frame,
//! `end` included. No `event:` field (the widget listens with `onmessage`), no `retry:`.

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use picasso_core::wire::{StreamFrame, event_id};

/// One frame on the wire: `id:` and `data:` lines and the blank line that dispatches it.
///
/// `data` never holds a raw newline: [`StreamFrame::to_data`] is JSON, which escapes them.
pub fn encode(message_id: &str, seq: u64, frame: &StreamFrame) -> Bytes {
    Bytes::from(format!(
        "id: {}\ndata: {}\n\n",
        event_id(message_id, seq),
        frame.to_data()
    ))
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
