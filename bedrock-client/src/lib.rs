//! How the gateway and the Master Function call Bedrock: the official AWS SDK
//! (`aws-sdk-bedrockruntime`) with an endpoint override.
//!
//! Pointed at mock Bedrock by default, at real Bedrock when a user gives a real
//! endpoint and credentials. The simulator hands in its own HTTP client (the mock's
//! router, in-process), sleep and time source, so the very same SDK calls run in
//! virtual time; retries use the standard strategy without jitter so runs repeat.
//!
//! Every call carries Bedrock's `requestMetadata` (tenant, session, message, caller):
//! real Bedrock logs it, mock Bedrock matches scripted faults on it.
//!
//! The two transports of this hop live here: the SDK's own HTTPS/HTTP client (sockets),
//! and [`in_process`], which hands each request to a router without a socket.

pub mod in_process;
mod transport;

pub use transport::{Bedrock, BedrockTransport, SdkTransport, Tokens};

use aws_credential_types::Credentials;
use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::config::retry::{RetryConfig, RetryPartition};
use aws_sdk_bedrockruntime::config::{BehaviorVersion, Region};
use aws_sdk_bedrockruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockruntime::primitives::event_stream::EventReceiver;
use aws_sdk_bedrockruntime::types::error::ConverseStreamOutputError;
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ContentBlockDelta, ConversationRole, ConverseStreamOutput, Message,
};
use aws_smithy_async::rt::sleep::SharedAsyncSleep;
use aws_smithy_async::time::SharedTimeSource;
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// Where Bedrock is and who we are to it.
#[derive(Debug, Clone)]
pub struct BedrockConfig {
    /// The endpoint override, e.g. `http://127.0.0.1:4102`; `None` for AWS's own endpoint.
    pub endpoint: Option<String>,
    /// The AWS region.
    pub region: String,
    /// Access key id (dummy for the mock).
    pub access_key_id: String,
    /// Secret access key (dummy for the mock).
    pub secret_access_key: String,
    /// Session token, for temporary credentials.
    pub session_token: Option<String>,
    /// The SDK's retry token bucket. A custom partition owns its bucket, and the clients
    /// built from clones of one config share it; each new config gets its own, so
    /// simulated worlds never drain each other's. (A plain named partition would be
    /// kept in the SDK's process-wide map forever: one per world, ~200 bytes, which grew
    /// a swarm campaign by megabytes a minute.)
    pub retry_partition: RetryPartition,
    /// Attempts per call, the first included (the SDK's default is 3).
    pub max_attempts: u32,
}

impl BedrockConfig {
    /// Mock Bedrock at `endpoint`, with dummy credentials.
    pub fn mock(endpoint: impl Into<String>) -> BedrockConfig {
        BedrockConfig {
            endpoint: Some(endpoint.into()),
            region: "us-east-1".into(),
            access_key_id: "AKIDMOCKBEDROCK".into(),
            secret_access_key: "mock-secret".into(),
            session_token: None,
            retry_partition: own_partition(),
            max_attempts: 3,
        }
    }

