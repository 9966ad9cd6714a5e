//! `ambulkdelete` / `amvacuumcleanup`.
//!
//! VACUUM works in three passes over the graph pages of the current build:
//! 1. mark: elements whose heap row is dead get FLAG_DELETED (scans still walk
//!    through them, so the graph stays connected, but never return them);
//! 2. repair: every live node that links to a deleted one gets a new list on that
//!    layer: its live neighbours stay and the slots of the deleted ones go to the best
//!    of their live neighbours (one hop through the hole, Algorithm 4), and the entry
//!    point moves to the highest live node if it was deleted;
//! 3. free: deleted elements shrink to tombstones and the page's free space goes to the
//!    free space map, where inserts find it and reuse the tombstones' line pointers;
//! 4. reconnect: every live node no longer reachable over layer 0 from the entry point
//!    gets a link from its nearest reachable node.
//!
//! Each page change is its own GenericXLog record; a list is only rewritten if it did
//! not change since it was read (a concurrent insert wins and keeps its link).

use super::buffer::{block_count, graph_blocks, raise_corrupt, PageRead, PageWrite};
use super::graph_pages::shape_of;
use super::meta::{load_quantizer, read_meta, write_meta};
use super::pages::{
    node_id, node_location, tombstone, ElementRef, ElementShape, PageKind, ELEMENT_FIXED_BYTES,
    INVALID_NODE,
};
use crate::distance::Metric;
use crate::graph::{select_neighbors_heuristic, Candidate, HnswParams};
use crate::quant::Quantizer;
use pgrx::pg_sys;
use std::collections::{HashMap, HashSet};

/// Allocates zeroed stats if the caller passed none.
fn ensure_stats(stats: *mut pg_sys::IndexBulkDeleteResult) -> *mut pg_sys::IndexBulkDeleteResult {
    if stats.is_null() {
        // SAFETY: palloc0 of a plain struct.
        unsafe { pg_sys::palloc0(std::mem::size_of::<pg_sys::IndexBulkDeleteResult>()) as *mut _ }
    } else {
        stats
    }
}

/// Parses an element on a page or raises corruption.
fn element<'a>(
    index: pg_sys::Relation,
    block: u32,
    bytes: &'a [u8],
    shape: ElementShape,
) -> ElementRef<'a> {
    ElementRef::parse(bytes, shape).unwrap_or_else(|e| raise_corrupt(index, block, &e))
}

/// Pass 1: marks dead rows' elements deleted; returns every deleted, not yet freed node.
fn mark_dead(
    index: pg_sys::Relation,
    blocks: &[u32],
    shape: ElementShape,
    is_dead: &mut dyn FnMut((u32, u16)) -> bool,
    removed: &mut f64,
) -> HashSet<u32> {
    let mut deleted = HashSet::new();
    for &block in blocks {
        // SAFETY: vacuum_delay_point only sleeps / checks interrupts.
        unsafe { pg_sys::vacuum_delay_point() };
        let mut dead = Vec::new();
        {
            let page = PageRead::new(index, block, PageKind::Graph);
            for offset in 1..=page.item_count() {
                let e = element(index, block, page.item(offset), shape);
                if e.is_free() {
                    continue;
                }
                if e.is_deleted() {
                    deleted.insert(node_id(block, offset));
                } else if is_dead(e.heap_tid()) {
                    dead.push(offset);
                }
            }
        }
        if dead.is_empty() {
            continue;
        }
        let mut page = PageWrite::new(index, block, PageKind::Graph);
        for &offset in &dead {
            super::pages::mark_deleted(page.item_mut(offset));
            deleted.insert(node_id(block, offset));
        }
        page.commit();
        *removed += dead.len() as f64;
    }
    deleted
}

/// Codes of nodes, read once each during a repair.
struct CodeCache<'q> {
    index: pg_sys::Relation,
    shape: ElementShape,
    quantizer: &'q Quantizer,
    metric: Metric,
    codes: HashMap<u32, Vec<u8>>,
}

