//! Tenant configs, fetched from the Master Function and trusted for a short TTL.
//!
//! The gateway asks the Master (`get_config`) whether a tenant exists, may stream, and
//! from which origins, as the real Streaming Lambda would, through one
//! [`MasterConfigSource`] over a [`MasterTransport`]: sockets for `serve`
//! ([`HttpConfigSource`]), the Master's router in-process for the simulator
//! ([`RouterConfigSource`]). Concurrent misses for one tenant share one fetch.

use bytes::Bytes;
use futures_util::future::BoxFuture;
use picasso_core::wire::TenantConfig;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Why no config could be had (as opposed to "no such tenant", which is `Ok(None)`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The Master did not answer, or answered with an error status.
    #[error("the Master Function is unavailable: {0}")]
    Unavailable(String),
    /// The Master answered 200 with a body that is not a tenant config.
    #[error("the Master Function sent a malformed config: {0}")]
    Malformed(String),
}

/// Where tenant configs come from. Dyn-compatible: the future is boxed.
pub trait ConfigSource: Send + Sync + 'static {
    /// The config of `tenant_hash`; `Ok(None)` when the Master does not know the tenant.
    fn tenant_config<'a>(
        &'a self,
        tenant_hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<TenantConfig>, ConfigError>>;
}

/// How the gateway reaches the Master Function: `GET path_and_query`, answered with a
/// status and a body. The one seam of this hop: sockets ([`HttpTransport`], `serve`) or
/// the Master's router in-process ([`RouterTransport`], the simulator and tests, where a
/// socket would wake a paused clock).
pub trait MasterTransport: Send + Sync + fmt::Debug + 'static {
    /// Sends `GET path_and_query` (e.g. `/Master_Function?action=get_config&t=…`).
    fn get<'a>(&'a self, path_and_query: &'a str) -> BoxFuture<'a, Result<(u16, Bytes), String>>;
}

/// The Master over HTTP at a base URL.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    base: String,
    client: reqwest::Client,
}

impl HttpTransport {
    /// The Master at `master_base_url`, e.g. `http://127.0.0.1:4100`.
    pub fn new(master_base_url: impl Into<String>) -> HttpTransport {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        HttpTransport {
            base: master_base_url.into().trim_end_matches('/').to_owned(),
            client,
        }
    }
}

impl MasterTransport for HttpTransport {
    fn get<'a>(&'a self, path_and_query: &'a str) -> BoxFuture<'a, Result<(u16, Bytes), String>> {
        Box::pin(async move {
            let response = self
                .client
                .get(format!("{}{path_and_query}", self.base))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let body = response.bytes().await.map_err(|e| e.to_string())?;
            Ok((status, body))
        })
    }
}

/// The Master's router, called in-process (`tower::ServiceExt::oneshot`).
#[derive(Debug, Clone)]
pub struct RouterTransport {
    master: axum::Router,
}

impl RouterTransport {
    /// Calls `master` (usually `mock_master::app(state)`).
    pub fn new(master: axum::Router) -> RouterTransport {
        RouterTransport { master }
    }
}

impl MasterTransport for RouterTransport {
    fn get<'a>(&'a self, path_and_query: &'a str) -> BoxFuture<'a, Result<(u16, Bytes), String>> {
        Box::pin(async move {
            use http_body_util::BodyExt;
            use tower::ServiceExt;
            let request = http::Request::get(path_and_query)
                .body(axum::body::Body::empty())
                .map_err(|e| e.to_string())?;
            let response = self
                .master
                .clone()
                .oneshot(request)
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok((status, body))
        })
    }
}

/// Tenant configs from the Master Function's `get_config`, over any transport: `404` is
/// an unknown tenant, another error status or no answer is [`ConfigError::Unavailable`],
/// a `200` that is not a config is [`ConfigError::Malformed`].
#[derive(Debug, Clone)]
pub struct MasterConfigSource<T> {
    transport: T,
}

impl<T: MasterTransport> MasterConfigSource<T> {
    /// Configs fetched through `transport`.
    pub fn over(transport: T) -> MasterConfigSource<T> {
        MasterConfigSource { transport }
    }
}

/// Configs over HTTP: what `serve` wires.
pub type HttpConfigSource = MasterConfigSource<HttpTransport>;

/// Configs from the Master's router in-process: what the simulator wires.
pub type RouterConfigSource = MasterConfigSource<RouterTransport>;

