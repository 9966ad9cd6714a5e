//! Neighbour selection: Algorithm 3 (SELECT-NEIGHBORS-SIMPLE) and Algorithm 4
//! (SELECT-NEIGHBORS-HEURISTIC).
//!
//! Design: Algorithm 4 keeps a candidate only if it is closer to the base node than
//! to every neighbour kept so far, which spreads links over directions and keeps the
//! graph navigable across clusters. Exact duplicates (distance 0) need two exceptions:
//!
//! - Copies of the base: a kept copy `r` is exactly as far from every other candidate
//!   as the base, so it would prune *everything* else and duplicate-heavy nodes would
//!   end up with a single link. So a kept neighbour at distance 0 does not prune
//!   others, and at most `max(1, m / 2)` such copies are kept.
//! - Copies of a kept neighbour ("twins"): the plain rule prunes every twin of `r`
//!   (it is 0 from `r`), so a vector next to a group of identical vectors links to
//!   one member only, gets a single back-link from the group, and a search that
//!   wanders over the group (all members tie) finds it only if it happens to expand
//!   that member (issue 11.6: 100 copies plus one distinct vector). A twin is
//!   therefore not pruned by its copy (it is still pruned by any other kept
//!   neighbour), and at most `max(1, m / 2)` twins are kept, so the group holds many
//!   ways to the vector while half the list stays free for other directions.
//!
//! For inner-product "distances" 0 does not mean identical, but the rules are harmless
//! there (they only relax pruning for candidates at exactly 0).

use super::Candidate;

/// Algorithm 3: the `m` nearest candidates (`candidates` sorted ascending).
pub fn select_neighbors_simple<Id: Copy>(
    candidates: &[Candidate<Id>],
    m: usize,
) -> Vec<Candidate<Id>> {
    candidates.iter().take(m).copied().collect()
}

/// How Algorithm 4's pruning test judges one candidate against the kept neighbours.
#[derive(PartialEq)]
enum Verdict {
    /// Closer to the base than to every kept neighbour.
    Diverse,
    /// Diverse except for kept neighbours it is identical to.
    Twin,
    /// Some kept neighbour (not identical to it) is at least as close to it as the base.
    Pruned,
}

/// Algorithm 4's test for `candidate` against `kept` (copies of the base prune nothing).
fn judge<Id: Copy>(
    candidate: Candidate<Id>,
    kept: &[Candidate<Id>],
    pair_distance: &mut impl FnMut(Id, Id) -> f32,
) -> Verdict {
    let mut twin = false;
    for neighbor in kept.iter().filter(|neighbor| neighbor.distance != 0.0) {
        let between = pair_distance(candidate.id, neighbor.id);
        if between == 0.0 {
            twin = true;
        } else if between.is_nan() || candidate.distance >= between {
            return Verdict::Pruned;
        }
    }
    if twin {
        Verdict::Twin
    } else {
        Verdict::Diverse
    }
}

/// Algorithm 4: keep a candidate only if it is closer to the base than to every kept neighbour (with the duplicate rules above), at most `m`; then, as the paper's keepPrunedConnections, fill up to `fill_to` (at most `m`) with the pruned ones, nearest first.
pub fn select_neighbors_heuristic<Id: Copy>(
    candidates: &[Candidate<Id>],
    m: usize,
    mut pair_distance: impl FnMut(Id, Id) -> f32,
    fill_to: usize,
) -> Vec<Candidate<Id>> {
    let keep_pruned = fill_to > 0;
    let duplicate_limit = (m / 2).max(1);
    let mut kept: Vec<Candidate<Id>> = Vec::with_capacity(m.min(candidates.len()));
    let mut pruned: Vec<Candidate<Id>> = Vec::new();
    let (mut duplicates_kept, mut twins_kept) = (0, 0);
    for &candidate in candidates {
        if kept.len() >= m {
            break;
        }
        // (keep, may fill): copies past their limit never fill, or they would crowd
        // the list the limits keep half free.
        let (keep, fill) = if candidate.distance == 0.0 {
            duplicates_kept += 1;
            (duplicates_kept <= duplicate_limit, false)
        } else {
            match judge(candidate, &kept, &mut pair_distance) {
                Verdict::Diverse => (true, false),
                Verdict::Twin => {
                    twins_kept += 1;
                    (twins_kept <= duplicate_limit, false)
                }
                Verdict::Pruned => (false, true),
            }
        };
        if keep {
            kept.push(candidate);
        } else if keep_pruned && fill {
            pruned.push(candidate);
        }
    }
    if keep_pruned {
        let room = fill_to.min(m).saturating_sub(kept.len());
        kept.extend(pruned.into_iter().take(room));
    }
    kept
}
