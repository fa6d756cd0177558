//! Mounting mocks on a mock Bedrock, in the manner of `wiremock`:
//! `Mock::given(matcher).respond_with(reply).expect(n).mount(&server)`.
//!
//! A mounted mock decides the whole reply to each request it matches: its answer
//! (instead of the scenario's), its fault (instead of the scenario's and the armed
//! ones), or both. Mocks are tried in mount order, before everything the scenario
//! scripts; a request no mock matches is answered by the scenario as before. The
//! answer and fault are the scenario's own [`Answer`] and [`Fault`] (built with their
//! builders), so a test and a scenario file say the same things the same way.
//!
//! Expectations are checked when the server is dropped (or [`crate::MockBedrock::verify`]
//! is called), and a scoped mount checks its own when its [`MockGuard`] is dropped; an
//! unmet one panics with a report of what each mock expected and every request that
//! arrived.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use mock_bedrock::matchers::{model, operation};
//! use mock_bedrock::{Mock, MockBedrock, Operation};
//! use picasso_core::scenario::{Answer, Fault, FaultKind};
//! use picasso_core::Scenario;
//!
//! let server = MockBedrock::start(Scenario::default_scenario()).await;
//! Mock::given(model("amazon.nova-lite-v1:0"))
//!     .respond_with(Answer::from_text("Hello from Nova").paced(200, 20))
//!     .mount(&server)
//!     .await;
//! let _throttled = Mock::given(operation(Operation::ConverseStream))
//!     .and(model("anthropic.claude-3-haiku-20240307-v1:0"))
//!     .respond_with(Fault::bedrock(FaultKind::Throttling))
//!     .expect(0)
//!     .mount_as_scoped(&server)
//!     .await;
//! assert!(server.received_requests().await.is_empty());
//! # }
//! ```

use crate::faults::ArmError;
use crate::journal::JournalEntry;
use crate::matchers::Matcher;
use crate::server::MockBedrock;
use crate::state::MockState;
use picasso_core::scenario::{Answer, Fault};
use std::fmt;
use std::ops::{Range, RangeFrom, RangeInclusive, RangeToInclusive};

/// What a mock answers: a scripted answer, a fault, or an answer and a mid-stream
/// fault that cuts it. A fault alone cuts the answer the scenario would have given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reply {
    pub(crate) answer: Option<Answer>,
    pub(crate) fault: Option<Fault>,
}

impl Reply {
    /// The answer, with no fault.
    pub fn answer(answer: Answer) -> Reply {
        Reply {
            answer: Some(answer),
            fault: None,
        }
    }

    /// The same reply, struck by `fault` (a pre-stream error replaces the answer; a
    /// mid-stream fault cuts it at its `after_tokens`).
    pub fn with_fault(mut self, fault: Fault) -> Reply {
        self.fault = Some(fault);
        self
    }

    fn describe(&self) -> String {
        let answer = self.answer.as_ref().map(|a| format!("answer {:?}", a.id));
        let fault = self.fault.as_ref().map(|f| format!("fault {}", f.label()));
        match (answer, fault) {
            (Some(a), Some(f)) => format!("{a} cut by {f}"),
            (Some(a), None) => a,
            (None, Some(f)) => f,
            (None, None) => "the scenario's answer".to_owned(),
        }
    }
}

impl From<Answer> for Reply {
    fn from(answer: Answer) -> Reply {
        Reply::answer(answer)
    }
}

impl From<Fault> for Reply {
    fn from(fault: Fault) -> Reply {
        Reply {
            answer: None,
            fault: Some(fault),
        }
    }
}

/// How many requests a mock expects: `expect(1)`, `expect(1..=3)`, `expect(2..)`,
/// `expect(..=1)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    min: u64,
    max: Option<u64>,
}

impl Times {
    /// Whether `n` requests meet the expectation.
    pub fn admits(&self, n: u64) -> bool {
        n >= self.min && self.max.is_none_or(|max| n <= max)
    }
}

impl fmt::Display for Times {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.max {
            Some(max) if max == self.min => write!(f, "exactly {max}"),
            Some(max) if self.min == 0 => write!(f, "at most {max}"),
            Some(max) => write!(f, "between {} and {max}", self.min),
            None => write!(f, "at least {}", self.min),
        }
    }
}

impl From<u64> for Times {
    fn from(n: u64) -> Times {
        Times {
            min: n,
            max: Some(n),
        }
    }
}

impl From<RangeInclusive<u64>> for Times {
    fn from(r: RangeInclusive<u64>) -> Times {
        Times {
            min: *r.start(),
            max: Some(*r.end()),
        }
    }
}

impl From<Range<u64>> for Times {
    fn from(r: Range<u64>) -> Times {
        Times {
            min: r.start,
            max: Some(r.end.saturating_sub(1)),
        }
    }
}

impl From<RangeFrom<u64>> for Times {
    fn from(r: RangeFrom<u64>) -> Times {
        Times {
            min: r.start,
            max: None,
        }
    }
}

