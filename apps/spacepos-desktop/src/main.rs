//! `spacepos-desktop`: the SpacePOS till app. See the library's docs.

// A window app on Windows: no console next to it in release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() -> std::process::ExitCode {
    spacepos_desktop::main()
}
