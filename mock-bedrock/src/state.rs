//! The mock's shared state: the scenario in force, its faults, and the journal.
//!
//! One `Clone` handle around an `Arc`, passed to the router and kept by tests and the
//! simulator, which read the journal and arm faults in-process.

use crate::faults::{ArmError, Faults};
use crate::journal::{EntryGuard, Journal, JournalEntry};
use crate::matchers::Incoming;
use crate::mock::Mock;
use crate::mounted::{Mocks, VerificationError};
use crate::pacer::Clock;
use picasso_core::fault::RequestFacts;
use picasso_core::scenario::{Answer, AnswerBook, Fault, Scenario};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The state behind one mock Bedrock: hand a clone to [`crate::app`], keep one to
/// steer and inspect it.
#[derive(Debug, Clone)]
pub struct MockState {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// Scenario and faults change together (a new scenario brings a new book), so
    /// one lock holds both. A std mutex: never held across an `.await`.
    world: Mutex<World>,
    journal: Arc<Journal>,
    /// The clock paced streams sleep on (set once, before serving).
    clock: Clock,
    /// How many responses went out without reaching an operation (unknown paths,
    /// unreadable requests): numbers their request ids, which the journal does not.
    unjournaled: AtomicU64,
}

#[derive(Debug)]
struct World {
    /// Behind an `Arc` so a request takes its snapshot without cloning the scenario.
    scenario: Arc<Scenario>,
    /// The scenario's answers, patterns compiled: rebuilt whenever the answers change.
    answers: Arc<AnswerBook>,
    faults: Faults,
    /// Mounted mocks: tried before the scenario's answers and faults.
    mocks: Mocks,
}

/// What a request gets when it arrives: the scenario's answers as they stand, the
/// fault that struck it (if any), and its journal entry.
#[derive(Debug)]
pub(crate) struct Admission {
    pub(crate) answers: Arc<AnswerBook>,
    /// The answer of the mock that matched, which wins over the scenario's.
    pub(crate) mock_answer: Option<Answer>,
    pub(crate) fault: Option<Fault>,
    pub(crate) entry: EntryGuard,
}

