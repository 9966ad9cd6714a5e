//! `quantization_optimize(index, quality_threshold, apply)` and `qhnsw_quantize(index)`.
//!
//! Both rebuild with `REINDEX INDEX` through SPI inside the caller's transaction: the
//! new index is written to a new relfilenode that replaces the old one only at commit,
//! so a crash or an ERROR leaves the old index intact, never a mix.

use super::{boolean, float8, int4, int8, resolve, text, SrfRows, Target};
use crate::fmgr::{arg_bool, arg_f64, raise};
use crate::pg_fn;
use crate::quant::auto::{self, CandidateReport};
use crate::quant::QuantizerKind;
use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode as Code;
use pgrx::prelude::*;

/// Rows `quantization_optimize` samples at most.
pub const OPTIMIZE_SAMPLE_ROWS: usize = auto::AUTO_SAMPLE_ROWS;
/// Held-out queries of `quantization_optimize`.
pub const OPTIMIZE_QUERIES: usize = auto::AUTO_QUERIES;

/// Runs a utility statement through SPI, turning SPI failures into ERRORs.
fn run(sql: &str) {
    Spi::run(sql).unwrap_or_else(|e| raise(Code::ERRCODE_INTERNAL_ERROR, format!("{sql}: {e}")));
}

/// Rebuilds the index with the candidate's options (`ALTER INDEX ... SET`, then `REINDEX INDEX`).
fn apply(t: &Target, c: &CandidateReport) {
    let mut set = format!("quantizer = '{}'", c.config.kind.name());
    if c.config.kind == QuantizerKind::Pq {
        set.push_str(&format!(
            ", pq_subvectors = {}, pq_bits = {}",
            c.config.pq_subvectors, c.config.pq_bits
        ));
    } else {
        run(&format!(
            "ALTER INDEX {} RESET (pq_subvectors, pq_bits)",
            t.index_sql
        ));
    }
    run(&format!("ALTER INDEX {} SET ({set})", t.index_sql));
    run(&format!("REINDEX INDEX {}", t.index_sql));
}

/// Relative reconstruction error of an index's current quantizer on a sample (NaN if untrained).
fn reconstruction_error(t: &Target, vectors: i64) -> f64 {
    let Some(q) = t.quantizer.as_deref() else {
        return f64::NAN;
    };
    let sample = auto::prepare_sample(t.dims(), &t.sample_vectors(2_000, vectors), t.metric());
    if sample.is_empty() {
        return f64::NAN;
    }
    q.quality(&sample, t.metric(), 0).relative_error
}

pg_fn!(
    /// `quantization_optimize(index regclass, quality_threshold float8 DEFAULT 0.95, apply bool DEFAULT false)`.
    quantization_optimize,
    |fcinfo| {
        // SAFETY: STRICT (regclass, float8, bool) function declared RETURNS TABLE.
        let (oid, threshold, do_apply, mut rows) = unsafe {
            (
                pg_sys::Oid::from(crate::fmgr::arg_datum(fcinfo, 0).value() as u32),
                arg_f64(fcinfo, 1),
                arg_bool(fcinfo, 2),
                SrfRows::new(fcinfo),
            )
        };
        if !(0.0..=1.0).contains(&threshold) {
            raise(
                Code::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("quality_threshold must be between 0 and 1, not {threshold}"),
            );
        }
        let t = resolve(oid, do_apply);
        let vectors = t.count_vectors();
        let sample = t.sample_vectors(OPTIMIZE_SAMPLE_ROWS, vectors);
        if sample.len() < 2 * t.dims().max(1) {
            raise(
                Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!(
                    "table {} has too few rows to evaluate quantizers ({vectors} indexed values)",
                    t.table_sql
                ),
            );
        }
        let reports = auto::evaluate_candidates(t.dims(), &sample, t.metric(), OPTIMIZE_QUERIES, t.rerank());
        let chosen = auto::choose(&reports, threshold);
        for (i, r) in reports.iter().enumerate() {
            rows.push(vec![
                text(&r.method),
                text(&r.parameters),
                float8(r.bits_per_dimension),
                float8(r.recall),
                int4(r.bytes_per_vector as i32),
                boolean(chosen == Some(i)),
            ]);
        }
        if do_apply {
            match chosen {
                Some(i) => apply(&t, &reports[i]),
                None => pgrx::notice!(
                    "no candidate reaches recall@10 {threshold}; index {} left unchanged",
                    t.index_sql
                ),
            }
        }
        pg_sys::Datum::from(0usize)
    }
);

pg_fn!(
    /// `qhnsw_quantize(index regclass)`: retrains the quantizer on the current data (REINDEX INDEX).
    qhnsw_quantize,
    |fcinfo| {
        // SAFETY: STRICT (regclass) function declared RETURNS TABLE.
        let (oid, mut rows) = unsafe {
            (
                pg_sys::Oid::from(crate::fmgr::arg_datum(fcinfo, 0).value() as u32),
                SrfRows::new(fcinfo),
            )
        };
        let before = resolve(oid, true);
        let vectors = before.count_vectors();
        let error_before = reconstruction_error(&before, vectors);
        run(&format!("REINDEX INDEX {}", before.index_sql));
        let after = resolve(oid, true);
        let error_after = reconstruction_error(&after, vectors);
        rows.push(vec![
            text(after.meta.quantizer.name()),
            int8(vectors),
            float8(error_before),
            float8(error_after),
        ]);
        pg_sys::Datum::from(0usize)
    }
);
