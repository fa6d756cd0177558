//! The seam of the gateway's one Bedrock call, `ConverseStream`: who opens it.
//!
//! The default is [`SdkTransport`], the official SDK (signing, retries, interceptors,
//! event-stream decoding), which is what production runs and what every fidelity
//! check is about. A campaign of millions of simulated messages spends most of its
//! time in those layers, so a world may hand the gateway another [`StreamTransport`]
//! (`picasso_world`'s direct one asks mock Bedrock's state in process) that yields the
//! same tokens and the same [`BedrockError`]s at the same virtual instants.

use crate::{BedrockError, Call, TokenStream};
use aws_sdk_bedrockruntime::Client;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use std::fmt;
use std::sync::Arc;

/// The text deltas of a streamed answer: `None` after a complete answer, an error
/// (then `None`) when it broke. Dropping it ends the call on Bedrock's side.
pub type Tokens = BoxStream<'static, Result<String, BedrockError>>;

/// Opens streamed answers.
pub trait StreamTransport: Send + Sync + fmt::Debug {
    /// Opens `ConverseStream` for `call`: the tokens, or why there is no stream.
    fn converse_stream<'a>(&'a self, call: Call<'a>)
    -> BoxFuture<'a, Result<Tokens, BedrockError>>;
}

/// The official SDK's `ConverseStream` ([`crate::stream`]): full fidelity.
#[derive(Debug, Clone)]
pub struct SdkTransport(pub Client);

impl StreamTransport for SdkTransport {
    fn converse_stream<'a>(
        &'a self,
        call: Call<'a>,
    ) -> BoxFuture<'a, Result<Tokens, BedrockError>> {
        Box::pin(async move { Ok(crate::stream(&self.0, call).await?.into_tokens()) })
    }
}

/// A cheap handle on a [`StreamTransport`], what a server keeps.
#[derive(Debug, Clone)]
pub struct Streams(Arc<dyn StreamTransport>);

impl Streams {
    /// A handle on `transport`.
    pub fn new(transport: impl StreamTransport + 'static) -> Streams {
        Streams(Arc::new(transport))
    }

    /// Opens `ConverseStream` for `call`.
    ///
    /// # Errors
    /// Why Bedrock gave no stream (as [`crate::stream`] reports it).
    pub async fn open(&self, call: Call<'_>) -> Result<Tokens, BedrockError> {
        self.0.converse_stream(call).await
    }
}

impl From<Client> for Streams {
    /// The SDK transport over `client`.
    fn from(client: Client) -> Streams {
        Streams::new(SdkTransport(client))
    }
}

impl TokenStream {
    /// The stream as [`Tokens`].
    pub fn into_tokens(self) -> Tokens {
        futures_util::stream::unfold(self, |mut s| async move {
            let item = s.next().await?;
            Some((item, s))
        })
        .boxed()
    }
}
