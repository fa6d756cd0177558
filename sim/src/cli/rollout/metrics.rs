//! The design document's success metrics, computed from simulated traffic.

/// What one simulated message did, as far as the rollout cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MessageRecord {
    /// The widget opened a stream for it.
    pub streamed: bool,
    /// The stream failed (error frame, refusal, drop, timeout).
    pub stream_failed: bool,
    /// The widget fell back to the regular chat.
    pub fell_back: bool,
    /// The user saw an error instead of an answer.
    pub visible_error: bool,
    /// Virtual ms from send to the first text the user saw (stream token or regular answer).
    pub first_text_ms: Option<u64>,
    /// Bedrock calls made for the message.
    pub bedrock_calls: u32,
}

/// One rollout step's numbers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StepMetrics {
    /// The step's `streaming_percentage`.
    pub percentage: f64,
    /// Simulated sessions.
    pub sessions: usize,
    /// Sessions in which at least one message streamed.
    pub streaming_sessions: usize,
    /// Sessions in which the user saw an error.
    pub sessions_with_errors: usize,
    /// All messages.
    pub messages: usize,
    /// `streaming_started`.
    pub streaming_started: usize,
    /// `streaming_completed`.
    pub streaming_completed: usize,
    /// `streaming_failed`.
    pub streaming_failed: usize,
    /// `fallback_triggered`.
    pub fallback_triggered: usize,
    /// Messages that ended in a visible error.
    pub visible_errors: usize,
    /// Bedrock calls, all messages.
    pub bedrock_calls: u64,
    /// Time to first text of streamed messages, sorted.
    pub ttft_stream_ms: Vec<u64>,
    /// Time to the answer of regular-chat messages (no stream opened), sorted.
    pub ttft_regular_ms: Vec<u64>,
}

impl StepMetrics {
    /// Aggregates a step from its sessions' message records.
    pub(crate) fn from_sessions(percentage: f64, sessions: &[Vec<MessageRecord>]) -> StepMetrics {
        let all = || sessions.iter().flatten();
        let count = |f: fn(&MessageRecord) -> bool| all().filter(|m| f(m)).count();
        let mut ttft_stream_ms: Vec<u64> = all()
            .filter(|m| m.streamed && !m.stream_failed)
            .filter_map(|m| m.first_text_ms)
            .collect();
        let mut ttft_regular_ms: Vec<u64> = all()
            .filter(|m| !m.streamed)
            .filter_map(|m| m.first_text_ms)
            .collect();
        ttft_stream_ms.sort_unstable();
        ttft_regular_ms.sort_unstable();
        StepMetrics {
            percentage,
            sessions: sessions.len(),
            streaming_sessions: sessions
                .iter()
                .filter(|s| s.iter().any(|m| m.streamed))
                .count(),
            sessions_with_errors: sessions
                .iter()
                .filter(|s| s.iter().any(|m| m.visible_error))
                .count(),
            messages: all().count(),
            streaming_started: count(|m| m.streamed),
            streaming_completed: count(|m| m.streamed && !m.stream_failed),
            streaming_failed: count(|m| m.stream_failed),
            fallback_triggered: count(|m| m.fell_back),
            visible_errors: count(|m| m.visible_error),
            bedrock_calls: all().map(|m| u64::from(m.bedrock_calls)).sum(),
            ttft_stream_ms,
            ttft_regular_ms,
        }
    }

    /// Streaming failures per stream started (the document's "error rate": streaming failures).
    pub(crate) fn error_rate(&self) -> f64 {
        ratio(self.streaming_failed, self.streaming_started)
    }

    /// Fallbacks per stream started.
    pub(crate) fn fallback_rate(&self) -> f64 {
        ratio(self.fallback_triggered, self.streaming_started)
    }

    /// Share of sessions that streamed (the document's adoption rate, of eligible sessions).
    pub(crate) fn adoption(&self) -> f64 {
        ratio(self.streaming_sessions, self.sessions)
    }

    /// Bedrock calls per message against the projection of one.
    pub(crate) fn cost_ratio(&self) -> f64 {
        if self.messages == 0 {
            0.0
        } else {
            self.bedrock_calls as f64 / self.messages as f64
        }
    }
}

fn ratio(n: usize, d: usize) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

/// The `q`-quantile (0–1) of sorted values, nearest-rank; `None` when empty.
pub(crate) fn quantile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(streamed: bool, failed: bool, ttft: u64) -> MessageRecord {
        MessageRecord {
            streamed,
            stream_failed: failed,
            fell_back: failed,
            visible_error: false,
            first_text_ms: Some(ttft),
            bedrock_calls: 1 + u32::from(failed),
        }
    }

    #[test]
    fn rates_and_quantiles() {
        let sessions = vec![
            vec![rec(true, false, 800), rec(true, true, 3000)],
            vec![rec(false, false, 2500)],
        ];
        let m = StepMetrics::from_sessions(50.0, &sessions);
        assert_eq!(
            (
                m.streaming_started,
                m.streaming_failed,
                m.fallback_triggered
            ),
            (2, 1, 1)
        );
        assert_eq!(m.error_rate(), 0.5);
        assert_eq!(m.adoption(), 0.5);
        assert_eq!(m.cost_ratio(), 4.0 / 3.0);
        assert_eq!(m.ttft_stream_ms, vec![800]);
        assert_eq!(m.ttft_regular_ms, vec![2500]);
        assert_eq!(quantile(&[1, 2, 3, 4], 0.5), Some(2));
        assert_eq!(quantile(&[1, 2, 3, 4], 0.99), Some(4));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
