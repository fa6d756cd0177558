//! The request journal: every request in arrival order, with what was answered.
//!
//! Tests and the simulator read it to check what reached Bedrock (how many calls per
//! message, which prompt, which fault struck, whether the client went away early).
//! A stream updates its entry as it goes through an [`EntryGuard`]; when the response
//! body is dropped before it finished (the client left), the guard's `Drop` records
//! `cut_short`.

use crate::operations::Operation;
use picasso_core::scenario::Caller;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// One request as the mock saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Arrival number, from 1; also keys the request id.
    pub seq: u64,
    /// The `x-amzn-RequestId` sent back.
    pub request_id: String,
    /// The operation called.
    pub operation: Operation,
    /// The model id, percent-decoded.
    pub model: String,
    /// The prompt text as sent (empty when the body could not be read).
    pub prompt: String,
    /// `requestMetadata.tenant_hash`, if sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// `requestMetadata.session_id`, if sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// `requestMetadata.message_id`, if sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `requestMetadata.caller`, if sent and known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<Caller>,
    /// The SDK's attempt number (`amz-sdk-request`), 1 for the first.
    pub attempt: u32,
    /// The id of the scripted answer chosen (`unscripted` for the fallback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// How the request ended (so far).
    pub outcome: Outcome,
    /// The label of the fault that struck, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    /// Answer tokens sent.
    pub tokens_sent: u32,
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Still being answered.
    InProgress,
    /// The whole answer was sent.
    Completed,
    /// A scripted fault struck (its label is in `fault`); wins over how it ended.
    Fault,
    /// The client went away before the answer was complete.
    CutShort,
    /// Refused as invalid (malformed body, bad model id): no fault, no answer.
    Refused,
}

/// The journal itself; shared by [`crate::MockState`].
#[derive(Debug)]
pub(crate) struct Journal {
    inner: Mutex<Inner>,
    /// Bumped after every change (a request arrives, a token goes out, one ends), so
    /// a test can wait for the journal to change instead of polling it.
    changed: tokio::sync::watch::Sender<u64>,
}

impl Default for Journal {
    fn default() -> Journal {
        Journal {
            inner: Mutex::default(),
            changed: tokio::sync::watch::Sender::new(0),
        }
    }
}

#[derive(Debug)]
struct Inner {
    /// Bumped by `clear`, so guards of requests from before a reset write nothing.
    epoch: u64,
    /// The arrival number of `entries[0]`.
    first: u64,
    entries: VecDeque<JournalEntry>,
    /// Each entry's `tokens_sent`, counted by its guard without the lock (a token is
    /// the journal's most frequent change: one per frame of every stream); read into
    /// the entries when they are copied out.
    tokens: VecDeque<Arc<AtomicU32>>,
    /// The most entries kept: past it the oldest is forgotten (`None`: all are kept).
    limit: Option<usize>,
}

impl Default for Inner {
    fn default() -> Inner {
        Inner {
            epoch: 0,
            first: 1,
            entries: VecDeque::new(),
            tokens: VecDeque::new(),
            limit: None,
        }
    }
}

impl Journal {
    /// A std mutex is right here: it is never held across an `.await`, and each
    /// critical section is a push or a field update.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records a request under the next arrival number, which `make` turns into
    /// the entry (numbering and pushing under one lock keeps arrival order exact).
    pub(crate) fn record(self: &Arc<Self>, make: impl FnOnce(u64) -> JournalEntry) -> EntryGuard {
        let mut inner = self.lock();
        let seq = inner.first + inner.entries.len() as u64;
        let entry = make(seq);
        let request_id = entry.request_id.clone();
        let tokens = Arc::new(AtomicU32::new(entry.tokens_sent));
        inner.entries.push_back(entry);
        inner.tokens.push_back(Arc::clone(&tokens));
        if inner.limit.is_some_and(|limit| inner.entries.len() > limit) {
            inner.entries.pop_front();
            inner.tokens.pop_front();
            inner.first += 1;
        }
        EntryGuard {
            journal: Arc::clone(self),
            epoch: inner.epoch,
            seq,
            request_id,
            tokens,
            finished: false,
        }
        .notified()
    }

    /// Keeps at most `limit` entries from now on, the most recent (`None`: all).
    pub(crate) fn set_limit(&self, limit: Option<usize>) {
        let mut inner = self.lock();
        inner.limit = limit;
        while limit.is_some_and(|limit| inner.entries.len() > limit) {
            inner.entries.pop_front();
            inner.tokens.pop_front();
            inner.first += 1;
        }
    }

