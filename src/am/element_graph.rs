//! The scan's hot loop over element pages, with no Postgres in it: reading a node's
//! neighbour list and estimating the query's distance to a batch of nodes, written once
//! against [`ItemSource`] ("give me the bytes of these items, a page at a time").
//!
//! Design: `graph_pages::PageGraph` reads items through the buffer manager (pin + share
//! lock per page access, exactly the locking of `buffer.rs`); [`MemPages`] holds the same
//! element bytes in plain memory, so a criterion bench (`benches/scan.rs`) measures the
//! per-visit cost of the very code a scan runs, and counts the page accesses (each one a
//! buffer pin and lock in Postgres). A batch of nodes is read grouped by page: nodes that
//! share a page cost one access.

use super::pages::{node_location, ElementRef, ElementShape, LayoutError};
use crate::graph::{InMemoryGraph, SearchGraph};
use crate::quant::Estimator;

/// Largest batch grouped by page on the stack (a layer-0 list of m = 32); longer
/// batches are read in slices.
const GROUP_MAX: usize = 64;

/// One page being read: its items by 1-based offset.
pub trait PageItems {
    /// The bytes of item `offset` (a bad offset is reported by the implementation).
    fn item(&self, offset: u16) -> &[u8];
}

/// Read access to the items of graph pages.
pub trait ItemSource {
    /// Runs `f` on page `block` (one page access: a pin and a share lock in Postgres).
    fn with_page(&mut self, block: u32, f: &mut dyn FnMut(&dyn PageItems));

    /// Reports a corrupt element of node `id` (an ERROR in Postgres, a panic elsewhere).
    fn corrupt(&self, id: u32, err: &LayoutError) -> !;

    /// Hints that the items of `ids` are read next, their bytes `within` above all (a
    /// cache prefetch: no effect on what is read).
    fn prefetch(&mut self, _ids: &[u32], _within: std::ops::Range<usize>) {}
}

impl<T: ItemSource + ?Sized> ItemSource for &mut T {
    /// Forwards to the borrowed source.
    fn with_page(&mut self, block: u32, f: &mut dyn FnMut(&dyn PageItems)) {
        (**self).with_page(block, f)
    }

    /// Forwards to the borrowed source.
    fn corrupt(&self, id: u32, err: &LayoutError) -> ! {
        (**self).corrupt(id, err)
    }

    /// Forwards to the borrowed source.
    fn prefetch(&mut self, ids: &[u32], within: std::ops::Range<usize>) {
        (**self).prefetch(ids, within)
    }
}

impl PageItems for Vec<Vec<u8>> {
    /// Item `offset` of an in-memory page.
    fn item(&self, offset: u16) -> &[u8] {
        &self[offset as usize - 1]
    }
}

/// Calls `f(position, bytes)` for every node of `ids`, one page access per distinct page.
pub fn for_each_item<S: ItemSource + ?Sized>(
    source: &mut S,
    ids: &[u32],
    f: &mut dyn FnMut(usize, &[u8]),
) {
    if let [id] = ids {
        let (block, offset) = node_location(*id);
        source.with_page(block, &mut |page| f(0, page.item(offset)));
        return;
    }
    for (slice, chunk) in ids.chunks(GROUP_MAX).enumerate() {
        let base = slice * GROUP_MAX;
        // (block, offset, position) sorted by block: insertion sort, batches are small.
        let mut order = [(0u32, 0u16, 0u16); GROUP_MAX];
        for (i, &id) in chunk.iter().enumerate() {
            let (block, offset) = node_location(id);
            let mut j = i;
            while j > 0 && order[j - 1].0 > block {
                order[j] = order[j - 1];
                j -= 1;
            }
            order[j] = (block, offset, i as u16);
        }
        let order = &order[..chunk.len()];
        let mut k = 0;
        while k < order.len() {
            let block = order[k].0;
            let end = k + order[k..].iter().take_while(|o| o.0 == block).count();
            source.with_page(block, &mut |page| {
                for &(_, offset, position) in &order[k..end] {
                    f(base + position as usize, page.item(offset));
                }
            });
            k = end;
        }
    }
}

