//! Simulated messages per second on one core, the whole stack in-process (widget,
//! gateway, Master, mock Bedrock through the AWS SDK), and simulated seconds per wall
//! second. `cargo bench -p picasso-sim --bench throughput [-- SESSIONS MESSAGES TOKENS]`.

use picasso_core::Scenario;
use picasso_core::scenario::{Answer, Message, Pacing, Session};
use picasso_simulator::{Policy, RunOptions, run_with};
use std::time::Instant;

fn population(sessions: usize, messages: usize, tokens: usize) -> Scenario {
    let mut s = Scenario::default_scenario();
    s.name = "bench".into();
    s.faults.clear();
    let mut a = Answer::unscripted();
    a.id = "twenty".into();
    // `tokens` word tokens, paced like a fast model.
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

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sessions = args.first().copied().unwrap_or(2_000);
    let messages = args.get(1).copied().unwrap_or(5);
    let tokens = args.get(2).copied().unwrap_or(20);
    let scenario = population(sessions, messages, tokens);
    let options = RunOptions {
        transcript: false,
        check: false,
    };
    for policy in [Policy::Corrected, Policy::AsWritten] {
        let t0 = Instant::now();
        let outcome = match run_with(&scenario, policy, options) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        };
        let wall = t0.elapsed().as_secs_f64();
        let n = sessions * messages;
        let sim_s = outcome.end_ms as f64 / 1000.0;
        println!(
            "{:<10} {n} messages ({tokens} tokens each) in {wall:.3} s wall: {:.0} msgs/s, {sim_s:.0} simulated s, {:.0} sim-s per wall s, {} Bedrock calls",
            policy.name(),
            n as f64 / wall,
            sim_s / wall,
            outcome.bedrock.len()
        );
    }
}
