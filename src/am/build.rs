//! `ambuild` / `ambuildempty`: check the options against the column's dimensions, read
//! the heap, train the quantizer on a bounded seeded sample, encode every row, build the
//! HNSW graph in memory, then write meta, quantizer and packed graph pages and WAL-log
//! them in one pass at the end (like pgvector's in-memory build). When the rows do not fit
//! maintenance_work_mem as float4, the heap scan keeps a training sample only and the
//! memory-bounded build of `bounded.rs` takes over (codes in memory, then on-page inserts).
//!
//! Training, encoding and linking run on `max_parallel_maintenance_workers` threads
//! ([`Workers`]; none: the backend thread alone), which never call Postgres and stop within
//! a node of a cancel; the backend thread reports progress to
//! `pg_stat_progress_create_index` ([`Progress`]) meanwhile. A rebuild inside INSERT
//! (staging conversion) runs on the backend thread only.

use super::bounded::{build_bounded, BoundedBuild, Budget, Reservoir};
use super::buffer::{add_item, block_count, init_page, PageWrite};
use super::meta::{index_metric, index_opclass, relation_name, META_BLOCK};
use super::options::{dims_problem, index_options, QhnswOptions};
use super::pages::{
    node_id, set_neighbors, write_element, ElementShape, MetaPage, PageKind, RerankSource,
    INVALID_NODE, MAX_LEVEL, META_BYTES,
};
use super::progress::{Phase, Progress};
use super::threads::{maintenance_workers, notice, Stop, Workers};
use crate::distance::{self, Metric};
use crate::fmgr::{raise, raise_hint};
use crate::graph::{locality_order, HnswParams, InMemoryGraph, NodeDistance};
use crate::quant::{FlatQuantizer, HalfQuantizer, Quantizer, QuantizerConfig, QuantizerKind};
use crate::types::vector_type::VectorType;
use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode as Code;
use rand::seq::index::sample;
use rand::SeedableRng;
use rayon::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most rows the quantizer is trained on.
pub const TRAINING_SAMPLE_ROWS: usize = 25_000;
/// Seed of every random choice in a build (sampling, training, levels).
pub const BUILD_SEED: u64 = 0x5148_4E57;
/// Rows encoded between two stop checks.
const ENCODE_CHUNK: usize = 1024;
/// Rows read between two progress reports of the heap scan.
const LOAD_REPORT_ROWS: usize = 256;

/// Rows to index: heap TIDs and their vectors (normalised for cosine).
pub struct Collected {
    /// Dimensions.
    pub dims: usize,
    /// Metric of the index.
    pub metric: Metric,
    /// SQL type of the indexed column.
    pub vector_type: VectorType,
    /// Heap TIDs.
    pub tids: Vec<(u32, u16)>,
    /// Row-major vectors.
    pub data: Vec<f32>,
    /// Zero vectors skipped under cosine.
    pub skipped_zero: usize,
}

/// What the heap-scan callback fills: the rows, and where it reports progress.
struct ScanState {
    rows: Collected,
    progress: Progress,
    /// The build's memory budget.
    budget: Budget,
    /// Code bytes per row of the configured quantizer (sq8's for 'auto'), once dims are known.
    code_len: Option<usize>,
    /// Most rows kept as float4 (set with the dimensions).
    limit: usize,
    /// Past `limit`: the memory-bounded build's training sample (the rows are dropped).
    sample: Option<Reservoir>,
    /// Reset after each tuple ([`tuple_context`]).
    context: pg_sys::MemoryContext,
}

/// A memory context for what one heap tuple allocates (its detoasted value above all),
/// reset after each tuple: the heap scan calls back in the build's long-lived context, where
/// a TOASTed or compressed value (rows past ~2 kB) would otherwise stay allocated for the
/// whole build. Freed with its parent (the build's context).
pub fn tuple_context() -> pg_sys::MemoryContext {
    // SAFETY: a child of the current (build) memory context.
    unsafe {
        pg_sys::AllocSetContextCreateExtended(
            pg_sys::CurrentMemoryContext,
            c"qhnsw build tuple".as_ptr(),
            0,
            8 * 1024,
            8 * 1024 * 1024,
        )
    }
}

/// Runs `f` in `context`, then switches back and resets `context`.
pub fn in_tuple_context<R>(context: pg_sys::MemoryContext, f: impl FnOnce() -> R) -> R {
    // SAFETY: context is a live memory context made by tuple_context for this build.
    let previous = unsafe { pg_sys::MemoryContextSwitchTo(context) };
    let result = f();
    // SAFETY: as above; nothing allocated in it is used after the reset.
    unsafe {
        pg_sys::MemoryContextSwitchTo(previous);
        pg_sys::MemoryContextReset(context);
    }
    result
}

