//! `qhnsw_stat_counters()`, `qhnsw_stat_reset(regclass)`, `qhnsw_stat_shared()`:
//! the live scan counters of `crate::am::stats` as SQL (the `qhnsw_stat_indexes` view
//! joins them with the catalog).

use super::{boolean, float8, int8, SrfRows};
use crate::am::stats;
use crate::fmgr::bool_datum;
use crate::pg_fn;
use pgrx::pg_sys;
use pgrx::IntoDatum;

pg_fn!(
    /// `qhnsw_stat_counters()`: one row per index of this database with counters.
    qhnsw_stat_counters,
    |fcinfo| {
        // SAFETY: declared RETURNS TABLE in sql/sql_api.sql.
        let mut rows = unsafe { SrfRows::new(fcinfo) };
        let shared = stats::is_shared();
        for (oid, c) in stats::all_counters() {
            rows.push(vec![
                pg_sys::Oid::from(oid).into_datum(),
                int8(c.scans as i64),
                int8(c.rows as i64),
                int8(c.distances as i64),
                int8(c.reranked as i64),
                float8(c.micros as f64 / 1000.0),
                boolean(shared),
            ]);
        }
        pg_sys::Datum::from(0usize)
    }
);

pg_fn!(
    /// `qhnsw_stat_reset(index regclass DEFAULT NULL)`: zeroes one index's counters, or all (NULL).
    qhnsw_stat_reset,
    |fcinfo| {
        // SAFETY: one regclass argument, possibly NULL (the function is not STRICT).
        let oid = unsafe {
            if pgrx::fcinfo::pg_arg_is_null(fcinfo, 0) {
                None
            } else {
                Some(crate::fmgr::arg_datum(fcinfo, 0).value() as u32)
            }
        };
        stats::reset(oid);
        // SAFETY: a void function returns a NULL datum.
        unsafe { (*fcinfo).isnull = true };
        pg_sys::Datum::from(0usize)
    }
);

pg_fn!(
    /// `qhnsw_stat_shared()`: true when counters are in shared memory (library preloaded).
    qhnsw_stat_shared,
    |_fcinfo| { bool_datum(stats::is_shared()) }
);

pg_fn!(
    /// `qhnsw_stat_reset_time()`: when the counters were last reset (NULL: never, local mode).
    qhnsw_stat_reset_time,
    |fcinfo| {
        match stats::reset_time() {
            Some(t) => pg_sys::Datum::from(t),
            None => {
                // SAFETY: returning SQL NULL from a V1 function.
                unsafe { (*fcinfo).isnull = true };
                pg_sys::Datum::from(0usize)
            }
        }
    }
);
