//! The design document's success metrics and its dashboard's numbers (§4.2: request
//! count, error rates by type, latency percentiles, fallback rate), computed from
//! simulated traffic.

use std::collections::BTreeMap;

/// What one simulated message did, as far as the rollout cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageRecord {
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

/// What one simulated session was, as far as the rollout cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The config and the rollout admit it to streaming (`streaming_enabled`, the
    /// sticky bucket under the percentage, a browser with `EventSource`).
    pub eligible: bool,
    /// Its tenant does not stream at this step (the "no change" group).
    pub non_streaming_tenant: bool,
    /// Streaming GETs the network saw for it (reconnects included).
    pub stream_requests: usize,
    /// Regular-chat POSTs it made (fallbacks and retries included).
    pub regular_requests: usize,
    /// Its messages.
    pub messages: Vec<MessageRecord>,
}

/// One rollout step's numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct StepMetrics {
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
    /// Sessions the config and the rollout admit to streaming.
    pub eligible_sessions: usize,
    /// Of those, the ones that opened at least one stream.
    pub eligible_streaming_sessions: usize,
    /// Sessions of tenants that do not stream at this step.
    pub non_streaming_sessions: usize,
    /// Streaming GETs those sessions made (must be 0).
    pub non_streaming_stream_requests: usize,
    /// Their messages.
    pub non_streaming_messages: usize,
    /// Their visible errors.
    pub non_streaming_errors: usize,
    /// Their time to the answer, sorted.
    pub non_streaming_answer_ms: Vec<u64>,
    /// Streaming GETs, all sessions (the dashboard's request count).
    pub stream_requests: usize,
    /// Regular-chat POSTs, all sessions.
    pub regular_requests: usize,
    /// The gateway's refusals and error frames by code (its `/metrics`).
    pub gateway_errors: BTreeMap<String, u64>,
}

impl StepMetrics {
    /// Aggregates a step from its sessions and the gateway's error counts.
    pub fn from_records(
        percentage: f64,
        records: &[SessionRecord],
        gateway_errors: BTreeMap<String, u64>,
    ) -> StepMetrics {
        let messages: Vec<Vec<MessageRecord>> =
            records.iter().map(|r| r.messages.clone()).collect();
        let mut m = StepMetrics::from_sessions(percentage, &messages);
        let eligible = || records.iter().filter(|r| r.eligible);
        let others = || records.iter().filter(|r| r.non_streaming_tenant);
        m.eligible_sessions = eligible().count();
        m.eligible_streaming_sessions = eligible()
            .filter(|r| r.messages.iter().any(|m| m.streamed))
            .count();
        m.non_streaming_sessions = others().count();
        m.non_streaming_stream_requests = others().map(|r| r.stream_requests).sum();
        m.non_streaming_messages = others().map(|r| r.messages.len()).sum();
        m.non_streaming_errors = others()
            .flat_map(|r| &r.messages)
            .filter(|m| m.visible_error)
            .count();
        m.non_streaming_answer_ms = others()
            .flat_map(|r| &r.messages)
            .filter_map(|m| m.first_text_ms)
            .collect();
        m.non_streaming_answer_ms.sort_unstable();
        m.stream_requests = records.iter().map(|r| r.stream_requests).sum();
        m.regular_requests = records.iter().map(|r| r.regular_requests).sum();
        m.gateway_errors = gateway_errors;
        m
    }

