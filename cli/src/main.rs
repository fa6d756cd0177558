//! `picasso-sim`: the one binary users run. The command line's clap types live here
//! (a subcommand with many flags keeps its own `Args` struct beside its code, e.g.
//! `serve::ServeArgs`, so nothing repacks them), one module per subcommand beside this
//! file, and those modules only print: what they
//! print is computed by the `picasso-simulator` library (the suite, the demos, the
//! rollout rehearsal, swarm), so a team can drive the same from its own Rust tests.
//! Exit codes are 0 (all good), 1 (a check or scenario failed) and 2 (a usage or input
//! error), so scripts and CI jobs can act on them; 141 when the reader of stdout went
//! away (as a process ended by SIGPIPE), 74 when stdout cannot be written otherwise.

/// `println!` for a command's output. A reader that went away (`picasso-sim run … |
/// head`) ends the process quietly with status 141, as SIGPIPE ends `cat`, where
/// `println!` would panic; any other failure to write is reported, status 74.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            $crate::stdout_failed(e)
        }
    }};
}

/// `print!` for a command's output, as [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = write!(std::io::stdout().lock(), $($arg)*) {
            $crate::stdout_failed(e)
        }
    }};
}

mod bench;
mod demo;
mod demo_page;
mod in_order;
mod junit;
mod rollout;
mod run;
mod schema;
mod serve;
mod swarm;
mod validate;
mod world;

