//! One answer per message: the generations, keyed by [`MessageKey`]
//! `(tenant_hash, session_id, message_id)`.
//!
//! The tenant is part of the key because session and message ids are chosen by the
//! client: keyed by them alone, a second tenant sending the same ids would join or
//! replay the first tenant's answer. With the tenant in the key, a reused session id
//! under another tenant is another session, and no byte of one tenant's answer can be
//! read through another tenant's request.
//!
//! A generation is one Bedrock call and the frames it produced, kept after it ends.
//! Every response for the message reads the same log: the first request starts the
//! call, a repeat while it runs joins it (from the start, or after `Last-Event-ID`), a
//! repeat after it ended gets `204` or, with `Last-Event-ID`, the rest of the log. So a
//! browser's automatic reconnect never causes a second Bedrock call (§B.7).
//!
//! The log holds the frames already encoded, behind a mutex, with the wakers of the
//! readers waiting for the next one: readers wake when a frame is appended and read at
//! their own pace, so a slow reader never loses frames (a `broadcast` channel would make
//! it lag). It was a `tokio::sync::watch` channel, whose every send notifies eight
//! `Notify`s (each a lock) and whose receivers poll through an async block: 9 % of
//! `serve`'s samples at 1,000 streams, for one reader per generation (README,
//! *Benchmarks*).
//!
//! When the last reader goes away before the end, the call is dropped, which closes the
//! connection to Bedrock (no work, no cost, left running), and the log ends with an
//! error frame, so a later resume learns the answer is incomplete.

use crate::metrics::Metrics;
use crate::sse;
use bedrock_client::{Bedrock, BedrockError, Call};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use http_serve::on_wake::on_wake;
use picasso_core::scenario::Caller;
use picasso_core::wire::{Code, StreamFrame};
use std::collections::{BTreeMap, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The frames of one generation so far, and who waits for the next.
#[derive(Debug, Default)]
struct Log {
    frames: Vec<Bytes>,
    done: bool,
    /// Readers that found no frame past their cursor: woken, and forgotten, by the
    /// next push. One waker per waiting reader (a reader polled again while waiting
    /// is not added twice).
    waiting: Vec<Waker>,
}

/// One Bedrock call for one message, and its kept frames.
#[derive(Debug)]
pub struct Generation {
    message_id: String,
    /// Whether frames carry `id:` lines (the document's Lambda writes none).
    ids: bool,
    log: Mutex<Log>,
    /// Fired when the last reader leaves before the end: the call is then dropped.
    abandon: CancellationToken,
    readers: AtomicUsize,
}

/// How a generation ended, for the terminal frame and the metrics.
#[derive(Debug)]
enum Ending {
    Completed,
    Failed(BedrockError),
    TimedOut(Duration),
    Abandoned,
    Shutdown,
}

impl Ending {
    fn label(&self) -> &'static str {
        match self {
            Ending::Completed => "completed",
            Ending::Failed(_) => "bedrock_error",
            Ending::TimedOut(_) => "timeout",
            Ending::Abandoned => "abandoned",
            Ending::Shutdown => "shutdown",
        }
    }

    /// The terminal frame: `end`, or an error frame with its `STREAM_00x` code.
    fn frame(&self) -> StreamFrame {
        let error = |code: Code, message: String| StreamFrame::Error {
            code: code.as_str().to_owned(),
            message,
        };
        match self {
            Ending::Completed => StreamFrame::End,
            Ending::Failed(e) => error(Code::Stream001, format!("the model's answer failed: {e}")),
            Ending::TimedOut(cap) => error(
                Code::Stream004,
                format!("the stream exceeded {} ms", cap.as_millis()),
            ),
            Ending::Abandoned => error(
                Code::Stream001,
                "the client went away before the answer finished; it was not completed".into(),
            ),
            Ending::Shutdown => error(Code::Stream001, "the gateway is shutting down".into()),
        }
    }
}

impl Generation {
    fn new(message_id: &str) -> Generation {
        Generation::with_ids(message_id, true)
    }

    /// A generation kept nowhere, whose frames have no `id:` lines: the design
    /// document's Lambda, where every request is a new Bedrock call.
    pub fn as_written(message_id: &str) -> Arc<Generation> {
        Arc::new(Generation::with_ids(message_id, false))
    }

