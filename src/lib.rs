//! vectorize_quant: quantized HNSW vector search for PostgreSQL.
//!
//! The Postgres-free core (`distance`, `quant`, `graph`, `datagen`, the text and
//! binary formats in `types`) is plain Rust, tested by `cargo test` and measured by
//! criterion; everything touching Postgres lives in `fmgr`, `types` and `am`.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod am;
pub mod compat;
pub mod datagen;
pub mod distance;
pub mod fmgr;
pub mod graph;
pub mod quant;
pub mod sql_api;
pub mod types;

pgrx::pg_module_magic!();

pgrx::extension_sql_file!("../sql/qvector.sql", name = "qvector", bootstrap);
pgrx::extension_sql_file!(
    "../sql/sq8vector.sql",
    name = "sq8vector",
    requires = ["qvector"]
);
pgrx::extension_sql_file!("../sql/qhnsw.sql", name = "qhnsw", requires = ["sq8vector"]);
pgrx::extension_sql_file!("../sql/sql_api.sql", name = "sql_api", requires = ["qhnsw"]);
pgrx::extension_sql_file!("../sql/citus.sql", name = "citus", requires = ["sql_api"]);

/// Called when the library is loaded: registers GUCs and index options.
#[pgrx::pg_guard]
pub extern "C-unwind" fn _PG_init() {
    am::options::init();
    am::stats::init();
    am::threads::init();
    // After every qhnsw.* setting is defined: a misspelt one is then an ERROR, not a
    // silently ignored placeholder.
    // SAFETY: a static NUL-terminated string; called once per process from _PG_init.
    unsafe { pgrx::pg_sys::MarkGUCPrefixReserved(c"qhnsw".as_ptr()) };
}

/// In-server tests (`cargo pgrx test`, which enables `pg_test`); the bodies live in
/// src/tests/*.rs. Plain `cargo test` leaves them out: they need a running server.
#[cfg(feature = "pg_test")]
#[pgrx::pg_schema]
mod tests {
    use crate::datagen::{embeddings_like, exact_knn, queries_like, recall_at};
    use crate::distance::Metric;
    use crate::types::text::format_vector;
    use pgrx::prelude::*;

    include!("tests/support.rs");
    include!("tests/types.rs");
    include!("tests/sq8vector.rs");
    include!("tests/index.rs");
    include!("tests/sql_api.rs");
    include!("tests/locking.rs");
    include!("tests/security.rs");
    include!("tests/build.rs");
    include!("tests/numeric.rs");
    include!("tests/scan.rs");
}

/// Settings for `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    /// Runs once before the tests.
    pub fn setup(_options: Vec<&str>) {}

    /// Extra postgresql.conf lines for the test cluster.
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec!["shared_preload_libraries = 'vectorize_quant'"]
    }
}