/// Heap-scan callback: copies each non-NULL vector (normalised for cosine).
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn collect_row(
    _index: pg_sys::Relation,
    tid: pg_sys::ItemPointer,
    values: *mut pg_sys::Datum,
    isnull: *mut bool,
    _alive: bool,
    state: *mut std::ffi::c_void,
) {
    // SAFETY: state is the &mut ScanState passed to table_index_build_scan.
    let context = unsafe { (*(state as *mut ScanState)).context };
    // SAFETY: the arguments are the callback's own, valid for this call.
    in_tuple_context(context, || unsafe {
        collect_one(tid, values, isnull, state)
    });
}

/// [`collect_row`]'s work for one tuple.
///
/// # Safety
/// The heap-scan callback's arguments: `state` is the &mut ScanState, one column.
unsafe fn collect_one(
    tid: pg_sys::ItemPointer,
    values: *mut pg_sys::Datum,
    isnull: *mut bool,
    state: *mut std::ffi::c_void,
) {
    // SAFETY: state is the &mut ScanState passed to table_index_build_scan; values/isnull have one column.
    let (scan, value) = unsafe {
        if *isnull {
            return;
        }
        let scan = &mut *(state as *mut ScanState);
        let value = scan.rows.vector_type.read(*values);
        (scan, value)
    };
    let state = &mut scan.rows;
    if state.dims == 0 {
        state.dims = value.len();
    }
    check_row_dims(state.dims, value.len());
    if scan.limit == 0 {
        let code_len = scan.code_len.unwrap_or(state.dims);
        scan.limit = scan.budget.float_rows(state.dims, code_len).max(1);
    }
    // SAFETY: tid points to a valid ItemPointerData.
    let tid = unsafe { item_pointer(&*tid) };
    let start = state.data.len();
    state.data.extend_from_slice(&value);
    if state.metric == Metric::Cosine && !normalize(&mut state.data[start..]) {
        state.data.truncate(start);
        state.skipped_zero += 1;
        return;
    }
    if let Some(sample) = &mut scan.sample {
        sample.offer(&state.data[start..]);
        state.data.truncate(start);
        if sample.seen.is_multiple_of(LOAD_REPORT_ROWS) {
            scan.progress.done(sample.seen);
        }
        return;
    }
    state.tids.push(tid);
    if state.tids.len() > scan.limit {
        // Too many rows for an in-memory build: keep a training sample only.
        let data = std::mem::take(&mut state.data);
        let capacity = scan.budget.sample_rows(state.dims);
        scan.sample = Some(Reservoir::from_rows(data, state.dims, capacity));
        state.tids = Vec::new();
    }
    if state.tids.len().is_multiple_of(LOAD_REPORT_ROWS) {
        scan.progress.done(state.tids.len());
    }
}

/// ERRORs when a row's dimensions differ from the index's.
pub fn check_row_dims(expected: usize, got: usize) {
    if expected != got {
        raise(
            Code::ERRCODE_DATA_EXCEPTION,
            format!("expected {expected} dimensions, not {got}"),
        );
    }
}

/// Splits an ItemPointer into (block, offset).
pub fn item_pointer(tid: &pg_sys::ItemPointerData) -> (u32, u16) {
    let block = ((tid.ip_blkid.bi_hi as u32) << 16) | tid.ip_blkid.bi_lo as u32;
    (block, tid.ip_posid)
}

/// True if a vector has unit length (within float4 rounding of normalised embeddings).
pub fn is_unit(v: &[f32]) -> bool {
    (distance::norm_squared(v) - 1.0).abs() <= 2e-3
}

/// Scales a vector to unit length; false for a zero vector.
pub fn normalize(v: &mut [f32]) -> bool {
    distance::normalize(v)
}

/// The typmod (dimensions) of the indexed column, or 0 when unconstrained.
fn column_dims(index: pg_sys::Relation) -> usize {
    // SAFETY: an open index relation has a tuple descriptor (one attribute here).
    let typmod = crate::compat::attribute_typmod(unsafe { (*index).rd_att }, 0);
    typmod.max(0) as usize
}

/// ERRORs (22023, 54000) unless an index with `opts` can hold `dims`-dimensional rows:
/// run at CREATE INDEX (and, for an unconstrained column, at the first row), never later.
pub fn check_options_fit(opts: &QhnswOptions, dims: usize) {
    if let Some(problem) = dims_problem(opts, dims) {
        raise(
            Code::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("cannot train the quantizer: {problem}"),
        );
    }
    if let Some(kind) = opts.quantizer {
        let code_len = options_config(opts, kind).code_len(dims);
        check_element_fits(
            options_shape(opts, dims, code_len),
            &format!("{dims} dimensions with quantizer '{}'", kind.name()),
        );
    }
}

/// The training configuration the options ask for, for a fixed quantizer kind.
fn options_config(opts: &QhnswOptions, kind: QuantizerKind) -> QuantizerConfig {
    QuantizerConfig {
        kind,
        pq_subvectors: opts.pq_subvectors,
        pq_bits: opts.pq_bits,
        ..QuantizerConfig::default()
    }
}

