//! Faults under load, through `picasso-sim serve` (a child process; this process is
//! only the clients): N concurrent streams started at once, one session each, where
//! 10 % of the clients vanish mid-stream and 5 % of the Bedrock calls fail by a
//! scripted mid-stream exception. Then, once the world is quiet:
//!
//! - leaked Bedrock calls: journal entries still `in_progress` (must be 0);
//! - leaked streams: the gateway's `gateway_open_streams` gauge (must be 0);
//! - every surviving client got its full answer, or (its call struck) a `STREAM_001`
//!   error frame, and nothing else;
//! - `/metrics` adds up: stream requests = completed + error + cancelled, with each
//!   vanished client counted `cancelled` and each struck call `error`;
//! - the rate limit is exact: 50 parallel requests of one session, exactly 10 admitted.
//!
//! `cargo bench -p picasso-sim --bench faults_under_load [-- STREAMS]` (default 5,000).
//! Exits 1 when any check fails. Bounded: every wait has a limit.

use futures_util::StreamExt;
use futures_util::future::join_all;
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKENS: usize = 20;
const GAP_MS: u64 = 25;
const TENANT: &str = "fo85e6a06dcdf4";

fn scenario() -> String {
    let tokens: Vec<String> = (0..TOKENS)
        .map(|i| format!("{{ text = \"t{i:02} \", delay_ms = {GAP_MS} }}"))
        .collect();
    format!(
        r#"name = "faults-under-load"
seed = 11

[[tenants]]
hash = "{TENANT}"
name = "Foster Village"
streaming_enabled = true
streaming_percentage = 100
streaming_model = "anthropic.claude-3-haiku-20240307-v1:0"
allowed_origins = ["https://fostervillage.org"]

[[answers]]
id = "load"
pattern = "."
tokens = [{}]

[[faults]]
where = "bedrock"
kind = "exception"
after_tokens = 3
probability = 0.05
via = "gateway"
"#,
        tokens.join(", ")
    )
}

fn expected_text() -> String {
    (0..TOKENS).map(|i| format!("t{i:02} ")).collect()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The `serve` child, killed on drop.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How one client's stream went.
#[derive(Debug, Default)]
struct Seen {
    status: u16,
    text: String,
    end: bool,
    error_code: Option<String>,
    vanished: bool,
}

async fn one_stream(client: reqwest::Client, url: String, vanish: bool) -> Seen {
    let mut seen = Seen::default();
    let Ok(response) = client
        .get(&url)
        .header("accept", "text/event-stream")
        .send()
        .await
    else {
        return seen;
    };
    seen.status = response.status().as_u16();
    let mut body = response.bytes_stream();
    let mut buf = String::new();
    let mut frames = 0;
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout(Duration::from_secs(60), body.next()).await
    {
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) else {
                continue;
            };
            let v: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
            match v["type"].as_str() {
                Some("text") => seen.text.push_str(v["content"].as_str().unwrap_or("")),
                Some("end") => seen.end = true,
                Some("error") => seen.error_code = v["code"].as_str().map(str::to_owned),
                _ => {}
            }
            frames += 1;
            if vanish && frames == 2 {
                seen.vanished = true;
                return seen; // drops the body: the connection closes mid-stream
            }
        }
    }
    seen
}

