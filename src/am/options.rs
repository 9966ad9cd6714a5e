//! Index options (`WITH (...)`) and the `qhnsw.*` settings.
//!
//! Options are validated when given: each value and the combinations that do not depend
//! on the data (ef_construction >= 2 * m, pq_bits) in `amoptions`, at CREATE INDEX and
//! ALTER INDEX alike; what depends on the dimensions ([`dims_problem`], page fit) at
//! CREATE INDEX, or at the first row for an unconstrained column. They are copied into
//! the meta page at build time and never consulted by readers afterwards.

use super::pages::RerankSource;
use crate::fmgr::{raise, raise_hint};
use crate::quant::QuantizerKind;
use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode as Code;
use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};
use std::ffi::{c_char, CStr};
use std::sync::atomic::{AtomicU32, Ordering};

/// `qhnsw.ef_search`: beam width of a search.
pub static EF_SEARCH: GucSetting<i32> = GucSetting::<i32>::new(40);
/// `qhnsw.rerank_candidates`: how many best approximate candidates get an exact distance.
pub static RERANK_CANDIDATES: GucSetting<i32> = GucSetting::<i32>::new(-1);

/// Re-rank candidates for a quantizer when `qhnsw.rerank_candidates` is -1 (auto):
/// coarser codes need more exact distances to keep the same recall.
pub fn rerank_candidates(kind: crate::quant::QuantizerKind) -> usize {
    use crate::quant::QuantizerKind::*;
    match RERANK_CANDIDATES.get() {
        n if n >= 0 => n as usize,
        _ => match kind {
            None | Sq8 => 40,
            Sq4 => 60,
            Sq2 | Pq | Binary => 100,
        },
    }
}
/// `qhnsw.ef_search` default: the beam width the auto re-rank counts are tuned for.
const DEFAULT_EF_SEARCH: usize = 40;

/// Re-rank candidates of a search at beam width `ef`: an explicit
/// `qhnsw.rerank_candidates` as set; auto scales the quantizer's count down with an
/// ef_search below its default (40), so asking for less recall narrows both the beam
/// and the re-rank (the beam is never narrower than the re-rank), and keeps it at or above.
pub fn rerank_candidates_at(kind: crate::quant::QuantizerKind, ef: usize) -> usize {
    let count = rerank_candidates(kind);
    if RERANK_CANDIDATES.get() >= 0 || ef >= DEFAULT_EF_SEARCH {
        return count;
    }
    (count * ef.max(1)).div_ceil(DEFAULT_EF_SEARCH)
}

/// Modes of `qhnsw.iterative_scan` (pgvector's `hnsw.iterative_scan` values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IterativeScan {
    /// One beam only.
    Off,
    /// Continue the search; rows are in exact order within each re-ranked batch.
    RelaxedOrder,
    /// Continue the search; a row is never returned after a farther one.
    StrictOrder,
}

// SAFETY: from_ordinal/to_ordinal agree with the entries' values, every value an entry
// can hold maps to a variant, and the list ends with a NULL name.
unsafe impl pgrx::guc::GucEnum for IterativeScan {
    fn from_ordinal(ordinal: i32) -> Self {
        match ordinal {
            0 => IterativeScan::Off,
            2 => IterativeScan::StrictOrder,
            _ => IterativeScan::RelaxedOrder,
        }
    }

    fn to_ordinal(&self) -> i32 {
        match self {
            IterativeScan::Off => 0,
            IterativeScan::RelaxedOrder => 1,
            IterativeScan::StrictOrder => 2,
        }
    }

    /// `on` is a hidden alias of `relaxed_order` (the boolean setting of earlier versions).
    const CONFIG_ENUM_ENTRY: *const pg_sys::config_enum_entry = [
        pg_sys::config_enum_entry {
            name: c"off".as_ptr(),
            val: 0,
            hidden: false,
        },
        pg_sys::config_enum_entry {
            name: c"relaxed_order".as_ptr(),
            val: 1,
            hidden: false,
        },
        pg_sys::config_enum_entry {
            name: c"strict_order".as_ptr(),
            val: 2,
            hidden: false,
        },
        pg_sys::config_enum_entry {
            name: c"on".as_ptr(),
            val: 1,
            hidden: true,
        },
        pg_sys::config_enum_entry {
            name: std::ptr::null(),
            val: 0,
            hidden: false,
        },
    ]
    .as_ptr();
}

