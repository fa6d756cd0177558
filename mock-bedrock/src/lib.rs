//! Mock Bedrock: the AWS Bedrock Runtime API, byte-compatible with the official SDKs
//! (Rust, boto3, JavaScript v3), replaying a scenario's scripted answers and faults.
//!
//! Point an SDK at it with an endpoint override and dummy credentials; it serves
//! `InvokeModel`, `InvokeModelWithResponseStream`, `Converse` and `ConverseStream`
//! with the headers, bodies, event-stream frames and errors real Bedrock sends
//! (`docs/bedrock-wire.md` in the shared docs has the facts and their sources).
//! Everything it does is a function of the scenario and the order of requests, and
//! it keeps time with `tokio::time` only, so the simulator can run the same router
//! in-process under a paused clock.
//!
//! Layout:
//! - [`eventstream`]: event-stream frames (smithy-rs's codec);
//! - [`operations`]: the four operations and their stream unions;
//! - [`request`]: prompt, `requestMetadata` and attempt number of a request;
//! - [`answers`]: a scripted answer as each operation's bodies and events;
//! - [`faults`]: armed one-off faults, and what a struck fault does;
//! - `stream`: the paced event-stream body;
//! - `direct`: the same paced answer as text deltas, without HTTP (the campaign
//!   transport: [`MockState::converse_stream_direct`]);
//! - [`record`]: a proxy recording an upstream's answers as a scenario to replay;
//! - [`whole`]: the same response computed at once, and (feature `wiremock`)
//!   `BedrockResponder`, an `impl wiremock::Respond` giving it on a `wiremock::MockServer`;
//! - [`journal`]: every request and how it ended;
//! - [`Mock`] and [`matchers`]: wiremock-style mocks mounted on a server, with
//!   expectations checked when it drops;
//! - [`error`]: Bedrock's HTTP error shape;
//! - `admin`: the `/__admin/` control surface;
//! - [`server`]: HTTP/1.1 + h2c serving, and the [`MockBedrock`] test handle.
//!
//! Quick start:
//!
//! ```no_run
//! # async fn demo() {
//! use picasso_core::Scenario;
//! let mock = mock_bedrock::MockBedrock::start(Scenario::default_scenario()).await;
//! let endpoint = mock.endpoint(); // give this to the SDK as its endpoint URL
//! // … call Bedrock through the SDK …
//! for entry in mock.journal() {
//!     println!("{} {} {:?}", entry.operation.as_str(), entry.prompt, entry.outcome);
//! }
//! # let _ = endpoint;
//! # }
//! ```

mod admin;
pub mod answers;
mod direct;
pub mod error;
pub mod eventstream;
pub mod faults;
pub mod journal;
pub mod matchers;
mod mock;
mod mounted;
pub mod operations;
pub mod pacer;
pub mod record;
pub mod request;
mod respond;
#[cfg(feature = "wiremock")]
mod responder;
pub mod server;
mod state;
mod stream;
pub mod whole;

pub use direct::{DirectAnswer, DirectCall, DirectItem, DirectStream, LONGEST_SILENCE_MS};
pub use error::ApiError;
pub use faults::ArmError;
pub use journal::{JournalEntry, Outcome};
pub use mock::{Mock, MockBuilder, MockGuard, Reply, Times};
pub use mounted::{Unmet, VerificationError};
pub use operations::Operation;
pub use pacer::Clock;
pub use respond::request_id;
#[cfg(feature = "wiremock")]
pub use responder::{BedrockResponder, ModelIs, OperationIs, model_is, operation_is};
pub use server::{MockBedrock, serve, serve_router};
pub use state::MockState;
pub use stream::StreamBroken;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::response::Response;
use axum::routing::post;
use http::HeaderMap;

/// The largest request body accepted; Bedrock takes large multimodal prompts.
pub(crate) const BODY_LIMIT_BYTES: usize = 25 * 1024 * 1024;

/// The mock's router: the four operations, `/__admin/`, and Bedrock's 404 for
/// anything else. Serve it with [`serve`], or call it in-process.
pub fn app(state: MockState) -> Router {
    Router::new()
        // The path extractor splits the raw path on `/` and only then decodes each
        // segment, so an ARN's `%2F` stays inside the model id.
        .route(
            "/model/{model_id}/{action}",
            post(operation).fallback(unknown_operation),
        )
        .nest("/__admin", admin::routes())
        .fallback(unknown_operation)
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .with_state(state)
}

async fn operation(
    State(state): State<MockState>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Ok(Path((model, action))) = path else {
        return unjournaled(
            &state,
            ApiError::validation("The provided model identifier is invalid."),
        );
    };
    let Some(op) = Operation::from_action(&action) else {
        return unjournaled(&state, ApiError::unknown_operation());
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            return unjournaled(
                &state,
                ApiError::validation(format!("Malformed input request: {rejection}")),
            );
        }
    };
    respond::answer(&state, op, model, &headers, &body).await
}

async fn unknown_operation(State(state): State<MockState>) -> Response {
    unjournaled(&state, ApiError::unknown_operation())
}

/// An error refused before any operation is reached: no journal entry, but a
/// request id all the same, as on every Bedrock response (bedrock-wire.md §1).
fn unjournaled(state: &MockState, err: ApiError) -> Response {
    err.into_response_with_id(&state.unjournaled_request_id())
}

#[cfg(test)]
mod router_tests;
