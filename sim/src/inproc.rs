//! The wiring that lets real servers talk to each other in-process, in virtual time.
//!
//! Under a paused tokio clock a real socket makes the runtime look idle, so timeouts
//! would fire at once (`widget-and-determinism.md` §A.1). Instead every hop is a call of
//! the next server's `Router` through `tower::ServiceExt::oneshot`:
//! - the Bedrock client's `in_process::RouterHttpClient`: the SDK's `HttpClient`, handing each
//!   request to mock Bedrock's router;
//! - [`RouterConfigSource`]: the gateway's `ConfigSource`, asking the Master's router;
//! - [`VirtualTime`]: the SDK's clock (SigV4's `x-amz-date`), a fixed epoch plus tokio's
//!   virtual elapsed time.

use aws_smithy_async::time::TimeSource;
use axum::Router;
use axum::body::Body;
use futures_util::future::BoxFuture;
use gateway::{ConfigError, ConfigSource};
use http_body_util::BodyExt;
use picasso_core::wire::TenantConfig;
use std::time::{Duration, SystemTime};
use tower::ServiceExt;

/// The virtual epoch: the design document's date, 2025-07-25T00:00:00Z.
pub const EPOCH_UNIX_S: u64 = 1_753_401_600;

/// The SDK's clock: a fixed epoch plus the virtual time elapsed since the world began.
#[derive(Debug, Clone, Copy)]
pub struct VirtualTime {
    start: tokio::time::Instant,
}

impl VirtualTime {
    /// A clock whose epoch is now (virtual).
    pub fn new() -> VirtualTime {
        VirtualTime {
            start: tokio::time::Instant::now(),
        }
    }
}

impl Default for VirtualTime {
    fn default() -> Self {
        VirtualTime::new()
    }
}

impl TimeSource for VirtualTime {
    fn now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(EPOCH_UNIX_S) + self.start.elapsed()
    }
}

/// The gateway's tenant configs, asked of the Master's router in-process.
#[derive(Debug, Clone)]
pub struct RouterConfigSource {
    master: Router,
}

impl RouterConfigSource {
    /// A source asking `master`.
    pub fn new(master: Router) -> RouterConfigSource {
        RouterConfigSource { master }
    }
}

impl ConfigSource for RouterConfigSource {
    fn tenant_config<'a>(
        &'a self,
        tenant_hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<TenantConfig>, ConfigError>> {
        Box::pin(async move {
            let uri = format!(
                "/Master_Function?action=get_config&t={}",
                crate::driver::percent_encode(tenant_hash)
            );
            let request = http::Request::get(uri)
                .body(Body::empty())
                .map_err(|e| ConfigError::Unavailable(e.to_string()))?;
            let response = self
                .master
                .clone()
                .oneshot(request)
                .await
                .map_err(|e| ConfigError::Unavailable(e.to_string()))?;
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| ConfigError::Unavailable(e.to_string()))?
                .to_bytes();
            match status {
                200 => serde_json::from_slice(&body)
                    .map(Some)
                    .map_err(|e| ConfigError::Malformed(e.to_string())),
                404 => Ok(None),
                s => Err(ConfigError::Unavailable(format!("status {s}"))),
            }
        })
    }
}
