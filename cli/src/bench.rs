//! `picasso-sim bench bedrock|gateway|sim [--json]`: the numbers a user quotes.
//!
//! For `bedrock` and `gateway` the server is a child process (`picasso-sim serve`, on
//! free loopback ports) and this process is only the clients, so the server's CPU and
//! memory are its own (`/proc/<pid>`). The clients are raw HTTP/1.1 and time every frame
//! by the kernel's receive timestamp (`meter`), so a client late to read does not count
//! against the server. The streams start at once (a burst), each an
//! answer of `--tokens` text deltas of 4 characters, `--gap-ms` before each. Reported:
//! time to first token (over the scripted gap), the pacing error of every later gap
//! (|arrival gap − scripted gap|) and the share of gaps under half the scripted one
//! (bunched frames), server CPU seconds and minor page faults per 1,000 frames (a burst's
//! first touch of new memory shows in both), server peak RSS, streams held. `sim` runs
//! the simulator in this process on one thread: simulated messages per second with the
//! corrected policy, and with `--widget` a JavaScript widget beside it.

mod meter;

use super::Status;
use meter::Connection;
use serde_json::json;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Target {
    /// Mock Bedrock alone (`serve --bedrock-only`), ConverseStream over HTTP/1.1.
    Bedrock,
    /// The whole world (`serve`): streams through the gateway.
    Gateway,
    /// The simulator, in this process on one thread.
    Sim,
}

/// `picasso-sim bench`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct BenchArgs {
    /// What to measure.
    #[arg(value_enum)]
    pub target: Target,
    /// Concurrent streams (bedrock, gateway) or simulated sessions (sim).
    #[arg(long, default_value_t = 1000)]
    pub streams: usize,
    /// Text deltas per answer.
    #[arg(long, default_value_t = 40)]
    pub tokens: usize,
    /// Scripted milliseconds before each delta.
    #[arg(long, default_value_t = 20)]
    pub gap_ms: u64,
    /// Bursts run one after another against the same server (bedrock, gateway): with
    /// `--streams 1 --rounds 30`, a lone client's 30 requests in a row, which is how a
    /// developer's widget meets `serve` (pooled connections, a cached tenant config).
    /// For `sim`: timed runs of each policy after the warm-up, in alternating order, of
    /// which the median is reported.
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
    /// A JavaScript widget (its directory or entry file) to measure beside the Rust
    /// corrected policy (sim): its messages per second, its ratio to the policy's round
    /// by round, and its start-up per session.
    #[arg(long, value_name = "PATH")]
    pub widget: Option<std::path::PathBuf>,
    /// Passed to `serve --pacing` (bedrock, gateway).
    #[arg(long, value_enum, default_value = "precise")]
    pub pacing: crate::serve::Pacing,
    /// Passed to `serve --bedrock-hop` (gateway).
    #[arg(long, value_enum, default_value = "in-process")]
    pub bedrock_hop: crate::serve::BedrockHop,
    /// Messages per simulated session (sim).
    #[arg(long, default_value_t = 5)]
    pub messages: usize,
    /// Measure a server already listening on this loopback port instead of starting
    /// `serve` (bedrock, gateway): another mock, a peer such as aimock, or a bare server
    /// for a floor, with the same clients and meter. Needs `--attach-pid`.
    #[arg(long, value_name = "PORT", requires = "attach_pid")]
    pub attach: Option<u16>,
    /// The attached server's process, whose CPU and faults are read from `/proc/<pid>`
    /// (its peak RSS is its own since it started, earlier work included).
    #[arg(long, value_name = "PID", requires = "attach")]
    pub attach_pid: Option<u32>,
    /// Print one JSON object instead of lines.
    #[arg(long)]
    pub json: bool,
}

