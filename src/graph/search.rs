//! Searching: Algorithm 2 (SEARCH-LAYER), Algorithm 5 (K-NN-SEARCH) and a resumable
//! layer-0 search for iterative index scans.
//!
//! Design:
//! - Candidates are ordered by `(distance, tie key, id)` with `f32::total_cmp`, a
//!   total order, so heaps are consistent even with NaN or tied distances and results
//!   are deterministic. The tie key is a salted hash of the id: searches use salt 0,
//!   each insertion salts with its own id, so when many distances are equal (identical
//!   vectors) every insertion sees a different sample of the tied nodes instead of
//!   all of them converging on the smallest ids (which starves the rest of links).
//! - `search_layer_with` is the hot loop of the index: a min-heap of candidates to
//!   expand and a bounded max-heap of results (the beam `W`), with the heaps and the
//!   neighbour buffer kept in a reusable [`SearchScratch`], and the visited set
//!   abstracted by [`VisitedSet`] (a dense epoch array in memory, a hash set on disk).
//! - Upper layers are descended greedily (Algorithm 2 with ef = 1 degenerates into
//!   "move to the best neighbour while it improves"), which needs no heaps.
//! - [`ResumableSearch`] runs the same beam search on layer 0 but never throws state
//!   away: every evaluated node stays in a frontier (to be expanded later) and in a
//!   pool of not-yet-returned nodes, so a scan can ask for more rows after the first
//!   beam (like pgvector 0.8 iterative scans). Its first batch equals Algorithm 5's
//!   result exactly (same expansion order, same beam), see the proof sketch on
//!   `run_beam`.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashSet};

use std::hash::Hash;

use super::visited::{salted_tie_key, IdHashSet, VisitedSet};
use super::{Candidate, SearchGraph};

/// A candidate with a total order: by distance (`total_cmp`), then tie key, then id.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scored<Id> {
    pub(crate) distance: f32,
    pub(crate) tie: u32,
    pub(crate) id: Id,
}

impl<Id: Hash + Copy> Scored<Id> {
    /// Scores `id` at `distance`, with its tie key under `salt`.
    #[inline]
    pub(crate) fn new(distance: f32, id: Id, salt: u64) -> Self {
        Scored {
            distance,
            tie: salted_tie_key(salt, id),
            id,
        }
    }

    /// Scores a public candidate under `salt`.
    #[inline]
    pub(crate) fn from_candidate(candidate: Candidate<Id>, salt: u64) -> Self {
        Self::new(candidate.distance, candidate.id, salt)
    }
}

impl<Id: Ord> Ord for Scored<Id> {
    /// Orders by distance, then tie key, then id.
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        self.distance
            .total_cmp(&other.distance)
            .then_with(|| self.tie.cmp(&other.tie))
            .then_with(|| self.id.cmp(&other.id))
    }
}

