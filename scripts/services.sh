#!/usr/bin/env bash
# Make sure the services the test suite talks to are up, installing them on a
# fresh Debian machine when missing. Idempotent; safe to run before every test run.
#   RabbitMQ on 127.0.0.1:5672 (guest/guest)
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

ensure_rabbitmq