/// Runs the benchmark and prints its numbers.
pub(crate) fn run(args: BenchArgs) -> Status {
    if args.widget.is_some() && args.target != Target::Sim {
        eprintln!(
            "error: bench: --widget measures a widget in the simulator: `bench sim --widget PATH`"
        );
        return Status::InputError;
    }
    if args.attach.is_some() && args.target == Target::Sim {
        eprintln!(
            "error: bench: --attach measures a served target: `bench bedrock|gateway --attach PORT --attach-pid PID`"
        );
        return Status::InputError;
    }
    let widget = match args.widget.as_deref().map(crate::js_widget).transpose() {
        Ok(widget) => widget,
        Err(status) => return status,
    };
    let result = match args.target {
        Target::Sim => sim(&args, widget),
        Target::Bedrock | Target::Gateway => served(&args),
    };
    match result {
        Ok(value) => {
            if args.json {
                outln!("{value}");
            } else {
                print_lines(&value);
            }
            Status::Ok
        }
        Err(e) => {
            eprintln!("error: bench: {e}");
            Status::Failed
        }
    }
}

fn print_lines(value: &serde_json::Value) {
    if let Some(map) = value.as_object() {
        for (k, v) in map {
            outln!("{k:<28} {v}");
        }
    }
}

/// The simulator's rate on this thread, with the corrected policy, under each transport:
/// the SDK (the default, under the keys this benchmark always had: `msgs_per_s`, …) and
/// the direct campaign transport (the same keys, `direct_` first); with `--widget`, a
/// JavaScript widget beside the policy under the SDK (`widget_` first). Each is run once
/// untimed, then `--rounds` times in alternating order; the median round is reported.
fn sim(
    args: &BenchArgs,
    widget: Option<picasso_simulator::widget::js::JsWidgetId>,
) -> Result<serde_json::Value, String> {
    use picasso_simulator::{Policy, RunOptions, Transport};
    let scenario = picasso_simulator::bench::population(args.streams, args.messages, args.tokens);
    let messages = args.streams * args.messages;
    let rounds = args.rounds.max(1);
    let mut value = json!({
        "target": "sim",
        "policy": "corrected",
        "messages": messages,
        "tokens_per_message": args.tokens,
        "rounds": rounds,
    });
    if let Some(w) = widget {
        // First, on this thread's fresh engine: later, the engine holds the closed
        // sessions of every run until its collector frees them, and a start-up would
        // measure the collector too (the runs' rates include it).
        value["widget"] = json!(w.name());
        let startup = picasso_simulator::bench::js_startup(w, 200);
        value["widget_startup_ms"] = json!(round(startup.as_secs_f64() * 1000.0, 3));
    }
    for transport in [Transport::Sdk, Transport::Direct] {
        let options = RunOptions {
            transcript: false,
            check: false,
            transport,
        };
        let mut policies = vec![("", Policy::Corrected)];
        if let (Transport::Sdk, Some(w)) = (transport, widget) {
            policies.push(("widget_", Policy::Js(w)));
        }
        let run = |policy: Policy| -> Result<(f64, picasso_simulator::Outcome), String> {
            let t0 = Instant::now();
            let outcome = picasso_simulator::run_with(&scenario, policy, options)
                .map_err(|e| e.to_string())?;
            Ok((t0.elapsed().as_secs_f64(), outcome))
        };
        // One untimed run each first: the timed ones then measure the simulator, not the
        // process's first touch of its heap (a long `swarm` or `run` is warm too; a cold
        // first run is up to 40 % slower here). A run is deterministic, so the warm-up's
        // outcome is every round's.
        let outcomes = policies
            .iter()
            .map(|(_, policy)| run(*policy).map(|(_, outcome)| outcome))
            .collect::<Result<Vec<_>, _>>()?;
        let mut walls: Vec<Vec<f64>> = vec![Vec::new(); policies.len()];
        for round in 0..rounds {
            let mut order: Vec<usize> = (0..policies.len()).collect();
            if round % 2 == 1 {
                order.reverse();
            }
            for i in order {
                walls[i].push(run(policies[i].1)?.0);
            }
        }
        let transport_prefix = match transport {
            Transport::Sdk => "",
            Transport::Direct => "direct_",
        };
        for (((policy_prefix, _), outcome), walls) in policies.iter().zip(&outcomes).zip(&walls) {
            let prefix = format!("{transport_prefix}{policy_prefix}");
            let wall = picasso_simulator::bench::median(walls);
            value[format!("{prefix}wall_s")] = json!(round(wall, 3));
            value[format!("{prefix}msgs_per_s")] = json!(round(messages as f64 / wall, 0));
            value[format!("{prefix}simulated_s_per_wall_s")] =
                json!(round(outcome.end_ms as f64 / 1000.0 / wall, 1));
            value[format!("{prefix}bedrock_calls")] = json!(outcome.bedrock.len());
        }
        if policies.len() == 2 {
            // Round by round: both ran in the same minute, whatever the machine did.
            let ratios: Vec<f64> = walls[0].iter().zip(&walls[1]).map(|(r, w)| r / w).collect();
            value["widget_vs_corrected_pct"] =
                json!(round(picasso_simulator::bench::median(&ratios) * 100.0, 1));
        }
    }
    Ok(value)
}

