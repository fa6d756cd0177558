//! The campaign transport: the gateway's `ConverseStream` and the Master's `Converse`
//! answered by mock Bedrock's state in process
//! ([`MockState::converse_stream_direct`], [`MockState::converse_direct`]), with no
//! SDK, no HTTP and no event-stream bytes or JSON in between, and the SDK for every
//! call the direct path declines (refusals and their retries, drops, corrupt frames,
//! endless stalls, long silences).
//!
//! What a server gets is what the SDK transport would have given it, item for item
//! and at the same virtual instants: the tokens (or the whole text), and an exception
//! frame as the [`BedrockError::StreamException`] `bedrock_client` makes of the SDK's
//! error. A test
//! (`sim/tests/transports.rs`) runs every shipped scenario and generated ones under
//! both transports and compares the transcripts byte for byte.

use bedrock_client::{
    BedrockConfig, BedrockError, BedrockTransport, Call, Runtime, SdkTransport, Tokens,
    build_client,
};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use mock_bedrock::{DirectItem, DirectStream, MockState};
use std::sync::OnceLock;

/// Which transport the gateway of an in-process world opens its streams with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Transport {
    /// The official SDK over mock Bedrock's router: full fidelity (the default).
    #[default]
    Sdk,
    /// Mock Bedrock's state asked directly ([`DirectTransport`]), for campaigns: the
    /// same transcripts, faster.
    Direct,
}

impl Transport {
    /// `sdk` or `direct`.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Sdk => "sdk",
            Transport::Direct => "direct",
        }
    }

    /// The transport named `name` (`sdk` or `direct`).
    pub fn from_name(name: &str) -> Option<Transport> {
        match name {
            "sdk" => Some(Transport::Sdk),
            "direct" => Some(Transport::Direct),
            _ => None,
        }
    }
}

/// Answers from mock Bedrock's state, or through the SDK when the direct path declines.
#[derive(Debug)]
pub struct DirectTransport {
    mock: MockState,
    config: BedrockConfig,
    runtime: Runtime,
    /// Built on the first call the direct path declines: most of a campaign's worlds
    /// never need it, and building an SDK client costs more than a short scenario.
    sdk: OnceLock<SdkTransport>,
}

impl DirectTransport {
    /// Direct answers from `mock`; for the rest, an SDK client built from `config` and
    /// `runtime` (whose HTTP client must call the same mock; its clock is taken now).
    pub fn new(mock: MockState, config: BedrockConfig, runtime: Runtime) -> DirectTransport {
        DirectTransport {
            mock,
            config,
            runtime,
            sdk: OnceLock::new(),
        }
    }

    fn sdk(&self) -> &SdkTransport {
        self.sdk
            .get_or_init(|| SdkTransport(build_client(&self.config, self.runtime.clone())))
    }
}

impl BedrockTransport for DirectTransport {
    fn converse_stream<'a>(
        &'a self,
        call: Call<'a>,
    ) -> BoxFuture<'a, Result<Tokens, BedrockError>> {
        match self.mock.converse_stream_direct(call) {
            Some(stream) => Box::pin(std::future::ready(Ok(tokens(stream)))),
            None => self.sdk().converse_stream(call),
        }
    }

    fn converse<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<String, BedrockError>> {
        match self.mock.converse_direct(call) {
            Some(answer) => Box::pin(async move { Ok(answer.text().await) }),
            None => self.sdk().converse(call),
        }
    }
}

/// The items as `bedrock_client::TokenStream` reports the same frames.
fn tokens(stream: DirectStream) -> Tokens {
    futures_util::stream::unfold(stream, |mut s| async move {
        let item = match s.next().await? {
            DirectItem::Text(text) => Ok(text),
            DirectItem::Exception { kind, message } => {
                Err(BedrockError::StreamException { kind, message })
            }
        };
        Some((item, s))
    })
    .boxed()
}
