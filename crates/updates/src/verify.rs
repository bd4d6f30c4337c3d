//! Verification of an artifact before it is staged: a minisign signature by a
//! trusted key (as Tauri's updater checks it), the version in the signature's
//! trusted comment, and the announced sha256.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use minisign_verify::{Error as MinisignError, PublicKey, Signature};
use sha2::{Digest, Sha256};

use crate::model::ArtifactKey;
use crate::ports::{ArtifactStore, ArtifactStoreError};

/// The update public keys whose signatures are trusted.
#[derive(Debug, Clone)]
pub struct TrustedKeys {
    keys: Vec<PublicKey>,
}

/// Parse one configured key: the key line of a `.pub` file (`RW...`), the
/// whole `.pub` text, or base64 of the `.pub` text (Tauri's `pubkey`).
pub fn parse_public_key(text: &str) -> Result<PublicKey, String> {
    let t = text.trim();
    if t.contains('\n') {
        return PublicKey::decode(t).map_err(|e| format!("not a minisign .pub file ({e})"));
    }
    if let Ok(key) = PublicKey::from_base64(t) {
        return Ok(key);
    }
    let decoded = STANDARD
        .decode(t)
        .map_err(|_| "neither a minisign key line (RW...) nor base64 of a .pub file".to_owned())?;
    let pub_file = String::from_utf8(decoded)
        .map_err(|_| "base64 of something that is not a .pub file".to_owned())?;
    PublicKey::decode(pub_file.trim()).map_err(|e| format!("not a minisign .pub file ({e})"))
}

