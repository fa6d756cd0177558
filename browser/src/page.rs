//! One page in virtual time: a fresh QuickJS realm with the browser globals of
//! `js/prelude.js`, a React hooks shim for `import … from 'react'`, and the widget's
//! modules. The page does no I/O and reads no clock: what it asks of the network comes
//! out as [`Request`]s, what the network did goes in through the `deliver_*` methods,
//! and the time is whatever the caller says it is.
//!
//! Every entry into JavaScript is one browser task: the call, then the microtask queue
//! drained, as a browser drains it after each task. Each task gets the same instruction
//! budget: QuickJS calls the interrupt handler every few thousand bytecode operations, and
//! a task that uses up its budget is stopped (not catchable by `try`) and the page fails
//! with [`PageError::Budget`]. A widget entry point that throws (or whose promise
//! rejects) fails the page with the error and its JavaScript stack; an exception inside
//! an event handler is the page's "uncaught error", reported and survived, as in a browser.

use crate::bytecode::Source;
use crate::eventsource::{EsAction, EventSource, ReadyState};
use crate::modules::WidgetSource;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rquickjs::context::intrinsic;
use rquickjs::convert::Coerced;
use rquickjs::function::Rest;
use rquickjs::{Context, Ctx, FromJs, Function, Object, Runtime, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

const PRELUDE: &str = include_str!("js/prelude.js");
/// The prelude's module name (not a path: no widget file can be named so).
const PRELUDE_NAME: &str = "picasso:prelude";
/// The start of a host object maker's module name (then a hash of its expression).
const HOST_NAME: &str = "picasso:host:";

/// The wall-clock epoch a page's `Date.now()` starts from (2026-01-01T00:00:00Z), so
/// dates look like dates; virtual time is added to it.
pub const EPOCH_MS: u64 = 1_767_225_600_000;

/// Interrupt-handler calls a task may use (QuickJS calls it about every 10,000
/// bytecode operations, so this is on the order of 10⁸ operations): far above what a
/// widget needs for one event, low enough that `while (true) {}` stops in well under a
/// second.
pub const DEFAULT_BUDGET: u64 = 10_000;

/// The heap size at which QuickJS first runs its cycle collector (its default is
/// 256 KiB). After each run QuickJS sets the next threshold itself, to 1.5 times the heap
/// the run left (`js_trigger_gc` in quickjs.c), so this only spares the first thousands
/// of sessions a collection every few realms.
const GC_THRESHOLD: usize = 64 << 20;

/// How much memory the pages of one [`Engine`] may hold together: QuickJS limits a
/// runtime, not a realm, so the limit grows with the most pages ever open at once. A
/// realm holds 170–250 KiB (the `events` example, 100 pages), and a dead one stays in the
/// heap until the collector runs at 1.5 times the heap it last left, so `per_page` has
/// room to spare; `base` is for what a page may build beyond that. What it stops is a
/// widget that allocates without bound (`'x'.repeat(2 ** 29)` in a loop): the instruction
/// budget bounds the operations of a task, not the bytes one operation asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimit {
    /// Bytes for the runtime whatever the number of pages.
    pub base: usize,
    /// Bytes more for each page open at the peak.
    pub per_page: usize,
    /// Never more than this, however many pages (`None`: no ceiling).
    pub ceiling: Option<usize>,
}

impl MemoryLimit {
    /// 1 GiB, and 2 MiB for each page open at the peak. A single fixed gibibyte ran out
    /// at about 6,000 sessions open at once, and every page failed with `null` (what
    /// QuickJS throws when it cannot allocate even its out-of-memory error).
    pub const DEFAULT: MemoryLimit = MemoryLimit {
        base: 1 << 30,
        per_page: 2 << 20,
        ceiling: None,
    };

