#!/usr/bin/env bash
# Runs every test of the `vq` service (vq/): its unit tests, the REST integration test,
# the MCP conformance test (official Python SDK over stdio) and the dashboard test in
# headless Chromium, each against a throwaway PostgreSQL cluster with the extension.
# Installs what it needs when missing (chromium, python `mcp`); expects the extension to
# be installed in the PostgreSQL of VQ_PG_BIN / VQ_PG_CONFIG (default: Debian's 15).
# The dashboard screenshot lands in vq/target/test-artifacts/dashboard.png.
# Prints "N passed, N failed" last; exits non-zero when anything failed.
set -uo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="${HOME}/.cargo/bin:${PATH}"
export VQ_PG_BIN="${VQ_PG_BIN:-/usr/lib/postgresql/15/bin}"
export DEBIAN_FRONTEND=noninteractive
# vq is its own crate with its own target dir, whatever the caller's CARGO_TARGET_DIR.
unset CARGO_TARGET_DIR
passed=0
failed=0
failures=()

log() { printf '\n==> %s\n' "$*"; }

# Runs one named step, timing it and counting the result.
step() {
    local name="$1"
    shift
    local t0=$SECONDS
    log "${name}"
    if "$@"; then
        passed=$((passed + 1))
        echo "PASS ${name} ($((SECONDS - t0)) s)"
    else
        failed=$((failed + 1))
        failures+=("${name}")
        echo "FAIL ${name} ($((SECONDS - t0)) s)"
    fi
}

if ! command -v chromium >/dev/null 2>&1; then
    log "installing chromium"
    apt-get update -qq && apt-get install -y -qq chromium </dev/null
fi
if ! python3 -c 'import mcp' >/dev/null 2>&1; then
    log "installing the Python MCP SDK"
    python3 -m pip install -q mcp || python3 -m pip install -q --break-system-packages mcp
fi

cd "${REPO_DIR}/vq" || exit 1
log "building vq and its tests"
if ! cargo build --release --all-targets; then
    echo "0 passed, 1 failed"
    exit 1
fi
step "vq unit tests" cargo test --release --bins
step "vq REST integration test" cargo test --release --test rest -- --ignored --nocapture
step "vq MCP conformance test (Python SDK, stdio)" cargo test --release --test mcp -- --ignored --nocapture
step "vq dashboard test (headless Chromium)" cargo test --release --test dashboard -- --ignored --nocapture

((failed)) && printf 'failed: %s\n' "${failures[@]}"
echo "${passed} passed, ${failed} failed"
((failed == 0))
