//! `picasso-sim rollout [SCENARIO]`: rehearses the design document's rollout (§4.1:
//! 0 → 10 → 50 → 100 % of one tenant, then the other tenants) on a simulated
//! population, computes its success metrics at each step and walks its rollback
//! decision tree, stopping at the first "roll back".
//!
//! Each step is one simulator run of the corrected widget: `sessions_per_step`
//! sessions of `messages_per_session` messages each, the scenario's faults (those with
//! a `probability` are the population's background fault rates), the tenant's
//! `streaming_percentage` set to the step's.

mod decision;
mod metrics;
mod report;

use super::Status;
use decision::{Decision, Verdict, decide};
use fake::Fake;
use fake::faker::lorem::en::Sentence;
use metrics::{MessageRecord, StepMetrics, quantile};
use picasso_core::scenario::{Message, Rollout, Scenario, Session};
use picasso_core::{load_file, parse_scenario, rng};
use picasso_sim::Policy;
use picasso_sim::widget::{Mode, Source, Terminal};
use std::path::Path;

/// The rehearsal run when no file is given (`scenarios/rollout.toml`).
const EMBEDDED: &str = include_str!("../../../../scenarios/rollout.toml");

/// One step of the plan: which tenants stream, at what percentage.
#[derive(Debug, Clone)]
struct Step {
    label: String,
    percentage: f64,
    tenants: Vec<String>,
}

/// Runs the rehearsal and prints the verdicts; exit status 1 when it ends in a rollback.
pub(crate) fn run(path: Option<&Path>, html: Option<&Path>, seed: Option<u64>) -> Status {
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
    match rehearse(&scenario, &plan) {
        Ok(steps) => {
            print_steps(&steps);
            if let Some(html_path) = html {
                let title = format!(
                    "Rollout rehearsal: {}",
                    if scenario.name.is_empty() {
                        "scenario"
                    } else {
                        &scenario.name
                    }
                );
                let rows: Vec<(String, StepMetrics, Decision)> = steps
                    .iter()
                    .map(|(s, m, d)| (s.label.clone(), m.clone(), d.clone()))
                    .collect();
                if let Err(e) = std::fs::write(html_path, report::html(&title, &rows)) {
                    eprintln!("error: cannot write {}: {e}", html_path.display());
                    return Status::InputError;
                }
                println!("report: {}", html_path.display());
            }
            if steps.iter().any(|(_, _, d)| d.verdict == Verdict::RollBack) {
                Status::Failed
            } else {
                Status::Ok
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            Status::Failed
        }
    }
}

/// The steps: the plan's percentages for its tenant, then every other tenant at 100 %.
fn plan_steps(scenario: &Scenario, plan: &Rollout) -> Vec<Step> {
    let mut steps: Vec<Step> = plan
        .steps
        .iter()
        .map(|p| Step {
            label: format!("{} {p} %", tenant_name(scenario, &plan.tenant)),
            percentage: *p,
            tenants: vec![plan.tenant.clone()],
        })
        .collect();
    let others: Vec<String> = scenario
        .tenants
        .iter()
        .map(|t| t.hash.clone())
        .filter(|h| *h != plan.tenant)
        .collect();
    if !others.is_empty() {
        steps.push(Step {
            label: "other tenants 100 %".into(),
            percentage: 100.0,
            tenants: others,
        });
    }
    steps
}

/// The tenant's name, or its hash when it has none.
fn tenant_name<'a>(scenario: &'a Scenario, hash: &'a str) -> &'a str {
    scenario
        .tenant(hash)
        .map(|t| t.name.as_str())
        .filter(|n| !n.is_empty())
        .unwrap_or(hash)
}

/// Runs the steps in order, stopping after the first rollback.
fn rehearse(
    scenario: &Scenario,
    plan: &Rollout,
) -> Result<Vec<(Step, StepMetrics, Decision)>, String> {
    let mut out = Vec::new();
    for (index, step) in plan_steps(scenario, plan).into_iter().enumerate() {
        let population = population(scenario, plan, &step, index);
        let outcome = picasso_sim::run_with(
            &population,
            Policy::Corrected,
            picasso_sim::RunOptions {
                transcript: false,
                check: false,
            },
        )
        .map_err(|e| format!("step {}: {e}", step.label))?;
        let sessions: Vec<Vec<MessageRecord>> = outcome
            .sessions
            .iter()
            .map(|s| {
                s.messages
                    .iter()
                    .map(|m| record(m, outcome.bedrock_calls(&s.id, &m.id) as u32))
                    .collect()
            })
            .collect();
        let metrics = StepMetrics::from_sessions(step.percentage, &sessions);
        let decision = decide(&metrics);
        let stop = decision.verdict == Verdict::RollBack;
        out.push((step, metrics, decision));
        if stop {
            break;
        }
    }
    Ok(out)
}

/// The simulated population of one step: the scenario's tenants, answers, faults and
/// limits; its own sessions, with message texts drawn from the seed.
fn population(scenario: &Scenario, plan: &Rollout, step: &Step, index: usize) -> Scenario {
    let mut s = scenario.clone();
    s.sessions.clear();
    s.rollout = None;
    for t in &mut s.tenants {
        if step.tenants.contains(&t.hash) {
            t.streaming_enabled = true;
            t.streaming_percentage = step.percentage;
        }
    }
    let mut words = rng::stream(scenario.seed, &format!("rollout/{index}"));
    for i in 0..plan.sessions_per_step {
        let tenant = step.tenants[i as usize % step.tenants.len()].clone();
        let id = format!("step{index}-s{i:04}");
        let messages = (0..plan.messages_per_session)
            .map(|j| Message {
                id: format!("{id}-m{j}"),
                text: Sentence(3..9).fake_with_rng(&mut words),
                think_ms: 2_000,
                at_ms: None,
            })
            .collect();
        // Arrivals spread over a minute, as real visitors would be.
        s.sessions.push(Session {
            id,
            tenant,
            start_ms: u64::from(i) * 60_000 / u64::from(plan.sessions_per_step),
            event_source: true,
            origin: None,
            messages,
        });
    }
    s
}

/// What the rollout needs to know of one simulated message.
fn record(m: &picasso_sim::widget::MessageRecord, bedrock_calls: u32) -> MessageRecord {
    let streamed = m.mode == Mode::Stream;
    let stream_ok = matches!(m.terminal, Some(Terminal::Complete(Source::Stream)));
    let answered_at = m.finished_at.map(|f| f.saturating_sub(m.sent_at));
    MessageRecord {
        streamed,
        stream_failed: streamed && !stream_ok,
        fell_back: m.fallback_posts > 0,
        visible_error: matches!(m.terminal, Some(Terminal::Failed { .. })),
        first_text_ms: if stream_ok {
            m.ttft_ms
        } else if matches!(m.terminal, Some(Terminal::Complete(_))) {
            answered_at
        } else {
            None
        },
        bedrock_calls,
    }
}

fn ms(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v}"))
}