    /// Several steps' numbers as one population (the rollout's overall judgement).
    pub fn pooled(steps: &[&StepMetrics]) -> StepMetrics {
        let mut out = StepMetrics::from_sessions(f64::NAN, &[]);
        let cat = |f: fn(&StepMetrics) -> &Vec<u64>| {
            let mut v: Vec<u64> = steps.iter().flat_map(|s| f(s).iter().copied()).collect();
            v.sort_unstable();
            v
        };
        for s in steps {
            out.sessions += s.sessions;
            out.streaming_sessions += s.streaming_sessions;
            out.sessions_with_errors += s.sessions_with_errors;
            out.messages += s.messages;
            out.streaming_started += s.streaming_started;
            out.streaming_completed += s.streaming_completed;
            out.streaming_failed += s.streaming_failed;
            out.fallback_triggered += s.fallback_triggered;
            out.visible_errors += s.visible_errors;
            out.bedrock_calls += s.bedrock_calls;
            out.eligible_sessions += s.eligible_sessions;
            out.eligible_streaming_sessions += s.eligible_streaming_sessions;
            out.non_streaming_sessions += s.non_streaming_sessions;
            out.non_streaming_stream_requests += s.non_streaming_stream_requests;
            out.non_streaming_messages += s.non_streaming_messages;
            out.non_streaming_errors += s.non_streaming_errors;
            out.stream_requests += s.stream_requests;
            out.regular_requests += s.regular_requests;
            for (code, n) in &s.gateway_errors {
                *out.gateway_errors.entry(code.clone()).or_default() += n;
            }
        }
        out.ttft_stream_ms = cat(|s| &s.ttft_stream_ms);
        out.ttft_regular_ms = cat(|s| &s.ttft_regular_ms);
        out.non_streaming_answer_ms = cat(|s| &s.non_streaming_answer_ms);
        out
    }

    /// Aggregates a step from its sessions' message records.
    pub fn from_sessions(percentage: f64, sessions: &[Vec<MessageRecord>]) -> StepMetrics {
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
            eligible_sessions: 0,
            eligible_streaming_sessions: 0,
            non_streaming_sessions: 0,
            non_streaming_stream_requests: 0,
            non_streaming_messages: 0,
            non_streaming_errors: 0,
            non_streaming_answer_ms: Vec::new(),
            stream_requests: 0,
            regular_requests: 0,
            gateway_errors: BTreeMap::new(),
        }
    }

    /// Streaming failures per stream started (the document's "error rate": streaming failures).
    pub fn error_rate(&self) -> f64 {
        ratio(self.streaming_failed, self.streaming_started)
    }

    /// Fallbacks per stream started.
    pub fn fallback_rate(&self) -> f64 {
        ratio(self.fallback_triggered, self.streaming_started)
    }

    /// Share of sessions that streamed (all sessions of the step).
    pub fn adoption(&self) -> f64 {
        ratio(self.streaming_sessions, self.sessions)
    }

    /// The document's adoption rate: eligible sessions that streamed, per eligible
    /// session (`None` when none was eligible).
    pub fn eligible_adoption(&self) -> Option<f64> {
        (self.eligible_sessions > 0)
            .then(|| ratio(self.eligible_streaming_sessions, self.eligible_sessions))
    }

    /// Messages that ended in a visible error, per message (the overall error rate).
    pub fn visible_error_rate(&self) -> f64 {
        ratio(self.visible_errors, self.messages)
    }

    /// Bedrock calls per message against the projection of one.
    pub fn cost_ratio(&self) -> f64 {
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
pub fn quantile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Synthetic steps for the rollout's tests: `n` one-message sessions at `percentage`,
/// streamed when it is above 0; every `failed_every`-th stream fails (and falls back,
/// with `extra_call` more Bedrock calls); first text at `ttft_ms` streamed, 2,600 ms
/// regular.
#[cfg(test)]
pub(crate) fn synthetic_step(
    percentage: f64,
    n: usize,
    failed_every: usize,
    ttft_ms: u64,
    calls: u32,
    extra_call: u32,
) -> StepMetrics {
    let streamed = percentage > 0.0;
    let sessions: Vec<Vec<MessageRecord>> = (0..n)
        .map(|i| {
            let failed = streamed && failed_every > 0 && i % failed_every == 0;
            vec![MessageRecord {
                streamed,
                stream_failed: failed,
                fell_back: failed,
                visible_error: false,
                first_text_ms: Some(if streamed { ttft_ms } else { 2_600 }),
                bedrock_calls: calls + if failed { extra_call } else { 0 },
            }]
        })
        .collect();
    StepMetrics::from_sessions(percentage, &sessions)
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
