//! The HNSW graph over index pages: `SearchGraph` / `GraphWrite` implemented with
//! the page guards, so scans and inserts run the same algorithms (src/graph) as the
//! in-memory build. Each access locks one page at a time (share for reads, exclusive
//! plus GenericXLog for writes), so no lock ordering between pages can deadlock.
//! Which index-level locks the callers hold is decided in `locks.rs`: pruning a full
//! list (the only way an insert removes a link) runs under the LINK lock, and every
//! write that drops a layer-0 link first waits for the beams in flight
//! (`locks::wait_for_scans`), after the dropped node was linked from a covering one.

use super::buffer::{raise_corrupt, PageRead, PageWrite};
use super::buffer_hints::prefetch_items;
use super::element_graph::{read_distances, read_neighbors, ItemSource, PageItems};
use super::pages::LayoutError;
use super::pages::{node_location, set_neighbors, ElementRef, ElementShape, MetaPage, PageKind};
use crate::graph::{prune_neighbor_list, Candidate, GraphWrite, SearchGraph};
use crate::quant::{Estimator, Quantizer};
use pgrx::pg_sys;

/// Element shape of an index from its meta page.
pub fn shape_of(meta: &MetaPage) -> ElementShape {
    ElementShape {
        m: meta.m as usize,
        code_len: meta.code_len as usize,
        dims: meta.dims as usize,
        float16_copy: meta.rerank == super::pages::RerankSource::Float16,
    }
}

/// Runs `f` on a node's element under a share lock.
pub fn with_element<R>(
    index: pg_sys::Relation,
    shape: ElementShape,
    id: u32,
    f: impl FnOnce(&ElementRef) -> R,
) -> R {
    let (block, offset) = node_location(id);
    let page = PageRead::hinted(index, block, PageKind::Graph);
    match ElementRef::parse(page.item(offset), shape) {
        Ok(element) => f(&element),
        Err(e) => raise_corrupt(index, block, &e),
    }
}

/// Index pages read through the buffer manager: each page access pins and share-locks
/// one page (`PageRead`) and releases it before the next.
pub struct BufferItems(pub pg_sys::Relation);

impl PageItems for PageRead {
    /// The item bytes; a bad line pointer raises XX002.
    fn item(&self, offset: u16) -> &[u8] {
        PageRead::item(self, offset)
    }
}

impl ItemSource for BufferItems {
    /// Pins and share-locks graph page `block` while `f` reads it.
    fn with_page(&mut self, block: u32, f: &mut dyn FnMut(&dyn PageItems)) {
        let page = PageRead::hinted(self.0, block, PageKind::Graph);
        f(&page);
    }

    /// Prefetches the buffers, line pointers and bytes of the items (`prefetch_items`).
    fn prefetch(&mut self, ids: &[u32], within: std::ops::Range<usize>) {
        prefetch_items(self.0, ids, within);
    }

    /// Raises XX002 for the node's block.
    fn corrupt(&self, id: u32, err: &LayoutError) -> ! {
        raise_corrupt(self.0, node_location(id).0, err)
    }
}

/// A query's view of the graph on pages: distances are quantized estimates.
pub struct PageGraph<'q> {
    /// The index.
    pub index: pg_sys::Relation,
    /// Element layout.
    pub shape: ElementShape,
    /// Entry point and its level.
    pub entry: Option<(u32, usize)>,
    /// Estimator of the query against codes.
    pub estimator: Estimator<'q>,
    /// The quantizer (for code-to-code distances while inserting).
    pub quantizer: &'q Quantizer,
    /// Distances computed so far.
    pub distances: u64,
    /// Set once some node's layer-0 list holds the node being inserted.
    pub back_linked: bool,
}

impl<'q> PageGraph<'q> {
    /// The graph of `index` seen from `estimator`'s query, entered at `entry`.
    pub fn new(
        index: pg_sys::Relation,
        shape: ElementShape,
        entry: Option<(u32, usize)>,
        estimator: Estimator<'q>,
        quantizer: &'q Quantizer,
    ) -> PageGraph<'q> {
        PageGraph {
            index,
            shape,
            entry,
            estimator,
            quantizer,
            distances: 0,
            back_linked: false,
        }
    }
}

impl SearchGraph for PageGraph<'_> {
    type Id = u32;

    fn entry_point(&mut self) -> Option<(u32, usize)> {
        self.entry
    }

    /// Reads the node's list under its page's share lock.
    fn neighbors(&mut self, id: u32, layer: usize, out: &mut Vec<u32>) {
        read_neighbors(&mut BufferItems(self.index), self.shape, id, layer, out);
    }

    /// The node's estimated distance (a tombstone reached through a stale link: infinity).
    fn distance(&mut self, id: u32) -> f32 {
        let mut out = Vec::with_capacity(1);
        self.distances(&[id], &mut out);
        out[0]
    }

    /// Estimated distances of a batch: nodes that share a page are read under one pin
    /// and share lock of it (still one page locked at a time).
    fn distances(&mut self, ids: &[u32], out: &mut Vec<f32>) {
        self.distances += ids.len() as u64;
        read_distances(
            &mut BufferItems(self.index),
            self.shape,
            &self.estimator,
            ids,
            out,
        );
    }
}

