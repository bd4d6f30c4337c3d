//! The SpacePOS desktop app (Tauri 2): the till's window. So far it owns
//! the glue of its own update, in [`updater`]: pointing tauri-plugin-updater
//! at the one-shot loopback manifest of the staged SpacePOS release, with the
//! device headers and the trusted minisign keys.
//!
//! The staging itself (download, minisign + sha256 verification, snoozes, the
//! safe point, Ready/Applied) belongs to `spacepos-updates`; the app asks it
//! for [`spacepos_updates::Updates::serve_manifest`], which serves the
//! manifest through the `ManifestServer` port (`spacepos-manifest`'s
//! `LoopbackManifestServer`), and hands the [`spacepos_updates::ServedManifest`]
//! to [`updater::SelfUpdate`].
//!
//! Ports: implements none yet; uses `ManifestServer` (through `Updates`).
//! This is the only package allowed to depend on `tauri` and
//! `tauri-plugin-updater` (`testkit/arch`). It needs WebKitGTK to build on
//! Linux, so the workspace's `default-members` leave it out: build it with
//! `-p spacepos-desktop`.

pub mod updater;
