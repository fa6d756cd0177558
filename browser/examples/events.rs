//! Per-event cost of the JavaScript host with widgets/corrected, without the rest of the
//! simulator: PAGES pages on one runtime take turns, each message 20 text frames and an
//! `end`, until MESSAGES messages in all. One page measures the host warm; a thousand
//! show what cache misses across realms add (each realm is ~150–200 KiB).
//! `cargo run --release -p picasso-browser --example events [-- PAGES [MESSAGES]]`;
//! under `valgrind --tool=callgrind` it counts instructions per message, which do not
//! depend on what else the machine is doing. `WIDGET=dir` loads another widget (a
//! variant of the corrected one with parts of its handler taken out tells what the host
//! costs and what the widget's own code does).

use picasso_browser::{Engine, Host, Page, PageOptions, Request, WidgetSource};
use std::time::Instant;

/// The host object the simulator hands a widget (`sim/src/widget/js.rs`).
const HOST: &str = "{ tenantHash: 't', sessionId: 's', settings: {}, render: __host.render, \
    settle: (id, o) => __report('settle', id, o), metric: (n, id) => __report('metric', n, id), \
    retryWait: (id, ms) => __report('retryWait', id, ms) }";
const CONFIG: &str = r#"[{"tenant_hash":"t","features":{"streaming_enabled":true,"streaming_percentage":100},"endpoints":{"chat":"/c","streaming":"http://g/"}}]"#;

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse::<usize>().ok());
    let pages_n = args.next().unwrap_or(1).max(1);
    let total = args.next().unwrap_or(2_000);
    let source = WidgetSource::load(std::path::Path::new(
        &std::env::var("WIDGET").unwrap_or_else(|_| "widgets/corrected".into()),
    ))
    .expect("widget");
    let engine = Engine::new(&source, picasso_browser::DEFAULT_BUDGET).expect("engine");
    let pages: Vec<Page> = (0..pages_n)
        .map(|i| {
            let options = PageOptions::chromium(i as u64);
            let page = Page::open_in(&engine, &source, options, Host::fixed(HOST)).expect("page");
            page.call_widget("config", CONFIG).expect("config");
            page.take_requests();
            page
        })
        .collect();
    let rounds = total.div_ceil(pages_n);
    let t0 = Instant::now();
    let (mut messages, mut events) = (0u64, 0u64);
    for r in 0..rounds {
        let mut sources = Vec::with_capacity(pages_n);
        for page in &pages {
            page.call_widget("send", &format!(r#"["m{r}","hi"]"#))
                .expect("send");
            let es = page
                .take_requests()
                .into_iter()
                .find_map(|q| match q {
                    Request::OpenStream { es, .. } => Some(es),
                    _ => None,
                })
                .expect("a stream");
            page.deliver_stream_response(es, 200, Some("text/event-stream"))
                .expect("open");
            sources.push(es);
        }
        for k in 0..20 {
            for (page, es) in pages.iter().zip(&sources) {
                let frame = format!(
                    "id: m{r}:{k}\ndata: {{\"content\": \"w{k} \", \"type\": \"text\"}}\n\n"
                );
                page.deliver_stream_body(*es, frame.as_bytes())
                    .expect("frame");
                page.take_requests();
                events += 1;
            }
        }
        for (page, es) in pages.iter().zip(&sources) {
            page.deliver_stream_body(*es, b"data: {\"type\": \"end\"}\n\n")
                .expect("end");
            page.deliver_stream_end(*es).expect("end");
            page.take_requests();
            events += 2;
            messages += 1;
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    println!(
        "{pages_n} page(s), {messages} messages, {events} events: {:.1} µs per message, {:.2} µs per event",
        wall * 1e6 / messages as f64,
        wall * 1e6 / events as f64,
    );
}
