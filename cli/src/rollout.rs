//! `picasso-sim rollout [SCENARIO]`: the rollout rehearsal of
//! [`picasso_simulator::rollout`], printed: per step the dashboard, the criteria and the
//! decision tree's verdict and action; then the overall criteria and the verdict.

use super::Status;
use picasso_core::{load_file, parse_scenario};
use picasso_simulator::rollout::decision::Decision;
use picasso_simulator::rollout::metrics::{StepMetrics, quantile};
use picasso_simulator::rollout::{EMBEDDED, Rehearsal, rehearse, report, to_json};
use std::path::Path;

/// Runs the rehearsal and prints the dashboard, criteria and verdicts; exit status 1
/// when it does not pass (a rollback, a hold, or a success criterion missed).
pub(crate) fn run(
    path: Option<&Path>,
    html: Option<&Path>,
    json: Option<&Path>,
    seed: Option<u64>,
) -> Status {
    let loaded = match path {
        Some(p) => load_file(p),
        None => parse_scenario("<embedded rollout>", EMBEDDED),
    };
    let mut scenario = match loaded {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return Status::InputError;
        }
    };
    if let Some(seed) = seed {
        scenario.seed = seed;
    }
    let Some(plan) = scenario.rollout.clone() else {
        eprintln!(
            "error: the scenario has no [rollout] section (tenant, steps, sessions_per_step, messages_per_session)"
        );
        return Status::InputError;
    };
    let rehearsal = match rehearse(&scenario, &plan) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Status::Failed;
        }
    };
    print_rehearsal(&rehearsal);
    if let Some(html_path) = html {
        let title = format!(
            "Rollout rehearsal: {}",
            if scenario.name.is_empty() {
                "scenario"
            } else {
                &scenario.name
            }
        );
        let rows: Vec<(String, StepMetrics, Decision)> = rehearsal
            .runs
            .iter()
            .map(|r| (r.step.label.clone(), r.metrics.clone(), r.decision.clone()))
            .collect();
        if let Err(e) = std::fs::write(html_path, report::html(&title, &rows)) {
            eprintln!("error: cannot write {}: {e}", html_path.display());
            return Status::InputError;
        }
        outln!("report: {}", html_path.display());
    }
    if let Some(json_path) = json {
        let text = to_json(&scenario, &rehearsal);
        if let Err(e) = std::fs::write(json_path, text) {
            eprintln!("error: cannot write {}: {e}", json_path.display());
            return Status::InputError;
        }
        outln!("json: {}", json_path.display());
    }
    if rehearsal.passed() {
        Status::Ok
    } else {
        Status::Failed
    }
}

fn ms(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v}"))
}

fn pct(v: f64) -> String {
    format!("{:.2} %", v * 100.0)
}

fn print_rehearsal(r: &Rehearsal) {
    outln!(
        "{:<34} {:>8} {:>9} {:>8} {:>10} {:>9} {:>8} {:>20} {:>20}",
        "step",
        "sessions",
        "requests",
        "streams",
        "error rate",
        "fallback",
        "errors",
        "stream p50/p95/p99",
        "regular p50/p95/p99"
    );
    let q3 = |v: &[u64]| {
        format!(
            "{}/{}/{}",
            ms(quantile(v, 0.5)),
            ms(quantile(v, 0.95)),
            ms(quantile(v, 0.99))
        )
    };
    for run in &r.runs {
        let m = &run.metrics;
        outln!(
            "{:<34} {:>8} {:>9} {:>8} {:>10} {:>9} {:>8} {:>20} {:>20}",
            run.step.label,
            m.sessions,
            m.stream_requests + m.regular_requests,
            m.streaming_started,
            pct(m.error_rate()),
            pct(m.fallback_rate()),
            m.visible_errors,
            q3(&m.ttft_stream_ms),
            q3(&m.ttft_regular_ms),
        );
        let by_type: Vec<String> = m
            .gateway_errors
            .iter()
            .map(|(code, n)| {
                format!(
                    "{code} {n} ({})",
                    pct(*n as f64 / (m.stream_requests.max(1)) as f64)
                )
            })
            .collect();
        outln!(
            "    gateway error codes (its /metrics): {}",
            if by_type.is_empty() {
                "none".to_owned()
            } else {
                by_type.join(", ")
            }
        );
        for c in &run.criteria {
            outln!("    {}", c.line());
        }
        let reasons = if run.decision.reasons.is_empty() {
            String::new()
        } else {
            format!(" ({})", run.decision.reasons.join("; "))
        };
        outln!(
            "    decision tree: {}{reasons} -> {}",
            run.decision.verdict,
            run.action
        );
    }
    outln!("\noverall, steps after the baseline pooled:");
    for c in &r.overall {
        outln!("    {}", c.line());
    }
    let finals: Vec<String> = r
        .final_percentages
        .iter()
        .map(|(t, p)| format!("{t} at {p} %"))
        .collect();
    let missed: Vec<&str> = r
        .runs
        .iter()
        .flat_map(|run| &run.criteria)
        .chain(&r.overall)
        .filter(|c| c.pass == Some(false))
        .map(|c| c.name)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let verdict = match (r.ending.as_str(), missed.is_empty()) {
        ("complete", true) => {
            "rollout complete: every step passed the decision tree and every success criterion"
                .to_owned()
        }
        ("complete", false) => format!(
            "rollout complete by the decision tree, but it does NOT meet the success criteria: {}",
            missed.join(", ")
        ),
        ("rolled back", _) => {
            "ROLL BACK: streaming_percentage set to 0 (the document's instant rollback)".to_owned()
        }
        (other, _) => format!("stopped: {other}"),
    };
    outln!("verdict: {verdict}; final: {}", finals.join(", "));
}
