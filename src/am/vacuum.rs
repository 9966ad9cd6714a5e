//! `ambulkdelete` / `amvacuumcleanup`.
//!
//! VACUUM works in these passes over the graph pages of the current build (the locks are
//! explained in locks.rs and docs/locking.md):
//! 1. mark (beside inserts and scans): elements whose heap row is dead get FLAG_DELETED;
//!    searches still walk through them but never return them, inserts never link to them;
//! 2. with inserts excluded (UPDATE Exclusive): pick the entry point (the current one if
//!    live, else the highest live node); reconnect: every live node that the entry point
//!    does not reach over layer-0 links between live nodes gets a link from its nearest
//!    reached live node; only then the entry point moves; repair: every live list that
//!    links to a deleted node gets a new list on that layer (its live neighbours stay and
//!    the slots of the deleted ones go to the best of their live neighbours, Algorithm 4);
//!    the live count on the meta page drops by the rows marked;
//!    (between the reconnect and the repair VACUUM waits for the beams in flight, so no
//!    beam reads a list from before the reconnect and another from after the repair);
//! 3. wait for scans: beams in flight may still be walking towards deleted nodes;
//! 4. free: deleted elements shrink to tombstones and the page's free space goes to the
//!    free space map, where inserts find it and reuse the tombstones' line pointers.
//!
//! Each page change is its own GenericXLog record.

use super::buffer::{block_count, graph_blocks, raise_corrupt, PageRead, PageWrite};
use super::graph_pages::shape_of;
use super::locks;
use super::meta::{load_quantizer, read_meta, update_meta};
use super::pages::{
    node_id, node_location, tombstone, ElementRef, ElementShape, MetaPage, PageKind,
    ELEMENT_FIXED_BYTES, INVALID_NODE,
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
        crate::compat::vacuum_delay_point();
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
    let chosen = select_neighbors_heuristic(
        &candidates,
        free_slots,
        |a, b| cache.distance(a, b),
        free_slots,
    );
    kept.extend(chosen.into_iter().map(|c| c.id));
    kept
}

