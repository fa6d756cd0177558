//! Bedrock answers on a plain `wiremock::MockServer` (feature `wiremock`): for teams
//! that already mount their other HTTP mocks there.
//!
//! [`BedrockResponder`] is an `impl wiremock::Respond` giving the same bytes mock
//! Bedrock sends: `ConverseStream` and `InvokeModelWithResponseStream` event-stream
//! bodies, `Converse` and `InvokeModel` JSON, and Bedrock's error shapes (status,
//! `x-amzn-errortype`, `{"message"}`), so the official SDKs read them as from Bedrock.
//! Matching stays wiremock's (`header`, `body_partial_json`, …); [`model_is`] and
//! [`operation_is`] match the model id and the operation, as the SDKs percent-encode
//! the id in the path (`…-v1%3A0`), which `path("/model/…-v1:0/…")` would miss.
//!
//! What it cannot do: wiremock sends a body at once, so there is no pacing (all
//! tokens arrive together; the scripted delays only show in the latency numbers), a
//! stall or a slow first token holds the whole response back instead, and a `drop`
//! ends the body early rather than breaking the connection. Use [`crate::MockBedrock`]
//! for timing.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use mock_bedrock::{BedrockResponder, Operation, model_is, operation_is};
//! use picasso_core::scenario::{Answer, Fault, FaultKind};
//! use wiremock::matchers::method;
//! use wiremock::{Mock, MockServer};
//!
//! let server = MockServer::start().await;
//! Mock::given(method("POST"))
//!     .and(model_is("amazon.nova-lite-v1:0"))
//!     .respond_with(BedrockResponder::new(Answer::from_text("Hello from Nova")))
//!     .mount(&server)
//!     .await;
//! Mock::given(method("POST"))
//!     .and(operation_is(Operation::ConverseStream))
//!     .respond_with(BedrockResponder::new(Fault::bedrock(FaultKind::Throttling)))
//!     .mount(&server)
//!     .await;
//! // Point the SDK's endpoint at server.uri().
//! # }
//! ```

use crate::mock::Reply;
use crate::operations::Operation;
use crate::whole::{WholeResponder, split_path};
use std::time::Duration;
use wiremock::{Match, Request, Respond, ResponseTemplate};

/// A wiremock matcher: calls to this model id (compared percent-decoded).
pub fn model_is(model: impl Into<String>) -> ModelIs {
    ModelIs(model.into())
}

/// See [`model_is`].
#[derive(Debug, Clone)]
pub struct ModelIs(String);

impl Match for ModelIs {
    fn matches(&self, request: &Request) -> bool {
        split_path(request.url.path()).is_some_and(|(model, _)| model == self.0)
    }
}

/// A wiremock matcher: calls to this operation.
pub fn operation_is(op: Operation) -> OperationIs {
    OperationIs(op)
}

/// See [`operation_is`].
#[derive(Debug, Clone, Copy)]
pub struct OperationIs(Operation);

impl Match for OperationIs {
    fn matches(&self, request: &Request) -> bool {
        split_path(request.url.path())
            .and_then(|(_, action)| Operation::from_action(action))
            .is_some_and(|op| op == self.0)
    }
}

/// A `wiremock::Respond` answering Bedrock calls with one [`Reply`].
#[derive(Debug)]
pub struct BedrockResponder {
    inner: WholeResponder,
}

impl BedrockResponder {
    /// Answers with `reply` (an [`picasso_core::scenario::Answer`], a
    /// [`picasso_core::scenario::Fault`], or a [`Reply`] with both).
    pub fn new(reply: impl Into<Reply>) -> BedrockResponder {
        BedrockResponder {
            inner: WholeResponder::new(reply),
        }
    }

    /// Request ids drawn from `seed`, as a mock Bedrock with that seed draws them.
    pub fn seed(self, seed: u64) -> BedrockResponder {
        BedrockResponder {
            inner: self.inner.seed(seed),
        }
    }
}

impl Respond for BedrockResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let whole = self
            .inner
            .respond(request.url.path(), &request.headers, &request.body);
        let content_type = whole.header("content-type").unwrap_or("application/json");
        let mut template = ResponseTemplate::new(whole.status.as_u16())
            .set_body_raw(whole.body.to_vec(), content_type);
        for (name, value) in &whole.headers {
            if !name.eq_ignore_ascii_case("content-type") {
                template = template.insert_header(*name, value.as_str());
            }
        }
        if whole.delay_ms > 0 {
            template = template.set_delay(Duration::from_millis(whole.delay_ms));
        }
        template
    }
}
