//! [`MemoryReleaseApi`]: the ERP's releases (contract section 5), in memory,
//! with real minisign signatures.

use std::collections::{BTreeMap, HashMap};
use std::io::Cursor;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use sha2::{Digest, Sha256};
use spacepos_core::{ComponentId, RemoteError};
use spacepos_updates::{PendingRelease, RangeChunk, ReleaseApi, ReleaseApiError, ReleaseComponent};

const HOST: &str = "memory-erp";

/// Which key signs a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ReleaseKey {
    /// The key terminals trust today.
    #[default]
    Primary,
    /// The next key, trusted beside the primary one while keys are rotated.
    Rotated,
    /// A key no terminal trusts.
    Rogue,
}

/// Three minisign key pairs and the signing of artifacts as Tauri's signer
/// does it (trusted comment `timestamp:<t>\tfile:<name>\tversion:<v>`, the
/// `.sig` text base64-encoded).
pub struct ReleaseSigner {
    primary: minisign::KeyPair,
    rotated: minisign::KeyPair,
    rogue: minisign::KeyPair,
}

impl std::fmt::Debug for ReleaseSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReleaseSigner(primary, rotated, rogue)")
    }
}

impl Default for ReleaseSigner {
    fn default() -> Self {
        Self::new()
    }
}

impl ReleaseSigner {
    /// Three new key pairs.
    pub fn new() -> Self {
        let pair = || {
            minisign::KeyPair::generate_unencrypted_keypair()
                .unwrap_or_else(|e| panic!("cannot generate a minisign key pair: {e}"))
        };
        ReleaseSigner {
            primary: pair(),
            rotated: pair(),
            rogue: pair(),
        }
    }

    fn pair(&self, key: ReleaseKey) -> &minisign::KeyPair {
        match key {
            ReleaseKey::Primary => &self.primary,
            ReleaseKey::Rotated => &self.rotated,
            ReleaseKey::Rogue => &self.rogue,
        }
    }

    /// The public key as the key line of its `.pub` file (`RW...`).
    pub fn public_key(&self, key: ReleaseKey) -> String {
        self.pair(key).pk.to_base64()
    }

    /// Base64 of the minisign signature text of `data`, with `trusted_comment`.
    pub fn sign(&self, key: ReleaseKey, data: &[u8], trusted_comment: &str) -> String {
        let pair = self.pair(key);
        let sig = minisign::sign(
            Some(&pair.pk),
            &pair.sk,
            Cursor::new(data),
            Some(trusted_comment),
            Some("signature from tauri secret key"),
        )
        .unwrap_or_else(|e| panic!("cannot sign: {e}"));
        STANDARD.encode(sig.into_string())
    }
}

/// A release to publish with [`MemoryReleaseApi::publish`]; the same switches
/// as the fake ERP's `ReleaseSpec`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryRelease {
    /// The REST id (`spacepos`, `spacefuel`, or anything for an unknown component).
    pub component: String,
    /// The version the artifact was built and signed as.
    pub version: String,
    pub bytes: Vec<u8>,
    pub notes: Option<String>,
    pub allow_downgrade: bool,
    pub key: ReleaseKey,
    /// Announce it under another version (the signature keeps the real one).
    pub advertised: Option<String>,
    /// Serve bytes that differ from the signed ones (one byte flipped).
    pub tampered: bool,
    /// Announce this sha256 instead of the real one.
    pub sha256: Option<String>,
    /// Sign without `version:` in the trusted comment.
    pub unversioned: bool,
}

impl MemoryRelease {
    /// 64 KiB of bytes derived from component and version, signed by the primary key.
    pub fn new(component: ComponentId, version: &str) -> Self {
        Self::named(component.rest_id(), version)
    }

    /// A release of a component named `component` (possibly unknown to this build).
    pub fn named(component: &str, version: &str) -> Self {
        let seed = Sha256::digest(format!("{component}/{version}"));
        let bytes = (0..64 * 1024).map(|i| seed[i % 32] ^ (i as u8)).collect();
        MemoryRelease {
            component: component.to_owned(),
            version: version.to_owned(),
            bytes,
            notes: None,
            allow_downgrade: false,
            key: ReleaseKey::Primary,
            advertised: None,
            tampered: false,
            sha256: None,
            unversioned: false,
        }
    }

