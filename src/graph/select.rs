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

/// What an earlier Algorithm 4 run over the same base said of a candidate.
///
/// The in-memory build keeps this per list entry (as pgvector does), so that pruning a
/// list again after a few back-links re-judges only what can have changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judged {
    /// Not judged yet (appended since, or the earlier run met exact duplicates).
    Unknown,
    /// Kept as diverse: closer to the base than to every neighbour kept before it.
    Kept,
    /// Pruned by a neighbour kept before it (the entry is a keepPrunedConnections fill).
    Pruned,
}

/// Algorithm 4's result with each entry's verdict, for [`select_neighbors_judged`].
#[derive(Debug, PartialEq)]
pub struct Selection<Id> {
    /// The chosen neighbours: the kept ones in order, then the fill.
    pub chosen: Vec<Candidate<Id>>,
    /// `Kept` or `Pruned` for each chosen neighbour; `Unknown` throughout when exact
    /// duplicates or twins took part (their limits depend on the whole list, so the next
    /// run starts afresh).
    pub verdicts: Vec<Judged>,
}

/// Algorithm 4: keep a candidate only if it is closer to the base than to every kept neighbour (with the duplicate rules above), at most `m`; then, as the paper's keepPrunedConnections, fill up to `fill_to` (at most `m`) with the pruned ones, nearest first.
pub fn select_neighbors_heuristic<Id: Copy>(
    candidates: &[Candidate<Id>],
    m: usize,
    pair_distance: impl FnMut(Id, Id) -> f32,
    fill_to: usize,
) -> Vec<Candidate<Id>> {
    select_neighbors_judged(candidates, None, m, pair_distance, fill_to)
        .expect("a run without earlier verdicts always completes")
        .chosen
}

/// [`select_neighbors_heuristic`] that also returns verdicts and can start from an earlier run's (`prior[i]` for `candidates[i]`, in the same sorted order with the same distances).
///
/// With earlier verdicts only what can have changed is judged again (pgvector's cached
/// "closer" flags): an `Unknown` candidate against every kept neighbour; a formerly kept
/// one only against neighbours newly kept in this run; a formerly pruned one only once
/// some formerly kept neighbour has been pruned (its pruner may be gone). Kept sets only
/// grow by those additions, so the result equals a run from scratch. A zero distance
/// (duplicates or twins, whose limits need the whole list) returns `None`: run again
/// without `prior`.
pub fn select_neighbors_judged<Id: Copy>(
    candidates: &[Candidate<Id>],
    prior: Option<&[Judged]>,
    m: usize,
    mut pair_distance: impl FnMut(Id, Id) -> f32,
    fill_to: usize,
) -> Option<Selection<Id>> {
    let keep_pruned = fill_to > 0;
    let duplicate_limit = (m / 2).max(1);
    let mut kept: Vec<Candidate<Id>> = Vec::with_capacity(m.min(candidates.len()));
    let mut pruned: Vec<Candidate<Id>> = Vec::new();
    // Neighbours kept in this run that an earlier run had not kept.
    let mut added: Vec<Candidate<Id>> = Vec::new();
    let mut removed_any = false;
    let mut reusable = true;
    let (mut duplicates_kept, mut twins_kept) = (0, 0);
    for (i, &candidate) in candidates.iter().enumerate() {
        if kept.len() >= m {
            break;
        }
        let earlier = prior.map_or(Judged::Unknown, |prior| prior[i]);
        if candidate.distance == 0.0 {
            if prior.is_some() {
                return None;
            }
            reusable = false;
            duplicates_kept += 1;
            if duplicates_kept <= duplicate_limit {
                kept.push(candidate);
            }
            continue;
        }
        let verdict = match earlier {
            Judged::Kept if added.is_empty() => Verdict::Diverse,
            Judged::Kept => judge(candidate, &added, &mut pair_distance),
            Judged::Pruned if !removed_any => Verdict::Pruned,
            Judged::Pruned | Judged::Unknown => judge(candidate, &kept, &mut pair_distance),
        };
        match verdict {
            Verdict::Diverse => {
                if earlier != Judged::Kept {
                    added.push(candidate);
                }
                kept.push(candidate);
            }
            Verdict::Twin if prior.is_some() => return None,
            // Copies past their limit never fill, or they would crowd the list the
            // limits keep half free.
            Verdict::Twin => {
                reusable = false;
                twins_kept += 1;
                if twins_kept <= duplicate_limit {
                    kept.push(candidate);
                }
            }
            Verdict::Pruned => {
                removed_any |= earlier == Judged::Kept;
                if keep_pruned {
                    pruned.push(candidate);
                }
            }
        }
    }
    let diverse = kept.len();
    if keep_pruned {
        let room = fill_to.min(m).saturating_sub(kept.len());
        let fill = pruned.len().min(room);
        kept.extend_from_slice(&pruned[..fill]);
    }
    let verdicts = if reusable {
        let mut verdicts = vec![Judged::Kept; diverse];
        verdicts.resize(kept.len(), Judged::Pruned);
        verdicts
    } else {
        vec![Judged::Unknown; kept.len()]
    };
    Some(Selection {
        chosen: kept,
        verdicts,
    })
}
