//! Quantizer acceptance tests: recall on embedding-like data, error bounds, packing,
//! serialisation and corrupted blobs, determinism.

use super::*;
use crate::datagen::{embeddings_like, exact_knn, queries_like, recall_at, top_k};
use crate::distance::metric_distance;
use rayon::prelude::*;
use std::sync::OnceLock;

const DIMS: usize = 768;
const BASE: usize = 20_000;
const QUERIES: usize = 200;

/// Shared data set: base rows, queries, exact top-10 per metric.
struct Data {
    base: Vec<f32>,
    queries: Vec<f32>,
    truth_l2: Vec<Vec<u32>>,
    truth_ip: Vec<Vec<u32>>,
    truth_cos: Vec<Vec<u32>>,
    truth_l1: Vec<Vec<u32>>,
}

/// Lazily generated shared data set (unit-norm rows, seeded).
fn data() -> &'static Data {
    static DATA: OnceLock<Data> = OnceLock::new();
    DATA.get_or_init(|| {
        let base = embeddings_like(BASE, DIMS, 2024);
        let queries = queries_like(QUERIES, DIMS, 2024);
        let truth_l2 = exact_knn(&base, &queries, DIMS, 10, Metric::L2);
        let truth_ip = exact_knn(&base, &queries, DIMS, 10, Metric::InnerProduct);
        let truth_cos = exact_knn(&base, &queries, DIMS, 10, Metric::Cosine);
        let truth_l1 = exact_knn(&base, &queries, DIMS, 10, Metric::L1);
        Data {
            base,
            queries,
            truth_l2,
            truth_ip,
            truth_cos,
            truth_l1,
        }
    })
}

/// Trains a quantizer of `kind` on the shared base.
fn trained(kind: QuantizerKind, pq_subvectors: usize, pq_bits: u8) -> Quantizer {
    let config = QuantizerConfig {
        kind,
        pq_subvectors,
        pq_bits,
        ..QuantizerConfig::default()
    };
    Quantizer::train(&config, DIMS, &data().base).expect("training succeeds")
}

/// Recall@10 of brute force over codes, optionally re-ranking the best `rerank` exactly.
fn recall(q: &Quantizer, metric: Metric, rerank: usize) -> f64 {
    recall_ranked_by(q, metric, metric, rerank)
}

/// Like `recall`, but the codes are ranked with `estimator_metric` (the index ranks
/// inner product on unit-norm data with the L2 estimator: the same order, better estimates).
fn recall_ranked_by(q: &Quantizer, estimator_metric: Metric, metric: Metric, rerank: usize) -> f64 {
    let d = data();
    let got =
        super::auto::search_ranked_by(q, &d.base, &d.queries, estimator_metric, metric, rerank, 10);
    let truth = match metric {
        Metric::L2 => &d.truth_l2,
        Metric::InnerProduct => &d.truth_ip,
        Metric::Cosine => &d.truth_cos,
        Metric::L1 => &d.truth_l1,
    };
    recall_at(10, truth, &got)
}

/// Asserts `value >= min`, printing the measurement either way.
fn at_least(what: &str, value: f64, min: f64) {
    println!("{what}: recall@10 = {value:.4} (required >= {min})");
    assert!(value >= min, "{what}: recall@10 {value:.4} < {min}");
}

/// Test: sq8 recall all metrics.
#[test]
fn sq8_recall_all_metrics() {
    let q = trained(QuantizerKind::Sq8, 0, 8);
    at_least("sq8 l2", recall(&q, Metric::L2, 0), 0.97);
    at_least("sq8 ip", recall(&q, Metric::InnerProduct, 0), 0.97);
    at_least("sq8 cosine", recall(&q, Metric::Cosine, 0), 0.97);
}

/// Test: sq4 recall.
#[test]
fn sq4_recall() {
    let q = trained(QuantizerKind::Sq4, 0, 8);
    at_least("sq4 l2", recall(&q, Metric::L2, 0), 0.90);
    at_least("sq4 l2 rerank40", recall(&q, Metric::L2, 40), 0.95);
    at_least("sq4 cosine", recall(&q, Metric::Cosine, 0), 0.90);
    // Inner product has no normalisation to exploit: its estimate errs by q.e, measured 0.845.
    at_least("sq4 ip", recall(&q, Metric::InnerProduct, 0), 0.80);
}

