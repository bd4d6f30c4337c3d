//! The desktop app's own update through tauri-plugin-updater.
//!
//! `spacepos-updates` stages a SpacePOS release (verified: minisign by a
//! trusted key, signed `version:` = announced, sha256) and serves its static
//! manifest once on loopback ([`spacepos_updates::Updates::serve_manifest`]).
//! [`SelfUpdate`] turns that [`ServedManifest`] into a
//! [`tauri_plugin_updater::Updater`]:
//!
//! - **endpoint**: the loopback URL only; anything but `http(s)` to a loopback
//!   address is refused (the manifest never leaves the machine);
//! - **target**: the manifest's platform key
//!   ([`spacepos_updates::TAURI_WINDOWS_X64_MSI`] unless told otherwise), so
//!   the updater looks up exactly the entry `tauri_manifest` wrote instead of
//!   guessing `{os}-{arch}-{bundle}`;
//! - **headers**: `X-Client-Id`, `X-Client-Secret` (marked sensitive) and
//!   `X-Terminal` (contract section 1, as `spacepos-erp-http` sends them): the
//!   manifest offers the ERP's artifact URL, which wants them. The updater
//!   sends its headers to the manifest endpoint too, which is our own
//!   loopback listener (it logs nothing of a request but its method). As in
//!   `spacepos-erp-http`, they go to the ERP's origin only: after the check,
//!   [`SelfUpdate::check`] removes them from the [`Update`] when its download
//!   URL is elsewhere, and refuses a download URL that breaks the TLS rule;
//! - **pubkey**: Tauri's updater verifies with ONE key, our configuration
//!   trusts several (`updates.trusted_keys`, for rotation). [`SelfUpdate::check`]
//!   checks with the first key, reads the key id the release's signature names
//!   (minisign signatures carry it) and, when it is another trusted key,
//!   rebinds the update to that key with `Updater::restore_update` on the
//!   JSON already fetched (the manifest answers only once). So an update
//!   signed by any trusted key installs, one signed by an untrusted key is
//!   refused before any download. [`SelfUpdate::updater`] alone (without
//!   `check`) uses the first key.
//!
//! The app registers [`plugin`] and puts [`plugin_config`] under
//! `plugins.updater` of its Tauri config (the plugin refuses to initialise
//! without a `pubkey` there). Secrets never reach logs: the secret header is
//! sensitive (`HeaderMap`'s `Debug` hides it), [`DeviceHeaders`] prints
//! `***` for it, and errors name headers, never their values.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use spacepos_core::endpoint::{EndpointError, EndpointKind, check_transport, is_loopback};
use spacepos_core::{DeviceCredentials, TerminalIdentity};
use spacepos_updates::{ServedManifest, TAURI_WINDOWS_X64_MSI, parse_public_key};
use tauri::http::{HeaderName, HeaderValue};
use tauri::plugin::TauriPlugin;
use tauri::{AppHandle, Runtime};
use tauri_plugin_updater::{Update, Updater, UpdaterExt as _};
use url::Url;

/// `X-Client-Id`: the device's client id.
pub const CLIENT_ID_HEADER: &str = "x-client-id";
/// `X-Client-Secret`: the device's client secret (sensitive).
pub const CLIENT_SECRET_HEADER: &str = "x-client-secret";
/// `X-Terminal`: `<store_number>/<terminal_number>`.
pub const TERMINAL_HEADER: &str = "x-terminal";

/// The updater plugin, to register on the app's builder. Its defaults come
/// from [`plugin_config`]; [`SelfUpdate`] sets endpoint, headers and key per
/// update.
pub fn plugin<R: Runtime>() -> TauriPlugin<R, tauri_plugin_updater::Config> {
    tauri_plugin_updater::Builder::new().build()
}

/// The `plugins.updater` section of the app's Tauri config.
///
/// - `pubkey` is empty: the plugin requires the key, but every updater of
///   this app gets its key from [`SelfUpdate`]; an updater built without it
///   cannot verify anything, so it installs nothing.
/// - `dangerousInsecureTransportProtocol`: the manifest is served on
///   `http://127.0.0.1`, which release builds otherwise refuse. Nothing else
///   relies on it: [`SelfUpdate`] accepts loopback manifest URLs only and
///   holds the download URL to the TLS rule itself.
/// - `requireSignedVersion`: as `spacepos-updates` does before staging, the
///   signature's trusted comment must carry `version:` = the announced one.
/// - `windows.installMode` `passive`: a progress bar, no questions (the till
///   chose the moment: a safe point, snoozes used up or declined).
pub fn plugin_config() -> Value {
    json!({
        "pubkey": "",
        "dangerousInsecureTransportProtocol": true,
        "requireSignedVersion": true,
        "windows": { "installMode": "passive" }
    })
}