impl CodeCache<'_> {
    /// The code of a node (empty for a tombstone).
    fn code(&mut self, id: u32) -> &[u8] {
        let (index, shape) = (self.index, self.shape);
        self.codes.entry(id).or_insert_with(|| {
            super::graph_pages::with_element(index, shape, id, |e| e.code().to_vec())
        })
    }

    /// Code-to-code distance between two nodes.
    fn distance(&mut self, a: u32, b: u32) -> f32 {
        let (quantizer, metric) = (self.quantizer, self.metric);
        let code_a = self.code(a).to_vec();
        let code_b = self.code(b);
        if code_a.is_empty() || code_b.is_empty() {
            return f32::INFINITY;
        }
        quantizer.code_distance(metric, &code_a, code_b)
    }
}

/// A new neighbour list for `id` on `layer` that routes around deleted nodes: every live
/// neighbour stays (dropping one could strand it while others search), and the slots of
/// the deleted ones go to the best of their own live neighbours, chosen with Algorithm 4.
fn repaired_list(
    cache: &mut CodeCache,
    id: u32,
    list: &[u32],
    layer: usize,
    deleted: &HashSet<u32>,
    params: &HnswParams,
) -> Vec<u32> {
    let mut kept: Vec<u32> = list
        .iter()
        .copied()
        .filter(|n| !deleted.contains(n))
        .collect();
    let free_slots = params.max_neighbors(layer).saturating_sub(kept.len());
    let mut pool: Vec<u32> = Vec::new();
    for hole in list.iter().filter(|n| deleted.contains(n)) {
        let (index, shape) = (cache.index, cache.shape);
        let through: Vec<u32> =
            super::graph_pages::with_element(index, shape, *hole, |e| e.neighbors(layer).collect());
        pool.extend(
            through
                .into_iter()
                .filter(|n| *n != id && !deleted.contains(n) && !kept.contains(n)),
        );
    }
    pool.sort_unstable();
    pool.dedup();
    let mut candidates: Vec<Candidate<u32>> = pool
        .into_iter()
        .map(|n| Candidate {
            id: n,
            distance: cache.distance(id, n),
        })
        .collect();
    candidates.retain(|c| c.distance.is_finite());
    candidates.sort_by(|a, b| a.distance.total_cmp(&b.distance));
    candidates.truncate(params.ef_construction);
    let chosen =
        select_neighbors_heuristic(&candidates, free_slots, |a, b| cache.distance(a, b), true);
    kept.extend(chosen.into_iter().map(|c| c.id));
    kept
}

/// Pass 2: rewrites every list that links to a deleted node; returns the highest live node.
fn repair(
    index: pg_sys::Relation,
    blocks: &[u32],
    cache: &mut CodeCache,
    deleted: &HashSet<u32>,
    params: &HnswParams,
) -> Option<(u32, usize)> {
    let shape = cache.shape;
    let mut highest: Option<(u32, usize)> = None;
    for &block in blocks {
        // SAFETY: vacuum_delay_point only sleeps / checks interrupts.
        unsafe { pg_sys::vacuum_delay_point() };
        let mut broken: Vec<(u16, usize, Vec<u32>)> = Vec::new();
        {
            let page = PageRead::new(index, block, PageKind::Graph);
            for offset in 1..=page.item_count() {
                let e = element(index, block, page.item(offset), shape);
                if e.is_deleted() {
                    continue;
                }
                if highest.is_none_or(|(_, level)| e.level() > level) {
                    highest = Some((node_id(block, offset), e.level()));
                }
                for layer in 0..=e.level() {
                    let list: Vec<u32> = e.neighbors(layer).collect();
                    if list.iter().any(|n| deleted.contains(n)) {
                        broken.push((offset, layer, list));
                    }
                }
            }
        }
        for (offset, layer, list) in broken {
            let id = node_id(block, offset);
            let fixed = repaired_list(cache, id, &list, layer, deleted, params);
            super::graph_pages::replace_list_if_unchanged(index, shape, id, layer, &list, &fixed);
        }
    }
    highest
}