impl MockState {
    /// A mock playing `scenario`.
    pub fn new(scenario: Scenario) -> MockState {
        MockState {
            shared: Arc::new(Shared {
                world: Mutex::new(World {
                    faults: Faults::new(&scenario),
                    mocks: Mocks::default(),
                    answers: Arc::new(AnswerBook::new(&scenario.answers)),
                    scenario: Arc::new(scenario),
                }),
                journal: Arc::new(Journal::default()),
                clock: Clock::Tokio,
                unjournaled: AtomicU64::new(0),
            }),
        }
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.shared
            .world
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// This mock paced by `clock` (the default is [`Clock::Tokio`]: virtual time under
    /// a paused clock). `serve` picks [`Clock::Precise`]: real time, to a fraction of a
    /// millisecond. Call before the state is shared.
    pub fn with_clock(scenario: Scenario, clock: Clock) -> MockState {
        let mut state = MockState::new(scenario);
        // Just made: the only handle.
        if let Some(shared) = Arc::get_mut(&mut state.shared) {
            shared.clock = clock;
        }
        state
    }

    /// The clock paced streams sleep on.
    pub(crate) fn clock(&self) -> Clock {
        self.shared.clock
    }

    /// The scenario in force.
    pub fn scenario(&self) -> Arc<Scenario> {
        Arc::clone(&self.world().scenario)
    }

    /// Replaces the scenario. Its faults start uncounted; armed one-off faults stay armed.
    pub fn set_scenario(&self, scenario: Scenario) {
        let mut world = self.world();
        // Armed faults stay: they were armed for "the next request", whatever the scenario.
        let old = std::mem::replace(&mut world.faults, Faults::new(&scenario));
        world.faults = old.with_book_of(&scenario);
        world.answers = Arc::new(AnswerBook::new(&scenario.answers));
        world.scenario = Arc::new(scenario);
    }

    /// Puts `answer` first among the scripted answers, so it wins over the
    /// scenario's own for the prompts it matches (wiremock's "mount a mock").
    pub fn script(&self, answer: Answer) {
        let mut world = self.world();
        let mut scenario = (*world.scenario).clone();
        scenario.answers.insert(0, answer);
        world.answers = Arc::new(AnswerBook::new(&scenario.answers));
        world.scenario = Arc::new(scenario);
    }

    /// Arms `fault` to strike the next request it matches, once.
    ///
    /// # Errors
    ///
    /// [`ArmError`] when the fault is not for Bedrock or its kind cannot strike there.
    pub fn arm(&self, fault: Fault) -> Result<(), ArmError> {
        let mut world = self.world();
        let scenario = Arc::clone(&world.scenario);
        world.faults.arm(&scenario, fault)
    }

    /// Armed faults that have not struck yet.
    pub fn armed(&self) -> usize {
        self.world().faults.armed()
    }

    /// Every request so far, in arrival order (the most recent `limit`, if one is set).
    pub fn journal(&self) -> Vec<JournalEntry> {
        self.shared.journal.entries()
    }

    /// Keeps at most `limit` journal entries, the most recent; `None` keeps them all
    /// (the default: a simulation reads every call of its run). A server that runs for
    /// hours under load sets one: each entry holds the prompt and the ids, ~400 bytes.
    /// Arrival numbers keep counting past the forgotten entries.
    pub fn set_journal_limit(&self, limit: Option<usize>) {
        self.shared.journal.set_limit(limit);
    }

    /// Forgets the journal (numbering restarts at 1, so request ids repeat), how
    /// often each scenario fault struck, and the armed faults.
    pub fn reset(&self) {
        let mut world = self.world();
        world.faults = Faults::new(&world.scenario);
        world.mocks.forget_hits();
        self.shared.journal.clear();
        self.shared.unjournaled.store(0, Ordering::Relaxed);
    }

    /// A request id for a response that never reached an operation (and so has no
    /// journal entry): Bedrock stamps every response with one. Repeats run to run,
    /// and never equals a journaled request's id.
    pub(crate) fn unjournaled_request_id(&self) -> String {
        let n = self.shared.unjournaled.fetch_add(1, Ordering::Relaxed) + 1;
        let seed = self.world().scenario.seed;
        picasso_core::rng::uuid(seed, &["mock-bedrock", "unjournaled", &n.to_string()])
    }

    /// Admits a request: matches the mocks, strikes the faults and journals it under
    /// one lock, so the arrival number, the mocks' hits and the fault book see
    /// requests in the same order. A matching mock decides the reply alone.
    pub(crate) fn admit(
        &self,
        request: Option<(&RequestFacts<'_>, &Incoming<'_>)>,
        make_entry: impl FnOnce(u64, &Scenario) -> JournalEntry,
    ) -> Admission {
        let mut world = self.world();
        let matched = request.and_then(|(facts, incoming)| world.mocks.find(incoming, facts));
        let fault = match &matched {
            Some(m) => m.fault.clone(),
            None => request.and_then(|(facts, _)| world.faults.strike(facts)),
        };
        let scenario = Arc::clone(&world.scenario);
        let answers = Arc::clone(&world.answers);
        let entry = self.shared.journal.record(|seq| make_entry(seq, &scenario));
        if let Some(m) = &matched {
            world.mocks.hit(m.id, entry.seq());
        }
        drop(world);
        if let Some(fault) = &fault {
            entry.fault(fault.label());
        }
        Admission {
            answers,
            mock_answer: matched.and_then(|m| m.answer),
            fault,
            entry,
        }
    }

    /// Admits a request as [`Self::admit`] does, but only if `accept` takes it: the
    /// fault that would strike and the answer book in force are shown to `accept`
    /// first, on a copy of the fault book, and nothing is counted, struck or
    /// journaled when it declines. With mocks mounted it always declines (a mock's
    /// own fault book would have to be tried on a copy as well): the caller then takes
    /// the HTTP path, which admits the request itself.
    pub(crate) fn admit_if<T>(
        &self,
        facts: &RequestFacts<'_>,
        make_entry: impl FnOnce(u64, &Scenario) -> JournalEntry,
        accept: impl FnOnce(Option<&Fault>, &AnswerBook, &Scenario) -> Option<T>,
    ) -> Option<(Admission, T)> {
        let mut world = self.world();
        if !world.mocks.is_empty() {
            return None;
        }
        let mut faults = world.faults.clone();
        let fault = faults.strike(facts);
        let accepted = accept(fault.as_ref(), &world.answers, &world.scenario)?;
        world.faults = faults;
        let scenario = Arc::clone(&world.scenario);
        let answers = Arc::clone(&world.answers);
        let entry = self.shared.journal.record(|seq| make_entry(seq, &scenario));
        drop(world);
        if let Some(fault) = &fault {
            entry.fault(fault.label());
        }
        let admission = Admission {
            answers,
            mock_answer: None,
            fault,
            entry,
        };
        Some((admission, accepted))
    }

    /// Mounts `mock` after the mocks already mounted; returns its id.
    ///
    /// # Errors
    ///
    /// [`ArmError`] when its fault cannot strike at Bedrock.
    pub fn mount(&self, mock: Mock) -> Result<u64, ArmError> {
        let mut world = self.world();
        let scenario = Arc::clone(&world.scenario);
        world.mocks.mount(&scenario, mock)
    }

    /// Unmounts mock `id`, checking its expectation.
    ///
    /// # Errors
    ///
    /// The report when its expectation is not met.
    pub fn unmount(&self, id: u64) -> Result<(), VerificationError> {
        let unmet = self.world().mocks.unmount(id);
        match unmet {
            None => Ok(()),
            Some(unmet) => Err(VerificationError {
                unmet: vec![unmet],
                received: self.journal(),
            }),
        }
    }

    /// Checks every mounted mock's expectation.
    ///
    /// # Errors
    ///
    /// The report of the unmet ones and of every request received.
    pub fn verify(&self) -> Result<(), VerificationError> {
        let unmet = self.world().mocks.unmet();
        if unmet.is_empty() {
            return Ok(());
        }
        Err(VerificationError {
            unmet,
            received: self.journal(),
        })
    }

    /// The requests mock `id` matched, in arrival order.
    pub fn requests_of(&self, id: u64) -> Vec<JournalEntry> {
        let hits = self.world().mocks.hits_of(id);
        self.journal()
            .into_iter()
            .filter(|e| hits.contains(&e.seq))
            .collect()
    }

    /// Waits until `done` holds for the journal (checked now and after every change:
    /// an arrival, a token sent, an ending), then returns the journal. No polling, no
    /// wall-clock timeout: wrap it in `tokio::time::timeout` to bound it.
    pub async fn wait_for(
        &self,
        mut done: impl FnMut(&[JournalEntry]) -> bool,
    ) -> Vec<JournalEntry> {
        // Subscribed before the first look, so no change between the two is missed.
        let mut changes = self.shared.journal.subscribe();
        loop {
            let entries = self.journal();
            if done(&entries) {
                return entries;
            }
            if changes.changed().await.is_err() {
                // The journal is gone with its state; nothing will change any more.
                std::future::pending::<()>().await;
            }
        }
    }
}
