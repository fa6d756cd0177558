//! The gateway's one shared handle: scenario, fault books, config cache, rate limiter,
//! kept answers, metrics, and the shutdown signal. Cheap to clone (one `Arc`).
//!
//! Std mutexes guard the maps: no lock is held across an `.await`.

use crate::generation::{self, Generation, Generations, Job};
use crate::metrics::Metrics;
use crate::rate_limit::{Admission, RateLimiter};
use crate::tenants::{ConfigSource, TenantCache};
use bedrock_client::Bedrock;
use picasso_core::Scenario;
use picasso_core::fault::RequestFacts;
use picasso_core::live::LiveScenario;
use picasso_core::scenario::{Fault, FaultTarget, Limits};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What the gateway is wired to.
pub struct GatewayOptions {
    /// Where tenant configs come from: [`crate::HttpConfigSource`] for `serve`, an
    /// in-process source in the simulator.
    pub config: Arc<dyn ConfigSource>,
    /// How streamed answers are opened: the SDK client (`client.into()`, see
    /// `bedrock_client::build_client`), or another transport (`bedrock_client::Bedrock`).
    pub bedrock: Bedrock,
}

impl fmt::Debug for GatewayOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayOptions").finish_non_exhaustive()
    }
}

/// The gateway's state, shared by every request.
#[derive(Clone, Debug)]
pub struct GatewayState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    scenario: LiveScenario,
    tenants: TenantCache,
    rate: Mutex<RateLimiter>,
    generations: Generations,
    bedrock: Bedrock,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

/// The places the gateway's faults strike.
const PLACES: &[FaultTarget] = &[FaultTarget::Gateway, FaultTarget::Network];

impl GatewayState {
    /// A gateway for `scenario`.
    pub fn new(scenario: Scenario, options: GatewayOptions) -> GatewayState {
        GatewayState {
            inner: Arc::new(Inner {
                scenario: LiveScenario::new(scenario, PLACES),
                tenants: TenantCache::new(options.config),
                rate: Mutex::new(RateLimiter::default()),
                generations: Generations::default(),
                bedrock: options.bedrock,
                metrics: Arc::new(Metrics::default()),
                shutdown: CancellationToken::new(),
                tasks: TaskTracker::new(),
            }),
        }
    }

    /// Replaces the scenario: a new world. Fault counts, cached configs, rate-limit
    /// logs and kept answers start afresh (running generations finish on their own).
    pub fn load_scenario(&self, scenario: Scenario) {
        self.inner.scenario.replace(scenario);
        self.inner.tenants.clear();
        *self.inner.rate.lock().unwrap_or_else(|e| e.into_inner()) = RateLimiter::default();
        self.inner.generations.clear();
    }

    /// The current scenario.
    pub fn scenario(&self) -> Arc<Scenario> {
        self.inner.scenario.get()
    }

    /// The current scenario's limits.
    pub fn limits(&self) -> Limits {
        self.scenario().limits
    }

    /// The metrics in Prometheus text format (what `/metrics` serves).
    pub fn metrics_text(&self) -> String {
        self.inner.metrics.render()
    }

    /// Refusals and error frames so far, by code (what `/metrics` counts as
    /// `gateway_errors_total`, summed over tenants).
    pub fn errors_by_code(&self) -> std::collections::BTreeMap<String, u64> {
        self.inner.metrics.errors_by_code()
    }

    /// Begins shutdown: every running generation ends with an error frame, so open
    /// streams get a final frame and close. New generations end at once.
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
    }

    /// Waits until every generation task has ended (call after [`Self::shutdown`]).
    pub async fn wait_for_generations(&self) {
        self.inner.tasks.wait().await;
    }

    /// How many answers are kept.
    pub fn kept_answers(&self) -> usize {
        self.inner.generations.len()
    }

    /// Keeps at most `limit` answers, forgetting the oldest that ended (see
    /// [`crate::generation::Generations::set_limit`]); `None`, the default, keeps all.
    pub fn set_kept_answers_limit(&self, limit: Option<usize>) {
        self.inner.generations.set_limit(limit);
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub(crate) fn metrics_handle(&self) -> Arc<Metrics> {
        self.inner.metrics.clone()
    }

    pub(crate) fn shutdown_token(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }

    pub(crate) fn tenants(&self) -> &TenantCache {
        &self.inner.tenants
    }

    pub(crate) fn generations(&self) -> &Generations {
        &self.inner.generations
    }

    /// The first fault at `target` that strikes this request.
    pub(crate) fn strike(&self, target: FaultTarget, facts: &RequestFacts<'_>) -> Option<Fault> {
        self.inner.scenario.strike(target, facts)
    }

    /// Counts a stream request of `session` of `tenant` against the rate limit.
    pub(crate) fn admit(&self, tenant: &str, session: &str, limits: &Limits) -> Admission {
        self.inner
            .rate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .admit(
                tenant,
                session,
                tokio::time::Instant::now(),
                limits.rate_limit,
                Duration::from_millis(limits.rate_window_ms),
            )
    }

    /// Starts the Bedrock call of a new generation, tracked for shutdown.
    pub(crate) fn spawn_generation(
        &self,
        generation: Arc<Generation>,
        params: &crate::params::StreamParams,
        model: &str,
        limits: &Limits,
    ) {
        let job = Job {
            bedrock: self.inner.bedrock.clone(),
            model: model.to_owned(),
            prompt: params.user_input.clone(),
            tenant: params.tenant_hash.clone(),
            session: params.session_id.clone(),
            message: params.message_id.clone(),
            max_stream: Duration::from_millis(limits.max_stream_ms),
            shutdown: self.inner.shutdown.clone(),
            metrics: self.inner.metrics.clone(),
        };
        self.inner.tasks.spawn(generation::run(generation, job));
    }
}
