//! Per-event cost of the JavaScript host with widgets/corrected: one page, many
//! messages of 20 text frames each. `cargo run --release -p picasso-browser --example events`.

use picasso_browser::{Page, PageOptions, Request, WidgetSource};
use rand::SeedableRng;
use std::time::Instant;

fn main() {
    let source = WidgetSource::load(std::path::Path::new("widgets/corrected")).expect("widget");
    let host = "{ tenantHash: 't', sessionId: 's', settings: {}, render() {}, settle() {}, metric() {}, retryWait() {} }";
    let options = PageOptions {
        random: rand_chacha::ChaCha8Rng::seed_from_u64(1),
        event_source: true,
        reconnect_ms: 3000,
        now_ms: 0,
        budget: picasso_browser::DEFAULT_BUDGET,
    };
    let page = Page::open(&source, options, host).expect("page");
    page.call_widget("config", r#"[{"tenant_hash":"t","features":{"streaming_enabled":true,"streaming_percentage":100},"endpoints":{"chat":"/c","streaming":"http://g/"}}]"#).expect("config");
    let n = 2000;
    let t0 = Instant::now();
    let mut sends = std::time::Duration::ZERO;
    let mut events = 0u32;
    for i in 0..n {
        let ts = Instant::now();
        page.call_widget("send", &format!(r#"["m{i}","hi"]"#))
            .expect("send");
        sends += ts.elapsed();
        let es = page
            .take_requests()
            .into_iter()
            .find_map(|r| match r {
                Request::OpenStream { es, .. } => Some(es),
                _ => None,
            })
            .expect("stream");
        page.deliver_stream_response(es, 200, Some("text/event-stream"))
            .unwrap();
        for k in 0..20 {
            page.deliver_stream_body(
                es,
                format!("id: m{i}:{k}\ndata: {{\"content\": \"w{k} \", \"type\": \"text\"}}\n\n")
                    .as_bytes(),
            )
            .unwrap();
            events += 1;
        }
        page.deliver_stream_body(es, b"data: {\"type\": \"end\"}\n\n")
            .unwrap();
        page.deliver_stream_end(es).unwrap();
        page.take_requests();
        events += 3;
    }
    let wall = t0.elapsed();
    println!(
        "{n} messages, {events} events: {:.1} µs per message, {:.2} µs per event (sends {:.1} µs each)",
        wall.as_secs_f64() * 1e6 / f64::from(n),
        wall.as_secs_f64() * 1e6 / f64::from(events),
        sends.as_secs_f64() * 1e6 / f64::from(n)
    );
}
