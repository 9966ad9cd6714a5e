//! Automatic choice of a quantizer (`quantizer = 'auto'`, `quantization_optimize`).
//!
//! Every candidate (sq8, sq4, sq2, PQ at a few shapes with 4 and 8 bits, binary, and
//! `none` as the exact fallback) is trained on the base part of a sample and measured
//! the way the index searches: brute force over the codes with the asymmetric
//! estimator, then exact re-ranking of the best `rerank` candidates, recall@10 against
//! exact k-NN. The graph adds its own (ef_search-dependent) loss on top; this measures
//! only what the codes cost. Postgres-free, so `cargo test` covers it.

use super::{Quantizer, QuantizerConfig, QuantizerKind};
use crate::datagen::{exact_knn, recall_at, top_k};
use crate::distance::{self, metric_distance, Metric};
use rayon::prelude::*;

/// Rows `choose_for_build` evaluates on at most (seeded, evenly spaced subsample).
pub const AUTO_SAMPLE_ROWS: usize = 5_000;
/// Queries `choose_for_build` measures recall with.
pub const AUTO_QUERIES: usize = 100;
/// Re-ranked candidates assumed by `choose_for_build` (the `qhnsw.rerank_candidates` default).
pub const AUTO_RERANK: usize = 40;
/// Neighbours recall is measured at.
const K: usize = 10;

/// Measured result of one candidate quantizer.
#[derive(Clone, Debug)]
pub struct CandidateReport {
    /// Training parameters of the candidate.
    pub config: QuantizerConfig,
    /// Method name as in `WITH (quantizer = ...)`.
    pub method: String,
    /// Extra parameters, e.g. `pq_subvectors=16, pq_bits=8` (empty for scalar and binary).
    pub parameters: String,
    /// Recall@10 with exact re-ranking against exact k-NN on the held-out queries.
    pub recall: f64,
    /// Bytes of one code.
    pub bytes_per_vector: usize,
    /// Bits of code per dimension.
    pub bits_per_dimension: f64,
    /// Set by `choose_for_build` on the candidate it picked.
    pub chosen: bool,
}

/// The candidate configurations for `dims` dimensions, in evaluation order.
pub fn candidate_configs(dims: usize) -> Vec<QuantizerConfig> {
    let base = QuantizerConfig {
        seed: 42,
        ..QuantizerConfig::default()
    };
    let mut out = vec![
        QuantizerConfig {
            kind: QuantizerKind::None,
            ..base.clone()
        },
        QuantizerConfig {
            kind: QuantizerKind::Sq8,
            ..base.clone()
        },
        QuantizerConfig {
            kind: QuantizerKind::Sq4,
            ..base.clone()
        },
        QuantizerConfig {
            kind: QuantizerKind::Sq2,
            ..base.clone()
        },
    ];
    for m in pq_subvector_counts(dims) {
        for bits in [8u8, 4] {
            out.push(QuantizerConfig {
                kind: QuantizerKind::Pq,
                pq_subvectors: m,
                pq_bits: bits,
                ..base.clone()
            });
        }
    }
    out.push(QuantizerConfig {
        kind: QuantizerKind::Binary,
        ..base
    });
    out
}

/// PQ sub-vector counts worth trying: sub-vectors of about 4, 8 and 16 dimensions (divisors of `dims`).
pub fn pq_subvector_counts(dims: usize) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    for sub_dims in [4usize, 8, 16] {
        let target = (dims / sub_dims).max(1);
        if let Some(m) = (1..=target).rev().find(|m| dims.is_multiple_of(*m)) {
            if !out.contains(&m) && m < dims {
                out.push(m);
            }
        }
    }
    out
}

/// Method and parameter text of a configuration, as shown to users.
pub fn describe(config: &QuantizerConfig) -> (String, String) {
    let params = if config.kind == QuantizerKind::Pq {
        format!(
            "pq_subvectors={}, pq_bits={}",
            config.pq_subvectors, config.pq_bits
        )
    } else {
        String::new()
    };
    (config.kind.name().to_string(), params)
}

/// Copies `sample`, L2-normalising rows under Cosine (dropping zero rows) as the index does.
pub fn prepare_sample(dims: usize, sample: &[f32], metric: Metric) -> Vec<f32> {
    let rows = sample.len() / dims;
    let mut out = Vec::with_capacity(rows * dims);
    for row in sample[..rows * dims].chunks_exact(dims) {
        if row.iter().any(|x| !x.is_finite()) {
            continue;
        }
        if metric == Metric::Cosine {
            let start = out.len();
            out.extend_from_slice(row);
            if !distance::normalize(&mut out[start..]) {
                out.truncate(start);
            }
        } else {
            out.extend_from_slice(row);
        }
    }
    out
}

