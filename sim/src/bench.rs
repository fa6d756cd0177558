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

/// Median wall time, over `runs` sessions on this thread, of starting a JavaScript
/// widget's session as the simulator does: a fresh realm on the thread's engine with the
/// globals and the widget's modules, `createWidget(host)`, and the default world's
/// streaming config handed to it. The first session (which may compile the modules) is
/// not counted.
pub fn js_startup(widget: crate::widget::js::JsWidgetId, runs: usize) -> std::time::Duration {
    use crate::widget::{Input, SessionCtx, js::JsWidget};
    let scenario = Scenario::default_scenario();
    let tenant = &scenario.tenants[0];
    let config = tenant.config(
        "/Master_Function?action=chat",
        Some("http://gateway/stream"),
    );
    let start = |i: usize| {
        let ctx = SessionCtx {
            seed: scenario.seed,
            tenant: tenant.hash.clone(),
            session_id: format!("startup-{i}"),
            event_source: true,
            settings: scenario.widget,
        };
        let t0 = std::time::Instant::now();
        let mut w = JsWidget::new(widget, ctx);
        w.step(0, Input::ConfigLoaded(Ok(config.clone())));
        t0.elapsed()
    };
    start(0);
    let mut times: Vec<std::time::Duration> = (1..=runs.max(1)).map(start).collect();
    times.sort();
    times[times.len() / 2]
}

/// The median of `xs` (the mean of the middle two for an even count; 0 for none): the
/// benchmarks report the median of their timed rounds.
pub fn median(xs: &[f64]) -> f64 {
    let mut xs = xs.to_vec();
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => xs[n / 2],
        _ => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_even_and_no_rounds() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }
}
