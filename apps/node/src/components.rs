//! What this node reports about itself: its components and the staff member
//! logged in (presence's sources, answered by the app).

use std::sync::Arc;

use async_trait::async_trait;
use spacepos_auth::{SessionStatus, Sessions};
use spacepos_config::{Slot, StateStore};
use spacepos_core::ComponentId;
use spacepos_presence::{
    ComponentReport, ComponentState, ComponentStatusSource, StaffSessionSource,
};

use crate::platform::VERSION;

/// SpacePOS where the till runs; SpaceFuel where state.json says it is installed.
#[allow(missing_debug_implementations)] // a trait object; nothing useful to print
pub struct NodeComponents {
    pub till: bool,
    pub state: Arc<dyn StateStore>,
}

#[async_trait]
impl ComponentStatusSource for NodeComponents {
    async fn components(&self) -> Vec<ComponentReport> {
        let mut out = Vec::new();
        if self.till {
            out.push(ComponentReport {
                component: ComponentId::SpacePos,
                version: VERSION.to_owned(),
                state: ComponentState::Running,
                active_slot: None,
                detail: None,
            });
        }
        if let Ok(loaded) = self.state.load().await {
            let sf = loaded.state.spacefuel;
            if let Some(slot) = sf.active_slot {
                let record = match slot {
                    Slot::Blue => sf.blue,
                    Slot::Green => sf.green,
                };
                out.push(ComponentReport {
                    component: ComponentId::SpaceFuel,
                    version: record
                        .map(|r| r.version)
                        .unwrap_or_else(|| "unknown".into()),
                    // This process does not supervise the service; the service
                    // reports its own state on SpaceFuel-only sites.
                    state: ComponentState::Degraded,
                    active_slot: Some(slot),
                    detail: Some("service state not checked by this node".into()),
                });
            }
        }
        out
    }
}

/// The staff member of the local session (verified offline), if any.
#[allow(missing_debug_implementations)] // wraps a service; nothing useful to print
pub struct SessionStaff(pub Sessions);

#[async_trait]
impl StaffSessionSource for SessionStaff {
    async fn current_staff_id(&self) -> Option<String> {
        match self.0.current().await {
            Ok(SessionStatus::Active(s)) => Some(s.store_staff_id),
            _ => None,
        }
    }
}
