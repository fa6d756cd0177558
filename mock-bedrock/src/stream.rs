//! A paced answer: the event-stream body of the two streaming operations.
//!
//! Each token goes out at its scripted time, measured from the request's arrival
//! (`sleep_until` a running deadline, so scheduling delays do not add up; a stream that
//! falls further behind than [`tolerance`] allows moves the rest of its schedule instead
//! of bursting), with `tokio::time` (under the simulator's paused clock the same code
//! runs in virtual time), or, when serving, the sub-millisecond [`Clock::Precise`]. A mid-stream fault replaces the stream's tail at its scripted token.
//!
//! The stream is a plain state machine driven by `unfold`: when the client goes away,
//! hyper drops the body, the machine and its journal guard with it, and the journal
//! records `cut_short`; nothing is left running.

use crate::answers::{Latency, StreamFormat};
use crate::eventstream::{self, FrameError};
use crate::faults::{Effect, exception_payload};
use crate::journal::{EntryGuard, Outcome};
use crate::pacer::Clock;
use bytes::Bytes;
use futures_util::Stream;
use picasso_core::bounds::add_ms;
use picasso_core::scenario::{StopReason, Token, Usage};
use tokio::time::{Duration, Instant};

/// The body error that breaks the connection (a scripted `drop` fault, or a frame
/// that could not be written).
#[derive(Debug, thiserror::Error)]
pub enum StreamBroken {
    /// The scenario dropped the connection here.
    #[error("connection dropped by a scripted fault")]
    Dropped,
    /// A frame could not be encoded.
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// Everything a paced stream needs to know about its answer.
#[derive(Debug)]
pub(crate) struct Script {
    pub(crate) format: StreamFormat,
    pub(crate) tokens: Vec<Token>,
    pub(crate) usage: Usage,
    pub(crate) stop: StopReason,
    pub(crate) effect: Option<Effect>,
    pub(crate) started: Instant,
    pub(crate) clock: Clock,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Opening,
    Tokens,
    /// Half a frame went out for a `drop` fault; the error comes next.
    Breaking,
    Done,
}

/// The state of one paced stream.
#[derive(Debug)]
struct Paced {
    script: Script,
    stage: Stage,
    next: usize,
    deadline: Instant,
    first_token: Option<Instant>,
    entry: EntryGuard,
}

/// The body stream of one answer.
pub(crate) fn paced(
    script: Script,
    entry: EntryGuard,
) -> impl Stream<Item = Result<Bytes, StreamBroken>> + Send + 'static {
    let paced = Paced {
        deadline: script.started,
        script,
        stage: Stage::Opening,
        next: 0,
        first_token: None,
        entry,
    };
    futures_util::stream::unfold(paced, |mut paced| async move {
        let item = paced.next_chunk().await?;
        Some((item, paced))
    })
}

impl Paced {
    async fn next_chunk(&mut self) -> Option<Result<Bytes, StreamBroken>> {
        let result = match self.stage {
            Stage::Done => return None,
            Stage::Breaking => {
                // Return Pending once, so the half frame is flushed to the socket
                // before the error makes hyper abort the connection.
                tokio::task::yield_now().await;
                self.finish();
                return Some(Err(StreamBroken::Dropped));
            }
            Stage::Opening => {
                self.stage = Stage::Tokens;
                self.script.format.opening(self.script.usage)
            }
            Stage::Tokens => self.step().await,
        };
        Some(result.map_err(|e| {
            self.finish();
            StreamBroken::from(e)
        }))
    }

    /// The next chunk after the opening: a fault due here, a token, or the closing.
    async fn step(&mut self) -> Result<Bytes, FrameError> {
        loop {
            if self.fault_is_due() {
                if let Some(chunk) = self.strike().await? {
                    return Ok(chunk);
                }
                continue;
            }
            let Some(token) = self.script.tokens.get(self.next) else {
                let closing = self.script.format.closing(
                    self.script.stop,
                    self.script.usage,
                    self.latency(),
                )?;
                self.finish();
                return Ok(closing);
            };
            let mut delay_ms = token.delay_ms;
            if self.next == 0
                && let Some(Effect::SlowFirstToken { delay_ms: extra }) = self.script.effect
            {
                delay_ms = add_ms(delay_ms, extra);
            }
            advance(self.script.clock, &mut self.deadline, delay_ms).await;
            let frame = self.script.format.token(&token.text)?;
            self.next += 1;
            self.first_token.get_or_insert_with(Instant::now);
            self.entry.token_sent();
            return Ok(frame);
        }
    }

    /// Whether a mid-stream fault strikes before the next token (or before the
    /// closing, when it is scripted after more tokens than the answer has).
    fn fault_is_due(&self) -> bool {
        match &self.script.effect {
            None | Some(Effect::Refuse(_)) | Some(Effect::SlowFirstToken { .. }) => false,
            Some(effect) => {
                let at = (effect.after_tokens() as usize).min(self.script.tokens.len());
                at == self.next
            }
        }
    }

