//! Algorithm 1 (INSERT), generic over [`GraphWrite`], plus a simple in-memory
//! `GraphWrite` ([`VecGraph`]) that runs it exactly as the page code will.
//!
//! Design:
//! - The new node is stored by the caller (with its level and empty lists) before
//!   `insert_node` runs; the implementor's query distance is the distance to it.
//! - Upper layers above the node's level are descended greedily; on each layer from
//!   `min(level, top)` down to 0 a beam of `ef_construction` is searched (Algorithm 2),
//!   up to `max_neighbors(layer)` neighbours are picked with Algorithm 4 (`2m` on layer
//!   0 like pgvector, which gives better-connected graphs than the paper's `m`), and
//!   the whole beam seeds the next layer. The node's own lists are written layer by
//!   layer as they are chosen; back-links to it are added afterwards, bottom-up, so a
//!   concurrent search that reaches it on some layer finds its lists below already set.
//! - Back-links go through `GraphWrite::add_back_link`, whose default is the
//!   read-prune-write [`connect_back_link`]; storages with concurrent writers
//!   override it to do that under one lock (the in-memory build does).
//! - Equal distances are ordered by a per-base pseudo-random key before selection,
//!   so groups of identical vectors link to random members instead of all to the
//!   smallest ids (which would leave the others without incoming links).

use std::hash::Hash;

use super::search::{greedy_descent, search_layer_with, Scored, SearchScratch};
use super::select::{select_neighbors_judged, Judged};
use super::visited::{tie_break_key, DenseVisited, IdHashSet, VisitedSet};
use super::{Candidate, GraphWrite, HnswParams, SearchGraph};

/// Sorts candidates of `base` by distance, breaking ties with a pseudo-random per-base key.
pub(crate) fn sort_for_selection<Id: Copy + Hash>(base: Id, candidates: &mut [Candidate<Id>]) {
    candidates.sort_unstable_by(|a, b| selection_order(base, a, b));
}

/// The order of [`sort_for_selection`]: by distance, ties by a pseudo-random per-base key.
fn selection_order<Id: Copy + Hash>(
    base: Id,
    a: &Candidate<Id>,
    b: &Candidate<Id>,
) -> std::cmp::Ordering {
    a.distance
        .total_cmp(&b.distance)
        .then_with(|| tie_break_key(base, a.id).cmp(&tie_break_key(base, b.id)))
}

/// Algorithm 1 for one new node `id` already stored with its level (its query distance = distance to itself's vector, held by the implementor): finds neighbours per layer with search_layer(ef_construction), selects with Algorithm 4, writes its lists, adds back-links (pruning overflowing lists with Algorithm 4), and raises the entry point if its level is higher.
pub fn insert_node<G: GraphWrite>(g: &mut G, id: G::Id, level: usize, params: &HnswParams) {
    let mut visited = IdHashSet::default();
    let mut scratch = SearchScratch::new();
    insert_node_with(g, id, level, params, &mut visited, &mut scratch);
}

/// The neighbours chosen for a new node on one layer: (layer, list capacity, neighbours).
type LayerLinks<Id> = (usize, usize, Vec<Candidate<Id>>);

/// Algorithm 1 with a caller-provided visited set and reused search buffers.
pub fn insert_node_with<G: GraphWrite, V: VisitedSet<G::Id>>(
    g: &mut G,
    id: G::Id,
    level: usize,
    params: &HnswParams,
    visited: &mut V,
    scratch: &mut SearchScratch<G::Id>,
) {
    let Some((entry, top)) = g.entry_point() else {
        g.set_entry_point(id, level);
        return;
    };
    if entry == id {
        return;
    }
    let salt = tie_break_key(id, id);
    let mut nearest = Scored::new(g.distance(entry), entry, salt);
    if top > level {
        nearest = greedy_descent(g, nearest, top, level + 1, &mut scratch.neighbors, salt);
    }
    scratch.tie_salt = salt;
    let mut entries = vec![Candidate::from(nearest)];
    let mut selected_ids = Vec::new();
    // Back-links wait until the node's own lists are written on every layer, and go in
    // bottom-up: the node becomes reachable on a layer only once the layers below it are
    // linked, so a concurrent search never descends into a node with empty lower lists.
    let mut back_links: Vec<LayerLinks<G::Id>> = Vec::new();
    for layer in (0..=level.min(top)).rev() {
        visited.clear();
        let mut found =
            search_layer_with(g, &entries, params.ef_construction, layer, visited, scratch);
        found.retain(|candidate| candidate.id != id && g.is_linkable(candidate.id));
        add_neighbors_of_duplicates(g, id, layer, &mut found, params.m, &mut scratch.neighbors);
        sort_for_selection(id, &mut found);
        let max_neighbors = params.max_neighbors(layer);
        let selection = select_neighbors_judged(
            &found,
            None,
            max_neighbors,
            |a, b| g.pair_distance(a, b),
            max_neighbors,
        )
        .expect("a run without earlier verdicts always completes");
        let selected = selection.chosen;
        selected_ids.clear();
        selected_ids.extend(selected.iter().map(|candidate| candidate.id));
        g.set_judged_neighbors(id, layer, &selected_ids, &selection.verdicts);
        back_links.push((layer, max_neighbors, selected));
        if !found.is_empty() {
            entries = found;
        }
    }
    for (layer, max_neighbors, selected) in back_links.into_iter().rev() {
        for neighbor in &selected {
            g.add_back_link(neighbor.id, layer, id, neighbor.distance, max_neighbors);
        }
    }
    if level > top {
        g.set_entry_point(id, level);
    }
}

