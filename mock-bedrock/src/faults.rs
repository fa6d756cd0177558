//! Which fault strikes a request, and what it does to the answer.
//!
//! Scenario faults go through `picasso_core`'s [`FaultBook`], the same book every
//! server uses, so the filters (tenant, session, message, caller, attempts), `times`
//! and seeded `probability` mean the same everywhere. Faults armed through the admin
//! API are one-off: each strikes the next request it matches, then is gone. They are
//! tried before the scenario's own.

use crate::error::ApiError;
use crate::operations::Operation;
use picasso_core::fault::{FaultBook, RequestFacts};
use picasso_core::scenario::{Fault, FaultKind, FaultTarget, Scenario};
use serde_json::json;

/// Why a fault cannot be armed at mock Bedrock.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArmError {
    /// The fault is for another place (`where` must be `bedrock`).
    #[error("fault is for `{0}`, mock Bedrock only takes `where = \"bedrock\"`")]
    WrongTarget(&'static str),
    /// The kind makes no sense at Bedrock (e.g. `malformed_frame`, an SSE fault).
    #[error("fault kind `{0}` cannot strike at Bedrock")]
    KindNotAllowed(&'static str),
    /// The fault breaks a rule a scenario file's faults keep (a missing `delay_ms`,
    /// `times = 0`, a probability over 1, a field its kind does not take, …): the
    /// scenario loader's own messages, `field: why`, joined by `; `.
    #[error("fault is not valid: {0}")]
    Invalid(String),
}

/// The faults in force: the scenario's book, and the armed one-offs.
#[derive(Debug, Clone)]
pub(crate) struct Faults {
    book: FaultBook,
    /// One single-fault book per armed fault, in arming order; a book of one gives
    /// an armed fault exactly the matching rules of a scenario fault.
    armed: Vec<FaultBook>,
}

impl Faults {
    /// The faults of `scenario`, none armed.
    pub(crate) fn new(scenario: &Scenario) -> Faults {
        Faults {
            book: FaultBook::new(scenario, FaultTarget::Bedrock),
            armed: Vec::new(),
        }
    }

    /// The same armed faults, with the book of another scenario.
    pub(crate) fn with_book_of(self, scenario: &Scenario) -> Faults {
        Faults {
            book: FaultBook::new(scenario, FaultTarget::Bedrock),
            armed: self.armed,
        }
    }

    /// Arms `fault` to strike the next request it matches.
    ///
    /// # Errors
    ///
    /// [`ArmError`] when the fault is not one mock Bedrock can deliver.
    pub(crate) fn arm(&mut self, scenario: &Scenario, fault: Fault) -> Result<(), ArmError> {
        if fault.target != FaultTarget::Bedrock {
            return Err(ArmError::WrongTarget(fault.target.as_str()));
        }
        if !fault.kind.allowed_at(FaultTarget::Bedrock) {
            return Err(ArmError::KindNotAllowed(fault.kind.as_str()));
        }
        check_like_a_scenario_fault(scenario, &fault)?;
        let single = Scenario {
            faults: vec![fault],
            answers: Vec::new(),
            sessions: Vec::new(),
            ..scenario.clone()
        };
        self.armed
            .push(FaultBook::new(&single, FaultTarget::Bedrock));
        Ok(())
    }

    /// How many armed faults have not struck yet.
    pub(crate) fn armed(&self) -> usize {
        self.armed.len()
    }

    /// The fault that strikes this request, if any: armed ones first.
    pub(crate) fn strike(&mut self, facts: &RequestFacts<'_>) -> Option<Fault> {
        for i in 0..self.armed.len() {
            if let Some(fault) = self.armed[i].strike(facts) {
                self.armed.remove(i);
                return Some(fault);
            }
        }
        self.book.strike(facts)
    }
}

/// Runs the scenario loader's checks on an armed fault, so the admin API takes no fault
/// a scenario file could not hold (found by `tests/fuzz_request.rs`: `times = 0` was
/// armed, counted, and never struck). Left out: the checks that a fault names a tenant,
/// session or message of the scenario (armed faults aim at live clients' ids), and the
/// list of `exception` names (an armed exception may be any name, to test that one
/// outside an operation's union never reaches the wire: see [`Effect`]).
fn check_like_a_scenario_fault(scenario: &Scenario, fault: &Fault) -> Result<(), ArmError> {
    let alone = Scenario {
        faults: vec![fault.clone()],
        ..scenario.clone()
    };
    let problems: Vec<String> = picasso_core::load::validate(&alone)
        .into_iter()
        .filter_map(|(path, why)| {
            let field = path.strip_prefix("faults[0]")?.trim_start_matches('.');
            let left_out = matches!(field, "tenant" | "session" | "message" | "exception");
            (!left_out)
                .then(|| format!("{}: {why}", if field.is_empty() { "fault" } else { field }))
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ArmError::Invalid(problems.join("; ")))
    }
}

/// What a struck fault does to one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// An HTTP error instead of the answer.
    Refuse(ApiError),
    /// The first token comes this much later.
    SlowFirstToken {
        /// Extra milliseconds before the first token.
        delay_ms: u64,
    },
    /// After `after_tokens` tokens, silence: for `delay_ms`, or for good.
    Stall {
        /// Tokens sent before the stall.
        after_tokens: u32,
        /// How long; `None` stalls until the client gives up.
        delay_ms: Option<u64>,
    },
    /// After `after_tokens` tokens, a modeled exception frame, then the end.
    Exception {
        /// Tokens sent before the exception.
        after_tokens: u32,
        /// The lowerCamel union member, e.g. `throttlingException`.
        exception_type: String,
    },
    /// After `after_tokens` tokens, half a frame and the connection breaks.
    Drop {
        /// Tokens sent before the drop.
        after_tokens: u32,
    },
    /// After `after_tokens` tokens, a frame whose message CRC is wrong.
    CorruptFrame {
        /// Tokens sent before the corrupt frame.
        after_tokens: u32,
    },
}

