//! The design document's rollback decision tree, applied to one step's metrics.
//!
//! ```text
//! If error_rate > 1%:          → Instant rollback
//! If user_complaints > 5:      → Instant rollback
//! If latency_p99 > 10s:        → Investigate, consider rollback
//! If cost > 2x projection:     → Reduce streaming_percentage
//! ```
//!
//! Simulated users cannot complain, so a "complaint" is a session in which the user saw
//! an error; cost is Bedrock calls per message against a projection of one call each.

use super::metrics::{StepMetrics, quantile};
use std::fmt;

/// What the tree says about a step, the most severe branch winning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// No branch fired: go on to the next step.
    Proceed,
    /// Cost is over twice the projection.
    ReducePercentage,
    /// p99 latency is over 10 s.
    Investigate,
    /// Error rate over 1 % or more than five complaints.
    RollBack,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Proceed => "proceed",
            Verdict::ReducePercentage => "reduce streaming_percentage",
            Verdict::Investigate => "investigate, consider rollback",
            Verdict::RollBack => "roll back",
        })
    }
}

/// The branches that fired, with the numbers that fired them, and the verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The most severe branch.
    pub verdict: Verdict,
    /// One line per branch that fired.
    pub reasons: Vec<String>,
}

/// Walks the tree for one step.
pub fn decide(m: &StepMetrics) -> Decision {
    let mut fired: Vec<(Verdict, String)> = Vec::new();
    if m.error_rate() > 0.01 {
        fired.push((
            Verdict::RollBack,
            format!("error_rate {:.2} % > 1 %", m.error_rate() * 100.0),
        ));
    }
    if m.sessions_with_errors > 5 {
        fired.push((
            Verdict::RollBack,
            format!("user_complaints {} > 5", m.sessions_with_errors),
        ));
    }
    let p99 = quantile(&m.ttft_stream_ms, 0.99).max(quantile(&m.ttft_regular_ms, 0.99));
    if let Some(p99) = p99.filter(|p| *p > 10_000) {
        fired.push((
            Verdict::Investigate,
            format!("latency_p99 {:.1} s > 10 s", p99 as f64 / 1000.0),
        ));
    }
    if m.cost_ratio() > 2.0 {
        fired.push((
            Verdict::ReducePercentage,
            format!("cost {:.2}x > 2x projection", m.cost_ratio()),
        ));
    }
    let verdict = fired
        .iter()
        .map(|(v, _)| *v)
        .max()
        .unwrap_or(Verdict::Proceed);
    Decision {
        verdict,
        reasons: fired.into_iter().map(|(_, r)| r).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(failed_every: usize, n: usize) -> StepMetrics {
        super::super::metrics::synthetic_step(100.0, n, failed_every, 700, 1, 1)
    }

    #[test]
    fn clean_step_proceeds() {
        assert_eq!(decide(&step(0, 200)).verdict, Verdict::Proceed);
    }

    #[test]
    fn error_rate_over_one_percent_rolls_back() {
        // 1 in 50 = 2 %.
        let d = decide(&step(50, 200));
        assert_eq!(d.verdict, Verdict::RollBack);
        assert!(d.reasons[0].starts_with("error_rate"), "{:?}", d.reasons);
        // 1 in 200 = 0.5 %: fine.
        assert_eq!(decide(&step(200, 200)).verdict, Verdict::Proceed);
    }

    #[test]
    fn slow_p99_asks_for_investigation() {
        let mut m = step(0, 100);
        m.ttft_stream_ms = (0..100)
            .map(|i| if i >= 98 { 12_000 } else { 700 })
            .collect();
        assert_eq!(decide(&m).verdict, Verdict::Investigate);
    }
}
