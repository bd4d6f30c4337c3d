//! Staff sessions of a node: log in with code + PIN, log out.

use std::sync::Arc;

use spacepos_auth::jwt::TokenExpectations;
use spacepos_auth::{Sessions, StaffSession};
use spacepos_core::{Secret, SystemClock};

use crate::error::{Kind, NodeError};
use crate::node::Node;

/// Log `staff` in with `pin`; shared by `spacepos login`, the demo and the desktop app.
pub async fn login(node: &Node, staff: &str, pin: &Secret) -> Result<StaffSession, NodeError> {
    Ok(sessions(node).await?.login(staff, pin).await?)
}

pub async fn sessions(node: &Node) -> Result<Sessions, NodeError> {
    let record = node.record().await?.ok_or_else(|| {
        NodeError::new(
            Kind::NotOnboarded,
            "this terminal is not onboarded yet: run `spacepos onboard --code <CODE> --api <URL>`",
        )
    })?;
    let config = node.config(Some(&record))?;
    let client = node.device_client(&config, &record, None)?;
    Ok(Sessions::new(
        Arc::new(client),
        node.credentials.clone(),
        Arc::new(SystemClock),
        TokenExpectations::for_store(record.store_number),
    ))
}

/// End the staff session of this node (if any).
pub async fn logout(node: &Node) -> Result<(), NodeError> {
    sessions(node).await?.logout().await?;
    Ok(())
}