impl TrustedKeys {
    /// The keys of `configured`; each must parse, and there must be at least one.
    pub fn parse(configured: &[String]) -> Result<Self, String> {
        if configured.is_empty() {
            return Err(
                "no update key is trusted: set `updates.trusted_keys` (minisign public keys)"
                    .into(),
            );
        }
        let keys = configured
            .iter()
            .enumerate()
            .map(|(i, k)| {
                parse_public_key(k).map_err(|e| format!("updates.trusted_keys[{i}]: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TrustedKeys { keys })
    }

    pub fn count(&self) -> usize {
        self.keys.len()
    }
}

/// The `version:X` field of a trusted comment (`timestamp:..\tfile:..\tversion:X`).
pub fn signed_version(trusted_comment: &str) -> Option<&str> {
    trusted_comment
        .split('\t')
        .find_map(|field| field.trim().strip_prefix("version:"))
        .map(str::trim)
}

/// Decode the ERP's `signature` field: base64 of the `.sig` text.
pub fn decode_signature(field: &str) -> Result<Signature, String> {
    let text = STANDARD
        .decode(field.trim())
        .map_err(|_| "the signature is not base64 (of a minisign .sig file)".to_owned())?;
    let text = String::from_utf8(text)
        .map_err(|_| "the signature is not the text of a minisign .sig file".to_owned())?;
    Signature::decode(&text).map_err(|e| format!("the signature is not a minisign signature ({e})"))
}

/// Check a whole artifact held in memory against `signature` (the ERP's
/// field: base64 of the `.sig` text, or the `.sig` text itself) and the
/// version it must be signed as: the same rules as before staging, without
/// an announced sha256 (the signature covers the bytes). For artifacts that
/// did not come through the ERP's release list, such as a site's first
/// SpaceFuel installation.
pub fn verify_bytes(
    bytes: &[u8],
    signature: &str,
    version: &str,
    trusted: &TrustedKeys,
) -> Result<(), String> {
    let field = if signature.trim_start().starts_with("untrusted comment:") {
        STANDARD.encode(signature.trim())
    } else {
        signature.to_owned()
    };
    let signature = decode_signature(&field)?;
    if !trusted
        .keys
        .iter()
        .any(|k| k.verify(bytes, &signature, true).is_ok())
    {
        return Err(format!(
            "the signature does not match the artifact, or was made with a key that is not one of the {} trusted update keys",
            trusted.count()
        ));
    }
    match signed_version(signature.trusted_comment()) {
        None => Err(
            "the signature's trusted comment carries no `version:`, so the signed version cannot be checked"
                .to_owned(),
        ),
        Some(signed) if signed != version => Err(format!(
            "the artifact was signed as version {signed}, not {version}"
        )),
        Some(_) => Ok(()),
    }
}

/// Why an artifact is refused, in words for the log and `state.json`.
pub(crate) type Refusal = String;

/// Check the stored artifact `key` against `signature` (the ERP's field),
/// the announced `version` and the key's sha256, reading it back from the
/// store in chunks. `Ok(Err(reason))` is a refusal; `Err` a store failure.
pub(crate) async fn verify_artifact(
    store: &dyn ArtifactStore,
    key: &ArtifactKey,
    signature: &str,
    version: &str,
    trusted: &TrustedKeys,
    chunk: u64,
) -> Result<Result<(), Refusal>, ArtifactStoreError> {
    let signature = match decode_signature(signature) {
        Ok(s) => s,
        Err(reason) => return Ok(Err(reason)),
    };
    let mut streams = Vec::new();
    let mut legacy = false;
    for k in &trusted.keys {
        match k.verify_stream(&signature) {
            Ok(v) => streams.push(v),
            Err(MinisignError::UnsupportedLegacyMode) => legacy = true,
            Err(_) => {}
        }
    }
    if streams.is_empty() && !legacy {
        return Ok(Err(format!(
            "the signature was made with a key that is not one of the {} trusted update keys",
            trusted.count()
        )));
    }
    let mut sha = Sha256::new();
    let mut whole = Vec::new();
    let mut offset = 0u64;
    loop {
        let bytes = store.read(key, offset, chunk.max(1)).await?;
        if bytes.is_empty() {
            break;
        }
        sha.update(&bytes);
        for s in &mut streams {
            s.update(&bytes);
        }
        if legacy {
            whole.extend_from_slice(&bytes);
        }
        offset += bytes.len() as u64;
    }
    let genuine = if legacy {
        trusted
            .keys
            .iter()
            .any(|k| k.verify(&whole, &signature, true).is_ok())
    } else {
        streams.iter_mut().any(|s| s.finalize().is_ok())
    };
    if !genuine {
        return Ok(Err(
            "the signature does not match the artifact: it was altered or damaged".to_owned(),
        ));
    }
    match signed_version(signature.trusted_comment()) {
        None => {
            return Ok(Err(
                "the signature's trusted comment carries no `version:`, so the signed version cannot be checked"
                    .to_owned(),
            ));
        }
        Some(signed) if signed != version => {
            return Ok(Err(format!(
                "the artifact was signed as version {signed} but is announced as {version}"
            )));
        }
        Some(_) => {}
    }
    let digest = hex::encode(sha.finalize());
    if digest != key.sha256 {
        return Ok(Err(format!(
            "sha256 mismatch: announced {}, the downloaded artifact has {digest}",
            key.sha256
        )));
    }
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_field_of_the_trusted_comment() {
        assert_eq!(
            signed_version("timestamp:1\tfile:SpacePOS_1.5.0_x64_en-US.msi\tversion:1.5.0"),
            Some("1.5.0")
        );
        assert_eq!(signed_version("version:2.0.0-rc.1"), Some("2.0.0-rc.1"));
        assert_eq!(signed_version("timestamp:1\tfile:x"), None);
    }

    #[test]
    fn keys_parse_in_the_three_forms_and_bad_ones_name_their_index() {
        let line = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3";
        let pub_file = format!("untrusted comment: minisign public key\n{line}\n");
        let tauri = STANDARD.encode(&pub_file);
        // minisign-verify's own test vector: a signature of b"test" by that key.
        let sig = Signature::decode(
            "untrusted comment: signature from minisign secret key\n\
             RWQf6LRCGA9i59SLOFxz6NxvASXDJeRtuZykwQepbDEGt87ig1BNpWaVWuNrm73YiIiJbq71Wi+dP9eKL8OC351vwIasSSbXxwA=\n\
             trusted comment: timestamp:1555779966\tfile:test\n\
             QtKMXWyYcwdpZAlPF7tE2ENJkRd1ujvKjlj1m9RtHTBnZPa5WKU5uWRs5GoP5M/VqE81QFuMKI5k/SfNQUaOAA==",
        )
        .unwrap();
        for form in [line.to_owned(), pub_file.clone(), tauri] {
            let key = parse_public_key(&form).unwrap();
            key.verify(b"test", &sig, true).unwrap();
        }
        let e = TrustedKeys::parse(&[line.to_owned(), "nope".into()]).unwrap_err();
        assert!(e.contains("updates.trusted_keys[1]"), "{e}");
        let e = TrustedKeys::parse(&[]).unwrap_err();
        assert!(e.contains("updates.trusted_keys"), "{e}");
        assert_eq!(TrustedKeys::parse(&[line.to_owned()]).unwrap().count(), 1);
    }

    #[test]
    fn a_signature_field_that_is_not_base64_of_a_sig_is_refused_with_a_reason() {
        let error = |field: &str| decode_signature(field).err().unwrap_or_default();
        assert!(error("%%%").contains("not base64"));
        assert!(error(&STANDARD.encode("hello")).contains("not a minisign signature"));
    }
}
