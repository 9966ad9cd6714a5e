#!/usr/bin/env bash
# Citus benchmark (issue 17), run as `bash scripts/bench.sh --citus [flags]` (as root):
# the same rows and qhnsw index (sq8, m 16, ef_construction 64) on one node and on a
# coordinator + 2 workers on this machine (four clusters, Unix sockets). Measures
# recall@10 against exact search (computed on the single node), QPS and mean latency
# with 1 and 4 clients (pgbench -T) for k-NN queries sent as literals (simple protocol:
# parsed and planned every time) and as prepared statements, and where the coordinator's
# time goes (literal parsing, planning, Citus's connections to the workers). "prepared,
# same vectors" re-executes 100 statements prepared with their vector inline (Citus then
# reuses each shard's query text); "$1 parameter" sends a new vector each time, as a driver
# does (plus a primary-key lookup of that vector on the node queried).
#
#   bash scripts/bench.sh --citus                  # synthetic 50k x 768, 8 and 2 shards
#   bash scripts/bench.sh --citus --rows 1000000 --dims 384   # the 1M set of bench.sh --large
# Synthetic rows come from the project's generator (src/datagen.rs, seed 42, written to
# .npy by benches/e2e --dump-npy), so they are the same rows bench.sh measures.
#   bash scripts/bench.sh --citus --npy DIR        # DIR/base.npy + DIR/queries.npy (numpy),
#                                                  # e.g. shared/data/debian_embeddings.py's
# Flags: --rows N (synthetic rows, or most rows of --npy) --dims D --queries Q (100)
#   --shards 8,2 --duration S (pgbench seconds per run, 10) --clients 1,4 --name NAME
#   --skip-install (use the installed extension and Citus)
# Clusters under ${VQ_HOME}/citus-bench (recreated every run), ports 28830-28833
# (VQ_CITUS_BENCH_PORT). Results: results/citus-NAME/results.md. PostgreSQL binaries:
# VQ_PG_BIN (default Debian's 15), which must have Citus (install_citus builds it).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PG_BIN="${VQ_PG_BIN:-${PG_BIN}}"
PG_CONFIG="${PG_BIN}/pg_config"
PORT0="${VQ_CITUS_BENCH_PORT:-28830}"
ROOT="${VQ_HOME}/citus-bench"
rows=50000 dims=768 queries=100 shards="8,2" duration=10 clients="1,4" name="" npy="" skip_install=0
while (($#)); do
    case "$1" in
    --rows) rows="$2"; shift ;;
    --dims) dims="$2"; shift ;;
    --queries) queries="$2"; shift ;;
    --shards) shards="$2"; shift ;;
    --duration) duration="$2"; shift ;;
    --clients) clients="$2"; shift ;;
    --name) name="$2"; shift ;;
    --npy) npy="$2"; shift ;;
    --skip-install) skip_install=1 ;;
    -h | --help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "unknown flag $1" >&2; exit 2 ;;
    esac
    shift
done
[ -n "${name}" ] || name=$([ -n "${npy}" ] && basename "${npy}" || echo "synthetic-${rows}x${dims}")
OUT="${REPO_DIR}/results/citus-${name}"
mkdir -p "${OUT}" "${VQ_HOME}"
if ((!skip_install)); then
    install_citus
    install_extension
fi
[ -f "$("${PG_CONFIG}" --pkglibdir)/citus.so" ] || { echo "Citus is not installed in ${PG_BIN}: no benchmark" >&2; exit 1; }

# Four clusters: single (PORT0), coordinator (PORT0+1), workers (PORT0+2, PORT0+3).
for n in single coord w1 w2; do
    [ -f "${ROOT}/${n}/postmaster.pid" ] && as_postgres "${PG_BIN}/pg_ctl" -D "${ROOT}/${n}" -m fast -w stop >/dev/null 2>&1 || true
done
rm -rf "${ROOT}"
mkdir -p "${ROOT}/work"
chown -R postgres:postgres "${ROOT}"
i=0
for n in single coord w1 w2; do
    port=$((PORT0 + i)); i=$((i + 1))
    as_postgres "${PG_BIN}/initdb" -D "${ROOT}/${n}" -A trust -U postgres --no-sync >/dev/null
    cat >>"${ROOT}/${n}/postgresql.conf" <<EOC
