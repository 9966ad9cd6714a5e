//! `quantization_stats(index, sample_queries)` and `qhnsw_index_meta(index)`.
//!
//! Sizes come from `pg_relation_size` and the table (non-NULL values of the indexed
//! column); quality from the stored quantizer on a seeded sample of the table; with
//! `sample_queries > 0`, recall@10, MAP@10 and latency come from real index scans
//! (`index_beginscan` on this very index, visibility-checked like any query) compared
//! with an exact scan of the whole table computed in Rust.

use super::{
    boolean, float8, int4, int8, metric_name, quantizer_parameters, resolve, text, SrfRows, Target,
};
use crate::distance::{self, metric_distance, Metric};
use crate::fmgr::{arg_i32, raise};
use crate::pg_fn;
use crate::quant::auto;
use crate::quant::QuantizerKind;
use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode as Code;
use rayon::prelude::*;
use std::time::Instant;

/// Rows the quality estimate samples at most.
const QUALITY_SAMPLE_ROWS: usize = 2_000;
/// Held-out queries of the quality estimate.
const QUALITY_QUERIES: usize = 100;
/// Largest `sample_queries` accepted.
pub const MAX_SAMPLE_QUERIES: i32 = 10_000;
/// Neighbours measured.
const K: usize = 10;

/// Search quality and speed measured with real index scans.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    /// Mean recall@10 against exact search.
    pub recall: f64,
    /// Mean average precision@10.
    pub map: f64,
    /// Mean latency of one 10-row index scan, milliseconds.
    pub mean_ms: f64,
    /// 99th percentile latency, milliseconds.
    pub p99_ms: f64,
    /// Queries per second (one backend, sequential).
    pub qps: f64,
    /// Queries run.
    pub queries: usize,
}

/// Why the index uses its quantizer, from its options and meta page.
pub fn chosen_because(t: &Target) -> String {
    let built = t.meta.quantizer.name();
    if let (Some(reason), false) = (&t.auto_reason, t.meta.staging) {
        return format!("quantizer = 'auto': {reason}");
    }
    if t.meta.staging {
        let configured = t.reloption("quantizer").unwrap_or_else(|| "sq8".into());
        return format!(
            "staging: unquantized codes (float4, or float16 beyond ~1700 dimensions) until the index has enough rows to train quantizer '{configured}'"
        );
    }
    match t.reloption("quantizer") {
        Some(v) if v.eq_ignore_ascii_case("auto") => {
            let threshold = t.reloption("quality_threshold").unwrap_or_else(|| "0.95".into());
            format!(
                "quantizer = 'auto' chose {built} at build time: the smallest candidate meeting recall@10 {threshold} on a sample"
            )
        }
        Some(v) => match QuantizerKind::parse(&v) {
            Some(k) if k == t.meta.quantizer => format!("set explicitly: WITH (quantizer = '{v}')"),
            _ => format!(
                "WITH (quantizer = '{v}') is set but the index was built with {built}; REINDEX to apply it"
            ),
        },
        None if t.meta.quantizer == QuantizerKind::Sq8 => {
            "default: no quantizer option given (sq8)".to_string()
        }
        None => format!("built with {built}; the quantizer option has since been reset (REINDEX to use the default sq8)"),
    }
}

/// Estimated recall loss (1 - recall@10 with the index's re-ranking) and relative reconstruction error.
fn quality(t: &Target, vectors: i64) -> (f64, f64) {
    let Some(q) = t.quantizer.as_deref() else {
        return (f64::NAN, f64::NAN);
    };
    let dims = t.dims();
    let sample = auto::prepare_sample(
        dims,
        &t.sample_vectors(QUALITY_SAMPLE_ROWS, vectors),
        t.metric(),
    );
    if sample.len() < 2 * dims {
        return (f64::NAN, f64::NAN);
    }
    let error = q.quality(&sample, t.metric(), 0).relative_error;
    let (base, queries) = auto::holdout_split(dims, &sample, QUALITY_QUERIES);
    let recall = auto::recall_with_rerank(q, &base, &queries, t.metric(), t.rerank());
    (1.0 - recall, error)
}

