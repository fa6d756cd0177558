//! The regression suite as library code: jobs (a scenario under a policy) loaded from
//! files and directories, run on all cores in job order, each with what it found, and
//! golden transcripts ([`golden`]) in insta's format. `picasso-sim run` prints these; a
//! team can drive the same suite from its own Rust tests.

pub mod golden;

use crate::Policy;
use golden::SnapshotCheck;
use picasso_core::{Scenario, load_file};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One scenario under one policy.
#[derive(Debug, Clone)]
pub struct Job {
    /// Short name: the file stem, or `default`.
    pub name: String,
    /// Where the scenario came from: a path, or `<default>`.
    pub source: String,
    /// The scenario (seed already overridden if asked).
    pub scenario: Arc<Scenario>,
    /// The widget policy.
    pub policy: Policy,
    /// How the gateway and the Master call Bedrock (`run --transport`; the SDK by default).
    pub transport: crate::Transport,
}

/// Counts for the summary table.
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    /// Messages sent.
    pub messages: usize,
    /// Streams opened.
    pub streams: u32,
    /// Fallbacks triggered.
    pub fallbacks: u32,
    /// Messages that ended with an error shown.
    pub errors_shown: usize,
    /// Bedrock calls made.
    pub bedrock_calls: usize,
}

/// What one job found.
#[derive(Debug, Clone)]
pub struct JobResult {
    /// The job.
    pub job: Job,
    /// The transcript.
    pub transcript: String,
    /// Broken invariants, one line each.
    pub violations: Vec<String>,
    /// Counts.
    pub summary: Summary,
    /// One line per message: how it was sent and what the user saw.
    pub seen: Vec<String>,
    /// The simulation could not run, or was not deterministic.
    pub error: Option<String>,
    /// With `--snapshots`: the transcript against its snapshot file.
    pub snapshot: Option<SnapshotCheck>,
    /// Wall time.
    pub wall: Duration,
}

impl JobResult {
    /// A job passes when it ran, and, under the corrected policy, broke no invariant.
    /// The other two policies are expected to show their defects.
    pub fn passed(&self) -> bool {
        self.error.is_none()
            && !self.snapshot.as_ref().is_some_and(|s| s.verdict.failed())
            && (!self.job.policy.judged() || self.violations.is_empty())
    }

    /// One word or phrase for the table.
    pub fn verdict(&self) -> String {
        match (self.passed(), self.violations.len()) {
            (false, _) => "FAILED".into(),
            (true, 0) => "ok".into(),
            (true, n) => format!("ok ({n} expected defects)"),
        }
    }
}

/// Expands files and directories (their `*.toml`, sorted) into jobs, one per policy.
/// No paths: the embedded default scenario.
pub fn load_jobs(
    paths: &[PathBuf],
    policies: &[Policy],
    seed: Option<u64>,
    servers: Option<picasso_core::scenario::Servers>,
) -> Result<Vec<Job>, String> {
    let mut scenarios: Vec<(String, String, Scenario)> = Vec::new();
    if paths.is_empty() {
        scenarios.push((
            "default".into(),
            "<default>".into(),
            Scenario::default_scenario(),
        ));
    }
    for path in paths {
        for file in expand(path)? {
            let scenario = load_file(&file).map_err(|e| e.to_string())?;
            let name = file.file_stem().map_or_else(
                || file.display().to_string(),
                |s| s.to_string_lossy().into_owned(),
            );
            scenarios.push((name, file.display().to_string(), scenario));
        }
    }
    let mut jobs = Vec::new();
    for (name, source, mut scenario) in scenarios {
        if let Some(seed) = seed {
            scenario.seed = seed;
        }
        if let Some(servers) = servers {
            scenario.servers = servers;
        }
        let scenario = Arc::new(scenario);
        for policy in policies {
            jobs.push(Job {
                name: name.clone(),
                source: source.clone(),
                scenario: scenario.clone(),
                policy: *policy,
                transport: crate::Transport::Sdk,
            });
        }
    }
    Ok(jobs)
}