/// Test: sq2 recall.
#[test]
fn sq2_recall() {
    let q = trained(QuantizerKind::Sq2, 0, 8);
    at_least("sq2 l2", recall(&q, Metric::L2, 0), 0.55);
    at_least("sq2 l2 rerank40", recall(&q, Metric::L2, 40), 0.90);
}

/// Test: pq8 recall.
#[test]
fn pq8_recall() {
    let q = trained(QuantizerKind::Pq, 96, 8);
    assert_eq!(q.code_len(), 96);
    at_least("pq 96x8 l2", recall(&q, Metric::L2, 0), 0.60);
    at_least("pq 96x8 l2 rerank40", recall(&q, Metric::L2, 40), 0.95);
    at_least(
        "pq 96x8 cosine rerank40",
        recall(&q, Metric::Cosine, 40),
        0.95,
    );
}

/// Test: pq4 recall.
#[test]
fn pq4_recall() {
    let q = trained(QuantizerKind::Pq, 192, 4);
    assert_eq!(q.code_len(), 96);
    at_least("pq 192x4 l2", recall(&q, Metric::L2, 0), 0.50);
    at_least("pq 192x4 l2 rerank40", recall(&q, Metric::L2, 40), 0.90);
}

/// Test: binary recall and estimator beats hamming.
#[test]
fn binary_recall_and_estimator_beats_hamming() {
    let q = trained(QuantizerKind::Binary, 0, 8);
    let asym = recall(&q, Metric::L2, 40);
    at_least("binary l2 rerank40", asym, 0.95);
    at_least(
        "binary cosine rerank40",
        recall(&q, Metric::Cosine, 40),
        0.95,
    );
    // The dot-form estimator cannot use the L2 cancellation (|x̂| varies by code), so
    // on unit-norm data the index ranks inner product with the L2 estimator instead.
    // Not a requirement; measured 0.886.
    at_least(
        "binary ip rerank40 with the dot-form estimator",
        recall(&q, Metric::InnerProduct, 40),
        0.85,
    );
    at_least(
        "binary ip rerank40 ranked by the L2 estimator (unit-norm data)",
        recall_ranked_by(&q, Metric::L2, Metric::InnerProduct, 40),
        0.95,
    );
    // Hamming ranking for comparison: rank by popcount of the query's own code.
    let d = data();
    let Quantizer::Binary(bq) = &q else {
        unreachable!()
    };
    let codes: Vec<Vec<u8>> = d.base.chunks(DIMS).map(|x| q.encode_to_vec(x)).collect();
    let got: Vec<Vec<u32>> = d
        .queries
        .par_chunks(DIMS)
        .map(|query| {
            let qc = q.encode_to_vec(query);
            let scored = codes
                .iter()
                .enumerate()
                .map(|(i, c)| (bq.hamming(&qc, c) as f32, i as u32))
                .collect();
            let cands = top_k(scored, 40);
            let exact = cands
                .into_iter()
                .map(|i| {
                    let row = &d.base[i as usize * DIMS..(i as usize + 1) * DIMS];
                    (metric_distance(Metric::L2, query, row), i)
                })
                .collect();
            top_k(exact, 10)
        })
        .collect();
    let hamming = recall_at(10, &d.truth_l2, &got);
    println!("binary rerank40: asymmetric {asym:.4} vs hamming {hamming:.4}");
    assert!(asym >= hamming, "asymmetric {asym} < hamming {hamming}");
}

/// L1 (12.8): every quantizer's L1 estimator ranks well enough that an exact re-rank of
/// the index's default candidate counts reaches the L2 recall levels.
#[test]
fn l1_recall_per_quantizer() {
    for (kind, rerank, min) in [
        (QuantizerKind::Sq8, 40, 0.97),
        (QuantizerKind::Sq4, 60, 0.95),
        (QuantizerKind::Pq, 100, 0.93),
        (QuantizerKind::Binary, 100, 0.93),
    ] {
        let q = trained(kind, 0, 8);
        at_least(
            &format!("{kind:?} l1 rerank{rerank}"),
            recall(&q, Metric::L1, rerank),
            min,
        );
    }
}

