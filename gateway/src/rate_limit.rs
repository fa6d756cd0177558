//! At most N stream requests per session in any rolling window (the design document's
//! "10 requests per minute per session").
//!
//! A session is the client's `session_id` *within its tenant*: the same id sent for two
//! tenants is two sessions, so one tenant's traffic never uses up another's quota.
//!
//! A sliding log per session: the admission times of the requests still in the window.
//! Only admitted requests are logged, so a client that keeps knocking while limited is
//! let in again as soon as its oldest request leaves the window, as `Retry-After` says.
//! Time is `tokio::time::Instant`, so the limit holds in virtual time too.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;
use tokio::time::Instant;

/// The per-session sliding logs.
#[derive(Debug, Default)]
pub struct RateLimiter {
    sessions: BTreeMap<(String, String), VecDeque<Instant>>,
    /// Session count at the last sweep; the next sweep runs when the map doubles.
    swept_at: usize,
}

/// The outcome of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Counted and let through.
    Admitted,
    /// Refused; whole seconds until a slot frees up (at least 1).
    Limited {
        /// The `Retry-After` value.
        retry_after_s: u64,
    },
}

impl RateLimiter {
    /// Counts a request of `session` of `tenant` at `now` against `limit` requests per
    /// `window`.
    pub fn admit(
        &mut self,
        tenant: &str,
        session: &str,
        now: Instant,
        limit: u32,
        window: Duration,
    ) -> Admission {
        self.sweep(now, window);
        let log = self
            .sessions
            .entry((tenant.to_owned(), session.to_owned()))
            .or_default();
        while log
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            log.pop_front();
        }
        if log.len() < limit as usize {
            log.push_back(now);
            return Admission::Admitted;
        }
        let wait = log
            .front()
            .map(|oldest| {
                oldest
                    .checked_add(window)
                    .map_or(Duration::MAX, |t| t.saturating_duration_since(now))
            })
            .unwrap_or(window);
        Admission::Limited {
            retry_after_s: u64::try_from(wait.as_millis().div_ceil(1000).max(1))
                .unwrap_or(u64::MAX),
        }
    }

    /// Drops sessions with nothing left in the window, so idle sessions cost nothing.
    fn sweep(&mut self, now: Instant, window: Duration) {
        if self.sessions.len() < 2 * self.swept_at.max(512) {
            return;
        }
        self.sessions
            .retain(|_, log| log.back().is_some_and(|t| now.duration_since(*t) < window));
        self.swept_at = self.sessions.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    /// The 11th request in a minute is refused, and a slot frees exactly when the
    /// oldest request leaves the window (virtual time, no sleeping).
    #[tokio::test(start_paused = true)]
    async fn eleventh_request_in_a_rolling_minute_is_refused() {
        let mut limiter = RateLimiter::default();
        for i in 0..10 {
            assert_eq!(
                limiter.admit("t", "s", Instant::now(), 10, MINUTE),
                Admission::Admitted,
                "{i}"
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        // t = 10 s: the first request (t = 0) leaves the window at t = 60 s.
        assert_eq!(
            limiter.admit("t", "s", Instant::now(), 10, MINUTE),
            Admission::Limited { retry_after_s: 50 }
        );
        assert_eq!(
            limiter.admit("t", "other", Instant::now(), 10, MINUTE),
            Admission::Admitted
        );
        // The same session id under another tenant is another session.
        assert_eq!(
            limiter.admit("u", "s", Instant::now(), 10, MINUTE),
            Admission::Admitted
        );
        tokio::time::sleep(Duration::from_millis(49_500)).await;
        assert_eq!(
            limiter.admit("t", "s", Instant::now(), 10, MINUTE),
            Admission::Limited { retry_after_s: 1 }
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            limiter.admit("t", "s", Instant::now(), 10, MINUTE),
            Admission::Admitted
        );
        assert!(matches!(
            limiter.admit("t", "s", Instant::now(), 10, MINUTE),
            Admission::Limited { .. }
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_sessions_are_swept() {
        let mut limiter = RateLimiter::default();
        for i in 0..1024 {
            limiter.admit("t", &format!("s{i}"), Instant::now(), 10, MINUTE);
        }
        tokio::time::sleep(MINUTE).await;
        limiter.admit("t", "late", Instant::now(), 10, MINUTE);
        assert_eq!(limiter.sessions.len(), 1);
    }
}