    fn with_ids(message_id: &str, ids: bool) -> Generation {
        Generation {
            ids,
            message_id: message_id.to_owned(),
            log: Mutex::new(Log::default()),
            abandon: CancellationToken::new(),
            readers: AtomicUsize::new(0),
        }
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, frame: &StreamFrame, last: bool) {
        let waiting = {
            let mut log = self.log();
            if log.done {
                return;
            }
            let bytes = if self.ids {
                sse::encode(&self.message_id, log.frames.len() as u64, frame)
            } else {
                sse::encode_data_only(frame)
            };
            log.frames.push(bytes);
            log.done = last;
            std::mem::take(&mut log.waiting)
        };
        // Woken outside the lock: a reader on another thread may run at once.
        for waker in waiting {
            waker.wake();
        }
    }

    /// Whether the terminal frame has been written.
    pub fn is_done(&self) -> bool {
        self.log().done
    }

    /// Frames written so far.
    pub fn len(&self) -> usize {
        self.log().frames.len()
    }

    /// Whether nothing has been written yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The frames from index `from` on, as they come, ending after the terminal frame.
    /// While the stream is held, the generation counts it as a reader.
    pub fn subscribe(self: &Arc<Self>, from: usize) -> BoxStream<'static, Bytes> {
        self.readers.fetch_add(1, Ordering::SeqCst);
        Frames {
            reader: Reader(self.clone()),
            cursor: from,
        }
        .boxed()
    }
}

/// A reader's stream of a generation's frames from its cursor on.
#[derive(Debug)]
struct Frames {
    reader: Reader,
    cursor: usize,
}

impl futures_util::Stream for Frames {
    type Item = Bytes;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let frame = {
            let mut log = self.reader.0.log();
            match log.frames.get(self.cursor) {
                Some(frame) => frame.clone(),
                None if log.done => return Poll::Ready(None),
                None => {
                    if !log.waiting.iter().any(|w| w.will_wake(cx.waker())) {
                        log.waiting.push(cx.waker().clone());
                    }
                    return Poll::Pending;
                }
            }
        };
        self.cursor += 1;
        Poll::Ready(Some(frame))
    }
}

/// A reader's hold on a generation; the last one to leave early abandons it.
#[derive(Debug)]
struct Reader(Arc<Generation>);

impl Drop for Reader {
    fn drop(&mut self) {
        if self.0.readers.fetch_sub(1, Ordering::SeqCst) == 1 && !self.0.is_done() {
            self.0.abandon.cancel();
        }
    }
}

/// Whether a lookup found a kept generation or started a new one.
#[derive(Debug)]
pub enum Lookup {
    /// No generation existed: the caller must [`run`] this one.
    Started(Arc<Generation>),
    /// A generation for this message exists (running or ended).
    Existing(Arc<Generation>),
}

/// Whose message a generation answers: the tenant, then the client's own ids.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MessageKey {
    /// The tenant hash the request was admitted for.
    pub tenant: String,
    /// The client's `session_id`.
    pub session: String,
    /// The client's `message_id`.
    pub message: String,
}

impl MessageKey {
    /// The key of `message` in `session` of `tenant`.
    pub fn new(tenant: &str, session: &str, message: &str) -> MessageKey {
        MessageKey {
            tenant: tenant.to_owned(),
            session: session.to_owned(),
            message: message.to_owned(),
        }
    }
}

/// Every generation of the current scenario, by [`MessageKey`].
#[derive(Debug, Default)]
pub struct Generations {
    table: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    map: BTreeMap<MessageKey, Arc<Generation>>,
    /// The keys in the order their generations started, while a limit is set.
    order: VecDeque<MessageKey>,
    /// The most generations kept: past it the oldest that ended are forgotten
    /// (`None`: all are kept, as a simulated run needs).
    limit: Option<usize>,
}

/// How many of the oldest generations one start looks at to make room: a running one is
/// kept and looked at again later, so a start costs a bounded amount even when more
/// streams run at once than the limit.
const EVICTION_LOOKS: usize = 8;

impl Table {
    /// Forgets ended generations, oldest first, while over the limit.
    fn evict(&mut self) {
        let Some(limit) = self.limit else {
            return;
        };
        for _ in 0..EVICTION_LOOKS {
            if self.map.len() <= limit {
                return;
            }
            let Some(key) = self.order.pop_front() else {
                return;
            };
            match self.map.get(&key) {
                Some(g) if !g.is_done() => self.order.push_back(key),
                _ => {
                    self.map.remove(&key);
                }
            }
        }
    }
}