/// Exact top-10 (heap TIDs, ascending distance, ties by TID) of every query by one pass over the table.
pub fn exact_top10(t: &Target, queries: &[Vec<f32>]) -> Vec<Vec<(u32, u16)>> {
    let dims = t.dims();
    let metric = t.metric();
    let mut best: Vec<Vec<(f32, (u32, u16))>> = vec![Vec::with_capacity(K + 1); queries.len()];
    let mut rows: Vec<f32> = Vec::new();
    let mut tids: Vec<(u32, u16)> = Vec::new();
    let flush = |best: &mut Vec<Vec<(f32, (u32, u16))>>,
                 rows: &mut Vec<f32>,
                 tids: &mut Vec<(u32, u16)>| {
        best.par_iter_mut()
            .zip(queries.par_iter())
            .for_each(|(top, q)| {
                for (x, tid) in rows.chunks_exact(dims).zip(tids.iter()) {
                    let d = metric_distance(metric, q, x);
                    if d.is_nan() {
                        continue;
                    }
                    let entry = (d, *tid);
                    if top.len() == K {
                        let last = top[K - 1];
                        if (entry.0, entry.1) >= (last.0, last.1) {
                            continue;
                        }
                        top.pop();
                    }
                    let at = top.partition_point(|e| (e.0, e.1) < (entry.0, entry.1));
                    top.insert(at, entry);
                }
            });
        rows.clear();
        tids.clear();
    };
    let sql = format!(
        "SELECT {col}, ctid FROM {tbl} WHERE {w}",
        col = t.vector_sql(),
        tbl = t.table_sql,
        w = t.where_sql()
    );
    t.for_each_vector(&sql, |tid, v| {
        if metric == Metric::Cosine && distance::norm_squared(v) == 0.0 {
            return; // the index skips zero vectors under cosine
        }
        rows.extend_from_slice(v);
        tids.push(tid.unwrap_or((0, 0)));
        if tids.len() >= 4096 {
            flush(&mut best, &mut rows, &mut tids);
        }
    });
    flush(&mut best, &mut rows, &mut tids);
    best.into_iter()
        .map(|top| top.into_iter().map(|(_, tid)| tid).collect())
        .collect()
}

/// Runs every query through the index (10 rows each, as the table owner) and returns the TIDs and latencies in seconds.
pub fn index_top10(t: &Target, queries: &[Vec<f32>]) -> (Vec<Vec<(u32, u16)>>, Vec<f64>) {
    t.scan_as_owner(|| index_scans(t, queries))
}

