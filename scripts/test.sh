#!/usr/bin/env bash
# The whole test suite of ia-agents, runnable on a fresh Debian machine:
# installs what the tests need (idempotently), then runs the Rust tests and the manifest tests.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} (apt)"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

if ! command -v cargo >/dev/null 2>&1; then
  apt_install curl ca-certificates build-essential
  log "installing the Rust toolchain (rustup)"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy,rustfmt
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi

# `kubectl kustomize config/default` is checked against the Helm chart
command -v kubectl >/dev/null 2>&1 || apt_install kubernetes-client
# the console's browser test drives Debian's Chromium headless (tests/test_console.py)
command -v chromium >/dev/null 2>&1 || apt_install chromium
# every shell script is checked (tests/test_packaging.py)
command -v shellcheck >/dev/null 2>&1 || apt_install shellcheck

if ! command -v python3 >/dev/null 2>&1; then
  apt_install python3 python3-venv
fi

# Python test tools live in a virtual environment under target/, never in the system Python.
PY_ENV=target/py
if [ ! -x "$PY_ENV/bin/python" ]; then
  log "creating $PY_ENV"
  mkdir -p target
  python3 -m venv "$PY_ENV" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$PY_ENV"; }
fi
if ! cmp -s tests/requirements.txt "$PY_ENV/requirements.installed"; then
  log "installing Python test tools"
  "$PY_ENV/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
  cp tests/requirements.txt "$PY_ENV/requirements.installed"
fi

log "starting throwaway PostgreSQL and NATS on 127.0.0.1 (scripts/services.sh)"
eval "$(scripts/services.sh)"
trap 'scripts/services.sh stop' EXIT
# integration tests fail, rather than skip, when a server they need is missing
export IA_REQUIRE_SERVICES=1

log "Rust tests (cargo test --workspace)"
cargo test --workspace --all-targets --locked

# `cargo test` has built the binaries the Python tests drive (target/debug/trading-agent, …): a
# separate `cargo build --bins` would compile 35 crates again with other features, for nothing.
for binary in trading-agent trading-operator kubectl-ia_agents; do
  [ -x "target/debug/$binary" ] || { echo "target/debug/$binary was not built by cargo test" >&2; exit 1; }
done

log "Python tests (pytest: kubernetes-validate on config/, crds/ and the Helm chart; indicators against TA-Lib; the console in headless Chromium)"
"$PY_ENV/bin/python" -m pytest -q tests

log "all tests passed"