use clap::{Parser, Subcommand, ValueEnum};
use picasso_core::scenario::Servers;
use picasso_simulator::Policy;
use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: the simulator and the three servers allocate and
/// free small buffers per frame, and mimalloc's per-thread free lists make that cheaper
/// (`bench sim`: 3,300 → 4,300 messages/s on one core; see the README's benchmarks).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A deterministic simulation and mock environment for the Picasso streaming chat:
/// mock Bedrock, a mock Master Function, the streaming gateway, and a simulator that
/// runs the widget's logic against them in virtual time.
#[derive(Debug, Parser)]
#[command(name = "picasso-sim", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run mock Bedrock, the Master Function and the gateway on loopback, plus the demo page.
    Serve(serve::ServeArgs),
    /// Run the regression suite in the simulator.
    Run {
        /// Scenario files or directories of them; the embedded default when absent.
        scenarios: Vec<PathBuf>,
        /// Widget policy to run.
        #[arg(long, value_enum, default_value_t = PolicyArg::Corrected)]
        policy: PolicyArg,
        /// Run a JavaScript widget instead (its entry module, or a directory holding
        /// `widget.js`); may be given more than once. Judged like `corrected`.
        #[arg(long, value_name = "PATH")]
        widget: Vec<PathBuf>,
        /// Replace every scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Write a JUnit XML report here.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Run only shard K of N (1-based), for a CI matrix.
        #[arg(long, value_name = "K/N", value_parser = run::parse_shard)]
        shard: Option<(usize, usize)>,
        /// Print every job's whole transcript (to reproduce one failure).
        #[arg(long)]
        replay: bool,
        /// Run every job twice and fail if the transcripts differ.
        #[arg(long)]
        check_determinism: bool,
        /// Worker threads (default: all cores). Results do not depend on it.
        #[arg(long)]
        jobs: Option<usize>,
        /// Compare each job's transcript with DIR/transcript__<scenario>__<policy>.snap
        /// (insta's format); a missing or different snapshot fails the job, with a diff.
        #[arg(long, value_name = "DIR")]
        snapshots: Option<PathBuf>,
        /// With --snapshots: write new and changed snapshots instead of failing.
        #[arg(long, requires = "snapshots")]
        update_snapshots: bool,
        /// Run the design document's gateway and Master as written, or ours (hardened);
        /// overrides every scenario's `servers`.
        #[arg(long, value_name = "as-written|hardened")]
        servers: Option<Servers>,
        /// How the gateway and the Master call Bedrock: the official SDK (full fidelity), or
        /// `direct`, mock Bedrock's state asked in process (same transcripts, faster).
        #[arg(long, value_enum, default_value_t = TransportArg::Sdk)]
        transport: TransportArg,
    },
    /// Fault-injection demos, the three widget policies side by side; with no name, the list.
    Demo {
        /// The demo to run.
        name: Option<String>,
        /// Print each policy's whole transcript after the timeline.
        #[arg(long)]
        verbose: bool,
        /// Run the design document's gateway and Master as written, or ours (hardened).
        #[arg(long, value_name = "as-written|hardened")]
        servers: Option<Servers>,
        /// Add a JavaScript widget's column (its entry module or directory).
        #[arg(long, value_name = "PATH")]
        widget: Vec<PathBuf>,
    },
    /// Explore generated scenarios (random tenants, percentages, faults, sessions) under
    /// a policy until an invariant breaks; shrink it and write a replayable file.
    Swarm {
        /// The campaign's seed: the same seed explores the same cases.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Stop after this much wall time (500ms, 60s, 10m, 1h).
        #[arg(long, default_value = "60s", value_parser = swarm::parse_duration)]
        time: std::time::Duration,
        /// Stop after this many cases.
        #[arg(long)]
        cases: Option<u64>,
        /// Widget policy under test (one).
        #[arg(long, value_enum, default_value_t = PolicyArg::Corrected)]
        policy: PolicyArg,
        /// Run a JavaScript widget instead of a policy (its entry module, or a directory
        /// holding `widget.js`).
        #[arg(long, value_name = "PATH", conflicts_with = "policy")]
        widget: Option<PathBuf>,
        /// Worker threads (default: all cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Where to write the shrunk scenario (default target/swarm/<name>.toml).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// How the gateway and the Master call Bedrock: the official SDK, or `direct` (same
        /// transcripts, several times more cases per second).
        #[arg(long, value_enum, default_value_t = TransportArg::Sdk)]
        transport: TransportArg,
    },
    /// Measure: mock Bedrock or the whole world (served in a child process, this process
    /// the clients) or the simulator; --json for CI.
    Bench(bench::BenchArgs),
    /// Rehearse the design document's rollout on a simulated population.
    Rollout {
        /// Scenario with a [rollout] section; the embedded rollout rehearsal when absent.
        scenario: Option<PathBuf>,
        /// Write an HTML report with charts here.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        /// Write every step's dashboard, criteria (value, threshold, pass) and decision
        /// as JSON here, for CI.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Replace the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Check scenario files; names file, line, column and field of every problem.
    Validate {
        /// Scenario files (TOML), or directories of them (their `.toml` files, as `run` reads them).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the scenario format's JSON Schema.
    Schema,
}

/// `--policy` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PolicyArg {
    /// The design document's hook as written.
    AsWritten,
    /// The usual first patch (onerror tolerates transient errors).
    NaiveFix,
    /// The corrected per-message state machine.
    Corrected,
    /// All three.
    All,
}

/// `--transport` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum TransportArg {
    /// The official AWS SDK over mock Bedrock's router.
    Sdk,
    /// Mock Bedrock's state asked directly (the campaign transport).
    Direct,
}

impl From<TransportArg> for picasso_simulator::Transport {
    fn from(t: TransportArg) -> Self {
        match t {
            TransportArg::Sdk => picasso_simulator::Transport::Sdk,
            TransportArg::Direct => picasso_simulator::Transport::Direct,
        }
    }
}

impl PolicyArg {
    fn policies(self) -> Vec<Policy> {
        match self {
            PolicyArg::AsWritten => vec![Policy::AsWritten],
            PolicyArg::NaiveFix => vec![Policy::NaiveFix],
            PolicyArg::Corrected => vec![Policy::Corrected],
            PolicyArg::All => Policy::ALL.to_vec(),
        }
    }
}

