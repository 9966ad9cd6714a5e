//! Criterion benches of the in-memory HNSW graph: parallel build of 10k x 128 and
//! search throughput at ef 40 and 100 on 20k x 128.
//!
//! Design: data is seeded clustered Gaussian points (the same shape as the unit
//! tests), distances are a local squared L2 (the real kernels live in `distance/`
//! and are benched separately), so these numbers measure the graph code: heaps,
//! visited sets, neighbour selection and locking. Throughput is reported in queries
//! per second (criterion "elements"); recall@10 against brute force is printed once
//! per ef so speed is never read without quality.

use std::collections::HashSet;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vectorize_quant::graph::{
    knn_search_with, Candidate, DenseVisited, HnswParams, InMemoryGraph, SearchScratch,
};

const DIMENSIONS: usize = 128;
const BUILD_POINTS: usize = 10_000;
const SEARCH_POINTS: usize = 20_000;
const QUERIES: usize = 500;
const PARAMS: HnswParams = HnswParams {
    m: 16,
    ef_construction: 64,
};

/// Squared Euclidean distance with 8 independent accumulators (so it vectorises).
fn squared_l2(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let chunks = a.chunks_exact(8).zip(b.chunks_exact(8));
    for (x, y) in chunks {
        for lane in 0..8 {
            let diff = x[lane] - y[lane];
            lanes[lane] += diff * diff;
        }
    }
    let tail = a.len() - a.len() % 8;
    let rest: f32 = a[tail..]
        .iter()
        .zip(&b[tail..])
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    lanes.iter().sum::<f32>() + rest
}

/// A standard normal sample (Box-Muller).
fn gaussian(rng: &mut impl Rng) -> f32 {
    let u1: f64 = 1.0 - rng.gen::<f64>();
    let u2: f64 = rng.gen::<f64>();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

/// `n` row-major points around 100 random centres with Gaussian noise.
fn clustered(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let clusters = 100;
    let centres: Vec<f32> = (0..clusters * DIMENSIONS)
        .map(|_| rng.gen_range(-1.0f32..1.0))
        .collect();
    let mut values = Vec::with_capacity(n * DIMENSIONS);
    for _ in 0..n {
        let cluster = rng.gen_range(0..clusters);
        for d in 0..DIMENSIONS {
            values.push(centres[cluster * DIMENSIONS + d] + 0.6 * gaussian(&mut rng));
        }
    }
    values
}

/// Row `id` of a row-major matrix.
fn row(values: &[f32], id: u32) -> &[f32] {
    let start = id as usize * DIMENSIONS;
    &values[start..start + DIMENSIONS]
}

/// Builds a graph over the first `n` rows with the global rayon pool.
fn build(values: &[f32], n: usize) -> InMemoryGraph {
    InMemoryGraph::build(
        n,
        PARAMS,
        42,
        |a, b| squared_l2(row(values, a), row(values, b)),
        |_| {},
    )
}

/// Benchmarks the parallel build of 10k x 128.
fn bench_build(c: &mut Criterion) {
    let values = clustered(BUILD_POINTS, 1);
    let mut group = c.benchmark_group("graph_build");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(30));
    group.throughput(Throughput::Elements(BUILD_POINTS as u64));
    group.bench_function("10k_x_128_m16_efc64", |b| {
        b.iter(|| black_box(build(&values, BUILD_POINTS)))
    });
    group.finish();
}

/// Searches every query at `ef` and returns the top-10 ids of each.
fn run_queries(graph: &InMemoryGraph, data: &[f32], queries: &[f32], ef: usize) -> Vec<Vec<u32>> {
    let mut visited = DenseVisited::with_capacity(graph.len());
    let mut scratch = SearchScratch::new();
    (0..QUERIES as u32)
        .map(|q| {
            let query = row(queries, q);
            let mut searcher = graph.searcher(|id| squared_l2(row(data, id), query));
            let found: Vec<Candidate<u32>> =
                knn_search_with(&mut searcher, ef, &mut visited, &mut scratch);
            found.iter().take(10).map(|c| c.id).collect()
        })
        .collect()
}

/// Benchmarks search throughput (queries per second) at ef 40 and 100 on 20k x 128.
fn bench_search(c: &mut Criterion) {
    let all = clustered(SEARCH_POINTS + QUERIES, 2);
    let (data, queries) = all.split_at(SEARCH_POINTS * DIMENSIONS);
    let graph = build(data, SEARCH_POINTS);
    let truth: Vec<HashSet<u32>> = (0..QUERIES as u32)
        .map(|q| {
            let query = row(queries, q);
            let mut scored: Vec<(f32, u32)> = (0..SEARCH_POINTS as u32)
                .map(|id| (squared_l2(row(data, id), query), id))
                .collect();
            scored.sort_by(|a, b| a.0.total_cmp(&b.0));
            scored.iter().take(10).map(|&(_, id)| id).collect()
        })
        .collect();

    let mut group = c.benchmark_group("graph_search_20k_x_128");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(QUERIES as u64));
    for ef in [40usize, 100] {
        let results = run_queries(&graph, data, queries, ef);
        let hits: usize = results
            .iter()
            .zip(&truth)
            .map(|(found, expected)| found.iter().filter(|id| expected.contains(id)).count())
            .sum();
        eprintln!(
            "ef={ef}: recall@10 = {:.4} over {QUERIES} queries",
            hits as f64 / (QUERIES * 10) as f64
        );
        group.bench_function(format!("ef{ef}"), |b| {
            b.iter(|| black_box(run_queries(&graph, data, queries, ef)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_build, bench_search);
criterion_main!(benches);