    pub fn with_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.bytes = bytes.into();
        self
    }

    pub fn with_notes(mut self, notes: &str) -> Self {
        self.notes = Some(notes.to_owned());
        self
    }

    pub fn allow_downgrade(mut self) -> Self {
        self.allow_downgrade = true;
        self
    }

    pub fn signed_by(mut self, key: ReleaseKey) -> Self {
        self.key = key;
        self
    }

    pub fn advertised_as(mut self, version: &str) -> Self {
        self.advertised = Some(version.to_owned());
        self
    }

    pub fn tampered(mut self) -> Self {
        self.tampered = true;
        self
    }

    pub fn with_sha256(mut self, digest: &str) -> Self {
        self.sha256 = Some(digest.to_owned());
        self
    }

    pub fn unversioned_signature(mut self) -> Self {
        self.unversioned = true;
        self
    }
}

/// One `fetch_range` call as the fake saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    pub url: String,
    pub start: u64,
    pub max_len: u64,
    /// Bytes returned; `None` when the call failed.
    pub returned: Option<u64>,
}

#[derive(Debug, Default)]
struct Inner {
    pending: BTreeMap<String, PendingRelease>,
    artifacts: HashMap<String, Vec<u8>>,
    offline: bool,
    cut_next: Option<u64>,
    offline_after_cut: bool,
    ignore_range: bool,
    pending_calls: usize,
    fetches: Vec<Fetch>,
}

/// An in-memory [`ReleaseApi`]: publish releases signed by real minisign keys
/// ([`ReleaseSigner`]), then let the code under test list and download them.
///
/// Clones share everything. Fault switches: [`set_offline`](Self::set_offline)
/// (every call fails as unreachable), [`cut_next_transfer`](Self::cut_next_transfer)
/// (the next download returns only its first bytes, optionally followed by the
/// ERP going offline), [`ignore_range`](Self::ignore_range) (answer every
/// download with the whole artifact, like a server without range support).
#[derive(Debug, Clone)]
pub struct MemoryReleaseApi {
    inner: Arc<Mutex<Inner>>,
    signer: Arc<ReleaseSigner>,
}

