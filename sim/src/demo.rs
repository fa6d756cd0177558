//! `picasso-sim demo [NAME]`: fault-injection demos a person can watch.
//!
//! Each demo is one of the example scenarios, run under the three widget policies;
//! the terminal shows the three timelines side by side on a shared virtual-time axis,
//! then what the user saw and which invariants each policy broke.
//!
//! A demo's own text says only what the scenario injects. Every sentence about what
//! happened is computed from the runs by [`picasso_simulator::story`].

use crate::story::{MessageStory, stories};
use crate::{Outcome, Policy, SimError};
use picasso_core::Scenario;
use picasso_core::scenario::Servers;

/// A named demo: a scenario and what it injects (what happens is computed).
#[derive(Debug, Clone, Copy)]
pub struct Demo {
    /// The name `picasso-sim demo NAME` takes.
    pub name: &'static str,
    /// What the scenario injects, in a sentence (input, not outcome).
    pub setup: &'static str,
    /// The scenario file's text.
    pub scenario: &'static str,
}

macro_rules! demo {
    ($name:literal, $file:literal, $setup:literal) => {
        Demo {
            name: $name,
            setup: $setup,
            scenario: include_str!(concat!("../../scenarios/", $file)),
        }
    };
}

/// Every demo, in the order `picasso-sim demo` lists them.
pub const DEMOS: &[Demo] = &[
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

/// A demo run: its scenario (servers applied), each policy's outcome and, per policy,
/// every message's story.
#[derive(Debug)]
pub struct DemoRun {
    /// The demo.
    pub demo: Demo,
    /// The scenario as run.
    pub scenario: Scenario,
    /// One outcome per policy, in [`Policy::ALL`] order, then the extra ones.
    pub outcomes: Vec<Outcome>,
    /// Per outcome, what the run showed of each message.
    pub stories: Vec<Vec<MessageStory>>,
}

/// Why a demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// No demo has that name.
    #[error("no demo named {0:?}; `picasso-sim demo` lists them")]
    Unknown(String),
    /// The embedded scenario does not parse (a build of this crate checks it does).
    #[error("{0}")]
    Scenario(String),
    /// The simulator failed.
    #[error("{policy}: {source}")]
    Sim {
        /// The policy whose run failed.
        policy: Policy,
        /// Why.
        #[source]
        source: SimError,
    },
}

/// The demo named `name`.
pub fn find(name: &str) -> Option<Demo> {
    DEMOS.iter().find(|d| d.name == name).copied()
}

/// Runs demo `name` under every policy, then under each of `extra` (JavaScript
/// widgets, say), against `servers` (the scenario's own when `None`).
///
/// # Errors
/// [`DemoError`] when there is no such demo or a run fails.
pub fn run(name: &str, servers: Option<Servers>, extra: &[Policy]) -> Result<DemoRun, DemoError> {
    let demo = find(name).ok_or_else(|| DemoError::Unknown(name.to_owned()))?;
    let mut scenario = picasso_core::parse_scenario(demo.name, demo.scenario)
        .map_err(|e| DemoError::Scenario(e.to_string()))?;
    if let Some(servers) = servers {
        scenario.servers = servers;
    }
    let mut outcomes = Vec::new();
    for policy in Policy::ALL.into_iter().chain(extra.iter().copied()) {
        let o = crate::run_scenario(&scenario, policy)
            .map_err(|source| DemoError::Sim { policy, source })?;
        outcomes.push(o);
    }
    let stories = outcomes.iter().map(|o| stories(&scenario, o)).collect();
    Ok(DemoRun {
        demo,
        scenario,
        outcomes,
        stories,
    })
}

/// A scripted fault in one line: where, what, when and on what (from the scenario).
pub fn describe_fault(f: &picasso_core::scenario::Fault) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use picasso_core::parse_scenario;

    use crate::Property;
    use crate::story::Claim;
    use crate::widget::Terminal;

    /// Every claim every demo prints, checked against its run by a second route: the
    /// invariant results, the widget's terminal state, the transcript's lines.
    #[test]
    fn every_printed_claim_matches_its_run() {
        for (d, servers) in DEMOS
            .iter()
            .flat_map(|d| picasso_core::scenario::Servers::ALL.map(|s| (d, s)))
        {
            let mut scenario = parse_scenario(d.name, d.scenario).unwrap();
            scenario.servers = servers;
            for policy in Policy::ALL {
                let o = crate::run_scenario(&scenario, policy).unwrap();
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
                    let ctx = format!("{} {} {policy} {place}", d.name, servers.name());
                    for claim in &story.claims {
                        match claim {
                            Claim::AnswerShown { times, .. } => {
                                if *times > 1 {
                                    assert!(broken(Property::ExactText, &place), "{ctx}: {claim}");
                                }
                                // Shown once by a widget that holds its invariants:
                                // the message ended with that answer.
                                if *times == 1 && o.violations.iter().all(|v| v.place != place) {
                                    assert!(
                                        matches!(m.terminal, Some(Terminal::Complete(_))),
                                        "{ctx}: {claim}"
                                    );
                                }
                            }
                            Claim::NothingShown => {
                                assert!(broken(Property::NoSilentDrop, &place), "{ctx}: {claim}");
                            }
                            Claim::AnswerShownMixed { times, .. } => {
                                assert!(broken(Property::ExactText, &place), "{ctx}: {claim}");
                                assert!(
                                    m.final_text
                                        .matches(
                                            crate::invariants::expected_answer(
                                                &scenario,
                                                &picasso_core::scenario::AnswerBook::new(
                                                    &scenario.answers
                                                ),
                                                &o.sessions
                                                    .iter()
                                                    .find(|s| s.id == story.session)
                                                    .unwrap()
                                                    .tenant,
                                                &m.text,
                                            )
                                            .as_str()
                                        )
                                        .count()
                                        == *times,
                                    "{ctx}: {claim}"
                                );
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
                                let lines = o
                                    .transcript
                                    .lines()
                                    .filter(|l| l.contains(&format!("] {place} ")))
                                    .filter(|l| {
                                        l.contains("POST chat #") && l.ends_with("(fallback)")
                                    })
                                    .count();
                                assert_eq!(lines, *posts as usize, "{ctx}: {claim}");
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
}
