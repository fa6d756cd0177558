//! A swarm campaign (in the spirit of TigerBeetle's VOPR): scenarios generated from a
//! seed — tenants, rollout percentages, answers, fault schedules, sessions, config
//! changes, closed pages, either servers — run one after another under a policy until
//! one breaks an invariant or the time runs out. The breaking scenario is then shrunk
//! (faults, sessions, messages, config changes removed while it still breaks the same
//! property) and handed back as a scenario a user can write to a file and replay with
//! `picasso-sim run FILE --replay`.
//!
//! Case `i` of seed `s` is a pure function of `(s, i)` ([`generate`]), so the same
//! seed explores the same cases in the same order on any machine; a time limit only
//! decides how far along that sequence a campaign gets. With several workers, worker
//! `w` of `n` takes cases `w, w + n, w + 2n, …`; a failure at case `c` lowers a shared
//! bound to `c`, and every worker still runs its cases below the bound, so the case
//! reported is the lowest failing one — the one a single worker would find — whatever
//! the number of workers (unless the time runs out first).

use crate::invariants::Property;
use crate::{Policy, RunOptions, Transport, Violation, run_with};
use fake::Fake;
use fake::faker::lorem::en::Words;
use picasso_core::rng;
use picasso_core::scenario::{
    Answer, Caller, ConfigChange, Fault, FaultKind, FaultTarget, Limits, Message, Pacing, Scenario,
    Servers, Session, StopReason, Tenant, WidgetSettings,
};
use rand::Rng;
use rand::seq::IndexedRandom;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const TENANTS: [&str; 2] = ["fo85e6a06dcdf4", "au47d9f8e2c31b"];
const ORIGIN: &str = "https://widget.example";

/// Where faults may strike, with weights: drops of an open stream four times as often,
/// since they are what the reconnect and resume paths are for.
const PLACES: [(FaultTarget, FaultKind, u32); 20] = [
    (FaultTarget::Bedrock, FaultKind::Throttling, 1),
    (FaultTarget::Bedrock, FaultKind::Internal, 1),
    (FaultTarget::Bedrock, FaultKind::AccessDenied, 1),
    (FaultTarget::Bedrock, FaultKind::SlowFirstToken, 1),
    (FaultTarget::Bedrock, FaultKind::Stall, 1),
    (FaultTarget::Bedrock, FaultKind::Exception, 1),
    (FaultTarget::Bedrock, FaultKind::Drop, 1),
    (FaultTarget::Bedrock, FaultKind::CorruptFrame, 1),
    (FaultTarget::Gateway, FaultKind::Latency, 1),
    (FaultTarget::Gateway, FaultKind::Status, 1),
    (FaultTarget::Gateway, FaultKind::Drop, 4),
    (FaultTarget::Gateway, FaultKind::Stall, 1),
    (FaultTarget::Gateway, FaultKind::MalformedFrame, 1),
    (FaultTarget::Gateway, FaultKind::WrongContentType, 1),
    (FaultTarget::Network, FaultKind::Refuse, 1),
    (FaultTarget::Network, FaultKind::Drop, 4),
    (FaultTarget::Network, FaultKind::Stall, 1),
    (FaultTarget::MasterChat, FaultKind::Status, 1),
    (FaultTarget::MasterChat, FaultKind::Drop, 1),
    (FaultTarget::MasterConfig, FaultKind::Status, 1),
];

