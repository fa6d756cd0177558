//! `picasso-sim serve [SCENARIO]`: mock Bedrock, the Master Function and the streaming
//! gateway on loopback, wired to each other, plus the demo page, until Ctrl-C.
//!
//! `PUT /__admin/scenario` on the Master's port replaces the scenario in all three.
//! The scenario file is watched (its modification time, polled once a second: no
//! platform file-watcher needed) and reloaded into all three servers when it changes
//! and still validates; a file that no longer validates is reported and the running
//! scenario kept.

use super::Status;
use super::demo_page;
use super::world::{self, World};
use anyhow::Context;
use bedrock_client::{BedrockConfig, Runtime, build_client};
use mock_bedrock::MockState;
use picasso_core::{Scenario, load_file};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What `serve` was asked for: the command line's own fields, parsed by clap.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ServeArgs {
    /// Scenario file (reloaded when it changes); the embedded default when absent.
    pub scenario: Option<PathBuf>,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Master Function port (also serves the demo page at /).
    #[arg(long, default_value_t = 4100)]
    pub master_port: u16,
    /// Streaming gateway port.
    #[arg(long, default_value_t = 4101)]
    pub gateway_port: u16,
    /// Mock Bedrock port.
    #[arg(long, default_value_t = 4102)]
    pub bedrock_port: u16,
    /// Use this Bedrock endpoint (e.g. https://bedrock-runtime.us-east-1.amazonaws.com)
    /// instead of the mock; credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
    #[arg(long, conflicts_with = "bedrock_only")]
    pub bedrock_endpoint: Option<String>,
    /// Run only mock Bedrock.
    #[arg(long)]
    pub bedrock_only: bool,
    /// Add this origin to every tenant's allowed origins (repeatable), e.g. your
    /// widget's dev server: --allow-origin http://localhost:5173.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    pub allow_origins: Vec<String>,
    /// Run the design document's gateway and Master as written, or ours (hardened);
    /// overrides the scenario's `servers`.
    #[arg(long, value_name = "as-written|hardened")]
    pub servers: Option<picasso_core::scenario::Servers>,
    /// Record: send each Bedrock call to this endpoint instead of the mock (real
    /// Bedrock, signed with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
    /// AWS_SESSION_TOKEN / AWS_REGION, or any Bedrock-compatible URL, unsigned
    /// without them), pass its answers through and write them to --record-to.
    #[arg(
        long,
        value_name = "URL",
        requires = "record_to",
        conflicts_with = "bedrock_endpoint"
    )]
    pub record_from: Option<String>,
    /// Where --record-from writes the scenario with the recorded answers (rewritten
    /// after each answer; serve it to replay).
    #[arg(long, value_name = "FILE", requires = "record_from")]
    pub record_to: Option<PathBuf>,
    /// How mock Bedrock times its tokens: `precise` (a pacer thread, a fraction of a
    /// millisecond) or `tokio` (tokio's timer: whole milliseconds, 0-2 ms late).
    #[arg(long, value_enum, default_value = "precise")]
    pub pacing: Pacing,
    /// How the gateway and the Master reach mock Bedrock: `in-process` (the official
    /// SDK's whole call, signing and event-stream decoding included, handed to mock
    /// Bedrock's router without a socket: half the CPU per frame, so the mock world
    /// stays out of a load test's way) or `socket` (the SDK over loopback HTTP to the
    /// port above, every byte on the wire). Outside clients use the port either way;
    /// --bedrock-endpoint and --record-from always go over the network.
    #[arg(long, value_enum, default_value = "in-process")]
    pub bedrock_hop: BedrockHop,
    /// Keep the most recent N requests in mock Bedrock's journal (`/__admin/requests`),
    /// 0 for all: each entry holds ~400 bytes, so a load test of millions of requests
    /// would otherwise grow the server by gigabytes. Arrival numbers keep counting.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub journal_limit: usize,
    /// Keep the most recent N finished answers in the gateway, 0 for all: a repeat for
    /// a kept message (a reconnect, a resume) replays it without a second Bedrock call,
    /// and each holds its encoded frames, so a load test with a new message id per
    /// request would otherwise keep them all. Running answers are always kept.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub kept_answers: usize,
}

/// `serve --bedrock-hop`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum BedrockHop {
    /// The SDK's own HTTP client, over loopback.
    Socket,
    /// `bedrock_client::in_process`: the router, called in process.
    InProcess,
}

