//! Index scans: greedy descent, then beam search at `qhnsw.ef_search` over codes
//! (HNSW paper Algorithm 5 with Algorithm 2 on layer 0), exact re-rank of the best
//! `qhnsw.rerank_candidates` from the heap or the in-index float16 copy, rows
//! returned lazily in exact-distance order per batch.
//!
//! When the executor asks for more rows than one beam gave (a WHERE filter, a large
//! LIMIT) and `qhnsw.iterative_scan` is on, the search resumes where it stopped
//! (the visited set and discarded candidates are kept) until `qhnsw.max_scan_tuples`
//! nodes have been visited. Rows of later batches come after earlier ones, so the
//! order is exact within a batch and relaxed across batches, as in pgvector 0.8.

use super::build::normalize;
use super::graph_pages::{shape_of, with_element, PageGraph};
use super::meta::{index_vector_type, load_quantizer, read_meta};
use super::options::{rerank_candidates, EF_SEARCH, ITERATIVE_SCAN, MAX_SCAN_TUPLES};
use super::pages::{MetaPage, RerankSource};
use crate::distance::{self, Metric};
use crate::fmgr::raise;
use crate::graph::{Candidate, ResumableSearch};
use crate::quant::Quantizer;
use crate::types::qvector::qvector_from_datum;
use crate::types::sq8::{self, Sq8Ref, Sq8Vector};
use crate::types::sq8vector::sq8vector_from_datum;
use crate::types::vector_type::VectorType;
use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode as Code;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

/// Per-scan state, owned by `scan->opaque`.
pub struct ScanState {
    meta: Option<MetaPage>,
    quantizer: Option<Arc<Quantizer>>,
    query: Option<Vec<f32>>,
    /// The ORDER BY argument's codes when the column is an sq8vector: re-ranking then
    /// computes exactly what the operator computes.
    query_sq8: Option<Sq8Vector>,
    search: Option<ResumableSearch<u32>>,
    candidates: VecDeque<Candidate<u32>>,
    ready: VecDeque<(u32, u16)>,
    exhausted: bool,
    heap_fetch: *mut pg_sys::IndexFetchTableData,
    /// Where re-ranking detoasts heap vectors; reset after every re-ranked chunk, so a
    /// scan rescanned many times (a LATERAL join) does not keep every copy until the end.
    rerank_ctx: pg_sys::MemoryContext,
    slot: *mut pg_sys::TupleTableSlot,
    /// Counters for the monitoring view.
    pub stats: ScanStats,
}

/// What one scan cost.
#[derive(Default, Clone, Copy, Debug)]
pub struct ScanStats {
    /// Rows returned.
    pub rows: u64,
    /// Quantized distances computed.
    pub distances: u64,
    /// Candidates re-ranked exactly.
    pub reranked: u64,
    /// Time spent searching and re-ranking.
    pub micros: u64,
}

impl ScanState {
    /// Forgets the current query (rescan).
    fn reset(&mut self) {
        self.query = None;
        self.query_sq8 = None;
        self.search = None;
        self.candidates.clear();
        self.ready.clear();
        self.exhausted = false;
    }

    /// Releases the heap-fetch resources.
    fn release(&mut self) {
        // SAFETY: both were created by table_index_fetch_begin / table_slot_create in this scan.
        unsafe {
            if !self.heap_fetch.is_null() {
                pg_sys::table_index_fetch_end(self.heap_fetch);
                self.heap_fetch = std::ptr::null_mut();
            }
            if !self.slot.is_null() {
                pg_sys::ExecDropSingleTupleTableSlot(self.slot);
                self.slot = std::ptr::null_mut();
            }
        }
    }
}

/// Returns the scan state of a scan descriptor.
///
/// # Safety
/// `scan` must be a qhnsw scan started by `ambeginscan`.
unsafe fn state<'a>(scan: pg_sys::IndexScanDesc) -> &'a mut ScanState {
    // SAFETY: opaque holds the Box<ScanState> leaked in ambeginscan.
    unsafe { &mut *((*scan).opaque as *mut ScanState) }
}

