//! Scan counters per index (scans, rows, distances, re-ranked candidates, time).
//!
//! With `shared_preload_libraries = 'vectorize_quant'` the counters live in shared
//! memory, so every backend sees every backend's scans (like `pg_stat_user_indexes`):
//! a fixed table of `SLOTS` entries keyed by (database oid, index oid), found by linear
//! probing and updated with relaxed atomic adds (no locks on the scan path). Without
//! the preload (or when the table is full) each backend counts its own scans only;
//! `is_shared()` says which, and the SQL functions report it.

use pgrx::pg_sys;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicPtr, AtomicU64, Ordering};

/// Indexes tracked in shared memory (about 48 bytes each).
pub const SLOTS: usize = 4096;

/// Counters of one index.
#[derive(Default, Clone, Copy, Debug)]
pub struct IndexCounters {
    /// Finished scans.
    pub scans: u64,
    /// Rows returned.
    pub rows: u64,
    /// Quantized distance computations.
    pub distances: u64,
    /// Candidates re-scored exactly.
    pub reranked: u64,
    /// Total scan time in microseconds.
    pub micros: u64,
}

/// One shared slot: key `(database oid << 32) | index oid`, 0 when free.
#[repr(C)]
struct Slot {
    key: AtomicU64,
    scans: AtomicU64,
    rows: AtomicU64,
    distances: AtomicU64,
    reranked: AtomicU64,
    micros: AtomicU64,
}

/// The shared-memory area.
#[repr(C)]
struct Shared {
    /// Time of the last full reset (TimestampTz), or of the server start.
    reset_at: AtomicI64,
    /// Slots, probed linearly from a hash of the key.
    slots: [Slot; SLOTS],
}

/// The shared area once attached (null without shared_preload_libraries).
static SHARED: AtomicPtr<Shared> = AtomicPtr::new(std::ptr::null_mut());
/// Previous shmem hooks, chained.
static mut PREV_REQUEST_HOOK: pg_sys::shmem_request_hook_type = None;
/// Previous startup hook, chained.
static mut PREV_STARTUP_HOOK: pg_sys::shmem_startup_hook_type = None;

thread_local! {
    /// Backend-local counters (no shared memory, or the shared table is full).
    static LOCAL: RefCell<HashMap<u32, IndexCounters>> = RefCell::new(HashMap::new());
    /// Time of the last local reset.
    static LOCAL_RESET: RefCell<Option<i64>> = const { RefCell::new(None) };
}

/// Installs the shared-memory hooks when loaded from `shared_preload_libraries`; call from `_PG_init`.
pub fn init() {
    // SAFETY: _PG_init runs single-threaded in the postmaster (or a backend); the hooks
    // are process globals that we chain exactly once.
    unsafe {
        if !pg_sys::process_shared_preload_libraries_in_progress {
            return;
        }
        PREV_REQUEST_HOOK = pg_sys::shmem_request_hook;
        pg_sys::shmem_request_hook = Some(shmem_request);
        PREV_STARTUP_HOOK = pg_sys::shmem_startup_hook;
        pg_sys::shmem_startup_hook = Some(shmem_startup);
    }
}

/// `shmem_request_hook`: reserves the counters' space.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn shmem_request() {
    // SAFETY: called by the postmaster while shared memory is being sized.
    unsafe {
        if let Some(prev) = PREV_REQUEST_HOOK {
            prev();
        }
        pg_sys::RequestAddinShmemSpace(std::mem::size_of::<Shared>());
    }
}

/// `shmem_startup_hook`: creates (or attaches to) the counters' area.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn shmem_startup() {
    // SAFETY: called once per process start-up with shared memory attached; the lock
    // serialises creation with other libraries; the area is zeroed before first use.
    unsafe {
        if let Some(prev) = PREV_STARTUP_HOOK {
            prev();
        }
        let lock = &raw mut (*pg_sys::MainLWLockArray.add(21)).lock; // AddinShmemInitLock
        pg_sys::LWLockAcquire(lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
        let mut found = false;
        let ptr = pg_sys::ShmemInitStruct(
            c"vectorize_quant scan counters".as_ptr(),
            std::mem::size_of::<Shared>(),
            &mut found,
        ) as *mut Shared;
        if !found {
            std::ptr::write_bytes(ptr as *mut u8, 0, std::mem::size_of::<Shared>());
            (*ptr)
                .reset_at
                .store(pg_sys::GetCurrentTimestamp(), Ordering::Relaxed);
        }
        pg_sys::LWLockRelease(lock);
        SHARED.store(ptr, Ordering::Release);
    }
}

/// The shared area, if the library was preloaded.
fn shared() -> Option<&'static Shared> {
    let ptr = SHARED.load(Ordering::Acquire);
    // SAFETY: a non-null pointer is the ShmemInitStruct area, mapped for the process lifetime.
    (!ptr.is_null()).then(|| unsafe { &*ptr })
}

/// True when counters are shared by all backends (library preloaded).
pub fn is_shared() -> bool {
    shared().is_some()
}

/// The current database's oid.
fn database() -> u32 {
    // SAFETY: MyDatabaseId is set once a backend has connected.
    unsafe { pg_sys::MyDatabaseId }.to_u32()
}

/// Slot key of an index in the current database.
fn key_of(oid: u32) -> u64 {
    ((database() as u64) << 32) | oid as u64
}

/// Start of the probe sequence of a key.
fn probe_start(key: u64) -> usize {
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize % SLOTS
}

