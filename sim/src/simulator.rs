//! Runs a scenario: a fresh world, every session, the transcript, the checks.
//!
//! Each run builds its own `current_thread` runtime with a paused clock, so a 30 s
//! timeout costs microseconds and nothing depends on the machine: no sockets, no wall
//! clock, no thread placement. Sessions are spawned in file order and joined in file
//! order; every `select!` is `biased;`; maps are `BTreeMap`s. The same scenario and seed
//! therefore give the same transcript, byte for byte ([`check_determinism`]).

use crate::driver::{self, Log, SessionResult, StreamRequest};
use crate::invariants::{self, Violation};
use crate::widget::{Metrics, Policy, Terminal};
use mock_bedrock::JournalEntry;
use picasso_core::scenario::Scenario;
use picasso_world::Transport;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

/// Why a run could not happen at all (a failed check is not an error: see [`Outcome::violations`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The tokio runtime could not be built.
    #[error("cannot build the simulation runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// A session's task panicked: a bug in the simulator or a server.
    #[error("session {session} crashed: {message}")]
    SessionCrashed {
        /// The session.
        session: String,
        /// The panic message.
        message: String,
    },
}

/// Options of a run.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Write the transcript (off for benchmarks).
    pub transcript: bool,
    /// Check the invariants.
    pub check: bool,
    /// How the gateway and the Master get their answers from mock Bedrock: the official SDK
    /// (the default, full fidelity) or the direct campaign transport, which gives the
    /// same transcripts about twice as fast (`picasso_world::DirectTransport`).
    pub transport: Transport,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            transcript: true,
            check: true,
            transport: Transport::Sdk,
        }
    }
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The policy run.
    pub policy: Policy,
    /// The transcript: timeline, Bedrock calls, per-message results, metrics, checks.
    pub transcript: String,
    /// Per session: its messages' records, metrics and leaks.
    pub sessions: Vec<SessionResult>,
    /// All sessions' metrics added up.
    pub metrics: Metrics,
    /// Mock Bedrock's journal: every call, in arrival order.
    pub bedrock: Vec<JournalEntry>,
    /// Every streaming GET, as the network saw it.
    pub streams: Vec<StreamRequest>,
    /// Broken invariants (empty when all hold).
    pub violations: Vec<Violation>,
    /// Virtual time when the last session closed.
    pub end_ms: u64,
    /// The gateway's refusals and error frames by code, as its `/metrics` counts them
    /// (server-side knowledge: never shown to a widget).
    pub gateway_errors: std::collections::BTreeMap<String, u64>,
}

/// First-attempt Bedrock calls by session and message, counted in one pass over the
/// journal: what asks for every message builds one of these rather than scanning the
/// journal per message (that scan made a run of 20 sessions × 1,000 messages spend a
/// third of its time comparing ids).
#[derive(Debug, Default)]
pub struct BedrockCalls(BTreeMap<String, BTreeMap<String, usize>>);

impl BedrockCalls {
    /// Counts `journal`.
    pub fn of(journal: &[JournalEntry]) -> BedrockCalls {
        let mut calls: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        for e in journal.iter().filter(|e| e.attempt <= 1) {
            if let (Some(session), Some(message)) = (&e.session, &e.message) {
                *calls
                    .entry(session.clone())
                    .or_default()
                    .entry(message.clone())
                    .or_default() += 1;
            }
        }
        BedrockCalls(calls)
    }

    /// First-attempt calls for a message of a session.
    pub fn get(&self, session: &str, message: &str) -> usize {
        self.0
            .get(session)
            .and_then(|m| m.get(message))
            .copied()
            .unwrap_or(0)
    }
}

impl Outcome {
    /// Every message with its session id.
    pub fn messages(&self) -> impl Iterator<Item = (&str, &crate::widget::MessageRecord)> {
        self.sessions
            .iter()
            .flat_map(|s| s.messages.iter().map(move |m| (s.id.as_str(), m)))
    }

    /// Bedrock calls (first attempts) made for a message of a session.
    /// (Counts the whole journal: for every message, use [`Outcome::bedrock_index`].)
    pub fn bedrock_calls(&self, session: &str, message: &str) -> usize {
        self.bedrock_index().get(session, message)
    }

    /// Bedrock calls (first attempts) for every message, counted once.
    pub fn bedrock_index(&self) -> BedrockCalls {
        BedrockCalls::of(&self.bedrock)
    }
}