/// Appends node `id`'s neighbours on `layer` to `out` (none above its level or for a tombstone).
pub fn read_neighbors<S: ItemSource + ?Sized>(
    source: &mut S,
    shape: ElementShape,
    id: u32,
    layer: usize,
    out: &mut Vec<u32>,
) {
    let mut failure = None;
    for_each_item(
        source,
        &[id],
        &mut |_, bytes| match ElementRef::parse(bytes, shape) {
            Ok(e) if layer <= e.level() => out.extend(e.neighbors(layer)),
            Ok(_) => {}
            Err(err) => failure = Some(err),
        },
    );
    if let Some(err) = failure {
        source.corrupt(id, &err);
    }
}

/// Estimated distances from the query to each node of `ids`, into `out` (same order);
/// a tombstone reached through a stale link is infinitely far.
pub fn read_distances<S: ItemSource + ?Sized>(
    source: &mut S,
    shape: ElementShape,
    estimator: &Estimator,
    ids: &[u32],
    out: &mut Vec<f32>,
) {
    out.clear();
    out.resize(ids.len(), f32::INFINITY);
    if ids.len() > 1 {
        let code = shape.code_offset(0);
        source.prefetch(ids, code..code + shape.code_len);
    }
    let mut failure = None;
    for_each_item(
        source,
        ids,
        &mut |position, bytes| match ElementRef::parse(bytes, shape) {
            Ok(e) if e.is_free() => {}
            Ok(e) => out[position] = estimator.distance(e.code()),
            Err(err) => failure = Some((ids[position], err)),
        },
    );
    if let Some((id, err)) = failure {
        source.corrupt(id, &err);
    }
}

/// Graph pages held in memory: one `Vec` of items per block, counting page accesses.
#[derive(Debug, Default, Clone)]
pub struct MemPages {
    /// Items of each block (block 0 is the meta page, kept empty).
    pub pages: Vec<Vec<Vec<u8>>>,
    /// Page accesses so far (each one a pin and a lock in Postgres).
    pub accesses: u64,
    /// Whether `prefetch` hints the CPU (as the scan over buffers does); off measures the
    /// loop without it.
    pub prefetch: bool,
}

impl ItemSource for MemPages {
    /// Counts the access and hands out the page's items by 1-based offset.
    fn with_page(&mut self, block: u32, f: &mut dyn FnMut(&dyn PageItems)) {
        self.accesses += 1;
        f(&self.pages[block as usize]);
    }

    /// Panics: in-memory pages are written by this crate and never corrupt.
    fn corrupt(&self, id: u32, err: &LayoutError) -> ! {
        panic!("corrupt in-memory element {id}: {err}")
    }

    /// Prefetches each item's first line and its bytes `within` (when `prefetch` is on).
    fn prefetch(&mut self, ids: &[u32], within: std::ops::Range<usize>) {
        if !self.prefetch {
            return;
        }
        for &id in ids {
            let (block, offset) = node_location(id);
            let Some(item) = self
                .pages
                .get(block as usize)
                .and_then(|page| page.get((offset as usize).wrapping_sub(1)))
            else {
                continue;
            };
            crate::distance::prefetch_address(item.as_ptr());
            for at in within.clone().step_by(64).filter(|&at| at < item.len()) {
                crate::distance::prefetch_address(item[at..].as_ptr());
            }
        }
    }
}

