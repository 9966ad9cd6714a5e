//! Criterion benches of the quantizers: estimator distance per code at 768
//! dimensions, encode throughput, and training time on 100k x 768 rows.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;
use vectorize_quant::datagen::{embeddings_like, queries_like};
use vectorize_quant::distance::Metric;
use vectorize_quant::quant::{Quantizer, QuantizerConfig, QuantizerKind};

const DIMS: usize = 768;

/// The quantizer configurations compared in every bench.
fn configs() -> Vec<(&'static str, QuantizerConfig)> {
    let mk = |kind, m, bits| QuantizerConfig {
        kind,
        pq_subvectors: m,
        pq_bits: bits,
        ..QuantizerConfig::default()
    };
    vec![
        ("none", mk(QuantizerKind::None, 0, 8)),
        ("sq8", mk(QuantizerKind::Sq8, 0, 8)),
        ("sq4", mk(QuantizerKind::Sq4, 0, 8)),
        ("sq2", mk(QuantizerKind::Sq2, 0, 8)),
        ("pq96x8", mk(QuantizerKind::Pq, 96, 8)),
        ("pq192x4", mk(QuantizerKind::Pq, 192, 4)),
        ("binary", mk(QuantizerKind::Binary, 0, 8)),
    ]
}

/// Estimator distance and encode speed per quantizer.
fn estimate_and_encode(c: &mut Criterion) {
    let base = embeddings_like(10_000, DIMS, 11);
    let query = queries_like(1, DIMS, 11);
    let mut g = c.benchmark_group("quant768");
    g.warm_up_time(Duration::from_millis(400));
    g.measurement_time(Duration::from_millis(1500));
    for (name, cfg) in configs() {
        let q = Quantizer::train(&cfg, DIMS, &base).expect("train");
        let len = q.code_len();
        let n = 4096;
        let mut codes = vec![0u8; n * len];
        for (c, x) in codes.chunks_mut(len).zip(base.chunks(DIMS)) {
            q.encode(x, c);
        }
        let est = q.estimator(&query, Metric::L2);
        g.throughput(Throughput::Bytes((n * len) as u64));
        g.bench_function(BenchmarkId::new("estimator_l2_x4096", name), |b| {
            b.iter(|| {
                let mut acc = 0.0f32;
                for code in codes.chunks_exact(len) {
                    acc += est.distance(black_box(code));
                }
                acc
            })
        });
        g.throughput(Throughput::Elements(1));
        g.bench_function(BenchmarkId::new("estimator_build", name), |b| {
            b.iter(|| {
                q.estimator(black_box(&query), Metric::L2)
                    .distance(&codes[..len])
            })
        });
        g.bench_function(BenchmarkId::new("code_distance_l2", name), |b| {
            b.iter(|| {
                q.code_distance(
                    Metric::L2,
                    black_box(&codes[..len]),
                    black_box(&codes[len..2 * len]),
                )
            })
        });
        g.throughput(Throughput::Bytes((DIMS * 4) as u64));
        let mut out = vec![0u8; len];
        g.bench_function(BenchmarkId::new("encode", name), |b| {
            b.iter(|| q.encode(black_box(&base[..DIMS]), &mut out))
        });
    }
    g.finish();
}

/// Training time on 100k x 768.
fn training(c: &mut Criterion) {
    let base = embeddings_like(100_000, DIMS, 12);
    let mut g = c.benchmark_group("train100kx768");
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(100));
    g.measurement_time(Duration::from_secs(10));
    for (name, cfg) in configs().into_iter().filter(|(n, _)| *n != "none") {
        g.bench_function(name, |b| {
            b.iter(|| Quantizer::train(&cfg, DIMS, black_box(&base)).expect("train"))
        });
    }
    g.finish();
}

criterion_group!(benches, estimate_and_encode, training);
criterion_main!(benches);