/// Issue 11.7: 1% of the rows with one 1e30 component do not wreck training. Every
/// quantizer trained on such data ranks ordinary queries as well (within 0.02 recall)
/// as when trained on the same rows without the outliers; the exact truth includes the
/// outlier rows.
#[test]
fn training_robust_to_huge_outlier_rows() {
    let (n, dims) = (5_000, 128);
    let clean = embeddings_like(n, dims, 77);
    let mut dirty = clean.clone();
    for row in (0..n).step_by(100) {
        dirty[row * dims + row % dims] = 1e30;
    }
    let queries = queries_like(100, dims, 77);
    let truth = exact_knn(&dirty, &queries, dims, 10, Metric::L2);
    for (kind, rerank) in [
        (QuantizerKind::Sq8, 40),
        (QuantizerKind::Sq4, 60),
        (QuantizerKind::Sq2, 100),
        (QuantizerKind::Pq, 100),
        (QuantizerKind::Binary, 100),
    ] {
        let config = QuantizerConfig {
            kind,
            ..QuantizerConfig::default()
        };
        let recall_of = |training: &[f32]| {
            let q = Quantizer::train(&config, dims, training).unwrap();
            let got = super::auto::search_ranked_by(
                &q,
                &dirty,
                &queries,
                Metric::L2,
                Metric::L2,
                rerank,
                10,
            );
            recall_at(10, &truth, &got)
        };
        let (with_clean, with_dirty) = (recall_of(&clean), recall_of(&dirty));
        println!(
            "{kind:?} rerank{rerank}: trained clean {with_clean:.4}, with outliers {with_dirty:.4}"
        );
        assert!(
            with_dirty >= with_clean - 0.02,
            "{kind:?}: recall {with_dirty:.4} with outliers vs {with_clean:.4} without"
        );
    }
}

