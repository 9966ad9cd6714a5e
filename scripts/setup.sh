#!/usr/bin/env bash
# README command (1): install everything, build and install the extension, start a
# local PostgreSQL 15 cluster owned by `postgres`, and run the demo. Idempotent.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

install_system_packages
install_cargo_pgrx
install_extension
# Preloading makes the per-index scan counters (qhnsw_stat_indexes) shared by all backends.
start_cluster "${DEMO_PGDATA}" "${DEMO_PORT}" "shared_preload_libraries = 'vectorize_quant'"
log "demo on port ${DEMO_PORT} (psql -h /tmp -p ${DEMO_PORT} -U postgres)"
psql_port "${DEMO_PORT}" -f "${REPO_DIR}/sql/demo.sql"
start_vq_dashboard
