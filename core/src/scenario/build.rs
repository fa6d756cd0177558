//! Builders for answers and faults, so a test writes the same things a scenario file
//! does, the same way: `Answer::from_text("Hi there").paced(300, 50)` is the
//! `[[answers]]` entry with `text` and `pacing`, `Fault::bedrock(FaultKind::Throttling)`
//! the `[[faults]]` entry with `where = "bedrock"`. Every builder only fills fields of
//! the plain structs, which stay the one model (and the one JSON Schema).
//!
//! ```
//! use picasso_core::scenario::{Answer, Fault, FaultKind, Token};
//! let hello = Answer::from_text("Hello, how can I help?")
//!     .named("hello")
//!     .for_model("amazon.nova-lite-v1:0")
//!     .paced(300, 50);
//! assert_eq!(hello.resolved_tokens().len(), 5);
//! assert_eq!(hello.resolved_tokens()[0].delay_ms, 300);
//!
//! let two = Answer::from_tokens([Token::new("Hi", 10), Token::new(" there", 20)]);
//! assert_eq!(two.full_text(), "Hi there");
//!
//! let cut = Fault::bedrock(FaultKind::Exception)
//!     .after_tokens(2)
//!     .exception("throttlingException")
//!     .times(1);
//! assert_eq!(cut.after_tokens, Some(2));
//! ```

use super::{Answer, Caller, Fault, FaultKind, FaultTarget, Pacing, StopReason, Token, Usage};

impl Token {
    /// A token of `text`, sent `delay_ms` after the one before (or the request).
    pub fn new(text: impl Into<String>, delay_ms: u64) -> Token {
        Token {
            text: text.into(),
            delay_ms,
        }
    }
}

impl Answer {
    /// A default answer (any prompt, any model) given as text, cut into word tokens and
    /// paced by the default [`Pacing`] until [`Answer::paced`] says otherwise. Its id is
    /// `scripted` until [`Answer::named`].
    pub fn from_text(text: impl Into<String>) -> Answer {
        Answer {
            text: Some(text.into()),
            ..Answer::empty()
        }
    }

    /// A default answer given token by token, each with the delay before it.
    pub fn from_tokens(tokens: impl IntoIterator<Item = Token>) -> Answer {
        Answer {
            tokens: tokens.into_iter().collect(),
            ..Answer::empty()
        }
    }

    fn empty() -> Answer {
        Answer {
            id: "scripted".into(),
            model: None,
            prompt: None,
            pattern: None,
            tokens: Vec::new(),
            text: None,
            pacing: None,
            usage: None,
            stop_reason: StopReason::EndTurn,
        }
    }

    /// Names the answer (`id`), as transcripts and the journal show it.
    pub fn named(mut self, id: impl Into<String>) -> Answer {
        self.id = id.into();
        self
    }

    /// Paces a text answer: `first_token_ms` before the first token, `gap_ms` between
    /// the others. A token answer keeps its own delays (a file cannot pace both ways).
    pub fn paced(mut self, first_token_ms: u64, gap_ms: u64) -> Answer {
        self.pacing = Some(Pacing {
            first_token_ms,
            gap_ms,
        });
        self
    }

    /// Only for calls to this model id.
    pub fn for_model(mut self, model: impl Into<String>) -> Answer {
        self.model = Some(model.into());
        self
    }

    /// Only for a prompt equal to `prompt`.
    pub fn for_prompt(mut self, prompt: impl Into<String>) -> Answer {
        self.prompt = Some(prompt.into());
        self
    }

    /// Only for prompts the regular expression `pattern` finds a match in.
    pub fn for_pattern(mut self, pattern: impl Into<String>) -> Answer {
        self.pattern = Some(pattern.into());
        self
    }

    /// Reports these token counts instead of counting them.
    pub fn usage(mut self, input_tokens: u32, output_tokens: u32) -> Answer {
        self.usage = Some(Usage {
            input_tokens,
            output_tokens,
        });
        self
    }