fn round(v: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (v * m).round() / m
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

/// The served world, killed on drop.
struct ServedChild(Child);

impl Drop for ServedChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The benchmark's scenario: one streaming tenant, one answer of `tokens` deltas.
fn scenario_text(tokens: usize, gap_ms: u64) -> String {
    let list: Vec<String> = (0..tokens)
        .map(|_| format!("{{ text = \"tok \", delay_ms = {gap_ms} }}"))
        .collect();
    format!(
        r#"name = "bench"
seed = 1

[[tenants]]
hash = "fo85e6a06dcdf4"
name = "Foster Village"
streaming_enabled = true
streaming_percentage = 100
allowed_origins = ["https://fostervillage.org"]

[[answers]]
id = "bench"
pattern = "."
tokens = [{}]

[limits]
rate_limit = 4294967295
heartbeat_ms = 0
"#,
        list.join(", ")
    )
}

/// What a process has used so far: CPU seconds in user space and in the kernel, and
/// minor page faults.
#[derive(Debug, Clone, Copy)]
struct ProcStat {
    user_s: f64,
    system_s: f64,
    minor_faults: u64,
}

/// The process's [`ProcStat`] from `/proc/<pid>/stat`.
fn proc_stat(pid: u32) -> Result<ProcStat, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("cannot read /proc/{pid}/stat: {e}"))?;
    // Fields after the command name (which may hold spaces), from field 3 on.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let per_s = rustix::param::clock_ticks_per_second() as f64;
    // minflt is field 10, utime 14, stime 15: indices 7, 11 and 12 after the name.
    Ok(ProcStat {
        user_s: ticks(11) as f64 / per_s,
        system_s: ticks(12) as f64 / per_s,
        minor_faults: ticks(7),
    })
}

/// Peak resident memory of a process, MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| round(kib / 1024.0, 1))
}

/// Starts `picasso-sim serve` on free ports and waits until `wait_port` accepts.
fn start_serve(args: &BenchArgs, dir: &std::path::Path) -> Result<(ServedChild, u16, u16), String> {
    let file = dir.join("bench.toml");
    std::fs::write(&file, scenario_text(args.tokens, args.gap_ms))
        .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    let (master, gateway, bedrock) = (free_port()?, free_port()?, free_port()?);
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(exe);
    cmd.arg("serve")
        .arg(&file)
        .args(["--master-port", &master.to_string()])
        .args(["--gateway-port", &gateway.to_string()])
        .args(["--bedrock-port", &bedrock.to_string()])
        .args(["--bedrock-hop", &value_name(args.bedrock_hop)])
        .args(["--pacing", &value_name(args.pacing)])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if args.target == Target::Bedrock {
        cmd.arg("--bedrock-only");
    }
    let child = ServedChild(
        cmd.spawn()
            .map_err(|e| format!("cannot start serve: {e}"))?,
    );
    let wait_port = if args.target == Target::Bedrock {
        bedrock
    } else {
        gateway
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], wait_port));
    for _ in 0..200 {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return Ok((child, gateway, bedrock));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err("serve did not come up within 10 s".into())
}

/// One stream's arrival times of its text deltas.
#[derive(Debug, Default)]
struct Arrivals {
    sent: Option<meter::Nanos>,
    tokens: Vec<meter::Nanos>,
}

