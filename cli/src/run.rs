//! `picasso-sim run [SCENARIO…]`: the regression suite.
//!
//! Every (scenario, policy) pair is one job. Jobs run on all cores, each in its own
//! single-threaded virtual-time world, and results are reported in job order, so the
//! output is the same whatever the thread count. `--shard K/N` keeps every N-th job,
//! so a CI matrix of N machines covers the suite exactly once. `--snapshots DIR` checks
//! every transcript against a golden file (see [`super::golden`]).

use super::Status;
use super::in_order::InOrder;
use super::junit;
use indicatif::{ProgressBar, ProgressStyle};
use picasso_simulator::Policy;
use picasso_simulator::suite::golden::{GoldenDir, Verdict};
use picasso_simulator::suite::{Job, JobResult, load_jobs, run_jobs};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;

/// What `run` was asked for, free of clap types.
#[derive(Debug, Clone)]
pub(crate) struct RunConfig {
    /// Scenario files or directories; the embedded default when empty.
    pub scenarios: Vec<PathBuf>,
    /// The policies to run.
    pub policies: Vec<Policy>,
    /// Replaces every scenario's seed.
    pub seed: Option<u64>,
    /// Where to write JUnit XML.
    pub junit: Option<PathBuf>,
    /// `(k, n)`: keep jobs whose index is `k - 1` modulo `n`.
    pub shard: Option<(usize, usize)>,
    /// Print each job's whole transcript.
    pub transcripts: bool,
    /// Run each job twice and fail if the transcripts differ.
    pub check_determinism: bool,
    /// Worker threads.
    pub threads: usize,
    /// Where the golden transcripts are, and whether to write them.
    pub snapshots: Option<GoldenDir>,
    /// Replaces every scenario's `servers`.
    pub servers: Option<picasso_core::scenario::Servers>,
    /// How the gateway and the Master call Bedrock.
    pub transport: picasso_simulator::Transport,
}

/// A progress bar on a terminal; `None` (plain lines in job order) otherwise, e.g. in
/// CI logs.
fn progress_bar(len: usize) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed} {wide_msg}") {
        bar.set_style(style);
    }
    Some(bar)
}

/// Parses `K/N` with 1 ≤ K ≤ N.
pub(crate) fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let (k, n) = s
        .split_once('/')
        .ok_or_else(|| format!("expected K/N such as 1/4, got {s:?}"))?;
    let (k, n): (usize, usize) = (
        k.trim()
            .parse()
            .map_err(|_| format!("shard index {k:?} is not a number"))?,
        n.trim()
            .parse()
            .map_err(|_| format!("shard count {n:?} is not a number"))?,
    );
    if n == 0 || k == 0 || k > n {
        return Err(format!("expected 1 <= K <= N in K/N, got {k}/{n}"));
    }
    Ok((k, n))
}

/// Keeps the jobs of shard `k` of `n`.
pub(crate) fn shard<T>(jobs: Vec<T>, shard: Option<(usize, usize)>) -> Vec<T> {
    match shard {
        None => jobs,
        Some((k, n)) => jobs
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % n == k - 1)
            .map(|(_, j)| j)
            .collect(),
    }
}

