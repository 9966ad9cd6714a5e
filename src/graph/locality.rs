//! Page placement order for a built graph: nodes that are neighbours should share pages,
//! so a search that reads a batch of neighbours (grouped by page) touches fewer pages.
//!
//! Design: nodes are packed in groups of `group` (the nodes one page holds). A group
//! starts at the next unplaced node of a breadth-first walk over layer 0 from the entry
//! point and is filled with its nearest unplaced neighbours, then theirs (a small BFS
//! around the seed), so each page holds one tight neighbourhood; a search's fresh
//! neighbours, which lie near each other, then often share a page. (Graph reordering for
//! HNSW: Coleman et al., "Graph Reordering for Cache-Efficient Near Neighbor Search", 2021.)
//! Nodes no layer-0 path reaches come last, in id order.

use std::collections::VecDeque;

use super::InMemoryGraph;

/// Nodes of `graph` grouped `group` at a time into layer-0 neighbourhoods (a permutation of its ids).
pub fn locality_order(graph: &InMemoryGraph, group: usize) -> Vec<u32> {
    let n = graph.len();
    let group = group.max(1);
    let mut placed = vec![false; n];
    let mut seen = vec![false; n];
    let mut order = Vec::with_capacity(n);
    let mut walk = VecDeque::new();
    let mut local = VecDeque::new();
    let mut seeds = graph
        .entry_point()
        .map(|(e, _)| e)
        .into_iter()
        .chain(0..n as u32);
    while order.len() < n {
        // The next seed: the breadth-first walk's next unplaced node, else the next id.
        let seed = loop {
            if let Some(id) = walk.pop_front() {
                if !placed[id as usize] {
                    break Some(id);
                }
                continue;
            }
            match seeds.next() {
                Some(id) if !placed[id as usize] => break Some(id),
                Some(_) => continue,
                None => break None,
            }
        };
        let Some(seed) = seed else { break };
        let start = order.len();
        local.clear();
        local.push_back(seed);
        while order.len() - start < group {
            let Some(id) = local.pop_front() else { break };
            if placed[id as usize] {
                continue;
            }
            placed[id as usize] = true;
            order.push(id);
            local.extend(
                graph
                    .neighbor_slice(id, 0)
                    .iter()
                    .filter(|&&x| !placed[x as usize]),
            );
        }
        for &id in &order[start..] {
            for &x in graph.neighbor_slice(id, 0) {
                if !placed[x as usize] && !seen[x as usize] {
                    seen[x as usize] = true;
                    walk.push_back(x);
                }
            }
        }
    }
    order
}
