#!/usr/bin/env bash
# End-to-end benchmark (issue #7): qhnsw with every quantizer, and pgvector's HNSW when
# the `vector` extension is installed on the server, on the same data, server and
# machine. Idempotent; run as root:
#
#   bash scripts/bench.sh                      # 100k x 768 synthetic, 1000 queries, m=16,
#                                              # ef_construction=64, ef_search 10..160,
#                                              # 1 and 2 clients; then the small
#                                              # shared_buffers run (~25 min on 2 cores)
#   bash scripts/bench.sh --quick              # 20k x 128, 200 queries (a few minutes)
#   bash scripts/bench.sh --large              # 1M x 384, sq8 vs pgvector, maintenance_work_mem
#                                              # 256MB then 4GB (scripts/lib-mem.sh; ~1 h)
#   bash scripts/bench.sh --large-free         # only the 4GB (unconstrained) half of --large
#   bash scripts/bench.sh --dims 1536 --rows 50000
#   bash scripts/bench.sh --npy DIR            # DIR/base.npy + DIR/queries.npy (e.g. the
#                                              # output of shared/data/debian_embeddings.py)
#   bash scripts/bench.sh --base b.fvecs --query-file q.fvecs --ground-truth gt.ivecs
#
# Script flags:
#   --skip-install        do not build/install the extension (use what is installed)
#   --quick               20k x 128 synthetic, 200 queries, no small shared_buffers run
#   --npy DIR             base.npy / queries.npy from DIR (name: DIR's name)
#   --name NAME           results folder name under results/ (default from the data)
#   --small-sb SIZE       shared_buffers of the second run (default 64MB: smaller than
#                         the indexes, which then no longer fit in PostgreSQL's cache)
#   --small-sb-cases L    cases of that run (default none,sq8,sq8-f16,pgv)
#   --no-small-sb         skip the small shared_buffers run
# Every other flag goes to the benchmark binary (see `--help` of
# benches/e2e/target/release/vq-e2e-bench): --rows --dims --queries --seed --metric
# --m --ef-construction --ef-search 10,20,40 --clients N --cases sq8,pgv,...
# --rerank-candidates N --bq-candidates N --warmup N.
#
# The benchmark cluster: ${VQ_HOME}/bench-pgdata on port 28817 (VQ_BENCH_PORT),
# shared_buffers 1GB, maintenance_work_mem 2GB. PG_MAJOR=18 bash scripts/bench.sh ...: the
# same on PostgreSQL 18 (bench-pgdata-18, port 28827; pgvector built for 18 from
# ../shared/vendor). Results: results/NAME/{results.md, results.json, *.svg}, and
# results/README.md gathers every results.md.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# --citus (first flag): 1 node vs a coordinator + 2 workers, see scripts/bench-citus.sh.
if [ "${1:-}" = "--citus" ]; then shift; exec bash "${REPO_DIR}/scripts/bench-citus.sh" "$@"; fi

BENCH_PORT="${VQ_BENCH_PORT:-28817}"
BENCH_PGDATA="${VQ_HOME}/bench-pgdata${PG_DATA_SUFFIX}"
RESULTS="${REPO_DIR}/results"
BIN="${REPO_DIR}/benches/e2e/target/release/vq-e2e-bench"

skip_install=0
small_sb="64MB"
small_sb_cases="none,sq8,sq8-f16,pgv"
name=""
pass=()
rows=100000
dims=768
data_args=()
while (($#)); do
    case "$1" in
    --skip-install) skip_install=1 ;;
    --quick) rows=20000 dims=128 pass+=(--queries 200) small_sb="" ;;
    --large-free) large_free_only=1 ;& # then as --large
    --large) large=1 rows=1000000 dims=384 small_sb="" pass+=(--queries 200 --cases sq8,pgv --ef-search 10,20,40,80 --repeat 1) ;;
    --npy) data_args=(--base "$2/base.npy" --query-file "$2/queries.npy"); [ -n "${name}" ] || name="$(basename "$2")"; shift ;;
    --name) name="$2"; shift ;;
    --small-sb) small_sb="$2"; shift ;;
    --small-sb-cases) small_sb_cases="$2"; shift ;;
    --no-small-sb) small_sb="" ;;
    --rows) rows="$2"; shift ;;
    --dims) dims="$2"; shift ;;
    --base) data_args+=(--base "$2"); shift ;;
    -h | --help) sed -n '2,37p' "$0"; exit 0 ;;
    *) pass+=("$1") ;;
    esac
    shift