impl GraphWrite for PageGraph<'_> {
    fn pair_distance(&mut self, a: u32, b: u32) -> f32 {
        let code_a = with_element(self.index, self.shape, a, |e| e.code().to_vec());
        let metric = self.estimator.metric();
        let quantizer = self.quantizer;
        with_element(self.index, self.shape, b, |e| {
            if e.is_free() || code_a.is_empty() {
                f32::INFINITY
            } else {
                quantizer.code_distance(metric, &code_a, e.code())
            }
        })
    }

    /// Writes the new node's own list. Concurrent inserts may already have appended
    /// back-links to it (they find the node through its upper layers); those are kept
    /// first, since a node that counts on one would otherwise lose its only in-link.
    fn set_neighbors(&mut self, id: u32, layer: usize, neighbors: &[u32]) {
        let (block, offset) = node_location(id);
        let mut page = PageWrite::new(self.index, block, PageKind::Graph);
        let current: Vec<u32> = match ElementRef::parse(page.item_mut(offset), self.shape) {
            Ok(e) => e.neighbors(layer).collect(),
            Err(e) => raise_corrupt(self.index, block, &e),
        };
        let mut list = current.clone();
        list.extend(neighbors.iter().copied().filter(|n| !current.contains(n)));
        set_neighbors(page.item_mut(offset), self.shape, layer, &list);
        page.commit();
    }

    /// Deleted nodes stay as waypoints for searches but never get new links: VACUUM is
    /// about to free them, and a node linked only from them would be stranded.
    fn is_linkable(&mut self, id: u32) -> bool {
        with_element(self.index, self.shape, id, |e| !e.is_deleted())
    }

    /// Raises the entry point (monotone: only an empty index or a higher level changes it).
    fn set_entry_point(&mut self, id: u32, level: usize) {
        let meta = super::meta::update_meta(self.index, |m| {
            if m.entry_node == super::pages::INVALID_NODE || level > m.entry_level as usize {
                m.entry_node = id;
                m.entry_level = level as u8;
            }
        });
        self.entry = Some((meta.entry_node, meta.entry_level as usize));
    }

    /// Adds `new` to `id`'s list: appended under one exclusive page lock when there is
    /// room (removes nothing, so no index-level lock); otherwise, under the LINK lock,
    /// pruned with Algorithm 4 from the current list (every dropped node handed over to a
    /// kept one first) and written if no append changed the list meanwhile, else redone.
    fn add_back_link(
        &mut self,
        id: u32,
        layer: usize,
        new: u32,
        distance: f32,
        max_neighbors: usize,
    ) {
        let mut link: Option<super::locks::IndexLock> = None;
        loop {
            let (block, offset) = node_location(id);
            let snapshot: Vec<u32> = {
                let mut page = PageWrite::new(self.index, block, PageKind::Graph);
                let element = match ElementRef::parse(page.item_mut(offset), self.shape) {
                    Ok(e) if e.is_deleted() => return,
                    Ok(e) => e.neighbors(layer).collect::<Vec<u32>>(),
                    Err(e) => raise_corrupt(self.index, block, &e),
                };
                if element.contains(&new) {
                    self.back_linked |= layer == 0;
                    return;
                }
                if element.len() < max_neighbors {
                    let mut list = element;
                    list.push(new);
                    set_neighbors(page.item_mut(offset), self.shape, layer, &list);
                    page.commit();
                    self.back_linked |= layer == 0;
                    return;
                }
                element
            };
            if link.is_none() {
                // Pruning removes a link: take the LINK lock (no buffer lock is held), then
                // read the list again under it.
                link = Some(super::locks::link_lock(self.index));
                continue;
            }
            let pruned = prune_neighbor_list(
                id,
                &snapshot,
                Candidate { id: new, distance },
                max_neighbors,
                |a, b| self.pair_distance(a, b),
            );
            if layer == 0 {
                // Never strand an existing neighbour: each one the pruning drops must be
                // linked from the kept neighbour that covers it, or the list stays as it is.
                let dropped: Vec<u32> = snapshot
                    .iter()
                    .copied()
                    .filter(|y| !pruned.contains(y))
                    .collect();
                if !self.hand_over_dropped(&dropped, &pruned) {
                    return;
                }
                if !dropped.is_empty() {
                    // A beam that read a covering list before the hand-over must not read
                    // this one after the drop: let every beam in flight finish first.
                    super::locks::wait_for_scans(self.index);
                }
            }
            if replace_list_if_unchanged(self.index, self.shape, id, layer, &snapshot, &pruned) {
                self.back_linked |= layer == 0 && pruned.contains(&new);
                return;
            }
            // An append changed the list (appends never remove, and every other pruner
            // waits for our LINK lock): read it again.
        }
    }
}

