//! `ambulkdelete` / `amvacuumcleanup`: mark the elements of dead heap rows deleted
//! (scans pass through them but never return them) and report index statistics.

use super::buffer::{block_count, graph_blocks, raise_corrupt, PageRead, PageWrite};
use super::graph_pages::shape_of;
use super::meta::read_meta;
use super::pages::{mark_deleted, ElementRef, PageKind};
use pgrx::pg_sys;

/// Allocates zeroed stats if the caller passed none.
fn ensure_stats(stats: *mut pg_sys::IndexBulkDeleteResult) -> *mut pg_sys::IndexBulkDeleteResult {
    if stats.is_null() {
        // SAFETY: palloc0 of a plain struct.
        unsafe { pg_sys::palloc0(std::mem::size_of::<pg_sys::IndexBulkDeleteResult>()) as *mut _ }
    } else {
        stats
    }
}

/// `ambulkdelete`.
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn ambulkdelete(
    info: *mut pg_sys::IndexVacuumInfo,
    stats: *mut pg_sys::IndexBulkDeleteResult,
    callback: pg_sys::IndexBulkDeleteCallback,
    callback_state: *mut std::ffi::c_void,
) -> *mut pg_sys::IndexBulkDeleteResult {
    let stats = ensure_stats(stats);
    // SAFETY: info is valid for the call.
    let index = unsafe { (*info).index };
    let meta = read_meta(index);
    let shape = shape_of(&meta);
    let callback = callback.expect("bulk delete callback");
    for block in graph_blocks(index, meta.build_tag()) {
        // SAFETY: vacuum_delay_point only sleeps / checks interrupts.
        unsafe { pg_sys::vacuum_delay_point() };
        let dead: Vec<u16> = {
            let page = PageRead::new(index, block, PageKind::Graph);
            (1..=page.item_count())
                .filter(|&offset| {
                    let element = match ElementRef::parse(page.item(offset), shape) {
                        Ok(e) => e,
                        Err(e) => raise_corrupt(index, block, &e),
                    };
                    if element.is_deleted() {
                        return false;
                    }
                    let (blk, off) = element.heap_tid();
                    let mut tid = pg_sys::ItemPointerData::default();
                    tid.ip_blkid.bi_hi = (blk >> 16) as u16;
                    tid.ip_blkid.bi_lo = (blk & 0xffff) as u16;
                    tid.ip_posid = off;
                    // SAFETY: the callback only reads the TID.
                    unsafe { callback(&mut tid, callback_state) }
                })
                .collect()
        };
        if dead.is_empty() {
            continue;
        }
        let mut page = PageWrite::new(index, block, PageKind::Graph);
        for offset in &dead {
            mark_deleted(page.item_mut(*offset));
        }
        page.commit();
        // SAFETY: stats is a valid struct.
        unsafe { (*stats).tuples_removed += dead.len() as f64 };
    }
    stats
}

/// `amvacuumcleanup`: counts live elements and pages.
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amvacuumcleanup(
    info: *mut pg_sys::IndexVacuumInfo,
    stats: *mut pg_sys::IndexBulkDeleteResult,
) -> *mut pg_sys::IndexBulkDeleteResult {
    // SAFETY: info is valid for the call.
    let (index, analyze_only) = unsafe { ((*info).index, (*info).analyze_only) };
    if analyze_only {
        return stats;
    }
    let stats = ensure_stats(stats);
    let meta = read_meta(index);
    let shape = shape_of(&meta);
    let blocks = block_count(index);
    let mut live = 0u64;
    for block in graph_blocks(index, meta.build_tag()) {
        let page = PageRead::new(index, block, PageKind::Graph);
        for offset in 1..=page.item_count() {
            match ElementRef::parse(page.item(offset), shape) {
                Ok(e) if !e.is_deleted() => live += 1,
                Ok(_) => {}
                Err(e) => raise_corrupt(index, block, &e),
            }
        }
    }
    // SAFETY: stats is a valid struct.
    unsafe {
        (*stats).num_pages = blocks;
        (*stats).num_index_tuples = live as f64;
    }
    stats
}