/// The device headers of contract section 1 and the ERP they belong to.
#[derive(Debug, Clone)]
pub struct DeviceHeaders {
    /// The ERP's API base URL: the headers are sent to its origin (scheme,
    /// host, port) only.
    pub erp: Url,
    pub credentials: DeviceCredentials,
    pub terminal: TerminalIdentity,
}

impl DeviceHeaders {
    /// The three headers; the secret one is marked sensitive.
    fn headers(&self) -> Result<[(HeaderName, HeaderValue); 3], SelfUpdateError> {
        let id = HeaderValue::from_str(&self.credentials.client_id)
            .map_err(|_| SelfUpdateError::BadHeader("X-Client-Id"))?;
        let mut secret = HeaderValue::from_str(self.credentials.client_secret.expose())
            .map_err(|_| SelfUpdateError::BadHeader("X-Client-Secret"))?;
        secret.set_sensitive(true);
        let terminal = HeaderValue::from_str(&self.terminal.terminal_header())
            .map_err(|_| SelfUpdateError::BadHeader("X-Terminal"))?;
        Ok([
            (HeaderName::from_static(CLIENT_ID_HEADER), id),
            (HeaderName::from_static(CLIENT_SECRET_HEADER), secret),
            (HeaderName::from_static(TERMINAL_HEADER), terminal),
        ])
    }
}

/// Why the app cannot (or must not) update itself from a manifest.
#[derive(Debug, thiserror::Error)]
pub enum SelfUpdateError {
    #[error("the manifest URL must be http(s) to a loopback address (127.0.0.0/8 or ::1): {0}")]
    ManifestUrl(String),
    #[error("no update key is trusted: set `updates.trusted_keys` (minisign public keys)")]
    NoTrustedKey,
    #[error("updates.trusted_keys[{index}]: {reason}")]
    BadKey { index: usize, reason: String },
    #[error("the {0} header cannot carry the configured value")]
    BadHeader(&'static str),
    #[error("the update's signature is not a minisign signature: {0}")]
    Signature(String),
    #[error(
        "the update is signed with key {key_id}, which is not one of the {trusted} trusted update keys"
    )]
    UntrustedKey { key_id: String, trusted: usize },
    #[error("the update's download URL breaks the TLS rule: {0}")]
    DownloadUrl(#[from] EndpointError),
    #[error(transparent)]
    Updater(#[from] tauri_plugin_updater::Error),
}

/// A trusted key as Tauri's updater takes it, with its minisign key id.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TauriKey {
    id: [u8; 8],
    /// Base64 of the `.pub` text.
    pubkey: String,
}

impl TauriKey {
    /// One configured key, in any form `updates.trusted_keys` accepts.
    fn parse(configured: &str) -> Result<TauriKey, String> {
        parse_public_key(configured)?;
        let t = configured.trim();
        let text = if t.contains('\n') || key_id(t, 42).is_some() {
            t.to_owned()
        } else {
            let bytes = STANDARD
                .decode(t)
                .map_err(|_| "not base64 of a .pub file".to_owned())?;
            String::from_utf8(bytes).map_err(|_| "not base64 of a .pub file".to_owned())?
        };
        let line = text
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
            .ok_or_else(|| "no key line".to_owned())?;
        let id = key_id(line, 42).ok_or_else(|| "not a minisign Ed25519 key".to_owned())?;
        // The `.pub` text Tauri decodes, the same for every form: minisign's
        // comment line (untrusted, never checked) and the key line.
        let pub_text = format!(
            "untrusted comment: minisign public key {}\n{line}\n",
            key_id_hex(id)
        );
        Ok(TauriKey {
            id,
            pubkey: STANDARD.encode(pub_text),
        })
    }
}

/// Bytes 2..10 (the key id) of a minisign key or signature line of `len` bytes.
fn key_id(line: &str, len: usize) -> Option<[u8; 8]> {
    let bytes = STANDARD.decode(line.trim()).ok()?;
    if bytes.len() != len || !bytes.starts_with(b"E") {
        return None;
    }
    bytes.get(2..10)?.try_into().ok()
}

/// The key id a Tauri/ERP signature field (base64 of the `.sig` text) names.
fn signature_key_id(field: &str) -> Result<[u8; 8], SelfUpdateError> {
    let text = STANDARD
        .decode(field.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| SelfUpdateError::Signature("not base64 of a .sig file".into()))?;
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty() && !l.starts_with("untrusted comment:"))
        .ok_or_else(|| SelfUpdateError::Signature("no signature line".into()))?;
    key_id(line, 74).ok_or_else(|| SelfUpdateError::Signature("not an Ed25519 signature".into()))
}