/// Splits prepared rows into (base, queries): `queries` evenly spaced rows are held out.
pub fn holdout_split(dims: usize, data: &[f32], queries: usize) -> (Vec<f32>, Vec<f32>) {
    let rows = data.len() / dims;
    let nq = queries.min(rows / 4).max(1).min(rows.saturating_sub(1));
    let mut is_query = vec![false; rows];
    for i in 0..nq {
        is_query[i * rows / nq] = true;
    }
    let (mut base, mut qs) = (Vec::new(), Vec::new());
    for (r, row) in data.chunks_exact(dims).enumerate() {
        if is_query[r] {
            qs.extend_from_slice(row);
        } else {
            base.extend_from_slice(row);
        }
    }
    (base, qs)
}

/// Recall@10 of brute force over `quantizer`'s codes of `base` with exact re-ranking of the best `rerank`.
pub fn recall_with_rerank(
    quantizer: &Quantizer,
    base: &[f32],
    queries: &[f32],
    metric: Metric,
    rerank: usize,
) -> f64 {
    let dims = quantizer.dims();
    if base.len() < dims || queries.len() < dims {
        return f64::NAN;
    }
    let truth = exact_knn(base, queries, dims, K, metric);
    let got = search_with_rerank(quantizer, base, queries, metric, rerank, K);
    recall_at(K, &truth, &got)
}

/// The `k` best ids of every query: estimates over codes, then exact distances for the best `rerank`.
pub fn search_with_rerank(
    quantizer: &Quantizer,
    base: &[f32],
    queries: &[f32],
    metric: Metric,
    rerank: usize,
    k: usize,
) -> Vec<Vec<u32>> {
    search_ranked_by(quantizer, base, queries, metric, metric, rerank, k)
}

/// Like [`search_with_rerank`], but the codes are ranked with `estimator_metric` (the index
/// ranks inner product on unit-norm data with the L2 estimator) and re-ranked with `metric`.
pub fn search_ranked_by(
    quantizer: &Quantizer,
    base: &[f32],
    queries: &[f32],
    estimator_metric: Metric,
    metric: Metric,
    rerank: usize,
    k: usize,
) -> Vec<Vec<u32>> {
    let dims = quantizer.dims();
    let code_len = quantizer.code_len().max(1);
    let rows = base.len() / dims;
    let mut codes = vec![0u8; rows * code_len];
    codes
        .par_chunks_mut(code_len)
        .zip(base.par_chunks_exact(dims))
        .for_each(|(c, x)| quantizer.encode(x, c));
    queries
        .par_chunks_exact(dims)
        .map(|q| {
            let est = quantizer.estimator(q, estimator_metric);
            let scored: Vec<(f32, u32)> = codes
                .chunks_exact(code_len)
                .enumerate()
                .map(|(i, c)| (est.distance(c), i as u32))
                .collect();
            if rerank == 0 {
                return top_k(scored, k);
            }
            let best = top_k(scored, rerank.max(k));
            let exact: Vec<(f32, u32)> = best
                .into_iter()
                .map(|i| {
                    let x = &base[i as usize * dims..(i as usize + 1) * dims];
                    (metric_distance(metric, q, x), i)
                })
                .collect();
            top_k(exact, k)
        })
        .collect()
}

/// Trains and measures every candidate on `sample` (row-major); candidates that cannot train are left out.
///
/// `queries` evenly spaced sample rows are held out as queries (at most a quarter of
/// the rows), the rest is the base the candidates are trained on and searched.
pub fn evaluate_candidates(
    dims: usize,
    sample: &[f32],
    metric: Metric,
    queries: usize,
    rerank: usize,
) -> Vec<CandidateReport> {
    if dims == 0 {
        return Vec::new();
    }
    let data = prepare_sample(dims, sample, metric);
    if data.len() / dims < 2 {
        return Vec::new();
    }
    let (base, qs) = holdout_split(dims, &data, queries);
    let truth = exact_knn(&base, &qs, dims, K, metric);
    candidate_configs(dims)
        .into_iter()
        .filter_map(|config| {
            let quantizer = Quantizer::train(&config, dims, &base).ok()?;
            let got = search_with_rerank(&quantizer, &base, &qs, metric, rerank, K);
            let (method, parameters) = describe(&config);
            let bytes = quantizer.code_len();
            Some(CandidateReport {
                config,
                method,
                parameters,
                recall: recall_at(K, &truth, &got),
                bytes_per_vector: bytes,
                bits_per_dimension: (bytes * 8) as f64 / dims as f64,
                chosen: false,
            })
        })
        .collect()
}

