//! The memory-bounded build: what `ambuild` does when the rows do not fit
//! `maintenance_work_mem` as float4 (issue 15).
//!
//! 1. The first heap scan (in build.rs) keeps float4 rows only while the in-memory build
//!    of all of them fits the budget ([`Budget::float_rows`]); past that it keeps a
//!    seeded uniform reservoir sample ([`Reservoir`], Algorithm R) of at most half the
//!    budget and [`TRAINING_SAMPLE_ROWS`], and counts the rows.
//! 2. The quantizer is trained on the sample. When the index's own codes are a poor
//!    construction distance (sq4, sq2, pq, binary) an sq8 quantizer is trained too, for
//!    the graph only: its codes are dropped once the graph is linked.
//! 3. A second heap scan encodes each row. The first [`Budget::code_rows`] rows are kept
//!    as codes only, linked in memory from symmetric code distances (Algorithm 1 on
//!    workers, like the unbounded build) and written to pages, which are WAL-logged
//!    at once. When the codes of all rows do not fit beside their graph, they go to
//!    spill files (src/am/spill.rs, read back memory-mapped) and the budget holds the
//!    graph alone: ~200 bytes per row at m = 16, so 256 MB links about 1.2M rows.
//!    Every row past that goes through the aminsert path (`insert_built`) into the
//!    on-page graph, WAL-logged page change by page change. Memory therefore stays
//!    within the budget for any table size.
//!
//! pg_stat_progress_create_index shows phases 7 (loading tuples as codes) and 8
//! (inserting into the on-page graph); NOTICEs say when the build turns bounded and how
//! far the on-page inserts are.

use super::build::{
    check_quantizer_fits, check_row_dims, empty_meta, in_tuple_context, is_unit, item_pointer,
    link_and_write, log_all_pages, must_add, normalize, put_meta_unlogged, start_staging,
    train_with, tuple_context, write_new_page, EncodedRows, PageSink, BUILD_SEED,
    TRAINING_SAMPLE_ROWS,
};
use super::insert::insert_built;
use super::meta::relation_name;
use super::options::QhnswOptions;
use super::pages::{MetaPage, PageKind, RerankSource};
use super::progress::{Phase, Progress};
use super::spill::CodeStore;
use super::threads::{notice, Workers};
use crate::distance::{self, Metric};
use crate::graph::NodeDistance;
use crate::quant::{Estimator, Quantizer, QuantizerConfig, QuantizerKind};
use crate::types::vector_type::VectorType;
use parking_lot::Mutex;
use pgrx::pg_sys;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Least rows a bounded build trains on, even if they take more than half the budget.
const MIN_SAMPLE_ROWS: usize = 1000;
/// Rows between two progress reports of the second heap scan.
const REPORT_ROWS: usize = 256;
/// Share of the budget kept back for allocations not counted per row (1/16: quantizer, pages, scratch).
const RESERVED_SHARE: usize = 16;

/// Rows linked in memory and rows inserted on pages by bounded builds in this backend (a test hook).
pub static BOUNDED_ROWS: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];

/// The build's memory budget (maintenance_work_mem) and what it holds per row.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Bytes the build may use.
    pub bytes: usize,
    /// The index's m.
    pub m: usize,
    /// Worker threads of the build (each has a visited set of 4 bytes per node).
    pub threads: usize,
}

impl Budget {
    /// maintenance_work_mem for an index with `m`, built on `threads` workers.
    pub fn from_guc(m: usize, threads: usize) -> Budget {
        // SAFETY: maintenance_work_mem is a plain GUC integer (kB), read on the backend thread.
        let kb = unsafe { pg_sys::maintenance_work_mem }.max(0) as usize;
        Budget {
            bytes: kb * 1024,
            m,
            threads,
        }
    }

    /// Peak bytes per node of the in-memory graph (src/graph/build.rs): its flat lists
    /// (layer 0 and the expected upper layers), offsets and levels, the workers' visited
    /// sets, the repair pass's marks and the page placement (locations, the locality
    /// order, its two marks and its walk queue).
    pub fn graph_node_bytes(&self) -> usize {
        let m = self.m.max(2);
        let lists = 4 * (2 * m + 1) + (4 * (m + 1)).div_ceil(m - 1);
        lists + 8 + 1 + 4 * (self.threads + 2) + 5 + 8 + 10
    }

