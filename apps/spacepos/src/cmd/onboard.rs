//! `spacepos onboard`.

use serde::Serialize;
use spacepos_config::TerminalRecord;
use spacepos_core::endpoint::{EndpointKind, check_transport};
use url::Url;

use crate::cli::OnboardArgs;
use spacepos_node::Node;
use spacepos_node::error::{Kind, NodeError};

pub(crate) async fn run(node: &Node, args: OnboardArgs) -> Result<(), NodeError> {
    let existing = node.record().await?;
    let config = node.config(existing.as_ref())?;
    let api = match args.api {
        Some(url) => {
            check_transport(&url, EndpointKind::Http).map_err(|e| NodeError::new(Kind::Usage, format!("--api {url}: {e}")))?;
            url
        }
        None => config.node.api_endpoint.clone().ok_or_else(|| {
            NodeError::new(
                Kind::Usage,
                "no ERP address: pass --api <URL> (e.g. https://erp.example.com) or set node.api_endpoint in the config",
            )
        })?,
    };
    let code = args.code.or_else(|| config.terminal.onboarding_code.clone()).ok_or_else(|| {
        NodeError::new(Kind::Usage, "no onboarding code: pass --code <CODE> or set terminal.onboarding_code in the config")
    })?;
    let record = spacepos_node::onboard::onboard(node, &config, &api, &code, args.force).await?;

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