/// Index of the smallest candidate (bytes per vector; ties: higher recall) with recall >= `threshold`.
pub fn choose(reports: &[CandidateReport], threshold: f64) -> Option<usize> {
    reports
        .iter()
        .enumerate()
        .filter(|(_, r)| r.recall.is_finite() && r.recall >= threshold)
        .min_by(|(ia, a), (ib, b)| {
            a.bytes_per_vector
                .cmp(&b.bytes_per_vector)
                .then(b.recall.total_cmp(&a.recall))
                .then(ia.cmp(ib))
        })
        .map(|(i, _)| i)
}

/// Index of the most accurate candidate (ties: fewer bytes), the fallback when none meets the threshold.
fn most_accurate(reports: &[CandidateReport]) -> Option<usize> {
    reports
        .iter()
        .enumerate()
        .filter(|(_, r)| r.recall.is_finite())
        .min_by(|(_, a), (_, b)| {
            b.recall
                .total_cmp(&a.recall)
                .then(a.bytes_per_vector.cmp(&b.bytes_per_vector))
        })
        .map(|(i, _)| i)
}

/// Evenly spaced subsample of at most `max_rows` rows.
fn subsample(dims: usize, sample: &[f32], max_rows: usize) -> Vec<f32> {
    let rows = sample.len() / dims;
    if rows <= max_rows {
        return sample[..rows * dims].to_vec();
    }
    let mut out = Vec::with_capacity(max_rows * dims);
    for i in 0..max_rows {
        let r = i * rows / max_rows;
        out.extend_from_slice(&sample[r * dims..(r + 1) * dims]);
    }
    out
}

/// Picks the quantizer of a `quantizer = 'auto'` build and returns it with every candidate's report.
///
/// The smallest candidate meeting `threshold` wins; if none does, the most accurate one
/// (its report has `chosen = true` either way; `explain` words the reason). With no
/// usable sample (fewer than 2 rows) it returns the default sq8 and no reports.
pub fn choose_for_build(
    dims: usize,
    sample: &[f32],
    metric: Metric,
    threshold: f64,
) -> (QuantizerConfig, Vec<CandidateReport>) {
    if dims == 0 {
        return (QuantizerConfig::default(), Vec::new());
    }
    let sample = subsample(dims, sample, AUTO_SAMPLE_ROWS);
    let mut reports = evaluate_candidates(dims, &sample, metric, AUTO_QUERIES, AUTO_RERANK);
    match choose(&reports, threshold).or_else(|| most_accurate(&reports)) {
        Some(i) => {
            reports[i].chosen = true;
            (reports[i].config.clone(), reports)
        }
        None => (QuantizerConfig::default(), reports),
    }
}