    /// [`MemoryLimit::DEFAULT`] with a ceiling of half this machine's memory (Linux's
    /// `MemTotal`; no ceiling where it cannot be read): a run with more sessions open at
    /// once than the machine can hold (`validate` allows 100,000; a realm is ~200 KiB)
    /// fails its pages with [`PageError::OutOfMemory`], not the process with the
    /// kernel's out-of-memory killer.
    pub fn for_this_machine() -> MemoryLimit {
        let total = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|info| mem_total(&info));
        MemoryLimit {
            ceiling: total.map(|bytes| bytes / 2),
            ..MemoryLimit::DEFAULT
        }
    }

    /// The limit with `pages` pages open at the peak.
    pub fn bytes(self, pages: usize) -> usize {
        let grown = self
            .base
            .saturating_add(self.per_page.saturating_mul(pages));
        self.ceiling.map_or(grown, |c| grown.min(c))
    }
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn mem_total(info: &str) -> Option<usize> {
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The pages open on an engine now, and the most ever open at once (the memory limit
/// follows the peak, never falling: a closed page's realm stays in the heap until the
/// collector frees it, and a limit lowered before then would fail the pages still open).
#[derive(Debug, Default)]
struct PageCount {
    open: AtomicUsize,
    peak: AtomicUsize,
    /// The limit in force when an allocation was last found refused, and the heap in
    /// use then: walking the heap to count it takes seconds at tens of thousands of
    /// realms, and a run out of memory fails many pages under the same limit (at the
    /// ceiling, every page opened after it).
    refused: Mutex<Option<(usize, usize)>>,
}

/// What a page asks the outside world to do, or tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// An `EventSource` starts a GET (the first one or a reconnect).
    OpenStream {
        /// The `EventSource`.
        es: u32,
        /// The URL as the script gave it.
        url: String,
        /// `Last-Event-ID`, when the last event ID string is not empty.
        last_event_id: Option<String>,
    },
    /// `close()` on an `EventSource` whose fetch was running.
    AbortStream {
        /// The `EventSource`.
        es: u32,
    },
    /// `fetch(url, {method, body})`.
    Fetch {
        /// The fetch.
        id: u32,
        /// The method, upper case.
        method: String,
        /// The URL.
        url: String,
        /// The body, if any.
        body: Option<String>,
    },
    /// The fetch's `AbortController` fired.
    AbortFetch {
        /// The fetch.
        id: u32,
    },
    /// `console.*`.
    Console {
        /// `log`, `info`, `warn`, `error`, `debug`.
        level: String,
        /// The arguments, formatted and joined by spaces.
        text: String,
    },
    /// An exception escaped an event handler or timer callback (the page survives).
    Uncaught {
        /// `Name: message`.
        message: String,
        /// The JavaScript stack (file:line:column per frame).
        stack: String,
    },
    /// `host.render(id, text, cursor)`: what a message's bubble shows now.
    Render {
        /// The message.
        id: String,
        /// The text.
        text: String,
        /// Whether the user still waits (a cursor shows).
        cursor: bool,
    },
    /// Not a request but a record, for a host that checks what reached the widget: a
    /// `message` event (the type `onmessage` sees) is being dispatched to this
    /// `EventSource`, with this data. What reached the connection may be more: nothing
    /// is dispatched after `close()`, not even the rest of a chunk already parsed.
    Dispatched {
        /// The `EventSource`.
        es: u32,
        /// The event's data.
        data: String,
    },
    /// Any other report through the adapter contract (`host.settle`, `host.metric`, …),
    /// its arguments as JSON.
    Report {
        /// Which report.
        kind: String,
        /// Its arguments, as JSON.
        args: String,
    },
}

/// Why a page stopped for good.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    /// A module could not be read, resolved or compiled, or an entry point is missing.
    #[error("{0}")]
    Load(String),
    /// A widget entry point threw, or its promise rejected.
    #[error("{message}\n{stack}")]
    Thrown {
        /// `Name: message`.
        message: String,
        /// The JavaScript stack.
        stack: String,
    },
    /// QuickJS refused an allocation: the pages of the engine hold as much memory as
    /// its [`MemoryLimit`] allows, or a widget asked for more than is left.
    #[error(
        "out of memory in {task}: QuickJS refused an allocation with {:.1} MiB in use; the pages of this runtime may hold {:.1} MiB together ({:.1} MiB, and {:.1} MiB per page at the peak of {peak} open at once{}); a widget that allocates without bound, or more sessions open at once than this machine holds?",
        mib(*used), mib(memory.bytes(*peak)), mib(memory.base), mib(memory.per_page),
        memory.ceiling.map_or(String::new(), |c| format!(", at most {:.1} MiB: half this machine's memory", mib(c)))
    )]
    OutOfMemory {
        /// The task that failed.
        task: String,
        /// Bytes in use when the failure was reported.
        used: usize,
        /// The engine's limit.
        memory: MemoryLimit,
        /// The most pages open at once on the engine.
        peak: usize,
    },
    /// A task ran past its instruction budget (an endless loop, most likely).
    #[error(
        "instruction budget exhausted in {task}: the script ran past {budget} interrupt checks (about {} million bytecode operations) without returning; an endless loop?",
        budget / 100
    )]
    Budget {
        /// The task that was stopped.
        task: String,
        /// The budget.
        budget: u64,
    },
}

/// A QuickJS runtime that pages share: one per simulation thread and widget, so the
/// sessions of a run share atoms, shapes and the module loader (a session is a realm, a
/// `Context`, of its own; nothing of one realm is reachable from another). Tasks never
/// interleave on one thread, so one instruction counter serves every page.
#[derive(Clone)]
pub struct Engine {
    rt: Runtime,
    ticks: Arc<AtomicU64>,
    interrupted: Arc<AtomicBool>,
    budget: u64,
    memory: MemoryLimit,
    pages: Arc<PageCount>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// A runtime that loads `source`'s modules, with `budget` interrupt checks per task
    /// and [`MemoryLimit::for_this_machine`].
    pub fn new(source: &WidgetSource, budget: u64) -> Result<Engine, PageError> {
        Engine::with_memory(source, budget, MemoryLimit::for_this_machine())
    }

    /// As [`Engine::new`], with the pages' memory limited by `memory`.
    pub fn with_memory(
        source: &WidgetSource,
        budget: u64,
        memory: MemoryLimit,
    ) -> Result<Engine, PageError> {
        let rt = Runtime::new().map_err(|e| PageError::Load(format!("QuickJS runtime: {e}")))?;
        rt.set_memory_limit(memory.bytes(0));
        rt.set_max_stack_size(1 << 20);
        // QuickJS frees by reference counting; the cycle collector scans every live
        // realm on the runtime, so a low first threshold makes thousands of concurrent
        // sessions pay for each other (later thresholds follow the heap, see above).
        rt.set_gc_threshold(GC_THRESHOLD);
        let (resolver, loader) = source.loader();
        rt.set_loader(resolver, loader);
        let ticks = Arc::new(AtomicU64::new(0));
        let interrupted = Arc::new(AtomicBool::new(false));
        {
            let ticks = ticks.clone();
            let interrupted = interrupted.clone();
            rt.set_interrupt_handler(Some(Box::new(move || {
                let stop = ticks.fetch_add(1, Ordering::Relaxed) >= budget;
                if stop {
                    interrupted.store(true, Ordering::Relaxed);
                }
                stop
            })));
        }
        Ok(Engine {
            rt,
            ticks,
            interrupted,
            budget,
            memory,
            pages: Arc::new(PageCount::default()),
        })
    }

