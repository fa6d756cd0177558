//! A future polled only when its own waker fires.
//!
//! `tokio::select!` polls every branch each time its task wakes. A served stream's task
//! wakes for every frame, and beside the work it carries a branch that waits for a
//! `CancellationToken` (the server stopping, every reader leaving). Polling that branch
//! costs two lock round trips (the token's `is_cancelled` takes its tree's mutex, and
//! a waiting `Notified` takes the notifier's), for a signal that fires once in a
//! server's life: about 4 % of `serve`'s samples at 1,000 streams (README,
//! *Benchmarks*). [`OnWake`] gives the inner future a waker of its own and skips the
//! poll until that waker has fired, with two atomic operations instead.

use futures_util::task::AtomicWaker;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

/// `future`, polled on its first poll and then only after it asked to be woken and was.
/// (Boxed: one allocation per connection or generation, not per poll.)
pub fn on_wake<F: Future>(future: F) -> OnWake<F> {
    OnWake {
        inner: Box::pin(future),
        signal: Arc::new(Signal::default()),
        task: None,
        polled: false,
    }
}

/// See [`on_wake`].
#[derive(Debug)]
pub struct OnWake<F> {
    inner: Pin<Box<F>>,
    signal: Arc<Signal>,
    /// The task waker last handed to `signal`: handed again only when it changes (a
    /// task's waker seldom does), as `AtomicWaker::register` costs a compare-and-swap.
    task: Option<Waker>,
    polled: bool,
}

/// The inner future's waker: remembers that it fired, and wakes the task.
#[derive(Debug, Default)]
struct Signal {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl<F: Future> Future for OnWake<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        // Registered before the check: a wake between the two is not lost.
        if !this.task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
            this.signal.task.register(cx.waker());
            this.task = Some(cx.waker().clone());
        }
        if this.polled && !this.signal.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        this.polled = true;
        let waker = Waker::from(this.signal.clone());
        this.inner.as_mut().poll(&mut Context::from_waker(&waker))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use tokio_util::sync::CancellationToken;

    /// A future that counts its polls and is ready once `ready` is set, waking the
    /// waker it was last given when told to.
    #[derive(Debug, Default)]
    struct Probe {
        polls: AtomicUsize,
        ready: AtomicBool,
        waker: std::sync::Mutex<Option<Waker>>,
    }

    fn probe(p: Arc<Probe>) -> impl Future<Output = ()> {
        std::future::poll_fn(move |cx| {
            p.polls.fetch_add(1, Ordering::SeqCst);
            if p.ready.load(Ordering::SeqCst) {
                return Poll::Ready(());
            }
            *p.waker.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        })
    }

    #[test]
    fn the_inner_future_is_polled_only_after_its_own_wake() {
        let p = Arc::new(Probe::default());
        let mut f = on_wake(probe(p.clone()));
        let task = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&task);
        assert!(Pin::new(&mut f).poll(&mut cx).is_pending());
        // The task woke for something else: the inner future is not polled.
        for _ in 0..5 {
            assert!(Pin::new(&mut f).poll(&mut cx).is_pending());
        }
        assert_eq!(p.polls.load(Ordering::SeqCst), 1);
        // Its own waker fired: polled again, and ready.
        p.ready.store(true, Ordering::SeqCst);
        p.waker.lock().unwrap().take().unwrap().wake();
        assert!(Pin::new(&mut f).poll(&mut cx).is_ready());
        assert_eq!(p.polls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_cancellation_ends_a_select_that_polls_another_branch_all_along() {
        let token = CancellationToken::new();
        let cancelled = on_wake(token.clone().cancelled_owned());
        tokio::pin!(cancelled);
        let mut ticks = 0u32;
        let canceller = token.clone();
        loop {
            tokio::select! {
                biased;
                () = &mut cancelled => break,
                () = tokio::task::yield_now() => {
                    ticks += 1;
                    if ticks == 50 {
                        canceller.cancel();
                    }
                    assert!(ticks <= 51, "the cancellation was lost");
                }
            }
        }
        assert_eq!(ticks, 50);
    }
}