/// When the beam holds exact duplicates of the new node, adds their neighbours (up to `max_duplicates` of them) as candidates.
///
/// A beam inside a large group of identical vectors sees only the group (everything
/// else is farther), so without this late members would link only to each other and
/// the group would become a trap for searches. A duplicate's neighbours are exactly
/// as far from the new node as from the duplicate, so they are the right way out.
fn add_neighbors_of_duplicates<G: GraphWrite>(
    g: &mut G,
    id: G::Id,
    layer: usize,
    found: &mut Vec<Candidate<G::Id>>,
    max_duplicates: usize,
    buffer: &mut Vec<G::Id>,
) {
    let duplicates: Vec<G::Id> = found
        .iter()
        .filter(|candidate| candidate.distance == 0.0)
        .map(|candidate| candidate.id)
        .take(max_duplicates)
        .collect();
    if duplicates.is_empty() {
        return;
    }
    let mut known: IdHashSet<G::Id> = found.iter().map(|candidate| candidate.id).collect();
    known.insert(id);
    for duplicate in duplicates {
        buffer.clear();
        g.neighbors(duplicate, layer, buffer);
        for &neighbor in buffer.iter() {
            if known.insert(neighbor) {
                let distance = g.distance(neighbor);
                found.push(Candidate {
                    id: neighbor,
                    distance,
                });
            }
        }
    }
}

/// How full a pruned list is left: 3/4 of its capacity, topped up with the pruned
/// candidates nearest the base. Full lists (pgvector's keepPrunedConnections) give the
/// best recall at a given ef_search, but a full list prunes again at every back-link, and
/// a prune costs O(m^2) distances (4x the build time at 1M rows); left 3/4 full, a list
/// takes m/4 back-links before the next prune.
pub fn prune_fill(max_neighbors: usize) -> usize {
    max_neighbors - max_neighbors / 4
}

/// Algorithm 4 applied to an overflowing list: `base`'s `existing` neighbours plus `new` (at its distance from `base`), cut to `max_neighbors`.
pub fn prune_neighbor_list<Id: Copy + Hash>(
    base: Id,
    existing: &[Id],
    new: Candidate<Id>,
    max_neighbors: usize,
    pair_distance: impl FnMut(Id, Id) -> f32,
) -> Vec<Id> {
    let unjudged = vec![Judged::Unknown; existing.len()];
    prune_judged_list(base, existing, &unjudged, new, max_neighbors, pair_distance).0
}

/// [`prune_neighbor_list`] for lists that keep each entry's verdict from the run that chose it (`prior`, parallel to `existing`): re-judges only what can have changed and returns the new list with its verdicts (all `Unknown` when they cannot be reused).
pub fn prune_judged_list<Id: Copy + Hash>(
    base: Id,
    existing: &[Id],
    prior: &[Judged],
    new: Candidate<Id>,
    max_neighbors: usize,
    mut pair_distance: impl FnMut(Id, Id) -> f32,
) -> (Vec<Id>, Vec<Judged>) {
    let mut judged: Vec<(Candidate<Id>, Judged)> = existing
        .iter()
        .zip(prior)
        .map(|(&neighbor, &verdict)| {
            let distance = pair_distance(base, neighbor);
            (
                Candidate {
                    id: neighbor,
                    distance,
                },
                verdict,
            )
        })
        .collect();
    judged.push((new, Judged::Unknown));
    judged.sort_unstable_by(|a, b| selection_order(base, &a.0, &b.0));
    let candidates: Vec<Candidate<Id>> = judged.iter().map(|entry| entry.0).collect();
    let verdicts: Vec<Judged> = judged.iter().map(|entry| entry.1).collect();
    let fill_to = prune_fill(max_neighbors);
    let earlier = verdicts
        .iter()
        .any(|&verdict| verdict != Judged::Unknown)
        .then_some(&verdicts[..]);
    let selection = select_neighbors_judged(
        &candidates,
        earlier,
        max_neighbors,
        &mut pair_distance,
        fill_to,
    )
    .or_else(|| {
        select_neighbors_judged(
            &candidates,
            None,
            max_neighbors,
            &mut pair_distance,
            fill_to,
        )
    })
    .expect("a run without earlier verdicts always completes");
    let ids = selection
        .chosen
        .iter()
        .map(|candidate| candidate.id)
        .collect();
    (ids, selection.verdicts)
}

