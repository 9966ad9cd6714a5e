//! The quantization SQL API: `quantization_stats`, `quantization_optimize`,
//! `qhnsw_quantize`, `qhnsw_index_meta`, the scan counters, and the views in
//! `sql/sql_api.sql`.
//!
//! Functions are raw V1 functions (`pg_fn!`) declared by hand in `sql/sql_api.sql`,
//! returning rows through a materialised tuplestore. Every function resolves its
//! `regclass` argument with `resolve`, which checks that it is a qhnsw index, that the
//! caller may SELECT from its table (and owns the index when it will be rebuilt),
//! and reads the meta page and the stored quantizer. Every statement that evaluates
//! the index's expression or predicate runs as the table owner in a restricted
//! context (`Target::scan_as_owner`, see `privilege`).

pub mod counters;
pub mod optimize;
pub mod privilege;
pub mod stats;

use crate::am::meta::{load_quantizer, read_meta};
use crate::am::pages::{MetaPage, RerankSource};
use crate::distance::Metric;
use crate::fmgr::raise;
use crate::quant::Quantizer;
use crate::types::qvector::qvector_from_datum;
use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode as Code;
use pgrx::prelude::*;
use pgrx::IntoDatum;
use privilege::{as_table_owner, owns, require_select, row_security_applies};
use std::sync::Arc;

/// Seed of every sample these functions draw (`TABLESAMPLE ... REPEATABLE`).
pub const SAMPLE_SEED: i32 = 42;

/// A qhnsw index the caller may read, with what the SQL API needs to know about it.
pub struct Target {
    /// Index oid.
    pub index_oid: pg_sys::Oid,
    /// Table oid.
    pub heap_oid: pg_sys::Oid,
    /// `schema.index`, quoted for SQL.
    pub index_sql: String,
    /// `schema.table`, quoted for SQL.
    pub table_sql: String,
    /// The indexed column (or expression) as SQL, deparsed under the safe `search_path`.
    pub column_sql: String,
    /// Partial-index predicate as SQL (deparsed likewise), if any.
    pub predicate: Option<String>,
    /// The extension's `qvector` type, schema-qualified.
    pub qvector_sql: String,
    /// True when row-level security applies to the caller on the table.
    pub row_security: bool,
    /// Index size in bytes (`pg_relation_size`).
    pub index_bytes: i64,
    /// The index's reloptions (`name=value`).
    pub reloptions: Vec<String>,
    /// Decoded meta page.
    pub meta: MetaPage,
    /// The stored quantizer (None for an index built on an empty table).
    pub quantizer: Option<Arc<Quantizer>>,
    /// Why `quantizer = 'auto'` chose it, as recorded by the build.
    pub auto_reason: Option<String>,
}

impl Target {
    /// The metric of the index.
    pub fn metric(&self) -> Metric {
        self.meta.metric
    }

    /// Dimensions of the indexed vectors.
    pub fn dims(&self) -> usize {
        self.meta.dims as usize
    }