    /// Reports this stop reason (`end_turn` otherwise).
    pub fn stop_reason(mut self, stop: StopReason) -> Answer {
        self.stop_reason = stop;
        self
    }
}

impl Fault {
    /// A fault of `kind` at mock Bedrock, striking every request until filtered.
    pub fn bedrock(kind: FaultKind) -> Fault {
        Fault::new(FaultTarget::Bedrock, kind)
    }

    /// Names the fault (`id`), as transcripts and the journal show it.
    pub fn named(mut self, id: impl Into<String>) -> Fault {
        self.id = Some(id.into());
        self
    }

    /// Strikes after this many tokens (mid-stream kinds).
    pub fn after_tokens(mut self, tokens: u32) -> Fault {
        self.after_tokens = Some(tokens);
        self
    }

    /// The delay of `slow_first_token`, `latency` and `stall` (a `stall` without one
    /// lasts until the client gives up).
    pub fn delay_ms(mut self, ms: u64) -> Fault {
        self.delay_ms = Some(ms);
        self
    }

    /// The exception type of an `exception` fault (`throttlingException`, or the
    /// PascalCase error name).
    pub fn exception(mut self, exception_type: impl Into<String>) -> Fault {
        self.exception = Some(exception_type.into());
        self
    }

    /// The HTTP status of a `status` fault.
    pub fn status(mut self, status: u16) -> Fault {
        self.status = Some(status);
        self
    }

    /// Only for this tenant hash.
    pub fn for_tenant(mut self, tenant: impl Into<String>) -> Fault {
        self.tenant = Some(tenant.into());
        self
    }

    /// Only in this session.
    pub fn for_session(mut self, session: impl Into<String>) -> Fault {
        self.session = Some(session.into());
        self
    }

    /// Only for this message id.
    pub fn for_message(mut self, message: impl Into<String>) -> Fault {
        self.message = Some(message.into());
        self
    }

    /// Only on Bedrock calls to this model id.
    pub fn for_model(mut self, model: impl Into<String>) -> Fault {
        self.model = Some(model.into());
        self
    }

    /// Only on Bedrock calls from this server.
    pub fn via(mut self, caller: Caller) -> Fault {
        self.via = Some(caller);
        self
    }

    /// Only while the SDK's attempt number is at most `attempts` (a retry gets through).
    pub fn attempts(mut self, attempts: u32) -> Fault {
        self.attempts = Some(attempts);
        self
    }

    /// Only on the first `times` matching requests.
    pub fn times(mut self, times: u32) -> Fault {
        self.times = Some(times);
        self
    }

    /// Only on this share (0–1) of matching requests, decided by the seed.
    pub fn probability(mut self, probability: f64) -> Fault {
        self.probability = Some(probability);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A built answer and fault equal the ones a scenario file spells out.
    #[test]
    fn builders_describe_what_files_describe() {
        let file = r#"
            tenants = []
            [[answers]]
            id = "hello"
            model = "m"
            pattern = "(?i)hello"
            text = "Hi there"
            pacing = { first_token_ms = 100, gap_ms = 20 }
            usage = { input_tokens = 3, output_tokens = 2 }
            stop_reason = "max_tokens"
            [[faults]]
            id = "cut"
            where = "bedrock"
            kind = "exception"
            after_tokens = 2
            exception = "throttlingException"
            message = "m1"
            model = "m"
            attempts = 1
            times = 3
        "#;
        let s: crate::Scenario = toml::from_str(file).unwrap();
        let answer = Answer::from_text("Hi there")
            .named("hello")
            .for_model("m")
            .for_pattern("(?i)hello")
            .paced(100, 20)
            .usage(3, 2)
            .stop_reason(StopReason::MaxTokens);
        assert_eq!(s.answers, vec![answer]);
        let fault = Fault::bedrock(FaultKind::Exception)
            .named("cut")
            .after_tokens(2)
            .exception("throttlingException")
            .for_message("m1")
            .for_model("m")
            .attempts(1)
            .times(3);
        assert_eq!(s.faults, vec![fault]);
    }
}