impl Effect {
    /// What `fault` does. Kinds that cannot strike at Bedrock (the scenario loader
    /// refuses them, but a hand-built scenario might not) do nothing.
    pub fn of(fault: &Fault) -> Option<Effect> {
        let after_tokens = fault.after_tokens.unwrap_or(0);
        if let Some(err) = ApiError::for_fault(fault.kind) {
            return Some(Effect::Refuse(err));
        }
        Some(match fault.kind {
            FaultKind::SlowFirstToken => Effect::SlowFirstToken {
                delay_ms: fault.delay_ms.unwrap_or(0),
            },
            FaultKind::Stall => Effect::Stall {
                after_tokens,
                delay_ms: fault.delay_ms,
            },
            FaultKind::Exception => Effect::Exception {
                after_tokens,
                exception_type: lower_camel(
                    fault
                        .exception
                        .as_deref()
                        .unwrap_or("modelStreamErrorException"),
                ),
            },
            FaultKind::Drop => Effect::Drop { after_tokens },
            FaultKind::CorruptFrame => Effect::CorruptFrame { after_tokens },
            _ => return None,
        })
    }

    /// The effect as `op` can carry it: an exception type outside `op`'s stream union
    /// (e.g. `modelTimeoutException` on ConverseStream, armed through the admin API,
    /// which the scenario loader's check does not cover) becomes
    /// `modelStreamErrorException`, a member of both unions. Every SDK reports an
    /// out-of-union type as an unknown error with no message (bedrock-wire.md §6.2),
    /// which real Bedrock never sends.
    pub fn for_operation(self, op: Operation) -> Effect {
        match self {
            Effect::Exception {
                after_tokens,
                exception_type,
            } if op.is_streaming() && !op.stream_has_exception(&exception_type) => {
                tracing::warn!(
                    operation = op.as_str(),
                    %exception_type,
                    "mock-bedrock: exception not in the operation's stream union, sending modelStreamErrorException"
                );
                Effect::Exception {
                    after_tokens,
                    exception_type: "modelStreamErrorException".to_owned(),
                }
            }
            other => other,
        }
    }

    /// Tokens sent before a mid-stream fault takes effect; 0 for the rest.
    pub fn after_tokens(&self) -> u32 {
        match self {
            Effect::Stall { after_tokens, .. }
            | Effect::Exception { after_tokens, .. }
            | Effect::Drop { after_tokens }
            | Effect::CorruptFrame { after_tokens } => *after_tokens,
            Effect::Refuse(_) | Effect::SlowFirstToken { .. } => 0,
        }
    }
}

/// Stream exceptions are union members, spelled lowerCamel on the wire; scenario
/// authors may write the PascalCase error name.
fn lower_camel(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
        None => "modelStreamErrorException".to_owned(),
    }
}