/// Trains the quantizer of a staged index that reached its first batch (inside INSERT,
/// on the backend thread alone). Options changed by ALTER INDEX since the index checked
/// them may no longer fit the dimensions: the INSERT must not fail for that, so such a
/// value falls back to its default, with a WARNING.
pub fn train_quantizer(
    opts: &QhnswOptions,
    dims: usize,
    data: &[f32],
    metric: Metric,
) -> (Quantizer, Option<String>) {
    let mut opts = opts.clone();
    if let Some(problem) = dims_problem(&opts, dims) {
        notice(|| {
            pgrx::pg_sys::panic::ErrorReport::new(
                Code::ERRCODE_WARNING,
                format!("qhnsw options no longer fit the index: {problem}"),
                "qhnsw_build",
            )
            .set_detail("The staged rows are converted with the default pq_subvectors.")
            .set_hint("Set a valid pq_subvectors with ALTER INDEX and REINDEX to use it.")
            .report(pgrx::pg_sys::elog::PgLogLevel::WARNING)
        });
        opts.pq_subvectors = 0;
    }
    train_with(&opts, dims, data, metric, &Workers::none(), Progress::off())
}

/// Trains on `workers` (see [`train_rows`]), raising its error on the backend thread.
pub(super) fn train_with(
    opts: &QhnswOptions,
    dims: usize,
    data: &[f32],
    metric: Metric,
    workers: &Workers,
    progress: Progress,
) -> (Quantizer, Option<String>) {
    progress.phase(Phase::Training, 0);
    workers
        .run(&|| {}, |_stop| train_rows(opts, dims, data, metric))
        .unwrap_or_else(|e| {
            raise(
                Code::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("cannot train the quantizer: {e}"),
            )
        })
}

/// Trains the index's quantizer on a seeded sample of the rows (plain Rust). With
/// `quantizer = 'auto'` the candidates are evaluated on the sample first and the smallest
/// meeting `quality_threshold` is trained; the returned text says which and why.
fn train_rows(
    opts: &QhnswOptions,
    dims: usize,
    data: &[f32],
    metric: Metric,
) -> Result<(Quantizer, Option<String>), String> {
    let rows = data.len() / dims;
    let sample_rows: Vec<usize> = if rows <= TRAINING_SAMPLE_ROWS {
        (0..rows).collect()
    } else {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(BUILD_SEED);
        let mut picked = sample(&mut rng, rows, TRAINING_SAMPLE_ROWS).into_vec();
        picked.sort_unstable();
        picked
    };
    let mut sample_data = Vec::with_capacity(sample_rows.len() * dims);
    for r in sample_rows {
        sample_data.extend_from_slice(&data[r * dims..(r + 1) * dims]);
    }
    let (config, reason) = match opts.quantizer {
        Some(kind) => (options_config(opts, kind), None),
        None => {
            let (config, reports) = crate::quant::auto::choose_for_build(
                dims,
                &sample_data,
                metric,
                opts.quality_threshold,
            );
            (
                config,
                Some(crate::quant::auto::explain(
                    &reports,
                    opts.quality_threshold,
                )),
            )
        }
    };
    let config = QuantizerConfig {
        seed: BUILD_SEED,
        ..config
    };
    let quantizer = Quantizer::train(&config, dims, &sample_data).map_err(|e| e.to_string())?;
    Ok((quantizer, reason))
}

/// Builds the graph of `n` nodes on `workers` with the symmetric construction `distance`,
/// reporting linked nodes to progress and by NOTICE every 10 s.
fn build_graph(
    n: usize,
    distance: &dyn NodeDistance,
    params: HnswParams,
    workers: &Workers,
    progress: Progress,
) -> InMemoryGraph {
    progress.phase(Phase::Linking, n);
    let done = AtomicUsize::new(0);
    let started = Instant::now();
    let last_notice = Mutex::new(Instant::now());
    let tick = || {
        let linked = done.load(Ordering::Relaxed);
        progress.done(linked);
        let mut last = last_notice.lock().unwrap_or_else(|e| e.into_inner());
        if last.elapsed() >= Duration::from_secs(10) {
            *last = Instant::now();
            notice(|| {
                pgrx::notice!(
                    "qhnsw build: {linked} of {n} nodes linked after {:.0} s",
                    started.elapsed().as_secs_f64()
                )
            });
        }
    };
    let graph = workers.run(&tick, |stop| {
        InMemoryGraph::build_until(
            n,
            params,
            BUILD_SEED,
            distance,
            |count| done.store(count, Ordering::Relaxed),
            || stop.stopped(),
        )
    });
    graph.unwrap_or_else(|| {
        raise(
            Code::ERRCODE_QUERY_CANCELED,
            "canceling statement due to user request",
        )
    })
}

