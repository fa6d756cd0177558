//! What a [`crate::Mock`] matches: the operation, the model, the prompt (exact or by
//! pattern) and the `requestMetadata` our servers send (tenant, session, message).
//!
//! A [`Matcher`] is a list of conditions that must all hold; [`Matcher::and`] (or
//! [`crate::MockBuilder::and`]) adds more. Each condition prints itself for the
//! expectation report, so a failed `.expect(n)` says what the mock was waiting for.

use crate::operations::Operation;
use std::fmt;

/// The facts of one request a matcher looks at.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    /// The operation called.
    pub operation: Operation,
    /// The model id, percent-decoded.
    pub model: &'a str,
    /// The text of the last user message.
    pub prompt: &'a str,
    /// `requestMetadata.tenant_hash`.
    pub tenant: Option<&'a str>,
    /// `requestMetadata.session_id`.
    pub session: Option<&'a str>,
    /// `requestMetadata.message_id`.
    pub message: Option<&'a str>,
}

#[derive(Debug, Clone)]
enum Condition {
    Operation(Operation),
    Model(String),
    Prompt(String),
    Pattern(regex::Regex),
    Tenant(String),
    Session(String),
    Message(String),
}

/// Conditions a request must all meet; the empty matcher ([`any`]) takes every request.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    conditions: Vec<Condition>,
}

impl Matcher {
    fn of(condition: Condition) -> Matcher {
        Matcher {
            conditions: vec![condition],
        }
    }

    /// This matcher's conditions and `other`'s.
    pub fn and(mut self, other: Matcher) -> Matcher {
        self.conditions.extend(other.conditions);
        self
    }

    /// Whether `request` meets every condition.
    pub fn matches(&self, request: &Incoming<'_>) -> bool {
        self.conditions.iter().all(|c| match c {
            Condition::Operation(op) => request.operation == *op,
            Condition::Model(m) => request.model == m,
            Condition::Prompt(p) => request.prompt == p,
            Condition::Pattern(re) => re.is_match(request.prompt),
            Condition::Tenant(t) => request.tenant == Some(t.as_str()),
            Condition::Session(s) => request.session == Some(s.as_str()),
            Condition::Message(m) => request.message == Some(m.as_str()),
        })
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.conditions.is_empty() {
            return f.write_str("any request");
        }
        for (i, c) in self.conditions.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match c {
                Condition::Operation(op) => write!(f, "operation {}", op.as_str())?,
                Condition::Model(m) => write!(f, "model {m}")?,
                Condition::Prompt(p) => write!(f, "prompt {p:?}")?,
                Condition::Pattern(re) => write!(f, "prompt ~ /{}/", re.as_str())?,
                Condition::Tenant(t) => write!(f, "tenant {t}")?,
                Condition::Session(s) => write!(f, "session {s}")?,
                Condition::Message(m) => write!(f, "message {m}")?,
            }
        }
        Ok(())
    }
}

/// Every request.
pub fn any() -> Matcher {
    Matcher::default()
}

/// Calls to this operation.
pub fn operation(op: Operation) -> Matcher {
    Matcher::of(Condition::Operation(op))
}

/// Calls to this model id (as in the path, percent-decoded: an inference profile or
/// ARN is matched as written).
pub fn model(model: impl Into<String>) -> Matcher {
    Matcher::of(Condition::Model(model.into()))
}

/// Prompts equal to `prompt`.
pub fn prompt(prompt: impl Into<String>) -> Matcher {
    Matcher::of(Condition::Prompt(prompt.into()))
}

/// Prompts the regular expression `pattern` finds a match in.
///
/// # Panics
///
/// When `pattern` is not a valid regular expression: a test's mistake, reported where
/// it was made (as wiremock's `path_regex` does).
pub fn prompt_matches(pattern: &str) -> Matcher {
    match regex::Regex::new(pattern) {
        Ok(re) => Matcher::of(Condition::Pattern(re)),
        Err(err) => panic!("mock-bedrock: prompt_matches({pattern:?}): {err}"),
    }
}

/// Requests whose `requestMetadata.tenant_hash` is `tenant`.
pub fn tenant(tenant: impl Into<String>) -> Matcher {
    Matcher::of(Condition::Tenant(tenant.into()))
}

/// Requests whose `requestMetadata.session_id` is `session`.
pub fn session(session: impl Into<String>) -> Matcher {
    Matcher::of(Condition::Session(session.into()))
}

/// Requests whose `requestMetadata.message_id` is `message`.
pub fn message(message: impl Into<String>) -> Matcher {
    Matcher::of(Condition::Message(message.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_conditions_must_hold_and_print() {
        let m = operation(Operation::ConverseStream)
            .and(model("m"))
            .and(prompt_matches("(?i)hours"))
            .and(tenant("t1"));
        let mut req = Incoming {
            operation: Operation::ConverseStream,
            model: "m",
            prompt: "What are your HOURS?",
            tenant: Some("t1"),
            session: None,
            message: None,
        };
        assert!(m.matches(&req));
        req.tenant = None;
        assert!(!m.matches(&req));
        req.tenant = Some("t1");
        req.operation = Operation::Converse;
        assert!(!m.matches(&req));
        assert!(any().matches(&req));
        assert_eq!(
            m.to_string(),
            "operation ConverseStream, model m, prompt ~ /(?i)hours/, tenant t1"
        );
        assert!(!session("s").and(message("x")).matches(&req));
        assert!(prompt("What are your HOURS?").matches(&req));
    }
}