/// `qhnsw.iterative_scan`: continue the search when more rows are wanted.
pub static ITERATIVE_SCAN: GucSetting<IterativeScan> =
    GucSetting::<IterativeScan>::new(IterativeScan::RelaxedOrder);
/// `qhnsw.max_scan_tuples`: nodes an iterative scan may visit before it only hands out
/// the nodes it has already seen.
pub static MAX_SCAN_TUPLES: GucSetting<i32> = GucSetting::<i32>::new(20_000);
/// `qhnsw.scan_mem_multiplier`: multiple of `work_mem` an iterative scan's search state may use.
pub static SCAN_MEM_MULTIPLIER: GucSetting<f64> = GucSetting::<f64>::new(1.0);

/// Bytes an iterative scan's search state may use: `work_mem × qhnsw.scan_mem_multiplier`.
pub fn scan_memory_limit() -> usize {
    // SAFETY: work_mem is a plain int GUC (kB) of this backend.
    let work_mem_kb = unsafe { pg_sys::work_mem } as f64;
    (work_mem_kb * 1024.0 * SCAN_MEM_MULTIPLIER.get()).min(usize::MAX as f64 / 2.0) as usize
}

/// Defaults and bounds of the options.
pub const DEFAULT_M: i32 = 16;
/// Default ef_construction.
pub const DEFAULT_EF_CONSTRUCTION: i32 = 64;

/// The reloption kind registered for qhnsw.
static RELOPT_KIND: AtomicU32 = AtomicU32::new(0);

/// Parsed options as laid out by `build_reloptions` (strings are offsets into the struct).
#[repr(C)]
pub struct QhnswOptionsRaw {
    vl_len: i32,
    m: i32,
    ef_construction: i32,
    pq_subvectors: i32,
    pq_bits: i32,
    quantizer_offset: i32,
    rerank_offset: i32,
    quality_threshold: f64,
}

/// Options of one index, resolved.
#[derive(Clone, Debug)]
pub struct QhnswOptions {
    /// HNSW m.
    pub m: usize,
    /// HNSW ef_construction.
    pub ef_construction: usize,
    /// Requested quantizer (None: 'auto').
    pub quantizer: Option<QuantizerKind>,
    /// PQ sub-vectors (0: dims / 8).
    pub pq_subvectors: usize,
    /// PQ bits per code (4 or 8).
    pub pq_bits: u8,
    /// Re-rank source.
    pub rerank: RerankSource,
    /// Recall target for quantizer = 'auto'.
    pub quality_threshold: f64,
}