    /// The ORDER BY operator of the index's opclass.
    pub fn operator(&self) -> &'static str {
        match self.meta.metric {
            Metric::L2 => "<->",
            Metric::InnerProduct => "<#>",
            Metric::Cosine => "<=>",
            Metric::L1 => "<+>",
        }
    }

    /// The indexed column as a `qvector` expression (an sq8vector column is decoded).
    pub fn vector_sql(&self) -> String {
        format!("({})::{}", self.column_sql, self.qvector_sql)
    }

    /// `WHERE` clause selecting the rows the index holds (non-NULL, partial predicate).
    pub fn where_sql(&self) -> String {
        match &self.predicate {
            Some(p) => format!("({}) IS NOT NULL AND ({p})", self.column_sql),
            None => format!("({}) IS NOT NULL", self.column_sql),
        }
    }

    /// Candidates the index re-ranks exactly: `qhnsw.rerank_candidates`, 0 with `rerank = none`.
    pub fn rerank(&self) -> usize {
        if self.meta.rerank == RerankSource::None {
            0
        } else {
            crate::am::options::rerank_candidates(self.meta.quantizer)
        }
    }

    /// The value of a reloption, if set.
    pub fn reloption(&self, name: &str) -> Option<String> {
        self.reloptions.iter().find_map(|o| {
            let (k, v) = o.split_once('=')?;
            (k == name).then(|| v.to_string())
        })
    }

    /// Runs `f`, which reads the table or index, as the table owner (`as_table_owner`).
    ///
    /// ERROR 42501 when row-level security applies to the caller: the owner would see
    /// rows the caller may not (as `pg_stats` hides such tables' statistics).
    pub fn scan_as_owner<R>(&self, f: impl FnOnce() -> R) -> R {
        if self.row_security {
            raise(
                Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
                format!(
                    "permission denied for table {}: row-level security applies to the current user and this function reads every row",
                    self.table_sql
                ),
            );
        }
        as_table_owner(self.heap_oid, f)
    }

    /// Number of rows the index holds (non-NULL values of the column, under the predicate).
    pub fn count_vectors(&self) -> i64 {
        let sql = format!(
            "SELECT pg_catalog.count(*) FROM {} WHERE {}",
            self.table_sql,
            self.where_sql()
        );
        self.scan_as_owner(|| Spi::get_one::<i64>(&sql))
            .unwrap_or_else(|e| raise(Code::ERRCODE_INTERNAL_ERROR, format!("SPI: {e}")))
            .unwrap_or(0)
    }

    /// Runs `sql` (see `for_each_vector`) as the table owner.
    pub fn for_each_vector(&self, sql: &str, f: impl FnMut(Option<(u32, u16)>, &[f32])) {
        let dims = self.dims();
        self.scan_as_owner(|| for_each_vector(sql, dims, f));
    }

    /// A seeded sample of at most `max_rows` vectors of the table (row-major), of `total` rows.
    pub fn sample_vectors(&self, max_rows: usize, total: i64) -> Vec<f32> {
        if max_rows == 0 || total <= 0 {
            return Vec::new();
        }
        let pct = sample_percent(max_rows, total);
        let sql = format!(
            "SELECT {col} FROM {tbl} TABLESAMPLE BERNOULLI ({pct}) REPEATABLE ({SAMPLE_SEED}) WHERE {w} LIMIT {max_rows}",
            col = self.vector_sql(),
            tbl = self.table_sql,
            w = self.where_sql(),
        );
        let mut out = Vec::new();
        self.for_each_vector(&sql, |_, v| out.extend_from_slice(v));
        out
    }
}

/// BERNOULLI percentage that yields about `max_rows` (with margin) of `total` rows.
pub fn sample_percent(max_rows: usize, total: i64) -> f64 {
    (100.0 * (1.5 * max_rows as f64 + 10.0) / total.max(1) as f64).min(100.0)
}

/// Runs `sql` (first column a qvector, optional second column a tid) through a cursor and
/// calls `f(tid, vector)` for every row; vectors of other dimensions are an ERROR.
fn for_each_vector(sql: &str, dims: usize, mut f: impl FnMut(Option<(u32, u16)>, &[f32])) {
    Spi::connect(|client| {
        let mut cursor = client.open_cursor(sql, &[]);
        loop {
            let table = cursor
                .fetch(1000)
                .unwrap_or_else(|e| raise(Code::ERRCODE_INTERNAL_ERROR, format!("SPI: {e}")));
            if table.is_empty() {
                break;
            }
            let mut table = table;
            let has_tid = table.columns().unwrap_or(1) > 1;
            while table.next().is_some() {
                let Ok(Some(datum)) = table.get_datum_by_ordinal(1) else {
                    continue;
                };
                // SAFETY: the first column of the query is a qvector.
                let v = unsafe { qvector_from_datum(datum) };
                if v.len() != dims {
                    raise(
                        Code::ERRCODE_DATA_EXCEPTION,
                        format!("expected {dims} dimensions, not {}", v.len()),
                    );
                }
                let tid = if has_tid {
                    table
                        .get::<pg_sys::ItemPointerData>(2)
                        .ok()
                        .flatten()
                        .map(|t| crate::am::build::item_pointer(&t))
                } else {
                    None
                };
                f(tid, v);
            }
        }
    });
}

