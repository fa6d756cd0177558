//! `picasso-sim rollout [SCENARIO]`: rehearses the design document's rollout (§4.1:
//! 0 → 10 → 50 → 100 % of one tenant, then the other tenants) on a simulated
//! population, shows its dashboard (§4.2) at each step, judges each step and the whole
//! rollout by its success criteria ([`criteria`]), and walks its rollback decision tree,
//! whose branches change what happens next:
//!
//! - **roll back** stops the rollout and sets the tenant's percentage to 0;
//! - **investigate** holds the step: it is run once more on a fresh population; if the
//!   tree still says investigate, the rollout stops there, held for investigation;
//! - **reduce** halves the percentage for the next run, then the plan carries on;
//! - **proceed** goes on to the next step.
//!
//! Each step is one simulator run of the corrected widget: `sessions_per_step`
//! sessions of `messages_per_session` messages for the tenants being rolled out, plus a
//! quarter as many for the tenants that do not stream at that step (the "no impact"
//! group), the scenario's faults (those with a `probability` are the population's
//! background fault rates). A 0 % monitoring step is the baseline; one is run first
//! when the plan has none.

pub mod criteria;
pub mod decision;
pub mod metrics;
pub mod report;

use crate::Policy;
use crate::widget::{Mode, Source, Terminal};
use criteria::{Baseline, Criterion, all_pass, judge};
use decision::{Decision, Verdict, decide};
use fake::Fake;
use fake::faker::lorem::en::Sentence;
use metrics::{MessageRecord, SessionRecord, StepMetrics, quantile};
use picasso_core::rng;
use picasso_core::scenario::{Message, Rollout, Scenario, Session};
use std::collections::BTreeMap;

/// The rehearsal run when no file is given (`scenarios/rollout.toml`).
pub const EMBEDDED: &str = include_str!("../../../scenarios/rollout.toml");

/// One step of the plan: which tenants stream, at what percentage.
#[derive(Debug, Clone)]
pub struct Step {
    /// `Foster Village 50 %`, `other tenants 100 %`.
    pub label: String,
    /// The percentage its tenants stream at.
    pub percentage: f64,
    /// The tenants rolled out at this step.
    pub tenants: Vec<String>,
}

/// One step as run: its numbers, the tree's decision, the criteria, what came next.
#[derive(Debug, Clone)]
pub struct StepRun {
    /// The step.
    pub step: Step,
    /// Its dashboard numbers.
    pub metrics: StepMetrics,
    /// The decision tree's verdict.
    pub decision: Decision,
    /// The success criteria, judged.
    pub criteria: Vec<Criterion>,
    /// What the decision did to the rollout.
    pub action: String,
}

/// The whole rehearsal.
#[derive(Debug, Clone)]
pub struct Rehearsal {
    /// Every step run, in order (holds and reductions included).
    pub runs: Vec<StepRun>,
    /// The criteria on every step after the baseline, pooled.
    pub overall: Vec<Criterion>,
    /// How it ended: `complete`, `rolled back`, `held for investigation`.
    pub ending: String,
    /// Each rolled-out tenant's percentage when it ended.
    pub final_percentages: BTreeMap<String, f64>,
}