/// One line saying which candidate was chosen and why, e.g.
/// `smallest meeting recall 0.95: sq4 recall 0.971 at 48 bytes/vector (of 11 candidates)`.
pub fn explain(reports: &[CandidateReport], threshold: f64) -> String {
    let Some(c) = reports.iter().find(|r| r.chosen) else {
        return format!(
            "no sample to evaluate candidates on: default sq8 (recall target {threshold:.2})"
        );
    };
    let name = if c.parameters.is_empty() {
        c.method.clone()
    } else {
        format!("{} ({})", c.method, c.parameters)
    };
    let what = if c.recall >= threshold {
        format!("smallest meeting recall {threshold:.2}")
    } else {
        format!("no candidate reached recall {threshold:.2}; most accurate")
    };
    format!(
        "{what}: {name} recall {:.3} at {} bytes/vector (of {} candidates)",
        c.recall,
        c.bytes_per_vector,
        reports.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datagen::embeddings_like;

    /// Test: the candidate list has sq, pq (two bit widths, divisors only), binary and none.
    #[test]
    fn candidate_list_shape() {
        let c = candidate_configs(64);
        let kinds: Vec<_> = c.iter().map(|c| c.kind).collect();
        assert_eq!(kinds[0], QuantizerKind::None);
        assert!(kinds.contains(&QuantizerKind::Sq8));
        assert!(kinds.contains(&QuantizerKind::Sq2));
        assert!(kinds.contains(&QuantizerKind::Binary));
        assert_eq!(pq_subvector_counts(64), vec![16, 8, 4]);
        assert_eq!(pq_subvector_counts(30), vec![6, 3, 1]);
        let pq: Vec<_> = c.iter().filter(|c| c.kind == QuantizerKind::Pq).collect();
        assert_eq!(pq.len(), 6);
        assert!(pq.iter().all(|c| 64 % c.pq_subvectors == 0));
        assert!(pq.iter().any(|c| c.pq_bits == 4) && pq.iter().any(|c| c.pq_bits == 8));
    }

    /// Test: recalls are sane, ordered by precision, and match an independent computation.
    #[test]
    fn evaluate_measures_recall() {
        let dims = 32;
        let data = embeddings_like(1500, dims, 3);
        let reports = evaluate_candidates(dims, &data, Metric::L2, 50, 40);
        assert!(reports.len() >= 10, "{reports:?}");
        let get = |m: &str| reports.iter().find(|r| r.method == m).unwrap();
        assert!((get("none").recall - 1.0).abs() < 1e-9);
        assert!(get("sq8").recall >= 0.99, "{}", get("sq8").recall);
        assert!(get("sq8").recall >= get("sq2").recall);
        assert!(get("binary").recall < get("sq8").recall + 1e-9);
        assert_eq!(get("sq8").bytes_per_vector, 32);
        assert_eq!(get("binary").bytes_per_vector, 4);
        for r in &reports {
            assert!((0.0..=1.0).contains(&r.recall), "{r:?}");
        }
        // Independent: train sq2 on the same split and re-rank by hand.
        let (base, qs) = holdout_split(dims, &data, 50);
        let q = Quantizer::train(&get("sq2").config, dims, &base).unwrap();
        let truth = exact_knn(&base, &qs, dims, 10, Metric::L2);
        let mut hits = 0usize;
        for (qi, query) in qs.chunks_exact(dims).enumerate() {
            let est = q.estimator(query, Metric::L2);
            let mut scored: Vec<(f32, usize)> = base
                .chunks_exact(dims)
                .enumerate()
                .map(|(i, x)| (est.distance(&q.encode_to_vec(x)), i))
                .collect();
            scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let mut exact: Vec<(f32, usize)> = scored[..40]
                .iter()
                .map(|&(_, i)| {
                    (
                        distance::l2_squared(query, &base[i * dims..(i + 1) * dims]),
                        i,
                    )
                })
                .collect();
            exact.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            hits += exact[..10]
                .iter()
                .filter(|(_, i)| truth[qi].contains(&(*i as u32)))
                .count();
        }
        let independent = hits as f64 / (10 * qs.len() / dims) as f64;
        assert!((independent - get("sq2").recall).abs() < 1e-9);
    }

    /// Test: choose picks the smallest candidate meeting the threshold, None when none does.
    #[test]
    fn choose_smallest_meeting_threshold() {
        let r = |method: &str, recall: f64, bytes: usize| CandidateReport {
            config: QuantizerConfig::default(),
            method: method.into(),
            parameters: String::new(),
            recall,
            bytes_per_vector: bytes,
            bits_per_dimension: 0.0,
            chosen: false,
        };
        let reports = vec![
            r("none", 1.0, 128),
            r("sq8", 0.999, 32),
            r("sq4", 0.97, 16),
            r("sq2", 0.90, 8),
            r("pq", 0.96, 16),
            r("binary", 0.7, 4),
        ];
        assert_eq!(choose(&reports, 0.95), Some(2));
        assert_eq!(choose(&reports, 0.98), Some(1));
        assert_eq!(choose(&reports, 0.5), Some(5));
        assert_eq!(choose(&reports, 1.0), Some(0));
        assert_eq!(choose(&reports[1..], 1.0), None);
        assert_eq!(most_accurate(&reports[1..]), Some(0));
        assert_eq!(choose(&[], 0.9), None);
    }

    /// Test: choose_for_build marks its choice, explains it, and handles tiny or empty samples.
    #[test]
    fn choose_for_build_and_explain() {
        let dims = 48;
        let data = embeddings_like(2000, dims, 5);
        let (config, reports) = choose_for_build(dims, &data, Metric::Cosine, 0.95);
        let chosen: Vec<_> = reports.iter().filter(|r| r.chosen).collect();
        assert_eq!(chosen.len(), 1);
        assert_eq!(chosen[0].config.kind, config.kind);
        assert!(chosen[0].recall >= 0.95);
        for r in &reports {
            if r.recall >= 0.95 {
                assert!(r.bytes_per_vector >= chosen[0].bytes_per_vector);
            }
        }
        let why = explain(&reports, 0.95);
        assert!(why.starts_with("smallest meeting recall 0.95: "), "{why}");
        assert!(why.contains(&format!("{} bytes/vector", chosen[0].bytes_per_vector)));
        let (c, r) = choose_for_build(dims, &[], Metric::L2, 0.95);
        assert_eq!(c.kind, QuantizerKind::Sq8);
        assert!(r.is_empty());
        assert!(explain(&r, 0.95).contains("default sq8"));
        let (_, r) = choose_for_build(dims, &data[..dims * 3], Metric::L2, 0.95);
        assert!(!r.is_empty());
        let (_, r) = choose_for_build(dims, &data, Metric::L2, 1.01);
        assert!(explain(&r, 1.01).starts_with("no candidate reached"));
    }
}