/// Encodes every row on `workers` (checking `stop` per chunk); also says whether all rows have unit length.
fn encode_rows(
    quantizer: &Quantizer,
    data: &[f32],
    dims: usize,
    stop: &Stop,
    done: &AtomicUsize,
) -> (Vec<u8>, bool) {
    let code_len = quantizer.code_len();
    let mut codes = vec![0u8; data.len() / dims * code_len];
    codes
        .par_chunks_mut(ENCODE_CHUNK * code_len)
        .zip(data.par_chunks(ENCODE_CHUNK * dims))
        .for_each(|(out, rows)| {
            if stop.stopped() {
                return;
            }
            for (code, row) in out.chunks_exact_mut(code_len).zip(rows.chunks_exact(dims)) {
                quantizer.encode(row, code);
            }
            done.fetch_add(rows.len() / dims, Ordering::Relaxed);
        });
    let unit_norm = data
        .par_chunks(ENCODE_CHUNK * dims)
        .all(|rows| !stop.stopped() && rows.chunks_exact(dims).all(is_unit));
    (codes, unit_norm)
}

/// Where each node goes: (block, offset) per node, the nodes in page order, and each
/// graph page's range of that order.
struct Placement {
    location: Vec<(u32, u16)>,
    order: Vec<u32>,
    pages: Vec<std::ops::Range<usize>>,
}

/// Usable bytes of a graph page.
fn page_capacity() -> usize {
    pg_sys::BLCKSZ as usize
        - std::mem::size_of::<pg_sys::PageHeaderData>()
        - super::buffer::SPECIAL_BYTES
}

/// Element shape of an index built with `opts` for `dims` dimensions and `code_len`-byte codes.
fn options_shape(opts: &QhnswOptions, dims: usize, code_len: usize) -> ElementShape {
    ElementShape {
        m: opts.m,
        code_len,
        dims,
        float16_copy: opts.rerank == RerankSource::Float16,
    }
}

/// ERRORs (54000) unless an element of `shape` fits on a page at the highest level
/// a node can get; `what` names the configuration in the message.
pub fn check_element_fits(shape: ElementShape, what: &str) {
    if element_fits(shape) {
        return;
    }
    let need = shape.size(MAX_LEVEL);
    raise_hint(
        Code::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
        format!(
            "qhnsw elements for {what} need up to {need} bytes, more than one {} byte page holds",
            page_capacity()
        ),
        "Choose a smaller code: quantizer = 'sq8' stores 1 byte per dimension, 'sq4' half of that, \
         'pq' and 'binary' less; rerank = 'float16' adds 2 bytes per dimension; a smaller m shortens neighbour lists.",
    )
}

/// Page bytes an element of `shape` at `level` takes: the aligned item and its line pointer.
fn page_bytes(shape: ElementShape, level: usize) -> usize {
    shape.size(level).div_ceil(8) * 8 + std::mem::size_of::<pg_sys::ItemIdData>()
}

/// Whether an element of `shape` at the highest level fits on an empty page.
fn element_fits(shape: ElementShape) -> bool {
    page_bytes(shape, MAX_LEVEL) <= page_capacity()
}

/// Packs nodes into pages starting at `first_block`, layer-0 neighbourhoods together
/// (graph::locality_order), so a scan reading a node's neighbours touches fewer pages.
fn place(graph: &InMemoryGraph, shape: ElementShape, first_block: u32) -> Placement {
    let per_page = (page_capacity() / page_bytes(shape, 0)).clamp(1, 255);
    let order = locality_order(graph, per_page);
    let mut location = vec![(0u32, 0u16); graph.len()];
    let mut pages = Vec::new();
    let (mut used, mut start, mut offset) = (0usize, 0usize, 0u16);
    for (at, &id) in order.iter().enumerate() {
        let need = page_bytes(shape, graph.level(id));
        if offset > 0 && (used + need > page_capacity() || offset == 255) {
            pages.push(start..at);
            start = at;
            used = 0;
            offset = 0;
        }
        used += need;
        offset += 1;
        location[id as usize] = (first_block + pages.len() as u32, offset);
    }
    if start < order.len() {
        pages.push(start..order.len());
    }
    Placement {
        location,
        order,
        pages,
    }
}

/// How a build writes its new pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageSink {
    /// CREATE INDEX / REINDEX: plain buffer writes, all pages WAL-logged at the end.
    Build,
    /// A rebuild inside a live index: every page is a GenericXLog full-page record.
    Logged,
}

/// Extends the index by one page of `kind` and `tag`, runs `fill` on it, and returns its block.
pub(super) fn write_new_page(
    index: pg_sys::Relation,
    sink: PageSink,
    kind: PageKind,
    tag: u32,
    fill: impl FnOnce(pg_sys::Page),
) -> u32 {
    if sink == PageSink::Logged {
        let page = PageWrite::extend(index, kind, tag);
        fill(page.page());
        let block = page.block();
        page.commit();
        return block;
    }
    // SAFETY: during ambuild nobody else uses the new index; the buffer is pinned and
    // locked while we fill it, and log_all_pages WAL-logs it afterwards.
    unsafe {
        let buffer = pg_sys::ReadBufferExtended(
            index,
            pg_sys::ForkNumber::MAIN_FORKNUM,
            pg_sys::InvalidBlockNumber,
            pg_sys::ReadBufferMode::RBM_NORMAL,
            std::ptr::null_mut(),
        );
        pg_sys::LockBuffer(buffer, pg_sys::BUFFER_LOCK_EXCLUSIVE as i32);
        let page = pg_sys::BufferGetPage(buffer);
        init_page(page, kind, tag);
        fill(page);
        pg_sys::MarkBufferDirty(buffer);
        let block = pg_sys::BufferGetBlockNumber(buffer);
        pg_sys::UnlockReleaseBuffer(buffer);
        block
    }
}

