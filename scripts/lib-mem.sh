#!/usr/bin/env bash
# `bash scripts/bench.sh --large` (issue 15): 1M x 384 synthetic embeddings, qhnsw sq8 and
# pgvector hnsw on the same server, first with maintenance_work_mem = 256MB (qhnsw builds
# memory-bounded: codes in memory, the rest inserted on pages; pgvector flushes its graph
# and inserts the rest on disk), then unconstrained (4GB). Sourced by bench.sh, which
# defines BENCH_PORT, BENCH_PGDATA, BIN, RESULTS, conn, name and pass.

LARGE_MWM="${VQ_LARGE_MWM:-256MB}"
LARGE_FREE_MWM="${VQ_LARGE_FREE_MWM:-4GB}"

# Sets the benchmark cluster's maintenance_work_mem (ALTER SYSTEM + reload); "" resets it.
large_set_mwm() {
    if [ -n "$1" ]; then
        psql_port "${BENCH_PORT}" -q -c "ALTER SYSTEM SET maintenance_work_mem = '$1'"
    else
        psql_port "${BENCH_PORT}" -q -c "ALTER SYSTEM RESET maintenance_work_mem"
    fi
    psql_port "${BENCH_PORT}" -q -c "SELECT pg_reload_conf()" >/dev/null
}

# The second run of --large: the same cases with maintenance_work_mem = LARGE_FREE_MWM.
large_unconstrained_run() {
    log "benchmark ${name} with maintenance_work_mem = ${LARGE_FREE_MWM} (results/${name}-unconstrained)"
    large_set_mwm "${LARGE_FREE_MWM}"
    local args=() i
    for ((i = 0; i < ${#pass[@]}; i++)); do # drop the first run's maintenance_work_mem note
        if [ "${pass[i]}" = --note ] && [[ "${pass[i + 1]:-}" == maintenance_work_mem* ]]; then
            i=$((i + 1))
            continue
        fi
        args+=("${pass[i]}")
    done
    "${BIN}" --conn "${conn}" --out "${RESULTS}/${name}-unconstrained" \
        --title "${name} with maintenance_work_mem = ${LARGE_FREE_MWM} (unconstrained builds)" \
        --note "setup: dedicated cluster, shared_buffers 1GB, maintenance_work_mem ${LARGE_FREE_MWM} (ALTER SYSTEM), other settings default; client on the same machine (Unix socket)" \
        "${args[@]}"
    large_set_mwm ""
}