/// Test: estimators match decoded distance.
#[test]
fn estimators_match_decoded_distance() {
    let d = data();
    let sample = &d.base[..2000 * DIMS];
    let configs = [
        (QuantizerKind::None, 0, 8),
        (QuantizerKind::Sq8, 0, 8),
        (QuantizerKind::Sq4, 0, 8),
        (QuantizerKind::Sq2, 0, 8),
        (QuantizerKind::Pq, 96, 8),
        (QuantizerKind::Pq, 96, 4),
        (QuantizerKind::Pq, 64, 4),
        (QuantizerKind::Binary, 0, 8),
    ];
    for (kind, m, bits) in configs {
        let cfg = QuantizerConfig {
            kind,
            pq_subvectors: m,
            pq_bits: bits,
            ..QuantizerConfig::default()
        };
        let q = Quantizer::train(&cfg, DIMS, sample).unwrap();
        let query = &d.queries[..DIMS];
        for metric in [Metric::L2, Metric::InnerProduct, Metric::Cosine, Metric::L1] {
            let est = q.estimator(query, metric);
            for row in d.base[5000 * DIMS..].chunks(DIMS).take(20) {
                let code = q.encode_to_vec(row);
                let mut x = vec![0.0; DIMS];
                q.decode(&code, &mut x);
                let want = quantized_metric(&q, metric, query, &x);
                let got = est.distance(&code);
                assert!(
                    (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                    "{kind:?} {metric:?}: estimator {got} vs decoded {want}"
                );
                let other = q.encode_to_vec(&d.base[DIMS..2 * DIMS]);
                let mut y = vec![0.0; DIMS];
                q.decode(&other, &mut y);
                let want = quantized_metric(&q, metric, &x, &y);
                let got = q.code_distance(metric, &code, &other);
                assert!(
                    (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                    "{kind:?} {metric:?}: code_distance {got} vs decoded {want}"
                );
            }
        }
    }
}

/// Test: sq8 error within half step.
#[test]
fn sq8_error_within_half_step() {
    let d = data();
    let q = Quantizer::train(&QuantizerConfig::default(), DIMS, &d.base[..5000 * DIMS]).unwrap();
    let Quantizer::Scalar(sq) = &q else {
        unreachable!()
    };
    let mut out = vec![0.0; DIMS];
    let mut inside = 0usize;
    for row in d.base[..5000 * DIMS]
        .chunks(DIMS)
        .chain(d.queries.chunks(DIMS))
    {
        q.decode(&q.encode_to_vec(row), &mut out);
        for i in 0..DIMS {
            let (lo, step) = (sq.lo()[i], sq.step()[i]);
            let hi = lo + 255.0 * step;
            if row[i] >= lo && row[i] <= hi {
                inside += 1;
                let err = (row[i] - out[i]).abs();
                assert!(
                    err <= 0.5 * step * 1.0001 + 1e-7,
                    "dim {i}: error {err} > half step {step}"
                );
            } else {
                // Clipped values decode to the nearest end of the range.
                let end = if row[i] < lo { lo } else { hi };
                assert!((out[i] - end).abs() <= 1e-6);
            }
        }
    }
    assert!(inside as f64 > 0.99 * (5200 * DIMS) as f64);
    let report = q.quality(&d.base[..5000 * DIMS], Metric::L2, 50);
    println!("sq8 quality on 5000 rows: {report:?}");
    assert!(report.relative_error < 1e-3);
    assert!(report.recall_at_10 > 0.9);
}

/// Test: packing odd dims.
#[test]
fn packing_odd_dims() {
    for dims in [1usize, 3, 5, 7, 13, 33, 67] {
        // Two rows spanning [0, 1] per dimension fix the range; probe values on the grid.
        let mut sample = vec![0.0f32; dims];
        sample.extend(std::iter::repeat_n(1.0, dims));
        for (kind, bits) in [
            (QuantizerKind::Sq8, 8u32),
            (QuantizerKind::Sq4, 4),
            (QuantizerKind::Sq2, 2),
        ] {
            let cfg = QuantizerConfig {
                kind,
                ..QuantizerConfig::default()
            };
            let q = Quantizer::train(&cfg, dims, &sample).unwrap();
            assert_eq!(q.code_len(), (dims * bits as usize).div_ceil(8));
            let levels = (1u32 << bits) - 1;
            let want: Vec<u32> = (0..dims)
                .map(|i| (i as u32 * 7 + 3) % (levels + 1))
                .collect();
            let v: Vec<f32> = want.iter().map(|&c| c as f32 / levels as f32).collect();
            let code = q.encode_to_vec(&v);
            for (i, &c) in want.iter().enumerate() {
                assert_eq!(
                    crate::distance::scalar::code_at(&code, bits, i) as u32,
                    c,
                    "{kind:?} dims {dims} dim {i}"
                );
            }
            // Unused high bits of the last byte stay zero.
            let used = dims * bits as usize;
            if !used.is_multiple_of(8) {
                assert_eq!(code[code.len() - 1] >> (used % 8), 0);
            }
            let mut out = vec![0.0; dims];
            q.decode(&code, &mut out);
            for i in 0..dims {
                assert!((out[i] - v[i]).abs() < 1e-6);
            }
            // Out-of-range values clamp to the ends.
            let code = q.encode_to_vec(&vec![5.0; dims]);
            q.decode(&code, &mut out);
            assert!(out.iter().all(|&x| (x - 1.0).abs() < 1e-6));
        }
        let cfg = QuantizerConfig {
            kind: QuantizerKind::Binary,
            ..QuantizerConfig::default()
        };
        let q = Quantizer::train(&cfg, dims, &sample).unwrap();
        assert_eq!(q.code_len(), dims.div_ceil(8));
        let v: Vec<f32> = (0..dims)
            .map(|i| if i % 3 == 0 { 1.0 } else { 0.0 })
            .collect();
        let code = q.encode_to_vec(&v);
        let mut out = vec![0.0; dims];
        q.decode(&code, &mut out);
        assert_eq!(out, v);
    }
}

/// One small trained quantizer of every kind (odd shapes included).
fn small_quantizers() -> Vec<Quantizer> {
    let dims = 24;
    let sample = embeddings_like(600, dims, 5);
    let mut out = Vec::new();
    for (kind, m, bits) in [
        (QuantizerKind::None, 0, 8),
        (QuantizerKind::Sq8, 0, 8),
        (QuantizerKind::Sq4, 0, 8),
        (QuantizerKind::Sq2, 0, 8),
        (QuantizerKind::Pq, 3, 8),
        (QuantizerKind::Pq, 0, 4),
        (QuantizerKind::Binary, 0, 8),
    ] {
        let cfg = QuantizerConfig {
            kind,
            pq_subvectors: m,
            pq_bits: bits,
            binary_threshold: BinaryThreshold::Mean,
            ..QuantizerConfig::default()
        };
        out.push(Quantizer::train(&cfg, dims, &sample).unwrap());
    }
    out
}

/// Test: serialisation round trip.
#[test]
fn serialisation_round_trip() {
    let probe = queries_like(3, 24, 5);
    for q in small_quantizers() {
        let bytes = q.to_bytes();
        assert_eq!(&bytes[..4], b"VQQZ");
        let back = Quantizer::from_bytes(&bytes).unwrap();
        assert_eq!(back.kind(), q.kind());
        assert_eq!(back.dims(), q.dims());
        assert_eq!(back.code_len(), q.code_len());
        assert_eq!(back.to_bytes(), bytes);
        for v in probe.chunks(24) {
            let (a, b) = (q.encode_to_vec(v), back.encode_to_vec(v));
            assert_eq!(a, b);
            let c = q.encode_to_vec(&probe[..24]);
            assert_eq!(
                q.code_distance(Metric::L2, &a, &c),
                back.code_distance(Metric::L2, &b, &c)
            );
            assert_eq!(
                q.estimator(v, Metric::Cosine).distance(&a),
                back.estimator(v, Metric::Cosine).distance(&b)
            );
        }
    }
}

/// Test: bad blobs are errors.
#[test]
fn bad_blobs_are_errors() {
    for q in small_quantizers() {
        let bytes = q.to_bytes();
        // Truncated at every length.
        for len in 0..bytes.len() {
            assert!(
                Quantizer::from_bytes(&bytes[..len]).is_err(),
                "{:?} truncated at {len}",
                q.kind()
            );
        }
        // Trailing garbage.
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Quantizer::from_bytes(&longer).is_err());
        // Wrong magic.
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert!(matches!(
            Quantizer::from_bytes(&bad),
            Err(QuantError::Corrupt(_))
        ));
        // Unknown version.
        let mut bad = bytes.clone();
        bad[4..8].copy_from_slice(&7u32.to_le_bytes());
        assert_eq!(
            Quantizer::from_bytes(&bad).unwrap_err(),
            QuantError::UnsupportedVersion {
                found: 7,
                supported: FORMAT_VERSION
            }
        );
        // Every single-bit flip.
        for i in 0..bytes.len() {
            for bit in [0u8, 3, 7] {
                let mut bad = bytes.clone();
                bad[i] ^= 1 << bit;
                assert!(
                    Quantizer::from_bytes(&bad).is_err(),
                    "{:?} flip at {i}",
                    q.kind()
                );
            }
        }
    }
    // Payloads with a valid checksum but invalid contents.
    let forge = |payload: &[u8]| {
        let mut b = Vec::new();
        b.extend_from_slice(b"VQQZ");
        b.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        b.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        b.extend_from_slice(payload);
        b.extend_from_slice(&crc32(payload).to_le_bytes());
        b
    };
    let mut state = 0x1234_5678_9abc_def0u64;
    for len in 0..400usize {
        let payload: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state % 4) as u8 // small values: plausible enum tags and lengths
            })
            .collect();
        // Must return (Ok or Err) without panicking or allocating wildly.
        let _ = Quantizer::from_bytes(&forge(&payload));
    }
    let bad_bits = Quantizer::Scalar(ScalarQuantizer::train(8, 2, &[0.0, 0.0, 1.0, 1.0]));
    let good = bad_bits.to_bytes();
    let mut inner = good[16..good.len() - 4].to_vec();
    inner[4] = 3; // bits field (after the enum tag) = 3
    assert!(matches!(
        Quantizer::from_bytes(&forge(&inner)),
        Err(QuantError::Corrupt(_))
    ));
    let huge_len = {
        let mut p = good[16..good.len() - 4].to_vec();
        p[16..24].copy_from_slice(&u64::MAX.to_le_bytes()); // length of `lo`
        p
    };
    assert!(Quantizer::from_bytes(&forge(&huge_len)).is_err());
}