/// Registers the GUCs and the reloptions; called from `_PG_init`.
pub fn init() {
    GucRegistry::define_int_guc(
        c"qhnsw.ef_search",
        c"Beam width of qhnsw index searches.",
        c"Larger values find more true neighbours and cost more time.",
        &EF_SEARCH,
        1,
        1000,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"qhnsw.rerank_candidates",
        c"How many of the best approximate candidates are re-scored with exact distances.",
        c"0 returns candidates in quantized-distance order; -1 (default) picks by quantizer: 40 for none and sq8, 60 for sq4, 100 for sq2, pq and binary.",
        &RERANK_CANDIDATES,
        -1,
        10000,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_enum_guc(
        c"qhnsw.iterative_scan",
        c"Mode of iterative qhnsw scans: off, relaxed_order or strict_order.",
        c"Continues a search when the query needs more rows than one beam gave (filters, large LIMITs). relaxed_order: exact order within each re-ranked batch; strict_order: never a row after a farther one. on means relaxed_order.",
        &ITERATIVE_SCAN,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"qhnsw.max_scan_tuples",
        c"Sets the max number of index nodes an iterative qhnsw scan visits.",
        c"Approximate; the first beam is not limited. Once reached, the scan returns the nodes already seen and stops.",
        &MAX_SCAN_TUPLES,
        1,
        i32::MAX,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_float_guc(
        c"qhnsw.scan_mem_multiplier",
        c"Sets the multiple of work_mem an iterative qhnsw scan's search state may use.",
        c"Once reached, the scan returns the nodes already seen and stops.",
        &SCAN_MEM_MULTIPLIER,
        1.0,
        1000.0,
        GucContext::Userset,
        GucFlags::default(),
    );
    // SAFETY: called once from _PG_init in the postmaster or a backend; the strings are static.
    unsafe {
        let kind = pg_sys::add_reloption_kind();
        RELOPT_KIND.store(kind, Ordering::Relaxed);
        let lock = pg_sys::AccessExclusiveLock as pg_sys::LOCKMODE;
        pg_sys::add_int_reloption(
            kind,
            c"m".as_ptr(),
            c"Max number of connections per node".as_ptr(),
            DEFAULT_M,
            2,
            100,
            lock,
        );
        pg_sys::add_int_reloption(
            kind,
            c"ef_construction".as_ptr(),
            c"Size of the dynamic candidate list for construction".as_ptr(),
            DEFAULT_EF_CONSTRUCTION,
            4,
            1000,
            lock,
        );
        pg_sys::add_string_reloption(
            kind,
            c"quantizer".as_ptr(),
            c"Quantization method: none, sq8, sq4, sq2, pq, binary or auto".as_ptr(),
            c"sq8".as_ptr(),
            Some(validate_quantizer),
            lock,
        );
        pg_sys::add_int_reloption(
            kind,
            c"pq_subvectors".as_ptr(),
            c"PQ sub-vectors (0: dimensions / 8)".as_ptr(),
            0,
            0,
            16000,
            lock,
        );
        pg_sys::add_int_reloption(
            kind,
            c"pq_bits".as_ptr(),
            c"PQ bits per sub-vector code (4 or 8)".as_ptr(),
            8,
            4,
            8,
            lock,
        );
        pg_sys::add_string_reloption(
            kind,
            c"rerank".as_ptr(),
            c"Exact re-ranking source: heap, float16 or none".as_ptr(),
            c"heap".as_ptr(),
            Some(validate_rerank),
            lock,
        );
        pg_sys::add_real_reloption(
            kind,
            c"quality_threshold".as_ptr(),
            c"Recall@10 target for quantizer = 'auto'".as_ptr(),
            0.95,
            0.0,
            1.0,
            lock,
        );
    }
}

/// Reads a C string option value.
///
/// # Safety
/// `value` is NULL or a NUL-terminated string.
unsafe fn option_str(value: *const c_char) -> Option<String> {
    // SAFETY: guaranteed by the caller.
    (!value.is_null()).then(|| {
        unsafe { CStr::from_ptr(value) }
            .to_string_lossy()
            .into_owned()
    })
}

/// Validator of the `quantizer` option.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn validate_quantizer(value: *const c_char) {
    // SAFETY: Postgres passes the option's string.
    if let Some(v) = unsafe { option_str(value) } {
        if !v.eq_ignore_ascii_case("auto") && QuantizerKind::parse(&v).is_none() {
            raise_hint(
                Code::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("invalid value for qhnsw option \"quantizer\": \"{v}\""),
                "Valid values are \"none\", \"sq8\", \"sq4\", \"sq2\", \"pq\", \"binary\" and \"auto\".",
            );
        }
    }
}

/// Validator of the `rerank` option.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn validate_rerank(value: *const c_char) {
    // SAFETY: Postgres passes the option's string.
    if let Some(v) = unsafe { option_str(value) } {
        if RerankSource::parse(&v).is_none() {
            raise_hint(
                Code::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("invalid value for qhnsw option \"rerank\": \"{v}\""),
                "Valid values are \"heap\", \"float16\" and \"none\".",
            );
        }
    }
}