impl MemPages {
    /// Lays out an in-memory graph as element pages the way a build does (nodes in
    /// `order`, packed until a page's `capacity` bytes are used); returns the pages and
    /// each node's page id. `code(id)` is node `id`'s code.
    pub fn from_graph(
        graph: &InMemoryGraph,
        order: &[u32],
        shape: ElementShape,
        capacity: usize,
        code: impl Fn(u32) -> Vec<u8>,
    ) -> (MemPages, Vec<u32>) {
        let mut pages: Vec<Vec<Vec<u8>>> = vec![Vec::new(), Vec::new()];
        let mut used = 0usize;
        let mut location = vec![super::pages::INVALID_NODE; graph.len()];
        for &id in order {
            let need = shape.size(graph.level(id)).div_ceil(8) * 8 + 4;
            let last = pages.len() - 1;
            if !pages[last].is_empty() && (used + need > capacity || pages[last].len() == 255) {
                pages.push(Vec::new());
                used = 0;
            }
            used += need;
            let block = pages.len() as u32 - 1;
            let page = pages.last_mut().expect("a page");
            page.push(vec![0u8; shape.size(graph.level(id))]);
            location[id as usize] = super::pages::node_id(block, page.len() as u16);
        }
        for &id in order {
            let level = graph.level(id);
            let (block, offset) = node_location(location[id as usize]);
            let item = &mut pages[block as usize][offset as usize - 1];
            super::pages::write_element(item, shape, level, (id, 1), &code(id), None);
            for layer in 0..=level {
                let list: Vec<u32> = graph
                    .neighbor_slice(id, layer)
                    .iter()
                    .map(|&n| location[n as usize])
                    .collect();
                super::pages::set_neighbors(item, shape, layer, &list);
            }
        }
        (
            MemPages {
                pages,
                accesses: 0,
                prefetch: true,
            },
            location,
        )
    }
}

/// A query's view of element pages held by any [`ItemSource`] (the scan's `PageGraph`
/// uses the same two functions over Postgres buffers).
pub struct ElementGraph<'q, S> {
    /// Where the items are.
    pub source: S,
    /// Element layout.
    pub shape: ElementShape,
    /// Entry point and its level.
    pub entry: Option<(u32, usize)>,
    /// Estimator of the query against codes.
    pub estimator: Estimator<'q>,
    /// Distances computed so far.
    pub distances: u64,
}

