//! Load benchmark for mock Bedrock over loopback, with a lean hyper HTTP/1.1 client.
//!
//! Run in release: `cargo run --release -p mock-bedrock --example bench`.
//! The server runs on a runtime of its own with ONE worker thread, the client on
//! another, so the server thread's CPU time (from `/proc/self/task/<tid>/stat`) is
//! what "per core" means. Three phases, each bounded in count and time:
//!
//! 1. timing: 1,000 concurrent ConverseStream streams (started evenly over 1 s, as
//!    real clients do not start in lockstep), 80 tokens 25 ms apart; the
//!    gap between consecutive tokens at the client vs the scripted 25 ms, and the
//!    process RSS with all 1,000 open;
//! 2. hold: 5,000 concurrent streams, 30 tokens 200 ms apart (6 s each): how many
//!    are open at once and how many finish whole;
//! 3. throughput: 200 streams of 2,000 tokens with no delay: frames per second per
//!    server core.

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use mock_bedrock::MockState;
use picasso_core::Scenario;
use picasso_core::scenario::{Answer, Token};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

const MODEL: &str = "anthropic.claude-3-haiku-20240307-v1:0";

fn answer(prompt: &str, tokens: usize, first_ms: u64, gap_ms: u64) -> Answer {
    Answer {
        id: prompt.into(),
        model: None,
        prompt: Some(prompt.into()),
        pattern: None,
        tokens: (0..tokens)
            .map(|i| Token {
                text: format!(" tok{i}"),
                delay_ms: if i == 0 { first_ms } else { gap_ms },
            })
            .collect(),
        text: None,
        pacing: None,
        usage: None,
        stop_reason: Default::default(),
    }
}

fn scenario() -> Scenario {
    let mut s = Scenario::default_scenario();
    s.faults.clear();
    s.answers = vec![
        answer("timing", 80, 25, 25),
        answer("hold", 30, 200, 200),
        answer("throughput", 2000, 0, 0),
    ];
    s
}

/// Shared client-side counters.
#[derive(Debug, Default)]
struct Counters {
    open: AtomicUsize,
    peak_open: AtomicUsize,
    frames: AtomicU64,
    complete: AtomicUsize,
    failed: AtomicUsize,
}

/// What one stream saw: the gap errors between consecutive tokens, in µs.
async fn one_stream(addr: SocketAddr, prompt: &'static str, counters: Arc<Counters>) -> Vec<u64> {
    match stream_inner(addr, prompt, &counters).await {
        Ok(errors) => errors,
        Err(err) => {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            if counters.failed.load(Ordering::Relaxed) <= 3 {
                eprintln!("stream failed: {err}");
            }
            Vec::new()
        }
    }
}

async fn stream_inner(
    addr: SocketAddr,
    prompt: &str,
    counters: &Counters,
) -> Result<Vec<u64>, Box<dyn std::error::Error + Send + Sync>> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(connection);
    let body = serde_json::json!({"messages": [{"role": "user", "content": [{"text": prompt}]}]});
    let request = http::Request::post(format!("/model/{MODEL}/converse-stream"))
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))?;
    let response = sender.send_request(request).await?;
    if response.status() != 200 {
        return Err(format!("status {}", response.status()).into());
    }
    let open = counters.open.fetch_add(1, Ordering::Relaxed) + 1;
    counters.peak_open.fetch_max(open, Ordering::Relaxed);
    let mut body = response.into_body();
    let mut decoder = MessageFrameDecoder::new();
    let mut buffer = BytesMut::new();
    let mut last_token: Option<Instant> = None;
    let mut gap_errors = Vec::new();
    let mut finished = false;
    let gap = Duration::from_millis(25);
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        buffer.extend_from_slice(&data);
        let now = Instant::now();
        while let DecodedFrame::Complete(message) = decoder.decode_frame(&mut buffer)? {
            counters.frames.fetch_add(1, Ordering::Relaxed);
            let kind = message
                .headers()
                .iter()
                .find(|h| h.name().as_str() == ":event-type")
                .and_then(|h| h.value().as_string().ok());
            match kind.map(|k| k.as_str()).unwrap_or("") {
                "contentBlockDelta" => {
                    if let Some(previous) = last_token {
                        let actual = now.duration_since(previous);
                        let error = actual.abs_diff(gap);
                        gap_errors.push(error.as_micros() as u64);
                    }
                    last_token = Some(now);
                }
                "metadata" => finished = true,
                _ => {}
            }
        }
    }
    counters.open.fetch_sub(1, Ordering::Relaxed);
    if finished {
        counters.complete.fetch_add(1, Ordering::Relaxed);
        Ok(gap_errors)
    } else {
        Err("stream ended before metadata".into())
    }
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * rustix::param::page_size() as u64
}