    /// Bytes left for per-row data.
    fn usable(&self) -> usize {
        self.bytes - self.bytes / RESERVED_SHARE
    }

    /// Most rows the unbounded build (float4 rows, codes of `code_len` bytes, graph) fits.
    pub fn float_rows(&self, dims: usize, code_len: usize) -> usize {
        self.usable() / (4 * dims + code_len + 8 + self.graph_node_bytes())
    }

    /// Most rows the bounded build links in memory with `row_bytes` of codes per row.
    pub fn code_rows(&self, row_bytes: usize) -> usize {
        (self.usable() / (row_bytes + 8 + self.graph_node_bytes())).max(1)
    }

    /// Rows of the training sample: half the budget as float4, within
    /// [MIN_SAMPLE_ROWS, TRAINING_SAMPLE_ROWS].
    pub fn sample_rows(&self, dims: usize) -> usize {
        (self.bytes / 2 / (4 * dims.max(1))).clamp(MIN_SAMPLE_ROWS, TRAINING_SAMPLE_ROWS)
    }
}

/// A seeded uniform sample of a stream of rows (Vitter's Algorithm R).
pub struct Reservoir {
    /// Dimensions.
    pub dims: usize,
    /// Most rows kept.
    pub capacity: usize,
    /// The kept rows, row-major.
    pub data: Vec<f32>,
    /// Rows offered so far.
    pub seen: usize,
    rng: ChaCha8Rng,
}

impl Reservoir {
    /// Starts from the rows read so far (`data`), keeping a seeded sample of `capacity` of them.
    pub fn from_rows(data: Vec<f32>, dims: usize, capacity: usize) -> Reservoir {
        let rows = data.len() / dims;
        let mut rng = ChaCha8Rng::seed_from_u64(BUILD_SEED);
        let mut data = data;
        if rows > capacity {
            // In place (picked[i] >= i when sorted), so no second copy is ever held.
            let mut picked = sample(&mut rng, rows, capacity).into_vec();
            picked.sort_unstable();
            for (slot, r) in picked.into_iter().enumerate() {
                data.copy_within(r * dims..(r + 1) * dims, slot * dims);
            }
            data.truncate(capacity * dims);
        }
        data.shrink_to_fit();
        Reservoir {
            dims,
            capacity,
            data,
            seen: rows,
            rng,
        }
    }

    /// Offers one more row: kept with probability capacity / seen.
    pub fn offer(&mut self, row: &[f32]) {
        self.seen += 1;
        if self.data.len() < self.capacity * self.dims {
            self.data.extend_from_slice(row);
            return;
        }
        let slot = self.rng.gen_range(0..self.seen);
        if slot < self.capacity {
            self.data[slot * self.dims..(slot + 1) * self.dims].copy_from_slice(row);
        }
    }
}

/// What the index is and how it is built: fixed for the whole bounded build.
pub struct BoundedBuild<'a> {
    /// The index relation.
    pub index: pg_sys::Relation,
    /// Its options.
    pub opts: &'a QhnswOptions,
    /// Its metric.
    pub metric: Metric,
    /// SQL type of the indexed column.
    pub vector_type: VectorType,
    /// Worker threads for training and linking.
    pub workers: &'a Workers,
    /// Progress reporting.
    pub progress: Progress,
    /// The memory budget.
    pub budget: Budget,
}

/// The second heap scan's state: codes of the rows linked in memory, then inserts.
struct EncodeScan<'a> {
    build: &'a BoundedBuild<'a>,
    quantizer: &'a Quantizer,
    /// Construction codes when the index's own codes are not used for that.
    builder: Option<&'a Quantizer>,
    dims: usize,
    /// Rows linked in memory at most.
    capacity: usize,
    /// Rows of the first heap scan (progress totals).
    total: usize,
    tids: Vec<(u32, u16)>,
    /// The index's codes, construction codes and float16 copies of the rows kept:
    /// in memory, or in spill files when they do not fit beside the graph.
    codes: CodeStore,
    build_codes: CodeStore,
    float16: CodeStore,
    /// Scratch for one row's code.
    code: Vec<u8>,
    unit_norm: bool,
    row: Vec<f32>,
    meta: MetaPage,
    /// Set once the in-memory graph is on pages: later rows are inserted.
    flushed: bool,
    /// Reset after each tuple (build.rs `tuple_context`).
    context: pg_sys::MemoryContext,
    inserted: usize,
    started: Instant,
    last_notice: Instant,
}