/// Case `case` of the campaign seeded `seed`: a valid scenario.
pub fn generate(seed: u64, case: u64) -> Scenario {
    let mut r = rng::stream(seed, &format!("swarm/{case}"));
    let tenants = TENANTS
        .iter()
        .map(|hash| Tenant {
            hash: (*hash).into(),
            name: String::new(),
            streaming_enabled: r.random_ratio(3, 4),
            streaming_percentage: *[0.0, 1.0, 50.0, 99.0, 100.0, 100.0]
                .choose(&mut r)
                .unwrap_or(&100.0),
            streaming_model: picasso_core::scenario::DEFAULT_MODEL.into(),
            allowed_origins: vec![ORIGIN.into()],
        })
        .collect();
    let answer = Answer {
        id: "generated".into(),
        model: None,
        prompt: None,
        pattern: None,
        tokens: Vec::new(),
        text: Some(words(&mut r, 2, 8)),
        pacing: Some(Pacing {
            first_token_ms: r.random_range(0..2_000),
            gap_ms: r.random_range(0..200),
        }),
        usage: None,
        stop_reason: StopReason::EndTurn,
    };
    let faults = (0..r.random_range(0..4)).map(|_| fault(&mut r)).collect();
    let sessions = (0..r.random_range(1..4))
        .map(|i| session(&mut r, i))
        .collect();
    let config_changes = if r.random_ratio(1, 5) {
        vec![ConfigChange {
            at_ms: r.random_range(0..6_000),
            tenant: r.random_bool(0.5).then(|| TENANTS[0].to_owned()),
            streaming_percentage: r.random_bool(0.5).then_some(0.0),
            streaming_enabled: r.random_bool(0.5).then_some(false),
        }]
        .into_iter()
        .filter(|c| c.streaming_percentage.is_some() || c.streaming_enabled.is_some())
        .collect()
    } else {
        Vec::new()
    };
    Scenario {
        name: format!("swarm-{seed}-{case}"),
        description: format!("picasso-sim swarm --seed {seed}, case {case}"),
        seed: r.random_range(0..(1u64 << 62)),
        models: Vec::new(),
        tenants,
        answers: vec![answer],
        faults,
        sessions,
        limits: Limits::default(),
        widget: WidgetSettings {
            resume: r.random_bool(0.5),
            ..WidgetSettings::default()
        },
        rollout: None,
        servers: if r.random_ratio(1, 5) {
            Servers::AsWritten
        } else {
            Servers::Hardened
        },
        config_changes,
    }
}

fn words(r: &mut impl Rng, min: usize, max: usize) -> String {
    let w: Vec<String> = Words(min..max + 1).fake_with_rng(r);
    w.join(" ")
}

fn fault(r: &mut impl Rng) -> Fault {
    let total: u32 = PLACES.iter().map(|p| p.2).sum();
    let mut pick = r.random_range(0..total);
    let (target, kind) = PLACES
        .iter()
        .find(|(_, _, w)| {
            if pick < *w {
                true
            } else {
                pick -= w;
                false
            }
        })
        .map_or((FaultTarget::Network, FaultKind::Drop), |(t, k, _)| {
            (*t, *k)
        });
    let mut f = Fault::new(target, kind);
    let after = r.random_range(0..6);
    let delay = *[500u64, 5_000, 20_000].choose(r).unwrap_or(&500);
    f.after_tokens = kind.takes_after_tokens().then_some(after);
    // A stall without a delay lasts forever (what the unmount cleanup is for).
    f.delay_ms = if kind == FaultKind::Stall {
        (after % 3 != 2).then_some(delay)
    } else {
        kind.needs_delay().then_some(delay)
    };
    f.status = (kind == FaultKind::Status)
        .then(|| *[400u16, 403, 429, 500, 503].choose(r).unwrap_or(&500));
    f.times = r.random_bool(0.5).then_some(1);
    f.via = (target == FaultTarget::Bedrock && r.random_bool(0.5)).then(|| {
        if r.random_bool(0.5) {
            Caller::Gateway
        } else {
            Caller::Master
        }
    });
    f
}

fn session(r: &mut impl Rng, index: usize) -> Session {
    let id = format!("s{index}");
    let messages = (0..r.random_range(1..4))
        .map(|i| Message {
            id: format!("{id}-m{i}"),
            text: words(r, 1, 5),
            think_ms: r.random_range(0..3_000),
            at_ms: r.random_ratio(1, 4).then(|| r.random_range(0..4_000)),
        })
        .collect();
    Session {
        tenant: TENANTS[r.random_range(0..TENANTS.len())].into(),
        start_ms: r.random_range(0..2_000),
        event_source: r.random_ratio(5, 6),
        origin: None,
        close_at_ms: r.random_ratio(1, 6).then(|| r.random_range(500..8_000)),
        messages,
        id,
    }
}

/// What a campaign is asked to do.
#[derive(Debug, Clone)]
pub struct SwarmConfig {
    /// The campaign's seed: the same seed explores the same cases.
    pub seed: u64,
    /// The widget policy under test.
    pub policy: Policy,
    /// Stop after this much wall time.
    pub time: Duration,
    /// Stop after this many cases (whichever comes first).
    pub max_cases: Option<u64>,
    /// Worker threads.
    pub jobs: usize,
    /// How the gateway and the Master call Bedrock: the SDK by default; `direct` (same
    /// transcripts, several times faster) for long campaigns.
    pub transport: Transport,
}