/// The payload of an exception frame: `{"message"}` plus the shape's extra members.
pub fn exception_payload(exception_type: &str) -> serde_json::Value {
    match exception_type {
        "modelStreamErrorException" => json!({
            "message": "The model stream failed (mock fault).",
            "originalStatusCode": 500,
            "originalMessage": "Model stream error injected by mock Bedrock.",
        }),
        "throttlingException" => {
            json!({"message": "Too many requests, please wait before trying again."})
        }
        _ => json!({"message": format!("{exception_type} injected by mock Bedrock.")}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bedrock(kind: FaultKind) -> Fault {
        Fault::new(FaultTarget::Bedrock, kind)
    }

    #[test]
    fn armed_faults_strike_once_and_before_the_scenario() {
        let mut scenario = Scenario::default_scenario();
        scenario.faults = vec![bedrock(FaultKind::Internal)];
        let mut faults = Faults::new(&scenario);
        let mut armed = bedrock(FaultKind::Throttling);
        armed.message = Some("m2".into());
        faults.arm(&scenario, armed).unwrap();
        let facts = |message| RequestFacts {
            message: Some(message),
            attempt: 1,
            ..Default::default()
        };
        // m1 does not match the armed fault: the scenario's internal error strikes.
        assert_eq!(
            faults.strike(&facts("m1")).unwrap().kind,
            FaultKind::Internal
        );
        assert_eq!(
            faults.strike(&facts("m2")).unwrap().kind,
            FaultKind::Throttling
        );
        assert_eq!(faults.armed(), 0);
        assert_eq!(
            faults.strike(&facts("m2")).unwrap().kind,
            FaultKind::Internal
        );
    }

    #[test]
    fn arming_refuses_other_places_and_kinds() {
        let scenario = Scenario::default_scenario();
        let mut faults = Faults::new(&scenario);
        let gateway = Fault::new(FaultTarget::Gateway, FaultKind::Drop);
        assert_eq!(
            faults.arm(&scenario, gateway),
            Err(ArmError::WrongTarget("gateway"))
        );
        assert!(matches!(
            faults.arm(&scenario, bedrock(FaultKind::MalformedFrame)),
            Err(ArmError::KindNotAllowed(_))
        ));
    }

    /// Found by `tests/fuzz_request.rs`: faults a scenario file could not hold are
    /// refused, with the loader's words; references to sessions and messages are not
    /// checked (armed faults aim at live clients).
    #[test]
    fn arming_refuses_what_a_scenario_would() {
        let scenario = Scenario::default_scenario();
        let mut faults = Faults::new(&scenario);
        let mut never = bedrock(FaultKind::Throttling);
        never.times = Some(0);
        let Err(ArmError::Invalid(why)) = faults.arm(&scenario, never) else {
            panic!("times = 0 armed");
        };
        assert!(why.starts_with("times: "), "{why}");
        let slow = bedrock(FaultKind::SlowFirstToken);
        assert!(matches!(
            faults.arm(&scenario, slow),
            Err(ArmError::Invalid(_))
        ));
        let mut likely = bedrock(FaultKind::Internal);
        likely.probability = Some(2.5);
        assert!(matches!(
            faults.arm(&scenario, likely),
            Err(ArmError::Invalid(_))
        ));
        let mut live = bedrock(FaultKind::Internal);
        live.session = Some("a-live-session".into());
        live.message = Some("a-live-message".into());
        faults.arm(&scenario, live).unwrap();
        assert_eq!(faults.armed(), 1);
    }

    #[test]
    fn armed_faults_respect_attempts() {
        let scenario = Scenario::default_scenario();
        let mut faults = Faults::new(&scenario);
        let mut f = bedrock(FaultKind::Throttling);
        f.attempts = Some(1);
        faults.arm(&scenario, f).unwrap();
        let retry = RequestFacts {
            attempt: 2,
            ..Default::default()
        };
        assert!(faults.strike(&retry).is_none());
        assert_eq!(faults.armed(), 1);
    }

    #[test]
    fn effects_of_every_bedrock_kind() {
        for kind in FaultKind::ALL {
            let effect = Effect::of(&bedrock(kind));
            assert_eq!(
                effect.is_some(),
                kind.allowed_at(FaultTarget::Bedrock),
                "{kind:?}"
            );
        }
        let mut f = bedrock(FaultKind::Exception);
        f.exception = Some("ThrottlingException".into());
        f.after_tokens = Some(3);
        assert_eq!(
            Effect::of(&f),
            Some(Effect::Exception {
                after_tokens: 3,
                exception_type: "throttlingException".into()
            })
        );
    }
}