fn print_steps(steps: &[(Step, StepMetrics, Decision)]) {
    println!(
        "{:<28} {:>8} {:>9} {:>7} {:>10} {:>9} {:>8} {:>14} {:>14}  verdict",
        "step",
        "sessions",
        "adoption",
        "streams",
        "error rate",
        "fallback",
        "errors",
        "TTFT p50 s/r",
        "TTFT p99 s/r"
    );
    for (step, m, d) in steps {
        println!(
            "{:<28} {:>8} {:>8.1}% {:>7} {:>9.2}% {:>8.2}% {:>8} {:>14} {:>14}  {}{}",
            step.label,
            m.sessions,
            m.adoption() * 100.0,
            m.streaming_started,
            m.error_rate() * 100.0,
            m.fallback_rate() * 100.0,
            m.visible_errors,
            format!(
                "{}/{}",
                ms(quantile(&m.ttft_stream_ms, 0.5)),
                ms(quantile(&m.ttft_regular_ms, 0.5))
            ),
            format!(
                "{}/{}",
                ms(quantile(&m.ttft_stream_ms, 0.99)),
                ms(quantile(&m.ttft_regular_ms, 0.99))
            ),
            d.verdict,
            if d.reasons.is_empty() {
                String::new()
            } else {
                format!(" ({})", d.reasons.join("; "))
            }
        );
    }
    let stream: Vec<u64> = steps
        .iter()
        .flat_map(|(_, m, _)| m.ttft_stream_ms.iter().copied())
        .collect();
    let regular: Vec<u64> = steps
        .iter()
        .flat_map(|(_, m, _)| m.ttft_regular_ms.iter().copied())
        .collect();
    let (mut stream, mut regular) = (stream, regular);
    stream.sort_unstable();
    regular.sort_unstable();
    if let (Some(s), Some(r)) = (quantile(&stream, 0.5), quantile(&regular, 0.5)) {
        println!(
            "\ntime to first text, p50: streaming {s} ms, regular {r} ms ({:.1}x faster; the document expects 3-5x)",
            r as f64 / s.max(1) as f64
        );
    }
    match steps.last() {
        Some((step, _, d)) if d.verdict == Verdict::RollBack => {
            println!(
                "verdict: ROLL BACK at {}: set streaming_percentage to 0 (the document's instant rollback)",
                step.label
            )
        }
        Some(_) => {
            println!("verdict: rollout complete, every step passed the rollback decision tree")
        }
        None => println!("verdict: no steps"),
    }
}
