//! Which scripted fault strikes which request.
//!
//! Every server asks the same question of the same book: "here is a request, does a
//! fault strike it?" The answer depends only on the scenario, the seed, the request's
//! identity and how often each fault has already struck, never on arrival order for
//! probabilities, so concurrent servers stay reproducible.

use crate::rng;
use crate::scenario::{Caller, Fault, FaultTarget, Scenario};

/// What a server knows about a request when it asks whether a fault strikes it.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestFacts<'a> {
    /// The tenant hash, if the request names one.
    pub tenant: Option<&'a str>,
    /// The session id, if known.
    pub session: Option<&'a str>,
    /// The message id, if known.
    pub message: Option<&'a str>,
    /// Bedrock: which server is calling.
    pub via: Option<Caller>,
    /// Bedrock: the model id called, percent-decoded.
    pub model: Option<&'a str>,
    /// Bedrock: the SDK's attempt number (from `amz-sdk-request`), 1 for the first.
    pub attempt: u32,
}

/// The faults of one scenario at one place, with how often each has struck.
#[derive(Debug, Clone)]
pub struct FaultBook {
    seed: u64,
    target: FaultTarget,
    faults: Vec<(usize, Fault)>,
    struck: Vec<u32>,
}

/// The fault books of one server, one [`FaultBook`] per place it serves (the gateway:
/// `gateway` and `network`; the Master: `master_config` and `master_chat`); a place it
/// does not serve strikes nothing. Held behind the server's one lock.
#[derive(Debug, Clone)]
pub struct FaultBooks {
    books: Vec<FaultBook>,
}

impl FaultBooks {
    /// The books of `scenario` for `targets`.
    pub fn new(scenario: &Scenario, targets: &[FaultTarget]) -> FaultBooks {
        FaultBooks {
            books: targets
                .iter()
                .map(|t| FaultBook::new(scenario, *t))
                .collect(),
        }
    }

    /// The first fault at `target` that strikes this request (see [`FaultBook::strike`]).
    pub fn strike(&mut self, target: FaultTarget, facts: &RequestFacts<'_>) -> Option<Fault> {
        self.books
            .iter_mut()
            .find(|b| b.target == target)?
            .strike(facts)
    }
}

impl FaultBook {
    /// The faults of `scenario` that strike at `target`.
    pub fn new(scenario: &Scenario, target: FaultTarget) -> FaultBook {
        let faults: Vec<(usize, Fault)> = scenario
            .faults
            .iter()
            .enumerate()
            .filter(|(_, f)| f.target == target)
            .map(|(i, f)| (i, f.clone()))
            .collect();
        FaultBook {
            seed: scenario.seed,
            target,
            struck: vec![0; faults.len()],
            faults,
        }
    }

    /// Where this book's faults strike.
    pub fn target(&self) -> FaultTarget {
        self.target
    }

    /// The first fault that strikes this request, counted as struck; `None` lets it through.
    pub fn strike(&mut self, facts: &RequestFacts<'_>) -> Option<Fault> {
        let seed = self.seed;
        for (slot, (index, fault)) in self.faults.iter().enumerate() {
            if !applies(fault, facts) {
                continue;
            }
            if fault.times.is_some_and(|times| self.struck[slot] >= times) {
                continue;
            }
            if let Some(p) = fault.probability {
                let attempt = facts.attempt.to_string();
                let roll = rng::unit(
                    seed,
                    &[
                        "fault",
                        &index.to_string(),
                        facts.tenant.unwrap_or(""),
                        facts.session.unwrap_or(""),
                        facts.message.unwrap_or(""),
                        &attempt,
                    ],
                );
                if roll >= p {
                    continue;
                }
            }
            // Saturating: a long `serve` session may strike more than u32::MAX times.
            self.struck[slot] = self.struck[slot].saturating_add(1);
            return Some(fault.clone());
        }
        None
    }
}

/// Whether the fault's filters (tenant, session, message, caller, model, attempts) admit the request.
fn applies(fault: &Fault, facts: &RequestFacts<'_>) -> bool {
    let same =
        |want: &Option<String>, got: Option<&str>| want.as_deref().is_none_or(|w| got == Some(w));
    same(&fault.tenant, facts.tenant)
        && same(&fault.session, facts.session)
        && same(&fault.message, facts.message)
        && same(&fault.model, facts.model)
        && fault.via.is_none_or(|v| facts.via == Some(v))
        && fault.attempts.is_none_or(|n| facts.attempt.max(1) <= n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::FaultKind;

    fn scenario_with(faults: Vec<Fault>) -> Scenario {
        let mut s = Scenario::default_scenario();
        s.faults = faults;
        s
    }

    #[test]
    fn filters_times_and_attempts() {
        let mut f = Fault::new(FaultTarget::Bedrock, FaultKind::Throttling);
        f.message = Some("m1".into());
        f.attempts = Some(2);
        let mut g = Fault::new(FaultTarget::Bedrock, FaultKind::Internal);
        g.times = Some(1);
        let mut book = FaultBook::new(&scenario_with(vec![f, g]), FaultTarget::Bedrock);
        let m1 = |attempt| RequestFacts {
            message: Some("m1"),
            attempt,
            ..Default::default()
        };
        assert_eq!(book.strike(&m1(1)).unwrap().kind, FaultKind::Throttling);
        assert_eq!(book.strike(&m1(2)).unwrap().kind, FaultKind::Throttling);
        // Third attempt gets past the throttling fault and meets the one-shot internal one.
        assert_eq!(book.strike(&m1(3)).unwrap().kind, FaultKind::Internal);
        assert!(book.strike(&m1(3)).is_none());
    }

    #[test]
    fn a_model_filter_spares_other_models() {
        let mut f = Fault::new(FaultTarget::Bedrock, FaultKind::Throttling);
        f.model = Some("amazon.nova-lite-v1:0".into());
        let mut book = FaultBook::new(&scenario_with(vec![f]), FaultTarget::Bedrock);
        let call = |model| RequestFacts {
            model: Some(model),
            attempt: 1,
            ..Default::default()
        };
        assert!(
            book.strike(&call("anthropic.claude-3-haiku-20240307-v1:0"))
                .is_none()
        );
        assert!(book.strike(&call("amazon.nova-lite-v1:0")).is_some());
        assert!(
            book.strike(&RequestFacts::default()).is_none(),
            "no model, no strike"
        );
    }

    #[test]
    fn other_targets_are_not_in_the_book() {
        let f = Fault::new(FaultTarget::Gateway, FaultKind::Drop);
        let mut book = FaultBook::new(&scenario_with(vec![f]), FaultTarget::Bedrock);
        assert!(book.strike(&RequestFacts::default()).is_none());
    }

    #[test]
    fn probability_is_a_share_and_reproducible() {
        let mut f = Fault::new(FaultTarget::Network, FaultKind::Drop);
        f.probability = Some(0.3);
        let s = scenario_with(vec![f]);
        let count = |s: &Scenario| {
            let mut book = FaultBook::new(s, FaultTarget::Network);
            (0..2000)
                .filter(|i| {
                    let id = format!("m{i}");
                    book.strike(&RequestFacts {
                        message: Some(&id),
                        ..Default::default()
                    })
                    .is_some()
                })
                .count()
        };
        let n = count(&s);
        assert_eq!(n, count(&s));
        assert!((500..700).contains(&n), "{n}");
    }
}