thread_local! {
    /// A decoded row per thread, reused by [`CodeDistance`].
    static DECODED: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The construction distance over codes: an asymmetric estimator of the decoded first
/// node, cached per worker thread (Algorithm 1 asks many distances from the node being
/// inserted, and pruning many from one base node), so most calls decode nothing.
struct CodeDistance<'q> {
    quantizer: &'q Quantizer,
    codes: &'q [u8],
    metric: Metric,
    slots: Vec<Mutex<Option<(u32, Estimator<'q>)>>>,
}

impl<'q> CodeDistance<'q> {
    /// A distance over `codes` of `quantizer`, with `slots` thread caches.
    fn new(quantizer: &'q Quantizer, codes: &'q [u8], metric: Metric, slots: usize) -> Self {
        CodeDistance {
            quantizer,
            codes,
            metric,
            slots: (0..slots.max(1)).map(|_| Mutex::new(None)).collect(),
        }
    }

    /// The code of node `id`.
    fn code(&self, id: u32) -> &'q [u8] {
        let len = self.quantizer.code_len();
        &self.codes[id as usize * len..(id as usize + 1) * len]
    }
}

impl NodeDistance for CodeDistance<'_> {
    /// Estimated distance between nodes `a` and `b` (symmetric: decode(a) against decode(b)).
    fn between(&self, a: u32, b: u32) -> f32 {
        let last = self.slots.len() - 1;
        let slot = rayon::current_thread_index().map_or(last, |i| i.min(last));
        let mut cached = self.slots[slot].lock();
        let (from, to) = match &*cached {
            Some((id, _)) if *id == b => (b, a),
            _ => (a, b),
        };
        if cached.as_ref().map(|(id, _)| *id) != Some(from) {
            let estimator = DECODED.with_borrow_mut(|row| {
                row.resize(self.quantizer.dims(), 0.0);
                self.quantizer.decode(self.code(from), row);
                self.quantizer.estimator(row, self.metric)
            });
            *cached = Some((from, estimator));
        }
        cached.as_ref().map_or(f32::INFINITY, |(_, estimator)| {
            estimator.distance(self.code(to))
        })
    }

    /// Starts loading node `id`'s code.
    fn prefetch(&self, id: u32) {
        distance::prefetch(self.code(id));
    }
}

/// The quantizer the in-memory graph is built with, when not the index's own: sq8
/// (one byte per dimension, near-exact distances) for codes that estimate distances coarsely.
fn construction_quantizer(quantizer: &Quantizer, sample: &[f32]) -> Option<Quantizer> {
    match quantizer.kind() {
        QuantizerKind::None | QuantizerKind::Sq8 => None,
        QuantizerKind::Sq4 | QuantizerKind::Sq2 | QuantizerKind::Pq | QuantizerKind::Binary => {
            let config = QuantizerConfig {
                kind: QuantizerKind::Sq8,
                seed: BUILD_SEED,
                ..QuantizerConfig::default()
            };
            Quantizer::train(&config, quantizer.dims(), sample).ok()
        }
    }
}

