//! [`FileHealthProbe`]: the [`HealthProbe`] port over the health report a
//! running SpaceFuel service writes to `<extensions-dir>/health.json`
//! ([`write_health_report`], atomically).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use spacepos_config::Slot;
use spacepos_spacefuel::{HEALTH_FILE, HealthProbe, HealthReport};

use crate::atomic::{FileMode, write_atomic};
use crate::blocking;
use crate::error::FsError;

/// Largest health report read.
const MAX_REPORT_BYTES: u64 = 1024 * 1024;

/// Reads `health.json` in the extensions directory
/// (`<data-dir>/extensions/spacefuel`).
///
/// Healthy means the report names the slot and the version asked for and says
/// it is ready; anything else is `Err` with the reason, for example
/// `health.json says version 2.1.0, expected 2.2.0`, `not ready: controller
/// offline` or `no health report yet at <path>`.
#[derive(Debug, Clone)]
pub struct FileHealthProbe {
    path: PathBuf,
}

impl FileHealthProbe {
    /// The probe of the report in `extensions_dir`.
    pub fn new(extensions_dir: impl AsRef<Path>) -> Self {
        FileHealthProbe {
            path: extensions_dir.as_ref().join(HEALTH_FILE),
        }
    }

    /// `<extensions-dir>/health.json`.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait]
impl HealthProbe for FileHealthProbe {
    async fn check(&self, slot: Slot, version: &str) -> Result<(), String> {
        let path = self.path.clone();
        let report = blocking::run(move || read_report(&path))
            .await
            .map_err(|e| format!("cannot read {}: {e}", self.path.display()))??;
        judge(&report, slot, version)?;
        let age = chrono::Utc::now() - report.at;
        if age > chrono::Duration::seconds(REPORT_MAX_AGE_SECONDS) {
            return Err(format!(
                "the last health report ({}) is {} s old: the service does not report",
                self.path.display(),
                age.num_seconds()
            ));
        }
        Ok(())
    }