/// A scenario path as `run` and `validate` take it: a file is itself, a directory its
/// `.toml` files in name order (none is an error that names the directory).
pub fn expand(path: &Path) -> Result<Vec<PathBuf>, String> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path)
        .map_err(|e| format!("{}: cannot read directory: {e}", path.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!(
            "{}: no .toml scenario files in this directory",
            path.display()
        ));
    }
    Ok(files)
}

/// Runs the jobs on `threads` workers; results come back in job order.
///
/// `after` runs on the worker right after each simulation, with the job's index: a
/// caller checks a snapshot there and reports progress (the CLI prints its lines in job
/// order, so a CI log is the same bytes whatever `threads` or the timing).
pub fn run_jobs(
    jobs: &[Job],
    threads: usize,
    check_determinism: bool,
    after: &(dyn Fn(usize, &mut JobResult) + Sync),
) -> Vec<JobResult> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<JobResult>>> = Mutex::new(vec![None; jobs.len()]);
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, jobs.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let mut result = simulate(job, check_determinism);
                    after(i, &mut result);
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
        .collect()
}

/// Runs one job in the simulator (the one place `run` touches the simulator's API).
pub fn simulate(job: &Job, check_determinism: bool) -> JobResult {
    let start = Instant::now();
    let mut result = JobResult {
        job: job.clone(),
        transcript: String::new(),
        violations: Vec::new(),
        summary: Summary::default(),
        seen: Vec::new(),
        error: None,
        snapshot: None,
        wall: Duration::ZERO,
    };
    let options = crate::RunOptions {
        transport: job.transport,
        ..crate::RunOptions::default()
    };
    match crate::run_with(&job.scenario, job.policy, options) {
        Ok(outcome) => {
            result.violations = outcome.violations.iter().map(ToString::to_string).collect();
            result.summary = summarize(&outcome);
            result.seen = outcome
                .messages()
                .map(|(session, m)| seen(session, m))
                .collect();
            if check_determinism {
                match crate::run_with(&job.scenario, job.policy, options) {
                    Ok(again) if again.transcript == outcome.transcript => {}
                    Ok(_) => {
                        result.error =
                            Some("not deterministic: a second run gave another transcript".into())
                    }
                    Err(e) => result.error = Some(format!("the second run failed: {e}")),
                }
            }
            result.transcript = outcome.transcript;
        }
        Err(e) => result.error = Some(e.to_string()),
    }
    result.wall = start.elapsed();
    result
}

/// What the user saw of one message, in words.
fn seen(session: &str, m: &crate::widget::MessageRecord) -> String {
    use crate::widget::{Mode, Source, Terminal};
    let clip = |t: &str| {
        if t.chars().count() <= 60 {
            format!("{t:?}")
        } else {
            format!("{:?}…", t.chars().take(59).collect::<String>())
        }
    };
    let how = match (m.mode, &m.terminal) {
        (Mode::Stream, Some(Terminal::Complete(Source::Stream))) => "streamed".to_owned(),
        (Mode::Stream, Some(Terminal::Complete(Source::Post))) => {
            "stream failed, fell back to the regular chat".to_owned()
        }
        (Mode::Regular, Some(Terminal::Complete(_))) => "regular chat".to_owned(),
        (_, Some(Terminal::Failed { code })) => format!("failed, the user sees error {code}"),
        (_, Some(Terminal::Cancelled)) => "cancelled (page closed)".to_owned(),
        (_, None) => "never ended".to_owned(),
    };
    let shown = if m.final_text.is_empty() {
        "nothing shown".to_owned()
    } else {
        clip(&m.final_text)
    };
    format!("{session}/{}: {how}: {shown}", m.id)
}

fn summarize(outcome: &crate::Outcome) -> Summary {
    use crate::widget::Terminal;
    Summary {
        messages: outcome.messages().count(),
        streams: outcome.metrics.streaming_started,
        fallbacks: outcome.metrics.fallback_triggered,
        errors_shown: outcome
            .messages()
            .filter(|(_, m)| matches!(m.terminal, Some(Terminal::Failed { .. })))
            .count(),
        // First attempts only: an SDK retry is part of the same call.
        bedrock_calls: outcome.bedrock.iter().filter(|e| e.attempt <= 1).count(),
    }
}