    /// Applies the due fault: a chunk to send, or `None` after a finite stall.
    async fn strike(&mut self) -> Result<Option<Bytes>, FrameError> {
        let Some(effect) = self.script.effect.take() else {
            return Ok(None);
        };
        Ok(Some(match effect {
            Effect::Stall {
                delay_ms: Some(ms), ..
            } => {
                advance(self.script.clock, &mut self.deadline, ms).await;
                return Ok(None);
            }
            Effect::Stall { delay_ms: None, .. } => {
                // Silence until the client gives up and drops the body.
                std::future::pending::<()>().await;
                return Ok(None);
            }
            Effect::Exception { exception_type, .. } => {
                self.finish();
                eventstream::exception(&exception_type, &exception_payload(&exception_type))?
            }
            Effect::CorruptFrame { .. } => {
                self.finish();
                eventstream::corrupt(&self.upcoming_frame()?)
            }
            Effect::Drop { .. } => {
                let frame = self.upcoming_frame()?;
                self.stage = Stage::Breaking;
                frame.slice(..frame.len() / 2)
            }
            Effect::Refuse(_) | Effect::SlowFirstToken { .. } => return Ok(None),
        }))
    }

    /// The frame that would have come next, for faults that spoil it.
    fn upcoming_frame(&self) -> Result<Bytes, FrameError> {
        match self.script.tokens.get(self.next) {
            Some(token) => self.script.format.token(&token.text),
            None => self
                .script
                .format
                .closing(self.script.stop, self.script.usage, self.latency()),
        }
    }

    fn latency(&self) -> Latency {
        let now = Instant::now();
        let ms = |t: Instant| t.duration_since(self.script.started).as_millis() as u64;
        Latency {
            total_ms: ms(now),
            first_byte_ms: ms(self.first_token.unwrap_or(now)),
        }
    }

    /// The stream is over: the journal keeps `fault` if one struck, else `completed`.
    fn finish(&mut self) {
        self.stage = Stage::Done;
        self.entry.finish(Outcome::Completed);
    }
}

/// Sleeps until `ms` after `start`; forever when that instant is past what the clock
/// can represent (`Instant + Duration` would panic).
pub(crate) async fn sleep_for(clock: Clock, start: Instant, ms: u64) {
    match start.checked_add(Duration::from_millis(ms)) {
        Some(at) => clock.sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The most a stream may fall behind its schedule and still catch up.
const MAX_BEHIND: Duration = Duration::from_millis(4);

/// How far behind its schedule a stream may fall before the schedule moves, for a next
/// gap of `gap`: a fifth of the gap, at most [`MAX_BEHIND`]. Within it the running
/// deadline holds, so the next token catches up and a late wake-up costs one gap's
/// error, not two (under load tokio's timer alone wakes 0–2 ms late; with a 1 ms
/// tolerance, half of all gaps at 1,000 streams were off by a millisecond). Past it,
/// the rest of the schedule is shifted to now instead of sending every overdue token in
/// one burst: a caught-up gap is never shorter than four fifths of the scripted one.
fn tolerance(gap: Duration) -> Duration {
    (gap / 5).min(MAX_BEHIND)
}

/// Moves a running deadline `ms` later and sleeps until it. When the stream has fallen
/// behind (a loaded server), the next deadline counts from now, so tokens keep their
/// scripted gaps and arrive late but evenly rather than bunched. A deadline past what
/// the clock can represent (a scenario built in code, skipping validation) never
/// comes, rather than panicking on `Instant + Duration`.
pub(crate) async fn advance(clock: Clock, deadline: &mut Instant, ms: u64) {
    let now = Instant::now();
    let gap = Duration::from_millis(ms);
    let base = if now.saturating_duration_since(*deadline) > tolerance(gap) {
        now
    } else {
        *deadline
    };
    match base.checked_add(gap) {
        Some(later) => {
            *deadline = later;
            clock.sleep_until(later).await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod pacing_tests {
    use super::*;

    /// On time, the running deadline holds: a late wake-up within the tolerance does not
    /// push the schedule back. Behind it, the schedule moves to now: the next token
    /// keeps its full gap instead of going out at once with the overdue one.
    #[tokio::test(start_paused = true)]
    async fn behind_schedule_the_gaps_are_kept_not_bunched() {
        let start = Instant::now();
        let mut deadline = start;
        advance(Clock::Tokio, &mut deadline, 20).await;
        assert_eq!(deadline, start + Duration::from_millis(20));
        // The server was busy for 100 ms after that token.
        tokio::time::advance(Duration::from_millis(100)).await;
        let before = Instant::now();
        advance(Clock::Tokio, &mut deadline, 20).await;
        assert_eq!(
            Instant::now() - before,
            Duration::from_millis(20),
            "a full gap"
        );
        assert_eq!(deadline, start + Duration::from_millis(140));
        // Within the tolerance (a fifth of a 20 ms gap: 4 ms) the schedule is
        // absolute: the next token catches up.
        let mut deadline = Instant::now();
        let anchor = deadline;
        tokio::time::advance(Duration::from_millis(4)).await;
        advance(Clock::Tokio, &mut deadline, 20).await;
        assert_eq!(deadline, anchor + Duration::from_millis(20));
        // A short gap tolerates less: 1 ms late for a 2 ms gap moves the schedule.
        let mut deadline = Instant::now();
        let anchor = deadline;
        tokio::time::advance(Duration::from_millis(1)).await;
        advance(Clock::Tokio, &mut deadline, 2).await;
        assert_eq!(deadline, anchor + Duration::from_millis(3));
    }
}
