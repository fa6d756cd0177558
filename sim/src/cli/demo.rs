//! `picasso-sim demo [NAME]`: fault-injection demos a person can watch.
//!
//! Each demo is one of the example scenarios, run under the three widget policies;
//! the terminal shows the three timelines side by side on a shared virtual-time axis,
//! then what the user saw and which invariants each policy broke.
//!
//! A demo's own text says only what the scenario injects. Every sentence about what
//! happened is computed from the runs by [`picasso_sim::story`].

use super::Status;
use picasso_core::parse_scenario;
use picasso_sim::{Outcome, Policy};

/// A named demo: a scenario and what it injects (what happens is computed).
struct Demo {
    name: &'static str,
    setup: &'static str,
    scenario: &'static str,
}

macro_rules! demo {
    ($name:literal, $file:literal, $setup:literal) => {
        Demo {
            name: $name,
            setup: $setup,
            scenario: include_str!(concat!("../../../scenarios/", $file)),
        }
    };
}

const DEMOS: &[Demo] = &[
    demo!("happy-path", "happy-path.toml", "No fault at all."),
    demo!(
        "mid-stream-drop",
        "bedrock-drop.toml",
        "Bedrock's connection drops after three tokens."
    ),
    demo!(
        "network-drop",
        "network-drop.toml",
        "The network cuts the stream after three frames."
    ),
    demo!(
        "throttling",
        "bedrock-throttling.toml",
        "Bedrock throttles every attempt of the stream."
    ),
    demo!(
        "slow-first-token",
        "bedrock-slow-first-token.toml",
        "The first token is 20 s late."
    ),
    demo!(
        "stream-cap",
        "stream-time-cap.toml",
        "A 40 s answer meets the gateway's 30 s cap, and the regular chat is as slow."
    ),
    demo!(
        "rate-limit",
        "rate-limit.toml",
        "Twelve messages in a minute against a limit of 10 stream requests per session."
    ),
    demo!(
        "refused",
        "network-refuse.toml",
        "The connection to the gateway is refused."
    ),
    demo!(
        "corrupt-frame",
        "bedrock-corrupt-frame.toml",
        "A Bedrock frame with a bad CRC."
    ),
    demo!(
        "malformed-frame",
        "gateway-malformed-frame.toml",
        "The gateway sends a data line that is not JSON."
    ),
    demo!(
        "wrong-content-type",
        "gateway-wrong-content-type.toml",
        "The gateway answers 200 with application/json."
    ),
];

/// Lists the demos, or runs one.
pub(crate) fn run(name: Option<&str>, verbose: bool, widgets: &[Policy]) -> Status {
    let Some(name) = name else {
        println!("Fault-injection demos (picasso-sim demo NAME):\n");
        for d in DEMOS {
            println!("  {:<20} {}", d.name, d.setup);
        }
        return Status::Ok;
    };
    let Some(demo) = DEMOS.iter().find(|d| d.name == name) else {
        eprintln!("error: no demo named {name:?}; `picasso-sim demo` lists them");
        return Status::InputError;
    };
    let scenario = match parse_scenario(demo.name, demo.scenario) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return Status::InputError;
        }
    };
    let mut outcomes = Vec::new();
    for policy in Policy::ALL.into_iter().chain(widgets.iter().copied()) {
        match picasso_sim::run_scenario(&scenario, policy) {
            Ok(o) => outcomes.push(o),
            Err(e) => {
                eprintln!("error: {policy}: {e}");
                return Status::Failed;
            }
        }
    }
    println!("demo {}: {}", demo.name, demo.setup);
    for fault in &scenario.faults {
        println!("injected: {}", describe_fault(fault));
    }
    println!();
    print!("{}", side_by_side(&outcomes, terminal_width()));
    for o in &outcomes {
        println!("\n── {} ──", o.policy);
        for story in picasso_sim::story::stories(&scenario, o) {
            let claims: Vec<String> = story.claims.iter().map(ToString::to_string).collect();
            println!(
                "  {}/{}: {}",
                story.session,
                story.message,
                claims.join("; ")
            );
        }
        if o.violations.is_empty() {
            println!("  invariants: all hold");
        } else {
            for v in &o.violations {
                println!("  broken: {v}");
            }
        }
        if verbose {
            println!("\n{}", o.transcript);
        }
    }
    Status::Ok
}

/// A scripted fault in one line: where, what, when and on what (from the scenario).
fn describe_fault(f: &picasso_core::scenario::Fault) -> String {
    let mut out = f.label();
    if let Some(n) = f.after_tokens {
        out.push_str(&format!(" after {n} tokens"));
    }
    if let Some(ms) = f.delay_ms {
        out.push_str(&format!(", {ms} ms"));
    }
    if let Some(status) = f.status {
        out.push_str(&format!(", status {status}"));
    }
    for (what, value) in [
        ("tenant", &f.tenant),
        ("session", &f.session),
        ("message", &f.message),
    ] {
        if let Some(v) = value {
            out.push_str(&format!(", {what} {v}"));
        }
    }
    out
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(180)
        .max(90)
}

/// One timeline event: virtual time and a short text.
fn events(outcome: &Outcome) -> Vec<(u64, String)> {
    outcome
        .transcript
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("[t=")?;
            let (t, rest) = rest.split_once("ms] ")?;
            let (who, what) = rest.split_once(char::is_whitespace)?;
            let who = who.rsplit('/').next().unwrap_or(who);
            Some((
                t.parse().ok()?,
                format!("{who} {}", shorten(what.trim_start())),
            ))
        })
        .collect()
}