/// `ambeginscan`.
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn ambeginscan(
    index: pg_sys::Relation,
    nkeys: i32,
    norderbys: i32,
) -> pg_sys::IndexScanDesc {
    // SAFETY: standard scan descriptor allocation.
    let scan = unsafe { pg_sys::RelationGetIndexScan(index, nkeys, norderbys) };
    let state = Box::new(ScanState {
        meta: None,
        quantizer: None,
        query: None,
        query_sq8: None,
        search: None,
        candidates: VecDeque::new(),
        ready: VecDeque::new(),
        exhausted: false,
        heap_fetch: std::ptr::null_mut(),
        // SAFETY: a child of the scan's memory context, deleted in amendscan (or with its parent).
        rerank_ctx: unsafe {
            pg_sys::AllocSetContextCreateExtended(
                pg_sys::CurrentMemoryContext,
                c"qhnsw re-rank".as_ptr(),
                0,
                8 * 1024,
                8 * 1024 * 1024,
            )
        },
        slot: std::ptr::null_mut(),
        stats: ScanStats::default(),
    });
    // SAFETY: the box is freed in amendscan.
    unsafe { (*scan).opaque = Box::into_raw(state) as *mut std::ffi::c_void };
    scan
}

/// `amrescan`: takes the ORDER BY query vector.
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amrescan(
    scan: pg_sys::IndexScanDesc,
    _keys: pg_sys::ScanKey,
    _nkeys: i32,
    orderbys: pg_sys::ScanKey,
    norderbys: i32,
) {
    // SAFETY: scan was started by ambeginscan.
    let state = unsafe { state(scan) };
    state.reset();
    if norderbys > 0 && !orderbys.is_null() {
        // SAFETY: copy the new order-by keys into the descriptor (as other AMs do).
        unsafe {
            std::ptr::copy_nonoverlapping(orderbys, (*scan).orderByData, norderbys as usize);
        }
    }
}

/// The query of a scan: float4 elements for the graph search, and the argument's codes
/// when the column is an sq8vector.
type Query = (Vec<f32>, Option<Sq8Vector>);

/// Reads the query vector of the scan, or None for a NULL / missing ORDER BY argument.
fn query_of(scan: pg_sys::IndexScanDesc, meta: &MetaPage) -> Option<Query> {
    // SAFETY: orderByData holds numberOfOrderBys keys.
    let key = unsafe {
        if (*scan).numberOfOrderBys == 0 {
            return None;
        }
        &*(*scan).orderByData
    };
    if key.sk_flags & pg_sys::SK_ISNULL as i32 != 0 {
        return None;
    }
    // SAFETY: the ORDER BY argument of our operators has the column's type.
    let (mut query, codes) = unsafe {
        match index_vector_type((*scan).indexRelation) {
            VectorType::QVector => (qvector_from_datum(key.sk_argument).to_vec(), None),
            VectorType::Sq8Vector => {
                let v = sq8vector_from_datum(key.sk_argument);
                (v.decode(), Some(v.to_vector()))
            }
        }
    };
    if meta.dims != 0 && query.len() != meta.dims as usize {
        raise(
            Code::ERRCODE_DATA_EXCEPTION,
            format!("expected {} dimensions, not {}", meta.dims, query.len()),
        );
    }
    if meta.metric == Metric::Cosine && !normalize(&mut query) {
        let type_name = if codes.is_some() {
            "sq8vector"
        } else {
            "qvector"
        };
        raise(
            Code::ERRCODE_DATA_EXCEPTION,
            format!("cosine distance is undefined for a zero {type_name}"),
        );
    }
    Some((query, codes))
}

/// `amgettuple`: returns the next row in (per-batch exact) distance order.
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amgettuple(
    scan: pg_sys::IndexScanDesc,
    _direction: pg_sys::ScanDirection::Type,
) -> bool {
    // SAFETY: scan was started by ambeginscan.
    let state = unsafe { state(scan) };
    // SAFETY: scan descriptor fields are plain reads.
    let index = unsafe { (*scan).indexRelation };
    let started = Instant::now();
    if state.query.is_none() && !state.exhausted {
        let meta = read_meta(index);
        state.quantizer = load_quantizer(index, &meta);
        if let Some((query, codes)) = query_of(scan, &meta) {
            state.query = Some(query);
            state.query_sq8 = codes;
        }
        state.exhausted = state.query.is_none()
            || state.quantizer.is_none()
            || meta.entry_node == super::pages::INVALID_NODE;
        state.meta = Some(meta);
    }
    let found = next_tid(scan, state);
    state.stats.micros += started.elapsed().as_micros() as u64;
    match found {
        Some((block, offset)) => {
            // SAFETY: xs_heaptid is the output slot for the heap TID.
            unsafe {
                let tid = &mut (*scan).xs_heaptid;
                tid.ip_blkid.bi_hi = (block >> 16) as u16;
                tid.ip_blkid.bi_lo = (block & 0xffff) as u16;
                tid.ip_posid = offset;
                (*scan).xs_recheckorderby = false;
                (*scan).xs_recheck = false;
            }
            state.stats.rows += 1;
            super::stats::record_rows(index, 1);
            true
        }
        None => false,
    }
}

