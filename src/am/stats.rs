//! Scan counters per index (scans, rows, distances, re-ranked candidates, time).
//!
//! Counters live in this backend until issue "live counters in shared memory"
//! moves them; `record_*` are cheap adds on a small map keyed by index oid.

use pgrx::pg_sys;
use std::cell::RefCell;
use std::collections::HashMap;

/// Counters of one index.
#[derive(Default, Clone, Copy, Debug)]
pub struct IndexCounters {
    /// Finished scans.
    pub scans: u64,
    /// Rows returned.
    pub rows: u64,
    /// Quantized distance computations.
    pub distances: u64,
    /// Candidates re-scored exactly.
    pub reranked: u64,
    /// Total scan time in microseconds.
    pub micros: u64,
}

thread_local! {
    static COUNTERS: RefCell<HashMap<u32, IndexCounters>> = RefCell::new(HashMap::new());
}

/// Applies `f` to the counters of an index.
fn update(index: pg_sys::Relation, f: impl FnOnce(&mut IndexCounters)) {
    // SAFETY: index is open.
    let oid = unsafe { (*index).rd_id }.to_u32();
    COUNTERS.with(|c| f(c.borrow_mut().entry(oid).or_default()));
}

/// Adds returned rows.
pub fn record_rows(index: pg_sys::Relation, rows: u64) {
    update(index, |c| c.rows += rows);
}

/// Adds distance computations.
pub fn record_distances(index: pg_sys::Relation, n: u64) {
    update(index, |c| c.distances += n);
}

/// Adds re-ranked candidates.
pub fn record_reranked(index: pg_sys::Relation, n: u64) {
    update(index, |c| c.reranked += n);
}

/// Counts a finished scan and its time.
pub fn record_scan(index: pg_sys::Relation, micros: u64) {
    update(index, |c| {
        c.scans += 1;
        c.micros += micros;
    });
}

/// The counters of an index oid.
pub fn counters(oid: u32) -> IndexCounters {
    COUNTERS.with(|c| c.borrow().get(&oid).copied().unwrap_or_default())
}