port = ${port}
listen_addresses = ''
unix_socket_directories = '${ROOT}'
shared_preload_libraries = 'citus'
max_connections = 200
max_prepared_transactions = 100
shared_buffers = 512MB
maintenance_work_mem = 1GB
fsync = off
synchronous_commit = off
autovacuum = off
EOC
    [ "${n}" = single ] && sed -i "s/^shared_preload_libraries = 'citus'$/shared_preload_libraries = ''/" "${ROOT}/${n}/postgresql.conf"
    as_postgres "${PG_BIN}/pg_ctl" -D "${ROOT}/${n}" -l "${ROOT}/${n}.log" -w start >/dev/null
done
q() { local port="$1"; shift; "${PG_BIN}/psql" -X -q -v ON_ERROR_STOP=1 -h "${ROOT}" -p "${port}" -U postgres -d postgres "$@"; }
SINGLE=${PORT0} COORD=$((PORT0 + 1))
for p in $((PORT0 + 2)) $((PORT0 + 3)) ${COORD}; do q "${p}" -c "CREATE EXTENSION citus"; done
q "${COORD}" -c "SELECT citus_set_coordinator_host('${ROOT}', ${COORD})" \
    -c "SELECT citus_add_node('${ROOT}', $((PORT0 + 2)))" -c "SELECT citus_add_node('${ROOT}', $((PORT0 + 3)))" >/dev/null
q "${COORD}" -c "CREATE EXTENSION vectorize_quant"
q "${SINGLE}" -c "CREATE EXTENSION vectorize_quant"
W="${ROOT}/work"

log "data: ${name}"
t=$(date +%s)
if [ -z "${npy}" ]; then
    # The project's seeded generator (datagen.rs, shaped like sentence embeddings): the
    # same rows as `bash scripts/bench.sh --rows N --dims D` (seed 42).
    (cd "${REPO_DIR}" && cargo build --release --quiet --manifest-path benches/e2e/Cargo.toml)
    npy="${W}/synthetic"
    "${REPO_DIR}/benches/e2e/target/release/vq-e2e-bench" --dump-npy "${npy}" \
        --rows "${rows}" --dims "${dims}" --queries "${queries}" --seed 42 >/dev/null
fi
python3 - "${npy}" "${W}" "${rows}" "${queries}" <<'EOP'
import sys, numpy as np
src, out, rows, nq = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
for fn, tsv, n in (("base.npy", "base.tsv", rows), ("queries.npy", "queries.tsv", nq)):
    a = np.load(f"{src}/{fn}", mmap_mode="r")[:n].astype(np.float32)
    with open(f"{out}/{tsv}", "w") as f:
        # repr of the float64 value of each float32 reads back as the same float32.
        for i, row in enumerate(a, 1):
            f.write(f"{i}\t[{','.join(map(repr, row.tolist()))}]\n")
EOP
dims=$(head -1 "${W}/base.tsv" | cut -f2 | tr -cd ',' | wc -c); dims=$((dims + 1))
q "${SINGLE}" -c "CREATE TABLE items (id bigint PRIMARY KEY, v qvector(${dims}))" \
    -c "CREATE TABLE bench_queries (qid int PRIMARY KEY, v qvector(${dims}))" \
    -c "\\copy items FROM '${W}/base.tsv'" -c "\\copy bench_queries FROM '${W}/queries.tsv'"
rows=$(wc -l <"${W}/base.tsv") queries=$(wc -l <"${W}/queries.tsv")
log "exact top-10 of ${queries} queries over ${rows} rows (single node, sequential scans)"
q "${SINGLE}" -c "CREATE TABLE truth AS SELECT qid, (SELECT array_agg(id) FROM (SELECT id FROM items ORDER BY (v <-> q.v) + 0 LIMIT 10) s) AS ids FROM bench_queries q" \
    -c "\\copy truth TO '${W}/truth.tsv'"
q "${COORD}" -c "CREATE TABLE bench_queries (qid int PRIMARY KEY, v qvector(${dims}))" -c "CREATE TABLE truth (qid int, ids bigint[])" \
    -c "\\copy bench_queries FROM '${W}/queries.tsv'" -c "\\copy truth FROM '${W}/truth.tsv'"
