//! Simulated messages per second on one core, the whole stack in-process (widget,
//! gateway, Master, mock Bedrock through the AWS SDK), and simulated seconds per wall
//! second, for the Rust policies and the JavaScript widgets side by side; then the
//! JavaScript host's start-up cost per session (a fresh QuickJS realm, the globals, the
//! widget's modules, `createWidget`).
//! `cargo bench -p picasso-sim --bench throughput [-- SESSIONS MESSAGES TOKENS [POLICY] [direct] [--rounds N]]`
//! (`direct`: the campaign transport instead of the SDK; `--rounds`: timed rounds after a
//! warm-up, 3 by default, reported with their medians and each JavaScript widget's ratio
//! to its Rust policy), or `-- swarm [CASES]`: the swarm's first cases under both
//! transports.

use picasso_simulator::bench::median;
use picasso_simulator::{Policy, RunOptions, Transport, run_with};
use std::path::Path;
use std::time::Instant;

/// The binary's allocator (`src/main.rs`), so this bench measures what `picasso-sim` runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn widget(dir: &str) -> Policy {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir);
    Policy::Js(picasso_simulator::widget::js::register(&path).expect("widget"))
}

/// `swarm` among the words: the first `cases` cases of the swarm's seed 1 under the
/// corrected policy on this thread, with each transport: cases and messages per second
/// of a campaign (short generated scenarios, many of them faulty).
fn swarm(cases: u64) {
    use picasso_simulator::swarm::{SwarmConfig, swarm};
    for transport in [Transport::Sdk, Transport::Direct] {
        let config = SwarmConfig {
            seed: 1,
            policy: Policy::Corrected,
            time: std::time::Duration::from_secs(3_600),
            max_cases: Some(cases),
            jobs: 1,
            transport,
        };
        let report = swarm(&config, |_| {});
        let wall = report.elapsed.as_secs_f64();
        println!(
            "swarm corrected {:<6} {} cases, {} messages in {wall:.3} s wall: {:.0} cases/s, {:.0} msgs/s",
            transport.name(),
            report.cases,
            report.messages,
            report.cases as f64 / wall,
            report.messages as f64 / wall
        );
    }
}

/// `--rounds N` among the words (default 3): that many timed rounds after one untimed
/// warm-up round. Each round runs every kept policy once, in an order that alternates
/// from round to round, so a machine that drifts (a noisy VM) drifts under both sides of
/// a comparison alike.
fn rounds(words: &mut Vec<String>) -> usize {
    let Some(i) = words.iter().position(|w| w == "--rounds") else {
        return 3;
    };
    words.remove(i);
    if let Some(Ok(n)) = words.get(i).map(|w| w.parse::<usize>()) {
        words.remove(i);
        return n.max(1);
    }
    eprintln!("--rounds takes a number");
    std::process::exit(2);
}

fn main() {
    let mut words: Vec<String> = std::env::args().skip(1).collect();
    if words.iter().any(|a| a == "swarm") {
        let cases = words.iter().find_map(|a| a.parse().ok()).unwrap_or(2_000);
        swarm(cases);
        return;
    }
    let rounds = rounds(&mut words);
    let args: Vec<usize> = words.iter().filter_map(|a| a.parse().ok()).collect();
    let sessions = args.first().copied().unwrap_or(2_000);
    let messages = args.get(1).copied().unwrap_or(5);
    let tokens = args.get(2).copied().unwrap_or(20);
    // An optional word after the numbers keeps only the policies whose name contains it.
    let only: Option<&String> = words.iter().find(|a| {
        a.parse::<usize>().is_err() && !a.starts_with('-') && *a != "direct" && *a != "sdk"
    });
    let scenario = picasso_simulator::bench::population(sessions, messages, tokens);
    // `direct` among the words: the campaign transport instead of the SDK.
    let transport = if words.iter().any(|a| a == "direct") {
        Transport::Direct
    } else {
        Transport::Sdk
    };
    let options = RunOptions {
        transcript: false,
        check: false,
        transport,
    };
    // A word keeps the policies whose name contains it: `corrected` keeps the Rust
    // policy and the JavaScript widget side by side (issue 10's comparison),
    // `js-corrected` the widget alone.
    let policies: Vec<Policy> = [
        Policy::Corrected,
        widget("widgets/corrected"),
        Policy::AsWritten,
        widget("widgets/as-written"),
    ]
    .into_iter()
    .filter(|p| only.is_none_or(|o| p.name().contains(o.as_str())))
    .collect();
    // The start-up first, on this thread's fresh engine (later it would hold every
    // run's closed sessions until the collector frees them).
    let Policy::Js(corrected) = widget("widgets/corrected") else {
        unreachable!("a widget is a JavaScript policy")
    };
    let per = picasso_simulator::bench::js_startup(corrected, 200);
    println!(
        "js start-up per session, as the simulator starts one (realm, globals, widgets/corrected modules, createWidget, config): {:.3} ms median of 200",
        per.as_secs_f64() * 1000.0
    );
    let n = sessions * messages;
    // msgs/s of each policy in each timed round.
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); policies.len()];
    for round in 0..=rounds {
        let mut order: Vec<usize> = (0..policies.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let policy = policies[i];
            let t0 = Instant::now();
            let outcome = match run_with(&scenario, policy, options) {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(1);
                }
            };
            let wall = t0.elapsed().as_secs_f64();
            let sim_s = outcome.end_ms as f64 / 1000.0;
            let label = if round == 0 {
                "warm-up".to_owned()
            } else {
                format!("round {round}")
            };
            println!(
                "{label:<8} {:<14} {:<6} {n} messages ({tokens} tokens each) in {wall:.3} s wall: {:.0} msgs/s, {sim_s:.0} simulated s, {:.0} sim-s per wall s, {} Bedrock calls",
                policy.name(),
                transport.name(),
                n as f64 / wall,
                sim_s / wall,
                outcome.bedrock.len()
            );
            if round > 0 {
                rates[i].push(n as f64 / wall);
            }
        }
    }
    for (policy, r) in policies.iter().zip(&rates) {
        let shown: Vec<String> = r.iter().map(|x| format!("{x:.0}")).collect();
        println!(
            "median   {:<14} {:.0} msgs/s over {rounds} rounds ({})",
            policy.name(),
            median(r),
            shown.join(", ")
        );
    }
    // Each JavaScript widget against the Rust policy of its name, round by round.
    for (j, js) in policies.iter().enumerate() {
        let Some(rust) = policies
            .iter()
            .position(|p| js.name().strip_prefix("js-") == Some(p.name()))
        else {
            continue;
        };
        let ratios: Vec<f64> = rates[j]
            .iter()
            .zip(&rates[rust])
            .map(|(js, rust)| js / rust)
            .collect();
        let shown: Vec<String> = ratios
            .iter()
            .map(|x| format!("{:.0} %", x * 100.0))
            .collect();
        println!(
            "ratio    {} / {}: median {:.0} % ({})",
            js.name(),
            policies[rust].name(),
            median(&ratios) * 100.0,
            shown.join(", ")
        );
    }
}
