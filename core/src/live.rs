//! The scenario a server is playing now, with the fault books of the places it serves:
//! what the gateway's and the Master's states both hold. A reload replaces both at
//! once (a new world: fault counts start afresh); a config change edits the scenario and
//! keeps the counts; a request reads a snapshot (`Arc`) and asks the books whether a
//! fault strikes it.
//!
//! Std locks, held only for a swap or a strike: nothing here awaits. (Mock Bedrock keeps
//! its scenario under one lock with its answers and mounted mocks, which change
//! together, so it has its own.)

use crate::fault::{FaultBooks, RequestFacts};
use crate::scenario::{Fault, FaultTarget, Scenario};
use std::sync::{Arc, Mutex, RwLock};

/// A server's scenario and its fault books.
#[derive(Debug)]
pub struct LiveScenario {
    scenario: RwLock<Arc<Scenario>>,
    faults: Mutex<FaultBooks>,
    /// The places this server's faults strike (the gateway: `gateway`, `network`).
    places: &'static [FaultTarget],
}

impl LiveScenario {
    /// Plays `scenario`, with books for the faults at `places`.
    pub fn new(scenario: Scenario, places: &'static [FaultTarget]) -> LiveScenario {
        LiveScenario {
            faults: Mutex::new(FaultBooks::new(&scenario, places)),
            scenario: RwLock::new(Arc::new(scenario)),
            places,
        }
    }

    /// Replaces the scenario: a new world, whose fault counts start afresh.
    pub fn replace(&self, scenario: Scenario) {
        *self.faults.lock().unwrap_or_else(|e| e.into_inner()) =
            FaultBooks::new(&scenario, self.places);
        *self.scenario.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(scenario);
    }

    /// Edits the scenario in place of a reload (a config change at its time): the
    /// fault books and their counts are kept. Readers holding the old snapshot keep it.
    pub fn update(&self, edit: impl FnOnce(&mut Scenario)) {
        let mut slot = self.scenario.write().unwrap_or_else(|e| e.into_inner());
        let mut scenario = Scenario::clone(&slot);
        edit(&mut scenario);
        *slot = Arc::new(scenario);
    }

    /// The scenario now (a snapshot: a later reload does not change it).
    pub fn get(&self) -> Arc<Scenario> {
        self.scenario
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The first fault at `target` that strikes this request.
    pub fn strike(&self, target: FaultTarget, facts: &RequestFacts<'_>) -> Option<Fault> {
        self.faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .strike(target, facts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::FaultKind;

    const PLACES: &[FaultTarget] = &[FaultTarget::Gateway];

    fn once(target: FaultTarget) -> Scenario {
        let mut s = Scenario::default_scenario();
        s.faults = vec![Fault {
            times: Some(1),
            ..Fault::new(target, FaultKind::Refuse)
        }];
        s
    }

    /// A fault strikes only at the server's places and as often as scripted; an update
    /// keeps the count, a reload starts it afresh.
    #[test]
    fn reload_resets_fault_counts_and_update_keeps_them() {
        let live = LiveScenario::new(once(FaultTarget::Gateway), PLACES);
        let facts = RequestFacts::default();
        assert!(live.strike(FaultTarget::Network, &facts).is_none());
        assert!(live.strike(FaultTarget::Gateway, &facts).is_some());
        assert!(live.strike(FaultTarget::Gateway, &facts).is_none());

        let before = live.get();
        live.update(|s| s.tenants.clear());
        assert!(live.get().tenants.is_empty());
        assert!(!before.tenants.is_empty(), "a snapshot is not edited");
        assert!(live.strike(FaultTarget::Gateway, &facts).is_none());

        live.replace(once(FaultTarget::Gateway));
        assert!(!live.get().tenants.is_empty());
        assert!(live.strike(FaultTarget::Gateway, &facts).is_some());
    }
}