/// Overwrites the meta item of block 0 without WAL (build only: logged with the rest).
pub(super) fn put_meta_unlogged(index: pg_sys::Relation, meta: &MetaPage) {
    // SAFETY: block 0 exists (written first by the build); nobody else uses the index yet.
    unsafe {
        let buffer = pg_sys::ReadBufferExtended(
            index,
            pg_sys::ForkNumber::MAIN_FORKNUM,
            META_BLOCK,
            pg_sys::ReadBufferMode::RBM_NORMAL,
            std::ptr::null_mut(),
        );
        pg_sys::LockBuffer(buffer, pg_sys::BUFFER_LOCK_EXCLUSIVE as i32);
        let page = pg_sys::BufferGetPage(buffer);
        let item = pg_sys::PageGetItem(page, pg_sys::PageGetItemId(page, 1)) as *mut u8;
        std::ptr::copy_nonoverlapping(meta.encode().as_ptr(), item, META_BYTES);
        pg_sys::MarkBufferDirty(buffer);
        pg_sys::UnlockReleaseBuffer(buffer);
    }
}

/// Adds an item to a page under construction, or ERRORs (sizes were planned).
pub(super) fn must_add(page: pg_sys::Page, bytes: &[u8]) -> u16 {
    add_item(page, bytes).unwrap_or_else(|| {
        raise(
            Code::ERRCODE_INTERNAL_ERROR,
            "qhnsw page overflow during build",
        )
    })
}

/// Largest quantizer chunk stored on one page.
fn quantizer_chunk() -> usize {
    page_capacity() - std::mem::size_of::<pg_sys::ItemIdData>() - 8
}

/// Writes the quantizer blob over as many new pages as it needs; returns (first, count).
fn write_quantizer_pages(
    index: pg_sys::Relation,
    sink: PageSink,
    tag: u32,
    blob: &[u8],
) -> (u32, u32) {
    let mut first = None;
    let mut count = 0;
    for part in blob.chunks(quantizer_chunk()) {
        let block = write_new_page(index, sink, PageKind::Quantizer, tag, |page| {
            must_add(page, part);
        });
        first.get_or_insert(block);
        count += 1;
    }
    (first.unwrap_or(0), count)
}

/// A build id for process-local caches and page tags: distinct per build.
pub fn new_build_id() -> u64 {
    // SAFETY: GetCurrentTimestamp and MyProcPid are plain reads.
    let (ts, pid) = unsafe { (pg_sys::GetCurrentTimestamp(), pg_sys::MyProcPid) };
    let id = (ts as u64).rotate_left(17) ^ (pid as u64) ^ rand::random::<u64>();
    if id as u32 == 0 {
        id | 1
    } else {
        id
    }
}

/// WAL-logs every page of the main fork (for permanent relations).
pub(super) fn log_all_pages(index: pg_sys::Relation) {
    // SAFETY: index is open; log_newpage_range reads and logs its pages.
    unsafe {
        if (*(*index).rd_rel).relpersistence == pg_sys::RELPERSISTENCE_PERMANENT as std::ffi::c_char
        {
            let blocks =
                pg_sys::RelationGetNumberOfBlocksInFork(index, pg_sys::ForkNumber::MAIN_FORKNUM);
            pg_sys::log_newpage_range(index, pg_sys::ForkNumber::MAIN_FORKNUM, 0, blocks, true);
        }
    }
}

/// Warns when an in-memory rebuild's memory exceeds maintenance_work_mem (it still finishes
/// in memory; ambuild turns memory-bounded before that, see bounded.rs).
fn check_memory(rows: &Collected, code_len: usize, m: usize) {
    let n = rows.tids.len();
    let bytes = rows.data.len() * 4 + n * (code_len + 16 + 4 * 3 * m);
    // SAFETY: maintenance_work_mem is a plain GUC integer (kB).
    let limit = unsafe { pg_sys::maintenance_work_mem } as usize * 1024;
    if bytes > limit {
        notice(|| {
            pgrx::pg_sys::panic::ErrorReport::new(
            Code::ERRCODE_SUCCESSFUL_COMPLETION,
            format!(
                "qhnsw build of {n} rows uses about {} MB of memory, more than maintenance_work_mem ({} MB)",
                bytes >> 20,
                limit >> 20
            ),
            "qhnsw_build",
        )
        .set_detail("The build continues in memory.")
        .set_hint("Increase maintenance_work_mem to keep builds within their budget.")
        .report(pgrx::pg_sys::elog::PgLogLevel::NOTICE)
        });
    }
}