impl Rehearsal {
    /// Complete, and every judged criterion held at every step and overall.
    pub fn passed(&self) -> bool {
        self.ending == "complete"
            && all_pass(&self.overall)
            && self.runs.iter().all(|r| all_pass(&r.criteria))
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
    if !plan.steps.contains(&0.0) {
        steps.insert(
            0,
            Step {
                label: format!("{} 0 % (baseline)", tenant_name(scenario, &plan.tenant)),
                percentage: 0.0,
                tenants: vec![plan.tenant.clone()],
            },
        );
    }
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
pub fn tenant_name<'a>(scenario: &'a Scenario, hash: &'a str) -> &'a str {
    scenario
        .tenant(hash)
        .map(|t| t.name.as_str())
        .filter(|n| !n.is_empty())
        .unwrap_or(hash)
}

/// Runs the steps in order; the decision tree's branches change what comes next.
///
/// # Errors
/// A description of the step whose simulation failed.
pub fn rehearse(scenario: &Scenario, plan: &Rollout) -> Result<Rehearsal, String> {
    rehearse_with(scenario, plan, |step, reached, index| {
        run_step(scenario, plan, step, reached, index)
    })
}

/// [`rehearse`] with the step runner given (the tests drive the tree's branches with
/// numbers of their own).
fn rehearse_with(
    scenario: &Scenario,
    plan: &Rollout,
    mut run: impl FnMut(&Step, &BTreeMap<String, f64>, usize) -> Result<StepMetrics, String>,
) -> Result<Rehearsal, String> {
    let planned = plan_steps(scenario, plan);
    let mut queue: std::collections::VecDeque<Step> = planned.into();
    let mut reached: BTreeMap<String, f64> = BTreeMap::new();
    let mut runs: Vec<StepRun> = Vec::new();
    let mut baseline: Option<Baseline> = None;
    let mut held: Option<String> = None;
    let mut ending = "complete".to_owned();
    // Every branch either consumes a planned step or adds at most one run for it.
    let limit = 2 * queue.len() + 2;
    while let Some(step) = queue.pop_front() {
        if runs.len() >= limit {
            break;
        }
        let index = runs.len();
        let metrics = run(&step, &reached, index)?;
        let base = baseline
            .get_or_insert_with(|| Baseline::of(&metrics))
            .clone();
        let decision = decide(&metrics);
        let criteria = judge(&metrics, &base);
        let action = match decision.verdict {
            Verdict::RollBack => {
                for t in &step.tenants {
                    reached.insert(t.clone(), 0.0);
                }
                queue.clear();
                ending = "rolled back".into();
                "roll back: streaming_percentage set to 0, the rollout stops".to_owned()
            }
            Verdict::Investigate if held.as_deref() == Some(step.label.as_str()) => {
                queue.clear();
                ending = "held for investigation".into();
                "still investigate after a hold: the rollout stops here".to_owned()
            }
            Verdict::Investigate => {
                held = Some(step.label.clone());
                queue.push_front(step.clone());
                for t in &step.tenants {
                    reached.insert(t.clone(), step.percentage);
                }
                "investigate: the step is held and run again".to_owned()
            }
            Verdict::ReducePercentage => {
                let reduced = (step.percentage / 2.0).floor();
                for t in &step.tenants {
                    reached.insert(t.clone(), reduced);
                }
                queue.push_front(Step {
                    label: format!("{} (reduced)", relabel(&step, reduced)),
                    percentage: reduced,
                    tenants: step.tenants.clone(),
                });
                format!("reduce: the next run is at {reduced} %")
            }
            Verdict::Proceed => {
                for t in &step.tenants {
                    reached.insert(t.clone(), step.percentage);
                }
                "proceed".to_owned()
            }
        };
        runs.push(StepRun {
            step,
            metrics,
            decision,
            criteria,
            action,
        });
    }
    let rollout_steps: Vec<&StepMetrics> = runs
        .iter()
        .skip(1)
        .filter(|r| r.step.percentage > 0.0)
        .map(|r| &r.metrics)
        .collect();
    let base = baseline.unwrap_or_else(|| Baseline::of(&StepMetrics::pooled(&[])));
    let overall = judge(&StepMetrics::pooled(&rollout_steps), &base);
    Ok(Rehearsal {
        runs,
        overall,
        ending,
        final_percentages: reached,
    })
}

/// `Foster Village 50 %` → `Foster Village 25 %`.
fn relabel(step: &Step, percentage: f64) -> String {
    match step.label.rsplit_once(' ') {
        Some((head, "%")) => match head.rsplit_once(' ') {
            Some((name, _)) => format!("{name} {percentage} %"),
            None => format!("{percentage} %"),
        },
        _ => format!("{} at {percentage} %", step.label),
    }
}

/// One simulator run of a step's population, and its numbers.
fn run_step(
    scenario: &Scenario,
    plan: &Rollout,
    step: &Step,
    reached: &BTreeMap<String, f64>,
    index: usize,
) -> Result<StepMetrics, String> {
    let population = population(scenario, plan, step, reached, index);
    let outcome = crate::run_with(
        &population,
        Policy::Corrected,
        crate::RunOptions {
            transcript: false,
            check: false,
            transport: crate::Transport::Sdk,
        },
    )
    .map_err(|e| format!("step {}: {e}", step.label))?;
    // Counted once for all sessions, not scanned per session or message.
    let bedrock = outcome.bedrock_index();
    let mut streams: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for r in &outcome.streams {
        *streams.entry(r.session.as_str()).or_default() += 1;
    }
    let records: Vec<SessionRecord> = outcome
        .sessions
        .iter()
        .map(|s| {
            let tenant = population.tenant(&s.tenant);
            let streams_here =
                tenant.is_some_and(|t| t.streaming_enabled && t.streaming_percentage > 0.0);
            let eligible = tenant.is_some_and(|t| {
                t.streaming_enabled
                    && s.event_source
                    && crate::widget::decide::sticky(&t.hash, &s.id, t.streaming_percentage)
            });
            SessionRecord {
                eligible,
                non_streaming_tenant: !streams_here,
                stream_requests: streams.get(s.id.as_str()).copied().unwrap_or(0),
                regular_requests: s.messages.iter().map(|m| m.posts as usize).sum(),
                messages: s
                    .messages
                    .iter()
                    .map(|m| record(m, bedrock.get(&s.id, &m.id) as u32))
                    .collect(),
            }
        })
        .collect();
    Ok(StepMetrics::from_records(
        step.percentage,
        &records,
        outcome.gateway_errors.clone(),
    ))
}

/// The simulated population of one step: the scenario's tenants at the percentages
/// reached so far and the step's, its answers, faults and limits; its own sessions, with
/// message texts drawn from the seed, and a quarter as many for the tenants that do not
/// stream at this step.
fn population(
    scenario: &Scenario,
    plan: &Rollout,
    step: &Step,
    reached: &BTreeMap<String, f64>,
    index: usize,
) -> Scenario {
    let mut s = scenario.clone();
    s.sessions.clear();
    s.rollout = None;
    for t in &mut s.tenants {
        if step.tenants.contains(&t.hash) {
            t.streaming_enabled = true;
            t.streaming_percentage = step.percentage;
        } else if let Some(p) = reached.get(&t.hash) {
            t.streaming_percentage = *p;
        }
    }
    let quiet: Vec<String> = s
        .tenants
        .iter()
        .filter(|t| !step.tenants.contains(&t.hash))
        .filter(|t| !t.streaming_enabled || t.streaming_percentage <= 0.0)
        .map(|t| t.hash.clone())
        .collect();
    let mut words = rng::stream(scenario.seed, &format!("rollout/{index}"));
    let quiet_sessions = if quiet.is_empty() {
        0
    } else {
        (plan.sessions_per_step / 4).max(1)
    };
    let total = plan.sessions_per_step.saturating_add(quiet_sessions).max(1);
    for i in 0..total {
        let tenant = if i < plan.sessions_per_step {
            step.tenants[i as usize % step.tenants.len()].clone()
        } else {
            quiet[(i - plan.sessions_per_step) as usize % quiet.len()].clone()
        };
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
            start_ms: u64::from(i) * 60_000 / u64::from(total),
            event_source: true,
            origin: None,
            close_at_ms: None,
            messages,
        });
    }
    s
}