/// CPU seconds (user + system) of one thread.
fn thread_cpu_s(tid: i32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
    // Fields after the `(comm)`: utime is the 12th, stime the 13th.
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Runs `n` streams of `prompt` (client side), started evenly over `ramp`, and
/// returns all gap errors.
async fn run_phase(
    addr: SocketAddr,
    prompt: &'static str,
    n: usize,
    ramp: Duration,
    counters: Arc<Counters>,
    limit: Duration,
) -> Vec<u64> {
    let mut tasks = tokio::task::JoinSet::new();
    let start = Instant::now();
    for i in 0..n {
        let at = start + ramp.mul_f64(i as f64 / n as f64);
        let counters = Arc::clone(&counters);
        tasks.spawn(async move {
            tokio::time::sleep_until(at).await;
            one_stream(addr, prompt, counters).await
        });
    }
    let mut errors = Vec::new();
    let collect = async {
        while let Some(result) = tasks.join_next().await {
            if let Ok(mut e) = result {
                errors.append(&mut e);
            }
        }
    };
    if tokio::time::timeout(limit, collect).await.is_err() {
        eprintln!("phase {prompt}: time limit reached");
    }
    errors
}

fn main() {
    // 5,000 streams need 10,000 descriptors here (client and server in one process).
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let raised = rustix::process::Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    if let Err(err) = rustix::process::setrlimit(rustix::process::Resource::Nofile, raised) {
        eprintln!("cannot raise the fd limit: {err}");
    }
    println!("fd limit: {:?}", limit.maximum);

    let server_tid = Arc::new(AtomicU64::new(0));
    let tid_slot = Arc::clone(&server_tid);
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("mock-bedrock-server")
        .on_thread_start(move || {
            tid_slot.store(
                rustix::thread::gettid().as_raw_nonzero().get() as u64,
                Ordering::Relaxed,
            );
        })
        .enable_all()
        .build()
        .expect("server runtime");
    let client_tid = Arc::new(AtomicU64::new(0));
    let client_slot = Arc::clone(&client_tid);
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .on_thread_start(move || {
            client_slot.store(
                rustix::thread::gettid().as_raw_nonzero().get() as u64,
                Ordering::Relaxed,
            );
        })
        .enable_all()
        .build()
        .expect("client runtime");

    let state = MockState::new(scenario());
    let addr = server_rt.block_on(async {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_reuseaddr(true).expect("reuseaddr");
        socket
            .bind("127.0.0.1:0".parse().expect("addr"))
            .expect("bind");
        let listener = socket.listen(8192).expect("listen");
        let addr = listener.local_addr().expect("addr");
        let state = state.clone();
        tokio::spawn(mock_bedrock::serve(listener, state, std::future::pending()));
        addr
    });
    std::thread::sleep(Duration::from_millis(100));
    let server_tid = server_tid.load(Ordering::Relaxed) as i32;
    let baseline_rss = rss_bytes();

    // Phase 1: timing and memory at 1,000 concurrent.
    let counters = Arc::new(Counters::default());
    let sampler_counters = Arc::clone(&counters);
    let rss_at_peak = Arc::new(AtomicU64::new(0));
    let rss_slot = Arc::clone(&rss_at_peak);
    let client_tid = client_tid.load(Ordering::Relaxed) as i32;
    let client_cpu_before = thread_cpu_s(client_tid);
    let cpu_before = thread_cpu_s(server_tid);
    let phase_started = std::time::Instant::now();
    let errors = client_rt.block_on(async move {
        let sampler = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if sampler_counters.open.load(Ordering::Relaxed) >= 1000 {
                    rss_slot.fetch_max(rss_bytes(), Ordering::Relaxed);
                }
            }
        });
        let errors = run_phase(
            addr,
            "timing",
            1000,
            Duration::from_secs(1),
            counters,
            Duration::from_secs(30),
        )
        .await;
        sampler.abort();
        errors
    });
    let server_load =
        (thread_cpu_s(server_tid) - cpu_before) / phase_started.elapsed().as_secs_f64();
    let mut sorted = errors;
    sorted.sort_unstable();
    let rss_peak = rss_at_peak.load(Ordering::Relaxed);
    println!(
        "\n== timing: 1,000 concurrent ConverseStream (started over 1 s), 80 tokens, 25 ms scripted gap =="
    );
    let client_load =
        (thread_cpu_s(client_tid) - client_cpu_before) / phase_started.elapsed().as_secs_f64();
    println!(
        "server core busy {:.0} %, client core busy {:.0} %",
        server_load * 100.0,
        client_load * 100.0
    );
    println!(
        "gaps measured {}  error p50 {} µs  p99 {} µs  p99.9 {} µs  max {} µs",
        sorted.len(),
        percentile(&sorted, 0.5),
        percentile(&sorted, 0.99),
        percentile(&sorted, 0.999),
        sorted.last().copied().unwrap_or(0)
    );
    println!(
        "RSS: baseline {:.1} MiB, with 1,000 open {:.1} MiB (+{:.1} KiB per stream, client included)",
        baseline_rss as f64 / 1048576.0,
        rss_peak as f64 / 1048576.0,
        rss_peak.saturating_sub(baseline_rss) as f64 / 1024.0 / 1000.0
    );
    state.reset();

    // Phase 2: hold 5,000 at once.
    let counters = Arc::new(Counters::default());
    let c2 = Arc::clone(&counters);
    let started = std::time::Instant::now();
    let rss_hold = Arc::new(AtomicU64::new(0));
    let rss_hold_slot = Arc::clone(&rss_hold);
    client_rt.block_on(async move {
        let sampler = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                rss_hold_slot.fetch_max(rss_bytes(), Ordering::Relaxed);
            }
        });
        run_phase(
            addr,
            "hold",
            5000,
            Duration::from_secs(2),
            c2,
            Duration::from_secs(60),
        )
        .await;
        sampler.abort();
    });
    println!("\n== hold: 5,000 concurrent ConverseStream, 30 tokens, 200 ms apart ==");
    println!(
        "peak open at once {}  complete {}  failed {}  wall {:.1} s  peak RSS {:.1} MiB",
        counters.peak_open.load(Ordering::Relaxed),
        counters.complete.load(Ordering::Relaxed),
        counters.failed.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
        rss_hold.load(Ordering::Relaxed) as f64 / 1048576.0
    );
    state.reset();

    // Phase 3: throughput.
    let counters = Arc::new(Counters::default());
    let c3 = Arc::clone(&counters);
    let cpu_before = thread_cpu_s(server_tid);
    let started = std::time::Instant::now();
    client_rt.block_on(run_phase(
        addr,
        "throughput",
        200,
        Duration::ZERO,
        c3,
        Duration::from_secs(60),
    ));
    let wall = started.elapsed().as_secs_f64();
    let cpu = thread_cpu_s(server_tid) - cpu_before;
    let frames = counters.frames.load(Ordering::Relaxed);
    println!("\n== throughput: 200 streams x 2,000 tokens, no delay ==");
    println!(
        "frames {}  complete {}  wall {:.2} s  server CPU {:.2} s  => {:.0} frames/s per server core ({:.0} frames/s wall)",
        frames,
        counters.complete.load(Ordering::Relaxed),
        wall,
        cpu,
        frames as f64 / cpu.max(0.01),
        frames as f64 / wall
    );
    drop(client_rt);
    drop(server_rt);
}
