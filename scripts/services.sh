#!/usr/bin/env bash
# Make sure the services and tools the test suite needs are there, installing
# them on a fresh Debian machine when missing. Idempotent; safe to run before
# every test run (a second of checks when everything is in place).
#   RabbitMQ on 127.0.0.1:5672 (guest/guest)
#   the desktop app's build and WebDriver tools: WebKitGTK 4.1 and friends
#   (../shared/design/STACK-NOTES.md), Xvfb, WebKitWebDriver, tauri-driver
set -euo pipefail

log() { printf '[services] %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root to run: $*"; return 1; fi
}

apt_install() {
  log "installing Debian packages: $*"
  as_root apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

ensure_rabbitmq() {
  if port_open 5672; then return 0; fi
  if ! command -v rabbitmq-server >/dev/null; then apt_install rabbitmq-server; fi
  log "starting RabbitMQ"
  as_root rabbitmq-server -detached >/dev/null 2>&1 || true
  for _ in $(seq 1 90); do
    if port_open 5672; then log "RabbitMQ is up on 127.0.0.1:5672"; return 0; fi
    sleep 1
  done
  log "RabbitMQ did not open 127.0.0.1:5672 within 90 s; see /var/log/rabbitmq/"
  return 1
}

# apps/spacepos-desktop links WebKitGTK; its WebDriver suite runs the app
# under Xvfb through tauri-driver and Debian's WebKitWebDriver.
DESKTOP_DEBS="libwebkit2gtk-4.1-dev build-essential libxdo-dev libssl-dev libayatana-appindicator3-dev librsvg2-dev pkg-config xvfb webkit2gtk-driver"

ensure_desktop_tools() {
  if command -v dpkg-query >/dev/null; then
    local missing=""
    for p in $DESKTOP_DEBS; do
      dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
      # shellcheck disable=SC2086
      apt_install $missing || { log "could not install:$missing (the desktop app cannot build or be tested)"; return 1; }
    fi
  else
    log "not Debian: install WebKitGTK 4.1, Xvfb and WebKitWebDriver yourself ($DESKTOP_DEBS)"
  fi
  if ! command -v tauri-driver >/dev/null && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/tauri-driver" ]; then
    log "installing tauri-driver from crates.io (about 1 min, once)"
    cargo install tauri-driver --locked --quiet
  fi
}

ensure_rabbitmq
ensure_desktop_tools
