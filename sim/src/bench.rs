//! Workloads for the benchmarks (`picasso-sim bench sim`, the throughput bench): a
//! population of sessions on the default world's streaming tenant, with no faults.

use picasso_core::Scenario;
use picasso_core::scenario::{Answer, Message, Pacing, Session};

/// `sessions` sessions of `messages` messages each, every answer `tokens` word tokens
/// paced like a fast model (300 ms to the first, 50 ms apart), arrivals spread over a
/// minute; the rate limit out of the way.
pub fn population(sessions: usize, messages: usize, tokens: usize) -> Scenario {
    let mut s = Scenario::default_scenario();
    s.name = "bench".into();
    s.faults.clear();
    let mut a = Answer::unscripted();
    a.id = "twenty".into();
    a.text = Some(
        (0..tokens)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" "),
    );
    a.pacing = Some(Pacing {
        first_token_ms: 300,
        gap_ms: 50,
    });
    s.answers = vec![a];
    s.limits.rate_limit = u32::MAX;
    let tenant = s.tenants[0].hash.clone();
    s.sessions = (0..sessions)
        .map(|i| Session {
            id: format!("b{i}"),
            tenant: tenant.clone(),
            start_ms: (i as u64 * 37) % 60_000,
            event_source: true,
            origin: None,
            close_at_ms: None,
            messages: (0..messages)
                .map(|j| Message {
                    id: format!("b{i}-m{j}"),
                    text: format!("question {j}"),
                    think_ms: 2_000,
                    at_ms: None,
                })
                .collect(),
        })
        .collect();
    s
}