impl HttpConfigSource {
    /// A source for the Master at `master_base_url`, e.g. `http://127.0.0.1:4100`.
    pub fn new(master_base_url: impl Into<String>) -> HttpConfigSource {
        MasterConfigSource::over(HttpTransport::new(master_base_url))
    }
}

impl RouterConfigSource {
    /// A source asking `master` in-process.
    pub fn new(master: axum::Router) -> RouterConfigSource {
        MasterConfigSource::over(RouterTransport::new(master))
    }
}

impl<T: MasterTransport> ConfigSource for MasterConfigSource<T> {
    fn tenant_config<'a>(
        &'a self,
        tenant_hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<TenantConfig>, ConfigError>> {
        Box::pin(async move {
            // The hash was validated (a-z0-9), so it needs no escaping.
            let path = format!("/Master_Function?action=get_config&t={tenant_hash}");
            let (status, body) = self
                .transport
                .get(&path)
                .await
                .map_err(ConfigError::Unavailable)?;
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

/// One tenant's cached answer; `None` remembers an unknown tenant (for the TTL too).
#[derive(Debug, Clone)]
struct Cached {
    fetched: Instant,
    config: Option<Arc<TenantConfig>>,
}

/// Per-tenant slot: the async mutex makes concurrent misses wait for one fetch.
type Slot = Arc<tokio::sync::Mutex<Option<Cached>>>;

/// The config cache in front of a [`ConfigSource`].
pub struct TenantCache {
    source: Arc<dyn ConfigSource>,
    slots: Mutex<BTreeMap<String, Slot>>,
}

impl fmt::Debug for TenantCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantCache").finish_non_exhaustive()
    }
}

impl TenantCache {
    /// An empty cache in front of `source`.
    pub fn new(source: Arc<dyn ConfigSource>) -> TenantCache {
        TenantCache {
            source,
            slots: Mutex::new(BTreeMap::new()),
        }
    }

    /// The tenant's config, from the cache when fetched less than `ttl` ago. Errors are
    /// not cached: the next request asks again.
    pub async fn get(
        &self,
        tenant_hash: &str,
        ttl: Duration,
    ) -> Result<Option<Arc<TenantConfig>>, ConfigError> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots.entry(tenant_hash.to_owned()).or_default().clone()
        };
        let mut cached = slot.lock().await;
        if let Some(c) = cached.as_ref()
            && c.fetched.elapsed() < ttl
        {
            return Ok(c.config.clone());
        }
        let config = self.source.tenant_config(tenant_hash).await?.map(Arc::new);
        *cached = Some(Cached {
            fetched: Instant::now(),
            config: config.clone(),
        });
        Ok(config)
    }

    /// Forgets every cached config (a new scenario was loaded).
    pub fn clear(&self) {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use picasso_core::wire::{Endpoints, Features};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts fetches; knows one tenant.
    #[derive(Default)]
    struct Counting(AtomicUsize);

    impl ConfigSource for Counting {
        fn tenant_config<'a>(
            &'a self,
            tenant_hash: &'a str,
        ) -> BoxFuture<'a, Result<Option<TenantConfig>, ConfigError>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                Ok((tenant_hash == "known").then(|| TenantConfig {
                    tenant_hash: tenant_hash.into(),
                    tenant_name: None,
                    features: Features {
                        streaming_enabled: true,
                        streaming_percentage: 100.0,
                        streaming_model: "m".into(),
                    },
                    endpoints: Endpoints {
                        chat: Some("c".into()),
                        streaming: None,
                    },
                    allowed_origins: vec![],
                }))
            })
        }
    }

    /// Answers (and unknown tenants) are kept for the TTL, concurrent misses share a
    /// fetch, and after the TTL the Master is asked again.
    #[tokio::test(start_paused = true)]
    async fn configs_are_cached_for_the_ttl() {
        let source = Arc::new(Counting::default());
        let cache = TenantCache::new(source.clone());
        let ttl = Duration::from_secs(5);
        let (a, b) = tokio::join!(cache.get("known", ttl), cache.get("known", ttl));
        assert!(a.unwrap().is_some() && b.unwrap().is_some());
        assert_eq!(source.0.load(Ordering::SeqCst), 1);
        assert!(cache.get("nobody", ttl).await.unwrap().is_none());
        assert!(cache.get("nobody", ttl).await.unwrap().is_none());
        assert_eq!(source.0.load(Ordering::SeqCst), 2);
        tokio::time::sleep(ttl).await;
        cache.get("known", ttl).await.unwrap();
        assert_eq!(source.0.load(Ordering::SeqCst), 3);
    }
}
