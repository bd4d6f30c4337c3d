//! `spacepos onboard`.

use std::sync::Arc;

use serde::Serialize;
use spacepos_auth::{CredentialStore, Onboarding, OnboardingRequest};
use spacepos_config::{Config, TerminalRecord};
use spacepos_core::endpoint::{EndpointKind, check_transport};
use spacepos_core::{ComponentId, SystemClock};
use url::Url;

use crate::cli::OnboardArgs;
use crate::exit::{CliError, Kind};
use crate::node::Node;

pub(crate) async fn run(node: &Node, args: OnboardArgs) -> Result<(), CliError> {
    let existing = node.record().await?;
    let config = node.config(existing.as_ref())?;
    let api = match args.api {
        Some(url) => {
            check_transport(&url, EndpointKind::Http).map_err(|e| CliError::new(Kind::Usage, format!("--api {url}: {e}")))?;
            url
        }
        None => config.node.api_endpoint.clone().ok_or_else(|| {
            CliError::new(
                Kind::Usage,
                "no ERP address: pass --api <URL> (e.g. https://erp.example.com) or set node.api_endpoint in the config",
            )
        })?,
    };
    let code = args.code.or_else(|| config.terminal.onboarding_code.clone()).ok_or_else(|| {
        CliError::new(Kind::Usage, "no onboarding code: pass --code <CODE> or set terminal.onboarding_code in the config")
    })?;
    let record = onboard(node, &config, &api, &code, args.force).await?;

    if args.json {
        return super::print_json(&Onboarded::from(&record, node));
    }
    println!(
        "Onboarded as {} (store {}, terminal {}) at {}",
        record.client_id,
        record.store_number,
        record.terminal_number,
        record.api_endpoint.as_ref().map(Url::as_str).unwrap_or("?")
    );
    if let Some(name) = record
        .company_information
        .as_ref()
        .and_then(|c| c.name.as_deref())
    {
        println!("Company: {name}");
    }
    println!(
        "Credentials saved to {} (readable by its owner only)",
        node.terminal.path().display()
    );
    Ok(())
}

/// Onboard the node at `api` with `code`; shared by `onboard` and `demo`.
pub(crate) async fn onboard(
    node: &Node,
    config: &Config,
    api: &Url,
    code: &str,
    force: bool,
) -> Result<TerminalRecord, CliError> {
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

/// `onboard --json`: never the secret.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Onboarded {
    client_id: String,
    store_number: u32,
    terminal_number: u32,
    api_endpoint: Option<String>,
    amqp_url: Option<String>,
    company: Option<String>,
    credentials_file: String,
}

impl Onboarded {
    fn from(r: &TerminalRecord, node: &Node) -> Self {
        Onboarded {
            client_id: r.client_id.clone(),
            store_number: r.store_number,
            terminal_number: r.terminal_number,
            api_endpoint: r.api_endpoint.as_ref().map(Url::to_string),
            amqp_url: r.amqp_url.as_ref().map(|u| u.redacted()),
            company: r.company_information.as_ref().and_then(|c| c.name.clone()),
            credentials_file: node.terminal.path().display().to_string(),
        }
    }
}