/// Pass 2 (inserts excluded): rewrites every live list that links to a deleted node.
fn repair(
    index: pg_sys::Relation,
    blocks: &[u32],
    cache: &mut CodeCache,
    deleted: &HashSet<u32>,
    params: &HnswParams,
) {
    let shape = cache.shape;
    for &block in blocks {
        crate::compat::vacuum_delay_point();
        let mut broken: Vec<(u16, usize, Vec<u32>)> = Vec::new();
        {
            let page = PageRead::new(index, block, PageKind::Graph);
            for offset in 1..=page.item_count() {
                let e = element(index, block, page.item(offset), shape);
                if e.is_deleted() {
                    continue;
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
            // Inserts are excluded and scans only read, so the list cannot have changed.
            if !super::graph_pages::replace_list_if_unchanged(
                index, shape, id, layer, &list, &fixed,
            ) {
                raise_corrupt(
                    index,
                    block,
                    &super::pages::LayoutError::Corrupt(
                        "a neighbour list changed while VACUUM excluded inserts".into(),
                    ),
                );
            }
        }
    }
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

/// One node as VACUUM's reconnect pass sees it.
struct NodeView {
    deleted: bool,
    level: usize,
    layer0: Vec<u32>,
}

/// Reads every element that is not a tombstone.
fn collect_nodes(
    index: pg_sys::Relation,
    blocks: &[u32],
    shape: ElementShape,
) -> HashMap<u32, NodeView> {
    let mut nodes = HashMap::new();
    for &block in blocks {
        let page = PageRead::new(index, block, PageKind::Graph);
        for offset in 1..=page.item_count() {
            let e = element(index, block, page.item(offset), shape);
            if !e.is_free() {
                nodes.insert(
                    node_id(block, offset),
                    NodeView {
                        deleted: e.is_deleted(),
                        level: e.level(),
                        layer0: e.neighbors(0).collect(),
                    },
                );
            }
        }
    }
    nodes
}

/// The entry point after this VACUUM: the current one if it is live, else the highest
/// live node (lowest id among equals, so the choice is deterministic); None if none is live.
fn choose_entry(meta: &MetaPage, nodes: &HashMap<u32, NodeView>) -> Option<(u32, usize)> {
    if nodes.get(&meta.entry_node).is_some_and(|n| !n.deleted) {
        return Some((meta.entry_node, meta.entry_level as usize));
    }
    nodes
        .iter()
        .filter(|(_, n)| !n.deleted)
        .map(|(&id, n)| (id, n.level))
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
}

/// Marks every live node reached from `from` over layer-0 links between live nodes.
fn mark_reached(from: u32, reached: &mut HashSet<u32>, nodes: &HashMap<u32, NodeView>) {
    let mut stack = vec![from];
    reached.insert(from);
    while let Some(id) = stack.pop() {
        for next in nodes.get(&id).map(|n| n.layer0.as_slice()).unwrap_or(&[]) {
            if nodes.get(next).is_some_and(|n| !n.deleted) && reached.insert(*next) {
                stack.push(*next);
            }
        }
    }
}

/// Pass 2 (inserts excluded), before the repair removes any link to a deleted node: links
/// every live node that `entry` does not reach over links between live nodes from its
/// nearest reached live node (one of its own neighbours, else the best hits of a search
/// for it), so that no live node depends on a deleted one to be found.
fn reconnect(
    index: pg_sys::Relation,
    nodes: &mut HashMap<u32, NodeView>,
    cache: &mut CodeCache,
    entry: (u32, usize),
) -> usize {
    let shape = cache.shape;
    let mut reached: HashSet<u32> = HashSet::new();
    mark_reached(entry.0, &mut reached, nodes);
    let mut stranded: Vec<u32> = nodes
        .iter()
        .filter(|(id, n)| !n.deleted && !reached.contains(id))
        .map(|(id, _)| *id)
        .collect();
    stranded.sort_unstable();
    let mut failed = 0;
    for u in stranded {
        if reached.contains(&u) {
            continue;
        }
        let mut via: Vec<(u32, f32)> = nodes[&u]
            .layer0
            .iter()
            .copied()
            .filter(|v| reached.contains(v))
            .map(|v| (v, cache.distance(u, v)))
            .collect();
        via.sort_by(|a, b| a.1.total_cmp(&b.1));
        let mut candidates: Vec<u32> = via.into_iter().map(|(v, _)| v).collect();
        for v in nearest_reachable(index, cache, entry, u, &reached, nodes) {
            if !candidates.contains(&v) {
                candidates.push(v);
            }
        }
        let mut query = vec![0f32; shape.dims];
        let code = cache.code(u).to_vec();
        cache.quantizer.decode(&code, &mut query);
        let mut graph = super::graph_pages::PageGraph::new(
            index,
            shape,
            Some(entry),
            cache.quantizer.estimator(&query, cache.metric),
            cache.quantizer,
        );
        let Some(v) = candidates
            .iter()
            .copied()
            .find(|&v| super::graph_pages::force_back_link(&mut graph, &[v], u))
        else {
            failed += 1;
            continue;
        };
        if let Some(n) = nodes.get_mut(&v) {
            n.layer0.push(u);
        }
        mark_reached(u, &mut reached, nodes);
    }
    failed
}

/// Searches the graph for `u`'s own vector and returns the reached live hits, best first.
fn nearest_reachable(
    index: pg_sys::Relation,
    cache: &mut CodeCache,
    entry: (u32, usize),
    u: u32,
    reached: &HashSet<u32>,
    nodes: &HashMap<u32, NodeView>,
) -> Vec<u32> {
    let code = cache.code(u).to_vec();
    if code.is_empty() {
        return Vec::new();
    }
    let mut query = vec![0f32; cache.shape.dims];
    cache.quantizer.decode(&code, &mut query);
    let mut graph = super::graph_pages::PageGraph::new(
        index,
        cache.shape,
        Some(entry),
        cache.quantizer.estimator(&query, cache.metric),
        cache.quantizer,
    );
    crate::graph::knn_search(&mut graph, 64)
        .into_iter()
        .map(|c| c.id)
        .filter(|id| *id != u && reached.contains(id) && nodes.get(id).is_some_and(|n| !n.deleted))
        .collect()
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
    let callback = callback.expect("bulk delete callback");
    let mut is_dead = |(block, offset): (u32, u16)| {
        let mut tid = pg_sys::ItemPointerData::default();
        tid.ip_blkid.bi_hi = (block >> 16) as u16;
        tid.ip_blkid.bi_lo = (block & 0xffff) as u16;
        tid.ip_posid = offset;
        // SAFETY: the callback only reads the TID.
        unsafe { callback(&mut tid, callback_state) }
    };
    // Pass 1 beside inserts and scans: a mark only hides rows dead to every snapshot.
    let first = read_meta(index);
    let mut removed = 0.0;
    let mut deleted = mark_dead(
        index,
        &graph_blocks(index, first.build_tag()),
        shape_of(&first),
        &mut is_dead,
        &mut removed,
    );
    let exclusive = locks::exclude_inserts(index);
    let meta = read_meta(index);
    let mut marked = removed;
    if meta.build_id != first.build_id {
        // A staging conversion rebuilt the graph meanwhile: mark the new one.
        marked = 0.0;
        deleted = mark_dead(
            index,
            &graph_blocks(index, meta.build_tag()),
            shape_of(&meta),
            &mut is_dead,
            &mut marked,
        );
        removed += marked;
    }
    // SAFETY: stats is a valid struct.
    unsafe { (*stats).tuples_removed += removed };
    let meta = update_meta(index, |m| {
        m.node_count = m.node_count.saturating_sub(marked as u64)
    });
    let shape = shape_of(&meta);
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
    // Every page, also those inserts added since pass 1 (their rows are not dead).
    let blocks = graph_blocks(index, meta.build_tag());
    let mut nodes = collect_nodes(index, &blocks, shape);
    let entry = choose_entry(&meta, &nodes);
    if let Some(entry) = entry {
        let failed = reconnect(index, &mut nodes, &mut cache, entry);
        if failed > 0 {
            pgrx::warning!(
                "qhnsw index \"{}\": VACUUM could not reconnect {failed} live nodes; REINDEX it",
                super::meta::relation_name(index)
            );
        }
    }
    // Monotone: only an entry point this VACUUM is about to free is replaced.
    update_meta(index, |m| {
        if deleted.contains(&m.entry_node) {
            (m.entry_node, m.entry_level) = match entry {
                Some((id, level)) => (id, level as u8),
                None => (INVALID_NODE, 0),
            };
        }
    });
    // The repair drops links to deleted nodes that reconnected live nodes were reached
    // through: beams that read a list before the reconnect must finish first.
    locks::wait_for_scans(index);
    repair(index, &blocks, &mut cache, &deleted, &params);
    drop(exclusive);
    // Beams that started before the repair may still be heading for deleted nodes.
    locks::wait_for_scans(index);
    free_deleted(index, shape, &deleted);
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
    // Counted with inserts excluded, so the live count written is exact.
    let _exclusive = locks::exclude_inserts(index);
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
    update_meta(index, |m| m.node_count = live);
    // SAFETY: stats is a valid struct.
    unsafe {
        (*stats).num_pages = block_count(index);
        (*stats).num_index_tuples = live as f64;
    }
    stats
}