impl Generations {
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The message's generation, or a new one registered under its key.
    pub fn get_or_start(&self, key: &MessageKey) -> Lookup {
        let mut table = self.lock();
        if let Some(existing) = table.map.get(key) {
            return Lookup::Existing(existing.clone());
        }
        let generation = Arc::new(Generation::new(&key.message));
        table.map.insert(key.clone(), generation.clone());
        if table.limit.is_some() {
            table.order.push_back(key.clone());
            table.evict();
        }
        Lookup::Started(generation)
    }

    /// Keeps at most `limit` generations from now on, forgetting the oldest that have
    /// ended (a running one is never forgotten); `None` keeps them all. A repeat for a
    /// message whose answer was forgotten starts a new Bedrock call. `serve` sets one:
    /// every kept answer holds its encoded frames, and a load test with a new message
    /// id per request would otherwise keep them all.
    pub fn set_limit(&self, limit: Option<usize>) {
        let mut table = self.lock();
        table.limit = limit;
        // Before a limit there was no start order to keep: key order stands in for it,
        // and the next starts make the room, a few looks each.
        table.order = if limit.is_some() {
            table.map.keys().cloned().collect()
        } else {
            VecDeque::new()
        };
        table.evict();
    }

    /// The message's generation, if one is kept.
    pub fn get(&self, key: &MessageKey) -> Option<Arc<Generation>> {
        self.lock().map.get(key).cloned()
    }

    /// Forgets every kept answer (a new scenario was loaded).
    pub fn clear(&self) {
        let mut table = self.lock();
        table.map.clear();
        table.order.clear();
    }