/// Runs the bounded build after the first heap scan left `sample`; returns (heap tuples, index tuples).
pub fn build_bounded(
    build: &BoundedBuild,
    heap: pg_sys::Relation,
    index_info: *mut pg_sys::IndexInfo,
    sample: Reservoir,
) -> (f64, usize) {
    let (opts, index, dims) = (build.opts, build.index, sample.dims);
    let total = sample.seen;
    let (quantizer, reason) = train_with(
        opts,
        dims,
        &sample.data,
        build.metric,
        build.workers,
        build.progress,
    );
    check_quantizer_fits(opts, dims, &quantizer);
    let builder = construction_quantizer(&quantizer, &sample.data);
    drop(sample);
    let float16 = opts.rerank == RerankSource::Float16;
    let builder_len = builder.as_ref().map_or(0, |b| b.code_len());
    let float16_len = if float16 { 2 * dims } else { 0 };
    let row_bytes = quantizer.code_len() + builder_len + float16_len;
    // Codes beside the graph when all rows fit so; else codes in spill files, and as many
    // rows as the graph alone fits in memory.
    let spill = build.budget.code_rows(row_bytes) < total;
    let capacity = build.budget.code_rows(if spill { 0 } else { row_bytes });
    announce(
        build,
        total,
        dims,
        &quantizer,
        builder.as_ref(),
        capacity,
        spill,
    );
    let meta = empty_meta(opts, dims, build.metric);
    write_new_page(index, PageSink::Build, PageKind::Meta, 0, |page| {
        must_add(page, &meta.encode());
        if let Some(reason) = &reason {
            must_add(page, reason.as_bytes());
        }
    });
    build.progress.phase(Phase::LoadingCodes, total);
    let held = capacity.min(total);
    let mut scan = EncodeScan {
        build,
        quantizer: &quantizer,
        builder: builder.as_ref(),
        dims,
        capacity,
        total,
        tids: Vec::with_capacity(held),
        codes: CodeStore::new(spill, held, quantizer.code_len()),
        build_codes: CodeStore::new(spill, held, builder_len),
        float16: CodeStore::new(spill, held, float16_len),
        code: Vec::new(),
        unit_norm: true,
        row: Vec::with_capacity(dims),
        meta,
        flushed: false,
        context: tuple_context(),
        inserted: 0,
        started: Instant::now(),
        last_notice: Instant::now(),
    };
    // SAFETY: standard heap scan for index builds; the callback receives &mut scan.
    let heap_tuples = unsafe {
        pg_sys::table_index_build_scan(
            heap,
            index,
            index_info,
            true,
            true,
            Some(encode_row),
            &mut scan as *mut EncodeScan as *mut std::ffi::c_void,
            std::ptr::null_mut(),
        )
    };
    let linked = if scan.flushed {
        scan.capacity
    } else {
        scan.tids.len()
    };
    if !scan.flushed {
        if scan.tids.is_empty() {
            let meta = start_staging(index, PageSink::Build, scan.meta.clone());
            put_meta_unlogged(index, &meta);
            log_all_pages(index);
        } else {
            flush(&mut scan);
        }
    }
    BOUNDED_ROWS[0].fetch_add(linked, Ordering::Relaxed);
    BOUNDED_ROWS[1].fetch_add(scan.inserted, Ordering::Relaxed);
    (heap_tuples, linked + scan.inserted)
}

/// NOTICE: the build is memory-bounded, and how it splits the rows.
fn announce(
    build: &BoundedBuild,
    total: usize,
    dims: usize,
    quantizer: &Quantizer,
    builder: Option<&Quantizer>,
    capacity: usize,
    spill: bool,
) {
    let in_memory = capacity.min(total);
    let held = if spill {
        "codes in a spill file"
    } else {
        "codes in memory"
    };
    let name = relation_name(build.index);
    let mb = build.budget.bytes >> 20;
    let linked_by = builder.map_or(quantizer.kind().name(), |b| b.kind().name());
    notice(|| {
        pgrx::notice!(
            "qhnsw index \"{name}\": {total} rows of {dims} dimensions do not fit maintenance_work_mem ({mb} MB) as float4: memory-bounded build, {in_memory} rows linked in memory from {linked_by} codes ({held}), {} inserted into the on-page graph",
            total - in_memory
        )
    });
}

/// Heap-scan callback of the second scan: encodes a row, or inserts it once the in-memory graph is written.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn encode_row(
    _index: pg_sys::Relation,
    tid: pg_sys::ItemPointer,
    values: *mut pg_sys::Datum,
    isnull: *mut bool,
    _alive: bool,
    state: *mut std::ffi::c_void,
) {
    // SAFETY: state is the &mut EncodeScan passed to table_index_build_scan.
    let context = unsafe { (*(state as *mut EncodeScan)).context };
    // SAFETY: the arguments are the callback's own, valid for this call.
    in_tuple_context(context, || unsafe {
        encode_one(tid, values, isnull, state)
    });
}

/// [`encode_row`]'s work for one tuple.
///
/// # Safety
/// The heap-scan callback's arguments: `state` is the &mut EncodeScan, one column.
unsafe fn encode_one(
    tid: pg_sys::ItemPointer,
    values: *mut pg_sys::Datum,
    isnull: *mut bool,
    state: *mut std::ffi::c_void,
) {
    // SAFETY: state is the &mut EncodeScan passed to table_index_build_scan; values/isnull have one column.
    let (scan, value) = unsafe {
        if *isnull {
            return;
        }
        let scan = &mut *(state as *mut EncodeScan);
        let value = scan.build.vector_type.read(*values);
        (scan, value)
    };
    check_row_dims(scan.dims, value.len());
    // SAFETY: tid points to a valid ItemPointerData.
    let tid = unsafe { item_pointer(&*tid) };
    scan.row.clear();
    scan.row.extend_from_slice(&value);
    if scan.build.metric == Metric::Cosine && !normalize(&mut scan.row) {
        return; // counted and reported by the first scan
    }
    if scan.flushed {
        insert_row(scan, tid);
    } else {
        keep_row(scan, tid);
    }
}