impl PageGraph<'_> {
    /// Algorithm 4 drops a neighbour `y` from a list because a kept neighbour `z` is closer
    /// to `y`; the heuristic assumes `z` links to `y`. Make that true on layer 0 (when `z`
    /// has room, or an entry another live neighbour also covers); false if some `y` could
    /// not be handed over, so the caller keeps its list rather than strand `y`. Runs under
    /// the LINK lock; a deleted `y` is handed over too (until VACUUM's repair, nodes behind
    /// it may only be reachable through it).
    fn hand_over_dropped(&mut self, dropped: &[u32], kept: &[u32]) -> bool {
        for &y in dropped {
            if with_element(self.index, self.shape, y, |e| e.is_free()) {
                continue;
            }
            let live_kept: Vec<u32> = kept
                .iter()
                .copied()
                .filter(|&z| self.is_linkable(z))
                .collect();
            let covering = live_kept
                .iter()
                .map(|&z| (z, self.pair_distance(y, z)))
                .filter(|(_, d)| d.is_finite())
                .min_by(|a, b| a.1.total_cmp(&b.1));
            let Some((z, d_zy)) = covering else {
                return false;
            };
            if !link_from(self, z, y, |graph, list| {
                match covered_victim(graph, z, list) {
                    Some((i, d)) if d > d_zy => Some(i),
                    _ => None,
                }
            }) {
                return false;
            }
        }
        true
    }
}

/// Puts `y` into `z`'s layer-0 list: appended if there is room, else over the entry
/// `victim` picks (None: give up). The list is re-read and the write redone if an append
/// changed it meanwhile; true once `y` is in the list. Callers hold the LINK lock or
/// exclude inserts, so only appends can race with this.
fn link_from(
    graph: &mut PageGraph,
    z: u32,
    y: u32,
    mut victim: impl FnMut(&mut PageGraph, &[u32]) -> Option<usize>,
) -> bool {
    loop {
        let Some(list) = with_element(graph.index, graph.shape, z, |e| {
            (!e.is_free()).then(|| e.neighbors(0).collect::<Vec<u32>>())
        }) else {
            return false;
        };
        if list.contains(&y) {
            return true;
        }
        let mut updated = list.clone();
        if list.len() < graph.shape.m0() {
            updated.push(y);
        } else {
            match victim(graph, &list) {
                Some(i) => updated[i] = y,
                None => return false,
            }
            // The victim stays linked from another member of the list; a beam that read
            // that member before it gained the link must finish before this drop.
            super::locks::wait_for_scans(graph.index);
        }
        if replace_list_if_unchanged(graph.index, graph.shape, z, 0, &list, &updated) {
            return true;
        }
    }
}

/// Makes `id` reachable when every neighbour pruned it from its list (Algorithm 4 may
/// drop a new node everywhere): puts it in the layer-0 list of the nearest of its own
/// neighbours that has a free slot or an entry that another live neighbour also covers.
/// Inserts call it under the LINK lock, VACUUM while it excludes inserts.
pub fn force_back_link(graph: &mut PageGraph, candidates: &[u32], id: u32) -> bool {
    for &nearest in candidates {
        if !graph.is_linkable(nearest) {
            continue;
        }
        if link_from(graph, nearest, id, |graph, list| {
            covered_victim(graph, nearest, list).map(|(i, _)| i)
        }) {
            return true;
        }
    }
    false
}

/// The farthest entry of `list` (as seen from `owner`) that another live member of `list`
/// also links to on layer 0, so replacing it cannot strand it (a deleted member's links
/// go away at VACUUM's repair); None if every entry is needed.
fn covered_victim(graph: &mut PageGraph, owner: u32, list: &[u32]) -> Option<(usize, f32)> {
    let mut order: Vec<(usize, f32)> = list
        .iter()
        .enumerate()
        .map(|(i, &w)| (i, graph.pair_distance(owner, w)))
        .collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1));
    let lists: Vec<Vec<u32>> = list
        .iter()
        .map(|&v| {
            with_element(graph.index, graph.shape, v, |e| {
                if e.is_deleted() {
                    Vec::new()
                } else {
                    e.neighbors(0).collect()
                }
            })
        })
        .collect();
    order.into_iter().find(|&(i, _)| {
        let w = list[i];
        lists
            .iter()
            .enumerate()
            .any(|(j, l)| j != i && l.contains(&w))
    })
}

/// Writes `new` as `id`'s list on `layer` only if the list still equals `expected`
/// (read earlier under another page lock); true if written. Writers never overwrite
/// each other's links blindly; callers re-read and redo on false.
pub fn replace_list_if_unchanged(
    index: pg_sys::Relation,
    shape: ElementShape,
    id: u32,
    layer: usize,
    expected: &[u32],
    new: &[u32],
) -> bool {
    let (block, offset) = node_location(id);
    let mut page = PageWrite::new(index, block, PageKind::Graph);
    let current: Vec<u32> = match ElementRef::parse(page.item_mut(offset), shape) {
        Ok(e) if e.is_free() => return false,
        Ok(e) => e.neighbors(layer).collect(),
        Err(e) => raise_corrupt(index, block, &e),
    };
    if current != expected {
        return false;
    }
    set_neighbors(page.item_mut(offset), shape, layer, new);
    page.commit();
    true
}
