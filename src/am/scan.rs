//! Index scans: greedy descent, then beam search at `qhnsw.ef_search` over codes
//! (HNSW paper Algorithm 5 with Algorithm 2 on layer 0), exact re-rank of the best
//! `qhnsw.rerank_candidates` (auto: scaled down with an ef_search below 40) from the
//! heap or the in-index float16 copy, rows returned lazily in exact-distance order per
//! batch.
//!
//! When the executor asks for more rows than one beam gave (a WHERE filter, a large
//! LIMIT) and `qhnsw.iterative_scan` is not `off`, the search resumes where it stopped
//! (the visited set and discarded candidates are kept) until `qhnsw.max_scan_tuples`
//! nodes have been visited or the search state outgrows `work_mem ×
//! qhnsw.scan_mem_multiplier`; then the nodes already seen are handed out, nearest
//! first, and the scan ends (pgvector 0.8's definition). `relaxed_order`: rows of later
//! batches come after earlier ones, so the order is exact within a batch and relaxed
//! across batches. `strict_order`: a re-ranked row is held back until a later chunk's
//! nearest row is no nearer and nothing left to score (candidates, the search's
//! unreturned pool and frontier) has a nearer estimate (Algorithm 2's stopping rule),
//! and a row closer than one already returned is dropped, so distances never decrease.
//!
//! Heap re-ranking scores the index's own value of a row (its expression, see
//! `heap_values`). Float4 codes (quantizer `none`) of a qvector column under L2, inner
//! product or L1 are the values themselves and their estimates are what the re-rank would
//! compute, so they are returned without re-ranking (`ScanState::estimates_exact`). A
//! NULL query orders nothing: rows come back in search order without re-ranking
//! (pgvector returns them too, in unspecified order).

use super::build::normalize;
use super::graph_pages::{shape_of, with_element, PageGraph};
use super::heap_values::HeapValues;
use super::meta::{index_vector_type, load_quantizer, read_meta};
use super::options::{
    rerank_candidates_at, scan_memory_limit, IterativeScan, EF_SEARCH, ITERATIVE_SCAN,
    MAX_SCAN_TUPLES,
};
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
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};
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
    /// The ORDER BY argument is NULL: `query` is zeros, nothing is re-ranked.
    null_query: bool,
    /// The column is pgvector's `vector` / `halfvec`: heap re-ranking calls pgvector's
    /// distance function on the datums (`pgvector_rerank`).
    pgvector: bool,
    /// `qhnsw.iterative_scan` when the query started.
    mode: IterativeScan,
    search: Option<ResumableSearch<u32>>,
    candidates: VecDeque<Candidate<u32>>,
    ready: VecDeque<(u32, u16)>,
    /// strict_order: scored rows not yet returned, nearest first.
    pending: BinaryHeap<Reverse<Pending>>,
    /// The scan may visit no more nodes: it hands out the ones it has seen.
    draining: bool,
    /// strict_order: chunks scored so far, the nearest distance in the latest chunk
    /// that had a row, and the distance of the last row returned.
    chunks: u64,
    latest_min: f32,
    last_distance: f32,
    exhausted: bool,
    /// Heap fetch and index-expression state, created on the first heap re-rank.
    heap: Option<HeapValues>,
    /// The scan's memory context (where `heap` lives).
    scan_ctx: pg_sys::MemoryContext,
    /// Where re-ranking detoasts heap vectors; reset after every re-ranked chunk, so a
    /// scan rescanned many times (a LATERAL join) does not keep every copy until the end.
    rerank_ctx: pg_sys::MemoryContext,
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

/// A scored row waiting in strict_order, with the chunk it was scored in.
#[derive(Clone, Copy, Debug)]
struct Pending {
    distance: f32,
    chunk: u64,
    tid: (u32, u16),
}

impl Ord for Pending {
    /// Orders by distance (`total_cmp`), then chunk, then TID.
    fn cmp(&self, other: &Self) -> Ordering {
        self.distance
            .total_cmp(&other.distance)
            .then(self.chunk.cmp(&other.chunk))
            .then(self.tid.cmp(&other.tid))
    }
}

