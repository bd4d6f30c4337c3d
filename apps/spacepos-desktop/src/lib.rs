//! The SpacePOS desktop app (Tauri 2): the till's window over the same node
//! and runtime as the `spacepos` CLI (`spacepos-node`).
//!
//! - [`backend`]: the node, its runtime once onboarded, and the [`view::View`]
//!   pushed to the window as the `view` event whenever it changes (the
//!   window never polls);
//! - [`commands`]: the Tauri commands, thin: UI DTO in, backend call, UI DTO
//!   out (`UI-CONTRACT.md` is the contract with `ui/`);
//! - [`view`]: the DTOs, shaped from `spacepos_node::status::Status`;
//! - [`updater`] and [`installer`]: the app's own update through
//!   tauri-plugin-updater, fed by the one-shot loopback manifest of the
//!   staged release, with the device headers and the trusted keys.
//!
//! The frontend (`ui/`) is plain HTML, CSS and JavaScript without a build
//! step. No secret reaches it: the views carry no credential (tested).
//!
//! Ports: implements `ComponentInstaller` (updates) with [`installer::TauriInstaller`];
//! declares none. This is the only package allowed to depend on `tauri` and
//! `tauri-plugin-updater` (`testkit/arch`). It needs WebKitGTK to build on
//! Linux, so the workspace's `default-members` leave it out: build it with
//! `-p spacepos-desktop`.

pub mod backend;
pub mod commands;
pub mod installer;
pub mod updater;
pub mod view;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};

use spacepos_node::Node;
use tauri::{AppHandle, Emitter, Manager, Runtime};

use crate::backend::{Backend, SelfInstall, ViewSink};
use crate::view::View;

/// The event that carries a new [`View`] to the window.
pub const VIEW_EVENT: &str = "view";

/// Pushes views to every window of the app, once the app exists.
#[derive(Debug)]
pub struct WindowSink<R: Runtime> {
    app: OnceLock<AppHandle<R>>,
}

impl<R: Runtime> WindowSink<R> {
    pub fn new() -> Arc<Self> {
        Arc::new(WindowSink {
            app: OnceLock::new(),
        })
    }

    /// Connect to the app (in `setup`); views before that are dropped (the
    /// window asks for the view when it loads).
    pub fn connect(&self, app: AppHandle<R>) {
        let _ = self.app.set(app);
    }
}

impl<R: Runtime> ViewSink for WindowSink<R> {
    fn push(&self, view: &View) {
        if let Some(app) = self.app.get()
            && let Err(e) = app.emit(VIEW_EVENT, view)
        {
            tracing::warn!(error = %e, "could not push the view to the window");
        }
    }
}

/// The commands and the backend on a builder: what the app runs and what
/// the tests build with `tauri::test::mock_builder()`.
pub fn with_backend<R: Runtime>(builder: tauri::Builder<R>, backend: Backend) -> tauri::Builder<R> {
    builder
        .manage(backend)
        .invoke_handler(tauri::generate_handler![
            commands::view,
            commands::onboard,
            commands::retry_operation,
            commands::snooze_update,
            commands::install_update,
            commands::staff_login,
            commands::staff_logout,
        ])
}

/// The node the environment points at: `SPACEPOS_DATA_DIR` and
/// `SPACEPOS_CONFIG` as for the CLI, else the default data directory and
/// its `spacepos.toml`.
pub fn node_from_env() -> Node {
    let path = |name| std::env::var_os(name).map(PathBuf::from);
    Node::from_cli(path("SPACEPOS_DATA_DIR"), path("SPACEPOS_CONFIG"))
}

/// Run the app until its window closes.
pub fn main() -> ExitCode {
    let node = node_from_env();
    let _log = spacepos_node::logging::init(
        tracing::level_filters::LevelFilter::INFO,
        Some(&node.log_dir()),
        "spacepos-desktop",
    );
    let sink = WindowSink::<tauri::Wry>::new();
    // Windows builds install SpacePOS through the MSI; elsewhere updates are
    // shown and staged only.
    let service = Arc::new(OnceLock::new());
    let installer_slot: Arc<OnceLock<AppHandle<tauri::Wry>>> = Arc::new(OnceLock::new());
    let install = if cfg!(windows) {
        SelfInstall {
            installer: Some(Arc::new(installer::TauriInstaller {
                app: installer_slot.clone(),
                node: node.clone(),
                service: service.clone(),
            })),
            service: Some(service),
        }
    } else {
        SelfInstall::default()
    };
    let backend = Backend::new(node, sink.clone(), install);
    let started = backend.clone();
    let app = with_backend(tauri::Builder::default(), backend.clone())
        .plugin(updater::plugin())
        .setup(move |app| {
            sink.connect(app.handle().clone());
            let _ = installer_slot.set(app.handle().clone());
            tauri::async_runtime::spawn(async move {
                if let Err(e) = started.start().await {
                    tracing::error!(error = %e, "SpacePOS could not start its runtime");
                }
            });
            if let Some(w) = app.get_webview_window("main") {
                let _ = w.set_title(&format!("SpacePOS {}", spacepos_node::platform::VERSION));
            }
            Ok(())
        })
        .build(tauri::generate_context!());
    let app = match app {
        Ok(app) => app,
        Err(e) => {
            eprintln!("error: the SpacePOS window could not start: {e}");
            return ExitCode::FAILURE;
        }
    };
    app.run(move |_, event| {
        if let tauri::RunEvent::Exit = event {
            backend.stop();
        }
    });
    ExitCode::SUCCESS
}
