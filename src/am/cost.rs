//! `amcostestimate`: make the planner use qhnsw for `ORDER BY distance LIMIT k`, and
//! never for anything else (there is nothing else it can answer).

use super::options::EF_SEARCH;
use pgrx::pg_sys;

/// Cost that keeps the planner away from a path.
const DISABLE_COST: f64 = 1.0e10;

/// `amcostestimate` (its signature is Postgres').
#[pgrx::pg_guard]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C-unwind" fn amcostestimate(
    _root: *mut pg_sys::PlannerInfo,
    path: *mut pg_sys::IndexPath,
    _loop_count: f64,
    startup: *mut pg_sys::Cost,
    total: *mut pg_sys::Cost,
    selectivity: *mut pg_sys::Selectivity,
    correlation: *mut f64,
    pages: *mut f64,
) {
    // SAFETY: the planner passes valid out-pointers and a valid path.
    unsafe {
        *selectivity = 1.0;
        *correlation = 0.0;
        if (*path).indexorderbys.is_null() {
            *startup = DISABLE_COST;
            *total = DISABLE_COST;
            *pages = 0.0;
            return;
        }
        let info = (*path).indexinfo;
        let tuples = (*info).tuples.max(1.0);
        let index_pages = ((*info).pages as f64).max(1.0);
        let ef = EF_SEARCH.get().max(1) as f64;
        // A search visits roughly ef * 2m nodes on layer 0 plus a descent of log(n) steps.
        let visited = (ef * 32.0 + tuples.ln() * 16.0).min(tuples);
        let per_page = (tuples / index_pages).max(1.0);
        let pages_read = (visited / per_page).min(index_pages).max(1.0);
        // The sequential scan we compete with is charged for the heap's pages only, not
        // for the TOAST pages its vectors live in once they pass ~2 kB (512 float4 or
        // 2000 sq8vector dimensions), nor for detoasting them. Charging more index pages
        // than the heap has would hand small tables of large vectors to a scan that
        // reads far more; so pages beyond the heap's count are not charged.
        let heap_pages = ((*(*info).rel).pages as f64).max(1.0);
        let charged_pages = pages_read.min(heap_pages);
        let cost = visited * pg_sys::cpu_operator_cost * 2.0
            + charged_pages * pg_sys::random_page_cost * 0.25;
        *startup = cost;
        *total = cost + ef * pg_sys::cpu_index_tuple_cost;
        *pages = pages_read;
    }
}