    async fn report(&self) -> Option<HealthReport> {
        let path = self.path.clone();
        blocking::run(move || read_report(&path)).await.ok()?.ok()
    }
}

/// A report older than this does not say the service is healthy now (the
/// service writes one every second).
const REPORT_MAX_AGE_SECONDS: i64 = 10;

fn read_report(path: &Path) -> Result<HealthReport, String> {
    let bytes = match read_limited(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(format!("no health report yet at {}", path.display()));
        }
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    serde_json::from_slice(&bytes)
        .map_err(|e| format!("the health report {} is unreadable: {e}", path.display()))
}

fn read_limited(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    fs::File::open(path)?
        .take(MAX_REPORT_BYTES)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Whether `report` says the service of `slot` runs `version` and is ready.
fn judge(report: &HealthReport, slot: Slot, version: &str) -> Result<(), String> {
    if report.slot != slot {
        return Err(format!(
            "{HEALTH_FILE} says slot {}, expected {slot}",
            report.slot
        ));
    }
    if report.version != version {
        return Err(format!(
            "{HEALTH_FILE} says version {}, expected {version}",
            report.version
        ));
    }
    if !report.ready {
        return Err(format!(
            "not ready: {}",
            report.detail.as_deref().unwrap_or("no reason given")
        ));
    }
    Ok(())
}

/// Write `report` to `<extensions_dir>/health.json` atomically and durably
/// (temporary file, fsync, rename, directory fsync; `0644`), creating the
/// directory if needed. For the SpaceFuel service; it blocks (a small file):
/// call it from a blocking context or `spawn_blocking`.
pub fn write_health_report(
    extensions_dir: impl AsRef<Path>,
    report: &HealthReport,
) -> Result<(), FsError> {
    let dir = extensions_dir.as_ref();
    let path = dir.join(HEALTH_FILE);
    fs::create_dir_all(dir).map_err(|e| FsError::io("create the directory", dir, e))?;
    let mut bytes = serde_json::to_vec_pretty(report)
        .map_err(|e| FsError::io("encode the health report for", &path, io::Error::other(e)))?;
    bytes.push(b'\n');
    write_atomic(&path, &bytes, FileMode::Shared).map_err(|e| FsError::io("write", &path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn report(slot: Slot, version: &str, ready: bool, detail: Option<&str>) -> HealthReport {
        HealthReport {
            slot,
            version: version.into(),
            pid: 4242,
            ready,
            detail: detail.map(str::to_owned),
            at: Utc::now(),
            pumps: Vec::new(),
            sales: Vec::new(),
        }
    }

    async fn check_with(r: Option<HealthReport>, slot: Slot, version: &str) -> Result<(), String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let ext = dir.path().join("extensions").join("spacefuel");
        if let Some(r) = r {
            write_health_report(&ext, &r).expect("write");
        }
        FileHealthProbe::new(&ext).check(slot, version).await
    }

    #[tokio::test]
    async fn a_ready_service_of_the_slot_and_version_is_healthy() {
        let r = report(Slot::Green, "2.2.0", true, None);
        assert_eq!(check_with(Some(r), Slot::Green, "2.2.0").await, Ok(()));
    }

    #[tokio::test]
    async fn another_version_is_not_healthy() {
        let r = report(Slot::Green, "2.1.0", true, None);
        assert_eq!(
            check_with(Some(r), Slot::Green, "2.2.0").await,
            Err("health.json says version 2.1.0, expected 2.2.0".into())
        );
    }

    #[tokio::test]
    async fn another_slot_is_not_healthy() {
        let r = report(Slot::Blue, "2.2.0", true, None);
        assert_eq!(
            check_with(Some(r), Slot::Green, "2.2.0").await,
            Err("health.json says slot blue, expected green".into())
        );
    }

    #[tokio::test]
    async fn not_ready_says_why() {
        let r = report(Slot::Blue, "2.2.0", false, Some("controller offline"));
        assert_eq!(
            check_with(Some(r), Slot::Blue, "2.2.0").await,
            Err("not ready: controller offline".into())
        );
        let r = report(Slot::Blue, "2.2.0", false, None);
        assert_eq!(
            check_with(Some(r), Slot::Blue, "2.2.0").await,
            Err("not ready: no reason given".into())
        );
    }

    #[tokio::test]
    async fn no_report_yet_names_the_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let probe = FileHealthProbe::new(dir.path());
        let e = probe
            .check(Slot::Blue, "2.2.0")
            .await
            .expect_err("no report");
        assert_eq!(
            e,
            format!(
                "no health report yet at {}",
                dir.path().join("health.json").display()
            )
        );
    }

    #[tokio::test]
    async fn a_damaged_report_is_not_healthy() {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::write(dir.path().join(HEALTH_FILE), b"{\"slot\":").expect("write");
        let e = FileHealthProbe::new(dir.path())
            .check(Slot::Blue, "2.2.0")
            .await
            .expect_err("damaged");
        assert!(e.contains("is unreadable"), "{e}");
        assert_eq!(FileHealthProbe::new(dir.path()).report().await, None);
    }

    #[tokio::test]
    async fn a_stale_report_is_not_healthy() {
        let mut r = report(Slot::Green, "2.2.0", true, None);
        r.at = Utc::now() - chrono::Duration::seconds(REPORT_MAX_AGE_SECONDS + 50);
        let e = check_with(Some(r), Slot::Green, "2.2.0")
            .await
            .expect_err("stale");
        assert!(e.contains("s old: the service does not report"), "{e}");
    }

    #[tokio::test]
    async fn the_report_is_answered_whatever_it_says() {
        let dir = tempfile::tempdir().expect("temp dir");
        let probe = FileHealthProbe::new(dir.path());
        assert_eq!(probe.report().await, None);
        let r = report(Slot::Green, "2.1.0", false, Some("controller offline"));
        write_health_report(dir.path(), &r).expect("write");
        assert_eq!(probe.report().await, Some(r));
    }

    #[test]
    fn the_report_is_written_atomically_and_reads_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ext = dir.path().join("spacefuel");
        let first = report(Slot::Blue, "2.1.0", false, Some("starting"));
        let second = report(Slot::Blue, "2.1.0", true, None);
        write_health_report(&ext, &first).expect("first");
        write_health_report(&ext, &second).expect("second");
        assert_eq!(read_report(&ext.join(HEALTH_FILE)), Ok(second));
        let names: Vec<String> = fs::read_dir(&ext)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            vec![HEALTH_FILE.to_owned()],
            "no temporary file left"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(ext.join(HEALTH_FILE))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o644);
        }
    }
}
