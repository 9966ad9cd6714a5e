#!/bin/bash
# Runs pgvector's own type regression files (vector_type, cast, btree, copy) on pgvector and,
# translated to qvector, on vectorize_quant, and prints every statement whose output differs.
# Sections on halfvec, sparsevec and bit (types we do not have) are skipped. The remaining
# differences must be the ones README "Type differences from pgvector" lists.
#
# Needs a PostgreSQL 15 with both extensions installed (pgvector: scripts/common.sh
# install_pgvector, run here for the PostgreSQL of VQ_PG_BIN; ours: cargo pgrx install) and
# root (the cluster runs as postgres). Usage: VQ_PG_BIN=/path/to/bin scripts/pgvector_parity.sh [pgvector.tar.gz]
set -euo pipefail
unset RUST_BACKTRACE
BIN=${VQ_PG_BIN:-/usr/lib/postgresql/15/bin}
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
install_pgvector "$BIN/pg_config"
TARBALL=${1:-$(ls /work/shared/vendor/pgvector-*.tar.gz | sort -V | tail -1)}
WORK=$(mktemp -d /tmp/vq-parity.XXXXXX)
chown postgres "$WORK"
tar -xzf "$TARBALL" -C "$WORK"
TESTS=$(ls -d "$WORK"/pgvector-*/test/sql)
su postgres -c "$BIN/initdb -D $WORK/pgdata -A trust" >"$WORK/initdb.log" 2>&1
su postgres -c "$BIN/pg_ctl -D $WORK/pgdata -o \"-c listen_addresses='' -c unix_socket_directories=$WORK -c port=5999\" -l $WORK/server.log start -w" >/dev/null
trap 'su postgres -c "$BIN/pg_ctl -D $WORK/pgdata stop -m fast" >/dev/null; rm -rf "$WORK/pgdata"' EXIT
PSQL="$BIN/psql -X -h $WORK -p 5999 -U postgres"
$PSQL -q -c "CREATE DATABASE pgv" -c "CREATE DATABASE q"
$PSQL -q -d pgv -c "CREATE EXTENSION vector"
$PSQL -q -d q -c "CREATE EXTENSION vectorize_quant"
cd "$WORK" && mkdir -p results
for f in vector_type cast btree copy; do
  # vector -> qvector in types, casts and the support functions' names.
  sed -E 's/(^|[^a-z_])vector([^a-z_]|$)/\1qvector\2/g; s/(^|[^a-z_])vector([^a-z_]|$)/\1qvector\2/g;
          s/(^|[^a-z_])(vector_accum|vector_avg|vector_cmp|vector_combine)/\1q\2/g;
          s/array_to_vector/array_to_qvector/g' "$TESTS/$f.sql" > "$f.q.sql"
  $PSQL -d pgv -a -f "$TESTS/$f.sql" 2>&1 | sed -E 's/^psql:[^:]+:[0-9]+: //' > "$f.pgv.out"
  $PSQL -d q -a -f "$f.q.sql" 2>&1 | sed -E 's/^psql:[^:]+:[0-9]+: //' > "$f.q.out"
done
python3 - "$WORK" <<'EOF'
import re, sys
work = sys.argv[1]
skip = re.compile(r'halfvec|sparsevec|\bbit\b')
def blocks(path, translate):
    """(statement, output lines, section) per echoed statement, whitespace-normalized."""
    out, cur, section = [], None, ''
    for line in open(path):
        line = line.rstrip('\n')
        if translate:
            line = re.sub(r'(^|[^a-z_])vector(?=[^a-z_]|$)', r'\1qvector', line)
            line = re.sub(r'(^|[^a-z_])(vector_(accum|avg|cmp|combine))', r'\1q\2', line)
            line = line.replace('array_to_vector', 'array_to_qvector')
        if line.startswith('LINE ') or re.match(r'^\s*\^\s*$', line):
            continue
        if line.startswith('-- '):
            section = line
            continue
        if (line.endswith(';') and re.match(r'^[A-Z]', line)) or line.startswith('\\copy'):
            cur = [line, [], section]
            out.append(cur)
        elif cur is not None:
            l = re.sub(r'\s+', ' ', line).strip()
            if l and not re.match(r'^[-+]+$', l):
                cur[1].append(l)
    return out
total = 0
for f in ['vector_type', 'cast', 'btree', 'copy']:
    a = blocks(f'{work}/{f}.pgv.out', True)
    b = blocks(f'{work}/{f}.q.out', False)
    assert len(a) == len(b), (f, len(a), len(b))
    same = differ = skipped = 0
    for (sa, ra, seca), (sb, rb, _) in zip(a, b):
        if skip.search(sa) or skip.search(seca):
            skipped += 1
        elif ra == rb:
            same += 1
        else:
            differ += 1
            print(f'{f}: {sb}\n  pgvector: {" | ".join(ra)}\n  ours:     {" | ".join(rb)}')
    total += differ
    print(f'== {f}: {same} same, {differ} different, {skipped} skipped (halfvec/sparsevec/bit)')
print(f'{total} differing statements')
EOF