/// `serve --pacing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Pacing {
    /// `mock_bedrock::Clock::Precise`.
    Precise,
    /// `mock_bedrock::Clock::Tokio`.
    Tokio,
}

impl ServeArgs {
    /// `--record-from URL --record-to FILE`: a recording proxy instead of mock Bedrock.
    fn record(&self) -> Option<(String, PathBuf)> {
        self.record_from.clone().zip(self.record_to.clone())
    }
}

/// Runs the servers until Ctrl-C or SIGTERM.
pub(crate) fn run(config: ServeArgs) -> Status {
    // No transparent huge pages for the servers: a burst of new connections faulted in
    // 2 MiB pages, each zeroed whole while a worker thread waits: measured at 1,000
    // streams, pacing p99 1.4–8.5 ms and 0.0105 CPU-s per 1,000 frames with them,
    // 1.35–1.84 ms and 0.0092 without (4 runs each), and half the peak RSS. Since
    // session 23 mimalloc itself is built without them (`no_thp`, `cli/Cargo.toml`, for
    // the simulator's sake); this also keeps glibc's malloc (QuickJS's) and any other
    // allocation off them. Best effort: a kernel without the flag serves as before.
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Status::InputError;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => Status::Ok,
        Err(e) => {
            eprintln!("error: {e:#}");
            Status::InputError
        }
    }
}

fn load(path: Option<&PathBuf>) -> anyhow::Result<Scenario> {
    Ok(match path {
        Some(path) => load_file(path)?,
        None => Scenario::default_scenario(),
    })
}

/// A listener for `what` on `host:port`, bound as every world's ports are
/// (`picasso_world::listen`: a backlog of 8,192, so a burst of connections is queued).
fn bind(host: IpAddr, port: u16, what: &str) -> anyhow::Result<TcpListener> {
    picasso_world::listen(SocketAddr::new(host, port)).with_context(|| {
        format!(
            "cannot listen for {what} on {host}:{port} (choose another port with --{what}-port)"
        )
    })
}

async fn serve(config: ServeArgs) -> anyhow::Result<()> {
    let scenario = load(config.scenario.as_ref())?;
    let bedrock_listener = if config.bedrock_endpoint.is_none() {
        Some(bind(config.host, config.bedrock_port, "bedrock")?)
    } else {
        None
    };
    let shutdown = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        eprintln!("\nshutting down: open streams get a final frame, then close");
        signal.cancel();
    });

    let bedrock_state = MockState::with_clock(
        scenario.clone(),
        match config.pacing {
            Pacing::Precise => mock_bedrock::Clock::Precise,
            Pacing::Tokio => mock_bedrock::Clock::Tokio,
        },
    );
    bedrock_state.set_journal_limit(Some(config.journal_limit).filter(|&n| n > 0));
    let bedrock_url = match (&config.bedrock_endpoint, bedrock_listener) {
        (Some(url), _) => url.clone(),
        (None, Some(listener)) if config.record().is_some() => {
            record(&config, &scenario, listener, &shutdown, &mut tasks)?
        }
        (None, Some(listener)) => {
            let url = format!("http://{}", listener.local_addr()?);
            let (state, stop) = (bedrock_state.clone(), shutdown.clone());
            tasks.spawn(async move {
                mock_bedrock::serve(listener, state, stop.cancelled_owned()).await
            });
            url
        }
        (None, None) => unreachable!("a listener is bound whenever no endpoint is given"),
    };
    outln!("mock Bedrock       {bedrock_url}        (journal: {bedrock_url}/__admin/requests)");
    if config.bedrock_only {
        outln!("\nCtrl-C stops.");
        return join(tasks).await;
    }

    let bedrock_config = match &config.bedrock_endpoint {
        Some(url) => BedrockConfig::from_env(Some(url.clone())).context(
            "--bedrock-endpoint needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment",
        )?,
        None => BedrockConfig::mock(&bedrock_url),
    };
    let bedrock = match (
        &config.bedrock_endpoint,
        config.record(),
        config.bedrock_hop,
    ) {
        (None, None, BedrockHop::InProcess) => {
            outln!(
                "gateway -> Bedrock in process, through the official SDK (--bedrock-hop socket: over loopback)"
            );
            bedrock_client::in_process::client(mock_bedrock::app(bedrock_state.clone()))
        }
        _ => build_client(&bedrock_config, Runtime::default()),
    };

    let master_listener = bind(config.host, config.master_port, "master")?;
    let gateway_listener = bind(config.host, config.gateway_port, "gateway")?;
    let master_url = format!("http://{}", master_listener.local_addr()?);
    let gateway_url = format!("http://{}/", gateway_listener.local_addr()?);
    let overrides = world::Overrides::new(&master_url, &config.allow_origins, config.servers);
    let scenario = overrides.apply(scenario);

    let (master_state, gateway_state) =
        picasso_world::over_http(&scenario, &master_url, &gateway_url, bedrock);
    gateway_state.set_kept_answers_limit(Some(config.kept_answers).filter(|&n| n > 0));
    let world = World {
        scenario: Arc::new(std::sync::Mutex::new(scenario.clone())),
        bedrock: bedrock_state.clone(),
        master: master_state.clone(),
        gateway: gateway_state.clone(),
        overrides,
    };

    {
        let (state, stop) = (master_state.clone(), shutdown.clone());
        // The demo page shares the Master's origin, so its own calls need no CORS.
        let router = mock_master::app(state)
            .merge(demo_page::router(world.clone()))
            .merge(world::admin_routes(world.clone()));
        tasks.spawn(async move {
            mock_master::serve_router(master_listener, router, stop.cancelled_owned()).await
        });
    }
    {
        let (state, stop) = (gateway_state.clone(), shutdown.clone());
        tasks.spawn(async move {
            gateway::serve(gateway_listener, state, stop.cancelled_owned()).await
        });
    }
    if let Some(path) = config.scenario.clone() {
        tokio::spawn(watch(path, world.clone(), shutdown.clone()));
    }

    outln!("Master Function    {master_url}/Master_Function?action=get_config&t=<tenant_hash>");
    outln!(
        "streaming gateway  {gateway_url}   (GET ?tenant_hash=…&user_input=…&session_id=…&message_id=…)"
    );
    outln!("demo page          {master_url}/");
    outln!("metrics            {master_url}/metrics  {gateway_url}metrics");
    outln!(
        "servers            {} (--servers as-written|hardened)",
        scenario.servers.name()
    );
    outln!(
        "allowed origins    added to every tenant: {}",
        world.overrides.origins.join(", ")
    );
    outln!("\nTenants (a widget loads its config from the Master Function):");
    for t in &scenario.tenants {
        outln!(
            "  {:16} {:20} streaming {:3}  {}% of sessions  origins: {}",
            t.hash,
            t.name,
            if t.streaming_enabled { "on" } else { "off" },
            t.streaming_percentage,
            t.allowed_origins.join(", ")
        );
    }
    outln!("\nCtrl-C stops.");
    join(tasks).await
}

