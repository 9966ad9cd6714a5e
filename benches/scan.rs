//! Criterion bench of the scan's hot loop over an in-memory page store: the same
//! search (`ResumableSearch`, Algorithm 5 with Algorithm 2 on layer 0) and the same
//! element reads (`am::element_graph`) an index scan runs, over sq8 codes of 20k x 384
//! seeded embeddings laid out in pages as a build lays them out.
//!
//! Timing is the thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`, through `iter_custom`), so
//! other processes competing for the cores inflate it far less than wall time would.
//! Reported: criterion "elements" = estimated distances (visits), so 1e9 / throughput is
//! the per-visit cost in ns (also printed directly, best of 5 runs); printed once per ef: page accesses per query (each one a
//! buffer pin and share lock in Postgres, which this bench cannot time) and recall@10 of
//! the beam's code order against exact search, so speed is never read without quality.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vectorize_quant::am::element_graph::{ElementGraph, MemPages};
use vectorize_quant::am::pages::ElementShape;
use vectorize_quant::datagen::{embeddings_like, exact_knn, queries_like, recall_at};
use vectorize_quant::distance::{self, Metric};
use vectorize_quant::graph::{HnswParams, InMemoryGraph, ResumableSearch};
use vectorize_quant::quant::{Quantizer, QuantizerConfig, QuantizerKind};

const DIMS: usize = 384;
const POINTS: usize = 20_000;
const QUERIES: usize = 200;
/// Usable bytes of an 8 KB page (header 24, special space 8).
const PAGE_CAPACITY: usize = 8192 - 24 - 8;

/// The data, the sq8 pages and the queries of every run.
struct Fixture {
    pages: MemPages,
    entry: (u32, usize),
    location: Vec<u32>,
    quantizer: Quantizer,
    shape: ElementShape,
    queries: Vec<f32>,
    truth: Vec<Vec<u32>>,
}

/// Builds the graph (m 16, ef_construction 64, exact L2) and lays out its sq8 elements.
fn fixture() -> Fixture {
    let base = embeddings_like(POINTS, DIMS, 31);
    let queries = queries_like(QUERIES, DIMS, 31);
    let row = |id: u32| &base[id as usize * DIMS..(id as usize + 1) * DIMS];
    let params = HnswParams::new(16, 64);
    let graph = InMemoryGraph::build(
        POINTS,
        params,
        42,
        |a, b| distance::l2_squared(row(a), row(b)),
        |_| {},
    );
    let config = QuantizerConfig {
        kind: QuantizerKind::Sq8,
        ..QuantizerConfig::default()
    };
    let quantizer = Quantizer::train(&config, DIMS, &base).expect("train sq8");
    let shape = ElementShape {
        m: params.m,
        code_len: quantizer.code_len(),
        dims: DIMS,
        float16_copy: false,
    };
    let (pages, location) = MemPages::from_graph(&graph, shape, PAGE_CAPACITY, |id| {
        quantizer.encode_to_vec(row(id))
    });
    let (entry, level) = graph.entry_point().expect("non-empty graph");
    let truth = exact_knn(&base, &queries, DIMS, 10, Metric::L2);
    Fixture {
        pages,
        entry: (location[entry as usize], level),
        location,
        quantizer,
        shape,
        queries,
        truth,
    }
}

/// CPU time consumed by this thread so far.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid pointer we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Runs every query as a scan's first beam at `ef`; returns the beams' page ids and the
/// distances computed.
fn run(f: &mut Fixture, ef: usize) -> (Vec<Vec<u32>>, u64) {
    let mut visits = 0;
    let mut beams = Vec::with_capacity(QUERIES);
    for query in f.queries.chunks_exact(DIMS) {
        let mut graph = ElementGraph {
            source: &mut f.pages,
            shape: f.shape,
            entry: Some(f.entry),
            estimator: f.quantizer.estimator(query, Metric::L2),
            distances: 0,
        };
        let mut search = ResumableSearch::start(&mut graph, ef);
        let beam = search.next_batch(&mut graph, ef);
        visits += graph.distances;
        beams.push(beam.iter().map(|c| c.id).collect());
    }
    (beams, visits)
}

/// Per-visit cost of the scan's hot loop at ef 40 and 100.
fn bench_scan(c: &mut Criterion) {
    let mut f = fixture();
    let mut group = c.benchmark_group("scan_hot_loop_sq8_20k_x_384");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(6));
    for ef in [40usize, 100] {
        f.pages.accesses = 0;
        let (beams, visits) = run(&mut f, ef);
        let accesses = f.pages.accesses;
        let page_of: std::collections::HashMap<u32, u32> = f
            .location
            .iter()
            .enumerate()
            .map(|(id, &at)| (at, id as u32))
            .collect();
        let got: Vec<Vec<u32>> = beams
            .iter()
            .map(|b| b.iter().take(10).map(|at| page_of[at]).collect())
            .collect();
        let best = (0..5)
            .map(|_| {
                let start = thread_cpu();
                black_box(run(&mut f, ef));
                thread_cpu() - start
            })
            .min()
            .expect("five runs");
        eprintln!(
            "ef={ef}: {:.1} visits/query, {:.1} page accesses/query, code-order recall@10 {:.4}, \
             {:.1} ns/visit (CPU, best of 5)",
            visits as f64 / QUERIES as f64,
            accesses as f64 / QUERIES as f64,
            recall_at(10, &f.truth, &got),
            best.as_nanos() as f64 / visits as f64
        );
        group.throughput(Throughput::Elements(visits));
        group.bench_function(format!("ef{ef}"), |b| {
            b.iter_custom(|iters| {
                let start = thread_cpu();
                for _ in 0..iters {
                    black_box(run(&mut f, ef));
                }
                thread_cpu() - start
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_scan);
criterion_main!(benches);