echo "  data and truth: $(($(date +%s) - t)) s"
# pgbench scripts: one literal query each (at most 100), a literal-parse-only probe, and
# a fresh vector as a $1 parameter each time (what drivers send: looked up by \gset from
# the local bench_queries table, then passed as a parameter under -M prepared).
nscripts=$((queries < 100 ? queries : 100))
head -"${nscripts}" "${W}/queries.tsv" | while IFS=$'\t' read -r qid v; do
    echo "SELECT id FROM items ORDER BY v <-> '${v}' LIMIT 10;" >"${W}/q${qid}.sql"
    echo "SELECT '${v}'::qvector IS NULL;" >"${W}/lit${qid}.sql"
done
printf '%s\n' "\\set qid random(1, ${queries})" 'SELECT v::text AS qv FROM bench_queries WHERE qid = :qid \gset' \
    'SELECT id FROM items ORDER BY v <-> :qv::qvector LIMIT 10;' >"${W}/param.sql"
chown -R postgres:postgres "${W}"
fargs() { for f in "${W}"/"$1"*.sql; do printf -- '-f %s ' "${f}"; done; }

# recall PORT EF [citus]: recall@10 of the index at qhnsw.ef_search = EF.
recall() {
    local prop=""
    [ -n "${3:-}" ] && prop="SET LOCAL citus.propagate_set_commands = 'local';"
    q "$1" -At <<EOS
BEGIN; ${prop} SET LOCAL qhnsw.ef_search = $2;
DO \$\$DECLARE r record; got bigint[]; hits bigint := 0; total bigint := 0;
BEGIN
  FOR r IN SELECT b.v, t.ids FROM bench_queries b JOIN truth t USING (qid) LOOP
    EXECUTE 'SELECT array_agg(id) FROM (SELECT id FROM items ORDER BY v <-> \$1 LIMIT 10) s' INTO got USING r.v;
    hits := hits + (SELECT count(*) FROM unnest(got) g WHERE g = ANY (r.ids));
    total := total + 10;
  END LOOP;
  RAISE NOTICE 'recall %', round(hits::numeric / total, 4);
END\$\$;
COMMIT;
EOS
}
# qps PORT CLIENTS MODE PREFIX [PGOPTIONS]: "tps latency_ms" of pgbench over the scripts.
qps() {
    PGOPTIONS="${5:-}" "${PG_BIN}/pgbench" -n -h "${ROOT}" -p "$1" -U postgres -c "$2" -j "$2" -T "${duration}" \
        -M "$3" $(fargs "$4") postgres 2>/dev/null |
        awk '/^tps/ {tps=$3} /^latency average/ {lat=$4} END {printf "%.1f %.2f", tps, lat}'
}
# plan_times PORT: mean planning and execution time (ms) of EXPLAIN ANALYZE over the scripts.
plan_times() {
    for f in "${W}"/q*.sql; do echo "EXPLAIN (ANALYZE, COSTS OFF) $(cat "${f}")"; done |
        q "$1" -At 2>&1 | awk '/Planning Time/ {p+=$3; n++} /Execution Time/ {e+=$3} END {printf "%.2f %.2f", p/n, e/n}'
}

# sessions_per_query [PGOPTIONS]: sets spq to the worker backends started per literal query.
SESSION_RUN=200
sessions() {
    local p total=0
    for p in $((PORT0 + 2)) $((PORT0 + 3)); do
        total=$((total + $(q "${p}" -At -c "SELECT sessions FROM pg_stat_database WHERE datname = 'postgres'")))
    done
    echo "${total}"
}
sessions_per_query() {
    local before after
    sleep 1; before=$(sessions)
    PGOPTIONS="${1:-}" "${PG_BIN}/pgbench" -n -h "${ROOT}" -p "${COORD}" -U postgres -c 1 -t "${SESSION_RUN}" \
        -M simple $(fargs q) postgres >/dev/null 2>&1
    sleep 1; after=$(sessions)
    # Each sessions() call itself opens one session per worker.
    spq=$(awk -v d=$((after - before - 2)) -v n="${SESSION_RUN}" 'BEGIN {printf "%.2f", d / n}')
}
conn_rows=()