    /// Tells the waiters that the journal changed. With none (the simulator never
    /// waits on the journal) there is nobody to wake, and this runs for every token:
    /// a receiver subscribed later looks at the journal after subscribing, so it
    /// misses nothing.
    fn notify(&self) {
        if self.changed.receiver_count() > 0 {
            self.changed.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// A receiver that sees every change after this call.
    pub(crate) fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// A copy of every entry, in arrival order.
    pub(crate) fn entries(&self) -> Vec<JournalEntry> {
        let inner = self.lock();
        inner
            .entries
            .iter()
            .zip(&inner.tokens)
            .map(|(entry, tokens)| JournalEntry {
                tokens_sent: tokens.load(Ordering::Relaxed),
                ..entry.clone()
            })
            .collect()
    }

    /// Forgets every entry; the numbering starts again at 1.
    pub(crate) fn clear(&self) {
        let mut inner = self.lock();
        inner.epoch += 1;
        inner.first = 1;
        inner.entries.clear();
        inner.tokens.clear();
        drop(inner);
        self.notify();
    }
}

/// A request's handle on its journal entry. Dropped before [`EntryGuard::finish`],
/// it records that the client went away.
#[derive(Debug)]
pub(crate) struct EntryGuard {
    journal: Arc<Journal>,
    epoch: u64,
    seq: u64,
    request_id: String,
    /// This entry's token count (a reset journal no longer reads it).
    tokens: Arc<AtomicU32>,
    finished: bool,
}

impl EntryGuard {
    /// The arrival number of this request.
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    /// The request id recorded for this request.
    pub(crate) fn request_id(&self) -> &str {
        &self.request_id
    }

    /// Notifies the journal's waiters of the entry just pushed (outside the lock).
    fn notified(self) -> EntryGuard {
        self.journal.notify();
        self
    }

    fn update(&self, change: impl FnOnce(&mut JournalEntry)) {
        let mut inner = self.journal.lock();
        if inner.epoch != self.epoch {
            return;
        }
        // An entry past the limit is forgotten, and its changes with it.
        let index = self.seq.checked_sub(inner.first);
        if let Some(entry) = index.and_then(|i| inner.entries.get_mut(i as usize)) {
            change(entry);
        }
        drop(inner);
        self.journal.notify();
    }

    /// The answer chosen.
    pub(crate) fn answer(&self, id: &str) {
        self.update(|e| e.answer = Some(id.to_owned()));
    }

    /// One more token went out.
    pub(crate) fn token_sent(&self) {
        self.tokens.fetch_add(1, Ordering::Relaxed);
        self.journal.notify();
    }

    /// A fault struck.
    pub(crate) fn fault(&self, label: String) {
        self.update(|e| {
            e.outcome = Outcome::Fault;
            e.fault = Some(label);
        });
    }

    /// The request ended as `outcome` (a struck fault keeps `fault`).
    pub(crate) fn finish(&mut self, outcome: Outcome) {
        self.finished = true;
        self.update(|e| {
            if e.outcome != Outcome::Fault {
                e.outcome = outcome;
            }
        });
    }
}

impl Drop for EntryGuard {
    fn drop(&mut self) {
        if !self.finished {
            self.finish(Outcome::CutShort);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64) -> JournalEntry {
        JournalEntry {
            seq,
            request_id: format!("r{seq}"),
            operation: Operation::ConverseStream,
            model: "m".into(),
            prompt: "p".into(),
            tenant: None,
            session: None,
            message: None,
            caller: None,
            attempt: 1,
            answer: None,
            outcome: Outcome::InProgress,
            fault: None,
            tokens_sent: 0,
        }
    }

    #[test]
    fn a_guard_dropped_unfinished_records_cut_short() {
        let journal = Arc::new(Journal::default());
        let guard = journal.record(entry);
        guard.token_sent();
        drop(guard);
        let mut done = journal.record(entry);
        done.finish(Outcome::Completed);
        drop(done);
        let entries = journal.entries();
        assert_eq!(entries[0].outcome, Outcome::CutShort);
        assert_eq!(entries[0].tokens_sent, 1);
        assert_eq!(entries[1].outcome, Outcome::Completed);
        assert_eq!(entries[1].seq, 2);
    }

    #[test]
    fn a_fault_wins_and_a_reset_detaches_old_guards_and_their_tokens() {
        let journal = Arc::new(Journal::default());
        let guard = journal.record(entry);
        guard.fault("bedrock/stall".into());
        journal.clear();
        let fresh = journal.record(entry);
        fresh.token_sent();
        // The old request's tokens (counted without the lock) do not land on the new one.
        guard.token_sent();
        guard.token_sent();
        drop(guard);
        let entries = journal.entries();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].seq, 1);
        assert_eq!(entries[0].outcome, Outcome::InProgress);
        assert_eq!(entries[0].tokens_sent, 1);
    }

    /// With a limit the journal keeps the most recent entries; arrival numbers keep
    /// counting, and a guard whose entry was forgotten changes nothing (in particular
    /// not the entry now at its old index).
    #[test]
    fn a_limited_journal_keeps_the_latest_and_numbers_on() {
        let journal = Arc::new(Journal::default());
        journal.set_limit(Some(3));
        let mut first = journal.record(entry);
        let guards: Vec<EntryGuard> = (0..4).map(|_| journal.record(entry)).collect();
        assert_eq!(first.seq(), 1);
        assert_eq!(guards[3].seq(), 5);
        first.fault("bedrock/stall".into());
        first.finish(Outcome::Completed);
        guards[3].token_sent();
        let entries = journal.entries();
        let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [3, 4, 5]);
        assert!(
            entries
                .iter()
                .all(|e| e.outcome == Outcome::InProgress && e.fault.is_none())
        );
        assert_eq!(entries[2].tokens_sent, 1);
        // Lowering the limit forgets the oldest at once; lifting it keeps what is left.
        journal.set_limit(Some(1));
        assert_eq!(journal.entries()[0].seq, 5);
        journal.set_limit(None);
        let next = journal.record(entry);
        assert_eq!(next.seq(), 6);
        assert_eq!(journal.entries().len(), 2);
        // A reset numbers from 1 again.
        journal.clear();
        assert_eq!(journal.record(entry).seq(), 1);
        drop(guards);
    }

    #[test]
    fn entries_serialize_with_snake_case_outcomes() {
        let mut e = entry(1);
        e.outcome = Outcome::CutShort;
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["outcome"], "cut_short");
        assert_eq!(json["operation"], "ConverseStream");
        assert!(json.get("tenant").is_none());
    }
}