/// Minisign prints key ids as 16 upper-case hex digits of the little-endian number.
fn key_id_hex(id: [u8; 8]) -> String {
    format!("{:016X}", u64::from_le_bytes(id))
}

/// The update of the desktop app from one served manifest.
#[derive(Debug, Clone)]
pub struct SelfUpdate {
    manifest: Url,
    device: DeviceHeaders,
    keys: Vec<TauriKey>,
    target: String,
}

impl SelfUpdate {
    /// For the manifest `served` (a loopback URL), with the `device` headers
    /// and the `trusted_keys` of the configuration (at least one; each in any
    /// form `updates.trusted_keys` takes). The target is
    /// [`TAURI_WINDOWS_X64_MSI`], the manifest's default platform key.
    pub fn new(
        served: &ServedManifest,
        device: DeviceHeaders,
        trusted_keys: &[String],
    ) -> Result<Self, SelfUpdateError> {
        let manifest = Url::parse(&served.url)
            .map_err(|e| SelfUpdateError::ManifestUrl(format!("not a URL ({e})")))?;
        let loopback = manifest.host().is_some_and(|h| is_loopback(&h));
        if !matches!(manifest.scheme(), "http" | "https") || !loopback {
            return Err(SelfUpdateError::ManifestUrl(format!(
                "{}://{}",
                manifest.scheme(),
                manifest.host_str().unwrap_or("")
            )));
        }
        if trusted_keys.is_empty() {
            return Err(SelfUpdateError::NoTrustedKey);
        }
        let keys = trusted_keys
            .iter()
            .enumerate()
            .map(|(index, k)| {
                TauriKey::parse(k).map_err(|reason| SelfUpdateError::BadKey { index, reason })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SelfUpdate {
            manifest,
            device,
            keys,
            target: TAURI_WINDOWS_X64_MSI.to_owned(),
        })
    }

    /// Look the release up under another platform key of the manifest
    /// (`UpdateSettings::manifest_platform`).
    pub fn with_target(mut self, platform: impl Into<String>) -> Self {
        self.target = platform.into();
        self
    }

    /// The updater for the manifest: its only endpoint, the target, the
    /// device headers and the first trusted key.
    ///
    /// # Panics
    ///
    /// When [`plugin`] is not registered on the app (the plugin's own
    /// `updater_builder` reads its state).
    pub fn updater<R: Runtime>(&self, app: &AppHandle<R>) -> Result<Updater, SelfUpdateError> {
        self.updater_with(app, &self.keys[0])
    }

    fn updater_with<R: Runtime>(
        &self,
        app: &AppHandle<R>,
        key: &TauriKey,
    ) -> Result<Updater, SelfUpdateError> {
        let mut builder = app
            .updater_builder()
            .endpoints(vec![self.manifest.clone()])?
            .target(self.target.clone())
            .pubkey(key.pubkey.clone());
        for (name, value) in self.device.headers()? {
            builder = builder.header(name, value)?;
        }
        Ok(builder.build()?)
    }

    /// Ask the manifest (once: it answers `404` afterwards) whether a newer
    /// version is offered. `Some` is an update bound to the trusted key that
    /// signed it, carrying the device headers only if its download URL is on
    /// the ERP's origin; `download_and_install` it at the safe point.
    ///
    /// # Panics
    ///
    /// When [`plugin`] is not registered on the app.
    pub async fn check<R: Runtime>(
        &self,
        app: &AppHandle<R>,
    ) -> Result<Option<Update>, SelfUpdateError> {
        let first = &self.keys[0];
        let Some(update) = self.updater_with(app, first)?.check().await? else {
            tracing::info!("the update manifest offers no newer version");
            return Ok(None);
        };
        let id = signature_key_id(&update.signature)?;
        let key =
            self.keys
                .iter()
                .find(|k| k.id == id)
                .ok_or_else(|| SelfUpdateError::UntrustedKey {
                    key_id: key_id_hex(id),
                    trusted: self.keys.len(),
                })?;
        let mut update = if key == first {
            update
        } else {
            // Same JSON, same comparator: only the key changes.
            match self
                .updater_with(app, key)?
                .restore_update(update.raw_json)?
            {
                Some(update) => update,
                None => return Ok(None),
            }
        };
        check_transport(&update.download_url, EndpointKind::Http)?;
        let on_erp = update.download_url.origin() == self.device.erp.origin();
        if !on_erp {
            for name in [CLIENT_ID_HEADER, CLIENT_SECRET_HEADER, TERMINAL_HEADER] {
                update.headers.remove(name);
            }
        }
        tracing::info!(
            version = %update.version,
            key_id = %key_id_hex(key.id),
            download_host = update.download_url.host_str().unwrap_or(""),
            device_headers = on_erp,
            "the desktop app has an update"
        );
        Ok(Some(update))
    }
}

#[cfg(test)]
mod tests {
    use spacepos_core::Secret;

