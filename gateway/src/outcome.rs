//! How each stream request ended, counted exactly once: `completed`, `error` or
//! `cancelled` (see [`crate::metrics`]).
//!
//! A [`Pending`] is made when the handler starts. If the handler's future is dropped
//! before it answers (the client went away during an injected latency, say), its
//! `Drop` counts `cancelled`. A refusal or a `204` settles it when the answer is known.
//! An event stream hands it to a [`Tracked`] body, which settles it from what went out:
//! the terminal frame (`end`: completed; an error frame: error), a cut the server made
//! (error), or the body dropped before either (the client went away: cancelled). The
//! same body holds the open-stream gauge, so the gauge and the outcome end together.

use crate::faults::{EdgeError, Frames};
use crate::metrics::Metrics;
use crate::sse::{self, Terminal};
use bytes::Bytes;
use futures_util::Stream;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// A stream request whose outcome is not counted yet.
#[derive(Debug)]
pub struct Pending {
    metrics: Arc<Metrics>,
    tenant: String,
    settled: bool,
}

impl Pending {
    /// A request just begun.
    pub fn begin(metrics: Arc<Metrics>) -> Pending {
        Pending {
            metrics,
            tenant: String::new(),
            settled: false,
        }
    }

    /// The tenant, once it is known to exist (the metrics label).
    pub fn set_tenant(&mut self, tenant: &str) {
        tenant.clone_into(&mut self.tenant);
    }

    /// The tenant label so far (empty when not known).
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// Counts `outcome` (once; later calls are ignored).
    pub fn settle(&mut self, outcome: &'static str) {
        if !self.settled {
            self.settled = true;
            self.metrics.stream_outcome(outcome, &self.tenant);
        }
    }

    /// Hands the count to an event-stream body.
    pub fn track(self, frames: Frames) -> Tracked {
        self.metrics.open_streams.inc();
        Tracked {
            frames,
            pending: self,
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.settle("cancelled");
    }
}

/// An event-stream body that counts its own outcome and the open-stream gauge.
pub struct Tracked {
    frames: Frames,
    pending: Pending,
}

impl std::fmt::Debug for Tracked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracked")
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

impl Stream for Tracked {
    type Item = Result<Bytes, EdgeError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = self.frames.as_mut().poll_next(cx);
        match &item {
            Poll::Ready(Some(Ok(chunk))) => match sse::terminal(chunk) {
                Some(Terminal::End) => self.pending.settle("completed"),
                Some(Terminal::Error) => self.pending.settle("error"),
                None => {}
            },
            // The server cut the stream (a drop fault), or it ended without a terminal
            // frame: the client did not get its answer, through no act of its own.
            Poll::Ready(Some(Err(_)) | None) => self.pending.settle("error"),
            Poll::Pending => {}
        }
        item
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.pending.metrics.open_streams.dec();
        // Dropped before a terminal frame or a cut: the client went away.
        self.pending.settle("cancelled");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use futures_util::stream;
    use picasso_core::wire::StreamFrame;

    fn frames(list: Vec<Result<Bytes, EdgeError>>) -> Frames {
        stream::iter(list).boxed()
    }

    fn text() -> Result<Bytes, EdgeError> {
        Ok(sse::encode("m", 0, &StreamFrame::Text("hi".into())))
    }

    fn count(m: &Metrics, outcome: &str) -> String {
        let text = m.render();
        text.lines()
            .find(|l| {
                l.starts_with("gateway_stream_outcomes_total{")
                    && l.contains(&format!("outcome=\"{outcome}\""))
            })
            .map(|l| l.rsplit(' ').next().unwrap_or("").to_owned())
            .unwrap_or_else(|| "0".into())
    }

    #[tokio::test]
    async fn each_request_is_counted_once_by_how_it_ended() {
        let m = Arc::new(Metrics::default());
        // Through `end`: completed, even if the body is then dropped.
        let end = Ok(sse::encode("m", 1, &StreamFrame::End));
        let mut t = Pending::begin(m.clone()).track(frames(vec![text(), end]));
        while t.next().await.is_some() {}
        drop(t);
        // An error frame: error.
        let err = Ok(sse::encode(
            "m",
            1,
            &StreamFrame::Error {
                code: "STREAM_001".into(),
                message: "x".into(),
            },
        ));
        let t = Pending::begin(m.clone()).track(frames(vec![text(), err]));
        t.collect::<Vec<_>>().await;
        // A cut: error.
        let t = Pending::begin(m.clone()).track(frames(vec![text(), Err(EdgeError::Dropped)]));
        t.collect::<Vec<_>>().await;
        // Dropped after one frame: cancelled; a handler dropped early: cancelled.
        let mut t = Pending::begin(m.clone()).track(frames(vec![text(), text()]));
        t.next().await;
        drop(t);
        drop(Pending::begin(m.clone()));
        // Settled by hand, then dropped: counted once.
        let mut p = Pending::begin(m.clone());
        p.settle("completed");
        drop(p);
        assert_eq!(count(&m, "completed"), "2");
        assert_eq!(count(&m, "error"), "2");
        assert_eq!(count(&m, "cancelled"), "2");
        assert!(
            m.render().contains("gateway_open_streams 0"),
            "{}",
            m.render()
        );
    }
}