    /// Counts a page opening, and raises the memory limit if this is a new peak.
    fn page_opened(&self) {
        let open = self.pages.open.fetch_add(1, Ordering::Relaxed) + 1;
        if open > self.pages.peak.fetch_max(open, Ordering::Relaxed) {
            self.rt.set_memory_limit(self.memory.bytes(open));
        }
    }
}

/// How a page is set up.
#[derive(Debug, Clone)]
pub struct PageOptions {
    /// The seed of `Math.random`.
    pub random: ChaCha8Rng,
    /// Whether the browser has `EventSource` (`typeof EventSource === 'undefined'` if not).
    pub event_source: bool,
    /// The browser's default reconnection time.
    pub reconnect_ms: u64,
    /// Virtual time when the page opens.
    pub now_ms: u64,
    /// Interrupt-handler calls per task (for [`Page::open`]; an [`Engine`] has its own).
    pub budget: u64,
}

impl PageOptions {
    /// A page as Chromium opens one: `EventSource` present, a 3 s reconnection time,
    /// opened at virtual time 0, the default budget, `Math.random` seeded from `seed`.
    pub fn chromium(seed: u64) -> PageOptions {
        PageOptions {
            random: rand::SeedableRng::seed_from_u64(seed),
            event_source: true,
            reconnect_ms: 3000,
            now_ms: 0,
            budget: DEFAULT_BUDGET,
        }
    }
}

/// What the native functions share with the page.
#[derive(Debug)]
struct State {
    now_ms: u64,
    opened_ms: u64,
    random: ChaCha8Rng,
    event_source: bool,
    reconnect_ms: u64,
    /// Ids of timers, `EventSource`s and fetches, each counted on its own from 1, so a
    /// widget's ids do not shift when another kind is added.
    next_timer: u32,
    next_es: u32,
    next_fetch: u32,
    /// Pending timers: id → when due.
    timers: BTreeMap<u32, u64>,
    sources: BTreeMap<u32, EventSource>,
    /// Each `EventSource`'s URL (a reconnect fetches it again).
    urls: BTreeMap<u32, String>,
    out: Vec<Request>,
    fatal: Option<PageError>,
}

type Shared = Arc<Mutex<State>>;

fn lock(s: &Shared) -> MutexGuard<'_, State> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// One simulated page.
pub struct Page {
    // The context must drop before the runtime.
    ctx: Context,
    rt: Runtime,
    state: Shared,
    ticks: Arc<AtomicU64>,
    interrupted: Arc<AtomicBool>,
    budget: u64,
    memory: MemoryLimit,
    pages: Arc<PageCount>,
}

impl Drop for Page {
    fn drop(&mut self) {
        self.pages.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Page {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Page").finish_non_exhaustive()
    }
}

/// The `host` object a page hands to `createWidget(host)`.
#[derive(Debug, Clone, Copy)]
pub struct Host<'a> {
    /// A JavaScript expression for the object. It may use `data` (the session's values,
    /// below) and `__report(kind, ...args)`. It is compiled once per widget, like the
    /// widget's modules: what differs from session to session belongs in `data`, so a
    /// session's start-up parses no script (a host object written into a script for
    /// each session cost a tenth of the start-up).
    pub expr: &'a str,
    /// JSON for the session's own values, `data` in `expr` (`null` if none).
    pub data: &'a str,
}

impl<'a> Host<'a> {
    /// A host object with no values of its own: `expr` alone.
    pub fn fixed(expr: &'a str) -> Host<'a> {
        Host { expr, data: "null" }
    }
}

impl Page {
    /// A fresh realm on a runtime of its own (tests, tools); see [`Page::open_in`].
    pub fn open(
        source: &WidgetSource,
        options: PageOptions,
        host: Host<'_>,
    ) -> Result<Page, PageError> {
        let engine = Engine::new(source, options.budget)?;
        Page::open_in(&engine, source, options, host)
    }

    /// A fresh realm on `engine` with the globals, the widget's modules loaded, and
    /// `createWidget(host)` called with the [`Host`] object.
    pub fn open_in(
        engine: &Engine,
        source: &WidgetSource,
        options: PageOptions,
        host: Host<'_>,
    ) -> Result<Page, PageError> {
        // Counted before the realm is made, so the realm is made under the raised limit;
        // from here on the page's `Drop` uncounts it.
        engine.page_opened();
        // Every intrinsic but WeakRef/FinalizationRegistry (they would let a page observe
        // garbage collection, which on a shared runtime depends on other sessions) and
        // QuickJS's own `performance` (real time; the prelude supplies a virtual one).
        let ctx = Context::custom::<(
            intrinsic::Date,
            intrinsic::Eval,
            intrinsic::RegExpCompiler,
            intrinsic::RegExp,
            intrinsic::Json,
            intrinsic::Proxy,
            intrinsic::MapSet,
            intrinsic::TypedArrays,
            intrinsic::Promise,
            intrinsic::DOMException,
        )>(&engine.rt)
        .map_err(|e| {
            engine.pages.open.fetch_sub(1, Ordering::Relaxed);
            PageError::Load(format!("QuickJS context: {e}"))
        })?;
        let state = Arc::new(Mutex::new(State {
            now_ms: options.now_ms,
            opened_ms: options.now_ms,
            random: options.random,
            event_source: options.event_source,
            reconnect_ms: options.reconnect_ms,
            next_timer: 0,
            next_es: 0,
            next_fetch: 0,
            timers: BTreeMap::new(),
            sources: BTreeMap::new(),
            urls: BTreeMap::new(),
            out: Vec::new(),
            fatal: None,
        }));
        let page = Page {
            ctx,
            rt: engine.rt.clone(),
            state,
            ticks: engine.ticks.clone(),
            interrupted: engine.interrupted.clone(),
            budget: engine.budget,
            memory: engine.memory,
            pages: engine.pages.clone(),
        };
        page.ctx
            .with(|ctx| install_host(&ctx, &page.state))
            .map_err(|e| PageError::Load(format!("host functions: {e}")))?;
        page.task("the prelude", |ctx| {
            let prelude = source
                .bytecode()
                .declare(ctx, PRELUDE_NAME, Source::Strip, || Ok(PRELUDE.to_owned()))?;
            prelude.eval()?.1.finish::<()>()
        })?;
        let entry = source.entry_name();
        // The host object's maker is a module of its own, compiled once per expression;
        // `__boot` (in the prelude) makes the object, imports the entry and creates the
        // widget.
        let name = format!(
            "{HOST_NAME}{:016x}",
            picasso_core::rng::fnv1a64(&[host.expr.as_bytes()])
        );
        page.task("loading the widget", |ctx| {
            let maker = source.bytecode().declare(ctx, &name, Source::Strip, || {
                Ok(format!("export default (data) => ({}\n);\n", host.expr))
            })?;
            let (maker, done) = maker.eval()?;
            done.finish::<()>()?;
            let make: Function = maker.get("default")?;
            hook(ctx, "__boot")?.call::<_, ()>((entry, make, host.data))
        })?;
        page.check()?;
        Ok(page)
    }

