//! The Master's shared state: the scenario (replaceable), its fault books, the Bedrock
//! client and the metrics. One `Arc`, cheap to clone; std locks never held across `.await`.

use crate::metrics::Metrics;
use picasso_core::Scenario;
use picasso_core::fault::RequestFacts;
use picasso_core::live::LiveScenario;
use picasso_core::scenario::{ConfigChange, Servers};
use picasso_core::scenario::{Fault, FaultTarget, Tenant};
use picasso_core::wire::TenantConfig;
use std::sync::Arc;

/// What the Master is wired to.
#[derive(Debug, Clone)]
pub struct MasterOptions {
    /// `endpoints.chat` of every config, e.g. `http://127.0.0.1:4100/Master_Function?action=chat`.
    pub chat_url: String,
    /// `endpoints.streaming` of streaming tenants; `None` leaves it out for everyone
    /// (the document's unset `STREAMING_LAMBDA_URL`).
    pub streaming_url: Option<String>,
    /// How the regular chat asks Bedrock: the SDK client (`client.into()`, see
    /// `bedrock_client::build_client`), or another transport (`bedrock_client::Bedrock`).
    pub bedrock: bedrock_client::Bedrock,
}

/// The Master's state, shared by every request.
#[derive(Debug, Clone)]
pub struct MasterState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    scenario: LiveScenario,
    options: MasterOptions,
    metrics: Metrics,
}

/// The places the Master's faults strike.
const PLACES: &[FaultTarget] = &[FaultTarget::MasterConfig, FaultTarget::MasterChat];

impl MasterState {
    /// A Master serving `scenario`'s tenants.
    pub fn new(scenario: Scenario, options: MasterOptions) -> MasterState {
        MasterState {
            inner: Arc::new(Inner {
                scenario: LiveScenario::new(scenario, PLACES),
                options,
                metrics: Metrics::default(),
            }),
        }
    }

    /// Replaces the scenario; fault counts start afresh.
    pub fn load_scenario(&self, scenario: Scenario) {
        self.inner.scenario.replace(scenario);
    }

    /// Applies a config change from now on (the rollback plan's "set
    /// `streaming_percentage` to 0"): the tenants' configs change, nothing else does
    /// (fault counts, the scenario's other parts).
    pub fn change_config(&self, change: &ConfigChange) {
        self.inner
            .scenario
            .update(|scenario| change.apply(&mut scenario.tenants));
    }

    /// Applies each of `changes` at its `at_ms` after now (tokio's clock: virtual in
    /// the simulator, real in `serve`), calling `applied` after each.
    pub async fn run_config_changes(
        &self,
        changes: Vec<ConfigChange>,
        mut applied: impl FnMut(&ConfigChange),
    ) {
        let start = tokio::time::Instant::now();
        let mut changes = changes;
        changes.sort_by_key(|c| c.at_ms);
        for change in changes {
            if let Some(at) = start.checked_add(std::time::Duration::from_millis(change.at_ms)) {
                tokio::time::sleep_until(at).await;
            } else {
                return;
            }
            self.change_config(&change);
            applied(&change);
        }
    }

    /// The current scenario.
    pub fn scenario(&self) -> Arc<Scenario> {
        self.inner.scenario.get()
    }

    /// The metrics in Prometheus text format (what `/metrics` serves).
    pub fn metrics_text(&self) -> String {
        self.inner.metrics.render()
    }

    /// The config `get_config` serves for `tenant_hash`, if the tenant exists: ours, or
    /// as the document's `get_config_for_tenant_by_hash` shapes it when the scenario
    /// runs the servers as written.
    pub fn tenant_config(&self, tenant_hash: &str) -> Option<TenantConfig> {
        let scenario = self.scenario();
        let options = &self.inner.options;
        scenario
            .tenant(tenant_hash)
            .map(|t| match scenario.servers {
                Servers::Hardened => config_of(t, options),
                Servers::AsWritten => {
                    t.config_as_written(&options.chat_url, options.streaming_url.as_deref())
                }
            })
    }

    pub(crate) fn options(&self) -> &MasterOptions {
        &self.inner.options
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The first fault at `target` (`master_config` or `master_chat`) that strikes.
    pub(crate) fn strike(&self, target: FaultTarget, facts: &RequestFacts<'_>) -> Option<Fault> {
        self.inner.scenario.strike(target, facts)
    }
}

/// A tenant's config as the design document shapes it (§1.3), with its defects fixed:
/// `endpoints.chat` always present, `endpoints.streaming` only when streaming is
/// enabled *and* a URL is configured (absent, never null).
pub fn config_of(tenant: &Tenant, options: &MasterOptions) -> TenantConfig {
    tenant.config(&options.chat_url, options.streaming_url.as_deref())
}
