//! `picasso-sim demo [NAME]`: the fault-injection demos of
//! [`picasso_simulator::demo`], printed: the three policies' timelines side by side on
//! one virtual-time axis, then each message's story and the invariants each broke.

use super::Status;
use picasso_core::scenario::Servers;
use picasso_simulator::demo::{DEMOS, DemoError, describe_fault};
use picasso_simulator::{Outcome, Policy};

/// Lists the demos, or runs one.
pub(crate) fn run(
    name: Option<&str>,
    verbose: bool,
    servers: Option<Servers>,
    widgets: &[Policy],
) -> Status {
    let Some(name) = name else {
        outln!("Fault-injection demos (picasso-sim demo NAME):\n");
        for d in DEMOS {
            outln!("  {:<20} {}", d.name, d.setup);
        }
        return Status::Ok;
    };
    let run = match picasso_simulator::demo::run(name, servers, widgets) {
        Ok(run) => run,
        Err(e @ (DemoError::Unknown(_) | DemoError::Scenario(_))) => {
            eprintln!("error: {e}");
            return Status::InputError;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return Status::Failed;
        }
    };
    outln!("demo {}: {}", run.demo.name, run.demo.setup);
    outln!(
        "servers: {} (--servers as-written|hardened)",
        run.scenario.servers.name()
    );
    for fault in &run.scenario.faults {
        outln!("injected: {}", describe_fault(fault));
    }
    outln!();
    out!("{}", side_by_side(&run.outcomes, terminal_width()));
    for (o, stories) in run.outcomes.iter().zip(&run.stories) {
        outln!("\n── {} ──", o.policy);
        for story in stories {
            let claims: Vec<String> = story.claims.iter().map(ToString::to_string).collect();
            outln!(
                "  {}/{}: {}",
                story.session,
                story.message,
                claims.join("; ")
            );
        }
        if o.violations.is_empty() {
            outln!("  invariants: all hold");
        } else {
            for v in &o.violations {
                outln!("  broken: {v}");
            }
        }
        if verbose {
            outln!("\n{}", o.transcript);
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