/// Runs `scenario` under `policy`, with the transcript and the checks.
///
/// # Errors
/// [`SimError`] when the runtime cannot be built or a session task panics.
pub fn run_scenario(scenario: &Scenario, policy: Policy) -> Result<Outcome, SimError> {
    run_with(scenario, policy, RunOptions::default())
}

/// Runs `scenario` under `policy` with `options`.
///
/// # Errors
/// As [`run_scenario`].
pub fn run_with(
    scenario: &Scenario,
    policy: Policy,
    options: RunOptions,
) -> Result<Outcome, SimError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(SimError::Runtime)?;
    let scenario = Arc::new(scenario.clone());
    let (sessions, log, bedrock, end_ms, gateway_errors) = runtime.block_on(async {
        let world = driver::build_world(&scenario, options.transport);
        let log = Log::new(options.transcript);
        if !scenario.config_changes.is_empty() {
            let (master, changes, log) = (
                world.master.clone(),
                scenario.config_changes.clone(),
                log.clone(),
            );
            tokio::spawn(async move {
                master
                    .run_config_changes(changes, |c| {
                        driver::line(&log, "master", &format!("config change: {}", c.describe()));
                    })
                    .await;
            });
        }
        let handles: Vec<_> = scenario
            .sessions
            .iter()
            .map(|s| {
                tokio::spawn(driver::run_session(
                    world.clone(),
                    scenario.clone(),
                    s.clone(),
                    policy,
                    log.clone(),
                ))
            })
            .collect();
        let mut sessions = Vec::with_capacity(handles.len());
        for (handle, s) in handles.into_iter().zip(&scenario.sessions) {
            match handle.await {
                Ok(r) => sessions.push(r),
                Err(e) => {
                    return Err(SimError::SessionCrashed {
                        session: s.id.clone(),
                        message: e.to_string(),
                    });
                }
            }
        }
        let end_ms = driver::now_ms(&log);
        // Let the servers finish what the clients left behind (a generation kept for
        // replay, a call cut short), so the journal's outcomes are settled.
        tokio::time::sleep(Duration::from_millis(
            scenario.limits.max_stream_ms.saturating_add(5_000),
        ))
        .await;
        let bedrock = world.bedrock.journal();
        let gateway_errors = world.gateway.errors_by_code();
        Ok((sessions, log, bedrock, end_ms, gateway_errors))
    })?;
    drop(runtime);
    let (lines, streams) = {
        let mut l = driver::lock(&log);
        (std::mem::take(&mut l.lines), std::mem::take(&mut l.streams))
    };
    let mut metrics = Metrics::default();
    // Sized once: grown session by session, a large run reallocates it many times.
    metrics
        .ttft_ms
        .reserve(sessions.iter().map(|s| s.metrics.ttft_ms.len()).sum());
    for s in &sessions {
        metrics.streaming_started += s.metrics.streaming_started;
        metrics.streaming_completed += s.metrics.streaming_completed;
        metrics.streaming_failed += s.metrics.streaming_failed;
        metrics.fallback_triggered += s.metrics.fallback_triggered;
        metrics.streaming_cancelled += s.metrics.streaming_cancelled;
        metrics.ttft_ms.extend(&s.metrics.ttft_ms);
    }
    let mut outcome = Outcome {
        policy,
        transcript: String::new(),
        sessions,
        metrics,
        bedrock,
        streams,
        violations: Vec::new(),
        end_ms,
        gateway_errors,
    };
    if options.check {
        outcome.violations = invariants::check(&scenario, &outcome);
    }
    if options.transcript {
        outcome.transcript = render(&scenario, &outcome, &lines);
    }
    Ok(outcome)
}

/// Runs twice and compares the transcripts byte for byte.
///
/// # Errors
/// A description of the first difference, or of why a run failed.
pub fn check_determinism(scenario: &Scenario, policy: Policy) -> Result<(), String> {
    check_determinism_via(scenario, policy, Transport::Sdk)
}