/// `index_top10` in the current user's context.
fn index_scans(t: &Target, queries: &[Vec<f32>]) -> (Vec<Vec<(u32, u16)>>, Vec<f64>) {
    let mut results = Vec::with_capacity(queries.len());
    let mut latencies = Vec::with_capacity(queries.len());
    // SAFETY: the table and index are locked by `resolve` (ACCESS SHARE until commit);
    // the scan, slot and relations are released in reverse order before returning, and
    // an ERROR in between is cleaned up by transaction abort.
    unsafe {
        let heap = pg_sys::table_open(t.heap_oid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let index = pg_sys::index_open(t.index_oid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let snapshot = pg_sys::GetActiveSnapshot();
        let vector_type = crate::am::meta::index_vector_type(index);
        let scan = crate::compat::index_beginscan(heap, index, snapshot, 0, 1);
        let slot = pg_sys::table_slot_create(heap, std::ptr::null_mut());
        for q in queries {
            let mut key: pg_sys::ScanKeyData = std::mem::zeroed();
            pg_sys::ScanKeyEntryInitialize(
                &mut key,
                pg_sys::SK_ORDER_BY as i32,
                1,
                1,
                pg_sys::InvalidOid,
                pg_sys::InvalidOid,
                pg_sys::InvalidOid,
                vector_type.datum(q),
            );
            let started = Instant::now();
            pg_sys::index_rescan(scan, std::ptr::null_mut(), 0, &mut key, 1);
            let mut got = Vec::with_capacity(K);
            while got.len() < K
                && pg_sys::index_getnext_slot(
                    scan,
                    pg_sys::ScanDirection::ForwardScanDirection,
                    slot,
                )
            {
                got.push(crate::am::build::item_pointer(&(*slot).tts_tid));
            }
            latencies.push(started.elapsed().as_secs_f64());
            results.push(got);
        }
        pg_sys::ExecDropSingleTupleTableSlot(slot);
        pg_sys::index_endscan(scan);
        pg_sys::index_close(index, pg_sys::NoLock as pg_sys::LOCKMODE);
        pg_sys::table_close(heap, pg_sys::NoLock as pg_sys::LOCKMODE);
    }
    (results, latencies)
}

/// Recall@10 and MAP@10 of `got` against `truth`.
pub fn recall_and_map(truth: &[Vec<(u32, u16)>], got: &[Vec<(u32, u16)>]) -> (f64, f64) {
    let (mut recall, mut map, mut n) = (0.0, 0.0, 0usize);
    for (t, g) in truth.iter().zip(got) {
        if t.is_empty() {
            continue;
        }
        let mut hits = 0usize;
        let mut ap = 0.0;
        for (k, tid) in g.iter().take(K).enumerate() {
            if t.contains(tid) {
                hits += 1;
                ap += hits as f64 / (k + 1) as f64;
            }
        }
        recall += hits as f64 / t.len() as f64;
        map += ap / t.len() as f64;
        n += 1;
    }
    if n == 0 {
        (f64::NAN, f64::NAN)
    } else {
        (recall / n as f64, map / n as f64)
    }
}

/// Measures recall, MAP and latency with `n` sampled table rows as queries.
pub fn measure(t: &Target, n: usize, vectors: i64) -> Measured {
    let dims = t.dims();
    let sample = t.sample_vectors(n, vectors);
    let queries: Vec<Vec<f32>> = sample
        .chunks_exact(dims.max(1))
        .filter(|q| t.metric() != Metric::Cosine || distance::norm_squared(q) > 0.0)
        .map(|q| q.to_vec())
        .collect();
    let (got, latencies) = index_top10(t, &queries);
    let truth = exact_top10(t, &queries);
    let (recall, map) = recall_and_map(&truth, &got);
    let total: f64 = latencies.iter().sum();
    let mut sorted = latencies.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let p99 = if sorted.is_empty() {
        f64::NAN
    } else {
        sorted[((sorted.len() as f64 * 0.99).ceil() as usize).clamp(1, sorted.len()) - 1]
    };
    let nq = queries.len();
    Measured {
        recall,
        map,
        mean_ms: if nq > 0 {
            1000.0 * total / nq as f64
        } else {
            f64::NAN
        },
        p99_ms: 1000.0 * p99,
        qps: if total > 0.0 {
            nq as f64 / total
        } else {
            f64::NAN
        },
        queries: nq,
    }
}

pg_fn!(
    /// `quantization_stats(index regclass, sample_queries int DEFAULT 0)`: one row of sizes and quality.
    quantization_stats,
    |fcinfo| {
        // SAFETY: STRICT (regclass, int4) function declared RETURNS TABLE.
        let (oid, sample_queries, mut rows) = unsafe {
            (
                pg_sys::Oid::from(crate::fmgr::arg_datum(fcinfo, 0).value() as u32),
                arg_i32(fcinfo, 1),
                SrfRows::new(fcinfo),
            )
        };
        if !(0..=MAX_SAMPLE_QUERIES).contains(&sample_queries) {
            raise(
                Code::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("sample_queries must be between 0 and {MAX_SAMPLE_QUERIES}, not {sample_queries}"),
            );
        }
        let t = resolve(oid, false);
        let dims = t.dims() as i64;
        let vectors = t.count_vectors();
        let float4_bytes = vectors * dims * 4;
        let (loss, error) = quality(&t, vectors);
        let measured = (sample_queries > 0 && vectors > 0 && t.quantizer.is_some())
            .then(|| measure(&t, sample_queries as usize, vectors));
        let mut row = quantizer_columns(&t);
        row.extend([
            int8(vectors),
            int8(t.index_bytes),
            int8(float4_bytes),
            if t.index_bytes > 0 {
                float8(float4_bytes as f64 / t.index_bytes as f64)
            } else {
                None
            },
            float8(t.index_bytes as f64 / (1024.0 * 1024.0)),
            float8(loss),
            float8(error),
            text(chosen_because(&t)),
            measured.and_then(|m| float8(m.recall)),
            measured.and_then(|m| float8(m.map)),
            measured.and_then(|m| float8(m.mean_ms)),
            measured.and_then(|m| float8(m.p99_ms)),
            measured.and_then(|m| float8(m.qps)),
        ]);
        rows.push(row);
        pg_sys::Datum::from(0usize)
    }
);

/// The columns both SRFs start with: method, parameters, bits, code bytes, dimensions, metric.
fn quantizer_columns(t: &Target) -> Vec<Option<pg_sys::Datum>> {
    let q = t.quantizer.as_deref();
    vec![
        text(t.meta.quantizer.name()),
        q.map(quantizer_parameters).and_then(text),
        q.and_then(|q| int4(q.bits() as i32)),
        q.and_then(|q| int4(q.code_len() as i32)),
        int4(t.meta.dims as i32),
        text(metric_name(t.metric())),
    ]
}

pg_fn!(
    /// `qhnsw_index_meta(index regclass)`: what the meta page says (for the `qhnsw_indexes` view).
    qhnsw_index_meta,
    |fcinfo| {
        // SAFETY: STRICT (regclass) function declared RETURNS TABLE.
        let (oid, mut rows) = unsafe {
            (
                pg_sys::Oid::from(crate::fmgr::arg_datum(fcinfo, 0).value() as u32),
                SrfRows::new(fcinfo),
            )
        };
        let t = resolve(oid, false);
        let mut row = quantizer_columns(&t);
        row.extend([
            int8(t.meta.node_count as i64),
            text(t.meta.rerank.name()),
            int4(t.meta.m as i32),
            int4(t.meta.ef_construction as i32),
            boolean(t.quantizer.is_some()),
        ]);
        rows.push(row);
        pg_sys::Datum::from(0usize)
    }
);