/// `ambuild`.
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn ambuild(
    heap: pg_sys::Relation,
    index: pg_sys::Relation,
    index_info: *mut pg_sys::IndexInfo,
) -> *mut pg_sys::IndexBuildResult {
    let opts = index_options(index);
    let (metric, vector_type) = index_opclass(index);
    let dims = column_dims(index);
    if dims > 0 {
        check_options_fit(&opts, dims);
    }
    let progress = Progress::on();
    progress.phase(Phase::Loading, 0);
    let threads = maintenance_workers();
    let mut scan = ScanState {
        rows: Collected {
            dims,
            metric,
            vector_type,
            tids: Vec::new(),
            data: Vec::new(),
            skipped_zero: 0,
        },
        progress,
        budget: Budget::from_guc(opts.m, threads),
        code_len: opts
            .quantizer
            .filter(|_| dims > 0)
            .map(|kind| options_config(&opts, kind).code_len(dims)),
        limit: 0,
        sample: None,
        context: tuple_context(),
    };
    // SAFETY: standard heap scan for index builds; the callback receives &mut scan.
    let heap_tuples = unsafe {
        pg_sys::table_index_build_scan(
            heap,
            index,
            index_info,
            true,
            true,
            Some(collect_row),
            &mut scan as *mut ScanState as *mut std::ffi::c_void,
            std::ptr::null_mut(),
        )
    };
    let budget = scan.budget;
    let sample = scan.sample.take();
    let collected = scan.rows;
    progress.done(
        sample
            .as_ref()
            .map_or(collected.tids.len(), |sample| sample.seen),
    );
    if collected.skipped_zero > 0 {
        notice(|| {
            pgrx::notice!(
                "qhnsw index \"{}\" skipped {} zero vectors: cosine distance is undefined for them",
                relation_name(index),
                collected.skipped_zero
            )
        });
    }
    if dims == 0 && collected.dims > 0 {
        check_options_fit(&opts, collected.dims);
    }
    if let Some(sample) = sample {
        let workers = Workers::new(threads);
        let build = BoundedBuild {
            index,
            opts: &opts,
            metric,
            vector_type,
            workers: &workers,
            progress,
            budget,
        };
        let (heap_tuples, index_tuples) = build_bounded(&build, heap, index_info, sample);
        drop(workers);
        return build_result(heap_tuples, index_tuples);
    }
    let workers = Workers::new(if collected.tids.is_empty() {
        0
    } else {
        threads
    });
    let mut meta = empty_meta(&opts, collected.dims, metric);
    let trained = (!collected.tids.is_empty()).then(|| {
        train_with(
            &opts,
            collected.dims,
            &collected.data,
            metric,
            &workers,
            progress,
        )
    });
    write_new_page(index, PageSink::Build, PageKind::Meta, 0, |page| {
        must_add(page, &meta.encode());
        if let Some((_, Some(reason))) = &trained {
            must_add(page, reason.as_bytes());
        }
    });
    meta = match &trained {
        None => start_staging(index, PageSink::Build, meta),
        Some((quantizer, _)) => write_graph_with(
            index,
            PageSink::Build,
            &opts,
            quantizer,
            &collected,
            meta,
            &workers,
            progress,
        ),
    };
    drop(workers);
    put_meta_unlogged(index, &meta);
    log_all_pages(index);
    build_result(heap_tuples, collected.tids.len())
}

/// A palloc'd IndexBuildResult.
fn build_result(heap_tuples: f64, index_tuples: usize) -> *mut pg_sys::IndexBuildResult {
    // SAFETY: palloc a result struct for the caller.
    unsafe {
        let result = pg_sys::palloc0(std::mem::size_of::<pg_sys::IndexBuildResult>())
            as *mut pg_sys::IndexBuildResult;
        (*result).heap_tuples = heap_tuples;
        (*result).index_tuples = index_tuples as f64;
        result
    }
}

/// The meta page of an index with no rows and no quantizer yet.
pub fn empty_meta(opts: &QhnswOptions, dims: usize, metric: Metric) -> MetaPage {
    MetaPage {
        dims: dims as u32,
        metric,
        quantizer: opts.quantizer.unwrap_or(QuantizerKind::Sq8),
        rerank: opts.rerank,
        m: opts.m as u16,
        ef_construction: opts.ef_construction as u16,
        code_len: 0,
        entry_node: INVALID_NODE,
        entry_level: 0,
        quantizer_first: 0,
        quantizer_blocks: 0,
        quantizer_bytes: 0,
        insert_page: 0,
        node_count: 0,
        build_id: new_build_id(),
        staging: false,
        unit_norm: false,
    }
}

