//! The `qhnsw` index access method: one file per concern, like pgvector's hnsw*.c.
//!
//! - `options`: reloptions and GUCs        - `pages`: byte layout (Postgres-free)
//! - `buffer`: page guards and GenericXLog  - `meta`: meta page, quantizer pages
//! - `build`: ambuild / ambuildempty        - `graph_pages`: the graph over pages
//! - `element_graph`: the scan's hot loop over any page store (Postgres-free)
//! - `bounded`: the build within maintenance_work_mem (codes in memory, then on-page inserts)
//! - `scan`: begin/rescan/gettuple/end      - `insert`: aminsert
//! - `heap_values`: indexed values of heap rows (re-rank)
//! - `pgvector_rerank`: re-rank distances of pgvector's `vector` / `halfvec` columns
//! - `vacuum`: bulkdelete / cleanup         - `cost`: amcostestimate
//! - `stats`: scan counters               - `locks`: every locking rule
//! - `progress`: build phases and counts  - `threads`: bounded, always-joined worker threads and cancellation

// Helpers here take `pg_sys::Relation` handles that Postgres gave the access method for
// the duration of the call; they are valid by construction, so the helpers stay safe
// functions rather than marking every caller `unsafe`.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

pub mod bounded;
pub mod buffer;
pub mod buffer_hints;
pub mod build;
pub mod check;
pub mod cost;
pub mod element_graph;
pub mod graph_pages;
pub mod heap_values;
pub mod insert;
pub mod locks;
pub mod meta;
pub mod options;
pub mod pages;
pub mod pgvector_rerank;
pub mod progress;
pub mod scan;
pub mod spill;
pub mod stats;
pub mod threads;
pub mod vacuum;

use crate::pg_fn;
use pgrx::pg_sys;

/// `amvalidate`: the opclasses are created by our own script; accept them.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn amvalidate(_opclass: pg_sys::Oid) -> bool {
    true
}

pg_fn!(
    /// `qhnsw_handler(internal)`: describes the access method to Postgres.
    qhnsw_handler,
    |_fcinfo| {
        // SAFETY: a zeroed IndexAmRoutine node allocated in the current context.
        unsafe {
            let r = pg_sys::palloc0(std::mem::size_of::<pg_sys::IndexAmRoutine>()) as *mut pg_sys::IndexAmRoutine;
            (*r).type_ = pg_sys::NodeTag::T_IndexAmRoutine;
            (*r).amstrategies = 0;
            (*r).amsupport = 1;
            (*r).amoptsprocnum = 0;
            (*r).amcanorder = false;
            (*r).amcanorderbyop = true;
            (*r).amcanbackward = false;
            (*r).amcanunique = false;
            (*r).amcanmulticol = false;
            (*r).amoptionalkey = true;
            (*r).amsearcharray = false;
            (*r).amsearchnulls = false;
            (*r).amstorage = false;
            (*r).amclusterable = false;
            (*r).ampredlocks = false;
            (*r).amcanparallel = false;
            (*r).amcaninclude = false;
            (*r).amusemaintenanceworkmem = false;
            (*r).amparallelvacuumoptions = pg_sys::VACUUM_OPTION_PARALLEL_BULKDEL as u8;
            (*r).amkeytype = pg_sys::InvalidOid;
            (*r).ambuild = Some(build::ambuild);
            (*r).ambuildempty = Some(build::ambuildempty);
            (*r).aminsert = Some(insert::aminsert);
            (*r).ambulkdelete = Some(vacuum::ambulkdelete);
            (*r).amvacuumcleanup = Some(vacuum::amvacuumcleanup);
            (*r).amcanreturn = None;
            (*r).amcostestimate = Some(cost::amcostestimate);
            (*r).amoptions = Some(options::amoptions);
            (*r).amproperty = None;
            (*r).ambuildphasename = Some(progress::ambuildphasename);
            (*r).amvalidate = Some(amvalidate);
            (*r).amadjustmembers = None;
            (*r).ambeginscan = Some(scan::ambeginscan);
            (*r).amrescan = Some(scan::amrescan);
            (*r).amgettuple = Some(scan::amgettuple);
            (*r).amgetbitmap = None;
            (*r).amendscan = Some(scan::amendscan);
            (*r).ammarkpos = None;
            (*r).amrestrpos = None;
            (*r).amestimateparallelscan = None;
            (*r).aminitparallelscan = None;
            (*r).amparallelrescan = None;
            pg_sys::Datum::from(r)
        }
    }
);
