//! hyper's own answers, given the server's error body.
//!
//! hyper answers some requests itself, before any router sees them, with an empty
//! body: a request target over its 65,534-byte cap (`414`), a request head over its
//! read buffer's cap of about 400 KB (`431`) and a request head it cannot parse (`400`,
//! e.g. a raw byte that is not UTF-8 in the query). The gateway's and the
//! Master's contracts want every refusal to carry `{"code", "message"}`; no tower layer
//! sees these answers (no request reached a service), so the socket itself is wrapped.

use bytes::{Buf, Bytes};
use picasso_core::wire::ErrorBody;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A socket that gives hyper's own bodiless `400`, `414` and `431` answers (written when
/// a request head cannot be parsed or is too large, before any router runs) a JSON body
/// `{"code", "message"}` with the server's code. Every other byte passes through
/// untouched: the routers' refusals always carry a body, so they never look like hyper's.
#[derive(Debug)]
pub struct ParseErrorBodies<S> {
    inner: S,
    /// The code the JSON body carries; `None` passes hyper's answers through as
    /// they are (mock Bedrock: Bedrock's error shape is not `{"code", "message"}`).
    code: Option<&'static str>,
    /// The replacement answer still to be written.
    pending: Option<Bytes>,
}

impl<S> ParseErrorBodies<S> {
    /// Wraps `inner`; replacement bodies carry `code` (none: nothing is replaced).
    pub fn new(inner: S, code: Option<&'static str>) -> ParseErrorBodies<S> {
        ParseErrorBodies {
            inner,
            code,
            pending: None,
        }
    }
}

impl<S: AsyncWrite + Unpin> ParseErrorBodies<S> {
    /// Writes out the pending replacement, if any.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(pending) = self.pending.as_mut() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            pending.advance(n);
            if pending.is_empty() {
                self.pending = None;
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Takes `buf` in place of writing it when it is one of hyper's bodiless answers.
    fn swallow(&mut self, buf: &[u8], cx: &mut Context<'_>) -> Option<io::Result<usize>> {
        let replacement = with_json_body(buf, self.code?)?;
        self.pending = Some(replacement);
        // Start writing now; what is left goes out on the next write, flush or shutdown.
        match self.poll_pending(cx) {
            Poll::Ready(Err(e)) => Some(Err(e)),
            _ => Some(Ok(buf.len())),
        }
    }
}

/// hyper's automatic answer (one whole head, `content-length: 0`, status `400`, `414` or
/// `431`) rewritten with a JSON body carrying `code`; `None` for anything else.
fn with_json_body(buf: &[u8], code: &str) -> Option<Bytes> {
    let message = if buf.starts_with(b"HTTP/1.1 414 ") {
        "the URL is longer than the server reads"
    } else if buf.starts_with(b"HTTP/1.1 431 ") {
        "the request's headers are larger than the server reads"
    } else if buf.starts_with(b"HTTP/1.1 400 ") {
        "malformed request: the request line or headers cannot be parsed \
         (bytes that are not ASCII must be percent-encoded UTF-8)"
    } else {
        return None;
    };
    let head = std::str::from_utf8(buf.strip_suffix(b"\r\n\r\n")?).ok()?;
    if head.contains("\r\n\r\n")
        || !head
            .split("\r\n")
            .any(|line| line.eq_ignore_ascii_case("content-length: 0"))
    {
        return None;
    }
    let body = serde_json::to_string(&ErrorBody {
        code: code.into(),
        message: message.into(),
    })
    .ok()?;
    let mut out = String::with_capacity(head.len() + body.len() + 64);
    for line in head.split("\r\n") {
        if line.eq_ignore_ascii_case("content-length: 0") {
            out.push_str("content-type: application/json\r\n");
            out.push_str(&format!("content-length: {}\r\n", body.len()));
        } else {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("\r\n");
    out.push_str(&body);
    Some(Bytes::from(out))
}

impl<S: AsyncRead + Unpin> AsyncRead for ParseErrorBodies<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ParseErrorBodies<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        if let Some(result) = this.swallow(buf, cx) {
            return Poll::Ready(result);
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        // hyper's automatic answer is a head alone, so it is the first slice.
        if let Some(first) = bufs.iter().find(|b| !b.is_empty())
            && let Some(result) = this.swallow(first, cx)
        {
            return Poll::Ready(result);
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_bodiless_400_414_and_431_are_rewritten() {
        let hyper_414 = b"HTTP/1.1 414 URI Too Long\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let out = with_json_body(hyper_414, "STREAM_003").unwrap();
        let text = std::str::from_utf8(&out).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 414 URI Too Long\r\nconnection: close\r\n"));
        assert!(head.contains("content-type: application/json"));
        assert!(head.ends_with("date: x"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["code"], "STREAM_003");
        let hyper_400 =
            b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
        assert!(with_json_body(hyper_400, "STREAM_003").is_some());
        let hyper_431 = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
        assert!(with_json_body(hyper_431, "INVALID_REQUEST").is_some());
        for other in [
            &b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 68\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{}",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
            b"id: m:0\ndata: {}\n\n",
        ] {
            assert!(with_json_body(other, "STREAM_003").is_none(), "{other:?}");
        }
    }
}