    /// How many generations are kept.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether none are kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a generation asks Bedrock, and the limits it runs under.
#[derive(Debug)]
pub struct Job {
    /// How the answer is opened (the SDK by default).
    pub bedrock: Bedrock,
    /// The tenant's model.
    pub model: String,
    /// The user's text.
    pub prompt: String,
    /// The tenant hash.
    pub tenant: String,
    /// The session.
    pub session: String,
    /// The message.
    pub message: String,
    /// The stream cap (`limits.max_stream_ms`).
    pub max_stream: Duration,
    /// Fired when the server shuts down.
    pub shutdown: CancellationToken,
    /// Where durations go.
    pub metrics: Arc<Metrics>,
}

/// Runs a generation to its terminal frame: Bedrock's answer and `end`, or an error
/// frame (Bedrock failed, the cap struck, every reader left, the server shuts down).
pub async fn run(generation: Arc<Generation>, job: Job) {
    let started = Instant::now();
    // A cap too far to represent is no cap (never an overflow panic).
    let deadline = started.checked_add(job.max_stream);
    let ending = {
        let pump = pump(&generation, &job, started);
        tokio::pin!(pump);
        // The task wakes for every token; the two signals are polled only when they
        // fire (`on_wake`), not each time.
        let shutdown = on_wake(job.shutdown.cancelled());
        let abandon = on_wake(generation.abandon.cancelled());
        tokio::select! {
            biased;
            () = shutdown => Ending::Shutdown,
            () = abandon => Ending::Abandoned,
            _ = crate::sleep_until_or_never(deadline) => Ending::TimedOut(job.max_stream),
            result = &mut pump => match result {
                Ok(()) => Ending::Completed,
                Err(e) => Ending::Failed(e),
            },
        }
        // The pump, and with it the Bedrock connection, is dropped here.
    };
    let frame = ending.frame();
    // A generation every reader left is the clients' doing, not an error: the requests
    // are counted as cancelled (see `crate::outcome`), and its error frame only tells a
    // later resume that the answer is incomplete.
    if let (StreamFrame::Error { code, .. }, false) = (&frame, matches!(ending, Ending::Abandoned))
    {
        job.metrics.error(code, &job.tenant);
    }
    generation.push(&frame, true);
    job.metrics
        .generation(ending.label(), &job.tenant, started.elapsed());
    tracing::debug!(message = %job.message, ending = ending.label(), "generation ended");
}

/// Streams Bedrock's tokens into the log as text frames.
async fn pump(generation: &Generation, job: &Job, started: Instant) -> Result<(), BedrockError> {
    let call = Call {
        model: &job.model,
        prompt: &job.prompt,
        tenant: &job.tenant,
        session: &job.session,
        message: &job.message,
        caller: Caller::Gateway,
    };
    let mut tokens = job.bedrock.converse_stream(call).await?;
    let mut first = true;
    while let Some(token) = tokens.next().await {
        let text = token?;
        if text.is_empty() {
            continue;
        }
        if first {
            first = false;
            job.metrics
                .time_to_first_token
                .observe(started.elapsed().as_secs_f64());
        }
        generation.push(&StreamFrame::Text(text), false);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(g: &Generation, t: &str) {
        g.push(&StreamFrame::Text(t.into()), false);
    }

    /// A late reader gets every frame from the start; one that resumes gets the rest.
    #[tokio::test(start_paused = true)]
    async fn readers_see_the_whole_log_at_their_own_pace() {
        let g = Arc::new(Generation::new("m"));
        let early = g.subscribe(0);
        text(&g, "a");
        text(&g, "b");
        let late = g.subscribe(0);
        let resumed = g.subscribe(1);
        g.push(&StreamFrame::End, true);
        let collect = |s: BoxStream<'static, Bytes>| async move {
            s.map(|b| String::from_utf8(b.to_vec()).unwrap())
                .collect::<Vec<_>>()
                .await
        };
        let early = collect(early).await;
        assert_eq!(early.len(), 3);
        assert!(early[0].starts_with("id: m:0\n"));
        assert!(early[2].starts_with("id: m:2\ndata: {\"type\": \"end\"}"));
        assert_eq!(collect(late).await, early);
        assert_eq!(collect(resumed).await, early[1..]);
        // Writing after the end is ignored.
        text(&g, "c");
        assert_eq!(g.len(), 3);
    }

    /// The last reader leaving early abandons the generation; finishing does not.
    #[tokio::test(start_paused = true)]
    async fn last_reader_leaving_early_abandons() {
        let g = Arc::new(Generation::new("m"));
        let a = g.subscribe(0);
        let b = g.subscribe(0);
        drop(a);
        assert!(!g.abandon.is_cancelled());
        drop(b);
        assert!(g.abandon.is_cancelled());

        let g = Arc::new(Generation::new("m"));
        let a = g.subscribe(0);
        g.push(&StreamFrame::End, true);
        drop(a);
        assert!(!g.abandon.is_cancelled());
    }

    #[test]
    fn one_generation_per_message_of_a_tenant() {
        let table = Generations::default();
        let key = |t, s, m| MessageKey::new(t, s, m);
        assert!(matches!(
            table.get_or_start(&key("a", "s", "m")),
            Lookup::Started(_)
        ));
        assert!(matches!(
            table.get_or_start(&key("a", "s", "m")),
            Lookup::Existing(_)
        ));
        assert!(matches!(
            table.get_or_start(&key("a", "s2", "m")),
            Lookup::Started(_)
        ));
        // The same ids under another tenant are another message.
        assert!(matches!(
            table.get_or_start(&key("b", "s", "m")),
            Lookup::Started(_)
        ));
        assert!(table.get(&key("c", "s", "m")).is_none());
        assert_eq!(table.len(), 3);
    }

    /// With a limit, starting a generation forgets the oldest that ended; a running
    /// one is kept however old (its readers are still on it), and a forgotten message
    /// starts afresh.
    #[test]
    fn a_limit_forgets_the_oldest_ended_never_a_running_one() {
        let table = Generations::default();
        table.set_limit(Some(2));
        let key = |m: &str| MessageKey::new("t", "s", m);
        let start = |m: &str| match table.get_or_start(&key(m)) {
            Lookup::Started(g) => g,
            Lookup::Existing(_) => panic!("{m} was kept"),
        };
        let a = start("a");
        let b = start("b");
        b.push(&StreamFrame::End, true);
        // `a` runs, `b` ended: the third start forgets `b`, not `a`.
        let _c = start("c");
        assert!(table.get(&key("a")).is_some());
        assert!(table.get(&key("b")).is_none());
        assert_eq!(table.len(), 2);
        // Everything running: nothing is forgotten, the table grows past the limit.
        let _d = start("d");
        assert_eq!(table.len(), 3);
        // Once `a` ends, the next start makes room by forgetting it.
        a.push(&StreamFrame::End, true);
        let _e = start("e");
        assert!(table.get(&key("a")).is_none());
        assert!(table.get(&key("c")).is_some() && table.get(&key("d")).is_some());
        // A forgotten message is a new generation.
        assert!(matches!(table.get_or_start(&key("b")), Lookup::Started(_)));
        // No limit: all kept.
        let all = Generations::default();
        for i in 0..100 {
            let Lookup::Started(g) = all.get_or_start(&key(&i.to_string())) else {
                panic!("new")
            };
            g.push(&StreamFrame::End, true);
        }
        assert_eq!(all.len(), 100);
    }
}
