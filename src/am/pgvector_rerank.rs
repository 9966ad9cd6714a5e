//! Exact re-ranking for pgvector's `vector` / `halfvec` columns.
//!
//! The ORDER BY operator of these opclasses is pgvector's, so the rows must come back in
//! the order of the distance pgvector computes (float4 sums in pgvector's summation
//! order; cosine finished in float8). Re-computing it here would differ in the last
//! bits, so re-ranking calls the opclass's support function 1 — pgvector's own
//! `vector_l2_squared_distance`, `vector_negative_inner_product`, `cosine_distance` or
//! `l1_distance` (and the `halfvec` ones) — through the function manager. Each orders
//! exactly as the operator does and is in the units of the graph's estimates (squared
//! L2), which strict_order compares against.

use pgrx::pg_sys;

/// Support function 1 of `index` applied to (query, row), as float4 (NaN for pgvector's
/// cosine distance to a zero vector).
pub fn support_distance(index: pg_sys::Relation, query: pg_sys::Datum, row: pg_sys::Datum) -> f32 {
    // SAFETY: index is open and its opclass has support function 1 (checked by
    // index_opclass when the scan started); both datums are non-NULL values of the
    // opclass's type. index_getprocinfo caches the FmgrInfo in the relcache entry.
    let result = unsafe {
        let flinfo = pg_sys::index_getprocinfo(index, 1, 1);
        pg_sys::FunctionCall2Coll(flinfo, pg_sys::InvalidOid, query, row)
    };
    f64::from_bits(result.value() as u64) as f32
}
