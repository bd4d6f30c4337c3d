use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Secret;

/// A component the ERP ships updates for and presence reports on.
///
/// REST uses the ids `spacepos` / `spacefuel`; event bodies use the names
/// `SpacePOS` / `SpaceFuel` (contract section 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ComponentId {
    #[serde(rename = "spacepos")]
    SpacePos,
    #[serde(rename = "spacefuel")]
    SpaceFuel,
}

impl ComponentId {
    pub const ALL: [ComponentId; 2] = [ComponentId::SpacePos, ComponentId::SpaceFuel];

    /// The REST id (`spacepos`, `spacefuel`).
    pub fn rest_id(self) -> &'static str {
        match self {
            ComponentId::SpacePos => "spacepos",
            ComponentId::SpaceFuel => "spacefuel",
        }
    }

    /// The event name (`SpacePOS`, `SpaceFuel`).
    pub fn event_name(self) -> &'static str {
        match self {
            ComponentId::SpacePos => "SpacePOS",
            ComponentId::SpaceFuel => "SpaceFuel",
        }
    }
}

impl fmt::Display for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.rest_id())
    }
}

/// Error for a component name that is neither `spacepos` nor `spacefuel`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown component {0:?}: expected `spacepos` or `spacefuel`")]
pub struct UnknownComponent(pub String);

impl FromStr for ComponentId {
    type Err = UnknownComponent;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "spacepos" => Ok(ComponentId::SpacePos),
            "spacefuel" => Ok(ComponentId::SpaceFuel),
            _ => Err(UnknownComponent(s.to_owned())),
        }
    }
}

/// Who this terminal is at the ERP: the client id and its place in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalIdentity {
    pub client_id: String,
    pub store_number: u32,
    pub terminal_number: u32,
}

impl TerminalIdentity {
    /// The value of the `X-Terminal` header: `<store_number>/<terminal_number>`.
    pub fn terminal_header(&self) -> String {
        format!("{}/{}", self.store_number, self.terminal_number)
    }
}

/// The client credentials the ERP issued at onboarding (device auth, contract section 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCredentials {
    pub client_id: String,
    pub client_secret: Secret,
}

/// Which product is speaking to the ERP: the till app or the SpaceFuel-only service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    SpacePos,
    SpaceFuel,
}

impl Product {
    fn token(self) -> &'static str {
        match self {
            Product::SpacePos => "SpacePOS",
            Product::SpaceFuel => "SpaceFuel",
        }
    }
}

/// What the running program is and where it runs; renders the contract's
/// `User-Agent: SpacePOS/<app_version> (<os_name> <os_version>; <arch>)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    pub product: Product,
    pub version: String,
    pub os_name: String,
    pub os_version: String,
    pub arch: String,
    pub hostname: String,
}

impl ClientInfo {
    pub fn user_agent(&self) -> String {
        format!(
            "{}/{} ({} {}; {})",
            self.product.token(),
            self.version,
            self.os_name,
            self.os_version,
            self.arch
        )
    }

    /// `"<os_name> <os_version>"`, the `os` field of the onboarding request.
    pub fn os(&self) -> String {
        format!("{} {}", self.os_name, self.os_version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agent_has_contract_form() {
        let info = ClientInfo {
            product: Product::SpacePos,
            version: "1.4.2".into(),
            os_name: "Windows".into(),
            os_version: "10.0.22631".into(),
            arch: "x86_64".into(),
            hostname: "TILL-03".into(),
        };
        assert_eq!(
            info.user_agent(),
            "SpacePOS/1.4.2 (Windows 10.0.22631; x86_64)"
        );
        let fuel = ClientInfo {
            product: Product::SpaceFuel,
            ..info
        };
        assert!(fuel.user_agent().starts_with("SpaceFuel/1.4.2 ("));
    }

    #[test]
    fn component_ids_and_names() {
        assert_eq!(ComponentId::SpacePos.rest_id(), "spacepos");
        assert_eq!(ComponentId::SpaceFuel.event_name(), "SpaceFuel");
        assert_eq!(
            "SpaceFuel".parse::<ComponentId>().unwrap(),
            ComponentId::SpaceFuel
        );
        assert!("fuel".parse::<ComponentId>().is_err());
    }

    #[test]
    fn terminal_header() {
        let id = TerminalIdentity {
            client_id: "c".into(),
            store_number: 12,
            terminal_number: 3,
        };
        assert_eq!(id.terminal_header(), "12/3");
    }
}