/// A scenario that breaks an invariant: as generated, and shrunk.
#[derive(Debug, Clone)]
pub struct Found {
    /// The case index.
    pub case: u64,
    /// The generated scenario.
    pub original: Scenario,
    /// The smallest scenario found that still breaks `property`.
    pub shrunk: Scenario,
    /// The property broken.
    pub property: Property,
    /// The shrunk scenario's violations.
    pub violations: Vec<Violation>,
}

/// How a campaign went.
#[derive(Debug, Clone)]
pub struct SwarmReport {
    /// Cases run to their end.
    pub cases: u64,
    /// Messages simulated in them.
    pub messages: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// The first breaking case (lowest index among those found), if any.
    pub found: Option<Found>,
}

/// Progress, for a status line: cases and messages so far, time elapsed.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Cases run.
    pub cases: u64,
    /// Messages simulated.
    pub messages: u64,
    /// Wall time so far.
    pub elapsed: Duration,
}

/// The violations of one case (`None`: the simulator itself failed, which counts as a
/// break too, reported by the caller from the error).
fn violations(scenario: &Scenario, policy: Policy, transport: Transport) -> (Vec<Violation>, u64) {
    let options = RunOptions {
        transcript: false,
        check: true,
        transport,
    };
    let messages = scenario
        .sessions
        .iter()
        .map(|s| s.messages.len() as u64)
        .sum();
    match run_with(scenario, policy, options) {
        Ok(o) => (o.violations, messages),
        Err(e) => (
            vec![Violation {
                property: Property::OneOutcome,
                place: "simulator".into(),
                detail: format!("the run failed: {e}"),
            }],
            messages,
        ),
    }
}

/// Runs a campaign; `progress` is called about once a second from the calling thread.
pub fn swarm(config: &SwarmConfig, mut progress: impl FnMut(Progress)) -> SwarmReport {
    let start = Instant::now();
    // The lowest failing case so far (`u64::MAX`: none); cases at or past it are skipped.
    let bound = AtomicU64::new(u64::MAX);
    let cases = AtomicU64::new(0);
    let messages = AtomicU64::new(0);
    let best: std::sync::Mutex<Option<(u64, Scenario, Property)>> = std::sync::Mutex::new(None);
    let jobs = config.jobs.max(1) as u64;
    std::thread::scope(|scope| {
        for worker in 0..jobs {
            let (bound, cases, messages, best) = (&bound, &cases, &messages, &best);
            scope.spawn(move || {
                let mut case = worker;
                while case < bound.load(Ordering::Relaxed)
                    && start.elapsed() < config.time
                    && config.max_cases.is_none_or(|m| case < m)
                {
                    let scenario = generate(config.seed, case);
                    let (v, n) = violations(&scenario, config.policy, config.transport);
                    cases.fetch_add(1, Ordering::Relaxed);
                    messages.fetch_add(n, Ordering::Relaxed);
                    if let Some(first) = v.first() {
                        let mut slot = best.lock().unwrap_or_else(|e| e.into_inner());
                        if slot.as_ref().is_none_or(|(c, _, _)| case < *c) {
                            *slot = Some((case, scenario, first.property));
                        }
                        bound.fetch_min(case, Ordering::Relaxed);
                        return;
                    }
                    case += jobs;
                }
            });
        }
        // The calling thread reports progress until the workers are done.
        let mut next = Duration::from_secs(1);
        while bound.load(Ordering::Relaxed) == u64::MAX
            && start.elapsed() < config.time
            && config
                .max_cases
                .is_none_or(|m| cases.load(Ordering::Relaxed) < m)
        {
            std::thread::sleep(Duration::from_millis(50));
            if start.elapsed() >= next {
                next += Duration::from_secs(1);
                progress(Progress {
                    cases: cases.load(Ordering::Relaxed),
                    messages: messages.load(Ordering::Relaxed),
                    elapsed: start.elapsed(),
                });
            }
        }
    });
    let elapsed = start.elapsed();
    let found =
        best.into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .map(|(case, original, property)| {
                let shrunk = shrink(&original, config.policy, config.transport, property);
                let (violations, _) = violations(&shrunk, config.policy, config.transport);
                Found {
                    case,
                    original,
                    shrunk,
                    property,
                    violations,
                }
            });
    SwarmReport {
        cases: cases.into_inner(),
        messages: messages.into_inner(),
        elapsed,
        found,
    }
}

