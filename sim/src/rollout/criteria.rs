//! The design document's success criteria (Success Metrics and its checklist), judged
//! on one step's numbers or on the whole rollout's, each with its value, threshold and
//! verdict, so a CI job can read why a rehearsal failed.
//!
//! | criterion | the document says | here |
//! |---|---|---|
//! | `streaming_error_rate` | "Error Rate: Target <0.1% streaming failures" | failed streams per stream started < 0.1 % |
//! | `fallback_rate` | "<2% fallback rate" | fallbacks per stream started < 2 % |
//! | `adoption` | "95% of eligible sessions using streaming" | eligible sessions that streamed ≥ 95 % |
//! | `ttft_reduction` | "Time to First Response: Target 80% reduction", "3-5x" | 1 − p50 streamed first text ÷ p50 regular answer of the 0 % baseline ≥ 80 % |
//! | `non_streaming_stream_requests` | "No impact to non-streaming tenants" | stream requests by tenants not streaming at the step = 0 |
//! | `non_streaming_latency_change` | same | their p50 time to answer within 10 % of the baseline's |
//! | `overall_error_rate` | "No increase in overall error rate" | visible errors per message ≤ the baseline's + two standard errors |
//!
//! A criterion with nothing to measure (no stream at a 0 % step) has no value and no
//! verdict: it neither passes nor fails. "Two standard errors" is the slack a fair
//! comparison of two samples needs: at the baseline's rate p over n messages,
//! 2·√(p(1−p)/n), with p at least 1/n so a clean baseline still allows noise.

use super::metrics::{StepMetrics, quantile};
use serde::Serialize;

/// One criterion judged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Criterion {
    /// Its name (stable: CI jobs key on it).
    pub name: &'static str,
    /// The measured value (`None`: nothing to measure).
    pub value: Option<f64>,
    /// `<`, `<=`, `>=` or `==`.
    pub comparison: &'static str,
    /// The threshold.
    pub threshold: f64,
    /// Whether it holds (`None` with no value).
    pub pass: Option<bool>,
}

impl Criterion {
    fn new(
        name: &'static str,
        value: Option<f64>,
        comparison: &'static str,
        threshold: f64,
    ) -> Self {
        let pass = value.map(|v| match comparison {
            "<" => v < threshold,
            "<=" => v <= threshold,
            ">=" => v >= threshold,
            _ => v == threshold,
        });
        Criterion {
            name,
            value,
            comparison,
            threshold,
            pass,
        }
    }

    /// `name value comparison threshold`, for the terminal.
    pub fn line(&self) -> String {
        let percent = !self.name.contains("requests");
        let show = |v: f64| {
            if percent {
                format!("{:.2} %", v * 100.0)
            } else {
                format!("{v}")
            }
        };
        let value = self.value.map_or_else(|| "n/a".to_owned(), show);
        let verdict = match self.pass {
            Some(true) => "pass",
            Some(false) => "FAIL",
            None => "not measured",
        };
        format!(
            "{:<30} {:>10} {} {:<10} {verdict}",
            self.name,
            value,
            self.comparison,
            show(self.threshold)
        )
    }
}

/// What the steps are compared with: the 0 % step (monitoring only).
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    /// p50 of the regular chat's time to answer.
    pub regular_p50: Option<u64>,
    /// p50 of the non-streaming tenants' time to answer.
    pub non_streaming_p50: Option<u64>,
    /// Visible errors per message.
    pub error_rate: f64,
    /// Messages it measured.
    pub messages: usize,
}

impl Baseline {
    /// The baseline from the 0 % step's numbers.
    pub fn of(m: &StepMetrics) -> Baseline {
        Baseline {
            regular_p50: quantile(&m.ttft_regular_ms, 0.5),
            non_streaming_p50: quantile(&m.non_streaming_answer_ms, 0.5),
            error_rate: m.visible_error_rate(),
            messages: m.messages,
        }
    }
}