/// Puts an empty index into staging: exact (flat) codes until it has enough rows to
/// train its configured quantizer. Needs the dimensions; without them (an unconstrained
/// column) the meta page stays untrained and the first insert calls this.
pub fn start_staging(index: pg_sys::Relation, sink: PageSink, mut meta: MetaPage) -> MetaPage {
    if meta.dims == 0 {
        return meta;
    }
    let dims = meta.dims as usize;
    check_options_fit(&index_options(index), dims);
    let shape = |code_len| ElementShape {
        m: meta.m as usize,
        code_len,
        dims,
        float16_copy: meta.rerank == RerankSource::Float16,
    };
    // Exact float4 codes where they fit a page, float16 beyond (~1700 dimensions).
    let flat = if element_fits(shape(4 * dims)) {
        Quantizer::Flat(FlatQuantizer::new(dims))
    } else {
        Quantizer::Half(HalfQuantizer::new(dims))
    };
    if !element_fits(shape(flat.code_len())) {
        raise_hint(
            Code::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            format!(
                "a qhnsw index on an empty table cannot stage {dims}-dimensional rows: even as float16 they do not fit on a page"
            ),
            "Create the index after loading some rows: it is then built, and its quantizer trained, from them.",
        );
    }
    let blob = flat.to_bytes();
    let (first, count) = write_quantizer_pages(index, sink, meta.build_tag(), &blob);
    meta.staging = meta.quantizer != QuantizerKind::None;
    meta.quantizer = QuantizerKind::None;
    meta.code_len = flat.code_len() as u32;
    meta.quantizer_first = first;
    meta.quantizer_blocks = count;
    meta.quantizer_bytes = blob.len() as u32;
    meta
}

/// [`write_graph_with`] on the backend thread alone, reporting no progress (the staging
/// conversion inside INSERT).
pub fn write_graph(
    index: pg_sys::Relation,
    sink: PageSink,
    opts: &QhnswOptions,
    quantizer: &Quantizer,
    rows: &Collected,
    meta: MetaPage,
) -> MetaPage {
    let workers = Workers::none();
    write_graph_with(
        index,
        sink,
        opts,
        quantizer,
        rows,
        meta,
        &workers,
        Progress::off(),
    )
}

/// Encodes every row, builds the graph in memory (both on `workers`) and appends quantizer
/// and graph pages (tagged with a new build id) after the current end of the index;
/// returns the meta page describing them, which the caller writes.
#[allow(clippy::too_many_arguments)]
pub fn write_graph_with(
    index: pg_sys::Relation,
    sink: PageSink,
    opts: &QhnswOptions,
    quantizer: &Quantizer,
    rows: &Collected,
    meta: MetaPage,
    workers: &Workers,
    progress: Progress,
) -> MetaPage {
    let n = rows.tids.len();
    let dims = rows.dims;
    check_memory(rows, quantizer.code_len(), opts.m);
    check_quantizer_fits(opts, dims, quantizer);
    progress.phase(Phase::Encoding, n);
    let encoded = AtomicUsize::new(0);
    let (codes, unit_norm) = workers
        .run(&|| progress.done(encoded.load(Ordering::Relaxed)), |stop| {
            encode_rows(quantizer, &rows.data, dims, stop, &encoded)
        });
    let distance = RowDistance {
        data: &rows.data,
        dims,
        metric: rows.metric,
    };
    let float16 = |id: usize, out: &mut Vec<half::f16>| {
        out.clear();
        out.extend(
            distance
                .row(id as u32)
                .iter()
                .map(|v| half::f16::from_f32(*v)),
        );
    };
    let encoded = EncodedRows {
        tids: &rows.tids,
        codes: &codes,
        float16: &float16,
        unit_norm,
        distance: &distance,
    };
    link_and_write(
        index, sink, opts, quantizer, &encoded, meta, workers, progress,
    )
}

/// Rows ready to link and write: heap TIDs, index codes, their float16 copies
/// (`float16(id, out)`, used with rerank = float16), whether all have unit length, and
/// the symmetric distance the graph is built with.
pub struct EncodedRows<'a> {
    /// Heap TIDs.
    pub tids: &'a [(u32, u16)],
    /// Index codes, `code_len` bytes per row.
    pub codes: &'a [u8],
    /// Writes row `id` as float16 into `out`.
    pub float16: &'a (dyn Fn(usize, &mut Vec<half::f16>) + Sync),
    /// Whether every row has unit length.
    pub unit_norm: bool,
    /// Construction distance between two rows.
    pub distance: &'a dyn NodeDistance,
}

/// The construction distance between float4 rows held in memory.
struct RowDistance<'a> {
    data: &'a [f32],
    dims: usize,
    metric: Metric,
}

impl RowDistance<'_> {
    /// Row `id`.
    fn row(&self, id: u32) -> &[f32] {
        &self.data[id as usize * self.dims..(id as usize + 1) * self.dims]
    }
}

impl NodeDistance for RowDistance<'_> {
    /// The metric's distance between rows `a` and `b`.
    fn between(&self, a: u32, b: u32) -> f32 {
        distance::metric_distance(self.metric, self.row(a), self.row(b))
    }

    /// Starts loading row `id`.
    fn prefetch(&self, id: u32) {
        distance::prefetch(self.row(id));
    }
}

/// ERRORs (54000) unless elements of this quantizer's codes fit on a page.
pub fn check_quantizer_fits(opts: &QhnswOptions, dims: usize, quantizer: &Quantizer) {
    check_element_fits(
        options_shape(opts, dims, quantizer.code_len()),
        &format!(
            "{dims} dimensions with quantizer '{}'",
            quantizer.kind().name()
        ),
    );
}