/// What a subcommand reports back: how the process should exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Everything checked out.
    Ok,
    /// A check or a scenario failed.
    Failed,
    /// The input could not be used (unreadable file, bad arguments).
    InputError,
}

impl From<Status> for ExitCode {
    fn from(s: Status) -> ExitCode {
        match s {
            Status::Ok => ExitCode::SUCCESS,
            Status::Failed => ExitCode::from(1),
            Status::InputError => ExitCode::from(2),
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap: help and version are not errors.
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_logging();
    let status = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Run {
            scenarios,
            policy,
            widget,
            seed,
            junit,
            shard,
            replay,
            check_determinism,
            jobs,
            snapshots,
            update_snapshots,
            servers,
            transport,
        } => {
            let policies = if widget.is_empty() {
                policy.policies()
            } else {
                match js_widgets(&widget) {
                    Ok(p) => p,
                    Err(status) => return status.into(),
                }
            };
            run::run(run::RunConfig {
                scenarios,
                policies,
                seed,
                junit,
                shard,
                transcripts: replay,
                check_determinism,
                threads: jobs
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
                snapshots: snapshots.map(|dir| picasso_simulator::suite::golden::GoldenDir {
                    dir,
                    update: update_snapshots,
                }),
                servers,
                transport: transport.into(),
            })
        }
        Command::Demo {
            name,
            verbose,
            servers,
            widget,
        } => match js_widgets(&widget) {
            Ok(extra) => demo::run(name.as_deref(), verbose, servers, &extra),
            Err(status) => status,
        },
        Command::Rollout {
            scenario,
            html,
            json,
            seed,
        } => rollout::run(scenario.as_deref(), html.as_deref(), json.as_deref(), seed),
        Command::Swarm {
            seed,
            time,
            cases,
            policy,
            widget,
            jobs,
            out,
            transport,
        } => {
            // How the replay line names what ran: `--policy NAME` or `--widget PATH`.
            let chosen = match &widget {
                Some(path) => js_widgets(std::slice::from_ref(path))
                    .map(|mut p| (p.remove(0), format!("--widget {}", path.display()))),
                None => swarm::policy(policy)
                    .map(|p| (p, format!("--policy {p}")))
                    .map_err(|e| {
                        eprintln!("error: {e}");
                        Status::InputError
                    }),
            };
            match chosen {
                Ok((policy, selector)) => swarm::run(
                    picasso_simulator::swarm::SwarmConfig {
                        seed,
                        policy,
                        time,
                        max_cases: cases,
                        jobs: jobs.unwrap_or_else(|| {
                            std::thread::available_parallelism().map_or(1, |n| n.get())
                        }),
                        transport: transport.into(),
                    },
                    &selector,
                    out,
                ),
                Err(status) => status,
            }
        }
        Command::Bench(args) => bench::run(args),
        Command::Validate { files } => validate::run(&files),
        Command::Schema => schema::run(),
    };
    status.into()
}

/// Loads `--widget` files; an unreadable one is an input error (exit 2).
fn js_widgets(paths: &[PathBuf]) -> Result<Vec<Policy>, Status> {
    paths.iter().map(|p| js_widget(p).map(Policy::Js)).collect()
}

/// Loads one `--widget`; an unreadable one is an input error, reported here (the error
/// names the path).
fn js_widget(path: &std::path::Path) -> Result<picasso_simulator::widget::js::JsWidgetId, Status> {
    picasso_simulator::widget::js::register(path).map_err(|e| {
        eprintln!("error: --widget {e}");
        Status::InputError
    })
}

/// Logs to stderr, `RUST_LOG` to choose (default: warnings, and the servers' info lines).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,gateway=info,mock_master=info,mock_bedrock=info,aws_smithy_runtime::client::http::connection_poisoning=off")
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Ends the process after a failed write to stdout (see [`outln!`]).
fn stdout_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(141);
    }
    eprintln!("error: cannot write to stdout: {e}");
    std::process::exit(74)
}