/// The smallest scenario, by greedy removal, that still breaks `property` under
/// `policy`: config changes, faults, sessions and messages removed one at a time, and
/// fault knobs simplified, until no single removal keeps the break. Deterministic.
pub fn shrink(
    scenario: &Scenario,
    policy: Policy,
    transport: Transport,
    property: Property,
) -> Scenario {
    let breaks = |s: &Scenario| {
        picasso_core::load::validate(s).is_empty()
            && violations(s, policy, transport)
                .0
                .iter()
                .any(|v| v.property == property)
    };
    let mut best = scenario.clone();
    // Each pass tries every one-step simplification; at most 64 passes.
    for _ in 0..64 {
        let mut improved = false;
        for candidate in simplifications(&best) {
            if breaks(&candidate) {
                best = candidate;
                improved = true;
                break;
            }
        }
        if !improved {
            break;
        }
    }
    best
}

/// Every scenario one step simpler than `s`.
fn simplifications(s: &Scenario) -> Vec<Scenario> {
    let mut out = Vec::new();
    for i in 0..s.config_changes.len() {
        let mut c = s.clone();
        c.config_changes.remove(i);
        out.push(c);
    }
    for i in 0..s.faults.len() {
        let mut c = s.clone();
        c.faults.remove(i);
        out.push(c);
    }
    if s.sessions.len() > 1 {
        for i in 0..s.sessions.len() {
            let mut c = s.clone();
            c.sessions.remove(i);
            out.push(c);
        }
    }
    for i in 0..s.sessions.len() {
        if s.sessions[i].messages.len() > 1 {
            for j in 0..s.sessions[i].messages.len() {
                let mut c = s.clone();
                c.sessions[i].messages.remove(j);
                out.push(c);
            }
        }
        if s.sessions[i].close_at_ms.is_some() {
            let mut c = s.clone();
            c.sessions[i].close_at_ms = None;
            out.push(c);
        }
    }
    for i in 0..s.faults.len() {
        let f = &s.faults[i];
        if f.probability.is_some() || f.via.is_some() || f.times.is_some() {
            let mut c = s.clone();
            c.faults[i].via = None;
            c.faults[i].probability = None;
            out.push(c);
        }
    }
    if !s.servers.is_hardened() {
        let mut c = s.clone();
        c.servers = Servers::Hardened;
        out.push(c);
    }
    if s.widget.resume {
        let mut c = s.clone();
        c.widget.resume = false;
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_generates_the_same_cases_and_they_are_valid() {
        for case in 0..50 {
            let a = generate(7, case);
            assert_eq!(a, generate(7, case));
            let text = toml::to_string(&a).unwrap();
            let parsed = picasso_core::parse_scenario("<swarm>", &text)
                .unwrap_or_else(|e| panic!("case {case} is not valid:\n{e}\n{text}"));
            assert_eq!(parsed, a, "case {case} survives its file");
        }
        assert_ne!(generate(7, 0), generate(8, 0));
    }

    #[test]
    fn naive_fix_is_caught_and_shrunk_and_corrected_is_not() {
        let config = SwarmConfig {
            seed: 1,
            policy: Policy::NaiveFix,
            time: Duration::from_secs(600),
            max_cases: Some(200),
            jobs: 1,
            transport: Transport::Sdk,
        };
        let report = swarm(&config, |_| {});
        let found = report.found.expect("naive-fix breaks an invariant");
        assert!(
            found
                .violations
                .iter()
                .any(|v| v.property == found.property)
        );
        let size = |s: &Scenario| {
            s.faults.len() + s.sessions.iter().map(|x| x.messages.len()).sum::<usize>()
        };
        assert!(size(&found.shrunk) <= size(&found.original));
        // The same seed finds the same case, with any number of workers, and with the
        // direct transport.
        for (jobs, transport) in [
            (1, Transport::Sdk),
            (3, Transport::Sdk),
            (1, Transport::Direct),
        ] {
            let again = swarm(
                &SwarmConfig {
                    jobs,
                    transport,
                    ..config.clone()
                },
                |_| {},
            )
            .found
            .unwrap();
            assert_eq!(
                (again.case, &again.shrunk),
                (found.case, &found.shrunk),
                "{jobs}"
            );
        }

        let corrected = SwarmConfig {
            policy: Policy::Corrected,
            max_cases: Some(30),
            ..config
        };
        let report = swarm(&corrected, |_| {});
        assert!(
            report.found.is_none(),
            "{:?}",
            report.found.map(|f| f.violations)
        );
        assert_eq!(report.cases, 30);
    }
}