impl From<RangeToInclusive<u64>> for Times {
    fn from(r: RangeToInclusive<u64>) -> Times {
        Times {
            min: 0,
            max: Some(r.end),
        }
    }
}

/// A mock under construction: what it matches so far.
#[derive(Debug, Clone)]
pub struct MockBuilder {
    matcher: Matcher,
}

impl MockBuilder {
    /// Adds `matcher`'s conditions: the mock matches requests that meet all of them.
    pub fn and(mut self, matcher: Matcher) -> MockBuilder {
        self.matcher = self.matcher.and(matcher);
        self
    }

    /// What the mock replies: an [`Answer`], a [`Fault`], or a [`Reply`] with both.
    pub fn respond_with(self, reply: impl Into<Reply>) -> Mock {
        Mock {
            matcher: self.matcher,
            reply: reply.into(),
            expected: None,
            up_to: None,
            name: None,
        }
    }
}

/// A matcher and its reply, with an optional expectation; mount it on a server.
#[derive(Debug, Clone)]
pub struct Mock {
    pub(crate) matcher: Matcher,
    pub(crate) reply: Reply,
    pub(crate) expected: Option<Times>,
    pub(crate) up_to: Option<u64>,
    pub(crate) name: Option<String>,
}

impl Mock {
    /// Starts a mock that matches what `matcher` matches.
    pub fn given(matcher: Matcher) -> MockBuilder {
        MockBuilder { matcher }
    }

    /// Expects this many matching requests, checked when the server (or the scoped
    /// mount's guard) is dropped.
    pub fn expect(mut self, times: impl Into<Times>) -> Mock {
        self.expected = Some(times.into());
        self
    }

    /// Stops matching after `n` requests (later ones go to the next mock or the scenario).
    pub fn up_to_n_times(mut self, n: u64) -> Mock {
        self.up_to = Some(n);
        self
    }

    /// A name for the expectation report (the matcher's description otherwise).
    pub fn named(mut self, name: impl Into<String>) -> Mock {
        self.name = Some(name.into());
        self
    }

    /// How the report names the mock.
    pub(crate) fn title(&self) -> String {
        let described = format!("{} -> {}", self.matcher, self.reply.describe());
        match &self.name {
            Some(name) => format!("{name:?} ({described})"),
            None => described,
        }
    }

    /// Mounts the mock on `server` until the server is dropped.
    ///
    /// # Panics
    ///
    /// When the reply's fault cannot strike at Bedrock (see [`ArmError`]).
    pub async fn mount(self, server: &MockBedrock) {
        self.mount_on(server.state());
    }

    /// Mounts the mock until the returned guard is dropped, which checks its
    /// expectation then (not the server's drop) and unmounts it.
    ///
    /// # Panics
    ///
    /// When the reply's fault cannot strike at Bedrock (see [`ArmError`]).
    pub async fn mount_as_scoped(self, server: &MockBedrock) -> MockGuard {
        let id = self.mount_on(server.state());
        MockGuard {
            state: server.state().clone(),
            id,
        }
    }

    /// Mounts the mock on a mock's state (for in-process use, e.g. the simulator).
    ///
    /// # Panics
    ///
    /// When the reply's fault cannot strike at Bedrock (see [`ArmError`]).
    pub fn mount_on(self, state: &MockState) -> u64 {
        match state.mount(self) {
            Ok(id) => id,
            Err(err) => panic!("mock-bedrock: cannot mount this mock: {err}"),
        }
    }

    /// Mounts the mock on `state`, reporting a fault that cannot strike at Bedrock.
    ///
    /// # Errors
    ///
    /// [`ArmError`] for a fault not at Bedrock or of a kind Bedrock cannot deliver.
    pub fn try_mount_on(self, state: &MockState) -> Result<u64, ArmError> {
        state.mount(self)
    }
}

/// A scoped mount: the mock stays until this guard is dropped, which checks its
/// expectation and panics with the report when it is not met (unless the thread is
/// already panicking).
#[derive(Debug)]
pub struct MockGuard {
    state: MockState,
    id: u64,
}

impl MockGuard {
    /// The requests this mock answered, in arrival order.
    pub async fn received_requests(&self) -> Vec<JournalEntry> {
        self.state.requests_of(self.id)
    }
}

impl Drop for MockGuard {
    fn drop(&mut self) {
        let result = self.state.unmount(self.id);
        if let Err(report) = result
            && !std::thread::panicking()
        {
            panic!("{report}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_like_the_expectation() {
        let cases: [(Times, &str, [bool; 4]); 5] = [
            (1.into(), "exactly 1", [false, true, false, false]),
            (
                (1..=2).into(),
                "between 1 and 2",
                [false, true, true, false],
            ),
            ((1..3).into(), "between 1 and 2", [false, true, true, false]),
            ((2..).into(), "at least 2", [false, false, true, true]),
            ((..=1).into(), "at most 1", [true, true, false, false]),
        ];
        for (times, text, admits) in cases {
            assert_eq!(times.to_string(), text);
            for (n, want) in admits.into_iter().enumerate() {
                assert_eq!(times.admits(n as u64), want, "{text} {n}");
            }
        }
    }
}
