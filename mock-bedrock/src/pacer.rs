//! Sleeps to a fraction of a millisecond on the real clock, for serving paced streams.
//!
//! tokio's timer counts whole milliseconds: a deadline is rounded up to the next tick
//! and the driver parks for whole milliseconds, so a `sleep_until` wakes 0–2 ms late
//! (about 1 ms on average, measured on a lone stream). Under the simulator's paused
//! clock that does not matter, and there [`Clock::Tokio`] is the only right choice: it
//! is virtual time. On a served mock Bedrock it shows up as the pacing error and the
//! time to first token a load test measures, so `serve` uses [`Clock::Precise`]: one
//! thread keeps every pending deadline in a heap and parks until the earliest
//! (`park_timeout` sleeps with nanosecond resolution), then wakes the tasks that are due.
//!
//! Deadlines within [`COALESCE`] of each other are woken together, and a sleep counts
//! as over that much before its deadline: one wake-up serves a bunch of streams. With
//! more than [`BUSY`] sleeps pending, new ones go to tokio's timer: under that load the
//! server's own scheduling jitter is larger than tokio's millisecond, and a wake-up from
//! another thread costs a context switch each.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// How early a sleep may end so that near deadlines share one wake-up.
pub const COALESCE: Duration = Duration::from_micros(100);

/// Pending precise sleeps past which new sleeps go to tokio's timer instead.
pub const BUSY: usize = 64;

/// Which clock a mock Bedrock paces its streams with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Clock {
    /// `tokio::time`: virtual under a paused clock (the simulator, tests); whole
    /// milliseconds on the real one.
    #[default]
    Tokio,
    /// The real clock to a fraction of a millisecond (`serve`). Never under a paused
    /// tokio clock: it would sleep in real time.
    Precise,
}

impl Clock {
    /// Sleeps until `at`.
    pub(crate) async fn sleep_until(self, at: tokio::time::Instant) {
        match self {
            Clock::Tokio => tokio::time::sleep_until(at).await,
            // Under load the pacer's cross-thread wake-ups cost more than they buy:
            // with many streams in flight the server's own scheduling jitter dwarfs
            // tokio's millisecond, and waking tasks from another thread costs a context
            // switch a time (measured at 1,000 streams: +25 % CPU per frame, no better
            // p99). Past `BUSY` pending sleeps, tokio's timer takes the rest.
            Clock::Precise if pacer().pending.load(Ordering::Relaxed) < BUSY => {
                PreciseSleep::new(at.into_std()).await
            }
            Clock::Precise => tokio::time::sleep_until(at).await,
        }
    }
}

/// One pending deadline.
struct Pending {
    at: Instant,
    seq: u64,
    waker: Waker,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Reverse<Pending>>,
    seq: u64,
}

/// The process's pacer thread and its queue of deadlines.
struct Pacer {
    queue: Mutex<Queue>,
    /// The queue's length, readable without the lock.
    pending: AtomicUsize,
    thread: Thread,
}

fn pacer() -> &'static Pacer {
    static PACER: OnceLock<Pacer> = OnceLock::new();
    PACER.get_or_init(|| {
        let thread = std::thread::Builder::new()
            .name("mock-bedrock-pacer".into())
            .spawn(|| run(pacer()))
            .expect("spawning the pacer thread");
        Pacer {
            queue: Mutex::new(Queue::default()),
            pending: AtomicUsize::new(0),
            thread: thread.thread().clone(),
        }
    })
}

/// The pacer thread: wake what is due, park until the next deadline.
fn run(pacer: &Pacer) {
    loop {
        let mut due = Vec::new();
        let next = {
            let mut q = pacer.queue.lock().unwrap_or_else(|e| e.into_inner());
            let horizon = Instant::now() + COALESCE;
            while q.heap.peek().is_some_and(|Reverse(p)| p.at <= horizon) {
                if let Some(Reverse(p)) = q.heap.pop() {
                    due.push(p.waker);
                }
            }
            pacer.pending.store(q.heap.len(), Ordering::Relaxed);
            q.heap.peek().map(|Reverse(p)| p.at)
        };
        for waker in due {
            waker.wake();
        }
        match next {
            Some(at) => std::thread::park_timeout(at.saturating_duration_since(Instant::now())),
            None => std::thread::park(),
        }
    }
}

/// A sleep on the pacer.
struct PreciseSleep {
    at: Instant,
}

impl PreciseSleep {
    fn new(at: Instant) -> PreciseSleep {
        PreciseSleep { at }
    }
}

impl Future for PreciseSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() + COALESCE >= self.at {
            return Poll::Ready(());
        }
        let pacer = pacer();
        let earliest = {
            let mut q = pacer.queue.lock().unwrap_or_else(|e| e.into_inner());
            q.seq += 1;
            let seq = q.seq;
            let earlier = q.heap.peek().is_none_or(|Reverse(p)| self.at < p.at);
            q.heap.push(Reverse(Pending {
                at: self.at,
                seq,
                waker: cx.waker().clone(),
            }));
            pacer.pending.store(q.heap.len(), Ordering::Relaxed);
            earlier
        };
        // The thread parks until the earliest deadline it knew of: a new earliest one
        // must wake it to park again for less.
        if earliest {
            pacer.thread.unpark();
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn precise_sleeps_end_at_their_deadline_not_a_tick_later() {
        // Real time, on purpose (the only clock this sleeper serves); the assertion
        // is one-sided and generous, so a busy machine cannot fail it by being slow
        // to run the test, only a sleeper that ends early can.
        let start = Instant::now();
        let deadlines: Vec<Instant> = (1..=5)
            .map(|i| start + Duration::from_micros(1_500 * i))
            .collect();
        for at in &deadlines {
            Clock::Precise
                .sleep_until(tokio::time::Instant::from_std(*at))
                .await;
            assert!(Instant::now() + COALESCE >= *at, "woke before its deadline");
        }
    }

    #[tokio::test]
    async fn many_sleepers_all_wake() {
        let start = Instant::now();
        let tasks: Vec<_> = (0..200u64)
            .map(|i| {
                let at = start + Duration::from_micros(50 * (i % 40));
                tokio::spawn(async move {
                    Clock::Precise
                        .sleep_until(tokio::time::Instant::from_std(at))
                        .await;
                    Instant::now() + COALESCE >= at
                })
            })
            .collect();
        for t in tasks {
            assert!(t.await.unwrap());
        }
    }
}