    /// Calls `widget[method](...args)`; `args_json` is a JSON array. A throw or a
    /// rejected promise fails the page.
    pub fn call_widget(&self, method: &str, args_json: &str) -> Result<(), PageError> {
        self.task(&format!("widget.{method}()"), |ctx| {
            hook(ctx, "__callWidget")?.call::<_, ()>((method, args_json))
        })?;
        self.check()
    }

    /// Whether the page has failed, and why.
    pub fn failure(&self) -> Option<PageError> {
        lock(&self.state).fatal.clone()
    }

    /// Takes what the page asked for since the last call.
    pub fn take_requests(&self) -> Vec<Request> {
        std::mem::take(&mut lock(&self.state).out)
    }

    /// Sets the virtual clock (never backwards).
    pub fn set_now(&self, now_ms: u64) {
        let mut s = lock(&self.state);
        s.now_ms = s.now_ms.max(now_ms);
    }

    /// The earliest pending timer or `EventSource` reconnect.
    pub fn next_deadline(&self) -> Option<u64> {
        let s = lock(&self.state);
        let timer = s.timers.values().min().copied();
        let es = s
            .sources
            .values()
            .filter_map(EventSource::next_deadline)
            .min();
        [timer, es].into_iter().flatten().min()
    }

    /// Pending timers.
    pub fn pending_timers(&self) -> usize {
        lock(&self.state).timers.len()
    }

    /// `EventSource`s the page still keeps state for: not CLOSED, or CLOSED with events
    /// still to dispatch. A source closed for good is forgotten, so a long session does
    /// not carry one per message it ever streamed.
    pub fn tracked_event_sources(&self) -> usize {
        lock(&self.state).sources.len()
    }

    /// `EventSource`s not CLOSED.
    pub fn open_event_sources(&self) -> usize {
        lock(&self.state)
            .sources
            .values()
            .filter(|es| es.ready_state() != ReadyState::Closed)
            .count()
    }

    /// Runs every timer and reconnect due by `now_ms`, earliest first (ties by creation).
    pub fn run_due(&self, now_ms: u64) -> Result<(), PageError> {
        loop {
            self.check()?;
            let next = {
                let s = lock(&self.state);
                let timer = s
                    .timers
                    .iter()
                    .filter(|(_, at)| **at <= now_ms)
                    .min_by_key(|(id, at)| (**at, **id))
                    .map(|(id, at)| (*at, *id));
                let es = s
                    .sources
                    .iter()
                    .filter_map(|(id, es)| es.next_deadline().map(|at| (at, *id)))
                    .filter(|(at, _)| *at <= now_ms)
                    .min();
                match (timer, es) {
                    (Some(t), Some(e)) if e.0 < t.0 => Some((e.0, false, e.1)),
                    (Some(t), _) => Some((t.0, true, t.1)),
                    (None, Some(e)) => Some((e.0, false, e.1)),
                    (None, None) => None,
                }
            };
            // Each task runs at its own due time, so a callback sees the time it was due.
            if let Some((at, _, _)) = next {
                self.set_now(at);
            }
            match next.map(|(_, timer, id)| (timer, id)) {
                None => {
                    self.set_now(now_ms);
                    return Ok(());
                }
                Some((true, id)) => {
                    lock(&self.state).timers.remove(&id);
                    self.task("a timer", |ctx| hook(ctx, "__timer")?.call::<_, ()>((id,)))?;
                }
                Some((false, es)) => {
                    let mut s = lock(&self.state);
                    let now = s.now_ms;
                    if let Some(model) = s.sources.get_mut(&es) {
                        model.on_timer(now);
                    }
                    drop(s);
                    self.dispatch(es)?;
                }
            }
        }
    }

    /// A stream's response headers (after the CORS check passed).
    pub fn deliver_stream_response(
        &self,
        es: u32,
        status: u16,
        content_type: Option<&str>,
    ) -> Result<(), PageError> {
        self.with_es(es, |m| m.on_response(status, content_type))
    }

    /// Stream body bytes.
    pub fn deliver_stream_body(&self, es: u32, bytes: &[u8]) -> Result<(), PageError> {
        self.with_es(es, |m| m.on_body(bytes))
    }

    /// The stream body ended (cleanly or not: the page cannot tell).
    pub fn deliver_stream_end(&self, es: u32) -> Result<(), PageError> {
        let now = lock(&self.state).now_ms;
        self.with_es(es, |m| m.on_body_end(now))
    }

    /// The stream request failed before any response.
    pub fn deliver_stream_network_error(&self, es: u32) -> Result<(), PageError> {
        let now = lock(&self.state).now_ms;
        self.with_es(es, |m| m.on_network_error(now))
    }