/// Runs the suite and reports.
pub(crate) fn run(config: RunConfig) -> Status {
    let jobs = match load_jobs(
        &config.scenarios,
        &config.policies,
        config.seed,
        config.servers,
    ) {
        Ok(jobs) => jobs,
        Err(e) => {
            eprintln!("{e}");
            return Status::InputError;
        }
    };
    if config.scenarios.is_empty() {
        let default = picasso_core::Scenario::default_scenario();
        outln!(
            "No scenario file given: running the embedded default scenario, {:?}:\n  {}\n",
            default.name,
            default.description
        );
    }
    let jobs: Vec<Job> = jobs
        .into_iter()
        .map(|job| Job {
            transport: config.transport,
            ..job
        })
        .collect();
    let total = jobs.len();
    let jobs: Vec<Job> = shard(jobs, config.shard);
    if let Some((k, n)) = config.shard {
        eprintln!("shard {k}/{n}: {} of {total} jobs", jobs.len());
    }
    if let Some(golden) = &config.snapshots
        && let Err(e) = prepare_snapshots(golden, &jobs)
    {
        eprintln!("{e}");
        return Status::InputError;
    }
    let bar = progress_bar(jobs.len());
    let lines: Mutex<InOrder<String>> = Mutex::new(InOrder::default());
    let after_each = |i: usize, r: &mut JobResult| {
        // A job that did not run (or not deterministically) has no transcript to pin.
        if let (Some(golden), None) = (&config.snapshots, &r.error) {
            r.snapshot = Some(golden.check(
                &r.job.name,
                r.job.policy.name(),
                &r.job.source,
                &r.transcript,
            ));
        }
        let line = format!("{} · {}: {}", r.job.name, r.job.policy.name(), r.verdict());
        match &bar {
            Some(bar) => {
                bar.set_message(line);
                bar.inc(1);
            }
            None => {
                // Off a terminal, in job order: each line once every earlier job is
                // done, printed under the lock, so release order is print order.
                let mut lines = lines.lock().unwrap_or_else(|e| e.into_inner());
                for (k, line) in lines.push(i, line) {
                    eprintln!("[{}/{}] {line}", k + 1, jobs.len());
                }
            }
        }
    };
    let results = run_jobs(&jobs, config.threads, config.check_determinism, &after_each);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if config.transcripts {
        for r in &results {
            outln!(
                "=== {} · {} ===\n{}",
                r.job.name,
                r.job.policy.name(),
                r.transcript
            );
        }
    }
    print_summary(&results);
    if let Some(golden) = &config.snapshots {
        print_snapshot_summary(golden, &results);
    }
    if results.len() <= 3 {
        print_seen(&results);
    }
    if let Some(path) = &config.junit {
        if let Err(e) = junit::write(path, &results) {
            eprintln!(
                "error: cannot write the JUnit report to {}: {e}",
                path.display()
            );
            return Status::InputError;
        }
        eprintln!("JUnit report: {}", path.display());
    }
    if results.iter().all(JobResult::passed) {
        Status::Ok
    } else {
        Status::Failed
    }
}

fn print_summary(results: &[JobResult]) {
    outln!(
        "\n{:<34} {:<11} {:>5} {:>7} {:>9} {:>6} {:>8} {:>10}  result",
        "scenario",
        "policy",
        "msgs",
        "streams",
        "fallbacks",
        "errors",
        "bedrock",
        "violations"
    );
    for r in results {
        outln!(
            "{:<34} {:<11} {:>5} {:>7} {:>9} {:>6} {:>8} {:>10}  {}",
            truncate(&r.job.name, 34),
            r.job.policy.name(),
            r.summary.messages,
            r.summary.streams,
            r.summary.fallbacks,
            r.summary.errors_shown,
            r.summary.bedrock_calls,
            r.violations.len(),
            r.verdict()
        );
    }
    let failed = results.iter().filter(|r| !r.passed()).count();
    let expected = results
        .iter()
        .filter(|r| r.passed() && !r.violations.is_empty())
        .count();
    outln!(
        "\n{} jobs: {} passed, {} failed{}",
        results.len(),
        results.len() - failed,
        failed,
        if expected > 0 {
            format!(" ({expected} with the defects their policy is expected to show)")
        } else {
            String::new()
        }
    );
    for r in results.iter().filter(|r| !r.passed()) {
        outln!("\nFAILED {} · {}:", r.job.name, r.job.policy.name());
        for v in &r.violations {
            outln!("  - {v}");
        }
        if let Some(e) = &r.error {
            outln!("  - {e}");
        }
        if let Some(failure) = r.snapshot.as_ref().and_then(|s| s.failure()) {
            let mut lines = failure.lines();
            outln!("  - {}", lines.next().unwrap_or_default());
            for line in lines {
                outln!("      {line}");
            }
        }
        let selector = match r.job.policy {
            Policy::Js(id) => format!("--widget {}", id.entry()),
            policy => format!("--policy {}", policy.name()),
        };
        outln!(
            "  replay: picasso-sim run {} {selector} --replay",
            r.job.source
        );
    }
}

