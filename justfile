# The one entry point for everyday tasks; CI (.ci/run) runs the same commands.
# Install just with `cargo install just --locked`, or run the commands by hand.

default:
    @just --list

# Watch a terminal onboard against the built-in ERP simulator.
demo:
    cargo run -p spacepos -- demo

# The whole test suite (starts RabbitMQ if needed).
test *ARGS:
    scripts/test {{ARGS}}

fmt:
    cargo fmt --all

lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

doc:
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps

# The dependency rule of ARCHITECTURE.md, two ways.
arch:
    cargo test -p spacepos-arch
    cargo deny check bans licenses sources

# Benchmarks against their raw limits (needs RabbitMQ and sqlite3); figures in BENCHMARKS.md.
bench:
    cargo run --release -p spacepos-bench -- all --markdown

# The till app (Tauri 2) on this machine's display; SPACEPOS_DATA_DIR picks the node.
desktop:
    cargo run -p spacepos-desktop

# The till app's idle memory (WebKit included) next to a blank Tauri window; figures in BENCHMARKS.md.
desktop-rss:
    scripts/desktop-rss

# The WebDriver suite of the till app, refreshing docs/screenshots/.
screenshots:
    UPDATE_DOCS_SCREENSHOTS=1 cargo test -p spacepos-desktop --test webdriver

# Type-check the Windows code (needs the x86_64-pc-windows-gnu target and mingw).
windows:
    cargo check --target x86_64-pc-windows-gnu $(sed 's/^/-p /' .ci/windows-packages)

# Everything CI runs.
ci:
    bash .ci/run
