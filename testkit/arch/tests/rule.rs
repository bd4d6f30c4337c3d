//! The dependency rule holds on this workspace, and the checker bites.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::PathBuf;

use spacepos_arch::{Violation, check_dir};

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn this_workspace_follows_the_rule() {
    let violations = check_dir(&workspace_root()).unwrap();
    assert!(
        violations.is_empty(),
        "ARCHITECTURE.md invariants broken:\n{}",
        violations
            .iter()
            .map(|v| format!("  - {v}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A tiny throw-away workspace with one manifest per (dir, package, deps).
fn workspace(crates: &[(&str, &str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let members: Vec<String> = crates.iter().map(|(d, _, _)| format!("\"{d}\"")).collect();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        format!(
            "[workspace]\nresolver = \"3\"\nmembers = [{}]\n",
            members.join(", ")
        ),
    )
    .unwrap();
    for (d, name, deps) in crates {
        let p = dir.path().join(d);
        std::fs::create_dir_all(p.join("src")).unwrap();
        std::fs::write(
            p.join("Cargo.toml"),
            format!("[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n[dependencies]\n{deps}\n"),
        )
        .unwrap();
        std::fs::write(p.join("src/lib.rs"), "//! test crate\n").unwrap();
    }
    dir
}

fn rules(vs: &[Violation]) -> Vec<&'static str> {
    vs.iter().map(|v| v.rule).collect()
}

#[test]
fn a_domain_crate_using_reqwest_is_rejected() {
    let ws = workspace(&[("crates/sync", "spacepos-sync", "reqwest = \"0.13\"")]);
    let v = check_dir(ws.path()).unwrap();
    assert!(rules(&v).contains(&"domain does no I/O"), "{v:?}");
    assert!(rules(&v).contains(&"one technology, one adapter"), "{v:?}");
}

#[test]
fn a_domain_crate_depending_on_an_adapter_is_rejected() {
    let ws = workspace(&[
        ("adapters/sqlite", "spacepos-sqlite", ""),
        (
            "crates/sync",
            "spacepos-sync",
            "spacepos-sqlite = { path = \"../../adapters/sqlite\" }",
        ),
    ]);
    let v = check_dir(ws.path()).unwrap();
    assert_eq!(rules(&v), vec!["domain depends inward only"], "{v:?}");
}

#[test]
fn adapters_depending_on_each_other_are_rejected_except_the_wire_format() {
    let ws = workspace(&[
        ("adapters/erp-wire", "spacepos-erp-wire", ""),
        ("adapters/sqlite", "spacepos-sqlite", ""),
        (
            "adapters/amqp",
            "spacepos-amqp",
            "spacepos-erp-wire = { path = \"../erp-wire\" }\nspacepos-sqlite = { path = \"../sqlite\" }",
        ),
    ]);
    let v = check_dir(ws.path()).unwrap();
    assert_eq!(
        rules(&v),
        vec!["adapters do not depend on each other"],
        "{v:?}"
    );
    assert!(v[0].detail.contains("spacepos-sqlite"));
}

#[test]
fn lapin_outside_the_amqp_adapter_is_rejected() {
    let ws = workspace(&[("adapters/erp-http", "spacepos-erp-http", "lapin = \"4\"")]);
    let v = check_dir(ws.path()).unwrap();
    assert_eq!(rules(&v), vec!["one technology, one adapter"], "{v:?}");
}

#[test]
fn testkit_as_a_normal_dependency_is_rejected_but_dev_dependencies_are_free() {
    let ws = workspace(&[
        ("testkit/testkit", "spacepos-testkit", ""),
        (
            "apps/spacepos",
            "spacepos",
            "spacepos-testkit = { path = \"../../testkit/testkit\" }",
        ),
        (
            "crates/config",
            "spacepos-config",
            "\n[dev-dependencies]\nspacepos-testkit = { path = \"../../testkit/testkit\" }",
        ),
    ]);
    let v = check_dir(ws.path()).unwrap();
    assert_eq!(rules(&v), vec!["testkit is a dev-dependency"], "{v:?}");
    assert_eq!(v[0].package, "spacepos");
}

#[test]
fn naming_and_crate_docs_are_checked() {
    let ws = workspace(&[("crates/config", "config-stuff", "")]);
    std::fs::write(
        ws.path().join("crates/config/src/lib.rs"),
        "pub fn f() {}\n",
    )
    .unwrap();
    let v = check_dir(ws.path()).unwrap();
    let mut r = rules(&v);
    r.sort();
    assert_eq!(r, vec!["crate docs", "naming"], "{v:?}");
}

#[test]
fn apps_depend_on_the_node_library_but_not_on_each_other() {
    let ws = workspace(&[
        ("apps/node", "spacepos-node", ""),
        (
            "apps/spacepos",
            "spacepos",
            "spacepos-node = { path = \"../node\" }",
        ),
        (
            "apps/spacepos-desktop",
            "spacepos-desktop",
            "spacepos-node = { path = \"../node\" }\nspacepos = { path = \"../spacepos\" }",
        ),
    ]);
    let v = check_dir(ws.path()).unwrap();
    assert_eq!(rules(&v), vec!["apps do not depend on each other"], "{v:?}");
    assert_eq!(v[0].package, "spacepos-desktop");
    assert!(v[0].detail.contains("`spacepos`"), "{v:?}");
}
