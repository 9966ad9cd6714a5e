//! Criterion benches of every distance kernel at 128, 768 and 1536 dimensions.
//!
//! Throughput is the bytes both operands occupy, so criterion reports GB/s next to
//! the time per distance. `scalar/*` rows show the portable fallback for comparison.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use half::f16;
use std::time::Duration;
use vectorize_quant::distance::{self, scalar};

/// Deterministic pseudo-random floats in [-1, 1).
fn floats(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// Deterministic pseudo-random bytes.
fn bytes(n: usize, seed: u64) -> Vec<u8> {
    floats(n, seed)
        .iter()
        .map(|x| ((x + 1.0) * 127.5) as u8)
        .collect()
}

/// All kernels at the three sizes.
fn kernels(c: &mut Criterion) {
    println!("cpu features: {}", distance::cpu_features());
    let mut g = c.benchmark_group("kernels");
    g.warm_up_time(Duration::from_millis(400));
    g.measurement_time(Duration::from_millis(1200));
    for dims in [128usize, 768, 1536] {
        let a = floats(dims, 1);
        let b = floats(dims, 2);
        let h: Vec<f16> = b.iter().map(|&x| f16::from_f32(x)).collect();
        let ua = bytes(dims, 3);
        let ub = bytes(dims, 4);
        let s: Vec<f32> = b.iter().map(|x| x.abs() * 0.01).collect();
        let f32_pair = (dims * 8) as u64;

        g.throughput(Throughput::Bytes(f32_pair));
        g.bench_with_input(BenchmarkId::new("l2_squared", dims), &dims, |bn, _| {
            bn.iter(|| distance::l2_squared(black_box(&a), black_box(&b)))
        });
        g.bench_with_input(
            BenchmarkId::new("scalar/l2_squared", dims),
            &dims,
            |bn, _| bn.iter(|| scalar::l2_squared(black_box(&a), black_box(&b))),
        );
        g.bench_with_input(BenchmarkId::new("dot", dims), &dims, |bn, _| {
            bn.iter(|| distance::dot(black_box(&a), black_box(&b)))
        });
        g.bench_with_input(BenchmarkId::new("l1", dims), &dims, |bn, _| {
            bn.iter(|| distance::l1(black_box(&a), black_box(&b)))
        });
        g.bench_with_input(BenchmarkId::new("cosine_distance", dims), &dims, |bn, _| {
            bn.iter(|| distance::cosine_distance(black_box(&a), black_box(&b)))
        });
        g.throughput(Throughput::Bytes((dims * 4) as u64));
        g.bench_with_input(BenchmarkId::new("norm_squared", dims), &dims, |bn, _| {
            bn.iter(|| distance::norm_squared(black_box(&a)))
        });
        g.throughput(Throughput::Bytes((dims * 6) as u64));
        g.bench_with_input(BenchmarkId::new("l2_squared_f16", dims), &dims, |bn, _| {
            bn.iter(|| distance::l2_squared_f16(black_box(&a), black_box(&h)))
        });
        g.bench_with_input(BenchmarkId::new("dot_f16", dims), &dims, |bn, _| {
            bn.iter(|| distance::dot_f16(black_box(&a), black_box(&h)))
        });
        g.throughput(Throughput::Bytes((dims * 2) as u64));
        g.bench_with_input(BenchmarkId::new("dot_u8", dims), &dims, |bn, _| {
            bn.iter(|| distance::dot_u8(black_box(&ua), black_box(&ub)))
        });
        g.bench_with_input(BenchmarkId::new("l2_squared_u8", dims), &dims, |bn, _| {
            bn.iter(|| distance::l2_squared_u8(black_box(&ua), black_box(&ub)))
        });
        // Hamming over the 1-bit codes of `dims` dimensions.
        g.throughput(Throughput::Bytes((dims / 8 * 2) as u64));
        g.bench_with_input(BenchmarkId::new("hamming", dims), &dims, |bn, _| {
            bn.iter(|| distance::hamming(black_box(&ua[..dims / 8]), black_box(&ub[..dims / 8])))
        });
        // Asymmetric SQ kernels: bytes = packed codes read per distance.
        for bits in [8u32, 4, 2] {
            let codes = &ua[..dims * bits as usize / 8];
            g.throughput(Throughput::Bytes(codes.len() as u64));
            g.bench_with_input(
                BenchmarkId::new(format!("sq{bits}_l2"), dims),
                &dims,
                |bn, _| {
                    bn.iter(|| {
                        distance::affine_l2(bits, black_box(&a), black_box(&s), black_box(codes))
                    })
                },
            );
            g.bench_with_input(
                BenchmarkId::new(format!("sq{bits}_dot"), dims),
                &dims,
                |bn, _| bn.iter(|| distance::affine_dot(bits, black_box(&a), black_box(codes))),
            );
        }
        g.throughput(Throughput::Bytes((dims / 8) as u64));
        g.bench_with_input(BenchmarkId::new("masked_sum", dims), &dims, |bn, _| {
            bn.iter(|| distance::masked_sum(black_box(&a), black_box(&ua[..dims / 8])))
        });
    }
    g.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