/// Pass 3: shrinks deleted elements to tombstones and records free space.
fn free_deleted(index: pg_sys::Relation, shape: ElementShape, deleted: &HashSet<u32>) {
    let mut by_block: HashMap<u32, Vec<u16>> = HashMap::new();
    for id in deleted {
        let (block, offset) = node_location(*id);
        by_block.entry(block).or_default().push(offset);
    }
    let stone = tombstone();
    for (block, offsets) in by_block {
        let mut page = PageWrite::new(index, block, PageKind::Graph);
        for offset in offsets {
            let e = element(index, block, page.item_mut(offset), shape);
            if !e.is_deleted() || e.is_free() {
                continue;
            }
            // SAFETY: offset is a valid item of the locked working copy; the tombstone is smaller.
            let ok = unsafe {
                pg_sys::PageIndexTupleOverwrite(
                    page.page(),
                    offset,
                    stone.as_ptr() as pg_sys::Item,
                    ELEMENT_FIXED_BYTES,
                )
            };
            if !ok {
                raise_corrupt(
                    index,
                    block,
                    &super::pages::LayoutError::Corrupt("cannot shrink a deleted element".into()),
                );
            }
        }
        let free = page.free_space();
        page.commit();
        // SAFETY: records the page's free space in the index's free space map.
        unsafe { pg_sys::RecordPageWithFreeSpace(index, block, free) };
    }
    // SAFETY: propagates the recorded values to the upper FSM levels.
    unsafe { pg_sys::FreeSpaceMapVacuum(index) };
}