/// Starts the recording proxy on the Bedrock listener; returns its URL.
fn record(
    config: &ServeArgs,
    scenario: &Scenario,
    listener: TcpListener,
    shutdown: &CancellationToken,
    tasks: &mut tokio::task::JoinSet<std::io::Result<()>>,
) -> anyhow::Result<String> {
    use mock_bedrock::record::{self, HttpUpstream, Recorder, SigningKeys};
    let Some((from, to)) = &config.record() else {
        anyhow::bail!("record() needs --record-from and --record-to");
    };
    let keys = SigningKeys::from_env();
    let upstream = HttpUpstream::new(from, keys.clone()).context("--record-from")?;
    let recorder = Recorder::new(upstream, scenario.clone(), Some(to.clone()));
    let url = format!("http://{}", listener.local_addr()?);
    let stop = shutdown.clone();
    tasks.spawn(async move {
        mock_bedrock::serve_router(listener, record::app(recorder), stop.cancelled_owned()).await
    });
    outln!(
        "recording          {from} -> {} ({})",
        to.display(),
        if keys.is_some() {
            "signed with the AWS_* credentials"
        } else {
            "unsigned: no AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
        }
    );
    Ok(url)
}

async fn join(mut tasks: tokio::task::JoinSet<std::io::Result<()>>) -> anyhow::Result<()> {
    while let Some(result) = tasks.join_next().await {
        result
            .context("a server task panicked")?
            .context("a server failed")?;
    }
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            biased;
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// Reloads the scenario into every server when the file changes and still validates.
async fn watch(path: PathBuf, world: World, shutdown: CancellationToken) {
    let modified = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut last: Option<SystemTime> = modified(&path);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = modified(&path);
        if now == last {
            continue;
        }
        last = now;
        match load_file(&path) {
            Ok(scenario) => {
                world.reload(scenario);
                outln!("reloaded {}", path.display());
            }
            Err(e) => eprintln!(
                "{} changed but is not valid; keeping the running scenario:\n{e}",
                path.display()
            ),
        }
    }
}
