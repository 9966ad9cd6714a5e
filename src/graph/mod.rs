//! HNSW graph algorithms with no Postgres in them.
//!
//! Design: every algorithm of the HNSW paper (Malkov & Yashunin, "Efficient and
//! robust approximate nearest neighbor search using Hierarchical Navigable Small
//! World graphs", 2016/2018) is written once, against two small storage traits:
//!
//! - [`SearchGraph`]: read access (entry point, neighbour lists, distance from the
//!   current query to a node). Searches (Algorithm 2 SEARCH-LAYER, Algorithm 5
//!   K-NN-SEARCH and the resumable layer-0 scan used by iterative index scans) only
//!   need this.
//! - [`GraphWrite`]: adds writes (neighbour lists, entry point) and distances between
//!   stored nodes, which is what Algorithm 1 INSERT needs.
//!
//! The same code therefore runs over Postgres index pages (implemented in `am/`) and
//! in memory: [`InMemoryGraph`] (a parallel rayon build with per-node locks, used by
//! the index build, tests and benches) and [`VecGraph`] (a plain single-threaded
//! `GraphWrite`, used to test the generic insert exactly as the page code runs it).
//!
//! Ordering: candidates are compared by distance (`f32::total_cmp`) and then by id,
//! so every search is deterministic and ties never make heaps inconsistent.
//! Exact duplicates (distance 0) get special care in Algorithm 4, see
//! [`select_neighbors_heuristic`].

mod build;
mod insert;
mod locality;
mod search;
mod select;
mod visited;

#[cfg(test)]
mod tests;

pub use build::{InMemoryGraph, InMemorySearch};
pub use insert::{
    connect_back_link, insert_node, insert_node_with, prune_judged_list, prune_neighbor_list,
    VecGraph, VecGraphSearch,
};
pub use locality::locality_order;
pub use search::{
    knn_search, knn_search_with, search_layer, search_layer_with, ResumableSearch, SearchScratch,
};
pub use select::{
    select_neighbors_heuristic, select_neighbors_judged, select_neighbors_simple, Judged, Selection,
};
pub use visited::{DenseVisited, IdBuildHasher, IdHashSet, IdHasher, VisitedSet};

/// Highest level a node can be given (levels above this are capped).
pub const MAX_LEVEL: usize = 15;

/// A scored candidate: smaller distance is better.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate<Id> {
    /// The node.
    pub id: Id,
    /// Its distance from the query (or from the base node during selection).
    pub distance: f32,
}

/// Graph parameters.
#[derive(Clone, Copy, Debug)]
pub struct HnswParams {
    /// Neighbours per node on the upper layers (layer 0 holds `2 * m`).
    pub m: usize,
    /// Beam width used while inserting.
    pub ef_construction: usize,
}

impl HnswParams {
    /// Creates parameters, clamping `m` to at least 2 and `ef_construction` to at least `m`.
    pub fn new(m: usize, ef_construction: usize) -> HnswParams {
        let m = m.max(2);
        HnswParams {
            m,
            ef_construction: ef_construction.max(m),
        }
    }

    /// Capacity of a layer-0 neighbour list (`Mmax0 = 2 * m`).
    pub fn m0(&self) -> usize {
        2 * self.m
    }

    /// Capacity of the neighbour list of `layer` (`m0` on layer 0, `m` above).
    pub fn max_neighbors(&self, layer: usize) -> usize {
        if layer == 0 {
            self.m0()
        } else {
            self.m
        }
    }

    /// The level normalisation factor `mL = 1 / ln(m)` of Algorithm 1.
    pub fn level_multiplier(&self) -> f64 {
        1.0 / (self.m.max(2) as f64).ln()
    }
}

/// Draws a node's level: floor(-ln(U) * mL), capped at [`MAX_LEVEL`]; deterministic given the rng.
pub fn random_level(params: &HnswParams, rng: &mut impl rand::Rng) -> usize {
    // gen::<f64>() is in [0, 1); 1 - u is in (0, 1], so ln never sees 0.
    let uniform = 1.0 - rng.gen::<f64>();
    let level = (-uniform.ln() * params.level_multiplier()).floor();
    if level >= MAX_LEVEL as f64 {
        MAX_LEVEL
    } else {
        level as usize
    }
}

