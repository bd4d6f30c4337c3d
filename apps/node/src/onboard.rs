//! Onboarding a node: the code for device credentials, saved once.

use std::sync::Arc;

use spacepos_auth::{CredentialStore, Onboarding, OnboardingRequest};
use spacepos_config::{Config, TerminalRecord};
use spacepos_core::{ComponentId, SystemClock};
use url::Url;

use crate::error::NodeError;
use crate::node::Node;

/// Onboard the node at `api` with `code`; shared by `spacepos onboard`, the demo and the desktop app.
pub async fn onboard(
    node: &Node,
    config: &Config,
    api: &Url,
    code: &str,
    force: bool,
) -> Result<TerminalRecord, NodeError> {
    // Make sure the node's state (its installation id) exists before it has an identity.
    node.load_state().await?;
    let client = node.anonymous_client(api)?;
    let onboarding = Onboarding::new(
        Arc::new(client),
        node.terminal.clone(),
        Arc::new(SystemClock),
    );
    let mut components = Vec::new();
    if config.node.features.till {
        components.push(ComponentId::SpacePos);
    }
    if config.node.features.spacefuel {
        components.push(ComponentId::SpaceFuel);
    }
    let request = OnboardingRequest {
        code: code.to_owned(),
        client: node.client.clone(),
        components,
    };
    let record = onboarding.onboard(request, api, force).await?;
    if force {
        // A staff session of the previous identity must not carry over.
        node.credentials.clear_session().await?;
    }
    Ok(record)
}