/// What the rollout needs to know of one simulated message.
fn record(m: &crate::widget::MessageRecord, bedrock_calls: u32) -> MessageRecord {
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

/// The whole rehearsal as JSON, for CI: per step the dashboard, the criteria (value,
/// threshold, pass), the decision and its action; overall criteria and the verdict.
pub fn to_json(scenario: &Scenario, r: &Rehearsal) -> String {
    let q = |v: &[u64]| {
        serde_json::json!({
            "p50": quantile(v, 0.5),
            "p95": quantile(v, 0.95),
            "p99": quantile(v, 0.99),
        })
    };
    let steps: Vec<serde_json::Value> = r
        .runs
        .iter()
        .map(|run| {
            let m = &run.metrics;
            serde_json::json!({
                "label": run.step.label,
                "percentage": run.step.percentage,
                "tenants": run.step.tenants,
                "dashboard": {
                    "sessions": m.sessions,
                    "messages": m.messages,
                    "stream_requests": m.stream_requests,
                    "regular_requests": m.regular_requests,
                    "streaming_started": m.streaming_started,
                    "streaming_completed": m.streaming_completed,
                    "streaming_failed": m.streaming_failed,
                    "fallback_triggered": m.fallback_triggered,
                    "visible_errors": m.visible_errors,
                    "streaming_error_rate": m.error_rate(),
                    "fallback_rate": m.fallback_rate(),
                    "errors_by_type": m.gateway_errors,
                    "latency_ms": {
                        "stream_first_text": q(&m.ttft_stream_ms),
                        "regular_answer": q(&m.ttft_regular_ms),
                    },
                    "bedrock_calls": m.bedrock_calls,
                },
                "criteria": run.criteria,
                "decision": {
                    "verdict": run.decision.verdict.to_string(),
                    "reasons": run.decision.reasons,
                    "action": run.action,
                },
            })
        })
        .collect();
    let value = serde_json::json!({
        "scenario": scenario.name,
        "seed": scenario.seed,
        "steps": steps,
        "overall": {
            "criteria": r.overall,
            "ending": r.ending,
            "final_percentages": r.final_percentages,
            "pass": r.passed(),
        },
    });
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use picasso_core::parse_scenario;

    /// A step's numbers: `n` streamed messages, `failed` of them failed, each first
    /// text at `ttft` ms, `calls` Bedrock calls each; plus a regular baseline.
    fn numbers(percentage: f64, failed: usize, ttft: u64, calls: u32) -> StepMetrics {
        // `failed` of 200 streams fail, spread evenly.
        let every = 200usize.checked_div(failed).unwrap_or(0);
        super::metrics::synthetic_step(percentage, 200, every, ttft, calls, 0)
    }

    fn plan() -> (Scenario, Rollout) {
        let scenario = parse_scenario("<embedded rollout>", EMBEDDED).unwrap();
        let plan = scenario.rollout.clone().unwrap();
        (scenario, plan)
    }

    fn labels(r: &Rehearsal) -> Vec<String> {
        r.runs.iter().map(|r| r.step.label.clone()).collect()
    }

    #[test]
    fn proceed_runs_every_planned_step() {
        let (scenario, plan) = plan();
        let r = rehearse_with(&scenario, &plan, |s, _, _| {
            Ok(numbers(s.percentage, 0, 450, 1))
        })
        .unwrap();
        assert_eq!(r.runs.len(), 5, "{:?}", labels(&r));
        assert_eq!(r.ending, "complete");
        assert!(r.passed());
    }

    #[test]
    fn rollback_stops_and_sets_the_percentage_to_zero() {
        let (scenario, plan) = plan();
        // 2 % failures from the 50 % step on.
        let r = rehearse_with(&scenario, &plan, |s, _, _| {
            Ok(numbers(
                s.percentage,
                if s.percentage >= 50.0 { 4 } else { 0 },
                450,
                1,
            ))
        })
        .unwrap();
        assert_eq!(labels(&r).last().unwrap(), "Foster Village 50 %");
        assert_eq!(r.ending, "rolled back");
        assert_eq!(r.final_percentages["fo85e6a06dcdf4"], 0.0);
        assert!(!r.passed());
    }

    #[test]
    fn investigate_holds_the_step_then_stops_if_it_persists() {
        let (scenario, plan) = plan();
        // p99 over 10 s at 10 %: held once, then stopped.
        let r = rehearse_with(&scenario, &plan, |s, _, _| {
            Ok(numbers(
                s.percentage,
                0,
                if s.percentage == 10.0 { 12_000 } else { 450 },
                1,
            ))
        })
        .unwrap();
        assert_eq!(
            labels(&r),
            [
                "Foster Village 0 %",
                "Foster Village 10 %",
                "Foster Village 10 %"
            ]
        );
        assert_eq!(r.ending, "held for investigation");
        assert!(!r.passed());
        // A hold that clears carries on.
        let mut slow = true;
        let r = rehearse_with(&scenario, &plan, |s, _, _| {
            let ttft = if s.percentage == 10.0 && std::mem::take(&mut slow) {
                12_000
            } else {
                450
            };
            Ok(numbers(s.percentage, 0, ttft, 1))
        })
        .unwrap();
        assert_eq!(r.runs.len(), 6);
        assert_eq!(r.ending, "complete");
    }

    #[test]
    fn reduce_lowers_the_percentage_and_carries_on() {
        let (scenario, plan) = plan();
        // Three Bedrock calls a message at 50 %: cost 3x.
        let mut seen = Vec::new();
        let r = rehearse_with(&scenario, &plan, |s, reached, _| {
            seen.push((s.percentage, reached.get("fo85e6a06dcdf4").copied()));
            Ok(numbers(
                s.percentage,
                0,
                450,
                if s.percentage == 50.0 { 3 } else { 1 },
            ))
        })
        .unwrap();
        assert_eq!(
            labels(&r)[..4],
            [
                "Foster Village 0 %",
                "Foster Village 10 %",
                "Foster Village 50 %",
                "Foster Village 25 % (reduced)"
            ]
        );
        assert_eq!(seen[3], (25.0, Some(25.0)));
        assert_eq!(r.ending, "complete");
    }
}