/// Default back-link: reads `id`'s list on `layer`, appends `new_neighbor` or prunes with Algorithm 4, and writes it back if it changed.
pub fn connect_back_link<G: GraphWrite + ?Sized>(
    g: &mut G,
    id: G::Id,
    layer: usize,
    new_neighbor: G::Id,
    distance: f32,
    max_neighbors: usize,
) {
    let mut list = Vec::new();
    g.neighbors(id, layer, &mut list);
    if list.contains(&new_neighbor) {
        return;
    }
    if list.len() < max_neighbors {
        list.push(new_neighbor);
        g.set_neighbors(id, layer, &list);
        return;
    }
    let new = Candidate {
        id: new_neighbor,
        distance,
    };
    let pruned = prune_neighbor_list(id, &list, new, max_neighbors, |a, b| g.pair_distance(a, b));
    if pruned != list {
        g.set_neighbors(id, layer, &pruned);
    }
}

/// A single-threaded in-memory graph built node by node with the generic [`insert_node`]; `pair_distance(a, b)` gives distances between nodes.
pub struct VecGraph<D> {
    /// `links[node][layer]` is a neighbour list; a node has `level + 1` layers.
    links: Vec<Vec<Vec<u32>>>,
    entry: Option<(u32, usize)>,
    pair_distance: D,
    /// The node being inserted (the query of `SearchGraph::distance`).
    inserting: u32,
    visited: DenseVisited,
    scratch: SearchScratch<u32>,
}

impl<D: FnMut(u32, u32) -> f32> VecGraph<D> {
    /// Creates an empty graph.
    pub fn new(pair_distance: D) -> Self {
        VecGraph {
            links: Vec::new(),
            entry: None,
            pair_distance,
            inserting: 0,
            visited: DenseVisited::default(),
            scratch: SearchScratch::new(),
        }
    }

    /// Stores node `len()` with `level` and links it with Algorithm 1; returns its id.
    pub fn insert(&mut self, level: usize, params: &HnswParams) -> u32 {
        let id = u32::try_from(self.links.len()).expect("VecGraph holds at most u32::MAX nodes");
        self.links.push(vec![Vec::new(); level + 1]);
        self.inserting = id;
        let mut visited = std::mem::take(&mut self.visited);
        let mut scratch = std::mem::take(&mut self.scratch);
        insert_node_with(self, id, level, params, &mut visited, &mut scratch);
        self.visited = visited;
        self.scratch = scratch;
        id
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.links.len()
    }

    /// True if there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// Top level of node `id`.
    pub fn level(&self, id: u32) -> usize {
        self.links[id as usize].len() - 1
    }

    /// The neighbour list of `id` on `layer` (empty above its level).
    pub fn neighbor_list(&self, id: u32, layer: usize) -> &[u32] {
        self.links[id as usize]
            .get(layer)
            .map_or(&[][..], |list| list.as_slice())
    }

    /// The entry point and its level.
    pub fn entry(&self) -> Option<(u32, usize)> {
        self.entry
    }

    /// A SearchGraph view with a query distance closure.
    pub fn searcher<F: FnMut(u32) -> f32>(&self, query_distance: F) -> VecGraphSearch<'_, D, F> {
        VecGraphSearch {
            graph: self,
            query_distance,
        }
    }
}

impl<D: FnMut(u32, u32) -> f32> SearchGraph for VecGraph<D> {
    type Id = u32;

    /// The entry point.
    fn entry_point(&mut self) -> Option<(u32, usize)> {
        self.entry
    }

    /// Appends the stored list.
    fn neighbors(&mut self, id: u32, layer: usize, out: &mut Vec<u32>) {
        if let Some(list) = self.links[id as usize].get(layer) {
            out.extend_from_slice(list);
        }
    }

    /// Distance from the node being inserted.
    fn distance(&mut self, id: u32) -> f32 {
        (self.pair_distance)(self.inserting, id)
    }
}

impl<D: FnMut(u32, u32) -> f32> GraphWrite for VecGraph<D> {
    /// Distance between two nodes.
    fn pair_distance(&mut self, a: u32, b: u32) -> f32 {
        (self.pair_distance)(a, b)
    }

    /// Replaces a list.
    fn set_neighbors(&mut self, id: u32, layer: usize, neighbors: &[u32]) {
        let list = &mut self.links[id as usize][layer];
        list.clear();
        list.extend_from_slice(neighbors);
    }

    /// Records the entry point.
    fn set_entry_point(&mut self, id: u32, level: usize) {
        self.entry = Some((id, level));
    }
}

/// A read-only search view of a [`VecGraph`] with its own query.
pub struct VecGraphSearch<'a, D, F> {
    graph: &'a VecGraph<D>,
    query_distance: F,
}

impl<D, F: FnMut(u32) -> f32> SearchGraph for VecGraphSearch<'_, D, F> {
    type Id = u32;

    /// The graph's entry point.
    fn entry_point(&mut self) -> Option<(u32, usize)> {
        self.graph.entry
    }

    /// Appends the stored list.
    fn neighbors(&mut self, id: u32, layer: usize, out: &mut Vec<u32>) {
        if let Some(list) = self.graph.links[id as usize].get(layer) {
            out.extend_from_slice(list);
        }
    }

    /// Distance from the query.
    fn distance(&mut self, id: u32) -> f32 {
        (self.query_distance)(id)
    }
}