impl PartialOrd for Pending {
    /// Same as `cmp`.
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Pending {
    /// Equal under `cmp`.
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pending {}

impl ScanState {
    /// Forgets the current query (rescan).
    fn reset(&mut self) {
        self.query = None;
        self.query_sq8 = None;
        self.null_query = false;
        self.pgvector = false;
        self.search = None;
        self.candidates.clear();
        self.ready.clear();
        self.pending.clear();
        self.draining = false;
        self.chunks = 0;
        self.latest_min = f32::NEG_INFINITY;
        self.last_distance = f32::NEG_INFINITY;
        self.exhausted = false;
    }

    /// Releases the heap-fetch resources.
    fn release(&mut self) {
        if let Some(heap) = self.heap.take() {
            heap.end();
        }
    }

    /// Whether candidates are re-ranked from exact values: not for a NULL query, an
    /// index with `rerank = none`, or when the estimates already are the re-rank's values.
    fn reranks(&self, meta: &MetaPage) -> bool {
        meta.rerank != RerankSource::None && !self.null_query && !self.estimates_exact(meta)
    }

    /// True when a candidate's estimate is bit for bit the distance a heap re-rank would
    /// compute: float4 codes of a qvector column (the same values, the same
    /// `metric_distance`) under L2, inner product or L1, ranked by that metric itself.
    /// Not under cosine (codes are normalised, the re-rank uses the row), nor on a unit-norm
    /// inner-product index (ranked by L2), nor over pgvector's or sq8vector's columns
    /// (their own distance functions).
    fn estimates_exact(&self, meta: &MetaPage) -> bool {
        self.quantizer.as_ref().is_some_and(|q| q.exact_codes())
            && !self.pgvector
            && self.query_sq8.is_none()
            && meta.metric != Metric::Cosine
            && meta.code_metric() == meta.metric
    }

    /// Whether rows are held back and filtered for strict_order.
    fn strict(&self) -> bool {
        self.mode == IterativeScan::StrictOrder && !self.null_query
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
        null_query: false,
        pgvector: false,
        mode: IterativeScan::RelaxedOrder,
        search: None,
        candidates: VecDeque::new(),
        ready: VecDeque::new(),
        pending: BinaryHeap::new(),
        draining: false,
        chunks: 0,
        latest_min: f32::NEG_INFINITY,
        last_distance: f32::NEG_INFINITY,
        exhausted: false,
        heap: None,
        // SAFETY: reading the current context pointer.
        scan_ctx: unsafe { pg_sys::CurrentMemoryContext },
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

/// The ORDER BY argument of a scan.
enum QueryArg {
    /// No ORDER BY key: nothing to search for.
    Missing,
    /// A NULL argument: every row is as near as any other.
    Null,
    /// A vector.
    Vector(Query),
}

/// Reads the query vector of the scan (a value of `vector_type`, the column's type).
fn query_of(scan: pg_sys::IndexScanDesc, meta: &MetaPage, vector_type: VectorType) -> QueryArg {
    // SAFETY: orderByData holds numberOfOrderBys keys.
    let key = unsafe {
        if (*scan).numberOfOrderBys == 0 {
            return QueryArg::Missing;
        }
        &*(*scan).orderByData
    };
    if key.sk_flags & pg_sys::SK_ISNULL as i32 != 0 {
        return QueryArg::Null;
    }
    // SAFETY: the ORDER BY argument of our operators has the column's type.
    let (mut query, codes) = unsafe {
        match vector_type {
            VectorType::QVector => (qvector_from_datum(key.sk_argument).to_vec(), None),
            VectorType::Sq8Vector => {
                let v = sq8vector_from_datum(key.sk_argument);
                (v.decode(), Some(v.to_vector()))
            }
            VectorType::PgVector | VectorType::PgHalfvec => {
                (vector_type.read(key.sk_argument).into_owned(), None)
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
        if vector_type.is_pgvector() {
            // pgvector's cosine distance to a zero vector is NaN for every row: any order
            // is its order, as for a NULL query.
            return QueryArg::Null;
        }
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
    QueryArg::Vector((query, codes))
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
        state.mode = ITERATIVE_SCAN.get();
        let vector_type = index_vector_type(index);
        state.pgvector = vector_type.is_pgvector();
        match query_of(scan, &meta, vector_type) {
            QueryArg::Vector((query, codes)) => {
                state.query = Some(query);
                state.query_sq8 = codes;
            }
            QueryArg::Null => {
                // Any finite estimate will do: the order is unspecified.
                state.query = Some(vec![0.0; meta.dims as usize]);
                state.null_query = true;
            }
            QueryArg::Missing => {}
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
        if let Some(tid) = next_strict(state) {
            return Some(tid);
        }
        if state.exhausted {
            return None;
        }
        if state.candidates.is_empty() && !search_more(scan, state) {
            state.exhausted = true;
            continue; // strict_order: flush the held-back rows
        }
        rerank_next_chunk(scan, state);
    }
}

/// strict_order: the nearest held-back row once the search has moved past it (a later
/// chunk's nearest row is no nearer, and nothing still to be scored, i.e. the unscored
/// candidates, the unreturned pool and, while the search may expand, its frontier, is
/// estimated nearer), or once nothing more will come; rows nearer than the last one
/// returned are dropped.
fn next_strict(state: &mut ScanState) -> Option<(u32, u16)> {
    while let Some(Reverse(top)) = state.pending.peek().copied() {
        let settled = top.chunk + 1 < state.chunks
            && state.latest_min >= top.distance
            && nearest_unscored(state) >= top.distance;
        if !settled && !state.exhausted {
            return None; // score more first: a nearer row may still come
        }
        state.pending.pop();
        if top.distance < state.last_distance {
            continue;
        }
        state.last_distance = top.distance;
        return Some(top.tid);
    }
    None
}

/// Estimated distance of the nearest row not scored yet (infinity: none).
fn nearest_unscored(state: &ScanState) -> f32 {
    let mut nearest = state
        .candidates
        .iter()
        .map(|c| c.distance)
        .fold(f32::INFINITY, f32::min);
    if let Some(search) = &state.search {
        if let Some(d) = search.unreturned_min() {
            nearest = nearest.min(d);
        }
        if !state.draining && state.mode != IterativeScan::Off {
            if let Some(d) = search.frontier_min() {
                nearest = nearest.min(d);
            }
        }
    }
    nearest
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
    // The beam is at least as wide as the re-ranked set, so every re-ranked candidate
    // comes from one search; with auto re-ranking a lower ef_search narrows both.
    let ef_search = EF_SEARCH.get().max(1) as usize;
    let ef = if state.reranks(meta) {
        ef_search.max(rerank_candidates_at(meta.quantizer, ef_search))
    } else {
        ef_search
    };
    let mut graph = PageGraph::new(
        index,
        shape_of(meta),
        Some((meta.entry_node, meta.entry_level as usize)),
        quantizer.estimator(query, meta.code_metric()),
        &quantizer,
    );
    let batch = match state.search.as_mut() {
        None => {
            let mut search = ResumableSearch::start(&mut graph, ef);
            let batch = search.next_batch(&mut graph, ef);
            state.search = Some(search);
            batch
        }
        Some(search) => {
            if state.mode == IterativeScan::Off {
                return false;
            }
            if search.visited_count() >= MAX_SCAN_TUPLES.get().max(0) as usize
                || search.memory_bytes() > scan_memory_limit()
            {
                // Visit nothing more; hand out the nodes already seen, nearest first.
                state.draining = true;
                search.take_unreturned(ef)
            } else {
                search.next_batch(&mut graph, ef)
            }
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
    let rerank = rerank_candidates_at(meta.quantizer, EF_SEARCH.get().max(1) as usize);
    let exact = rerank > 0 && state.reranks(&meta);
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
    if let Some(&(nearest, _)) = scored.first() {
        state.latest_min = nearest;
    }
    if state.strict() {
        let chunk = state.chunks;
        state
            .pending
            .extend(scored.into_iter().map(|(distance, tid)| {
                Reverse(Pending {
                    distance,
                    chunk,
                    tid,
                })
            }));
    } else {
        state.ready.extend(scored.into_iter().map(|(_, tid)| tid));
    }
    state.chunks += 1;
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

/// Exact distance against the index's value of the heap row (the indexed column or
/// expression computed from it); None if the row is not visible or the value is NULL.
fn heap_distance(
    scan: pg_sys::IndexScanDesc,
    state: &mut ScanState,
    meta: &MetaPage,
    tid: (u32, u16),
) -> Option<f32> {
    // SAFETY: plain reads of the scan descriptor.
    let (heap, index, snapshot) = unsafe {
        (
            (*scan).heapRelation,
            (*scan).indexRelation,
            (*scan).xs_snapshot,
        )
    };
    if heap.is_null() {
        return None;
    }
    let scan_ctx = state.scan_ctx;
    let values = state
        .heap
        .get_or_insert_with(|| HeapValues::new(heap, index, scan_ctx));
    let (rerank_ctx, query, query_sq8) = (state.rerank_ctx, &state.query, &state.query_sq8);
    // SAFETY: a non-NULL query (null queries are not re-ranked) in the ORDER BY key.
    let pgvector_query = state
        .pgvector
        .then(|| unsafe { (*(*scan).orderByData).sk_argument });
    values.with_value(tid, snapshot, |datum| {
        // Detoasted copies go to the re-rank context (reset after each chunk).
        // SAFETY: the re-rank context lives as long as the scan; the datum is the
        // index's value, of the opclass's type.
        unsafe {
            let previous = pg_sys::MemoryContextSwitchTo(rerank_ctx);
            let d = match (pgvector_query, query_sq8) {
                (Some(query), _) => super::pgvector_rerank::support_distance(index, query, datum),
                (None, Some(query)) => {
                    sq8_distance(meta.metric, query.as_ref(), sq8vector_from_datum(datum))
                }
                (None, None) => {
                    let vector = qvector_from_datum(datum);
                    let query = query.as_ref().expect("query");
                    match meta.metric {
                        Metric::Cosine => distance::cosine_distance(query, vector),
                        other => distance::metric_distance(other, query, vector),
                    }
                }
            };
            pg_sys::MemoryContextSwitchTo(previous);
            d
        }
    })
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