impl<S: ItemSource> SearchGraph for ElementGraph<'_, S> {
    type Id = u32;

    /// The entry point.
    fn entry_point(&mut self) -> Option<(u32, usize)> {
        self.entry
    }

    /// Reads the node's list from its page.
    fn neighbors(&mut self, id: u32, layer: usize, out: &mut Vec<u32>) {
        read_neighbors(&mut self.source, self.shape, id, layer, out);
    }

    /// One node's estimated distance.
    fn distance(&mut self, id: u32) -> f32 {
        let mut out = Vec::with_capacity(1);
        self.distances(&[id], &mut out);
        out[0]
    }

    /// Estimated distances of a batch, nodes sharing a page read in one access.
    fn distances(&mut self, ids: &[u32], out: &mut Vec<f32>) {
        self.distances += ids.len() as u64;
        read_distances(&mut self.source, self.shape, &self.estimator, ids, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datagen::embeddings_like;
    use crate::distance::{self, Metric};
    use crate::graph::{knn_search, locality_order, HnswParams};
    use crate::quant::{Quantizer, QuantizerConfig, QuantizerKind};

    const DIMS: usize = 16;

    /// A 1500-node graph over exact f32 codes, its quantizer and the data.
    fn graph() -> (InMemoryGraph, Quantizer, Vec<f32>) {
        let base = embeddings_like(1500, DIMS, 3);
        let row = |id: u32| &base[id as usize * DIMS..(id as usize + 1) * DIMS];
        let graph = InMemoryGraph::build(
            1500,
            HnswParams::new(8, 32),
            5,
            |a, b| distance::l2_squared(row(a), row(b)),
            |_| {},
        );
        let config = QuantizerConfig {
            kind: QuantizerKind::None,
            ..QuantizerConfig::default()
        };
        let quantizer = Quantizer::train(&config, DIMS, &base).expect("train");
        (graph, quantizer, base)
    }

    /// Lays `graph` out in `order` with f32 codes.
    fn pages(
        graph: &InMemoryGraph,
        quantizer: &Quantizer,
        base: &[f32],
        order: &[u32],
    ) -> (MemPages, Vec<u32>, ElementShape) {
        let shape = ElementShape {
            m: 8,
            code_len: quantizer.code_len(),
            dims: DIMS,
            float16_copy: false,
        };
        let (pages, location) = MemPages::from_graph(graph, order, shape, 8160, |id| {
            quantizer.encode_to_vec(&base[id as usize * DIMS..(id as usize + 1) * DIMS])
        });
        (pages, location, shape)
    }

    #[test]
    fn batch_reads_each_page_once_and_keeps_positions() {
        let (g, q, base) = graph();
        let order: Vec<u32> = (0..g.len() as u32).collect();
        let (mut mem, location, shape) = pages(&g, &q, &base, &order);
        // nodes 0, 1 and 2 share block 1; node 1499 is on a later block
        let ids = [location[2], location[1499], location[0], location[1]];
        assert_eq!(node_location(location[0]).0, node_location(location[2]).0);
        assert_ne!(
            node_location(location[0]).0,
            node_location(location[1499]).0
        );
        let query = &base[..DIMS];
        let estimator = q.estimator(query, Metric::L2);
        let mut out = Vec::new();
        read_distances(&mut mem, shape, &estimator, &ids, &mut out);
        assert_eq!(mem.accesses, 2);
        for (position, node) in [2u32, 1499, 0, 1].into_iter().enumerate() {
            let row = &base[node as usize * DIMS..(node as usize + 1) * DIMS];
            assert_eq!(out[position], distance::l2_squared(query, row), "{node}");
        }
        assert_eq!(out[2], 0.0);
    }

    #[test]
    fn page_search_equals_in_memory_search_in_every_placement() {
        let (g, q, base) = graph();
        let per_page = 8160
            / (ElementShape {
                m: 8,
                code_len: 4 * DIMS,
                dims: DIMS,
                float16_copy: false,
            }
            .size(0)
                + 12);
        for order in [
            (0..g.len() as u32).collect::<Vec<u32>>(),
            locality_order(&g, per_page),
        ] {
            let (mut mem, location, shape) = pages(&g, &q, &base, &order);
            for query in embeddings_like(20, DIMS, 9).chunks_exact(DIMS) {
                let mut searcher = g.searcher(|id| {
                    distance::l2_squared(query, &base[id as usize * DIMS..(id as usize + 1) * DIMS])
                });
                let want: Vec<u32> = knn_search(&mut searcher, 20)
                    .iter()
                    .map(|c| location[c.id as usize])
                    .collect();
                let (entry, level) = g.entry_point().expect("entry");
                let mut paged = ElementGraph {
                    source: &mut mem,
                    shape,
                    entry: Some((location[entry as usize], level)),
                    estimator: q.estimator(query, Metric::L2),
                    distances: 0,
                };
                let got: Vec<u32> = knn_search(&mut paged, 20).iter().map(|c| c.id).collect();
                assert_eq!(got, want);
            }
        }
    }

    #[test]
    fn locality_order_is_a_permutation_that_shares_pages_among_neighbours() {
        let (g, q, base) = graph();
        let shape = ElementShape {
            m: 8,
            code_len: 4 * DIMS,
            dims: DIMS,
            float16_copy: false,
        };
        let per_page = 8160 / (shape.size(0).div_ceil(8) * 8 + 4);
        let order = locality_order(&g, per_page);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..g.len() as u32).collect::<Vec<u32>>());
        // distinct pages holding a node's layer-0 neighbours, summed over all nodes
        let pages_touched = |order: &[u32]| {
            let (_, location, _) = pages(&g, &q, &base, order);
            (0..g.len() as u32)
                .map(|id| {
                    let mut blocks: Vec<u32> = g
                        .neighbor_slice(id, 0)
                        .iter()
                        .map(|&n| node_location(location[n as usize]).0)
                        .collect();
                    blocks.sort_unstable();
                    blocks.dedup();
                    blocks.len()
                })
                .sum::<usize>()
        };
        let by_id = pages_touched(&(0..g.len() as u32).collect::<Vec<u32>>());
        let local = pages_touched(&order);
        // measured: 7322 against 11014 (0.66x)
        assert!(
            local * 4 < by_id * 3,
            "locality {local} vs id order {by_id}"
        );
    }
}