/// `amoptions`: parses and validates `WITH (...)`.
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amoptions(
    reloptions: pg_sys::Datum,
    validate: bool,
) -> *mut pg_sys::bytea {
    let entry = crate::compat::relopt_entry;
    use pg_sys::relopt_type::*;
    let table = [
        entry(
            c"m",
            RELOPT_TYPE_INT,
            std::mem::offset_of!(QhnswOptionsRaw, m),
        ),
        entry(
            c"ef_construction",
            RELOPT_TYPE_INT,
            std::mem::offset_of!(QhnswOptionsRaw, ef_construction),
        ),
        entry(
            c"pq_subvectors",
            RELOPT_TYPE_INT,
            std::mem::offset_of!(QhnswOptionsRaw, pq_subvectors),
        ),
        entry(
            c"pq_bits",
            RELOPT_TYPE_INT,
            std::mem::offset_of!(QhnswOptionsRaw, pq_bits),
        ),
        entry(
            c"quantizer",
            RELOPT_TYPE_STRING,
            std::mem::offset_of!(QhnswOptionsRaw, quantizer_offset),
        ),
        entry(
            c"rerank",
            RELOPT_TYPE_STRING,
            std::mem::offset_of!(QhnswOptionsRaw, rerank_offset),
        ),
        entry(
            c"quality_threshold",
            RELOPT_TYPE_REAL,
            std::mem::offset_of!(QhnswOptionsRaw, quality_threshold),
        ),
    ];
    // SAFETY: the table describes QhnswOptionsRaw exactly; build_reloptions pallocs the result.
    let parsed = unsafe {
        pg_sys::build_reloptions(
            reloptions,
            validate,
            RELOPT_KIND.load(Ordering::Relaxed),
            std::mem::size_of::<QhnswOptionsRaw>(),
            table.as_ptr(),
            table.len() as i32,
        ) as *mut pg_sys::bytea
    };
    if validate && !parsed.is_null() {
        // SAFETY: build_reloptions returned a QhnswOptionsRaw.
        let raw = unsafe { &*(parsed as *const QhnswOptionsRaw) };
        check_combinations(
            raw.m as usize,
            raw.ef_construction as usize,
            raw.pq_bits as u8,
        );
    }
    parsed
}

/// ERRORs (22023) on option combinations that are wrong whatever the data.
fn check_combinations(m: usize, ef_construction: usize, pq_bits: u8) {
    if ef_construction < 2 * m {
        raise(
            Code::ERRCODE_INVALID_PARAMETER_VALUE,
            "ef_construction must be greater than or equal to 2 * m",
        );
    }
    if pq_bits != 4 && pq_bits != 8 {
        raise(
            Code::ERRCODE_INVALID_PARAMETER_VALUE,
            "pq_bits must be 4 or 8",
        );
    }
}

/// What makes `opts` unusable for `dims`-dimensional vectors, if anything.
pub fn dims_problem(opts: &QhnswOptions, dims: usize) -> Option<String> {
    let m = opts.pq_subvectors;
    (opts.quantizer == Some(QuantizerKind::Pq) && m != 0 && (m > dims || !dims.is_multiple_of(m)))
        .then(|| format!("pq_subvectors ({m}) must divide the number of dimensions ({dims})"))
}

/// Reads a string option stored at an offset inside the options struct.
///
/// # Safety
/// `raw` must be a QhnswOptionsRaw built by `amoptions`.
unsafe fn string_at(raw: *const QhnswOptionsRaw, offset: i32) -> Option<String> {
    // SAFETY: build_reloptions stores strings inside the same allocation at `offset`.
    (offset > 0).then(|| {
        unsafe { CStr::from_ptr((raw as *const c_char).add(offset as usize)) }
            .to_string_lossy()
            .into_owned()
    })
}

/// Resolves the options of an index relation (defaults when none were given).
pub fn index_options(index: pg_sys::Relation) -> QhnswOptions {
    // SAFETY: rd_options is NULL or the bytea amoptions built for this index.
    let raw = unsafe { (*index).rd_options as *const QhnswOptionsRaw };
    let mut opts = QhnswOptions {
        m: DEFAULT_M as usize,
        ef_construction: DEFAULT_EF_CONSTRUCTION as usize,
        quantizer: Some(QuantizerKind::Sq8),
        pq_subvectors: 0,
        pq_bits: 8,
        rerank: RerankSource::Heap,
        quality_threshold: 0.95,
    };
    if !raw.is_null() {
        // SAFETY: raw is a QhnswOptionsRaw (see above).
        unsafe {
            opts.m = (*raw).m as usize;
            opts.ef_construction = (*raw).ef_construction as usize;
            opts.pq_subvectors = (*raw).pq_subvectors as usize;
            opts.pq_bits = (*raw).pq_bits as u8;
            opts.quality_threshold = (*raw).quality_threshold;
            if let Some(q) = string_at(raw, (*raw).quantizer_offset) {
                opts.quantizer = QuantizerKind::parse(&q);
            }
            if let Some(r) = string_at(raw, (*raw).rerank_offset) {
                opts.rerank = RerankSource::parse(&r).unwrap_or(RerankSource::Heap);
            }
        }
    }
    check_combinations(opts.m, opts.ef_construction, opts.pq_bits);
    opts
}
