//! The indexed value of a heap row, for exact re-ranking from the heap.
//!
//! Re-ranking must score what the index holds: the value of the index's own column
//! or expression (`l2_normalize(v)`, `(r::qvector(64))`), never the raw heap column.
//! A [`HeapValues`] fetches a row through the table AM with the scan's snapshot and
//! computes the index datum with `FormIndexDatum` (an `IndexInfo` from
//! `BuildIndexInfo` and an executor state with a per-tuple expression context, all
//! created once per scan), exactly as PostgreSQL evaluates index expressions when it
//! rechecks a lossy index scan. Expression results live in the per-tuple context,
//! reset after each row.

use pgrx::pg_sys;

/// Heap fetch and index-expression evaluation state of one scan.
pub struct HeapValues {
    fetch: *mut pg_sys::IndexFetchTableData,
    slot: *mut pg_sys::TupleTableSlot,
    estate: *mut pg_sys::EState,
    info: *mut pg_sys::IndexInfo,
}

impl HeapValues {
    /// Prepares fetching from `heap` and evaluating `index`'s expressions; everything
    /// long-lived is allocated in `context` (the scan's memory context).
    pub fn new(
        heap: pg_sys::Relation,
        index: pg_sys::Relation,
        context: pg_sys::MemoryContext,
    ) -> Self {
        // SAFETY: both relations are open for the scan; the objects are allocated in the
        // scan's context and released by `end` (or with the context on error).
        unsafe {
            let previous = pg_sys::MemoryContextSwitchTo(context);
            let fetch = pg_sys::table_index_fetch_begin(heap);
            let slot = pg_sys::table_slot_create(heap, std::ptr::null_mut());
            let info = pg_sys::BuildIndexInfo(index);
            let estate = pg_sys::CreateExecutorState();
            let econtext = pg_sys::MakePerTupleExprContext(estate);
            // FormIndexDatum evaluates the expressions over this slot.
            (*econtext).ecxt_scantuple = slot;
            pg_sys::MemoryContextSwitchTo(previous);
            HeapValues {
                fetch,
                slot,
                estate,
                info,
            }
        }
    }

    /// Runs `f` on the index value of the row at `tid` visible to `snapshot`; None when
    /// the row is not visible or its value is NULL. The datum is valid only inside `f`.
    pub fn with_value<R>(
        &mut self,
        tid: (u32, u16),
        snapshot: pg_sys::Snapshot,
        f: impl FnOnce(pg_sys::Datum) -> R,
    ) -> Option<R> {
        let mut item = pg_sys::ItemPointerData::default();
        item.ip_blkid.bi_hi = (tid.0 >> 16) as u16;
        item.ip_blkid.bi_lo = (tid.0 & 0xffff) as u16;
        item.ip_posid = tid.1;
        // SAFETY: fetch/slot/estate/info were created by `new` for this heap and index;
        // the snapshot is the scan's. The slot is cleared and the per-tuple context reset
        // before returning, so no datum outlives `f`.
        unsafe {
            let (mut call_again, mut all_dead) = (false, false);
            let found = pg_sys::table_index_fetch_tuple(
                self.fetch,
                &mut item,
                snapshot,
                self.slot,
                &mut call_again,
                &mut all_dead,
            );
            if !found {
                return None;
            }
            let mut values = [pg_sys::Datum::from(0usize); pg_sys::INDEX_MAX_KEYS as usize];
            let mut nulls = [false; pg_sys::INDEX_MAX_KEYS as usize];
            pg_sys::FormIndexDatum(
                self.info,
                self.slot,
                self.estate,
                values.as_mut_ptr(),
                nulls.as_mut_ptr(),
            );
            let result = (!nulls[0]).then(|| f(values[0]));
            let econtext = (*self.estate).es_per_tuple_exprcontext;
            pg_sys::MemoryContextReset((*econtext).ecxt_per_tuple_memory);
            pg_sys::ExecClearTuple(self.slot);
            result
        }
    }

    /// Releases the fetch, the slot and the executor state.
    pub fn end(self) {
        // SAFETY: created in `new`, released exactly once (self is consumed).
        unsafe {
            pg_sys::FreeExecutorState(self.estate);
            pg_sys::table_index_fetch_end(self.fetch);
            pg_sys::ExecDropSingleTupleTableSlot(self.slot);
        }
    }
}
