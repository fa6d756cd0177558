//! The largest (and a few smallest) numbers a scenario may hold, so that every
//! scenario `validate` accepts runs to an end in bounded virtual and wall time.
//!
//! Two rules work together. `validate` ([`crate::load::validate`]) refuses numbers
//! outside these bounds, with file, line and field. And wherever the servers or the
//! simulator combine scenario numbers (a start time plus a think time, a deadline
//! plus a timeout, a sum of token delays) they use saturating arithmetic
//! ([`add_ms`], [`sum_ms`]), so a scenario built in code that skips `validate`
//! cannot panic on overflow either: at worst its times stick at `u64::MAX` ms,
//! which a virtual clock treats as "never".

use crate::scenario::Scenario;

/// The longest virtual time any one `*_ms` field may name: 24 hours. Long enough for
/// any timer or think time a chat widget has; short enough that a run of a few
/// thousand messages stays far from overflowing a `u64` of milliseconds, and that
/// `tokio::time::Instant + Duration` (which panics on overflow) is always safe.
pub const MAX_MS: u64 = 24 * 60 * 60 * 1000;

/// The shortest heartbeat (`limits.heartbeat_ms`) other than 0 (none): one second.
/// A heartbeat every millisecond on a stream capped at 24 h would be 86 million
/// comment lines; at one a second it is at most 86,400, and real proxies time out
/// after tens of seconds anyway.
pub const MIN_HEARTBEAT_MS: u64 = 1_000;

/// The shortest browser reconnection time (`widget.reconnect_ms`): 100 ms. An
/// `EventSource` reconnects after every dropped or refused connection; with 0 it
/// would reconnect forever at one instant of virtual time, and the run would never end.
pub const MIN_RECONNECT_MS: u64 = 100;

/// The most sessions in one scenario.
pub const MAX_SESSIONS: usize = 100_000;

/// The most messages in one session.
pub const MAX_MESSAGES_PER_SESSION: usize = 1_000;

/// The most messages in the whole scenario (a run keeps every transcript line).
pub const MAX_MESSAGES: usize = 200_000;

/// The most tokens in one answer (given as `tokens`, or the words of `text`).
pub const MAX_TOKENS_PER_ANSWER: usize = 10_000;

/// The most rollout steps.
pub const MAX_ROLLOUT_STEPS: usize = 20;

/// The most simulated sessions in one rollout step.
pub const MAX_ROLLOUT_SESSIONS_PER_STEP: u32 = 10_000;

/// The most messages each simulated rollout session sends.
pub const MAX_ROLLOUT_MESSAGES_PER_SESSION: u32 = 10;

/// `a + b` milliseconds, stuck at `u64::MAX` ("never") instead of overflowing.
pub fn add_ms(a: u64, b: u64) -> u64 {
    a.saturating_add(b)
}

/// The sum of some millisecond delays, stuck at `u64::MAX` instead of overflowing.
pub fn sum_ms(delays: impl IntoIterator<Item = u64>) -> u64 {
    delays.into_iter().fold(0, u64::saturating_add)
}

