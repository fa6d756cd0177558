//! `picasso-sim demo [NAME]`: fault-injection demos a person can watch.
//!
//! Each demo is one of the example scenarios, run under the three widget policies;
//! the terminal shows the three timelines side by side on a shared virtual-time axis,
//! then what the user saw and which invariants each policy broke.

use super::Status;
use picasso_core::parse_scenario;
use picasso_sim::{Outcome, Policy};

/// A named demo: a scenario and the story it tells.
struct Demo {
    name: &'static str,
    story: &'static str,
    scenario: &'static str,
}

macro_rules! demo {
    ($name:literal, $file:literal, $story:literal) => {
        Demo {
            name: $name,
            story: $story,
            scenario: include_str!(concat!("../../../scenarios/", $file)),
        }
    };
}

const DEMOS: &[Demo] = &[
    demo!(
        "happy-path",
        "happy-path.toml",
        "No fault at all. The as-written hook never handles `end`, so every good answer ends in onerror; the naive fix lets the browser reconnect and ask again: text doubles."
    ),
    demo!(
        "mid-stream-drop",
        "bedrock-drop.toml",
        "Bedrock's connection drops after three tokens. Only the corrected widget replaces the partial text with the regular answer."
    ),
    demo!(
        "network-drop",
        "network-drop.toml",
        "The network cuts the stream after three frames. A browser reconnects by itself; the gateway answers the repeat with 204 instead of a second Bedrock call."
    ),
    demo!(
        "throttling",
        "bedrock-throttling.toml",
        "Bedrock throttles every attempt of the stream; the SDK's retries give up and the gateway sends an error frame."
    ),
    demo!(
        "slow-first-token",
        "bedrock-slow-first-token.toml",
        "The first token is 20 s late. The corrected widget's idle timer falls back at 15 s; the hook waits."
    ),
    demo!(
        "stream-cap",
        "stream-time-cap.toml",
        "A 40 s answer meets the gateway's 30 s cap: STREAM_004; the fallback chat is as slow and times out too, so the user sees a clear error."
    ),
    demo!(
        "rate-limit",
        "rate-limit.toml",
        "Twelve messages in a minute: the 11th stream request gets 429 RATE_LIMITED."
    ),
    demo!(
        "refused",
        "network-refuse.toml",
        "The connection to the gateway is refused. The as-written hook shows nothing at all (a silent drop)."
    ),
    demo!(
        "corrupt-frame",
        "bedrock-corrupt-frame.toml",
        "A Bedrock frame with a bad CRC: the SDK's checksum catches it, the gateway reports it, the widget falls back."
    ),
    demo!(
        "malformed-frame",
        "gateway-malformed-frame.toml",
        "A data line that is not JSON: the hook's JSON.parse throws and loses the token silently."
    ),
    demo!(
        "wrong-content-type",
        "gateway-wrong-content-type.toml",
        "200 with application/json: EventSource fails for good; only the corrected widget falls back."
    ),
];

/// Lists the demos, or runs one.
pub(crate) fn run(name: Option<&str>, verbose: bool) -> Status {
    let Some(name) = name else {
        println!("Fault-injection demos (picasso-sim demo NAME):\n");
        for d in DEMOS {
            println!("  {:<20} {}", d.name, d.story);
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
    for policy in Policy::ALL {
        match picasso_sim::run_scenario(&scenario, policy) {
            Ok(o) => outcomes.push(o),
            Err(e) => {
                eprintln!("error: {policy}: {e}");
                return Status::Failed;
            }
        }
    }
    println!("demo {}: {}\n", demo.name, demo.story);
    print!("{}", side_by_side(&outcomes, terminal_width()));
    for o in &outcomes {
        println!("\n── {} ──", o.policy);
        for (session, m) in o.messages() {
            let shown = if m.final_text.is_empty() {
                "(nothing)".to_owned()
            } else {
                format!("{:?}", clip(&m.final_text, 70))
            };
            println!(
                "  {session}/{}: {}, shown {shown}{}",
                m.id,
                m.terminal.as_ref().map_or_else(
                    || "never ended".to_owned(),
                    |t| format!("{t:?}").to_lowercase()
                ),
                m.error_shown
                    .as_ref()
                    .map_or_else(String::new, |e| format!(", error {e}"))
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