/// Produces the next heap TID, searching and re-ranking as needed.
fn next_tid(scan: pg_sys::IndexScanDesc, state: &mut ScanState) -> Option<(u32, u16)> {
    loop {
        if let Some(tid) = state.ready.pop_front() {
            return Some(tid);
        }
        if state.exhausted {
            return None;
        }
        if state.candidates.is_empty() && !search_more(scan, state) {
            state.exhausted = true;
            return None;
        }
        rerank_next_chunk(scan, state);
    }
}

/// Runs the first beam or resumes the search; false when nothing more can be found.
/// Each beam runs under the scan lock, so VACUUM frees no node while it walks (locks.rs).
fn search_more(scan: pg_sys::IndexScanDesc, state: &mut ScanState) -> bool {
    // SAFETY: plain read of the scan's relation.
    let index = unsafe { (*scan).indexRelation };
    let _scan_lock = super::locks::scan_lock(index);
    if state.search.is_none() {
        // The entry point read before the lock may have been freed since: read it again.
        let fresh = read_meta(index);
        if fresh.entry_node == super::pages::INVALID_NODE {
            return false;
        }
        state.quantizer = load_quantizer(index, &fresh);
        state.meta = Some(fresh);
    }
    let meta = state.meta.as_ref().expect("meta read");
    let Some(quantizer) = state.quantizer.clone() else {
        return false;
    };
    let query = state.query.as_ref().expect("query");
    // The beam is at least as wide as the re-ranked set, so every re-ranked candidate comes from one search.
    let ef = (EF_SEARCH.get().max(1) as usize).max(rerank_candidates(meta.quantizer));
    let mut graph = PageGraph {
        index,
        shape: shape_of(meta),
        entry: Some((meta.entry_node, meta.entry_level as usize)),
        estimator: quantizer.estimator(query, meta.code_metric()),
        quantizer: &quantizer,
        distances: 0,
        back_linked: false,
    };
    let batch = match state.search.as_mut() {
        None => {
            let mut search = ResumableSearch::start(&mut graph, ef);
            let batch = search.next_batch(&mut graph, ef);
            state.search = Some(search);
            batch
        }
        Some(search) => {
            if !ITERATIVE_SCAN.get() || search.visited_count() >= MAX_SCAN_TUPLES.get() as usize {
                return false;
            }
            search.next_batch(&mut graph, ef)
        }
    };
    state.stats.distances += graph.distances;
    super::stats::record_distances(index, graph.distances);
    if batch.is_empty() {
        return false;
    }
    state.candidates.extend(batch);
    true
}

/// Takes the next `rerank_candidates` candidates, scores them exactly, and queues them in order.
fn rerank_next_chunk(scan: pg_sys::IndexScanDesc, state: &mut ScanState) {
    let meta = state.meta.clone().expect("meta read");
    let shape = shape_of(&meta);
    // SAFETY: plain read of the scan's relation.
    let index = unsafe { (*scan).indexRelation };
    let rerank = rerank_candidates(meta.quantizer);
    let exact = rerank > 0 && meta.rerank != RerankSource::None;
    let take = if exact {
        rerank
    } else {
        state.candidates.len()
    }
    .min(state.candidates.len());
    let chunk: Vec<Candidate<u32>> = state.candidates.drain(..take).collect();
    let mut scored: Vec<(f32, (u32, u16))> = Vec::with_capacity(chunk.len());
    for candidate in chunk {
        let (deleted, tid, copy) = with_element(index, shape, candidate.id, |e| {
            (
                e.is_deleted(),
                e.heap_tid(),
                e.float16().filter(|_| exact).map(|b| b.to_vec()),
            )
        });
        if deleted {
            continue;
        }
        let distance = if !exact {
            Some(candidate.distance)
        } else if let Some(bytes) = copy {
            Some(float16_distance(
                &meta,
                state.query.as_ref().expect("query"),
                &bytes,
            ))
        } else {
            heap_distance(scan, state, &meta, tid)
        };
        if let Some(d) = distance {
            scored.push((d, tid));
        }
    }
    if exact {
        state.stats.reranked += scored.len() as u64;
        super::stats::record_reranked(index, scored.len() as u64);
    }
    // SAFETY: nothing allocated in the re-rank context outlives the chunk.
    unsafe { pg_sys::MemoryContextReset(state.rerank_ctx) };
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    state.ready.extend(scored.into_iter().map(|(_, tid)| tid));
}

