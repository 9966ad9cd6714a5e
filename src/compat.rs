//! PostgreSQL major-version shims (issue 18): the only place that knows how the server
//! APIs the extension calls differ between the supported majors (15 and 18; 16 and 17
//! compile through the same branches). Each helper behaves the same on every major.
//!
//! - 16 renamed `RelFileNode` (`rd_node`) to `RelFileLocator` (`rd_locator`) and replaced
//!   `pg_class_ownercheck` by `object_ownercheck`.
//! - 18 stores the attributes of a `TupleDesc` after its `compact_attrs` (`TupleDescAttr`).
//! - 18 added `isset_offset` to `relopt_parse_elt`, an `is_analyze` flag to
//!   `vacuum_delay_point` and an instrumentation pointer to `index_beginscan`.
//!
//! `IndexAmRoutine` gained fields in 16-18 (`amcanbuildparallel`, `amconsistentequality`,
//! `amtranslatestrategy`, ...): the handler zero-allocates it, so they stay false/NULL.

// Helpers here take relation and tuple-descriptor handles that Postgres gave the caller
// for the duration of the call; like src/am's helpers they stay safe functions.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use pgrx::pg_sys;

/// The (database, relation file) pair identifying `rel`'s current relation file.
pub fn relation_file_id(rel: pg_sys::Relation) -> (u32, u32) {
    // SAFETY: callers pass an open relation, whose relcache entry is valid.
    unsafe {
        #[cfg(feature = "pg15")]
        let ids = ((*rel).rd_node.dbNode, (*rel).rd_node.relNode);
        #[cfg(not(feature = "pg15"))]
        let ids = ((*rel).rd_locator.dbOid, (*rel).rd_locator.relNumber);
        (ids.0.to_u32(), ids.1.to_u32())
    }
}

/// Pins `buffer` if it still holds block `block` of `rel`'s main fork (PostgreSQL's
/// `ReadRecentBuffer`: no buffer-table lookup); false if it holds something else now.
pub fn read_recent_buffer(rel: pg_sys::Relation, block: u32, buffer: pg_sys::Buffer) -> bool {
    // SAFETY: callers pass an open relation and a shared buffer number the buffer manager
    // gave this backend earlier (so inside 1..=NBuffers); ReadRecentBuffer checks the
    // buffer's tag under its header lock before pinning.
    unsafe {
        #[cfg(feature = "pg15")]
        let file = (*rel).rd_node;
        #[cfg(not(feature = "pg15"))]
        let file = (*rel).rd_locator;
        pg_sys::ReadRecentBuffer(file, pg_sys::ForkNumber::MAIN_FORKNUM, block, buffer)
    }
}

/// True when `user` owns (or has the privileges of the owner of) relation `oid`
/// (16 replaced `pg_class_ownercheck` by `object_ownercheck`).
pub fn relation_ownercheck(oid: pg_sys::Oid, user: pg_sys::Oid) -> bool {
    // SAFETY: plain catalog lookups.
    unsafe {
        #[cfg(feature = "pg15")]
        {
            pg_sys::pg_class_ownercheck(oid, user)
        }
        #[cfg(not(feature = "pg15"))]
        {
            pg_sys::object_ownercheck(pg_sys::RelationRelationId, oid, user)
        }
    }
}

/// The typmod of attribute `i` (0-based) of `desc`.
pub fn attribute_typmod(desc: pg_sys::TupleDesc, i: usize) -> i32 {
    // SAFETY: callers pass a valid tuple descriptor with more than `i` attributes.
    unsafe {
        assert!(i < (*desc).natts as usize, "attribute {i} out of range");
        #[cfg(not(feature = "pg18"))]
        let attr = &(*desc).attrs.as_slice((*desc).natts as usize)[i];
        #[cfg(feature = "pg18")]
        let attr = &*pg_sys::TupleDescAttr(desc, i as i32);
        attr.atttypmod
    }
}

/// A `relopt_parse_elt` for `parseRelOptions`: option `name` of `kind` stored at `offset`.
pub fn relopt_entry(
    name: &'static std::ffi::CStr,
    kind: pg_sys::relopt_type::Type,
    offset: usize,
) -> pg_sys::relopt_parse_elt {
    pg_sys::relopt_parse_elt {
        optname: name.as_ptr(),
        opttype: kind,
        offset: offset as i32,
        // 0: Postgres does not record whether the option was given.
        #[cfg(feature = "pg18")]
        isset_offset: 0,
    }
}

/// `vacuum_delay_point()` of a VACUUM (not ANALYZE): sleeps for cost-based delay, checks interrupts.
pub fn vacuum_delay_point() {
    // SAFETY: only sleeps and checks for interrupts; valid in any backend.
    unsafe {
        #[cfg(not(feature = "pg18"))]
        pg_sys::vacuum_delay_point();
        #[cfg(feature = "pg18")]
        pg_sys::vacuum_delay_point(false);
    }
}

/// `index_beginscan` without instrumentation.
///
/// # Safety
/// As `index_beginscan`: `heap` and `index` open and locked, `snapshot` registered or active.
#[cfg(not(feature = "pg18"))]
pub unsafe fn index_beginscan(
    heap: pg_sys::Relation,
    index: pg_sys::Relation,
    snapshot: pg_sys::Snapshot,
    nkeys: i32,
    norderbys: i32,
) -> pg_sys::IndexScanDesc {
    // SAFETY: the caller's contract is index_beginscan's.
    unsafe { pg_sys::index_beginscan(heap, index, snapshot, nkeys, norderbys) }
}

/// `index_beginscan` without instrumentation (18 added the instrumentation argument).
///
/// # Safety
/// As `index_beginscan`: `heap` and `index` open and locked, `snapshot` registered or active.
#[cfg(feature = "pg18")]
pub unsafe fn index_beginscan(
    heap: pg_sys::Relation,
    index: pg_sys::Relation,
    snapshot: pg_sys::Snapshot,
    nkeys: i32,
    norderbys: i32,
) -> pg_sys::IndexScanDesc {
    let no_instrumentation = std::ptr::null_mut();
    // SAFETY: the caller's contract is index_beginscan's; NULL instrumentation means none.
    unsafe { pg_sys::index_beginscan(heap, index, snapshot, no_instrumentation, nkeys, norderbys) }
}