/// Resolves a `regclass` argument to a readable qhnsw index; `need_owner` for rebuilds.
///
/// ERRORs: 42P01 no such relation, 42809 not an index / not a qhnsw index, 42501 no
/// SELECT on the table or (with `need_owner`) not the index's owner.
pub fn resolve(index_oid: pg_sys::Oid, need_owner: bool) -> Target {
    type Row = (
        Option<String>,
        Option<String>,
        Option<pg_sys::Oid>,
        Option<String>,
        Option<String>,
        Option<i64>,
        Option<Vec<Option<String>>>,
    );
    let row: Option<Row> = Spi::connect(|client| {
        let table = client
            .select(
                "SELECT c.relkind::text, am.amname::text, i.indrelid,
                        quote_ident(n.nspname) || '.' || quote_ident(c.relname),
                        quote_ident(tn.nspname) || '.' || quote_ident(t.relname),
                        pg_relation_size(c.oid), c.reloptions::text[]
                 FROM pg_class c
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                 LEFT JOIN pg_am am ON am.oid = c.relam
                 LEFT JOIN pg_index i ON i.indexrelid = c.oid
                 LEFT JOIN pg_class t ON t.oid = i.indrelid
                 LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace
                 WHERE c.oid = $1",
                None,
                &[index_oid.into()],
            )
            .unwrap_or_else(|e| raise(Code::ERRCODE_INTERNAL_ERROR, format!("SPI: {e}")));
        table.into_iter().next().map(|r| {
            (
                r.get(1).ok().flatten(),
                r.get(2).ok().flatten(),
                r.get(3).ok().flatten(),
                r.get(4).ok().flatten(),
                r.get(5).ok().flatten(),
                r.get(6).ok().flatten(),
                r.get(7).ok().flatten(),
            )
        })
    });
    let Some((relkind, amname, heap, index_sql, table_sql, bytes, options)) = row else {
        raise(
            Code::ERRCODE_UNDEFINED_TABLE,
            format!("relation with OID {} does not exist", index_oid.to_u32()),
        )
    };
    let index_sql = index_sql.unwrap_or_default();
    if relkind.as_deref() != Some("i") {
        raise(
            Code::ERRCODE_WRONG_OBJECT_TYPE,
            format!("\"{index_sql}\" is not an index"),
        );
    }
    if amname.as_deref() != Some("qhnsw") {
        raise(
            Code::ERRCODE_WRONG_OBJECT_TYPE,
            format!(
                "index \"{index_sql}\" is not a qhnsw index (it uses {})",
                amname.unwrap_or_else(|| "no access method".into())
            ),
        );
    }
    let heap_oid = heap.unwrap_or(pg_sys::InvalidOid);
    let table_sql = table_sql.unwrap_or_default();
    require_select(heap_oid, &table_sql);
    if need_owner && !owns(index_oid) {
        raise(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("must be owner of index {index_sql}"),
        );
    }
    let row_security = row_security_applies(heap_oid);
    let (column_sql, predicate, qvector_sql) = as_table_owner(heap_oid, || deparse(index_oid));
    let (meta, quantizer, auto_reason) = read_index(index_oid);
    Target {
        index_oid,
        heap_oid,
        index_sql,
        table_sql,
        column_sql,
        predicate,
        qvector_sql,
        row_security,
        index_bytes: bytes.unwrap_or(0),
        reloptions: options.unwrap_or_default().into_iter().flatten().collect(),
        meta,
        quantizer,
        auto_reason,
    }
}

/// The index's column expression, its predicate and the `qvector` type as SQL.
///
/// Deparsed under the current `search_path`: inside `as_table_owner` that is the safe
/// one, so every object outside `pg_catalog` comes out schema-qualified.
fn deparse(index_oid: pg_sys::Oid) -> (String, Option<String>, String) {
    type Row = (Option<String>, Option<String>, Option<String>);
    let row: Option<Row> = Spi::connect(|client| {
        let table = client
            .select(
                "SELECT pg_catalog.pg_get_indexdef(i.indexrelid, 1, true),
                        pg_catalog.pg_get_expr(i.indpred, i.indrelid),
                        (SELECT pg_catalog.format_type(ty.oid, NULL)
                         FROM pg_catalog.pg_type ty
                         JOIN pg_catalog.pg_extension e ON e.extnamespace = ty.typnamespace
                         WHERE e.extname = 'vectorize_quant' AND ty.typname = 'qvector')
                 FROM pg_catalog.pg_index i WHERE i.indexrelid = $1",
                None,
                &[index_oid.into()],
            )
            .unwrap_or_else(|e| raise(Code::ERRCODE_INTERNAL_ERROR, format!("SPI: {e}")));
        table.into_iter().next().map(|r| {
            (
                r.get(1).ok().flatten(),
                r.get(2).ok().flatten(),
                r.get(3).ok().flatten(),
            )
        })
    });
    let (Some(column), predicate, Some(qvector)) = row.unwrap_or((None, None, None)) else {
        raise(
            Code::ERRCODE_INTERNAL_ERROR,
            format!(
                "cannot deparse index with OID {} or find type qvector",
                index_oid.to_u32()
            ),
        )
    };
    (column, predicate, qvector)
}