/// Test: pq training is deterministic.
#[test]
fn pq_training_is_deterministic() {
    let sample = embeddings_like(3000, 64, 9);
    let cfg = QuantizerConfig {
        kind: QuantizerKind::Pq,
        pq_subvectors: 8,
        pq_bits: 8,
        seed: 77,
        ..QuantizerConfig::default()
    };
    let a = Quantizer::train(&cfg, 64, &sample).unwrap().to_bytes();
    let b = Quantizer::train(&cfg, 64, &sample).unwrap().to_bytes();
    assert_eq!(a, b);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let c = pool.install(|| Quantizer::train(&cfg, 64, &sample).unwrap().to_bytes());
    assert_eq!(a, c);
    let other = QuantizerConfig { seed: 78, ..cfg };
    assert_ne!(a, Quantizer::train(&other, 64, &sample).unwrap().to_bytes());
}

/// Test: config errors.
#[test]
fn config_errors() {
    let sample = vec![0.5f32; 10 * 12];
    let pq = |m: usize, bits: u8| QuantizerConfig {
        kind: QuantizerKind::Pq,
        pq_subvectors: m,
        pq_bits: bits,
        ..QuantizerConfig::default()
    };
    assert!(matches!(
        Quantizer::train(&pq(5, 8), 12, &sample),
        Err(QuantError::InvalidConfig(_))
    ));
    assert!(matches!(
        Quantizer::train(&pq(24, 8), 12, &sample),
        Err(QuantError::InvalidConfig(_))
    ));
    assert!(matches!(
        Quantizer::train(&pq(4, 6), 12, &sample),
        Err(QuantError::InvalidConfig(_))
    ));
    assert!(Quantizer::train(&pq(0, 4), 12, &sample).is_ok());
    let d = QuantizerConfig::default();
    assert_eq!(
        Quantizer::train(&d, 12, &[]).unwrap_err(),
        QuantError::EmptyTrainingSet
    );
    assert!(matches!(
        Quantizer::train(&d, 12, &sample[..13]),
        Err(QuantError::InvalidConfig(_))
    ));
    assert!(matches!(
        Quantizer::train(&d, 0, &sample),
        Err(QuantError::InvalidConfig(_))
    ));
    let mut nan = sample.clone();
    nan[3] = f32::NAN;
    assert!(matches!(
        Quantizer::train(&d, 12, &nan),
        Err(QuantError::InvalidConfig(_))
    ));
    for e in [
        QuantError::InvalidConfig("x".into()),
        QuantError::EmptyTrainingSet,
        QuantError::DimensionMismatch {
            expected: 3,
            got: 4,
        },
        QuantError::Corrupt("y".into()),
        QuantError::UnsupportedVersion {
            found: 9,
            supported: 1,
        },
    ] {
        assert!(!e.to_string().is_empty());
    }
    for kind in ["none", "sq8", "sq4", "sq2", "pq", "binary"] {
        assert_eq!(QuantizerKind::parse(kind).unwrap().name(), kind);
    }
    assert_eq!(QuantizerKind::parse(" SQ8 "), Some(QuantizerKind::Sq8));
    assert_eq!(QuantizerKind::parse("sq3"), None);
    // Constant columns and wrong-length inputs never panic.
    let q = Quantizer::train(&d, 12, &sample).unwrap();
    let code = q.encode_to_vec(&[0.5; 12]);
    let _ = q.estimator(&[1.0; 3], Metric::L2).distance(&code[..2]);
    let _ = q.code_distance(Metric::InnerProduct, &code[..1], &code);
}

