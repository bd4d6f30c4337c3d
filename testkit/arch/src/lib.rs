//! The architecture invariants of `ARCHITECTURE.md`, checked mechanically.
//!
//! [`check`] reads `cargo metadata --no-deps --format-version 1` (declared
//! dependencies of every workspace package) and the crates' sources, and returns
//! every violation of:
//!
//! - **Domain crates (`crates/`) depend on no adapter, app or testkit crate and
//!   on no I/O technology** (reqwest, lapin, sqlx, axum, hyper, tauri, ...).
//! - **An I/O technology is used only by its adapter** (reqwest only in
//!   `spacepos-erp-http`, lapin only in `spacepos-amqp`, sqlx only in
//!   `spacepos-sqlite`, ...).
//! - **Adapters depend on no other adapter**, except the shared wire format
//!   `spacepos-erp-wire`, and on no app.
//! - **testkit is a dev-dependency**, except the fake ERP in `apps/spacepos`
//!   (its `erp-sim` and `demo` commands run it for real).
//! - **Apps do not depend on each other**, except on [`COMPOSITION_LIBRARY`]
//!   (`apps/node`), the node composition the CLI and the desktop app share.
//! - **Package name = `spacepos-<directory>`** (the CLI app is `spacepos`), and
//!   **every library opens with a `//!` doc** saying what it owns.
//!
//! Dev-dependencies are exempt from the layering rules: tests see everything.
//! It declares no port and is not used by any other crate; `tests/` runs it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Which layer a package belongs to, from its top-level directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    Domain,
    Adapter,
    App,
    Testkit,
    Other,
}

impl Layer {
    fn of(top_dir: &str) -> Layer {
        match top_dir {
            "crates" => Layer::Domain,
            "adapters" => Layer::Adapter,
            "apps" => Layer::App,
            "testkit" => Layer::Testkit,
            _ => Layer::Other,
        }
    }
}

/// External crates that do I/O with a given technology, and the only packages
/// allowed to depend on each of them directly.
///
/// `spacepos-bench` (testkit/bench) is the benchmark crate: it measures each
/// adapter against the raw limit of its technology (bare reqwest, lapin and
/// sqlx), so it uses those directly; it ships nothing.
pub const TECHNOLOGY_OWNERS: &[(&str, &[&str])] = &[
    ("reqwest", &["spacepos-erp-http", "spacepos-bench"]),
    ("lapin", &["spacepos-amqp", "spacepos-bench"]),
    ("sqlx", &["spacepos-sqlite", "spacepos-bench"]),
    ("rusqlite", &["spacepos-sqlite"]),
    ("libsqlite3-sys", &["spacepos-sqlite"]),
    ("axum", &["spacepos-fake-erp"]),
    ("hyper", &["spacepos-fake-erp"]),
    ("hyper-util", &["spacepos-fake-erp"]),
    ("windows-service", &["spacepos-windows-scm"]),
    ("tauri", &["spacepos-desktop"]),
    ("tauri-plugin-updater", &["spacepos-desktop"]),
];

/// The one app-layer library other apps may depend on: one node composed
/// from its adapters (`apps/node`), so the CLI and the desktop app run the
/// same runtime.
pub const COMPOSITION_LIBRARY: &str = "spacepos-node";

/// Crates a domain crate must never depend on, even if an adapter may.
pub const NOT_IN_DOMAIN: &[&str] = &["anyhow", "tonic", "amqprs", "windows", "windows-sys"];

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub package: String,
    pub rule: &'static str,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({})", self.package, self.detail, self.rule)
    }
}

struct Package<'a> {
    name: &'a str,
    layer: Layer,
    dir: PathBuf,
    rel: PathBuf,
    meta: &'a serde_json::Value,
}

fn str_of<'a>(v: &'a serde_json::Value, key: &str) -> &'a str {
    v.get(key)
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
}