/// Reads the meta page and quantizer of a qhnsw index (locks it ACCESS SHARE until commit).
pub fn read_index(index_oid: pg_sys::Oid) -> (MetaPage, Option<Arc<Quantizer>>, Option<String>) {
    // SAFETY: the oid is a qhnsw index (checked by the caller); the relation is closed
    // again before returning, keeping its lock until the end of the transaction.
    unsafe {
        let rel = pg_sys::index_open(index_oid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let meta = read_meta(rel);
        let quantizer = load_quantizer(rel, &meta);
        let reason = crate::am::meta::read_auto_reason(rel);
        pg_sys::index_close(rel, pg_sys::NoLock as pg_sys::LOCKMODE);
        (meta, quantizer, reason)
    }
}

/// Rows of a materialised set-returning function.
pub struct SrfRows {
    rsinfo: *mut pg_sys::ReturnSetInfo,
}

impl SrfRows {
    /// Sets up materialised output for the current call.
    ///
    /// # Safety
    /// `fcinfo` must be the live call info of a function declared `RETURNS TABLE` / `SETOF`.
    pub unsafe fn new(fcinfo: pg_sys::FunctionCallInfo) -> SrfRows {
        // SAFETY: guaranteed by the caller; InitMaterializedSRF checks the call context.
        unsafe {
            pg_sys::InitMaterializedSRF(fcinfo, 0);
            SrfRows {
                rsinfo: (*fcinfo).resultinfo as *mut pg_sys::ReturnSetInfo,
            }
        }
    }

    /// Appends one row; `None` is SQL NULL.
    pub fn push(&mut self, values: Vec<Option<pg_sys::Datum>>) {
        let nulls: Vec<bool> = values.iter().map(|v| v.is_none()).collect();
        let mut datums: Vec<pg_sys::Datum> = values
            .into_iter()
            .map(|v| v.unwrap_or(pg_sys::Datum::from(0usize)))
            .collect();
        // SAFETY: the tuplestore and descriptor were set up by InitMaterializedSRF; the
        // arrays have one entry per output column (the SQL declaration matches).
        unsafe {
            let natts = (*(*self.rsinfo).setDesc).natts as usize;
            assert_eq!(natts, datums.len(), "output columns");
            pg_sys::tuplestore_putvalues(
                (*self.rsinfo).setResult,
                (*self.rsinfo).setDesc,
                datums.as_mut_ptr(),
                nulls.as_ptr() as *mut bool,
            );
        }
    }
}

/// A text datum.
pub fn text(s: impl AsRef<str>) -> Option<pg_sys::Datum> {
    s.as_ref().into_datum()
}

/// A float8 datum, NULL for NaN.
pub fn float8(v: f64) -> Option<pg_sys::Datum> {
    (!v.is_nan()).then(|| crate::fmgr::f64_datum(v))
}

/// An int8 datum.
pub fn int8(v: i64) -> Option<pg_sys::Datum> {
    v.into_datum()
}

/// An int4 datum.
pub fn int4(v: i32) -> Option<pg_sys::Datum> {
    Some(crate::fmgr::i32_datum(v))
}

/// A bool datum.
pub fn boolean(v: bool) -> Option<pg_sys::Datum> {
    Some(crate::fmgr::bool_datum(v))
}

/// Name of a metric as shown to users.
pub fn metric_name(m: Metric) -> &'static str {
    match m {
        Metric::L2 => "l2",
        Metric::InnerProduct => "inner_product",
        Metric::Cosine => "cosine",
        Metric::L1 => "l1",
    }
}

/// User-facing parameters of a stored quantizer, e.g. `pq_subvectors=16, pq_bits=8`.
pub fn quantizer_parameters(q: &Quantizer) -> String {
    match q {
        Quantizer::Product(p) => format!(
            "pq_subvectors={}, pq_bits={}",
            p.subvectors(),
            p.code_bits()
        ),
        _ => String::new(),
    }
}