/// Runs the burst against a served world and measures it.
fn served(args: &BenchArgs) -> Result<serde_json::Value, String> {
    raise_fd_limit();
    let dir = std::env::temp_dir().join(format!("picasso-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let (child, pid, gateway, bedrock) = match (args.attach, args.attach_pid) {
        (Some(port), Some(pid)) => (None, pid, port, port),
        _ => {
            let (child, gateway, bedrock) = start_serve(args, &dir)?;
            let pid = child.0.id();
            (Some(child), pid, gateway, bedrock)
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    meter::kernel_timestamps().map_err(|e| format!("kernel receive timestamps: {e}"))?;
    let unstamped_before = meter::UNSTAMPED_READS.load(std::sync::atomic::Ordering::Relaxed);
    let reads_before = meter::READS.load(std::sync::atomic::Ordering::Relaxed);
    let before = proc_stat(pid)?;
    let target = args.target;
    let streams = args.streams;
    let started = Instant::now();
    let rounds = args.rounds.max(1);
    // A burst is that many clients, each on a connection of its own; with rounds, each
    // client makes its requests in a row on its one kept-alive connection, as a
    // browser's EventSource reuses an idle connection to the same origin.
    let arrivals: Vec<Arrivals> = runtime.block_on(async {
        let port = match target {
            Target::Bedrock => bedrock,
            _ => gateway,
        };
        let clients: Vec<_> = (0..streams)
            .map(|i| {
                tokio::spawn(async move {
                    let mut out = Vec::with_capacity(rounds);
                    // The first request's time to first token counts from before its
                    // connection was opened, as a page's first request waits for it.
                    let opening = meter::now();
                    let mut conn = Connection::open(port).await.ok();
                    for round in 0..rounds {
                        let n = round * streams + i;
                        let mut a = match conn.as_mut() {
                            None => Arrivals::default(),
                            Some(c) if target == Target::Bedrock => {
                                bedrock_stream(c, port, n).await
                            }
                            Some(c) => gateway_stream(c, port, n).await,
                        };
                        if round == 0 {
                            a.sent = a.sent.map(|_| opening);
                        }
                        out.push(a);
                    }
                    out
                })
            })
            .collect();
        let mut out = Vec::with_capacity(streams * rounds);
        for c in clients {
            out.extend(c.await.unwrap_or_default());
        }
        out
    });
    let wall = started.elapsed().as_secs_f64();
    let after = proc_stat(pid)?;
    let user = after.user_s - before.user_s;
    let system = after.system_s - before.system_s;
    let faults = after.minor_faults - before.minor_faults;
    let rss = peak_rss_mib(pid);
    drop(child);
    let _ = std::fs::remove_dir_all(&dir);

    let gap = args.gap_ms as f64;
    let mut ttft: Vec<f64> = Vec::new();
    let mut errors: Vec<f64> = Vec::new();
    let mut frames = 0usize;
    let mut complete = 0usize;
    // Gaps under half the scripted gap: frames sent (or read) in a bunch.
    let mut bunched = 0usize;
    for a in &arrivals {
        frames += a.tokens.len();
        complete += usize::from(a.tokens.len() == args.tokens);
        if let (Some(sent), Some(first)) = (a.sent, a.tokens.first()) {
            ttft.push(meter::ms(sent, *first) - gap);
        }
        for w in a.tokens.windows(2) {
            let g = meter::ms(w[0], w[1]);
            errors.push((g - gap).abs());
            bunched += usize::from(g < gap / 2.0);
        }
    }
    let per_1000_frames = |cpu_s: f64| round(cpu_s / (frames.max(1) as f64) * 1000.0, 4);
    let q = |v: &mut Vec<f64>, p: f64| -> f64 {
        if v.is_empty() {
            return 0.0;
        }
        v.sort_by(f64::total_cmp);
        let i = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
        round(v[i], 2)
    };
    Ok(json!({
        "target": match target { Target::Bedrock => "bedrock", _ => "gateway" },
        "streams": streams,
        "rounds": rounds,
        "pacing": value_name(args.pacing),
        "bedrock_hop": value_name(args.bedrock_hop),
        "streams_complete": complete,
        "tokens_per_stream": args.tokens,
        "scripted_gap_ms": args.gap_ms,
        "frames": frames,
        "wall_s": round(wall, 2),
        "ttft_over_script_ms_p50": q(&mut ttft, 0.5),
        "ttft_over_script_ms_p99": q(&mut ttft, 0.99),
        "pacing_error_ms_p50": q(&mut errors, 0.5),
        "pacing_error_ms_p99": q(&mut errors, 0.99),
        "bunched_gaps_pct": round(bunched as f64 * 100.0 / errors.len().max(1) as f64, 2),
        "server_cpu_s_per_1000_frames": per_1000_frames(user + system),
        // The split: on loopback the kernel's share includes the receiving socket's TCP
        // work, which Linux runs on the sending thread (see README, Benchmarks).
        "server_user_cpu_s_per_1000_frames": per_1000_frames(user),
        "server_system_cpu_s_per_1000_frames": per_1000_frames(system),
        "server_page_faults_per_1000_frames": round(faults as f64 / (frames.max(1) as f64) * 1000.0, 1),
        "server_peak_rss_mib": rss,
        // Reads stamped in user space because the kernel gave no time (rare, but CI under
        // load met some: `meter::UNSTAMPED_READS`), and every read, to weigh them by.
        "client_reads_without_kernel_time": meter::UNSTAMPED_READS.load(std::sync::atomic::Ordering::Relaxed) - unstamped_before,
        "client_reads": meter::READS.load(std::sync::atomic::Ordering::Relaxed) - reads_before,
    }))
}

/// One ConverseStream call on `conn`; the kernel receive time of each
/// `contentBlockDelta` frame (the event-stream prelude's total length splits the frames).
async fn bedrock_stream(conn: &mut Connection, port: u16, i: usize) -> Arrivals {
    let body = json!({"messages": [{"role": "user", "content": [{"text": format!("bench {i}")}]}]})
        .to_string();
    let request = format!(
        "POST /model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream HTTP/1.1\r\n\
         host: 127.0.0.1:{port}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut a = Arrivals::default();
    let mut buf: Vec<u8> = Vec::new();
    let exchange = conn
        .exchange(request.as_bytes(), |at, bytes| {
            buf.extend_from_slice(bytes);
            while buf.len() >= 4 {
                let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                if len < 16 || buf.len() < len {
                    break;
                }
                let frame: Vec<u8> = buf.drain(..len).collect();
                if contains(&frame, b"contentBlockDelta") {
                    a.tokens.push(at);
                }
            }
        })
        .await;
    a.sent = exchange.ok().filter(|e| e.status == 200).map(|e| e.sent);
    a
}

/// One stream through the gateway on `conn`; the kernel receive time of each text frame.
async fn gateway_stream(conn: &mut Connection, port: u16, i: usize) -> Arrivals {
    let request = format!(
        "GET /?tenant_hash=fo85e6a06dcdf4&user_input=bench+{i}&session_id=b{i}&message_id=m{i} HTTP/1.1\r\n\
         host: 127.0.0.1:{port}\r\naccept: text/event-stream\r\n\r\n"
    );
    let mut a = Arrivals::default();
    let mut buf: Vec<u8> = Vec::new();
    let exchange = conn
        .exchange(request.as_bytes(), |at, bytes| {
            buf.extend_from_slice(bytes);
            while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
                let frame: Vec<u8> = buf.drain(..end + 2).collect();
                if contains(&frame, br#""type": "text""#) {
                    a.tokens.push(at);
                }
            }
        })
        .await;
    a.sent = exchange.ok().filter(|e| e.status == 200).map(|e| e.sent);
    a
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A flag value as the command line spells it.
fn value_name(value: impl clap::ValueEnum) -> String {
    value
        .to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default()
}

/// Thousands of streams need thousands of descriptors (the child inherits the limit).
fn raise_fd_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let want = Rlimit {
        current: Some(65_536),
        maximum: Some(65_536),
    };
    if setrlimit(Resource::Nofile, want).is_err() {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            },
        );
    }
}