/// Finds the slot of `key`, claiming a free one if `create`; None when absent or full.
fn find_slot(area: &'static Shared, key: u64, create: bool) -> Option<&'static Slot> {
    let start = probe_start(key);
    for i in 0..SLOTS {
        let slot = &area.slots[(start + i) % SLOTS];
        let current = slot.key.load(Ordering::Acquire);
        if current == key {
            return Some(slot);
        }
        if current == 0 {
            if !create {
                return None;
            }
            match slot
                .key
                .compare_exchange(0, key, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some(slot),
                Err(k) if k == key => return Some(slot),
                Err(_) => continue,
            }
        }
    }
    None
}

/// Applies an update to an index's counters (shared slot, else local map).
fn update(
    index: pg_sys::Relation,
    shared_add: impl Fn(&Slot),
    local: impl FnOnce(&mut IndexCounters),
) {
    // SAFETY: index is open.
    let oid = unsafe { (*index).rd_id }.to_u32();
    if let Some(area) = shared() {
        if let Some(slot) = find_slot(area, key_of(oid), true) {
            shared_add(slot);
            return;
        }
    }
    LOCAL.with(|c| local(c.borrow_mut().entry(oid).or_default()));
}

/// Adds returned rows.
pub fn record_rows(index: pg_sys::Relation, rows: u64) {
    update(
        index,
        |s| {
            s.rows.fetch_add(rows, Ordering::Relaxed);
        },
        |c| c.rows += rows,
    );
}

/// Adds distance computations.
pub fn record_distances(index: pg_sys::Relation, n: u64) {
    update(
        index,
        |s| {
            s.distances.fetch_add(n, Ordering::Relaxed);
        },
        |c| c.distances += n,
    );
}

/// Adds re-ranked candidates.
pub fn record_reranked(index: pg_sys::Relation, n: u64) {
    update(
        index,
        |s| {
            s.reranked.fetch_add(n, Ordering::Relaxed);
        },
        |c| c.reranked += n,
    );
}

/// Counts a finished scan and its time.
pub fn record_scan(index: pg_sys::Relation, micros: u64) {
    update(
        index,
        |s| {
            s.scans.fetch_add(1, Ordering::Relaxed);
            s.micros.fetch_add(micros, Ordering::Relaxed);
        },
        |c| {
            c.scans += 1;
            c.micros += micros;
        },
    );
}

/// Reads a shared slot's counters.
fn read_slot(slot: &Slot) -> IndexCounters {
    IndexCounters {
        scans: slot.scans.load(Ordering::Relaxed),
        rows: slot.rows.load(Ordering::Relaxed),
        distances: slot.distances.load(Ordering::Relaxed),
        reranked: slot.reranked.load(Ordering::Relaxed),
        micros: slot.micros.load(Ordering::Relaxed),
    }
}

/// Adds `b` into `a`.
fn add(a: &mut IndexCounters, b: &IndexCounters) {
    a.scans += b.scans;
    a.rows += b.rows;
    a.distances += b.distances;
    a.reranked += b.reranked;
    a.micros += b.micros;
}

/// The counters of an index oid in the current database (shared plus this backend's overflow).
pub fn counters(oid: u32) -> IndexCounters {
    let mut out = LOCAL.with(|c| c.borrow().get(&oid).copied().unwrap_or_default());
    if let Some(area) = shared() {
        if let Some(slot) = find_slot(area, key_of(oid), false) {
            add(&mut out, &read_slot(slot));
        }
    }
    out
}

/// Every index of the current database with counters, sorted by oid.
pub fn all_counters() -> Vec<(u32, IndexCounters)> {
    let mut map: HashMap<u32, IndexCounters> = LOCAL.with(|c| c.borrow().clone());
    if let Some(area) = shared() {
        let db = database() as u64;
        for slot in area.slots.iter() {
            let key = slot.key.load(Ordering::Acquire);
            if key != 0 && key >> 32 == db {
                add(map.entry(key as u32).or_default(), &read_slot(slot));
            }
        }
    }
    let mut out: Vec<_> = map.into_iter().collect();
    out.sort_by_key(|(oid, _)| *oid);
    out
}

/// Zeroes a slot's counters.
fn zero_slot(slot: &Slot) {
    slot.scans.store(0, Ordering::Relaxed);
    slot.rows.store(0, Ordering::Relaxed);
    slot.distances.store(0, Ordering::Relaxed);
    slot.reranked.store(0, Ordering::Relaxed);
    slot.micros.store(0, Ordering::Relaxed);
}

/// Resets one index's counters (`Some(oid)`) or all of the current database's (`None`).
///
/// Slots stay claimed (freeing one would break other keys' probe chains), so a dropped
/// index keeps its slot until the server restarts; past `SLOTS` indexes, counting is local.
pub fn reset(oid: Option<u32>) {
    // SAFETY: GetCurrentTimestamp has no preconditions.
    let now = unsafe { pg_sys::GetCurrentTimestamp() };
    LOCAL.with(|c| match oid {
        Some(o) => {
            c.borrow_mut().remove(&o);
        }
        None => {
            c.borrow_mut().clear();
            LOCAL_RESET.with(|r| *r.borrow_mut() = Some(now));
        }
    });
    let Some(area) = shared() else { return };
    match oid {
        Some(o) => {
            if let Some(slot) = find_slot(area, key_of(o), false) {
                zero_slot(slot);
            }
        }
        None => {
            let db = database() as u64;
            for slot in area.slots.iter() {
                let key = slot.key.load(Ordering::Acquire);
                if key != 0 && key >> 32 == db {
                    zero_slot(slot);
                }
            }
            area.reset_at.store(now, Ordering::Relaxed);
        }
    }
}

/// Time of the last full reset (TimestampTz): shared, or this backend's (None: never reset locally).
pub fn reset_time() -> Option<i64> {
    match shared() {
        Some(area) => Some(area.reset_at.load(Ordering::Relaxed)),
        None => LOCAL_RESET.with(|r| *r.borrow()),
    }
}