/// Exact distance against the in-index float16 copy.
fn float16_distance(meta: &MetaPage, query: &[f32], bytes: &[u8]) -> f32 {
    let copy: Vec<half::f16> = bytes
        .chunks_exact(2)
        .map(|c| half::f16::from_bits(u16::from_le_bytes([c[0], c[1]])))
        .collect();
    match meta.metric {
        Metric::L2 => distance::l2_squared_f16(query, &copy),
        Metric::InnerProduct => -distance::dot_f16(query, &copy),
        Metric::Cosine => 1.0 - distance::dot_f16(query, &copy),
        Metric::L1 => {
            let copy: Vec<f32> = copy.iter().map(|x| x.to_f32()).collect();
            distance::l1(query, &copy)
        }
    }
}

/// Exact distance against the row's vector in the heap; None if the row is not visible.
fn heap_distance(
    scan: pg_sys::IndexScanDesc,
    state: &mut ScanState,
    meta: &MetaPage,
    tid: (u32, u16),
) -> Option<f32> {
    // SAFETY: heap fetch through the table AM with the scan's snapshot, as the executor does.
    unsafe {
        let heap = (*scan).heapRelation;
        let index = (*scan).indexRelation;
        let attno = *(*(*index).rd_index).indkey.values.as_ptr();
        if heap.is_null() || attno == 0 {
            return None; // expression index: no heap column to re-rank from
        }
        if state.heap_fetch.is_null() {
            state.heap_fetch = pg_sys::table_index_fetch_begin(heap);
            state.slot = pg_sys::table_slot_create(heap, std::ptr::null_mut());
        }
        let mut item = pg_sys::ItemPointerData::default();
        item.ip_blkid.bi_hi = (tid.0 >> 16) as u16;
        item.ip_blkid.bi_lo = (tid.0 & 0xffff) as u16;
        item.ip_posid = tid.1;
        let (mut call_again, mut all_dead) = (false, false);
        let found = pg_sys::table_index_fetch_tuple(
            state.heap_fetch,
            &mut item,
            (*scan).xs_snapshot,
            state.slot,
            &mut call_again,
            &mut all_dead,
        );
        if !found {
            return None;
        }
        let mut isnull = false;
        let datum = pg_sys::slot_getattr(state.slot, attno as i32, &mut isnull);
        if isnull {
            return None;
        }
        // Detoasted copies go to the re-rank context (reset after each chunk).
        let previous = pg_sys::MemoryContextSwitchTo(state.rerank_ctx);
        let d = match &state.query_sq8 {
            Some(query) => sq8_distance(meta.metric, query.as_ref(), sq8vector_from_datum(datum)),
            None => {
                let vector = qvector_from_datum(datum);
                let query = state.query.as_ref().expect("query");
                match meta.metric {
                    Metric::Cosine => distance::cosine_distance(query, vector),
                    other => distance::metric_distance(other, query, vector),
                }
            }
        };
        pg_sys::MemoryContextSwitchTo(previous);
        pg_sys::ExecClearTuple(state.slot);
        Some(d)
    }
}

/// The ordering distance between an sq8vector query and row, on codes, as the operators
/// compute it (squared for L2; a zero row under cosine sorts last).
fn sq8_distance(metric: Metric, query: Sq8Ref, row: Sq8Ref) -> f32 {
    if query.dims() != row.dims() {
        raise(
            Code::ERRCODE_DATA_EXCEPTION,
            format!("expected {} dimensions, not {}", query.dims(), row.dims()),
        );
    }
    let d = match metric {
        Metric::L2 => sq8::l2_squared(query, row),
        Metric::InnerProduct => -sq8::dot(query, row),
        Metric::Cosine => sq8::cosine_distance(query, row).unwrap_or(f64::INFINITY),
        Metric::L1 => sq8::l1(query, row),
    };
    d as f32
}

/// `amendscan`.
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amendscan(scan: pg_sys::IndexScanDesc) {
    // SAFETY: opaque holds our box; we take it back exactly once.
    unsafe {
        let ptr = (*scan).opaque as *mut ScanState;
        if !ptr.is_null() {
            let mut state = Box::from_raw(ptr);
            state.release();
            pg_sys::MemoryContextDelete(state.rerank_ctx);
            super::stats::record_scan((*scan).indexRelation, state.stats.micros);
            (*scan).opaque = std::ptr::null_mut();
        }
    }
}
