//! `picasso-sim swarm`: a campaign of generated scenarios under one policy until an
//! invariant breaks or the time runs out (see [`picasso_simulator::swarm`]); the breaking
//! scenario, shrunk, is written as a file `run --replay` reproduces.

use super::Status;
use picasso_simulator::Policy;
use picasso_simulator::swarm::{Progress, SwarmConfig, swarm};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

/// Parses `500ms`, `60s`, `10m`, `1h` (a bare number is seconds).
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("expected a duration such as 60s or 10m, got {s:?}"))?;
    let ms = match unit {
        "ms" => n,
        "" | "s" => n.saturating_mul(1_000),
        "m" => n.saturating_mul(60_000),
        "h" => n.saturating_mul(3_600_000),
        _ => return Err(format!("unknown unit {unit:?} in {s:?}: use ms, s, m or h")),
    };
    Ok(Duration::from_millis(ms))
}

/// Runs the campaign, prints progress (stderr) and the result (stdout); exit 1 when
/// an invariant broke. `selector` is how the command line chose the widget
/// (`--policy corrected`, `--widget widgets/corrected`), for the replay line.
pub(crate) fn run(config: SwarmConfig, selector: &str, out: Option<PathBuf>) -> Status {
    let tty = std::io::stderr().is_terminal();
    outln!(
        "swarm: seed {}, {selector}, {} worker(s), up to {:?}{}",
        config.seed,
        config.jobs,
        config.time,
        config
            .max_cases
            .map_or_else(String::new, |m| format!(" or {m} cases"))
    );
    let report = swarm(&config, |p: Progress| {
        let line = format!(
            "swarm: {} cases, {} messages, {:.0} msgs/s, {:.0} cases/s, {:.0} s",
            p.cases,
            p.messages,
            p.messages as f64 / p.elapsed.as_secs_f64().max(1e-9),
            p.cases as f64 / p.elapsed.as_secs_f64().max(1e-9),
            p.elapsed.as_secs_f64()
        );
        if tty {
            eprint!("\r{line}   ");
        } else {
            eprintln!("{line}");
        }
    });
    if tty {
        eprintln!();
    }
    let secs = report.elapsed.as_secs_f64().max(1e-9);
    outln!(
        "explored {} cases ({} messages) in {:.1} s: {:.0} cases/s, {:.0} messages/s",
        report.cases,
        report.messages,
        secs,
        report.cases as f64 / secs,
        report.messages as f64 / secs
    );
    let Some(found) = report.found else {
        outln!("no invariant broke");
        return Status::Ok;
    };
    let size = |s: &picasso_core::Scenario| {
        (
            s.sessions.len(),
            s.sessions.iter().map(|x| x.messages.len()).sum::<usize>(),
            s.faults.len(),
        )
    };
    let (s0, m0, f0) = size(&found.original);
    let (s1, m1, f1) = size(&found.shrunk);
    outln!(
        "BROKEN {} in case {} (seed {}); shrunk from {s0} sessions, {m0} messages, {f0} faults to {s1}, {m1}, {f1}",
        found.property.name(),
        found.case,
        config.seed
    );
    for v in &found.violations {
        outln!("  {v}");
    }
    let path = out.unwrap_or_else(|| {
        PathBuf::from("target/swarm").join(format!("{}.toml", found.shrunk.name))
    });
    let mut text = format!(
        "# Found by `picasso-sim swarm --seed {} {selector}` (case {}), then shrunk.\n# It breaks:\n",
        config.seed, found.case
    );
    for v in &found.violations {
        text.push_str(&format!("#   {v}\n"));
    }
    match toml::to_string(&found.shrunk) {
        Ok(body) => text.push_str(&body),
        Err(e) => {
            eprintln!("error: cannot write the scenario as TOML: {e}");
            return Status::Failed;
        }
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        eprintln!("error: cannot create {}: {e}", dir.display());
        return Status::InputError;
    }
    if let Err(e) = std::fs::write(&path, text) {
        eprintln!("error: cannot write {}: {e}", path.display());
        return Status::InputError;
    }
    outln!("written: {}", path.display());
    outln!(
        "replay:  picasso-sim run {} {selector} --replay",
        path.display(),
    );
    Status::Failed
}

/// The policies `swarm` can take (one at a time).
pub(crate) fn policy(arg: super::PolicyArg) -> Result<Policy, String> {
    match arg.policies().as_slice() {
        [p] => Ok(*p),
        _ => Err("swarm runs one policy at a time".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert!(parse_duration("5 weeks").is_err());
        assert!(parse_duration("m").is_err());
    }
}