/// [`check_determinism`] with the servers calling Bedrock through `transport`.
///
/// # Errors
/// As [`check_determinism`].
pub fn check_determinism_via(
    scenario: &Scenario,
    policy: Policy,
    transport: Transport,
) -> Result<(), String> {
    let options = RunOptions {
        transport,
        ..RunOptions::default()
    };
    let a = run_with(scenario, policy, options).map_err(|e| e.to_string())?;
    let b = run_with(scenario, policy, options).map_err(|e| e.to_string())?;
    if a.transcript == b.transcript {
        return Ok(());
    }
    let (la, lb): (Vec<_>, Vec<_>) = (
        a.transcript.lines().collect(),
        b.transcript.lines().collect(),
    );
    let i = la
        .iter()
        .zip(&lb)
        .position(|(x, y)| x != y)
        .unwrap_or(la.len().min(lb.len()));
    Err(format!(
        "{} under {}: transcripts differ at line {}:\n  run 1: {}\n  run 2: {}",
        scenario.name,
        policy.name(),
        i + 1,
        la.get(i).unwrap_or(&"(end)"),
        lb.get(i).unwrap_or(&"(end)")
    ))
}

fn render(scenario: &Scenario, outcome: &Outcome, lines: &[String]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# scenario {:?} seed {} policy {}",
        scenario.name,
        scenario.seed,
        outcome.policy.name()
    );
    let w = scenario.widget;
    let _ = writeln!(
        t,
        "# widget T_connect={} T_idle={} T_total={} T_post={} reconnect={} resume={}",
        w.connect_timeout_ms,
        w.idle_timeout_ms,
        w.total_timeout_ms,
        w.post_timeout_ms,
        w.reconnect_ms,
        w.resume
    );
    if !scenario.servers.is_hardened() {
        let _ = writeln!(t, "# servers {}", scenario.servers.name());
    }
    t.push_str("\n## timeline\n");
    for l in lines {
        t.push_str(l);
        t.push('\n');
    }
    t.push_str("\n## bedrock calls\n");
    for e in &outcome.bedrock {
        let _ = writeln!(
            t,
            "#{:<3} {:<22} via {:<7} {}/{} attempt {}: {:?}{}{} ({} tokens)",
            e.seq,
            e.operation.as_str(),
            e.caller.map_or("?", |c| c.as_str()),
            e.session.as_deref().unwrap_or("-"),
            e.message.as_deref().unwrap_or("-"),
            e.attempt,
            e.outcome,
            e.fault
                .as_deref()
                .map(|f| format!(" fault {f}"))
                .unwrap_or_default(),
            e.answer
                .as_deref()
                .map(|a| format!(" answer {a}"))
                .unwrap_or_default(),
            e.tokens_sent
        );
    }
    t.push_str("\n## messages\n");
    let calls = outcome.bedrock_index();
    for (session, m) in outcome.messages() {
        let ending = match &m.terminal {
            Some(Terminal::Complete(src)) => format!("complete({src:?})").to_lowercase(),
            Some(Terminal::Failed { code }) => format!("failed({code})"),
            Some(Terminal::Cancelled) => "cancelled".into(),
            None => "NO OUTCOME".into(),
        };
        let _ = writeln!(
            t,
            "{session}/{} {:?} {ending} shown={} gets={} posts={} bedrock={} ttft={}",
            m.id,
            m.mode,
            crate::widget::quote(&m.final_text),
            m.gets,
            m.posts,
            calls.get(session, &m.id),
            m.ttft_ms
                .map(|v| format!("{v}ms"))
                .unwrap_or_else(|| "-".into())
        );
    }
    let m = &outcome.metrics;
    let _ = writeln!(
        t,
        "\n## metrics\nstreaming_started={} streaming_completed={} streaming_failed={} fallback_triggered={} cancelled={} ttft_p50={}",
        m.streaming_started,
        m.streaming_completed,
        m.streaming_failed,
        m.fallback_triggered,
        m.streaming_cancelled,
        percentile(&m.ttft_ms, 50)
            .map(|v| format!("{v}ms"))
            .unwrap_or_else(|| "-".into())
    );
    t.push_str("\n## invariants\n");
    if outcome.violations.is_empty() {
        t.push_str("all hold\n");
    }
    for v in &outcome.violations {
        let _ = writeln!(t, "{v}");
    }
    t
}

/// The p-th percentile (nearest rank) of some samples.
pub fn percentile(samples: &[u64], p: u32) -> Option<u64> {
    if samples.is_empty() {
        return None;
    }
    let mut s = samples.to_vec();
    s.sort_unstable();
    let rank = (u64::from(p) * s.len() as u64).div_ceil(100).max(1) as usize;
    s.get(rank - 1).copied()
}