/// The symmetric distance between stored nodes that a build links with (any
/// `Fn(u32, u32) -> f32` is one), plus a hint to start loading a node's data.
pub trait NodeDistance: Sync {
    /// Distance between nodes `a` and `b`.
    fn between(&self, a: u32, b: u32) -> f32;

    /// Starts loading node `id`'s data into the CPU cache (a hint; the default does nothing).
    fn prefetch(&self, _id: u32) {}
}

impl<F: Fn(u32, u32) -> f32 + Sync + ?Sized> NodeDistance for F {
    /// Calls the function.
    fn between(&self, a: u32, b: u32) -> f32 {
        self(a, b)
    }
}

impl NodeDistance for &dyn NodeDistance {
    /// Delegates to the object.
    fn between(&self, a: u32, b: u32) -> f32 {
        (**self).between(a, b)
    }

    /// Delegates to the object.
    fn prefetch(&self, id: u32) {
        (**self).prefetch(id)
    }
}

/// Read access to a graph for searching (implemented in memory here, and over Postgres pages elsewhere).
/// `distance(id)` is the distance from the current query (held by the implementor) to node `id`.
pub trait SearchGraph {
    /// Node identifier (an index in memory, an item pointer on disk).
    type Id: Copy + Eq + std::hash::Hash + Ord + std::fmt::Debug;

    /// The entry point and its top level, or `None` for an empty graph.
    fn entry_point(&mut self) -> Option<(Self::Id, usize)>;

    /// Appends the neighbours of `id` on `layer` to `out` (nothing if the node has no such layer).
    fn neighbors(&mut self, id: Self::Id, layer: usize, out: &mut Vec<Self::Id>);

    /// Distance from the current query to node `id`.
    fn distance(&mut self, id: Self::Id) -> f32;

    /// Distances from the current query to each of `ids`, into `out` (cleared, same
    /// order); storages override it to read nodes that share a page in one access.
    fn distances(&mut self, ids: &[Self::Id], out: &mut Vec<f32>) {
        out.clear();
        for &id in ids {
            let d = self.distance(id);
            out.push(d);
        }
    }
}

/// Mutable access used by the generic insert.
pub trait GraphWrite: SearchGraph {
    /// Distance between two stored nodes.
    fn pair_distance(&mut self, a: Self::Id, b: Self::Id) -> f32;

    /// Replaces the neighbour list of `id` on `layer`.
    fn set_neighbors(&mut self, id: Self::Id, layer: usize, neighbors: &[Self::Id]);

    /// Replaces the neighbour list of `id` on `layer`, with each entry's Algorithm 4 verdict for storages that keep them (the default drops them).
    fn set_judged_neighbors(
        &mut self,
        id: Self::Id,
        layer: usize,
        neighbors: &[Self::Id],
        _verdicts: &[Judged],
    ) {
        self.set_neighbors(id, layer, neighbors);
    }

    /// Makes `id` (whose top level is `level`) the entry point.
    fn set_entry_point(&mut self, id: Self::Id, level: usize);

    /// Whether a node found by the search may become a neighbour of a new node (storages
    /// that keep deleted nodes as waypoints until VACUUM frees them say no for those).
    fn is_linkable(&mut self, _id: Self::Id) -> bool {
        true
    }

    /// Adds the back-link `id -> new_neighbor` on `layer` (pruning with Algorithm 4 past `max_neighbors`); override to do the read-modify-write under one lock.
    fn add_back_link(
        &mut self,
        id: Self::Id,
        layer: usize,
        new_neighbor: Self::Id,
        distance: f32,
        max_neighbors: usize,
    ) {
        connect_back_link(self, id, layer, new_neighbor, distance, max_neighbors);
    }
}