/// `name{labels} value` lines of the Prometheus text, summed by `name` and a label filter.
fn metric_sum(text: &str, name: &str, label: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(name) && (label.is_empty() || l.contains(label)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::main]
async fn main() {
    let streams: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5_000);
    // The clients need one descriptor a stream; `serve` inherits the raised limit.
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let want = rustix::process::Rlimit {
        current: Some(65_536),
        maximum: Some(65_536),
    };
    if rustix::process::setrlimit(rustix::process::Resource::Nofile, want).is_err() {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        let _ = rustix::process::setrlimit(rustix::process::Resource::Nofile, raised);
    }

    let dir = std::env::temp_dir().join(format!("faults-under-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let file = dir.join("load.toml");
    std::fs::write(&file, scenario()).expect("write the scenario");
    let (master, gateway, bedrock) = (free_port(), free_port(), free_port());
    let _serve = Serve(
        Command::new(env!("CARGO_BIN_EXE_picasso-sim"))
            .args(["serve", file.to_str().unwrap_or_default()])
            .args(["--master-port", &master.to_string()])
            .args(["--gateway-port", &gateway.to_string()])
            .args(["--bedrock-port", &bedrock.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start picasso-sim serve"),
    );
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .expect("a client");
    let gw = format!("http://127.0.0.1:{gateway}");
    let br = format!("http://127.0.0.1:{bedrock}");
    let mut up = false;
    for _ in 0..200 {
        if client.get(format!("{gw}/metrics")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "serve did not come up within 10 s");

    println!("streams: {streams} at once, {TOKENS} tokens × {GAP_MS} ms each");
    let started = Instant::now();
    let runs = (0..streams).map(|i| {
        let url = format!(
            "{gw}/?tenant_hash={TENANT}&user_input=load+{i}&session_id=s{i}&message_id=m{i}"
        );
        tokio::spawn(one_stream(client.clone(), url, i % 10 == 0))
    });
    let seen: Vec<Seen> = join_all(runs)
        .await
        .into_iter()
        .map(|r| r.unwrap_or_default())
        .collect();
    let wall = started.elapsed();

    // Quiet: no call in progress, no stream open (bounded wait).
    let mut journal = serde_json::Value::Null;
    let mut metrics = String::new();
    for _ in 0..100 {
        journal = client
            .get(format!("{br}/__admin/requests"))
            .send()
            .await
            .expect("journal")
            .json_like()
            .await;
        metrics = client
            .get(format!("{gw}/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .unwrap_or_default();
        let in_progress = count(&journal, |e| e["outcome"] == "in_progress");
        if in_progress == 0 && metric_sum(&metrics, "gateway_open_streams ", "") == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let entries = journal.as_array().cloned().unwrap_or_default();
    let struck: BTreeMap<String, bool> = entries
        .iter()
        .filter_map(|e| Some((e["message"].as_str()?.to_owned(), e["outcome"] == "fault")))
        .collect();
    let expected = expected_text();
    let (mut vanished, mut full, mut struck_error, mut wrong) = (0, 0, 0, Vec::new());
    let mut vanished_struck = 0u64;
    for (i, s) in seen.iter().enumerate() {
        let was_struck = struck.get(&format!("m{i}")).copied().unwrap_or(false);
        if s.vanished {
            vanished += 1;
            vanished_struck += u64::from(was_struck);
        } else if s.status == 200 && s.end && s.text == expected && !was_struck {
            full += 1;
        } else if s.status == 200 && was_struck && s.error_code.as_deref() == Some("STREAM_001") {
            struck_error += 1;
        } else {
            wrong.push(i);
        }
    }
    let leaked_calls = count(&journal, |e| e["outcome"] == "in_progress");
    let open = metric_sum(&metrics, "gateway_open_streams ", "");
    let requests = metric_sum(&metrics, "gateway_requests_total", "route=\"stream\"");
    let outcome = |o: &str| {
        metric_sum(
            &metrics,
            "gateway_stream_outcomes_total",
            &format!("outcome=\"{o}\""),
        )
    };
    let (completed, errors, cancelled) =
        (outcome("completed"), outcome("error"), outcome("cancelled"));
    let struck_calls = struck.values().filter(|s| **s).count();

    // The rate limit under 50 parallel requests of one session.
    let parallel = (0..50).map(|i| {
        let url =
            format!("{gw}/?tenant_hash={TENANT}&user_input=rate&session_id=rate-1&message_id=r{i}");
        let client = client.clone();
        async move {
            client
                .get(url)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    });
    let statuses = join_all(parallel).await;
    let admitted = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();

    println!("wall time: {:.2} s", wall.as_secs_f64());
    println!("vanished clients: {vanished}");
    println!("surviving clients with the full answer: {full}");
    println!("surviving clients whose call was struck (STREAM_001 frame): {struck_error}");
    println!("surviving clients with anything else: {}", wrong.len());
    println!("Bedrock calls: {} ({struck_calls} struck)", entries.len());
    println!("leaked Bedrock calls (in_progress): {leaked_calls}");
    println!("leaked streams (open-stream gauge): {open}");
    println!(
        "metrics: requests {requests} = completed {completed} + error {errors} + cancelled {cancelled}"
    );
    println!(
        "vanished clients counted: {cancelled} cancelled, {} completed, {} error (the server had sent it all before it saw them leave; {vanished_struck} of the vanished had a struck call)",
        completed.saturating_sub(full as u64),
        errors.saturating_sub(struck_error as u64)
    );
    println!(
        "rate limit, 50 parallel requests of one session: {admitted} admitted, {limited} × 429"
    );

    let mut failures = Vec::new();
    let mut check = |ok: bool, what: &str| {
        if !ok {
            failures.push(what.to_owned());
        }
    };
    check(leaked_calls == 0, "leaked Bedrock calls");
    check(open == 0, "leaked streams");
    check(
        wrong.is_empty(),
        "a surviving client without its full answer",
    );
    check(
        full + struck_error + vanished == streams,
        "clients unaccounted for",
    );
    check(requests == streams as u64, "stream requests counted");
    check(
        requests == completed + errors + cancelled,
        "requests = completed + error + cancelled",
    );
    // Each vanished client is counted once, as what the server last sent it: cancelled
    // if it left mid-stream; completed or error only if the whole answer or the struck
    // call's error frame had gone out before the server saw it leave (a client that
    // reads late). Never an error for a client whose call was not struck.
    let extra_completed = completed.saturating_sub(full as u64);
    let extra_errors = errors.saturating_sub(struck_error as u64);
    check(
        extra_completed + extra_errors + cancelled == vanished as u64,
        "each vanished client counted once",
    );
    check(
        extra_errors <= vanished_struck,
        "a vanished client is never a STREAM_001 error unless its call was struck",
    );
    check(
        errors >= struck_error as u64,
        "each struck call counted error",
    );
    check(admitted == 10 && limited == 40, "rate limit exact");
    if !wrong.is_empty() {
        let first = wrong[0];
        eprintln!("e.g. client {first}: {:?}", seen[first]);
    }
    let _ = std::fs::remove_dir_all(&dir);
    if failures.is_empty() {
        println!("all checks passed");
    } else {
        eprintln!("FAILED: {}", failures.join("; "));
        std::process::exit(1);
    }
}

fn count(journal: &serde_json::Value, f: impl Fn(&serde_json::Value) -> bool) -> usize {
    journal
        .as_array()
        .map(|a| a.iter().filter(|e| f(e)).count())
        .unwrap_or(0)
}

/// `reqwest` here has no `json` feature.
trait JsonLike {
    async fn json_like(self) -> serde_json::Value;
}

impl JsonLike for reqwest::Response {
    async fn json_like(self) -> serde_json::Value {
        let bytes = self.bytes().await.unwrap_or_default();
        serde_json::from_slice(&bytes).unwrap_or_default()
    }
}
