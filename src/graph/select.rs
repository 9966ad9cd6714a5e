//! Neighbour selection: Algorithm 3 (SELECT-NEIGHBORS-SIMPLE) and Algorithm 4
//! (SELECT-NEIGHBORS-HEURISTIC).
//!
//! Design: Algorithm 4 keeps a candidate only if it is closer to the base node than
//! to every neighbour kept so far, which spreads links over directions and keeps the
//! graph navigable across clusters. Exact duplicates of the base (distance 0) would
//! break it: a kept duplicate `r` is exactly as far from every other candidate as the
//! base, so it would prune *everything* else and duplicate-heavy nodes would end up
//! with a single link (and parts of the graph unreachable). So here a kept neighbour
//! at distance 0 does not prune others, and at most `max(1, m / 2)` such duplicates
//! are kept, leaving room for links out of a group of identical vectors. For
//! inner-product "distances" 0 does not mean duplicate, but the rule is harmless
//! there (it only relaxes pruning for candidates at exactly 0).

use super::Candidate;

/// Algorithm 3: the `m` nearest candidates (`candidates` sorted ascending).
pub fn select_neighbors_simple<Id: Copy>(
    candidates: &[Candidate<Id>],
    m: usize,
) -> Vec<Candidate<Id>> {
    candidates.iter().take(m).copied().collect()
}

/// Algorithm 4: keep a candidate only if it is closer to the base than to every kept neighbour; with `keep_pruned`, fill up to `m` with pruned ones in order.
pub fn select_neighbors_heuristic<Id: Copy>(
    candidates: &[Candidate<Id>],
    m: usize,
    mut pair_distance: impl FnMut(Id, Id) -> f32,
    keep_pruned: bool,
) -> Vec<Candidate<Id>> {
    let duplicate_limit = (m / 2).max(1);
    let mut kept: Vec<Candidate<Id>> = Vec::with_capacity(m.min(candidates.len()));
    let mut pruned: Vec<Candidate<Id>> = Vec::new();
    let mut duplicates_kept = 0;
    for &candidate in candidates {
        if kept.len() >= m {
            break;
        }
        if candidate.distance == 0.0 {
            if duplicates_kept < duplicate_limit {
                kept.push(candidate);
                duplicates_kept += 1;
            } else if keep_pruned {
                pruned.push(candidate);
            }
            continue;
        }
        let diverse = kept
            .iter()
            .filter(|neighbor| neighbor.distance != 0.0)
            .all(|neighbor| candidate.distance < pair_distance(candidate.id, neighbor.id));
        if diverse {
            kept.push(candidate);
        } else if keep_pruned {
            pruned.push(candidate);
        }
    }
    if keep_pruned {
        let room = m.saturating_sub(kept.len());
        kept.extend(pruned.into_iter().take(room));
    }
    kept
}
