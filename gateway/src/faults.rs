//! Scripted faults at the gateway (`where = "gateway"`) and on the network in front of
//! it (`where = "network"`).
//!
//! The gateway plays the network at its own edge, so `serve` over loopback and the
//! simulator in-process see the same faults: a refused connection, latency, a drop
//! after N frames (the body fails), a stall (headers, then silence). The gateway's own
//! faults are latency, an error status, a drop or stall mid-stream, a malformed frame
//! and the wrong content type.
//!
//! Frame counts: every chunk of an event-stream body is exactly one frame, so "after N
//! frames" counts body chunks.

use crate::sse;
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};
use http::{HeaderValue, StatusCode, header};
use picasso_core::scenario::Fault;
use picasso_core::wire::Code;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A response body that fails: the connection dropped (or was never accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EdgeError {
    /// An injected fault cut the connection mid-body.
    #[error("the connection dropped (injected fault)")]
    Dropped,
    /// An injected fault refused the connection before any response.
    #[error("the connection was refused (injected fault)")]
    Refused,
}

/// Marks a response that stands for a refused connection (`network` / `refuse`).
///
/// `serve` turns such a response into a connection closed before any response byte.
/// In-process callers (the simulator) should check for this extension; the body of
/// such a response also fails at once, so a caller that ignores the marker still
/// sees no answer.
pub use http_serve::CloseConnection as ConnectionRefused;

/// The body items the edge passes along.
pub type Frames = BoxStream<'static, Result<Bytes, EdgeError>>;

/// The stand-in for a refused connection: see [`ConnectionRefused`].
pub fn refused() -> Response {
    http_serve::closed_connection(StatusCode::BAD_GATEWAY, EdgeError::Refused)
}

/// The answer of a `status` fault: the status with the contract's JSON body.
pub fn status_response(fault: &Fault) -> Response {
    let status = fault
        .status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let code = match status.as_u16() {
        400 | 414 => Code::Stream003,
        403 => Code::Stream002,
        429 => Code::RateLimited,
        408 | 504 => Code::Stream004,
        _ => Code::Stream001,
    };
    let mut response = http_serve::error_response(
        status,
        code.as_str(),
        format!("injected fault: status {}", status.as_u16()),
    );
    if status == StatusCode::TOO_MANY_REQUESTS {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// The answer of a `wrong_content_type` fault: a `200` an `EventSource` must reject.
pub fn wrong_content_type() -> Response {
    http_serve::error_response(
        StatusCode::OK,
        Code::Stream001.as_str(),
        "injected fault: not an event stream",
    )
}

/// Lets `n` frames through, then fails the body when the next frame is due (a body
/// that ends after `n` frames ends cleanly). The inner stream (and so the
/// generation's reader) is dropped at the cut, as a real closed connection would.
///
/// Before failing, the stream yields once: hyper writes a body's chunks into a buffer
/// and drops that buffer when the body fails, so without a pause the last frames
/// before the cut would never reach a socket.
pub fn drop_after(inner: Frames, n: u32) -> Frames {
    stream::unfold((Some(inner), 0u32), move |(inner, sent)| async move {
        let mut inner = inner?;
        let item = inner.next().await?;
        if counts(&item) && sent >= n {
            drop(inner);
            tokio::task::yield_now().await;
            return Some((Err(EdgeError::Dropped), (None, sent)));
        }
        let sent = sent.saturating_add(u32::from(counts(&item)));
        Some((item, (Some(inner), sent)))
    })
    .boxed()
}

/// Lets `n` frames through, then goes silent for `delay` (for good when `None`, until
/// shutdown), then carries on.
pub fn stall_after(
    inner: Frames,
    n: u32,
    delay: Option<Duration>,
    shutdown: CancellationToken,
) -> Frames {
    stream::unfold(
        (inner, 0u32, shutdown),
        move |(mut inner, sent, shutdown)| async move {
            if sent == n {
                match delay {
                    Some(d) => {
                        tokio::select! {
                            biased;
                            _ = shutdown.cancelled() => {}
                            _ = tokio::time::sleep(d) => {}
                        }
                    }
                    None => shutdown.cancelled().await,
                }
            }
            let item = inner.next().await?;
            let sent = sent.saturating_add(u32::from(counts(&item)));
            Some((item, (inner, sent, shutdown)))
        },
    )
    .boxed()
}

/// Lets `n` frames through, then slips in one `data:` line that is not JSON.
pub fn malformed_after(inner: Frames, n: u32) -> Frames {
    stream::unfold((inner, 0u32), move |(mut inner, sent)| async move {
        if sent == n {
            return Some((Ok(sse::malformed()), (inner, sent + 1)));
        }
        let item = inner.next().await?;
        let sent = sent.saturating_add(u32::from(counts(&item)));
        Some((item, (inner, sent)))
    })
    .boxed()
}

/// Whether a chunk counts toward "after N frames": a heartbeat comment does not.
fn counts(item: &Result<Bytes, EdgeError>) -> bool {
    item.as_ref().is_ok_and(|b| !sse::is_comment(b))
}

/// Wraps a whole response's body in a frame-level fault (used by the network edge,
/// which does not care what the body is).
pub fn wrap_body(response: Response, wrap: impl FnOnce(Frames) -> Frames) -> Response {
    let (parts, body) = response.into_parts();
    let frames: Frames = body
        .into_data_stream()
        .map(|r| r.map_err(|_| EdgeError::Dropped))
        .boxed();
    Response::from_parts(parts, Body::from_stream(wrap(frames)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(n: usize) -> Frames {
        stream::iter((0..n).map(|i| Ok(Bytes::from(format!("f{i}"))))).boxed()
    }

    async fn collect(s: Frames) -> Vec<Result<String, EdgeError>> {
        s.map(|r| r.map(|b| String::from_utf8(b.to_vec()).unwrap()))
            .collect()
            .await
    }

    #[tokio::test]
    async fn drop_fails_after_n_frames_unless_the_stream_ended() {
        let out = collect(drop_after(frames(5), 2)).await;
        assert_eq!(
            out,
            [Ok("f0".into()), Ok("f1".into()), Err(EdgeError::Dropped)]
        );
        assert_eq!(
            collect(drop_after(frames(1), 0)).await,
            [Err(EdgeError::Dropped)]
        );
        assert!(collect(drop_after(frames(0), 0)).await.is_empty());
        assert_eq!(collect(drop_after(frames(2), 5)).await.len(), 2);
    }

    #[tokio::test]
    async fn malformed_frame_is_slipped_in_once() {
        let out = collect(malformed_after(frames(3), 1)).await;
        assert_eq!(out.len(), 4);
        assert!(
            out[1]
                .as_ref()
                .unwrap()
                .starts_with("data: {\"content\": \"Hel\n")
        );
    }

    /// A stall holds the next frame for the delay (virtual time), then carries on; a
    /// stall for good ends only at shutdown.
    #[tokio::test(start_paused = true)]
    async fn stall_holds_frames() {
        let start = tokio::time::Instant::now();
        let token = CancellationToken::new();
        let out = collect(stall_after(
            frames(3),
            1,
            Some(Duration::from_secs(7)),
            token,
        ))
        .await;
        assert_eq!(out.len(), 3);
        assert_eq!(start.elapsed(), Duration::from_secs(7));

        let token = CancellationToken::new();
        let mut s = stall_after(frames(3), 1, None, token.clone());
        assert!(s.next().await.is_some());
        let pending = tokio::time::timeout(Duration::from_secs(3600), s.next()).await;
        assert!(pending.is_err(), "silent for good");
        token.cancel();
        assert!(s.next().await.is_some());
    }
}