impl<Id: Ord> PartialOrd for Scored<Id> {
    /// Same as `cmp`.
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<Id: Ord> PartialEq for Scored<Id> {
    /// Equal when both distance (bitwise order) and id are equal.
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<Id: Ord> Eq for Scored<Id> {}

impl<Id> From<Scored<Id>> for Candidate<Id> {
    /// Converts an ordered candidate back into a public one.
    #[inline]
    fn from(scored: Scored<Id>) -> Self {
        Candidate {
            id: scored.id,
            distance: scored.distance,
        }
    }
}

/// Sorts scored candidates ascending and converts them to public candidates.
fn into_sorted_candidates<Id: Ord>(mut scored: Vec<Scored<Id>>) -> Vec<Candidate<Id>> {
    scored.sort_unstable();
    scored.into_iter().map(Candidate::from).collect()
}

/// Tie-key salt of plain searches (knn_search, ResumableSearch).
pub(crate) const SEARCH_SALT: u64 = 0;

/// Reusable buffers for [`search_layer_with`]: the two heaps, the neighbour buffer and
/// the batch of not-yet-visited neighbours with their distances.
#[derive(Debug)]
pub struct SearchScratch<Id> {
    candidates: BinaryHeap<Reverse<Scored<Id>>>,
    results: BinaryHeap<Scored<Id>>,
    pub(crate) neighbors: Vec<Id>,
    fresh: Vec<Id>,
    fresh_distances: Vec<f32>,
    /// Salt of the tie keys (0 for searches, the new node's hash during an insertion).
    pub(crate) tie_salt: u64,
}

impl<Id: Ord> SearchScratch<Id> {
    /// Creates empty buffers.
    pub fn new() -> Self {
        SearchScratch {
            candidates: BinaryHeap::new(),
            results: BinaryHeap::new(),
            neighbors: Vec::new(),
            fresh: Vec::new(),
            fresh_distances: Vec::new(),
            tie_salt: 0,
        }
    }
}

impl<Id: Ord> Default for SearchScratch<Id> {
    /// Same as `new`.
    fn default() -> Self {
        Self::new()
    }
}

/// Algorithm 2: beam search in one layer from `entry` with beam width `ef`; returns up to ef candidates sorted ascending by distance.
pub fn search_layer<G: SearchGraph>(
    g: &mut G,
    entry: &[Candidate<G::Id>],
    ef: usize,
    layer: usize,
    visited: &mut HashSet<G::Id>,
) -> Vec<Candidate<G::Id>> {
    let mut scratch = SearchScratch::new();
    search_layer_with(g, entry, ef, layer, visited, &mut scratch)
}

/// Algorithm 2 with a caller-chosen visited set and reused buffers (entries are marked visited; `visited` is not cleared).
pub fn search_layer_with<G: SearchGraph, V: VisitedSet<G::Id>>(
    g: &mut G,
    entry: &[Candidate<G::Id>],
    ef: usize,
    layer: usize,
    visited: &mut V,
    scratch: &mut SearchScratch<G::Id>,
) -> Vec<Candidate<G::Id>> {
    let ef = ef.max(1);
    let SearchScratch {
        candidates,
        results,
        neighbors,
        fresh,
        fresh_distances,
        tie_salt,
    } = scratch;
    let salt = *tie_salt;
    candidates.clear();
    results.clear();
    for (position, &start) in entry.iter().enumerate() {
        // Entries may already be marked by the caller; only skip repeated entries.
        if !visited.insert(start.id) && entry[..position].iter().any(|e| e.id == start.id) {
            continue;
        }
        let scored = Scored::from_candidate(start, salt);
        candidates.push(Reverse(scored));
        results.push(scored);
        if results.len() > ef {
            results.pop();
        }
    }

    while let Some(Reverse(nearest)) = candidates.pop() {
        match results.peek() {
            Some(furthest) if nearest > *furthest => break,
            _ => {}
        }
        neighbors.clear();
        g.neighbors(nearest.id, layer, neighbors);
        fresh.clear();
        fresh.extend(neighbors.iter().copied().filter(|&n| visited.insert(n)));
        g.distances(fresh, fresh_distances);
        for (&neighbor, &distance) in fresh.iter().zip(fresh_distances.iter()) {
            let scored = Scored::new(distance, neighbor, salt);
            let admit = match results.peek() {
                Some(furthest) => results.len() < ef || scored < *furthest,
                None => true,
            };
            if admit {
                candidates.push(Reverse(scored));
                results.push(scored);
                if results.len() > ef {
                    results.pop();
                }
            }
        }
    }

    into_sorted_candidates(results.drain().collect())
}

/// Greedy descent (Algorithm 2 with ef = 1) from `start` through layers `top` down to `bottom` inclusive.
pub(crate) fn greedy_descent<G: SearchGraph>(
    g: &mut G,
    start: Scored<G::Id>,
    top: usize,
    bottom: usize,
    neighbors: &mut Vec<G::Id>,
    salt: u64,
) -> Scored<G::Id> {
    let mut current = start;
    let mut distances = Vec::new();
    for layer in (bottom..=top).rev() {
        loop {
            neighbors.clear();
            g.neighbors(current.id, layer, neighbors);
            g.distances(neighbors, &mut distances);
            let mut best = current;
            for (&neighbor, &distance) in neighbors.iter().zip(distances.iter()) {
                let scored = Scored::new(distance, neighbor, salt);
                if scored < best {
                    best = scored;
                }
            }
            if best == current {
                break;
            }
            current = best;
        }
    }
    current
}

/// Descends from the entry point to layer 0 (the part of Algorithm 5 before the layer-0 beam).
fn descend_to_layer0<G: SearchGraph>(
    g: &mut G,
    neighbors: &mut Vec<G::Id>,
) -> Option<Scored<G::Id>> {
    let (entry, top) = g.entry_point()?;
    let start = Scored::new(g.distance(entry), entry, SEARCH_SALT);
    if top == 0 {
        return Some(start);
    }
    Some(greedy_descent(g, start, top, 1, neighbors, SEARCH_SALT))
}

/// Algorithm 5: greedy descent from the entry point through the upper layers (ef=1), then search_layer on layer 0 with `ef`; returns sorted candidates (up to ef).
pub fn knn_search<G: SearchGraph>(g: &mut G, ef: usize) -> Vec<Candidate<G::Id>> {
    let mut visited = IdHashSet::default();
    let mut scratch = SearchScratch::new();
    knn_search_with(g, ef, &mut visited, &mut scratch)
}

/// Algorithm 5 with a caller-provided visited set (cleared here) and reused buffers.
pub fn knn_search_with<G: SearchGraph, V: VisitedSet<G::Id>>(
    g: &mut G,
    ef: usize,
    visited: &mut V,
    scratch: &mut SearchScratch<G::Id>,
) -> Vec<Candidate<G::Id>> {
    let Some(entry) = descend_to_layer0(g, &mut scratch.neighbors) else {
        return Vec::new();
    };
    visited.clear();
    scratch.tie_salt = SEARCH_SALT;
    search_layer_with(g, &[entry.into()], ef, 0, visited, scratch)
}

/// A layer-0 beam search whose state survives between calls, so a scan that needs more rows than one beam gave can continue (like pgvector 0.8 iterative scans): it keeps the visited set and the candidates discarded from the beam.
#[derive(Debug)]
pub struct ResumableSearch<Id> {
    visited: IdHashSet<Id>,
    /// Evaluated nodes not yet expanded, nearest first.
    frontier: BinaryHeap<Reverse<Scored<Id>>>,
    /// Evaluated nodes not yet returned, nearest first.
    unreturned: BinaryHeap<Reverse<Scored<Id>>>,
    /// The beam computed by `start`, handed out by the first `next_batch`.
    first_beam: Option<Vec<Candidate<Id>>>,
    neighbors: Vec<Id>,
    fresh: Vec<Id>,
    fresh_distances: Vec<f32>,
}

impl<Id: Copy + Eq + std::hash::Hash + Ord + std::fmt::Debug> ResumableSearch<Id> {
    /// Descends from the entry point and computes the first beam of width `ef` (equal to `knn_search(g, ef)`).
    pub fn start<G: SearchGraph<Id = Id>>(g: &mut G, ef: usize) -> Self {
        let mut search = ResumableSearch {
            // Sized for a typical first beam (ef 40 visits ~1000 nodes): no rehash on the way.
            visited: IdHashSet::with_capacity_and_hasher(
                (ef * 32).clamp(256, 8192),
                Default::default(),
            ),
            frontier: BinaryHeap::new(),
            unreturned: BinaryHeap::new(),
            first_beam: None,
            neighbors: Vec::new(),
            fresh: Vec::new(),
            fresh_distances: Vec::new(),
        };
        if let Some(entry) = descend_to_layer0(g, &mut search.neighbors) {
            search.visited.insert(entry.id);
            search.frontier.push(Reverse(entry));
            search.unreturned.push(Reverse(entry));
            let beam = search.run_beam(g, ef);
            search.first_beam = Some(beam);
        }
        search
    }

    /// Returns the next `ef` not-yet-returned best candidates in ascending order (the first call returns the first beam); empty when the graph is exhausted.
    pub fn next_batch<G: SearchGraph<Id = Id>>(
        &mut self,
        g: &mut G,
        ef: usize,
    ) -> Vec<Candidate<Id>> {
        let ef = ef.max(1);
        if let Some(mut beam) = self.first_beam.take() {
            if beam.len() > ef {
                for &extra in &beam[ef..] {
                    self.unreturned
                        .push(Reverse(Scored::from_candidate(extra, SEARCH_SALT)));
                }
                beam.truncate(ef);
            }
            return beam;
        }
        self.run_beam(g, ef)
    }

    /// Number of nodes whose distance has been computed so far.
    pub fn visited_count(&self) -> usize {
        self.visited.len()
    }

    /// Bytes held by the search state (visited set, frontier, unreturned pool), for a
    /// scan's memory bound.
    pub fn memory_bytes(&self) -> usize {
        let scored = std::mem::size_of::<Reverse<Scored<Id>>>();
        // A hashbrown set spends one control byte per bucket beside each id.
        self.visited.capacity() * (std::mem::size_of::<Id>() + 1)
            + (self.frontier.capacity() + self.unreturned.capacity()) * scored
            + (self.neighbors.capacity() + self.fresh.capacity()) * std::mem::size_of::<Id>()
            + self.fresh_distances.capacity() * std::mem::size_of::<f32>()
    }

    /// Estimated distance of the nearest node waiting to be expanded (None: nothing left
    /// to expand). Nodes not evaluated yet are neighbours of these, so (as in Algorithm
    /// 2's stopping rule) a continued search is unlikely to find nodes much nearer.
    pub fn frontier_min(&self) -> Option<f32> {
        self.frontier.peek().map(|Reverse(s)| s.distance)
    }

    /// Estimated distance of the nearest evaluated node not returned yet.
    pub fn unreturned_min(&self) -> Option<f32> {
        let pool = self.unreturned.peek().map(|Reverse(s)| s.distance);
        let beam = self
            .first_beam
            .as_ref()
            .and_then(|b| b.first().map(|c| c.distance));
        match (pool, beam) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next `n` best evaluated but not-yet-returned nodes, ascending, without
    /// expanding anything: what a scan hands out once it may visit no more nodes.
    pub fn take_unreturned(&mut self, n: usize) -> Vec<Candidate<Id>> {
        let mut out = Vec::with_capacity(n.min(self.unreturned.len()));
        if let Some(beam) = self.first_beam.take() {
            for c in beam {
                self.unreturned
                    .push(Reverse(Scored::from_candidate(c, SEARCH_SALT)));
            }
        }
        while out.len() < n {
            match self.unreturned.pop() {
                Some(Reverse(scored)) => out.push(Candidate::from(scored)),
                None => break,
            }
        }
        out
    }

    /// One beam of width `ef` seeded with the best unreturned nodes, expanding the frontier while it can improve the beam.
    ///
    /// On the first call this is exactly Algorithm 2 from the entry point: nodes that
    /// Algorithm 2 would not admit (worse than the full beam's furthest) are kept in the
    /// frontier here, but they are worse than the final furthest too, so reaching one
    /// of them ends the loop just as Algorithm 2's candidate queue would.
    fn run_beam<G: SearchGraph<Id = Id>>(&mut self, g: &mut G, ef: usize) -> Vec<Candidate<Id>> {
        let ef = ef.max(1);
        let mut beam: BinaryHeap<Scored<Id>> = BinaryHeap::with_capacity(ef + 1);
        while beam.len() < ef {
            match self.unreturned.pop() {
                Some(Reverse(scored)) => beam.push(scored),
                None => break,
            }
        }
        while let Some(&Reverse(nearest)) = self.frontier.peek() {
            if beam.len() >= ef {
                if let Some(furthest) = beam.peek() {
                    if nearest > *furthest {
                        break;
                    }
                }
            }
            self.frontier.pop();
            self.neighbors.clear();
            g.neighbors(nearest.id, 0, &mut self.neighbors);
            self.fresh.clear();
            let visited = &mut self.visited;
            self.fresh.extend(
                self.neighbors
                    .iter()
                    .copied()
                    .filter(|&n| visited.insert(n)),
            );
            g.distances(&self.fresh, &mut self.fresh_distances);
            for (&neighbor, &distance) in self.fresh.iter().zip(self.fresh_distances.iter()) {
                let scored = Scored::new(distance, neighbor, SEARCH_SALT);
                self.frontier.push(Reverse(scored));
                beam.push(scored);
                if beam.len() > ef {
                    if let Some(evicted) = beam.pop() {
                        self.unreturned.push(Reverse(evicted));
                    }
                }
            }
        }
        into_sorted_candidates(beam.into_vec())
    }
}