/// Builds the graph of encoded rows in memory (on `workers`) and appends quantizer and
/// graph pages (tagged with a new build id) after the current end of the index; returns
/// the meta page describing them, which the caller writes.
#[allow(clippy::too_many_arguments)]
pub fn link_and_write(
    index: pg_sys::Relation,
    sink: PageSink,
    opts: &QhnswOptions,
    quantizer: &Quantizer,
    rows: &EncodedRows,
    mut meta: MetaPage,
    workers: &Workers,
    progress: Progress,
) -> MetaPage {
    let n = rows.tids.len();
    let dims = quantizer.dims();
    let code_len = quantizer.code_len();
    let codes = rows.codes;
    let unit_norm = rows.unit_norm;
    let shape = options_shape(opts, dims, code_len);
    check_quantizer_fits(opts, dims, quantizer);
    let graph = build_graph(
        n,
        rows.distance,
        HnswParams::new(opts.m, opts.ef_construction),
        workers,
        progress,
    );
    progress.phase(Phase::Writing, n);
    let blob = quantizer.to_bytes();
    meta.build_id = new_build_id();
    let tag = meta.build_tag();
    let quantizer_blocks = blob.len().div_ceil(quantizer_chunk()) as u32;
    let first_graph = block_count(index) + quantizer_blocks;
    let placement = place(&graph, shape, first_graph);
    let id_of = |node: u32| {
        let (block, offset) = placement.location[node as usize];
        node_id(block, offset)
    };
    let (first, count) = write_quantizer_pages(index, sink, tag, &blob);
    debug_assert_eq!(first + count, first_graph);
    let (entry, entry_level) = graph.entry_point().expect("non-empty graph");
    meta.quantizer = quantizer.kind();
    meta.staging = false;
    meta.dims = dims as u32;
    meta.code_len = code_len as u32;
    meta.rerank = opts.rerank;
    meta.m = opts.m as u16;
    meta.ef_construction = opts.ef_construction as u16;
    meta.entry_node = id_of(entry);
    meta.entry_level = entry_level.min(MAX_LEVEL) as u8;
    meta.quantizer_first = first;
    meta.quantizer_blocks = count;
    meta.quantizer_bytes = blob.len() as u32;
    meta.insert_page = first_graph + placement.pages.len().saturating_sub(1) as u32;
    meta.node_count = n as u64;
    meta.unit_norm = unit_norm;

    let mut element = Vec::new();
    let mut neighbors = Vec::new();
    let mut float16 = Vec::new();
    for range in &placement.pages {
        pgrx::check_for_interrupts!();
        let block = write_new_page(index, sink, PageKind::Graph, tag, |page| {
            for &node in &placement.order[range.clone()] {
                let id = node as usize;
                let level = graph.level(node);
                element.resize(shape.size(level), 0);
                if shape.float16_copy {
                    (rows.float16)(id, &mut float16);
                }
                write_element(
                    &mut element,
                    shape,
                    level,
                    rows.tids[id],
                    &codes[id * code_len..(id + 1) * code_len],
                    shape.float16_copy.then_some(&float16[..]),
                );
                for layer in 0..=level {
                    neighbors.clear();
                    neighbors.extend(
                        graph
                            .neighbor_slice(id as u32, layer)
                            .iter()
                            .map(|&nb| id_of(nb)),
                    );
                    set_neighbors(&mut element, shape, layer, &neighbors);
                }
                must_add(page, &element);
            }
        });
        if block != placement.location[placement.order[range.start] as usize].0 {
            raise(
                Code::ERRCODE_INTERNAL_ERROR,
                "qhnsw build: the index grew concurrently",
            );
        }
        progress.done(range.end);
    }
    meta
}

/// `ambuildempty`: the init fork of an UNLOGGED index (an empty, untrained meta page;
/// the first insert after a crash reset starts staging, as for an unconstrained column).
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn ambuildempty(index: pg_sys::Relation) {
    let opts = index_options(index);
    let meta = MetaPage {
        dims: 0,
        ..empty_meta(&opts, 0, index_metric(index))
    };
    // SAFETY: the init fork is new and ours; log_newpage_buffer WAL-logs the page.
    unsafe {
        let buffer = pg_sys::ReadBufferExtended(
            index,
            pg_sys::ForkNumber::INIT_FORKNUM,
            pg_sys::InvalidBlockNumber,
            pg_sys::ReadBufferMode::RBM_NORMAL,
            std::ptr::null_mut(),
        );
        pg_sys::LockBuffer(buffer, pg_sys::BUFFER_LOCK_EXCLUSIVE as i32);
        let page = pg_sys::BufferGetPage(buffer);
        init_page(page, PageKind::Meta, 0);
        must_add(page, &meta.encode());
        pg_sys::MarkBufferDirty(buffer);
        pg_sys::log_newpage_buffer(buffer, true);
        pg_sys::UnlockReleaseBuffer(buffer);
    }
}