    use super::*;

    // minisign's documented example public key (key id E7620F1842B4E81F).
    const KEY_LINE: &str = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3";

    fn device() -> DeviceHeaders {
        DeviceHeaders {
            erp: Url::parse("https://erp.example.com/").unwrap(),
            credentials: DeviceCredentials {
                client_id: "pos-0012-01".into(),
                client_secret: Secret::new("s3cr3t-value"),
            },
            terminal: TerminalIdentity {
                client_id: "pos-0012-01".into(),
                store_number: 12,
                terminal_number: 1,
            },
        }
    }

    fn served(url: &str) -> ServedManifest {
        ServedManifest { url: url.into() }
    }

    #[test]
    fn every_configured_key_form_becomes_the_same_tauri_key() {
        let pub_file =
            format!("untrusted comment: minisign public key E7620F1842B4E81F\n{KEY_LINE}\n");
        let line = TauriKey::parse(KEY_LINE).unwrap();
        let file = TauriKey::parse(&pub_file).unwrap();
        let tauri = TauriKey::parse(&STANDARD.encode(&pub_file)).unwrap();
        assert_eq!(line, file);
        assert_eq!(file, tauri);
        assert_eq!(line.pubkey, STANDARD.encode(&pub_file));
        assert_eq!(key_id_hex(file.id), "E7620F1842B4E81F");
        // What Tauri's verifier does with `pubkey`: base64 -> .pub text ->
        // minisign-verify's `PublicKey::decode` (which parse_public_key calls).
        let text = String::from_utf8(STANDARD.decode(&line.pubkey).unwrap()).unwrap();
        assert!(text.contains('\n') && parse_public_key(&text).is_ok());
    }

    #[test]
    fn only_loopback_manifests_and_parsable_keys_are_accepted() {
        let keys = vec![KEY_LINE.to_owned()];
        assert!(
            SelfUpdate::new(
                &served("http://127.0.0.1:4000/manifest/a.json"),
                device(),
                &keys
            )
            .is_ok()
        );
        assert!(SelfUpdate::new(&served("http://[::1]:4000/m.json"), device(), &keys).is_ok());
        for bad in [
            "http://erp.example.com/m.json",
            "http://localhost:4000/m.json",
            "file:///tmp/m.json",
            "nope",
        ] {
            assert!(
                matches!(
                    SelfUpdate::new(&served(bad), device(), &keys),
                    Err(SelfUpdateError::ManifestUrl(_))
                ),
                "{bad}"
            );
        }
        let url = served("http://127.0.0.1:4000/m.json");
        assert!(matches!(
            SelfUpdate::new(&url, device(), &[]),
            Err(SelfUpdateError::NoTrustedKey)
        ));
        let err = SelfUpdate::new(&url, device(), &[KEY_LINE.to_owned(), "RWQnope".to_owned()])
            .unwrap_err();
        assert!(
            err.to_string().starts_with("updates.trusted_keys[1]: "),
            "{err}"
        );
    }

    #[test]
    fn the_secret_header_is_sensitive_and_never_printed() {
        let headers = device().headers().unwrap();
        let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["x-client-id", "x-client-secret", "x-terminal"]);
        assert_eq!(headers[2].1, "12/1");
        assert!(headers[1].1.is_sensitive());
        assert!(!headers[0].1.is_sensitive());
        let update = SelfUpdate::new(
            &served("http://127.0.0.1:1/m.json"),
            device(),
            &[KEY_LINE.to_owned()],
        )
        .unwrap();
        let printed = format!("{update:?} {:?}", headers);
        assert!(!printed.contains("s3cr3t"), "{printed}");
        let mut bad = device();
        bad.credentials.client_secret = Secret::new("s3cr3t\nvalue");
        let err = bad.headers().unwrap_err().to_string();
        assert!(
            err.contains("X-Client-Secret") && !err.contains("s3cr3t"),
            "{err}"
        );
    }

    #[test]
    fn the_plugin_accepts_its_config_section() {
        let config: tauri_plugin_updater::Config = serde_json::from_value(plugin_config()).unwrap();
        assert!(config.require_signed_version);
        assert!(config.dangerous_insecure_transport_protocol);
        assert!(config.pubkey.is_empty());
        assert!(config.endpoints.is_empty());
    }
}