MD="${OUT}/results.md"
{
    echo "# Citus: 1 node vs coordinator + 2 workers (${name})"
    echo
    echo "${rows} rows x ${dims} dims, ${queries} queries, qhnsw sq8 (m 16, ef_construction 64),"
    echo "pgbench ${duration} s per cell; all four clusters on this machine ($(nproc) cores,"
    echo "shared with other work: ratios matter more than absolute figures). $(date -u +%F)."
    echo
    echo "| setup | build s | recall@10 ef 20 / 40 / 100 | literal QPS (lat ms) | prepared, same vectors, QPS (lat ms) | \$1 parameter QPS (lat ms) | plan ms | exec ms |"
    echo "|---|---|---|---|---|---|---|---|"
} >"${MD}"
# measure LABEL PORT [citus]: one table row per client count.
measure() {
    local label="$1" port="$2" cit="${3:-}" rec="" c
    for ef in 20 40 100; do rec+="$(recall "${port}" "${ef}" "${cit}" 2>&1 | sed -n 's/.*recall //p') / "; done
    read -r pt et <<<"$(plan_times "${port}")"
    for c in ${clients//,/ }; do
        read -r lt ll <<<"$(qps "${port}" "${c}" simple q)"
        read -r pq pl <<<"$(qps "${port}" "${c}" prepared q)"
        read -r pp ppl <<<"$(qps "${port}" "${c}" prepared param)"
        echo "| ${label}, ${c} client(s) | ${build} | ${rec% / } | ${lt} (${ll}) | ${pq} (${pl}) | ${pp} (${ppl}) | ${pt} | ${et} |" | tee -a "${MD}"
    done
}
INDEX="CREATE INDEX items_v_idx ON items USING qhnsw (v qvector_l2_ops) WITH (quantizer = 'sq8', m = 16, ef_construction = 64)"

log "single node"
t=$(date +%s); q "${SINGLE}" -c "${INDEX}" -c "VACUUM ANALYZE items"; build=$(($(date +%s) - t))
measure "1 node" "${SINGLE}"
read -r parse_tps _ <<<"$(qps "${SINGLE}" 1 simple lit)"

for s in ${shards//,/ }; do
    log "Citus, ${s} shards"
    q "${COORD}" -c "DROP TABLE IF EXISTS items" -c "CREATE TABLE items (id bigint PRIMARY KEY, v qvector(${dims}))" \
        -c "SELECT create_distributed_table('items', 'id', shard_count => ${s})" >/dev/null
    t=$(date +%s); q "${COORD}" -c "\\copy items FROM '${W}/base.tsv'"; echo "  load: $(($(date +%s) - t)) s"
    t=$(date +%s); q "${COORD}" -c "${INDEX}" -c "VACUUM ANALYZE items"; build=$(($(date +%s) - t))
    measure "Citus ${s} shards" "${COORD}" citus
    # The coordinator's connections: Citus keeps 1 per worker between transactions and opens
    # one per shard task in parallel; with a pool of 1 it runs a worker's tasks in turn.
    for opt in "" "citus.max_cached_conns_per_worker=${s}" "citus.max_adaptive_executor_pool_size=1"; do
        popt=""; [ -n "${opt}" ] && popt="-c ${opt}"
        read -r lt ll <<<"$(qps "${COORD}" 1 simple q "${popt}")"
        read -r pq pl <<<"$(qps "${COORD}" 1 prepared q "${popt}")"
        sessions_per_query "${popt}"
        conn_rows+=("| ${s} | ${opt:-defaults} | ${lt} (${ll}) | ${pq} (${pl}) | ${spq} |")
        echo "${conn_rows[-1]}"
    done
done
{
    echo
    echo "Coordinator connections (1 client): new worker backends per query counted with"
    echo "\`pg_stat_database.sessions\` on the workers over ${SESSION_RUN} literal queries."
    echo
    echo "| shards | setting | literal QPS (lat ms) | prepared QPS (lat ms) | worker sessions / query |"
    echo "|---|---|---|---|---|"
    printf '%s\n' "${conn_rows[@]}"
} >>"${MD}"
{
    echo
    echo "Parsing a ${dims}-d literal alone (\`SELECT '<literal>'::qvector IS NULL\`, 1 client, 1 node): ${parse_tps} QPS."
} >>"${MD}"
log "results: ${MD}"
cat "${MD}"
for n in single coord w1 w2; do as_postgres "${PG_BIN}/pg_ctl" -D "${ROOT}/${n}" -m fast -w stop >/dev/null || true; done
