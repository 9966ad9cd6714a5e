#!/usr/bin/env bash
# README command (2): run every test. Installs whatever is missing first. Idempotent.
#   1. plain `cargo test` of the Postgres-free core (kernels, quantizers, graph, formats)
#   2. `cargo pgrx test`: in-server tests of the type and the index on a throwaway cluster
#   3. server-level integration tests (tests/integration.rs): their own throwaway clusters
#      for DELETE + VACUUM, kill -9 crash loops, a streaming replica and concurrent clients
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

install_system_packages
install_cargo_pgrx

cd "${REPO_DIR}"
LOG_DIR="$(mktemp -d)"
summary=()
status=0

log "core unit tests (cargo test --release --lib)"
if cargo test --release --lib 2>&1 | tee "${LOG_DIR}/core.log"; then
    summary+=("core: $(grep -E '^test result' "${LOG_DIR}/core.log" | tail -1)")
else
    status=1
    summary+=("core: FAILED")
fi

log "in-server tests (cargo pgrx test pg${PG_MAJOR})"
TEST_PGDATA="${VQ_HOME}/test-pgdata"
mkdir -p "${VQ_HOME}"
chown postgres:postgres "${VQ_HOME}"
rm -rf "${TEST_PGDATA}"
if cargo pgrx test "pg${PG_MAJOR}" --release --runas postgres --pgdata "${TEST_PGDATA}" 2>&1 | tee "${LOG_DIR}/pg.log"; then
    summary+=("in-server: $(grep -E '^test result' "${LOG_DIR}/pg.log" | paste -sd '|')")
else
    status=1
    summary+=("in-server: FAILED")
fi

# (marked #[ignore] so that `cargo pgrx test` above, which runs every test target, leaves them to this step)
log "server-level integration tests (cargo test --release --test integration -- --ignored)"
# Installs the extension into the system PostgreSQL first, so this step also works alone.
: >"${LOG_DIR}/integration.log"
if install_extension 2>&1 | tee "${LOG_DIR}/install.log" &&
    cargo test --release --test integration -- --ignored --test-threads=1 --nocapture 2>&1 | tee "${LOG_DIR}/integration.log"; then
    summary+=("integration: $(grep -E '^test result' "${LOG_DIR}/integration.log" | tail -1)")
else
    status=1
    summary+=("integration: FAILED")
fi

log "summary"
printf '%s\n' "${summary[@]}"
passed=$(grep -hoE 'test result: [A-Za-z]+\. [0-9]+ passed' "${LOG_DIR}/core.log" "${LOG_DIR}/pg.log" "${LOG_DIR}/integration.log" | grep -oE '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
failed=$(grep -hoE '[0-9]+ failed' "${LOG_DIR}/core.log" "${LOG_DIR}/pg.log" "${LOG_DIR}/integration.log" | awk '{s+=$1} END {print s+0}')
if [ "${status}" -ne 0 ] && [ "${failed}" -eq 0 ]; then failed=1; fi
echo "${passed} passed, ${failed} failed"
exit "${status}"