/// The bound checks of `validate`: `(field path, message)` for every number outside
/// its bound. Kept beside the bounds so the table and the checks cannot drift apart.
pub(crate) fn check(s: &Scenario) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut ms = |path: String, value: u64| {
        if value > MAX_MS {
            out.push((
                path,
                format!("expected at most {MAX_MS} ms (24 h), got {value}"),
            ));
        }
    };
    for (i, a) in s.answers.iter().enumerate() {
        for (j, t) in a.tokens.iter().enumerate() {
            ms(format!("answers[{i}].tokens[{j}].delay_ms"), t.delay_ms);
        }
        if let Some(p) = a.pacing {
            ms(
                format!("answers[{i}].pacing.first_token_ms"),
                p.first_token_ms,
            );
            ms(format!("answers[{i}].pacing.gap_ms"), p.gap_ms);
        }
    }
    for (i, f) in s.faults.iter().enumerate() {
        if let Some(d) = f.delay_ms {
            ms(format!("faults[{i}].delay_ms"), d);
        }
    }
    for (i, c) in s.config_changes.iter().enumerate() {
        ms(format!("config_changes[{i}].at_ms"), c.at_ms);
    }
    for (i, session) in s.sessions.iter().enumerate() {
        ms(format!("sessions[{i}].start_ms"), session.start_ms);
        if let Some(close) = session.close_at_ms {
            ms(format!("sessions[{i}].close_at_ms"), close);
        }
        for (j, m) in session.messages.iter().enumerate() {
            ms(format!("sessions[{i}].messages[{j}].think_ms"), m.think_ms);
            if let Some(at) = m.at_ms {
                ms(format!("sessions[{i}].messages[{j}].at_ms"), at);
            }
        }
    }
    let l = s.limits;
    ms("limits.max_stream_ms".into(), l.max_stream_ms);
    ms("limits.rate_window_ms".into(), l.rate_window_ms);
    ms("limits.config_ttl_ms".into(), l.config_ttl_ms);
    ms("limits.heartbeat_ms".into(), l.heartbeat_ms);
    let w = s.widget;
    ms("widget.connect_timeout_ms".into(), w.connect_timeout_ms);
    ms("widget.idle_timeout_ms".into(), w.idle_timeout_ms);
    ms("widget.total_timeout_ms".into(), w.total_timeout_ms);
    ms("widget.post_timeout_ms".into(), w.post_timeout_ms);
    ms("widget.reconnect_ms".into(), w.reconnect_ms);

    if l.heartbeat_ms != 0 && l.heartbeat_ms < MIN_HEARTBEAT_MS {
        out.push((
            "limits.heartbeat_ms".into(),
            format!(
                "expected 0 (no heartbeat) or at least {MIN_HEARTBEAT_MS} ms, got {}",
                l.heartbeat_ms
            ),
        ));
    }
    if w.reconnect_ms < MIN_RECONNECT_MS {
        out.push((
            "widget.reconnect_ms".into(),
            format!(
                "expected at least {MIN_RECONNECT_MS} ms (a browser reconnects after every drop), got {}",
                w.reconnect_ms
            ),
        ));
    }
    let mut count = |path: String, what: &str, got: usize, max: usize| {
        if got > max {
            out.push((path, format!("expected at most {max} {what}, got {got}")));
        }
    };
    count(
        "sessions".into(),
        "sessions",
        s.sessions.len(),
        MAX_SESSIONS,
    );
    let mut total = 0usize;
    for (i, session) in s.sessions.iter().enumerate() {
        total = total.saturating_add(session.messages.len());
        count(
            format!("sessions[{i}].messages"),
            "messages in a session",
            session.messages.len(),
            MAX_MESSAGES_PER_SESSION,
        );
    }
    count("sessions".into(), "messages in all", total, MAX_MESSAGES);
    for (i, a) in s.answers.iter().enumerate() {
        let (path, n) = match &a.text {
            Some(text) => (
                format!("answers[{i}].text"),
                text.split_whitespace().count(),
            ),
            None => (format!("answers[{i}].tokens"), a.tokens.len()),
        };
        count(path, "tokens in an answer", n, MAX_TOKENS_PER_ANSWER);
    }
    if let Some(r) = &s.rollout {
        count(
            "rollout.steps".into(),
            "steps",
            r.steps.len(),
            MAX_ROLLOUT_STEPS,
        );
        count(
            "rollout.sessions_per_step".into(),
            "sessions per step",
            r.sessions_per_step as usize,
            MAX_ROLLOUT_SESSIONS_PER_STEP as usize,
        );
        count(
            "rollout.messages_per_session".into(),
            "messages per session",
            r.messages_per_session as usize,
            MAX_ROLLOUT_MESSAGES_PER_SESSION as usize,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_overflowing() {
        assert_eq!(add_ms(u64::MAX, 1), u64::MAX);
        assert_eq!(add_ms(2, 3), 5);
        assert_eq!(sum_ms([u64::MAX, u64::MAX, 7]), u64::MAX);
        assert_eq!(sum_ms([1, 2, 3]), 6);
        assert_eq!(sum_ms(std::iter::empty()), 0);
    }

    #[test]
    fn a_run_of_maximal_numbers_stays_far_from_overflow() {
        // Every message of the largest session waits the longest think time after the
        // longest answer: still far below u64::MAX milliseconds.
        let per_message = MAX_MS * (3 + MAX_TOKENS_PER_ANSWER as u64);
        let worst = MAX_MS + per_message * MAX_MESSAGES_PER_SESSION as u64;
        assert!(worst < u64::MAX / 1_000);
    }
}