impl Default for MemoryReleaseApi {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryReleaseApi {
    pub fn new() -> Self {
        MemoryReleaseApi {
            inner: Arc::new(Mutex::new(Inner::default())),
            signer: Arc::new(ReleaseSigner::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn signer(&self) -> &ReleaseSigner {
        &self.signer
    }

    /// The key line (`RW...`) of one of the three keys.
    pub fn public_key(&self, key: ReleaseKey) -> String {
        self.signer.public_key(key)
    }

    /// Publish a release: it becomes the pending one of its component; its
    /// artifact stays downloadable. Returns what `pending` lists.
    pub fn publish(&self, spec: MemoryRelease) -> PendingRelease {
        let advertised = spec
            .advertised
            .clone()
            .unwrap_or_else(|| spec.version.clone());
        let file = format!("{}-{}.bin", spec.component, spec.version);
        let comment = if spec.unversioned {
            format!("timestamp:{}\tfile:{file}", Utc::now().timestamp())
        } else {
            format!(
                "timestamp:{}\tfile:{file}\tversion:{}",
                Utc::now().timestamp(),
                spec.version
            )
        };
        let signature = self.signer.sign(spec.key, &spec.bytes, &comment);
        let sha256 = spec
            .sha256
            .clone()
            .unwrap_or_else(|| hex::encode(Sha256::digest(&spec.bytes)));
        let mut served = spec.bytes.clone();
        if spec.tampered {
            let middle = served.len() / 2;
            match served.get_mut(middle) {
                Some(b) => *b ^= 0x5A,
                None => served.push(0x5A),
            }
        }
        let url = format!("memory://releases/{}/{advertised}/{file}", spec.component);
        let release = PendingRelease {
            component: match spec.component.parse::<ComponentId>() {
                Ok(c) => ReleaseComponent::Known(c),
                Err(_) => ReleaseComponent::Unknown(spec.component.clone()),
            },
            version: advertised,
            notes: spec.notes.clone(),
            pub_date: Some(Utc::now()),
            url: url.clone(),
            signature,
            sha256,
            size: Some(served.len() as u64),
            allow_downgrade: spec.allow_downgrade,
        };
        let mut inner = self.lock();
        inner.artifacts.insert(url, served);
        inner.pending.insert(spec.component, release.clone());
        release
    }

    /// Nothing pending any more (artifacts stay downloadable).
    pub fn withdraw_all(&self) {
        self.lock().pending.clear();
    }

    /// Every call fails as unreachable while `offline`.
    pub fn set_offline(&self, offline: bool) {
        self.lock().offline = offline;
    }

    /// The next download returns only its first `after_bytes` bytes (a cut
    /// transfer); with `then_offline`, the ERP is unreachable afterwards until
    /// [`set_offline(false)`](Self::set_offline).
    pub fn cut_next_transfer(&self, after_bytes: u64, then_offline: bool) {
        let mut inner = self.lock();
        inner.cut_next = Some(after_bytes);
        inner.offline_after_cut = then_offline;
    }

    /// Answer downloads with the whole artifact, whatever range was asked.
    pub fn ignore_range(&self, ignore: bool) {
        self.lock().ignore_range = ignore;
    }

    /// How many times `pending` was called.
    pub fn pending_calls(&self) -> usize {
        self.lock().pending_calls
    }

    /// Every `fetch_range` call, in order.
    pub fn fetches(&self) -> Vec<Fetch> {
        self.lock().fetches.clone()
    }
}

fn unreachable_erp() -> ReleaseApiError {
    ReleaseApiError::Remote(RemoteError::Unreachable {
        host: HOST.into(),
        detail: "connection refused (the memory ERP is offline)".into(),
    })
}

#[async_trait]
impl ReleaseApi for MemoryReleaseApi {
    async fn pending(&self) -> Result<Vec<PendingRelease>, ReleaseApiError> {
        let mut inner = self.lock();
        inner.pending_calls += 1;
        if inner.offline {
            return Err(unreachable_erp());
        }
        Ok(inner.pending.values().cloned().collect())
    }

    async fn fetch_range(
        &self,
        url: &str,
        start: u64,
        max_len: u64,
    ) -> Result<RangeChunk, ReleaseApiError> {
        let mut inner = self.lock();
        let result = fetch(&mut inner, url, start, max_len);
        inner.fetches.push(Fetch {
            url: url.to_owned(),
            start,
            max_len,
            returned: result.as_ref().ok().map(|c| c.bytes.len() as u64),
        });
        result
    }
}

fn fetch(
    inner: &mut Inner,
    url: &str,
    start: u64,
    max_len: u64,
) -> Result<RangeChunk, ReleaseApiError> {
    if inner.offline {
        return Err(unreachable_erp());
    }
    let bytes = inner
        .artifacts
        .get(url)
        .cloned()
        .ok_or_else(|| ReleaseApiError::NotFound {
            url: url.to_owned(),
        })?;
    let total = bytes.len() as u64;
    let start = if inner.ignore_range { 0 } else { start };
    if start >= total {
        return Err(ReleaseApiError::RangeNotSatisfiable { total });
    }
    let mut end = if inner.ignore_range {
        total
    } else {
        start.saturating_add(max_len.max(1)).min(total)
    };
    if let Some(cut) = inner.cut_next.take() {
        if cut == 0 {
            inner.offline = inner.offline_after_cut;
            return Err(unreachable_erp());
        }
        end = end.min(start + cut);
        inner.offline = inner.offline_after_cut;
    }
    let (from, to) = (
        usize::try_from(start).unwrap_or(usize::MAX),
        usize::try_from(end).unwrap_or(usize::MAX),
    );
    Ok(RangeChunk {
        start,
        bytes: bytes[from..to].to_vec(),
        total,
    })
}
