//! The JavaScript host on small widgets: globals in virtual time, EventSource and fetch
//! driven from outside, React hooks, and the three ways a widget can go wrong (throw,
//! loop, stay silent is the simulator's liveness check, not the page's).

use picasso_browser::{
    DEFAULT_BUDGET, Engine, Host, MemoryLimit, Page, PageError, PageOptions, Request, WidgetSource,
};
use std::collections::BTreeMap;

fn options(event_source: bool) -> PageOptions {
    PageOptions {
        event_source,
        ..PageOptions::chromium(1)
    }
}

const HOST: &str = "{ render: (...a) => __report('render', ...a) }";

fn open(src: &str, event_source: bool) -> Result<Page, PageError> {
    let source = WidgetSource::from_sources("w/widget.js", &[("w/widget.js", src)]);
    Page::open(&source, options(event_source), Host::fixed(HOST))
}

/// The data of the `message` events the page dispatched, in order.
fn dispatched(reqs: &[Request]) -> Vec<&str> {
    reqs.iter()
        .filter_map(|r| match r {
            Request::Dispatched { data, .. } => Some(data.as_str()),
            _ => None,
        })
        .collect()
}

fn consoles(reqs: &[Request]) -> Vec<String> {
    reqs.iter()
        .filter_map(|r| match r {
            Request::Console { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn globals_run_on_the_virtual_clock_and_the_seed() {
    let page = open(
        r#"
export function createWidget(host) {
  console.log('es', typeof EventSource, 'now', Date.now() - 1767225600000, 'perf', performance.now());
  setTimeout(() => console.log('t500', performance.now()), 500);
  const i = setInterval(() => { console.log('tick', performance.now()); }, 200);
  setTimeout(() => clearInterval(i), 450);
  queueMicrotask(() => console.log('micro'));
  console.log('q', new URLSearchParams({ a: 'x y', b: 'é&' }).toString(), new URL('/p?q=1', 'https://h.example').href);
  return { send(id, text) { console.log('send', id, text, Math.random() < 1); } };
}
"#,
        false,
    )
    .expect("loads");
    let first = consoles(&page.take_requests());
    assert_eq!(
        first,
        [
            "es undefined now 0 perf 0",
            "q a=x+y&b=%C3%A9%26 https://h.example/p?q=1",
            "micro"
        ]
    );
    assert_eq!(page.next_deadline(), Some(200));
    page.run_due(1000).expect("timers");
    assert_eq!(
        consoles(&page.take_requests()),
        ["tick 200", "tick 400", "t500 500"]
    );
    assert_eq!(page.pending_timers(), 0);
    page.call_widget("send", r#"["m1","hi"]"#).expect("send");
    assert_eq!(consoles(&page.take_requests()), ["send m1 hi true"]);
}

/// `URLSearchParams` as a browser's: parsed from a query string (with `+` and
/// percent escapes), from pairs or from a record; `set` replaces the first pair of its
/// name in place and drops the others; names are compared as strings.
#[test]
fn url_search_params_behave_as_in_a_browser() {
    let page = open(
        r#"
export function createWidget(host) {
  const p = new URLSearchParams('?a=1&b=x+y&a=2&c=%C3%A9&d');
  console.log(p.get('a'), p.getAll('a').join(','), p.get('b'), p.get('c'), JSON.stringify(p.get('d')), p.get('z'), p.has('d'), p.size);
  p.set('a', 3);
  p.append(1, 'one');
  console.log(p.toString(), p.get(1), p.has('1'));
  p.delete('b');
  console.log([...p].map(([k, v]) => k + ':' + v).join(' '), [...p.keys()].join(), [...p.values()].join());
  const seen = [];
  p.forEach(function (v, k, all) { seen.push(k + '=' + v + (all === p && this === seen)); }, seen);
  console.log(seen.join(' '));
  console.log(new URLSearchParams([['x', 1], ['y', null]]).toString(), new URLSearchParams({ q: 'a b', r: undefined }).toString());
  console.log(new URLSearchParams().toString() === '', new URLSearchParams('').size);
  return {};
}
"#,
        true,
    )
    .expect("loads");
    assert_eq!(
        consoles(&page.take_requests()),
        [
            r#"1 1,2 x y é "" null true 5"#,
            "a=3&b=x+y&c=%C3%A9&d=&1=one one true",
            "a:3 c:é d: 1:one a,c,d,1 3,é,,one",
            "a=3true c=étrue d=true 1=onetrue",
            "x=1&y=null q=a+b&r=undefined",
            "true 0",
        ]
    );
}

/// The page's local time is UTC whatever the machine's zone, so a widget that shows a
/// time prints the same bytes on a laptop and in CI. The check runs in a child process
/// (this same test binary) whose `TZ` is five and a half hours east of UTC.
#[test]
fn local_time_is_utc_whatever_the_machine_zone() {
    if std::env::var_os("PICASSO_TZ_CHILD").is_some() {
        return local_time_check();
    }
    let out = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args(["local_time_is_utc_whatever_the_machine_zone", "--exact"])
        .env("TZ", "IST-5:30")
        .env("PICASSO_TZ_CHILD", "1")
        .output()
        .expect("the child runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
}

fn local_time_check() {
    let page = open(
        r#"
export function createWidget(host) {
  const d = new Date(2026, 0, 1, 12, 30, 5);
  console.log(d.toISOString(), d.getHours(), d.getTimezoneOffset());
  console.log(d.toString());
  console.log(d.toLocaleString());
  console.log(new Date('2026-01-01T10:00').toISOString(), new Date('2026-01-01').toISOString());
  console.log(new Date(Date.parse('Jan 1, 2026 10:00:00')).toISOString());
  console.log(new Date('2026-01-01T10:00:00+02:00').toISOString());
  const e = new Date(0); e.setHours(23); console.log(e.toISOString());
  console.log(String(new Date(NaN)));
  return {};
}
"#,
        false,
    )
    .expect("loads");
    assert_eq!(
        consoles(&page.take_requests()),
        [
            "2026-01-01T12:30:05.000Z 12 0",
            "Thu Jan 01 2026 12:30:05 GMT+0000 (Coordinated Universal Time)",
            "1/1/2026, 12:30:05 PM",
            "2026-01-01T10:00:00.000Z 2026-01-01T00:00:00.000Z",
            "2026-01-01T10:00:00.000Z",
            "2026-01-01T08:00:00.000Z",
            "1970-01-01T23:00:00.000Z",
            "Invalid Date",
        ]
    );
}

#[test]
fn event_source_events_come_from_the_model_and_close_stops_the_chunk() {
    let page = open(
        r#"
export function createWidget(host) {
  const es = new EventSource('https://gw.example/?a=1');
  es.onopen = () => console.log('open', es.readyState);
  es.onmessage = (e) => { console.log('msg', e.data, e.lastEventId); if (e.data === 'stop') es.close(); };
  es.onerror = () => console.log('error', es.readyState);
  return {};
}
"#,
        true,
    )
    .expect("loads");
    assert_eq!(
        page.take_requests(),
        [Request::OpenStream {
            es: 1,
            url: "https://gw.example/?a=1".into(),
            last_event_id: None
        }]
    );
    page.deliver_stream_response(1, 200, Some("text/event-stream"))
        .expect("open");
    page.deliver_stream_body(1, b"id: 7\ndata: a\n\ndata: stop\n\ndata: never\n\n")
        .expect("body");
    let reqs = page.take_requests();
    assert_eq!(consoles(&reqs), ["open 1", "msg a 7", "msg stop 7"]);
    assert!(reqs.contains(&Request::AbortStream { es: 1 }));
    assert_eq!(page.open_event_sources(), 0);
    // What reached the widget: the two events dispatched, not the one after close().
    assert_eq!(dispatched(&reqs), ["a", "stop"]);
}

#[test]
fn a_source_closed_for_good_is_forgotten_whoever_closed_it() {
    let page = open(
        r#"
let sources = [];
export function createWidget(host) {
  return {
    send(id) {
      const es = new EventSource('/s?m=' + id);
      es.onmessage = (e) => { if (e.data === 'end') es.close(); };
      es.onerror = () => console.log('error', id, es.readyState);
      sources.push(es);
    },
    states() { console.log('states', sources.map((es) => es.readyState).join(',')); },
  };
}
"#,
        true,
    )
    .expect("loads");
    for i in 1..=4u32 {
        page.call_widget("send", &format!("[\"m{i}\"]"))
            .expect("send");
        page.deliver_stream_response(i, 200, Some("text/event-stream"))
            .expect("open");
    }
    // Two closed by the script, one by a fatal error (a non-200 reconnect), one open.
    page.deliver_stream_body(1, b"data: end\n\n")
        .expect("end 1");
    page.deliver_stream_body(2, b"data: end\n\ndata: late\n\n")
        .expect("end 2");
    page.deliver_stream_end(3).expect("drop 3");
    page.run_due(3000).expect("reconnect 3");
    page.deliver_stream_response(3, 500, None).expect("fail 3");
    assert_eq!(page.tracked_event_sources(), 1);
    assert_eq!(page.open_event_sources(), 1);
    // What is left of the forgotten ones is what a page sees of a closed source.
    page.deliver_stream_body(1, b"data: ignored\n\n")
        .expect("ignored");
    page.call_widget("states", "[]").expect("states");
    let reqs = page.take_requests();
    assert_eq!(
        consoles(&reqs),
        ["error m3 0", "error m3 2", "states 2,2,2,1"]
    );
}

#[test]
fn a_dropped_stream_reconnects_with_last_event_id_unless_closed() {
    let page = open(
        r#"
export function createWidget(host) {
  const es = new EventSource('/s');
  es.onerror = () => console.log('error', es.readyState);
  return {};
}
"#,
        true,
    )
    .expect("loads");
    page.take_requests();
    page.deliver_stream_response(1, 200, Some("text/event-stream"))
        .expect("open");
    page.deliver_stream_body(1, b"id: m:3\ndata: x\n\n")
        .expect("body");
    page.set_now(100);
    page.deliver_stream_end(1).expect("end");
    assert_eq!(consoles(&page.take_requests()), ["error 0"]);
    assert_eq!(page.next_deadline(), Some(3100));
    page.run_due(3100).expect("reconnect");
    assert_eq!(
        page.take_requests(),
        [Request::OpenStream {
            es: 1,
            url: "/s".into(),
            last_event_id: Some("m:3".into())
        }]
    );
}

#[test]
fn fetch_resolves_with_the_delivered_response_and_abort_rejects() {
    let page = open(
        r#"
export function createWidget(host) {
  fetch('/chat', { method: 'POST', body: '{}' })
    .then(async (r) => console.log('status', r.status, r.ok, r.headers.get('Retry-After'), (await r.json()).x));
  const c = new AbortController();
  fetch('/slow', { signal: c.signal }).catch((e) => console.log('rejected', e.name));
  setTimeout(() => c.abort(), 10);
  return {};
}
"#,
        true,
    )
    .expect("loads");
    let reqs = page.take_requests();
    assert!(
        matches!(&reqs[0], Request::Fetch { id: 1, method, body: Some(b), .. } if method == "POST" && b == "{}")
    );
    let headers = BTreeMap::from([("retry-after".to_owned(), "3".to_owned())]);
    page.deliver_fetch_response(1, 200, &headers, r#"{"x": 5}"#)
        .expect("response");
    page.run_due(10).expect("abort");
    let reqs = page.take_requests();
    assert_eq!(
        consoles(&reqs),
        ["status 200 true 3 5", "rejected AbortError"]
    );
    assert!(reqs.contains(&Request::AbortFetch { id: 2 }));
}

#[test]
fn react_hooks_rerender_on_state_and_clean_up_on_unmount() {
    let page = open(
        r#"
import { useState, useRef, useEffect, createRoot } from 'react';
function App() {
  const [n, setN] = useState(0);
  const renders = useRef(0);
  renders.current += 1;
  useEffect(() => { console.log('effect', n); return () => console.log('cleanup', n); }, [n]);
  App.bump = () => setN((x) => x + 1);
  return `n=${n} renders=${renders.current}`;
}
export function createWidget(host) {
  const root = createRoot((v) => host.render(v));
  root.render(App);
  return { send() { App.bump(); App.bump(); }, unmount() { root.unmount(); } };
}
"#,
        true,
    )
    .expect("loads");
    page.call_widget("send", "[]").expect("send");
    page.call_widget("unmount", "[]").expect("unmount");
    let reqs = page.take_requests();
    let renders: Vec<String> = reqs
        .iter()
        .filter_map(|r| match r {
            Request::Report { kind, args } if kind == "render" => Some(args.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(renders, [r#"["n=0 renders=1"]"#, r#"["n=2 renders=2"]"#]);
    assert_eq!(
        consoles(&reqs),
        ["effect 0", "cleanup 0", "effect 2", "cleanup 2"]
    );
}

#[test]
fn a_throwing_entry_point_fails_the_page_with_the_stack() {
    let page = open(
        "export function createWidget(host) {\n  return { send(id) {\n    null.x;\n  } };\n}\n",
        true,
    )
    .expect("loads");
    let err = page.call_widget("send", r#"["m1"]"#).expect_err("throws");
    let text = err.to_string();
    assert!(text.contains("TypeError"), "{text}");
    assert!(text.contains("w/widget.js:3"), "{text}");
    // The page stays failed.
    assert!(page.call_widget("send", r#"["m2"]"#).is_err());
}

#[test]
fn an_async_rejection_fails_the_page_too() {
    let page = open(
        "export function createWidget(host) {\n  return { async send(id) {\n    await null;\n    throw new Error('boom ' + id);\n  } };\n}\n",
        true,
    )
    .expect("loads");
    let err = page.call_widget("send", r#"["m1"]"#).expect_err("rejects");
    assert!(err.to_string().contains("Error: boom m1"), "{err}");
}

#[test]
fn an_exception_in_an_event_handler_is_reported_and_survived() {
    let page = open(
        r#"
export function createWidget(host) {
  const es = new EventSource('/s');
  es.onmessage = (e) => { JSON.parse(e.data); console.log('parsed'); };
  return {};
}
"#,
        true,
    )
    .expect("loads");
    page.take_requests();
    page.deliver_stream_response(1, 200, Some("text/event-stream"))
        .expect("open");
    page.deliver_stream_body(1, b"data: {bad\n\ndata: {}\n\n")
        .expect("survives");
    let reqs = page.take_requests();
    // Each event is recorded as dispatched before its handler runs.
    assert!(matches!(&reqs[0], Request::Dispatched { es: 1, data } if data == "{bad"));
    assert!(
        matches!(&reqs[1], Request::Uncaught { message, .. } if message.starts_with("SyntaxError"))
    );
    assert_eq!(dispatched(&reqs), ["{bad", "{}"]);
    assert_eq!(consoles(&reqs), ["parsed"]);
}

#[test]
fn an_endless_loop_is_stopped_by_the_budget() {
    let page = open(
        "export function createWidget(host) {\n  return { send() { while (true) {} } };\n}\n",
        true,
    )
    .expect("loads");
    let err = page.call_widget("send", "[]").expect_err("stopped");
    assert!(matches!(err, PageError::Budget { .. }), "{err}");
    assert!(err.to_string().contains("widget.send()"), "{err}");
}

/// Pages on an engine whose memory is `base` MiB and `per_page` MiB for each page open at
/// the peak: how many of `n` open and take a message before one fails, and its error.
fn open_many(
    base: usize,
    per_page: usize,
    ceiling: Option<usize>,
    n: usize,
) -> (usize, Option<PageError>) {
    let source = WidgetSource::from_sources(
        "w/widget.js",
        &[(
            "w/widget.js",
            "export function createWidget(host) {\n  const kept = [];\n  return { send(id, text) { kept.push(text.repeat(1000)); } };\n}\n",
        )],
    );
    let memory = MemoryLimit {
        base: base << 20,
        per_page: per_page << 20,
        ceiling: ceiling.map(|c| c << 20),
    };
    let engine = Engine::with_memory(&source, DEFAULT_BUDGET, memory).expect("engine");
    let mut pages = Vec::new();
    for i in 0..n {
        let opened =
            Page::open_in(&engine, &source, options(true), Host::fixed(HOST)).and_then(|page| {
                page.call_widget("send", r#"["m1", "hello"]"#)
                    .map(|()| page)
            });
        match opened {
            Ok(page) => pages.push(page),
            Err(e) => return (i, Some(e)),
        }
    }
    (n, None)
}

/// QuickJS limits a runtime, not a realm: the limit grows with the pages open at once,
/// so a run's size alone never runs the pages out of memory (a fixed gibibyte failed
/// every page of a 6,000-session run, each with a bare `null`).
#[test]
fn the_memory_limit_grows_with_the_pages_open() {
    assert_eq!(open_many(2, 1, None, 60), (60, None));
    // The same pages under a fixed 2 MiB, or growing up to a ceiling of 4 MiB: a few
    // open, then one fails, and says why.
    for (per_page, ceiling) in [(0, None), (1, Some(4))] {
        let (opened, err) = open_many(2, per_page, ceiling, 60);
        assert!(
            opened < 60,
            "all {opened} opened under 2 MiB + {per_page} MiB per page, at most {ceiling:?}"
        );
        let err = err.expect("a page fails");
        let text = err.to_string();
        assert!(
            matches!(err, PageError::OutOfMemory { .. }) || text.contains("out of memory"),
            "{text}"
        );
    }
}

/// A widget that allocates without bound fails its page with the limit and the task
/// named, not with whatever QuickJS threw (`null` when even the error cannot be made).
#[test]
fn a_widget_that_allocates_without_bound_runs_out_of_memory_clearly() {
    let source = WidgetSource::from_sources(
        "w/widget.js",
        &[(
            "w/widget.js",
            "export function createWidget(host) {\n  const kept = [];\n  return { send(id) { for (let i = 0; ; i++) kept.push('x'.repeat(1 << 20) + i); } };\n}\n",
        )],
    );
    let memory = MemoryLimit {
        base: 16 << 20,
        per_page: 1 << 20,
        ceiling: None,
    };
    let engine = Engine::with_memory(&source, DEFAULT_BUDGET, memory).expect("engine");
    let page = Page::open_in(&engine, &source, options(true), Host::fixed(HOST)).expect("opens");
    let err = page.call_widget("send", r#"["m1"]"#).expect_err("runs out");
    match &err {
        PageError::OutOfMemory {
            task,
            used,
            memory: limit,
            peak,
        } => {
            assert_eq!(task, "widget.send()");
            assert_eq!((*limit, *peak), (memory, 1));
            assert!(*used >= 15 << 20, "{err}");
        }
        other => panic!("not an out-of-memory error: {other}"),
    }
    assert!(
        err.to_string()
            .contains("may hold 17.0 MiB together (16.0 MiB, and 1.0 MiB per page at the peak of 1 open at once)"),
        "{err}"
    );
    // The page stays failed, and other pages on the engine still open.
    assert!(page.call_widget("send", r#"["m2"]"#).is_err());
    drop(page);
    let other = Page::open_in(&engine, &source, options(true), Host::fixed(HOST));
    assert!(other.is_ok(), "{:?}", other.err());
}

#[test]
fn a_loop_in_a_microtask_is_stopped_too() {
    let page = open(
        "export function createWidget(host) {\n  return { send() { Promise.resolve().then(() => { for (;;) {} }); } };\n}\n",
        true,
    )
    .expect("loads");
    assert!(matches!(
        page.call_widget("send", "[]"),
        Err(PageError::Budget { .. })
    ));
}

#[test]
fn a_missing_export_is_a_load_error() {
    let err = open("export const x = 1;\n", true).expect_err("no createWidget");
    assert!(err.to_string().contains("createWidget"), "{err}");
}

/// Nothing that would let a page observe the garbage collector (which, with realms
/// sharing a runtime, depends on other sessions) or real time.
#[test]
fn no_gc_or_real_time_observers() {
    let page = open(
        "export function createWidget(host) {\n  console.log(typeof WeakRef, typeof FinalizationRegistry, typeof performance.timeOrigin, 2n ** 64n > 0n);\n  return {};\n}\n",
        true,
    )
    .expect("loads");
    assert_eq!(
        consoles(&page.take_requests()),
        ["undefined undefined undefined true"]
    );
}

#[test]
fn every_page_of_a_widget_loads_the_same_modules_text_imports_included() {
    // The second page reads the first one's compiled bytecode; bytecode drops import
    // attributes, so a module importing `with { type: 'text' }` must still be parsed.
    let source = WidgetSource::from_sources(
        "w/widget.js",
        &[
            (
                "w/widget.js",
                "import note from './note.txt' with { type: 'text' };\n\
                 import { twice } from './lib.js';\n\
                 export function createWidget(host) { console.log(note.trim(), twice(21)); return {}; }\n",
            ),
            ("w/lib.js", "export const twice = (n) => n * 2;\n"),
            ("w/note.txt", "plain text, not a module\n"),
        ],
    );
    for _ in 0..3 {
        let page = Page::open(&source, options(true), Host::fixed(HOST)).expect("loads");
        assert_eq!(
            consoles(&page.take_requests()),
            ["plain text, not a module 42"]
        );
    }
}

/// What a handler gets is what a browser hands it: a `MessageEvent` whose `type`,
/// `target` and `origin` are not its own properties, the attribute and then the
/// listeners called, a named event with its type; `Date.now` is the host's clock; the
/// form encoding escapes what `encodeURIComponent` leaves; `host.render` coerces its
/// arguments; `__report` writes its arguments as JSON, `undefined` as `null`.
#[test]
fn events_and_globals_look_as_in_a_browser() {
    let source = WidgetSource::from_sources(
        "w/widget.js",
        &[(
            "w/widget.js",
            r#"
export function createWidget(host) {
  const es = new EventSource('https://gw.example/');
  es.onmessage = (e) => console.log('attr', e.type, e.target === es, e.currentTarget === es,
    e instanceof MessageEvent, e instanceof Event, JSON.stringify(Object.keys(e)), e.origin === '',
    e.data, e.lastEventId);
  es.addEventListener('message', function (e) { console.log('listener', this === es, e.data); });
  es.addEventListener('note', (e) => console.log('named', e.type, e.target === es, e.data,
    Date.now() - 1767225600000));
  console.log('now', Date.now.name, typeof Date.now(), Date.now() === new Date().getTime());
  console.log('form', new URLSearchParams({ q: "it's (fine)! ~ok", 'a b': '' }).toString(),
    new URLSearchParams({ s: '\uD800x', t: '*-._/\u00e9\u{1F600}' }).toString());
  host.render('m', 42, 0);
  __report('r', undefined, 1, 'x', { a: [1] });
  return {
    tell() {
      console.log('at', Date.now() - 1767225600000, performance.now(), new Date().getTime() - 1767225600000);
    },
  };
}
"#,
        )],
    );
    let page = Page::open(
        &source,
        options(true),
        Host::fixed("{ render: __host.render }"),
    )
    .expect("loads");
    let reqs = page.take_requests();
    assert_eq!(
        consoles(&reqs),
        [
            "now now number true",
            "form q=it%27s+%28fine%29%21+%7Eok&a+b= s=%EF%BF%BDx&t=*-._%2F%C3%A9%F0%9F%98%80"
        ]
    );
    assert!(reqs.contains(&Request::Render {
        id: "m".into(),
        text: "42".into(),
        cursor: false
    }));
    assert!(reqs.contains(&Request::Report {
        kind: "r".into(),
        args: r#"[null,1,"x",{"a":[1]}]"#.into()
    }));
    page.deliver_stream_response(1, 200, Some("text/event-stream"))
        .expect("open");
    // Each task reads the virtual time it runs at.
    page.set_now(700);
    page.deliver_stream_body(1, b"id: 3\ndata: hi\n\nevent: note\ndata: n\n\n")
        .expect("body");
    assert_eq!(
        consoles(&page.take_requests()),
        [
            r#"attr message true true true true ["data","lastEventId"] true hi 3"#,
            "listener true hi",
            "named note true n 700"
        ]
    );
    page.set_now(1234);
    page.call_widget("tell", "[]").expect("tell");
    assert_eq!(consoles(&page.take_requests()), ["at 1234 1234 1234"]);
}