    /// The stream response failed the CORS check.
    pub fn deliver_stream_cors_error(&self, es: u32) -> Result<(), PageError> {
        self.with_es(es, EventSource::on_cors_failure)
    }

    /// A fetch's response: status, the headers the page may read, the body.
    pub fn deliver_fetch_response(
        &self,
        id: u32,
        status: u16,
        headers: &BTreeMap<String, String>,
        body: &str,
    ) -> Result<(), PageError> {
        let headers_json = serde_json::to_string(headers).unwrap_or_else(|_| "{}".into());
        self.task("a fetch response", |ctx| {
            let headers: Value = ctx.json_parse(headers_json)?;
            hook(ctx, "__fetched")?.call::<_, ()>((id, status, headers, body))
        })
    }

    /// A fetch failed (network error, CORS): the promise rejects with a `TypeError`.
    pub fn deliver_fetch_failure(&self, id: u32, message: &str) -> Result<(), PageError> {
        self.task("a fetch failure", |ctx| {
            hook(ctx, "__fetchFailed")?.call::<_, ()>((id, message))
        })
    }

    fn with_es(&self, es: u32, f: impl FnOnce(&mut EventSource)) -> Result<(), PageError> {
        let exists = match lock(&self.state).sources.get_mut(&es) {
            Some(model) => {
                f(model);
                true
            }
            None => false,
        };
        if exists { self.dispatch(es) } else { Ok(()) }
    }

    /// Dispatches what `es` queued, one event per task; a `close()` in a handler empties
    /// the queue, so nothing after it is dispatched.
    fn dispatch(&self, es: u32) -> Result<(), PageError> {
        loop {
            self.check()?;
            let action = {
                let mut s = lock(&self.state);
                let Some(action) = s.sources.get_mut(&es).and_then(EventSource::next_action) else {
                    // CLOSED is final and nothing is queued: the page keeps no state for a
                    // source that can do nothing more (a long session opens one per
                    // message, and every deadline query walks them).
                    if s.sources
                        .get(&es)
                        .is_some_and(|m| m.ready_state() == ReadyState::Closed)
                    {
                        s.sources.remove(&es);
                        s.urls.remove(&es);
                    }
                    return Ok(());
                };
                if let EsAction::Fetch { last_event_id } = &action {
                    let url = s.urls.get(&es).cloned().unwrap_or_default();
                    s.out.push(Request::OpenStream {
                        es,
                        url,
                        last_event_id: last_event_id.clone(),
                    });
                    continue;
                }
                action
            };
            // An event of type `message` (every frame of a stream) has an entry of its own
            // with three arguments; the others go to `__es` as (is a MessageEvent, type,
            // data, lastEventId).
            let (message, kind, data, id) = match action {
                EsAction::Open => (false, "open".to_owned(), String::new(), String::new()),
                EsAction::Error { .. } => (false, "error".to_owned(), String::new(), String::new()),
                EsAction::Message {
                    event_type,
                    data,
                    last_event_id,
                } if event_type == "message" => {
                    // The record of the dispatch comes before whatever the handler asks
                    // for; the data is moved into it after the call rather than copied
                    // before it (a copy per frame).
                    let at = lock(&self.state).out.len();
                    let result = self.task("an EventSource event", |ctx| {
                        hook(ctx, "__message")?.call::<_, ()>((es, data.as_str(), last_event_id))
                    });
                    let mut s = lock(&self.state);
                    let at = at.min(s.out.len());
                    s.out.insert(at, Request::Dispatched { es, data });
                    drop(s);
                    result?;
                    continue;
                }
                EsAction::Message {
                    event_type,
                    data,
                    last_event_id,
                } => (true, event_type, data, last_event_id),
                EsAction::Fetch { .. } => continue,
            };
            self.task("an EventSource event", |ctx| {
                hook(ctx, "__es")?.call::<_, ()>((es, message, kind, data, id))
            })?;
        }
    }

    fn check(&self) -> Result<(), PageError> {
        match lock(&self.state).fatal.clone() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// One task: the call, then the microtasks, within the budget.
    fn task<F>(&self, what: &str, f: F) -> Result<(), PageError>
    where
        F: for<'js> FnOnce(&Ctx<'js>) -> rquickjs::Result<()>,
    {
        self.check()?;
        self.ticks.store(0, Ordering::Relaxed);
        self.interrupted.store(false, Ordering::Relaxed);
        let result = self.ctx.with(|ctx| {
            let r = f(&ctx).map_err(|e| describe(&ctx, e));
            // Microtasks: drained after every task, with the same budget.
            while r.is_ok()
                && !self.interrupted.load(Ordering::Relaxed)
                && ctx.execute_pending_job()
            {}
            r
        });
        if self.interrupted.load(Ordering::Relaxed) {
            let e = PageError::Budget {
                task: what.to_owned(),
                budget: self.budget,
            };
            lock(&self.state).fatal = Some(e.clone());
            return Err(e);
        }
        let fatal = {
            let mut s = lock(&self.state);
            if let Err((message, stack)) = result {
                s.fatal.get_or_insert(PageError::Thrown { message, stack });
            }
            s.fatal.clone()
        };
        // A failure that is QuickJS refusing memory is told as such, with the numbers
        // (asked with the state unlocked: it locks the runtime).
        let fatal = match fatal {
            Some(PageError::Thrown { ref message, .. }) => {
                match self.out_of_memory(what, message) {
                    Some(oom) => {
                        lock(&self.state).fatal = Some(oom.clone());
                        Some(oom)
                    }
                    None => fatal,
                }
            }
            other => other,
        };
        fatal.map_or(Ok(()), Err)
    }

