//! The fake ERP's shared state: what handlers, the admin API and the handle share.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use spacepos_erp_wire::events::{
    DatasetChangedIntegrationEvent, PosReleasePublishedIntegrationEvent,
};
use spacepos_erp_wire::rest::Release;

use crate::config::FakeErpConfig;
use crate::datasets::{Datasets, EntityChange, EntitySnapshot, MAX_RANDOM_CHANGES};
use crate::error::FakeErpError;
use crate::faults::Faults;
use crate::operations::Operations;
use crate::record::Recorder;
use crate::releases::{self, ReleaseSpec, Releases};
use crate::server::ServerCtl;
use crate::sessions::Sessions;
use crate::terminals::Terminals;
use crate::util::lock;

#[derive(Debug)]
pub(crate) struct ErpState {
    pub(crate) config: FakeErpConfig,
    pub(crate) addr: SocketAddr,
    pub(crate) base_url: String,
    pub(crate) terminals: Mutex<Terminals>,
    pub(crate) datasets: Mutex<Datasets>,
    pub(crate) operations: Mutex<Operations>,
    pub(crate) releases: Mutex<Releases>,
    pub(crate) sessions: Mutex<Sessions>,
    pub(crate) faults: Mutex<Faults>,
    pub(crate) recorder: Mutex<Recorder>,
    pub(crate) server: Mutex<ServerCtl>,
    /// Serialises pause / resume / shutdown.
    pub(crate) transition: tokio::sync::Mutex<()>,
}

impl ErpState {
    pub(crate) fn new(config: FakeErpConfig, addr: SocketAddr) -> Result<Self, FakeErpError> {
        let store = config
            .onboarding_codes
            .first()
            .map_or(12, |c| c.store_number);
        let datasets = Datasets::new(config.seed, &config.datasets, store)?;
        let host = match addr {
            SocketAddr::V4(a) => a.ip().to_string(),
            SocketAddr::V6(a) => format!("[{}]", a.ip()),
        };
        Ok(Self {
            base_url: format!("http://{host}:{}", addr.port()),
            addr,
            terminals: Mutex::new(Terminals::new(&config)),
            datasets: Mutex::new(datasets),
            operations: Mutex::new(Operations::default()),
            releases: Mutex::new(Releases::new(config.seed)?),
            sessions: Mutex::new(Sessions::new(
                config.staff.clone(),
                config.token_lifetime().as_secs(),
            )?),
            faults: Mutex::new(Faults::default()),
            recorder: Mutex::new(Recorder::new(config.max_recorded_requests)),
            server: Mutex::new(ServerCtl::default()),
            transition: tokio::sync::Mutex::new(()),
            config,
        })
    }

    pub(crate) fn mutate(
        &self,
        dataset: &str,
        changes: Vec<EntityChange>,
    ) -> Result<u64, FakeErpError> {
        lock(&self.datasets)
            .require_mut(dataset)?
            .apply(changes, Utc::now())
    }

    pub(crate) fn mutate_random(
        &self,
        dataset: &str,
        count: usize,
    ) -> Result<Vec<u64>, FakeErpError> {
        let mut all = lock(&self.datasets);
        let d = all.require_mut(dataset)?;
        if count > MAX_RANDOM_CHANGES {
            return Err(FakeErpError::InvalidChange {
                dataset: dataset.to_owned(),
                reason: format!(
                    "at most {MAX_RANDOM_CHANGES} random changes per call, not {count}"
                ),
            });
        }
        let mut sequences = Vec::with_capacity(count);
        for _ in 0..count {
            let change = d.random_change();
            sequences.push(d.apply(change, Utc::now())?);
        }
        Ok(sequences)
    }

    pub(crate) fn last_sequence(&self, dataset: &str) -> Result<u64, FakeErpError> {
        Ok(lock(&self.datasets).require(dataset)?.last_sequence())
    }

    pub(crate) fn expire_changes_through(
        &self,
        dataset: &str,
        sequence: u64,
    ) -> Result<(), FakeErpError> {
        lock(&self.datasets)
            .require_mut(dataset)?
            .expire_through(sequence);
        Ok(())
    }

    pub(crate) fn final_state(
        &self,
        dataset: &str,
    ) -> Result<BTreeMap<String, EntitySnapshot>, FakeErpError> {
        Ok(lock(&self.datasets).require(dataset)?.final_state())
    }

    pub(crate) fn changed_event(
        &self,
        dataset: &str,
        sequence: u64,
    ) -> Result<DatasetChangedIntegrationEvent, FakeErpError> {
        lock(&self.datasets)
            .require(dataset)?
            .changed_event(sequence)
    }

    pub(crate) fn publish_release(&self, spec: ReleaseSpec) -> Result<Release, FakeErpError> {
        lock(&self.releases).publish(&self.base_url, spec)
    }

    pub(crate) fn release_published_event(
        &self,
        release: &Release,
    ) -> Result<PosReleasePublishedIntegrationEvent, FakeErpError> {
        releases::published_event(self.config.seed, release)
    }

    pub(crate) fn is_paused(&self) -> bool {
        !lock(&self.server).is_running()
    }

    /// Used by `Drop` of the last handle: no await possible there.
    pub(crate) fn stop_now(&self) {
        lock(&self.server).stop_now();
    }
}

/// Keeps the state alive and the server running while any handle exists.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) state: Arc<ErpState>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.state.stop_now();
    }
}