/// Check the workspace described by `metadata` (`cargo metadata --no-deps`).
pub fn check(metadata: &serde_json::Value) -> Vec<Violation> {
    let root = PathBuf::from(str_of(metadata, "workspace_root"));
    let empty = Vec::new();
    let packages: Vec<Package<'_>> = metadata
        .get("packages")
        .and_then(serde_json::Value::as_array)
        .unwrap_or(&empty)
        .iter()
        .map(|p| {
            let manifest = PathBuf::from(str_of(p, "manifest_path"));
            let dir = manifest.parent().map(Path::to_path_buf).unwrap_or_default();
            let rel = dir
                .strip_prefix(&root)
                .map(Path::to_path_buf)
                .unwrap_or_else(|_| dir.clone());
            let top = rel
                .components()
                .next()
                .and_then(|c| c.as_os_str().to_str())
                .unwrap_or("");
            Package {
                name: str_of(p, "name"),
                layer: Layer::of(top),
                dir,
                rel,
                meta: p,
            }
        })
        .collect();
    let layer_of: BTreeMap<&str, Layer> = packages.iter().map(|p| (p.name, p.layer)).collect();

    let mut out = Vec::new();
    for p in &packages {
        let mut v = |rule: &'static str, detail: String| {
            out.push(Violation {
                package: p.name.to_owned(),
                rule,
                detail,
            })
        };

        let expected = match (p.layer, p.rel.file_name().and_then(|n| n.to_str())) {
            (Layer::App, Some("spacepos")) => Some("spacepos".to_owned()),
            (Layer::Other, _) | (_, None) => None,
            (_, Some(dir)) if dir.starts_with("spacepos") => Some(dir.to_owned()),
            (_, Some(dir)) => Some(format!("spacepos-{dir}")),
        };
        if let Some(expected) = expected
            && expected != p.name
        {
            v(
                "naming",
                format!(
                    "directory {} should hold package `{expected}`",
                    p.rel.display()
                ),
            );
        }

        let deps = p
            .meta
            .get("dependencies")
            .and_then(serde_json::Value::as_array)
            .unwrap_or(&empty);
        for d in deps {
            if str_of(d, "kind") == "dev" {
                continue;
            }
            let name = str_of(d, "name");
            let target = layer_of.get(name).copied();
            match p.layer {
                Layer::Domain => {
                    if matches!(target, Some(Layer::Adapter | Layer::App | Layer::Testkit)) {
                        v(
                            "domain depends inward only",
                            format!("depends on `{name}` ({:?})", target.unwrap_or(Layer::Other)),
                        );
                    }
                    if NOT_IN_DOMAIN.contains(&name)
                        || TECHNOLOGY_OWNERS.iter().any(|(t, _)| *t == name)
                    {
                        v("domain does no I/O", format!("depends on `{name}`"));
                    }
                }
                Layer::Adapter => {
                    if target == Some(Layer::Adapter) && name != "spacepos-erp-wire" {
                        v(
                            "adapters do not depend on each other",
                            format!("depends on `{name}`"),
                        );
                    }
                    if matches!(target, Some(Layer::App | Layer::Testkit)) {
                        v(
                            "adapters depend inward only",
                            format!("depends on `{name}`"),
                        );
                    }
                }
                Layer::App => {
                    if target == Some(Layer::App) && name != COMPOSITION_LIBRARY {
                        v(
                            "apps do not depend on each other",
                            format!("depends on `{name}`"),
                        );
                    }
                    if target == Some(Layer::Testkit)
                        && !(p.name == "spacepos" && name == "spacepos-fake-erp")
                    {
                        v(
                            "testkit is a dev-dependency",
                            format!("depends on `{name}`"),
                        );
                    }
                }
                Layer::Testkit | Layer::Other => {
                    if target == Some(Layer::App) {
                        v("nothing depends on an app", format!("depends on `{name}`"));
                    }
                }
            }
            if let Some((tech, owners)) = TECHNOLOGY_OWNERS.iter().find(|(t, _)| *t == name)
                && !owners.contains(&p.name)
            {
                v(
                    "one technology, one adapter",
                    format!("depends on `{tech}`, which only {owners:?} may use"),
                );
            }
        }

        let lib = p.dir.join("src/lib.rs");
        if let Ok(text) = std::fs::read_to_string(&lib)
            && !text.trim_start().starts_with("//!")
        {
            v(
                "crate docs",
                format!("{} does not open with a `//!` doc", lib.display()),
            );
        }
    }
    out
}

/// Run `cargo metadata --no-deps` in `dir` and check it.
pub fn check_dir(dir: &Path) -> Result<Vec<Violation>, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run cargo metadata in {}: {e}", dir.display()))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed in {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("cargo metadata output is not JSON: {e}"))?;
    Ok(check(&meta))
}