/// Encodes a row into memory; writes the in-memory graph once it holds `capacity` rows.
fn keep_row(scan: &mut EncodeScan, tid: (u32, u16)) {
    let row = &scan.row;
    scan.unit_norm &= is_unit(row);
    scan.code.resize(scan.quantizer.code_len(), 0);
    scan.quantizer.encode(row, &mut scan.code);
    scan.codes.push(&scan.code);
    if let Some(builder) = scan.builder {
        scan.code.resize(builder.code_len(), 0);
        builder.encode(row, &mut scan.code);
        scan.build_codes.push(&scan.code);
    }
    if scan.build.opts.rerank == RerankSource::Float16 {
        scan.code.clear();
        scan.code.extend(
            row.iter()
                .flat_map(|v| half::f16::from_f32(*v).to_le_bytes()),
        );
        scan.float16.push(&scan.code);
    }
    scan.tids.push(tid);
    if scan.tids.len().is_multiple_of(REPORT_ROWS) {
        scan.build.progress.done(scan.tids.len());
    }
    if scan.tids.len() == scan.capacity {
        flush(scan);
        let rest = scan.total.saturating_sub(scan.capacity);
        scan.build.progress.phase(Phase::Inserting, rest);
        scan.started = Instant::now();
        scan.last_notice = Instant::now();
        let name = relation_name(scan.build.index);
        notice(|| {
            pgrx::notice!(
                "qhnsw index \"{name}\": in-memory graph of {} rows written; inserting the other {rest} rows into the on-page graph",
                scan.capacity
            )
        });
    }
}

/// Inserts a row past the in-memory graph through the aminsert path.
fn insert_row(scan: &mut EncodeScan, tid: (u32, u16)) {
    pgrx::check_for_interrupts!();
    insert_built(scan.build.index, scan.row.clone(), tid);
    scan.inserted += 1;
    if scan.inserted.is_multiple_of(16) {
        scan.build.progress.done(scan.inserted);
        if scan.last_notice.elapsed() >= Duration::from_secs(10) {
            scan.last_notice = Instant::now();
            let rest = scan.total.saturating_sub(scan.capacity);
            notice(|| {
                pgrx::notice!(
                    "qhnsw build: {} of {rest} rows inserted into the on-page graph after {:.0} s",
                    scan.inserted,
                    scan.started.elapsed().as_secs_f64()
                )
            });
        }
    }
}

/// Links the rows held in memory, writes and WAL-logs their pages and the meta page, and frees them.
fn flush(scan: &mut EncodeScan) {
    let build = scan.build;
    let metric = build.metric;
    let codes = std::mem::take(&mut scan.codes).finish();
    let build_codes = std::mem::take(&mut scan.build_codes).finish();
    let float16 = std::mem::take(&mut scan.float16).finish();
    let dims = scan.dims;
    let (quantizer, builder) = (scan.quantizer, scan.builder);
    let slots = build.workers.threads() + 1;
    let by_codes = match builder {
        Some(builder) => CodeDistance::new(builder, &build_codes, metric, slots),
        None => CodeDistance::new(quantizer, &codes, metric, slots),
    };
    let copy16 = |id: usize, out: &mut Vec<half::f16>| {
        out.clear();
        out.extend(
            float16[2 * id * dims..2 * (id + 1) * dims]
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]])),
        );
    };
    let rows = EncodedRows {
        tids: &scan.tids,
        codes: &codes,
        float16: &copy16,
        unit_norm: scan.unit_norm,
        distance: &by_codes,
    };
    let meta = link_and_write(
        build.index,
        PageSink::Build,
        build.opts,
        quantizer,
        &rows,
        scan.meta.clone(),
        build.workers,
        build.progress,
    );
    put_meta_unlogged(build.index, &meta);
    log_all_pages(build.index);
    scan.meta = meta;
    scan.flushed = true;
    scan.tids = Vec::new();
}