/// Pass 2b: links every live node that is not reachable over layer 0 from the entry
/// point from its nearest reachable node (one of its own neighbours, else the best hit
/// of a search for it), as the in-memory build's repair pass does.
fn reconnect(index: pg_sys::Relation, blocks: &[u32], cache: &mut CodeCache, entry: u32) {
    let shape = cache.shape;
    let mut lists: HashMap<u32, (bool, Vec<u32>)> = HashMap::new();
    for &block in blocks {
        let page = PageRead::new(index, block, PageKind::Graph);
        for offset in 1..=page.item_count() {
            let e = element(index, block, page.item(offset), shape);
            if !e.is_free() {
                lists.insert(
                    node_id(block, offset),
                    (e.is_deleted(), e.neighbors(0).collect()),
                );
            }
        }
    }
    let mut reached: HashSet<u32> = HashSet::new();
    let mark = |from: u32, reached: &mut HashSet<u32>, lists: &HashMap<u32, (bool, Vec<u32>)>| {
        let mut stack = vec![from];
        reached.insert(from);
        while let Some(id) = stack.pop() {
            for next in lists.get(&id).map(|l| l.1.as_slice()).unwrap_or(&[]) {
                if lists.contains_key(next) && reached.insert(*next) {
                    stack.push(*next);
                }
            }
        }
    };
    if !lists.contains_key(&entry) {
        return;
    }
    mark(entry, &mut reached, &lists);
    let stranded: Vec<u32> = lists
        .iter()
        .filter(|(id, (deleted, _))| !deleted && !reached.contains(id))
        .map(|(id, _)| *id)
        .collect();
    for u in stranded {
        if reached.contains(&u) {
            continue;
        }
        let via = lists[&u]
            .1
            .iter()
            .copied()
            .filter(|v| reached.contains(v) && !lists.get(v).is_some_and(|l| l.0))
            .map(|v| (v, cache.distance(u, v)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(v, _)| v)
            .or_else(|| nearest_reachable(index, cache, entry, u, &reached));
        if let Some(v) = via {
            let level = super::graph_pages::with_element(index, shape, entry, |e| e.level());
            let mut query = vec![0f32; shape.dims];
            let code = cache.code(u).to_vec();
            cache.quantizer.decode(&code, &mut query);
            let mut graph = super::graph_pages::PageGraph {
                index,
                shape,
                entry: Some((entry, level)),
                estimator: cache.quantizer.estimator(&query, cache.metric),
                quantizer: cache.quantizer,
                distances: 0,
                back_linked: false,
            };
            super::graph_pages::force_back_link(&mut graph, &[v], u);
            if let Some(list) = lists.get_mut(&v) {
                list.1.push(u);
            }
            mark(u, &mut reached, &lists);
        }
    }
}

/// Searches the graph for `u`'s own vector and returns the best reachable live hit.
fn nearest_reachable(
    index: pg_sys::Relation,
    cache: &mut CodeCache,
    entry: u32,
    u: u32,
    reached: &HashSet<u32>,
) -> Option<u32> {
    let code = cache.code(u).to_vec();
    if code.is_empty() {
        return None;
    }
    let mut query = vec![0f32; cache.shape.dims];
    cache.quantizer.decode(&code, &mut query);
    let level = super::graph_pages::with_element(index, cache.shape, entry, |e| e.level());
    let mut graph = super::graph_pages::PageGraph {
        index,
        shape: cache.shape,
        entry: Some((entry, level)),
        estimator: cache.quantizer.estimator(&query, cache.metric),
        quantizer: cache.quantizer,
        distances: 0,
        back_linked: false,
    };
    crate::graph::knn_search(&mut graph, 64)
        .into_iter()
        .map(|c| c.id)
        .find(|id| {
            *id != u
                && reached.contains(id)
                && !super::graph_pages::with_element(index, cache.shape, *id, |e| e.is_deleted())
        })
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
    let blocks = graph_blocks(index, meta.build_tag());
    let mut is_dead = |(block, offset): (u32, u16)| {
        let mut tid = pg_sys::ItemPointerData::default();
        tid.ip_blkid.bi_hi = (block >> 16) as u16;
        tid.ip_blkid.bi_lo = (block & 0xffff) as u16;
        tid.ip_posid = offset;
        // SAFETY: the callback only reads the TID.
        unsafe { callback(&mut tid, callback_state) }
    };
    let mut removed = 0.0;
    let deleted = mark_dead(index, &blocks, shape, &mut is_dead, &mut removed);
    // SAFETY: stats is a valid struct.
    unsafe { (*stats).tuples_removed += removed };
    let Some(quantizer) = load_quantizer(index, &meta) else {
        return stats;
    };
    if deleted.is_empty() {
        return stats;
    }
    let params = HnswParams::new(meta.m as usize, meta.ef_construction as usize);
    let mut cache = CodeCache {
        index,
        shape,
        quantizer: &quantizer,
        metric: meta.code_metric(),
        codes: HashMap::new(),
    };
    let highest = repair(index, &blocks, &mut cache, &deleted, &params);
    let mut current = read_meta(index);
    if current.entry_node != INVALID_NODE && deleted.contains(&current.entry_node) {
        (current.entry_node, current.entry_level) = match highest {
            Some((id, level)) => (id, level as u8),
            None => (INVALID_NODE, 0),
        };
        write_meta(index, &current);
    }
    free_deleted(index, shape, &deleted);
    if current.entry_node != INVALID_NODE {
        reconnect(index, &blocks, &mut cache, current.entry_node);
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
    let mut live = 0u64;
    for block in graph_blocks(index, meta.build_tag()) {
        let page = PageRead::new(index, block, PageKind::Graph);
        for offset in 1..=page.item_count() {
            if !element(index, block, page.item(offset), shape).is_deleted() {
                live += 1;
            }
        }
    }
    // SAFETY: stats is a valid struct.
    unsafe {
        (*stats).num_pages = block_count(index);
        (*stats).num_index_tuples = live as f64;
    }
    stats
}