/// Test: the code length a configuration announces before training is the trained one.
#[test]
fn planned_code_len_matches_trained() {
    let sample = embeddings_like(300, 96, 5);
    for (kind, pq_subvectors, pq_bits) in [
        (QuantizerKind::None, 0, 8),
        (QuantizerKind::Sq8, 0, 8),
        (QuantizerKind::Sq4, 0, 8),
        (QuantizerKind::Sq2, 0, 8),
        (QuantizerKind::Binary, 0, 8),
        (QuantizerKind::Pq, 0, 8),
        (QuantizerKind::Pq, 24, 4),
    ] {
        let config = QuantizerConfig {
            kind,
            pq_subvectors,
            pq_bits,
            ..QuantizerConfig::default()
        };
        let q = Quantizer::train(&config, 96, &sample).unwrap();
        assert_eq!(
            config.code_len(96),
            q.code_len(),
            "{kind:?} {pq_subvectors}x{pq_bits}"
        );
    }
}

/// Test: float16 staging codes round-trip to float16 precision, rank like exact search,
/// and survive serialisation.
#[test]
fn half_codes_round_trip_and_rank() {
    let q = Quantizer::Half(HalfQuantizer::new(DIMS));
    assert_eq!(
        (q.code_len(), q.kind(), q.bits()),
        (2 * DIMS, QuantizerKind::None, 16)
    );
    let v = &data().base[..DIMS];
    let mut back = vec![0f32; DIMS];
    q.decode(&q.encode_to_vec(v), &mut back);
    for (x, y) in v.iter().zip(&back) {
        assert!((x - y).abs() <= x.abs() / 1024.0 + 1e-7, "{x} -> {y}");
    }
    let loaded = Quantizer::from_bytes(&q.to_bytes()).unwrap();
    assert_eq!(loaded.code_len(), 2 * DIMS);
    at_least("float16 l2", recall(&q, Metric::L2, 0), 0.99);
}