    /// The failure as [`PageError::OutOfMemory`] if `message` is how QuickJS reports a
    /// refused allocation: `InternalError: out of memory`, or `null` when it could not
    /// allocate even that error (then the heap is at its limit; a widget may also throw
    /// `null` itself, and that is left a thrown value).
    fn out_of_memory(&self, what: &str, message: &str) -> Option<PageError> {
        let said = message == OUT_OF_MEMORY;
        if !said && message != "null" {
            return None;
        }
        let peak = self.pages.peak.load(Ordering::Relaxed);
        let limit = self.memory.bytes(peak);
        let mut refused = self.pages.refused.lock().unwrap_or_else(|e| e.into_inner());
        let used = match *refused {
            Some((under, used)) if under == limit => used,
            _ => {
                // Walks the heap: only on the way to failing a page, once per peak.
                let used = usize::try_from(self.rt.memory_usage().malloc_size).unwrap_or(0);
                let out = said || used.saturating_add(64 << 10) >= limit;
                if !out {
                    return None;
                }
                *refused = Some((limit, used));
                used
            }
        };
        Some(PageError::OutOfMemory {
            task: what.to_owned(),
            used,
            memory: self.memory,
            peak,
        })
    }
}

/// Bytes as MiB, for messages.
fn mib(bytes: usize) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

/// QuickJS's message for an allocation it refused (`JS_ThrowOutOfMemory`).
const OUT_OF_MEMORY: &str = "InternalError: out of memory";

/// One of the prelude's entry points (a global `__…` function): one name to look up
/// per task, not two (`__page.es` made two strings into atoms on every event).
fn hook<'js>(ctx: &Ctx<'js>, name: &str) -> rquickjs::Result<Function<'js>> {
    ctx.globals().get(name)
}

/// The message and stack of what a call threw.
fn describe(ctx: &Ctx<'_>, e: rquickjs::Error) -> (String, String) {
    if !matches!(e, rquickjs::Error::Exception) {
        return (e.to_string(), String::new());
    }
    let v = ctx.catch();
    match v.as_object() {
        Some(o) => {
            let name: String = o.get("name").unwrap_or_else(|_| "Error".into());
            let message: String = o.get("message").unwrap_or_default();
            let stack: String = o.get("stack").unwrap_or_default();
            (format!("{name}: {message}"), stack)
        }
        // As a browser's console shows a thrown primitive: `String(value)`.
        None => match Coerced::<String>::from_js(ctx, v) {
            Ok(text) => (text.0, String::new()),
            // Only a symbol has no string conversion.
            Err(_) => {
                ctx.catch();
                ("Symbol()".to_owned(), String::new())
            }
        },
    }
}

/// Appends `value` as `JSON.stringify` writes an array element (`undefined`, functions
/// and symbols as `null`). Strings, numbers and booleans are written here: QuickJS's
/// `JSON.stringify` builds a wrapper object and an array for every call, which cost
/// more than the id or metric name a report mostly carries.
fn push_json(json: &mut String, value: Value<'_>) -> rquickjs::Result<()> {
    if let Some(s) = value.as_string() {
        let text = s.to_string()?;
        json.push_str(&serde_json::Value::String(text).to_string());
    } else if let Some(n) = value.as_int() {
        json.push_str(&n.to_string());
    } else if let Some(x) = value.as_float() {
        if !x.is_finite() {
            json.push_str("null");
        } else if x.fract() == 0.0 && x.abs() < 1e21 {
            // As JavaScript writes an integral number: digits, no `.0`, `-0` as `0`.
            json.push_str(&if x == 0.0 {
                "0".into()
            } else {
                format!("{x:.0}")
            });
        } else {
            json.push_str(
                &serde_json::Number::from_f64(x).map_or("null".into(), |n| n.to_string()),
            );
        }
    } else if let Some(b) = value.as_bool() {
        json.push_str(if b { "true" } else { "false" });
    } else if value.is_object() && !value.is_function() {
        if let Some(flat) = flat_object_json(&value)? {
            json.push_str(&flat);
            return Ok(());
        }
        match value.ctx().clone().json_stringify(value)? {
            Some(text) => json.push_str(&text.to_string()?),
            None => json.push_str("null"),
        }
    } else {
        json.push_str("null");
    }
    Ok(())
}

/// `JSON.stringify(value)` written here for the object a widget reports most (an
/// outcome: a plain object of a few strings), or `None` for anything else, which
/// `JSON.stringify` itself then writes: QuickJS's goes through a wrapper object, a
/// property list and a quoted copy of every string (a `settle` report cost ~21 k
/// instructions that way, ~7 k this way).
/// Plain means what makes the two agree: the realm's `Object.prototype` as prototype,
/// no `toJSON` (own or inherited), and only primitives or functions as values (a nested
/// object or array is left to `JSON.stringify`). Keys come in `JSON.stringify`'s order
/// (QuickJS's own-keys order: integer keys ascending, then the others as created), a
/// property whose value is `undefined` or a function is left out, as it does.
fn flat_object_json(value: &Value<'_>) -> rquickjs::Result<Option<String>> {
    let Some(object) = value.as_object() else {
        return Ok(None);
    };
    let plain = Object::new(value.ctx().clone())?.get_prototype();
    if object.get_prototype() != plain || !object.get::<_, Value>("toJSON")?.is_undefined() {
        return Ok(None);
    }
    let mut json = String::from("{");
    for prop in object.props::<String, Value>() {
        let (key, v) = prop?;
        if v.is_undefined() || v.is_function() || v.is_symbol() {
            continue;
        }
        // A nested object, or a BigInt (which `JSON.stringify` refuses with a TypeError).
        if v.is_object() || v.is_big_int() {
            return Ok(None);
        }
        if json.len() > 1 {
            json.push(',');
        }
        json.push_str(&serde_json::Value::String(key).to_string());
        json.push(':');
        push_json(&mut json, v)?;
    }
    json.push('}');
    Ok(Some(json))
}