    /// Real Bedrock, with credentials from the usual environment variables
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`).
    pub fn from_env(endpoint: Option<String>) -> Option<BedrockConfig> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Some(BedrockConfig {
            endpoint,
            region: var("AWS_REGION")
                .or_else(|| var("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|| "us-east-1".into()),
            access_key_id: var("AWS_ACCESS_KEY_ID")?,
            secret_access_key: var("AWS_SECRET_ACCESS_KEY")?,
            session_token: var("AWS_SESSION_TOKEN"),
            retry_partition: own_partition(),
            max_attempts: 3,
        })
    }
}

/// A retry partition with a token bucket of its own (the SDK's default bucket).
fn own_partition() -> RetryPartition {
    RetryPartition::custom("picasso").build()
}

/// What the simulator replaces: transport, sleep and clock. All `None` for real use.
#[derive(Debug, Clone, Default)]
pub struct Runtime {
    /// The HTTP client; a rustls (ring) hyper client when `None`.
    pub http_client: Option<SharedHttpClient>,
    /// The sleep used for retries and timeouts; tokio's when `None`.
    pub sleep: Option<SharedAsyncSleep>,
    /// The clock used for signing; the system clock when `None`.
    pub time: Option<SharedTimeSource>,
    /// Turns off the SDK's stalled-upload check. That check wakes once a second for
    /// as long as a call waits for its answer: harmless on a wall clock, but under a
    /// virtual clock it makes a run's wall time grow with its virtual length (a day-long
    /// scripted answer cost seconds). In process, request bodies are handed over whole,
    /// so the check can never fire there; the download check stays on.
    pub no_upload_stall_check: bool,
}

/// Builds the SDK client.
pub fn build_client(config: &BedrockConfig, runtime: Runtime) -> Client {
    let credentials = Credentials::new(
        &config.access_key_id,
        &config.secret_access_key,
        config.session_token.clone(),
        None,
        "picasso-static",
    );
    let http_client = runtime.http_client.unwrap_or_else(default_http_client);
    let mut builder = aws_sdk_bedrockruntime::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(config.region.clone()))
        .credentials_provider(credentials)
        .http_client(http_client)
        // Without a static base the standard strategy draws its backoff jitter from a
        // process-wide RNG no seed of ours controls.
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(config.max_attempts.max(1))
                .with_use_static_exponential_base(true),
        )
        .retry_partition(config.retry_partition.clone());
    if let Some(endpoint) = &config.endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    if let Some(sleep) = runtime.sleep {
        builder = builder.sleep_impl(sleep);
    }
    if let Some(time) = runtime.time {
        builder = builder.time_source(time);
    }
    if runtime.no_upload_stall_check {
        builder = builder.stalled_stream_protection(
            aws_sdk_bedrockruntime::config::StalledStreamProtectionConfig::enabled()
                .upload_enabled(false)
                .build(),
        );
    }
    Client::from_conf(builder.build())
}

/// A hyper client that speaks plain HTTP (the mock) and HTTPS (real Bedrock, rustls with ring).
pub fn default_http_client() -> SharedHttpClient {
    use aws_smithy_http_client::tls;
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// One call: what to ask, and on whose behalf (sent as `requestMetadata`).
pub use picasso_core::scenario::Call;

/// Why a Bedrock call gave no (complete) answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BedrockError {
    /// Bedrock answered with an error before any answer (after the SDK's retries).
    #[error("Bedrock refused the call: {code}: {message}")]
    Refused {
        /// The error code, e.g. `ThrottlingException`.
        code: String,
        /// The HTTP status, when there was one.
        status: Option<u16>,
        /// Bedrock's message.
        message: String,
    },
    /// Bedrock sent a modeled exception frame mid-stream.
    #[error("Bedrock stream failed: {kind}: {message}")]
    StreamException {
        /// The exception, e.g. `ThrottlingException`.
        kind: String,
        /// Bedrock's message.
        message: String,
    },
    /// The stream broke: bad CRC, dropped connection, or it ended before `messageStop`.
    #[error("Bedrock stream broken: {0}")]
    Broken(String),
    /// No answer at all: connection refused, timeout.
    #[error("cannot reach Bedrock: {0}")]
    Transport(String),
}

fn user_message(prompt: &str) -> Message {
    Message::builder()
        .role(ConversationRole::User)
        .content(ContentBlock::Text(prompt.to_owned()))
        .build()
        .expect("role and content are set")
}

fn refused<E, R>(err: SdkError<E, R>) -> BedrockError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HttpStatus,
{
    match &err {
        SdkError::ServiceError(service) => BedrockError::Refused {
            code: service.err().code().unwrap_or("Unknown").to_owned(),
            status: Some(service.raw().status()),
            message: service.err().message().unwrap_or_default().to_owned(),
        },
        SdkError::ResponseError(_) => BedrockError::Broken(display_chain(&err)),
        _ => BedrockError::Transport(display_chain(&err)),
    }
}

/// Access to a raw response's status, whatever the SDK's response type.
pub trait HttpStatus {
    /// The HTTP status code.
    fn status(&self) -> u16;
}

impl HttpStatus for aws_smithy_runtime_api::http::Response {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }
}

/// The error and its sources on one line. The SDK's errors often repeat their
/// source's text in their own, so a source already said is not said again.
fn display_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let said = s.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn chains_say_each_cause_once() {
        let err = Layer(
            "dispatch failure",
            Some(Box::new(Layer(
                "io error: dropped",
                Some(Box::new(Layer("dropped", None))),
            ))),
        );
        assert_eq!(display_chain(&err), "dispatch failure: io error: dropped");
    }
}

/// Asks for the whole answer at once (`Converse`): the regular chat.
pub async fn complete(client: &Client, call: Call<'_>) -> Result<String, BedrockError> {
    let out = client
        .converse()
        .model_id(call.model)
        .messages(user_message(call.prompt))
        .request_metadata("tenant_hash", call.tenant)
        .request_metadata("session_id", call.session)
        .request_metadata("message_id", call.message)
        .request_metadata("caller", call.caller.as_str())
        .send()
        .await
        .map_err(refused)?;
    let text = out
        .output()
        .and_then(|o| o.as_message().ok())
        .map(|m| {
            m.content()
                .iter()
                .filter_map(|c| c.as_text().ok().map(String::as_str))
                .collect::<String>()
        })
        .unwrap_or_default();
    Ok(text)
}

/// Opens a streamed answer (`ConverseStream`). Dropping the stream closes the
/// connection, which ends the call on Bedrock's side.
pub async fn stream(client: &Client, call: Call<'_>) -> Result<TokenStream, BedrockError> {
    let out = client
        .converse_stream()
        .model_id(call.model)
        .messages(user_message(call.prompt))
        .request_metadata("tenant_hash", call.tenant)
        .request_metadata("session_id", call.session)
        .request_metadata("message_id", call.message)
        .request_metadata("caller", call.caller.as_str())
        .send()
        .await
        .map_err(refused)?;
    Ok(TokenStream {
        receiver: out.stream,
        stopped: false,
        done: false,
    })
}

/// The text deltas of a streamed answer.
#[derive(Debug)]
pub struct TokenStream {
    receiver: EventReceiver<ConverseStreamOutput, ConverseStreamOutputError>,
    stopped: bool,
    done: bool,
}

impl TokenStream {
    /// The next text delta; `None` after a complete answer. A stream that ends
    /// before `messageStop` is an error: the SDK itself reports such a cut as a clean end.
    pub async fn next(&mut self) -> Option<Result<String, BedrockError>> {
        if self.done {
            return None;
        }
        loop {
            match self.receiver.recv().await {
                Ok(Some(ConverseStreamOutput::ContentBlockDelta(d))) => {
                    if let Some(ContentBlockDelta::Text(text)) = d.delta {
                        return Some(Ok(text));
                    }
                }
                Ok(Some(ConverseStreamOutput::MessageStop(_))) => self.stopped = true,
                Ok(Some(_)) => {}
                Ok(None) => {
                    self.done = true;
                    return if self.stopped {
                        None
                    } else {
                        Some(Err(BedrockError::Broken(
                            "the stream ended before messageStop".into(),
                        )))
                    };
                }
                Err(err) => {
                    self.done = true;
                    return Some(Err(stream_error(err)));
                }
            }
        }
    }
}

fn stream_error<R: std::fmt::Debug>(err: SdkError<ConverseStreamOutputError, R>) -> BedrockError {
    match &err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            // The Rust SDK leaves `code()` empty for stream exceptions: name the variant.
            let kind = match e {
                ConverseStreamOutputError::InternalServerException(_) => "InternalServerException",
                ConverseStreamOutputError::ModelStreamErrorException(_) => {
                    "ModelStreamErrorException"
                }
                ConverseStreamOutputError::ServiceUnavailableException(_) => {
                    "ServiceUnavailableException"
                }
                ConverseStreamOutputError::ThrottlingException(_) => "ThrottlingException",
                ConverseStreamOutputError::ValidationException(_) => "ValidationException",
                _ => "Unhandled",
            };
            BedrockError::StreamException {
                kind: kind.into(),
                message: e.message().unwrap_or_default().to_owned(),
            }
        }
        _ => BedrockError::Broken(display_chain(&err)),
    }
}