/// Frames are long on the wire; in a column only the token matters.
fn shorten(what: &str) -> String {
    if let Some(data) = what.split_once("| data: ").map(|(_, d)| d) {
        return match picasso_core::wire::StreamFrame::parse(data) {
            Some(picasso_core::wire::StreamFrame::Text(t)) => format!("«{t}»"),
            Some(picasso_core::wire::StreamFrame::End) => "end frame".into(),
            Some(picasso_core::wire::StreamFrame::Error { code, .. }) => {
                format!("error frame {code}")
            }
            None => format!("bad frame {}", clip(data, 20)),
        };
    }
    what.to_owned()
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        format!(
            "{}…",
            s.chars().take(n.saturating_sub(1)).collect::<String>()
        )
    }
}

/// Three columns on one time axis: each row is one instant, each cell what that policy did then.
fn side_by_side(outcomes: &[Outcome], width: usize) -> String {
    let time_col = 9;
    let col = (width - time_col) / outcomes.len().max(1) - 2;
    let columns: Vec<Vec<(u64, String)>> = outcomes.iter().map(events).collect();
    let mut times: Vec<u64> = columns.iter().flatten().map(|(t, _)| *t).collect();
    times.sort_unstable();
    times.dedup();
    let mut out = format!("{:>time_col$}", "time");
    for o in outcomes {
        out.push_str(&format!("  {:<col$}", o.policy.name()));
    }
    out.push('\n');
    out.push_str(&format!(
        "{}\n",
        "─".repeat(width.min(time_col + (col + 2) * outcomes.len()))
    ));
    for t in times {
        let cells: Vec<Vec<&String>> = columns
            .iter()
            .map(|c| {
                c.iter()
                    .filter(|(at, _)| *at == t)
                    .map(|(_, e)| e)
                    .collect()
            })
            .collect();
        let rows = cells.iter().map(Vec::len).max().unwrap_or(0);
        for r in 0..rows {
            let stamp = if r == 0 {
                format!("{:.3}s", t as f64 / 1000.0)
            } else {
                String::new()
            };
            out.push_str(&format!("{stamp:>time_col$}"));
            for c in &cells {
                out.push_str(&format!(
                    "  {:<col$}",
                    clip(c.get(r).map_or("", |s| s.as_str()), col)
                ));
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use picasso_sim::Property;
    use picasso_sim::story::{Claim, stories};
    use picasso_sim::widget::Terminal;

    /// Every claim every demo prints, checked against its run by a second route: the
    /// invariant results, the widget's terminal state, the transcript's lines.
    #[test]
    fn every_printed_claim_matches_its_run() {
        for d in DEMOS {
            let scenario = parse_scenario(d.name, d.scenario).unwrap();
            for policy in Policy::ALL {
                let o = picasso_sim::run_scenario(&scenario, policy).unwrap();
                let broken = |p: Property, place: &str| {
                    o.violations
                        .iter()
                        .any(|v| v.property == p && v.place == place)
                };
                for story in stories(&scenario, &o) {
                    let place = format!("{}/{}", story.session, story.message);
                    let m = o
                        .messages()
                        .find(|(s, m)| *s == story.session && m.id == story.message)
                        .map(|(_, m)| m)
                        .unwrap();
                    let gets = o
                        .transcript
                        .lines()
                        .filter(|l| l.contains(&format!("] {place} ")))
                        .filter(|l| l.contains(" GET stream"))
                        .count();
                    let ctx = format!("{} {policy} {place}", d.name);
                    for claim in &story.claims {
                        match claim {
                            Claim::AnswerShown { times, .. } => {
                                if *times > 1 {
                                    assert!(broken(Property::ExactText, &place), "{ctx}: {claim}");
                                }
                                assert!(
                                    matches!(m.terminal, Some(Terminal::Complete(_))),
                                    "{ctx}: {claim}"
                                );
                            }
                            Claim::NothingShown => {
                                assert!(broken(Property::NoSilentDrop, &place), "{ctx}: {claim}");
                            }
                            Claim::WrongTextWhileStreaming(_) | Claim::OtherTextShown(_) => {
                                assert!(broken(Property::ExactText, &place), "{ctx}: {claim}");
                            }
                            Claim::ErrorShown(code) => {
                                assert!(
                                    matches!(&m.terminal, Some(Terminal::Failed { code: c }) if c == code),
                                    "{ctx}: {claim}"
                                );
                            }
                            Claim::FellBack { posts } => {
                                let calls = o
                                    .bedrock
                                    .iter()
                                    .filter(|e| e.message.as_deref() == Some(&story.message))
                                    .filter(|e| {
                                        e.caller == Some(picasso_core::scenario::Caller::Master)
                                    })
                                    .count();
                                assert!(*posts >= 1 && calls >= 1, "{ctx}: {claim}");
                            }
                            Claim::Reconnected { statuses } => {
                                assert_eq!(gets, statuses.len() + 1, "{ctx}: {claim}");
                            }
                            Claim::BedrockCalls(n) => {
                                assert!(*n >= 2, "{ctx}: {claim}");
                                assert!(
                                    policy == Policy::Corrected
                                        || broken(Property::BedrockBudget, &place)
                                        || broken(Property::NoFallbackAfterEnd, &place)
                                        || broken(Property::NoHiddenReconnects, &place),
                                    "{ctx}: {claim}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_demo_scenario_is_valid() {
        for d in DEMOS {
            parse_scenario(d.name, d.scenario).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn frames_are_shortened_to_their_token() {
        assert_eq!(
            shorten(r#"frame id: m:0 | data: {"content": "Hello", "type": "text"}"#),
            "«Hello»"
        );
        assert_eq!(
            shorten(r#"frame id: m:4 | data: {"type": "end"}"#),
            "end frame"
        );
        assert_eq!(shorten("user sends \"Hello\""), "user sends \"Hello\"");
    }
}
