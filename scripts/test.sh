#!/usr/bin/env bash
# README command (2): run every test. Installs whatever is missing first. Idempotent.
#   0. lint: `cargo fmt --check` and `cargo clippy --all-targets -D warnings`
#   1. plain `cargo test` of the Postgres-free core (kernels, quantizers, graph, formats)
#   2. `cargo pgrx test`: in-server tests of the types and the index on a throwaway cluster,
#      on PostgreSQL 15 and again on 18 (the PyPI wheel, scripts/lib-pg18.sh)
#   3. server-level tests (tests/*.rs): their own throwaway clusters for DELETE + VACUUM,
#      kill -9 crash loops, a streaming replica, concurrent clients, cancelled builds, a
#      dump from 15 restored into 18 (tests/upgrade.rs); integration and build again on 18
#   4. the vq service: REST, MCP (official Python SDK) and the dashboard in headless Chromium
# Every step prints its wall time; the last line is "N passed, N failed".
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

t0=$(date +%s)
install_system_packages
install_cargo_pgrx
log "set-up done in $(($(date +%s) - t0)) s"

cd "${REPO_DIR}"
LOG_DIR="$(mktemp -d)"
summary=()
status=0

# step NAME LOG COMMAND...: runs a step, records its summary line and wall time.
step() {
    local name="$1" logf="$2"
    shift 2
    local start
    start=$(date +%s)
    log "${name}"
    if "$@" 2>&1 | tee "${logf}"; then
        summary+=("${name}: $(grep -E '^test result' "${logf}" | paste -sd '|') ($(($(date +%s) - start)) s)")
    else
        status=1
        summary+=("${name}: FAILED ($(($(date +%s) - start)) s)")
    fi
}

# Formatting and lints of every target, in-server tests included.
lint() {
    cargo fmt --all -- --check && cargo clippy --all-targets --features "pg15 pg_test" -- -D warnings
}
step "lint (cargo fmt --check, cargo clippy -D warnings)" "${LOG_DIR}/lint.log" lint

step "core unit tests (cargo test --release --lib)" "${LOG_DIR}/core.log" \
    cargo test --release --lib

TEST_PGDATA="${VQ_HOME}/test-pgdata"
mkdir -p "${VQ_HOME}"
chown postgres:postgres "${VQ_HOME}"
rm -rf "${TEST_PGDATA}"
step "in-server tests (cargo pgrx test pg${PG_MAJOR})" "${LOG_DIR}/pg.log" \
    cargo pgrx test "pg${PG_MAJOR}" --release --runas postgres --pgdata "${TEST_PGDATA}"

# PostgreSQL 18 (issue 18): the same in-server suite, then the extension installed into 18
# for tests/upgrade.rs (a dump from 15 restored into 18) among the server-level tests.
install_pg18
TEST_PGDATA18="${VQ_HOME}/test-pgdata-18"
rm -rf "${TEST_PGDATA18}"
step "in-server tests (cargo pgrx test pg18)" "${LOG_DIR}/pg18.log" \
    cargo pgrx test pg18 --release --runas postgres --pgdata "${TEST_PGDATA18}"
step "install into PostgreSQL 18 (cargo pgrx install)" "${LOG_DIR}/install18.log" \
    cargo pgrx install --release --pg-config "${PG18_CONFIG}"
export VQ_PG18_BIN="${PG18_BIN}" VQ_REQUIRE_PG18=1

# Marked #[ignore] so that `cargo pgrx test` above, which runs every test target, leaves
# them to this step. Installs the extension into the system PostgreSQL first.
server_tests() {
    install_extension && cargo test --release --test '*' -- --ignored --test-threads=1 --nocapture
}
install_pgvector || log "!!!!! pgvector install FAILED: tests/pgvector.rs will be SKIPPED"  # pgvector + vectorize_quant_pgvector for tests/pgvector.rs (loud message when absent)
install_citus  # for tests/citus.rs (coordinator + 2 workers); skipped loudly without ../shared/vendor
step "server-level tests (cargo test --release --test '*' -- --ignored)" "${LOG_DIR}/integration.log" server_tests
if grep -q 'SKIPPED: Citus' "${LOG_DIR}/integration.log" 2>/dev/null; then
    summary+=("tests/citus.rs: SKIPPED (Citus not installed; counted as passed by cargo)")
fi

# The core server-level tests again on PostgreSQL 18 (tests/common takes the binaries from
# VQ_PG_BIN); the clients are the test binaries built above, so this costs no build.
step "server-level tests on PostgreSQL 18 (integration, build)" "${LOG_DIR}/integration18.log" \
    env VQ_PG_BIN="${PG18_BIN}" cargo test --release --test integration --test build -- --ignored --test-threads=1 --nocapture

# The vq service (REST, MCP, dashboard): needs the extension installed by the step above.
step "vq service tests (scripts/test-vq.sh)" "${LOG_DIR}/vq.log" bash "${REPO_DIR}/scripts/test-vq.sh"

log "summary (total $(($(date +%s) - t0)) s)"
printf '%s\n' "${summary[@]}"
logs=("${LOG_DIR}"/core.log "${LOG_DIR}"/pg.log "${LOG_DIR}"/pg18.log "${LOG_DIR}"/integration.log "${LOG_DIR}"/integration18.log "${LOG_DIR}"/vq.log)
passed=$(grep -hoE 'test result: [A-Za-z]+\. [0-9]+ passed' "${logs[@]}" | grep -oE '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
failed=$(grep -hoE 'test result: [A-Za-z]+\. [0-9]+ passed; [0-9]+ failed' "${logs[@]}" | grep -oE '[0-9]+ failed' | awk '{s+=$1} END {print s+0}')
if [ "${status}" -ne 0 ] && [ "${failed}" -eq 0 ]; then failed=1; fi
echo "${passed} passed, ${failed} failed"
exit "${status}"