/// `String(value)` as Rust's: a string read as it is (the usual case, every frame's
/// render), anything else through JavaScript's `String()` conversion.
fn string_of(value: Value<'_>) -> rquickjs::Result<String> {
    match value.as_string() {
        Some(text) => text.to_string(),
        None => {
            let ctx = value.ctx().clone();
            <Coerced<String> as rquickjs::FromJs>::from_js(&ctx, value).map(|c| c.0)
        }
    }
}

/// `application/x-www-form-urlencoded` serializing of one string (WHATWG URL,
/// §5.2), appended to `out`: UTF-8 bytes, percent-encoded but for ASCII alphanumerics
/// and `*-._`, with a space as `+`.
fn push_form_encoded(out: &mut String, text: &str) {
    out.extend(form_urlencoded::byte_serialize(text.as_bytes()));
}

/// The native `__host` object the prelude builds the globals on.
fn install_host(ctx: &Ctx<'_>, state: &Shared) -> rquickjs::Result<()> {
    let host = Object::new(ctx.clone())?;
    macro_rules! native {
        ($name:literal, $f:expr) => {
            host.set($name, Function::new(ctx.clone(), $f)?.with_name($name)?)?;
        };
    }
    let s = state.clone();
    native!("now", move || (EPOCH_MS + lock(&s).now_ms) as f64);
    let s = state.clone();
    native!("origin", move || (EPOCH_MS + lock(&s).opened_ms) as f64);
    let s = state.clone();
    native!("random", move || lock(&s).random.random::<f64>());
    let s = state.clone();
    native!("hasEventSource", move || lock(&s).event_source);
    let s = state.clone();
    native!("setTimer", move |delay: f64| {
        let mut st = lock(&s);
        st.next_timer += 1;
        let id = st.next_timer;
        let at = st.now_ms.saturating_add(delay.max(0.0) as u64);
        st.timers.insert(id, at);
        id
    });
    let s = state.clone();
    native!("rearm", move |id: u32, every: f64| {
        let mut st = lock(&s);
        let at = st.now_ms.saturating_add(every.max(1.0) as u64);
        st.timers.insert(id, at);
    });
    let s = state.clone();
    native!("clearTimer", move |id: u32| {
        lock(&s).timers.remove(&id);
    });
    let s = state.clone();
    native!("esOpen", move |url: String| {
        let mut st = lock(&s);
        st.next_es += 1;
        let id = st.next_es;
        let (model, _first) = EventSource::new(st.reconnect_ms);
        st.sources.insert(id, model);
        st.urls.insert(id, url.clone());
        st.out.push(Request::OpenStream {
            es: id,
            url,
            last_event_id: None,
        });
        id
    });
    let s = state.clone();
    native!("esState", move |id: u32| {
        lock(&s)
            .sources
            .get(&id)
            .map_or(2, |m| m.ready_state().as_number())
    });
    let s = state.clone();
    native!("esClose", move |id: u32| {
        let mut st = lock(&s);
        if let Some(model) = st.sources.get_mut(&id)
            && model.ready_state() != ReadyState::Closed
            && model.close()
        {
            st.out.push(Request::AbortStream { es: id });
        }
        // Closed by the script: nothing more can happen to it (a dispatch in progress
        // finds it gone and stops, as a closed source dispatches nothing).
        st.sources.remove(&id);
        st.urls.remove(&id);
    });
    let s = state.clone();
    native!("fetch", move |method: String,
                           url: String,
                           body: Option<String>| {
        let mut st = lock(&s);
        st.next_fetch += 1;
        let id = st.next_fetch;
        st.out.push(Request::Fetch {
            id,
            method,
            url,
            body,
        });
        id
    });
    let s = state.clone();
    native!("fetchAbort", move |id: u32| {
        lock(&s).out.push(Request::AbortFetch { id });
    });
    let s = state.clone();
    native!("console", move |level: String, text: String| {
        lock(&s).out.push(Request::Console { level, text });
    });
    let s = state.clone();
    native!("uncaught", move |message: String, stack: String| {
        let mut st = lock(&s);
        // A page out of memory is dead, as a browser's renderer is: not an error a
        // handler threw and the page survives.
        if message == OUT_OF_MEMORY && st.fatal.is_none() {
            st.fatal = Some(PageError::Thrown {
                message: message.clone(),
                stack: stack.clone(),
            });
        }
        st.out.push(Request::Uncaught { message, stack });
    });
    let s = state.clone();
    // Coerces as `String(id)`, `String(text)`, `!!cursor` would, so a host object can
    // hand this function to the widget as its `render` without a wrapper per call.
    native!("render", move |id: Value<'_>,
                            text: Value<'_>,
                            cursor: Coerced<bool>|
          -> rquickjs::Result<()> {
        let (id, text) = (string_of(id)?, string_of(text)?);
        lock(&s).out.push(Request::Render {
            id,
            text,
            cursor: cursor.0,
        });
        Ok(())
    });
    let s = state.clone();
    // `__report(kind, ...args)`: the arguments as a JSON array, each as `JSON.stringify`
    // writes it (`undefined` and functions as `null`, as in an array). Done here rather
    // than in a JavaScript wrapper: a rest array and a stringify of it per report cost
    // more than the report.
    native!("report", move |kind: String,
                            args: Rest<Value<'_>>|
          -> rquickjs::Result<()> {
        let mut json = String::from("[");
        for (i, arg) in args.0.into_iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            push_json(&mut json, arg)?;
        }
        json.push(']');
        lock(&s).out.push(Request::Report { kind, args: json });
        Ok(())
    });
    // `URLSearchParams.toString()`: its flat `[name, value, name, value, …]` serialized,
    // or `undefined` if a string has a lone surrogate (the prelude makes the strings
    // well formed and asks again).
    native!(
        "formEncodePairs",
        |flat: rquickjs::Array<'_>| -> rquickjs::Result<Option<String>> {
            let mut out = String::new();
            for (i, text) in flat.iter::<rquickjs::String<'_>>().enumerate() {
                let Ok(text) = text?.to_string() else {
                    return Ok(None);
                };
                if i > 0 {
                    out.push(if i % 2 == 0 { '&' } else { '=' });
                }
                push_form_encoded(&mut out, &text);
            }
            Ok(Some(out))
        }
    );
    let s = state.clone();
    native!("fatal", move |message: String, stack: String| {
        let mut st = lock(&s);
        if st.fatal.is_none() {
            st.fatal = Some(PageError::Thrown { message, stack });
        }
    });
    ctx.globals().set("__host", host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_limit_grows_with_the_peak_up_to_its_ceiling() {
        let mib = 1 << 20;
        let limit = MemoryLimit {
            base: 4 * mib,
            per_page: 2 * mib,
            ceiling: Some(9 * mib),
        };
        assert_eq!(limit.bytes(0), 4 * mib);
        assert_eq!(limit.bytes(2), 8 * mib);
        assert_eq!(limit.bytes(3), 9 * mib);
        assert_eq!(limit.bytes(usize::MAX), 9 * mib);
        let unbounded = MemoryLimit {
            ceiling: None,
            ..limit
        };
        assert_eq!(unbounded.bytes(usize::MAX), usize::MAX);
        assert_eq!(
            mem_total("MemFree: 1 kB\nMemTotal:       24558036 kB\n"),
            Some(24_558_036 * 1024)
        );
        assert_eq!(mem_total("MemTotal: lots\n"), None);
        assert!(
            MemoryLimit::for_this_machine()
                .ceiling
                .is_none_or(|c| c >= 64 * mib)
        );
    }

    /// What the former JavaScript serializer (encodeURIComponent, then `!'()~` escaped
    /// and `%20` as `+`) wrote, which is what a browser's URLSearchParams writes.
    #[test]
    fn form_encoding_is_urlsearchparams() {
        for (text, form) in [
            ("it's (fine)! ~ok", "it%27s+%28fine%29%21+%7Eok"),
            ("a b", "a+b"),
            ("*-._", "*-._"),
            ("é&=+%/?#", "%C3%A9%26%3D%2B%25%2F%3F%23"),
            ("\u{1F600}", "%F0%9F%98%80"),
            ("", ""),
        ] {
            let mut ours = String::new();
            push_form_encoded(&mut ours, text);
            assert_eq!(ours, form, "{text:?}");
        }
    }

    /// A report argument written natively parses to what `JSON.stringify` writes for it
    /// as an array element: the same strings, the same integers (not floats), `null`
    /// where JSON has no value.
    #[test]
    fn report_arguments_are_written_as_json_stringify_writes_them() {
        let rt = Runtime::new().unwrap();
        let ctx = Context::full(&rt).unwrap();
        let cases = [
            "'m1'",
            "'quote \" backslash \\\\ newline \\n tab \\t nul \\u0000 é 😀'",
            "''",
            "7",
            "-3",
            "3000.5",
            "Math.max(0, 4000)",
            "2 ** 40",
            "1e20",
            "1e21",
            "-0",
            "0.1",
            "NaN",
            "Infinity",
            "true",
            "false",
            "null",
            "undefined",
            "() => 1",
            "({ kind: 'complete', source: 'stream', text: 'Hello \"x\"', n: 2 })",
            "[1, 'a', null]",
            // Objects written natively, and those left to JSON.stringify.
            "({})",
            "({ b: 1, a: 2, 2: 'two', 1: 'one', 'x y': -0, z: NaN, u: undefined, f() {}, [Symbol('s')]: 1, s: Symbol('v') })",
            "({ kind: 'failed', code: 'STREAM_001', nested: { a: [1, 2] } })",
            "({ toJSON() { return 'custom'; } })",
            "({ get g() { return 'got'; }, t: 'é😀\\n' })",
            "Object.create({ inherited: 1 }, { own: { value: 2, enumerable: true }, hidden: { value: 3 } })",
            "Object.assign(Object.create(null), { a: 1 })",
            "new Date(0)",
            "new Map([[1, 2]])",
        ];
        ctx.with(|ctx| {
            for case in cases {
                let value: Value = ctx.eval(case).unwrap();
                let mut ours = String::new();
                push_json(&mut ours, value).unwrap();
                let theirs: String = ctx
                    .eval(format!("JSON.stringify([{case}]).slice(1, -1)"))
                    .unwrap();
                let ours_v: serde_json::Value = serde_json::from_str(&ours)
                    .unwrap_or_else(|e| panic!("{case}: {ours} is not JSON: {e}"));
                let theirs_v: serde_json::Value = serde_json::from_str(&theirs)
                    .unwrap_or_else(|e| panic!("{case}: {theirs} is not JSON: {e}"));
                assert_eq!(ours_v, theirs_v, "{case}: {ours} vs {theirs}");
                // Same keys in the same order, too.
                assert_eq!(ours.replace(' ', ""), theirs.replace(' ', ""), "{case}");
            }
            // A `toJSON` on Object.prototype itself applies to every plain object.
            let value: Value = ctx
                .eval("Object.prototype.toJSON = function () { return 'patched'; }; ({ a: 1 })")
                .unwrap();
            let mut ours = String::new();
            push_json(&mut ours, value).unwrap();
            assert_eq!(ours, r#""patched""#);
        });
    }
}