done
if ((${#data_args[@]})); then
    pass=(--rows "${rows}" "${data_args[@]}" "${pass[@]}")
    [ -n "${name}" ] || name="files"
else
    pass=(--rows "${rows}" --dims "${dims}" "${pass[@]}")
    [ -n "${name}" ] || name="synthetic-${rows}x${dims}"
fi
pass+=(--name "${name}")

install_system_packages
if ((!skip_install)); then
    install_cargo_pgrx
    install_extension
fi

log "building the benchmark (benches/e2e)"
(cd "${REPO_DIR}" && cargo build --release --quiet --manifest-path benches/e2e/Cargo.toml)

start_cluster "${BENCH_PGDATA}" "${BENCH_PORT}" \
    "shared_buffers = 1GB" \
    "maintenance_work_mem = 2GB" \
    "max_wal_size = 8GB" \
    "checkpoint_timeout = 30min" \
    "max_connections = 50"

restart_with_shared_buffers() { # SIZE, or "" to go back to the cluster's own setting
    if [ -n "$1" ]; then
        psql_port "${BENCH_PORT}" -q -c "ALTER SYSTEM SET shared_buffers = '$1'"
    else
        psql_port "${BENCH_PORT}" -q -c "ALTER SYSTEM RESET shared_buffers"
    fi
    as_postgres "${PG_BIN}/pg_ctl" -D "${BENCH_PGDATA}" -l "${BENCH_PGDATA}/server.log" -w restart -m fast >/dev/null
}
# A previous interrupted small shared_buffers run may have left its setting behind.
if grep -q "^shared_buffers" "${BENCH_PGDATA}/postgresql.auto.conf" 2>/dev/null; then
    restart_with_shared_buffers ""
fi
if "${PG_BIN}/psql" -X -h /tmp -p "${BENCH_PORT}" -U postgres -Atc \
    "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'" | grep -q 1; then
    log "pgvector is installed: it is benchmarked too"
else
    log "pgvector was not found on this server: only qhnsw is benchmarked"
fi

conn="host=/tmp port=${BENCH_PORT} user=postgres"
if ((${large:-0})); then source "${REPO_DIR}/scripts/lib-mem.sh"; large_set_mwm "${LARGE_MWM}"; pass+=(--note "maintenance_work_mem = ${LARGE_MWM} (ALTER SYSTEM) for this run, overriding the 2GB below"); fi
if ((!${large_free_only:-0})); then
    log "benchmark ${name} (results/${name})"
    "${BIN}" --conn "${conn}" --out "${RESULTS}/${name}" \
        --note "setup: dedicated cluster, shared_buffers 1GB, maintenance_work_mem 2GB, other settings default; client on the same machine (Unix socket)" \
        "${pass[@]}"
fi
if ((${large:-0})); then large_unconstrained_run; fi

if [ -n "${small_sb}" ]; then
    log "benchmark ${name} with shared_buffers = ${small_sb} (results/${name}-small-shared-buffers)"
    trap 'restart_with_shared_buffers ""' EXIT
    restart_with_shared_buffers "${small_sb}"
    "${BIN}" --conn "${conn}" --out "${RESULTS}/${name}-small-shared-buffers" \
        --title "${name} with shared_buffers = ${small_sb} (smaller than the indexes)" \
        --note "server restarted with shared_buffers = ${small_sb}: the indexes no longer fit in PostgreSQL's buffer cache (the OS page cache still holds them: this measures buffer replacement, not disk reads)" \
        "${pass[@]}" --cases "${small_sb_cases}"
    restart_with_shared_buffers ""
    trap - EXIT
fi

# results/README.md: every run's table, newest layout.
{
    echo "# Benchmark results"
    echo
    echo "Made by \`bash scripts/bench.sh\` (see the README's Performance section). One folder per run:"
    echo "results.md (tables), results.json (all numbers), recall_qps.svg, recall_qps_clients.svg,"
    echo "index_size.svg, build_time.svg."
    for f in "${RESULTS}"/*/results.md; do
        [ -f "$f" ] || continue
        d="$(basename "$(dirname "$f")")"
        [ "$d" = tmp ] && continue
        echo
        sed 's/^## /## /' "$f"
        echo
        echo "Plots: [recall vs QPS](${d}/recall_qps.svg), [with clients](${d}/recall_qps_clients.svg), [index size](${d}/index_size.svg), [build time](${d}/build_time.svg)"
    done
} >"${RESULTS}/README.md"
log "done: results/README.md"
