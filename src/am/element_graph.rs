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

/// Largest batch grouped by page on the stack; longer batches are read in slices.
const GROUP_MAX: usize = 256;

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
}

impl MemPages {
    /// Lays out an in-memory graph as element pages the way a build does (nodes in id
    /// order, packed until a page's `capacity` bytes are used); returns the pages and
    /// each node's page id. `code(id)` is node `id`'s code.
    pub fn from_graph(
        graph: &InMemoryGraph,
        shape: ElementShape,
        capacity: usize,
        code: impl Fn(u32) -> Vec<u8>,
    ) -> (MemPages, Vec<u32>) {
        let mut pages: Vec<Vec<Vec<u8>>> = vec![Vec::new(), Vec::new()];
        let mut used = 0usize;
        let mut location = Vec::with_capacity(graph.len());
        for id in 0..graph.len() as u32 {
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
            location.push(super::pages::node_id(block, page.len() as u16));
        }
        for id in 0..graph.len() as u32 {
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
        (MemPages { pages, accesses: 0 }, location)
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
        self.distances += 1;
        let mut out = Vec::with_capacity(1);
        read_distances(
            &mut self.source,
            self.shape,
            &self.estimator,
            &[id],
            &mut out,
        );
        out[0]
    }
}
