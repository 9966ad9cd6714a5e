//! Build progress in `pg_stat_progress_create_index`: the build's phase (named by
//! `ambuildphasename`) and `tuples_done` / `tuples_total` within the phase.
//! Only the backend thread reports (worker progress goes through atomics).

use pgrx::pg_sys;
use std::ffi::{c_char, CStr};

/// Phases of a qhnsw build, in order (1 is Postgres' generic "initializing").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Heap scan: tuples_done counts the rows read.
    Loading = 2,
    /// Quantizer training on the sample.
    Training = 3,
    /// Encoding every row.
    Encoding = 4,
    /// Linking the HNSW graph: tuples_done counts linked nodes.
    Linking = 5,
    /// Writing the index pages: tuples_done counts written nodes.
    Writing = 6,
    /// Memory-bounded build, second heap scan: rows read and encoded into memory.
    LoadingCodes = 7,
    /// Memory-bounded build past maintenance_work_mem: rows inserted into the on-page graph.
    Inserting = 8,
}

/// Name of a build phase number, as `ambuildphasename` reports it.
pub fn phase_name(phase: i64) -> Option<&'static CStr> {
    Some(match phase {
        1 => c"initializing",
        2 => c"loading tuples",
        3 => c"training quantizer",
        4 => c"encoding vectors",
        5 => c"building graph",
        6 => c"writing index pages",
        7 => c"loading tuples as codes (memory-bounded)",
        8 => c"inserting tuples into the on-page graph (memory-bounded)",
        _ => return None,
    })
}

/// `ambuildphasename`.
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn ambuildphasename(phase: i64) -> *mut c_char {
    phase_name(phase).map_or(std::ptr::null_mut(), |name| name.as_ptr() as *mut c_char)
}

/// Progress reporting of one build: on for CREATE INDEX / REINDEX, off elsewhere.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    enabled: bool,
}

impl Progress {
    /// Reports to pg_stat_progress_create_index (ambuild).
    pub fn on() -> Progress {
        Progress { enabled: true }
    }

    /// Reports nothing (a rebuild inside INSERT, the SQL API).
    pub fn off() -> Progress {
        Progress { enabled: false }
    }

    /// Enters `phase` with `total` tuples to do (0: unknown) and none done.
    pub fn phase(self, phase: Phase, total: usize) {
        if !self.enabled {
            return;
        }
        let index = [
            pg_sys::PROGRESS_CREATEIDX_SUBPHASE as i32,
            pg_sys::PROGRESS_CREATEIDX_TUPLES_TOTAL as i32,
            pg_sys::PROGRESS_CREATEIDX_TUPLES_DONE as i32,
        ];
        let value = [phase as i64, total as i64, 0];
        // SAFETY: three parameters, both arrays hold three values.
        unsafe { pg_sys::pgstat_progress_update_multi_param(3, index.as_ptr(), value.as_ptr()) };
    }

    /// Reports `done` tuples done in the current phase.
    pub fn done(self, done: usize) {
        if self.enabled {
            // SAFETY: a shared-memory progress update of this backend.
            unsafe {
                pg_sys::pgstat_progress_update_param(
                    pg_sys::PROGRESS_CREATEIDX_TUPLES_DONE as i32,
                    done as i64,
                )
            };
        }
    }
}
