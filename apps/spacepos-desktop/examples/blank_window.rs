//! The raw limit of the desktop app's memory: the same Tauri build (same
//! config, same WebKitGTK, the same page from `ui/`) with no runtime and no
//! commands behind it, so the page only shows that it cannot reach its
//! backend. `scripts/desktop-rss` measures this next to the real app.

fn main() {
    let result = tauri::Builder::default().run(tauri::generate_context!());
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