/// Every criterion on `m`, against `baseline`.
pub fn judge(m: &StepMetrics, baseline: &Baseline) -> Vec<Criterion> {
    let streamed = m.streaming_started > 0;
    let ttft_reduction = match (quantile(&m.ttft_stream_ms, 0.5), baseline.regular_p50) {
        (Some(s), Some(r)) if r > 0 => Some(1.0 - s as f64 / r as f64),
        _ => None,
    };
    let latency_change = match (
        quantile(&m.non_streaming_answer_ms, 0.5),
        baseline.non_streaming_p50,
    ) {
        (Some(now), Some(base)) if base > 0 => Some((now as f64 / base as f64 - 1.0).abs()),
        _ => None,
    };
    let n = baseline.messages.max(1) as f64;
    let p = baseline.error_rate.max(1.0 / n);
    let slack = 2.0 * (p * (1.0 - p) / n).sqrt();
    vec![
        Criterion::new(
            "streaming_error_rate",
            streamed.then(|| m.error_rate()),
            "<",
            0.001,
        ),
        Criterion::new(
            "fallback_rate",
            streamed.then(|| m.fallback_rate()),
            "<",
            0.02,
        ),
        Criterion::new("adoption", m.eligible_adoption(), ">=", 0.95),
        Criterion::new("ttft_reduction", ttft_reduction, ">=", 0.80),
        Criterion::new(
            "non_streaming_stream_requests",
            (m.non_streaming_sessions > 0).then_some(m.non_streaming_stream_requests as f64),
            "==",
            0.0,
        ),
        Criterion::new("non_streaming_latency_change", latency_change, "<=", 0.10),
        Criterion::new(
            "overall_error_rate",
            (m.messages > 0).then(|| m.visible_error_rate()),
            "<=",
            baseline.error_rate + slack,
        ),
    ]
}

/// Whether no judged criterion failed.
pub fn all_pass(criteria: &[Criterion]) -> bool {
    criteria.iter().all(|c| c.pass != Some(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(failed_every: usize, n: usize) -> StepMetrics {
        super::super::metrics::synthetic_step(100.0, n, failed_every, 450, 1, 0)
    }

    fn baseline() -> Baseline {
        Baseline {
            regular_p50: Some(2_600),
            non_streaming_p50: None,
            error_rate: 0.0,
            messages: 400,
        }
    }

    fn find<'a>(c: &'a [Criterion], name: &str) -> &'a Criterion {
        c.iter().find(|c| c.name == name).unwrap()
    }

    /// 0.5 % streaming errors: under the decision tree's 1 % rollback line, but it
    /// fails the document's success criterion of < 0.1 %.
    #[test]
    fn half_a_percent_of_streaming_errors_fails() {
        let c = judge(&step(200, 400), &baseline());
        let e = find(&c, "streaming_error_rate");
        assert_eq!(e.value, Some(0.005));
        assert_eq!(e.pass, Some(false));
        assert!(!all_pass(&c));
        let clean = judge(&step(0, 400), &baseline());
        assert_eq!(find(&clean, "streaming_error_rate").pass, Some(true));
        assert!(all_pass(&clean), "{clean:?}");
    }

    #[test]
    fn ttft_reduction_is_against_the_regular_baseline() {
        let c = judge(&step(0, 10), &baseline());
        let r = find(&c, "ttft_reduction");
        // 1 − 450 / 2600
        assert!((r.value.unwrap() - 0.826_923).abs() < 1e-5, "{r:?}");
        assert_eq!(r.pass, Some(true));
        let slow = Baseline {
            regular_p50: Some(900),
            ..baseline()
        };
        assert_eq!(
            find(&judge(&step(0, 10), &slow), "ttft_reduction").pass,
            Some(false)
        );
    }

    #[test]
    fn nothing_to_measure_is_neither_pass_nor_fail() {
        let empty = StepMetrics::from_sessions(0.0, &[]);
        let c = judge(&empty, &baseline());
        assert!(c.iter().all(|c| c.pass.is_none()), "{c:?}");
        assert!(all_pass(&c));
    }
}
