#!/usr/bin/env bash
# Shared set-up steps for scripts/setup.sh and scripts/test.sh. Every step is
# idempotent: it checks what is already there and only does what is missing.
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# 15 (Debian's packages) or 18 (a PyPI wheel: scripts/lib-pg18.sh); the test command runs both.
PG_MAJOR="${PG_MAJOR:-15}"
PG_BIN="/usr/lib/postgresql/${PG_MAJOR}/bin"
PG_CONFIG="${PG_BIN}/pg_config"
PGRX_VERSION=0.18.1
VQ_HOME="${VQ_HOME:-/var/lib/vectorize_quant}"
DEMO_PGDATA="${VQ_HOME}/demo-pgdata"
DEMO_PORT="${VQ_DEMO_PORT:-28815}"
export PATH="${HOME}/.cargo/bin:${PATH}"
export DEBIAN_FRONTEND=noninteractive

log() { printf '\n==> %s\n' "$*"; }

# PostgreSQL 18: PG18_* paths, install_pg18, pgrx_register; with PG_MAJOR=18 it points
# PG_BIN, PG_CONFIG and the demo cluster at 18.
source "${REPO_DIR}/scripts/lib-pg18.sh"

# Installs PostgreSQL 15 (server and headers), libclang and sudo from Debian.
install_system_packages() {
    local wanted=(postgresql-15 postgresql-server-dev-15 libclang-dev clang sudo python3)
    local missing=()
    for p in "${wanted[@]}"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    if ((${#missing[@]})); then
        log "installing ${missing[*]}"
        apt-get update -qq
        apt-get install -y -qq "${missing[@]}" </dev/null
    fi
    # Debian's package may start its own cluster on 5432; we use our own clusters and ports.
}

# Installs cargo-pgrx at the pinned version and registers PostgreSQL 15 with it
# (18: install_pg18 in scripts/lib-pg18.sh).
install_cargo_pgrx() {
    if ! cargo pgrx --version 2>/dev/null | grep -q "${PGRX_VERSION}"; then
        log "installing cargo-pgrx ${PGRX_VERSION} (about 6 minutes)"
        cargo install cargo-pgrx --version "${PGRX_VERSION}" --locked
    fi
    pgrx_register 15 /usr/lib/postgresql/15/bin/pg_config
}

# Builds the extension in release mode and installs it into PostgreSQL ${PG_MAJOR}'s directories.
install_extension() {
    if [ "${PG_MAJOR}" = 18 ]; then install_pg18; fi
    log "building and installing the extension"
    (cd "${REPO_DIR}" && cargo pgrx install --release --pg-config "${PG_CONFIG}")
    install_pgvector_companion
}

# Runs a command as the postgres user (initdb refuses root).
as_postgres() {
    sudo -u postgres -H "$@"
}

# Creates (if needed) and starts (if stopped) a cluster owned by postgres: DIR PORT [extra postgresql.conf lines].
start_cluster() {
    local dir="$1" port="$2"
    shift 2
    mkdir -p "$(dirname "${dir}")"
    chown postgres:postgres "$(dirname "${dir}")"
    if [ ! -f "${dir}/PG_VERSION" ]; then
        log "initdb ${dir}"
        as_postgres "${PG_BIN}/initdb" -D "${dir}" -A trust -U postgres >/dev/null
        {
            echo "port = ${port}"
            echo "listen_addresses = '127.0.0.1'"
            echo "unix_socket_directories = '/tmp'"
            for line in "$@"; do echo "${line}"; done
        } >>"${dir}/postgresql.conf"
    fi
    if ! as_postgres "${PG_BIN}/pg_ctl" -D "${dir}" status >/dev/null 2>&1; then
        as_postgres "${PG_BIN}/pg_ctl" -D "${dir}" -l "${dir}/server.log" -w start >/dev/null
    fi
}

# psql against a local cluster on PORT as postgres.
psql_port() {
    local port="$1"
    shift
    "${PG_BIN}/psql" -X -v ON_ERROR_STOP=1 -h /tmp -p "${port}" -U postgres "$@"
}

# Builds `vq` (vq/, its own crate and target dir) and (re)starts `vq serve` against the
# demo cluster as the non-superuser role vq_demo (owner of the demo table, so re-quantizing
# works), with a token kept in ${VQ_HOME}/vq.token. Prints the dashboard URL.
start_vq_dashboard() {
    local listen="${VQ_LISTEN:-127.0.0.1:8686}" pidfile="${VQ_HOME}/vq.pid" tokenfile="${VQ_HOME}/vq.token"
    log "building vq (REST, MCP and dashboard)"
    (cd "${REPO_DIR}/vq" && env -u CARGO_TARGET_DIR cargo build --release)
    psql_port "${DEMO_PORT}" -q -c "DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'vq_demo') THEN CREATE ROLE vq_demo LOGIN; END IF; END\$\$" \
        -c "ALTER TABLE items OWNER TO vq_demo" -c "GRANT SELECT ON items_sq8 TO vq_demo"
    [ -s "${tokenfile}" ] || (umask 077 && head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"${tokenfile}")
    if [ -s "${pidfile}" ] && kill -0 "$(cat "${pidfile}")" 2>/dev/null; then
        kill "$(cat "${pidfile}")" && sleep 1
    fi
    VQ_TOKEN="$(cat "${tokenfile}")" nohup setsid "${REPO_DIR}/vq/target/release/vq" serve \
        --database-url "host=127.0.0.1 port=${DEMO_PORT} user=vq_demo dbname=postgres" \
        --listen "${listen}" >"${VQ_HOME}/vq.log" 2>&1 </dev/null &
    echo $! >"${pidfile}"
    for _ in $(seq 50); do
        curl -fsS "http://${listen}/healthz" >/dev/null 2>&1 && break
        sleep 0.2
    done
    log "dashboard: http://${listen}/  (REST API: http://${listen}/openapi.json; write token in ${tokenfile}; log ${VQ_HOME}/vq.log)"
}

# pgvector support (README "Migrating from pgvector"): the companion extension
# vectorize_quant_pgvector (pgvector/: control file + SQL script, no library of its own)
# goes into the extension directory of the PostgreSQL whose pg_config is $1 (default
# PG_CONFIG). It is only usable where pgvector is installed too (its control `requires` it).
install_pgvector_companion() {
    local pg_config="${1:-${PG_CONFIG}}" dir
    dir="$("${pg_config}" --sharedir)/extension"
    install -m 644 "${REPO_DIR}/pgvector/vectorize_quant_pgvector.control" \
        "${REPO_DIR}/pgvector/"vectorize_quant_pgvector--*.sql "${dir}/"
}

# Builds and installs pgvector from ../shared/vendor (build-pgvector.sh, idempotent) into
# the PostgreSQL whose pg_config is $1 (default PG_CONFIG), then the companion extension.
# Without the vendored source it says so loudly and carries on: the pgvector tests then
# print their own SKIPPED message.
install_pgvector() {
    local pg_config="${1:-${PG_CONFIG}}"
    local vendor="${VQ_VENDOR_DIR:-${REPO_DIR}/../shared/vendor}"
    if [ ! -f "${vendor}/build-pgvector.sh" ]; then
        log "!!!!! pgvector NOT INSTALLED: ${vendor}/build-pgvector.sh is absent (set VQ_VENDOR_DIR); the qhnsw-on-vector tests (tests/pgvector.rs) will be SKIPPED !!!!!"
        return 0
    fi
    log "installing pgvector (${vendor}/build-pgvector.sh, PG_CONFIG=${pg_config})"
    PG_CONFIG="${pg_config}" bash "${vendor}/build-pgvector.sh"
    install_pgvector_companion "${pg_config}"
}

# Builds and installs Citus into PostgreSQL 15 (VQ_PG_CONFIG, else ${PG_CONFIG}) from
# ../shared/vendor beside the repository (VQ_VENDOR_DIR to override) when that folder is
# there: idempotent, about 10 minutes the first time. Without it, or if the build fails,
# says so loudly and returns 0: tests/citus.rs then prints that it was SKIPPED.
install_citus() {
    local vendor="${VQ_VENDOR_DIR:-${REPO_DIR}/../shared/vendor}"
    local pgc="${VQ_PG_CONFIG:-${PG_CONFIG}}"
    if [ ! -f "${vendor}/build-citus.sh" ]; then
        log "WARNING: ${vendor}/build-citus.sh not found: Citus is NOT installed, the Citus test (tests/citus.rs) will be SKIPPED"
        return 0
    fi
    log "installing Citus from ${vendor} into $("${pgc}" --bindir) (idempotent; about 10 minutes the first time)"
    PG_CONFIG="${pgc}" bash "${vendor}/build-citus.sh" ||
        log "WARNING: building Citus failed: the Citus test (tests/citus.rs) will be SKIPPED"
}

# A private PostgreSQL build (e.g. a relocated copy per developer): VQ_PG_BIN / VQ_PG_CONFIG
# override the system paths above for every script that sources this file.
PG_BIN="${VQ_PG_BIN:-${PG_BIN}}"
PG_CONFIG="${VQ_PG_CONFIG:-${PG_CONFIG}}"
