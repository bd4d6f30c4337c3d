//! The manifest Tauri's updater reads (tauri-plugin-updater 2, static form):
//!
//! ```json
//! {"version": "1.5.0", "notes": "...", "pub_date": "2026-11-20T10:00:00Z",
//!  "platforms": {"windows-x86_64-msi": {"url": "...", "signature": "..."}}}
//! ```
//!
//! `signature` is the ERP's field as is (base64 of the minisign `.sig` text,
//! which is what Tauri verifies against its `pubkey`); `notes` and `pub_date`
//! are left out when the ERP gave none (Tauri treats both as optional).

use chrono::SecondsFormat;
use serde_json::{Map, Value};

use crate::model::StagedRelease;

/// The static manifest for `staged`, offering it for `platform` (e.g.
/// [`crate::TAURI_WINDOWS_X64_MSI`]) at `url`.
///
/// `url` is where Tauri's updater downloads the artifact from: the ERP's URL
/// of the release (the app gives the updater the device headers), or a local
/// URL of the staged file if the app serves one.
pub fn tauri_manifest(staged: &StagedRelease, platform: &str, url: &str) -> Value {
    let mut target = Map::new();
    target.insert("url".into(), Value::from(url));
    target.insert("signature".into(), Value::from(staged.signature.clone()));
    let mut platforms = Map::new();
    platforms.insert(platform.to_owned(), Value::Object(target));
    let mut manifest = Map::new();
    manifest.insert("version".into(), Value::from(staged.version.clone()));
    if let Some(notes) = &staged.notes {
        manifest.insert("notes".into(), Value::from(notes.clone()));
    }
    if let Some(date) = staged.pub_date {
        manifest.insert(
            "pub_date".into(),
            Value::from(date.to_rfc3339_opts(SecondsFormat::Secs, true)),
        );
    }
    manifest.insert("platforms".into(), Value::Object(platforms));
    Value::Object(manifest)
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone as _, Utc};
    use serde_json::json;
    use spacepos_core::ComponentId;

    use super::*;

    fn staged() -> StagedRelease {
        let at = Utc
            .with_ymd_and_hms(2026, 11, 20, 10, 0, 0)
            .single()
            .unwrap();
        StagedRelease {
            component: ComponentId::SpacePos,
            version: "1.5.0".into(),
            previous_version: Some("1.4.2".into()),
            sha256: "ab".repeat(32),
            path: "/data/updates/x.msi".into(),
            size: 3,
            url: "https://erp/x.msi".into(),
            signature: "c2lnbmF0dXJl".into(),
            notes: Some("Faster receipts".into()),
            pub_date: Some(at),
            staged_at: at,
            slot: None,
        }
    }

    #[test]
    fn static_form_exactly() {
        let m = tauri_manifest(&staged(), "windows-x86_64-msi", "https://erp/x.msi");
        assert_eq!(
            m,
            json!({
                "version": "1.5.0",
                "notes": "Faster receipts",
                "pub_date": "2026-11-20T10:00:00Z",
                "platforms": {"windows-x86_64-msi": {"url": "https://erp/x.msi", "signature": "c2lnbmF0dXJl"}}
            })
        );
    }

    #[test]
    fn missing_notes_and_date_are_left_out() {
        let mut s = staged();
        s.notes = None;
        s.pub_date = None;
        let m = tauri_manifest(&s, "windows-x86_64-msi", "u");
        let mut keys: Vec<&String> = m.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["platforms", "version"]);
    }
}