/// Before any job runs: two jobs must not share a snapshot file (two scenario files
/// with one stem), and the directory must exist, or be created when updating.
fn prepare_snapshots(golden: &GoldenDir, jobs: &[Job]) -> Result<(), String> {
    let mut sources: BTreeMap<PathBuf, &str> = BTreeMap::new();
    for job in jobs {
        let path = golden.path_for(&job.name, job.policy.name());
        if let Some(other) = sources.insert(path.clone(), &job.source)
            && other != job.source
        {
            return Err(format!(
                "{} and {} would share the snapshot {}: rename one of them",
                other,
                job.source,
                path.display()
            ));
        }
    }
    let dir = &golden.dir;
    if golden.update {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("{}: cannot create the directory: {e}", dir.display()))
    } else if dir.is_dir() {
        Ok(())
    } else {
        Err(format!(
            "{}: no such directory of snapshots; run with --update-snapshots to create it",
            dir.display()
        ))
    }
}

/// One line on the snapshots: how many matched, were written, or failed.
fn print_snapshot_summary(golden: &GoldenDir, results: &[JobResult]) {
    let verdicts: Vec<&Verdict> = results
        .iter()
        .filter_map(|r| r.snapshot.as_ref().map(|s| &s.verdict))
        .collect();
    let count = |f: fn(&Verdict) -> bool| verdicts.iter().filter(|v| f(v)).count();
    let mut parts = vec![format!("{} match", count(|v| *v == Verdict::Matches))];
    if golden.update {
        parts.push(format!(
            "{} written ({} new, {} changed)",
            count(|v| matches!(v, Verdict::Written { .. })),
            count(|v| *v == Verdict::Written { new: true }),
            count(|v| *v == Verdict::Written { new: false }),
        ));
    }
    let failed = count(Verdict::failed);
    if failed > 0 {
        parts.push(format!(
            "{} missing, {} differ, {} unusable",
            count(|v| *v == Verdict::Missing),
            count(|v| matches!(v, Verdict::Differs { .. })),
            count(|v| matches!(v, Verdict::Unusable { .. })),
        ));
    }
    outln!(
        "\nsnapshots in {}: {}",
        golden.dir.display(),
        parts.join(", ")
    );
}

/// For a small run, what the user saw of each message, so the result reads without a transcript.
fn print_seen(results: &[JobResult]) {
    for r in results {
        outln!(
            "\nWhat the user saw ({} · {}):",
            r.job.name,
            r.job.policy.name()
        );
        for line in &r.seen {
            outln!("  {line}");
        }
    }
    let mut judged: Vec<&str> = Vec::new();
    for r in results.iter().filter(|r| r.job.policy.judged()) {
        if !judged.contains(&r.job.policy.name()) {
            judged.push(r.job.policy.name());
        }
    }
    if results.iter().all(JobResult::passed) && !judged.is_empty() {
        // Computed from this run: the widgets judged, and every invariant checked on it.
        let names: Vec<&str> = picasso_simulator::Property::ALL
            .iter()
            .map(|p| p.name())
            .collect();
        outln!(
            "\n{} kept all {} invariants on this run: {}.",
            judged.join(", "),
            names.len(),
            names.join(", ")
        );
        outln!(
            "Next: `picasso-sim demo` (faults, the three policies side by side), `picasso-sim run scenarios/ --policy all`,\n\
             `picasso-sim serve` (the servers and a demo page for a real browser)."
        );
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_jobs() {
        let jobs: Vec<usize> = (0..23).collect();
        for n in 1..6 {
            let mut seen: Vec<usize> = (1..=n)
                .flat_map(|k| shard(jobs.clone(), Some((k, n))))
                .collect();
            seen.sort_unstable();
            assert_eq!(seen, jobs, "n = {n}");
        }
    }

    #[test]
    fn shard_syntax() {
        assert_eq!(parse_shard("2/4"), Ok((2, 4)));
        assert!(parse_shard("0/4").is_err());
        assert!(parse_shard("5/4").is_err());
        assert!(parse_shard("x").is_err());
    }
}
