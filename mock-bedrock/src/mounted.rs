//! The mocks mounted on one server, how often each matched, and the report of the
//! expectations they did not meet.

use crate::faults::ArmError;
use crate::journal::JournalEntry;
use crate::matchers::Incoming;
use crate::mock::{Mock, Times};
use picasso_core::fault::{FaultBook, RequestFacts};
use picasso_core::scenario::{Answer, Fault, FaultTarget, Scenario};
use std::fmt;

/// One mounted mock.
#[derive(Debug, Clone)]
struct Mounted {
    id: u64,
    mock: Mock,
    /// The reply's fault in a book of one, so its filters, `times`, `attempts` and
    /// `probability` mean what they mean in a scenario.
    book: Option<FaultBook>,
    /// Arrival numbers of the requests it matched.
    hits: Vec<u64>,
}

/// Every mounted mock, in mount order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Mocks {
    next_id: u64,
    mounted: Vec<Mounted>,
}

/// What the matching mock replies to one request.
#[derive(Debug, Clone)]
pub(crate) struct Matched {
    /// Which mock (for counting the hit once the request has its number).
    pub(crate) id: u64,
    pub(crate) answer: Option<Answer>,
    pub(crate) fault: Option<Fault>,
}

impl Mocks {
    /// Mounts `mock` after the others; its fault is checked as an armed one is.
    pub(crate) fn mount(&mut self, scenario: &Scenario, mock: Mock) -> Result<u64, ArmError> {
        let book = match &mock.reply.fault {
            Some(fault) => {
                if fault.target != FaultTarget::Bedrock {
                    return Err(ArmError::WrongTarget(fault.target.as_str()));
                }
                if !fault.kind.allowed_at(FaultTarget::Bedrock) {
                    return Err(ArmError::KindNotAllowed(fault.kind.as_str()));
                }
                let single = Scenario {
                    faults: vec![fault.clone()],
                    answers: Vec::new(),
                    sessions: Vec::new(),
                    ..scenario.clone()
                };
                Some(FaultBook::new(&single, FaultTarget::Bedrock))
            }
            None => None,
        };
        self.next_id += 1;
        self.mounted.push(Mounted {
            id: self.next_id,
            mock,
            book,
            hits: Vec::new(),
        });
        Ok(self.next_id)
    }

    /// The first mock (in mount order) that matches the request and has not used up
    /// its `up_to_n_times`, with its reply; its fault strikes by its own book.
    pub(crate) fn find(
        &mut self,
        request: &Incoming<'_>,
        facts: &RequestFacts<'_>,
    ) -> Option<Matched> {
        let mounted = self.mounted.iter_mut().find(|m| {
            m.mock.up_to.is_none_or(|n| (m.hits.len() as u64) < n)
                && m.mock.matcher.matches(request)
        })?;
        Some(Matched {
            id: mounted.id,
            answer: mounted.mock.reply.answer.clone(),
            fault: mounted.book.as_mut().and_then(|b| b.strike(facts)),
        })
    }

    /// Whether no mock is mounted.
    pub(crate) fn is_empty(&self) -> bool {
        self.mounted.is_empty()
    }

    /// Counts request `seq` as a hit of mock `id`.
    pub(crate) fn hit(&mut self, id: u64, seq: u64) {
        if let Some(m) = self.mounted.iter_mut().find(|m| m.id == id) {
            m.hits.push(seq);
        }
    }

    /// The arrival numbers mock `id` matched.
    pub(crate) fn hits_of(&self, id: u64) -> Vec<u64> {
        self.mounted
            .iter()
            .find(|m| m.id == id)
            .map(|m| m.hits.clone())
            .unwrap_or_default()
    }

    /// Forgets the hits (the journal they point into was cleared); mocks stay mounted.
    pub(crate) fn forget_hits(&mut self) {
        for m in &mut self.mounted {
            m.hits.clear();
        }
    }

    /// Unmounts mock `id`, returning its unmet expectation, if any.
    pub(crate) fn unmount(&mut self, id: u64) -> Option<Unmet> {
        let at = self.mounted.iter().position(|m| m.id == id)?;
        unmet(&self.mounted.remove(at))
    }

    /// Every mounted mock's unmet expectation, in mount order.
    pub(crate) fn unmet(&self) -> Vec<Unmet> {
        self.mounted.iter().filter_map(unmet).collect()
    }
}

fn unmet(m: &Mounted) -> Option<Unmet> {
    let expected = m.mock.expected?;
    let got = m.hits.len() as u64;
    (!expected.admits(got)).then(|| Unmet {
        mock: m.mock.title(),
        expected,
        hits: m.hits.clone(),
    })
}

/// One mock whose expectation was not met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmet {
    /// The mock's name or description (matcher -> reply).
    pub mock: String,
    /// What it expected.
    pub expected: Times,
    /// The arrival numbers of the requests it matched.
    pub hits: Vec<u64>,
}

/// Expectations not met, with every request the server received: what
/// [`crate::MockBedrock::verify`] returns and what a dropped server panics with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct VerificationError {
    /// The unmet expectations, in mount order.
    pub unmet: Vec<Unmet>,
    /// Every request the server received, in arrival order.
    pub received: Vec<JournalEntry>,
}

impl fmt::Display for VerificationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.unmet.len();
        writeln!(
            f,
            "mock Bedrock: {n} expectation{} not met",
            if n == 1 { "" } else { "s" }
        )?;
        for u in &self.unmet {
            let seqs: Vec<String> = u.hits.iter().map(|s| format!("#{s}")).collect();
            writeln!(
                f,
                "- {}: expected {} request{}, got {}{}",
                u.mock,
                u.expected,
                if u.expected.to_string().ends_with(" 1") {
                    ""
                } else {
                    "s"
                },
                u.hits.len(),
                if seqs.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", seqs.join(", "))
                }
            )?;
        }
        if self.received.is_empty() {
            return write!(f, "no request arrived");
        }
        write!(f, "{} request(s) arrived:", self.received.len())?;
        for e in &self.received {
            write!(
                f,
                "\n  #{} {} {} prompt {:?}",
                e.seq,
                e.operation.as_str(),
                e.model,
                e.prompt
            )?;
            for (key, value) in [
                ("tenant", &e.tenant),
                ("session", &e.session),
                ("message", &e.message),
            ] {
                if let Some(v) = value {
                    write!(f, " {key} {v}")?;
                }
            }
            write!(f, " -> {:?}", e.outcome)?;
            if let Some(answer) = &e.answer {
                write!(f, ", answer {answer:?}")?;
            }
            if let Some(fault) = &e.fault {
                write!(f, ", fault {fault}")?;
            }
            write!(f, ", {} tokens", e.tokens_sent)?;
        }
        Ok(())
    }
}
