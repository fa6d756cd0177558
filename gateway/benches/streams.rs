//! The gateway under load, over loopback, release build:
//! `CARGO_TARGET_DIR=… cargo bench -p gateway --bench streams`
//! (`BENCH_STREAMS`, default 5000; `BENCH_TTFT_N`, default 500).
//!
//! 1. Gateway-added latency to the first token: the p50 time to the first token
//!    through the gateway (client → gateway → mock Bedrock) minus the p50 straight
//!    from mock Bedrock through the same SDK client, with a zero-delay first token.
//! 2. Concurrent streams held end to end: BENCH_STREAMS clients each open a stream
//!    (distinct sessions) that lasts ~10 s; all must be open at once and all must end
//!    with `end`.
//! 3. Memory per stream: the process's RSS while they are all open, minus before,
//!    over the count. Clients, gateway and mock Bedrock share the process, so this is
//!    an upper bound for the gateway alone.
//!
//! The world is wired by `picasso_world::Loopback::start_with_bedrock_in_process`: the
//! Master and the gateway on loopback ports, mock Bedrock in process behind the SDK, so
//! the process's 20,000 file descriptors go to client and gateway sockets (5,000
//! streams over loopback need 10,000). Both TTFT measurements use the same SDK client
//! (the world's), so the difference is the gateway's.
//!
//! Bounded: every wait has a timeout; the whole run takes under a minute.

use bedrock_client::Call;
use futures_util::StreamExt;
use picasso_core::Scenario;
use picasso_core::scenario::{Answer, Caller, Pacing, Token};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;

const FOSTER: &str = "fo85e6a06dcdf4";

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn scenario() -> Scenario {
    let mut s = Scenario::default_scenario();
    s.faults.clear();
    s.limits.max_stream_ms = 120_000;
    let base = Answer::unscripted();
    s.answers.insert(
        0,
        Answer {
            id: "bench-ttft".into(),
            prompt: Some("ttft".into()),
            text: Some("a b c".into()),
            pacing: Some(Pacing {
                first_token_ms: 0,
                gap_ms: 0,
            }),
            ..base.clone()
        },
    );
    let mut tokens = vec![Token {
        text: "hold".into(),
        delay_ms: 0,
    }];
    tokens.extend((0..5).map(|_| Token {
        text: " on".into(),
        delay_ms: 2_000,
    }));
    s.answers.insert(
        0,
        Answer {
            id: "bench-hold".into(),
            prompt: Some("hold".into()),
            text: None,
            tokens,
            ..base
        },
    );
    s
}

#[tokio::main]
async fn main() {
    let streams = env_usize("BENCH_STREAMS", 5000);
    let ttft_n = env_usize("BENCH_TTFT_N", 500);
    let world = picasso_world::Loopback::start_with_bedrock_in_process(scenario())
        .await
        .expect("bind the Master's and the gateway's loopback ports");
    let (client, gw) = (world.bedrock_client.clone(), world.gateway.clone());
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(usize::MAX)
        .build()
        .unwrap();
    let url = |session: &str, message: &str, input: &str| {
        format!(
            "{gw}/?tenant_hash={FOSTER}&user_input={input}&session_id={session}&message_id={message}"
        )
    };

    // 1. Time to first token, direct vs through the gateway (sequential, warmed).
    let mut direct = Vec::with_capacity(ttft_n);
    for i in 0..ttft_n + 20 {
        let message = format!("d{i}");
        let start = Instant::now();
        let mut tokens = bedrock_client::stream(
            &client,
            Call {
                model: picasso_core::scenario::DEFAULT_MODEL,
                prompt: "ttft",
                tenant: FOSTER,
                session: "direct",
                message: &message,
                caller: Caller::Gateway,
            },
        )
        .await
        .unwrap();
        let first = tokens.next().await.unwrap().unwrap();
        if i >= 20 {
            direct.push(start.elapsed());
        }
        assert!(!first.is_empty());
        while tokens.next().await.is_some() {}
    }
    let mut via = Vec::with_capacity(ttft_n);
    for i in 0..ttft_n + 20 {
        // A new session every 10 requests keeps clear of the rate limit.
        let start = Instant::now();
        let response = http
            .get(url(&format!("t{}", i / 10), &format!("g{i}"), "ttft"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let mut body = response.bytes_stream();
        let first = body.next().await.unwrap().unwrap();
        if i >= 20 {
            via.push(start.elapsed());
        }
        assert!(first.starts_with(b"id: "));
        while body.next().await.is_some() {}
    }
    direct.sort();
    via.sort();
    let (d50, v50) = (percentile(&direct, 0.5), percentile(&via, 0.5));
    println!("time to first token over loopback, n = {ttft_n} each (zero-delay first token):");
    println!(
        "  SDK straight to mock Bedrock: p50 {:?}  p95 {:?}  p99 {:?}",
        d50,
        percentile(&direct, 0.95),
        percentile(&direct, 0.99)
    );
    println!(
        "  client -> gateway -> Bedrock: p50 {:?}  p95 {:?}  p99 {:?}",
        v50,
        percentile(&via, 0.95),
        percentile(&via, 0.99)
    );
    println!("  gateway-added p50: {:?}", v50.saturating_sub(d50));

    // 2 + 3. Concurrent streams held end to end, and memory per stream.
    let before = rss_kib();
    let opened = Arc::new(AtomicUsize::new(0));
    let ended = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(streams);
    for i in 0..streams {
        let (http, opened, ended) = (http.clone(), opened.clone(), ended.clone());
        let url = url(&format!("c{i}"), "m", "hold");
        tasks.push(tokio::spawn(async move {
            let Ok(response) = http.get(url).send().await else {
                return;
            };
            if response.status() != 200 {
                return;
            }
            let mut body = response.bytes_stream();
            let mut text = Vec::new();
            if let Some(Ok(chunk)) = body.next().await {
                opened.fetch_add(1, Ordering::SeqCst);
                text.extend_from_slice(&chunk);
            }
            while let Some(Ok(chunk)) = body.next().await {
                text.extend_from_slice(&chunk);
            }
            if text.ends_with(b"data: {\"type\": \"end\"}\n\n") {
                ended.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(9);
    while opened.load(Ordering::SeqCst) < streams && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all_open_after = start.elapsed();
    let open_now = opened.load(Ordering::SeqCst);
    let during = rss_kib();
    let gauge = world
        .gateway_state
        .metrics_text()
        .lines()
        .find(|l| l.starts_with("gateway_open_streams "))
        .unwrap_or("")
        .to_owned();
    let _ = tokio::time::timeout(
        Duration::from_secs(40),
        futures_util::future::join_all(tasks),
    )
    .await;
    let ended = ended.load(Ordering::SeqCst);
    println!("concurrent streams (each ~10 s, distinct sessions):");
    println!("  open at once: {open_now}/{streams} after {all_open_after:?} ({gauge})");
    println!(
        "  ended with `end`: {ended}/{streams} in {:?}",
        start.elapsed()
    );
    println!(
        "  RSS {} MiB -> {} MiB: {:.1} KiB per stream (client + gateway + mock Bedrock in one process)",
        before / 1024,
        during / 1024,
        (during.saturating_sub(before)) as f64 / open_now.max(1) as f64
    );
}
