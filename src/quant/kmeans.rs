//! Small-dimensional k-means (k-means++ seeding + Lloyd iterations) used to train
//! product-quantizer codebooks.
//!
//! Design: one call trains one subspace and is strictly sequential and driven by the
//! caller's seeded RNG, so running many subspaces in parallel (rayon) gives the same
//! centroids whatever the thread count. Centroids are kept transposed (`dim x k`)
//! during assignment so the inner loop over centroids vectorises; the distance uses
//! `|c|^2 - 2 x.c` (the `|x|^2` term does not change the argmin).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Index of the nearest centroid and its squared distance (up to the constant `|x|^2`).
#[inline]
fn nearest(x: &[f32], cent_t: &[f32], cnorm: &[f32], k: usize, scores: &mut [f32]) -> usize {
    scores.copy_from_slice(cnorm);
    for (j, &xj) in x.iter().enumerate() {
        let row = &cent_t[j * k..(j + 1) * k];
        let m = -2.0 * xj;
        for (s, &c) in scores.iter_mut().zip(row) {
            *s += m * c;
        }
    }
    let mut best = 0;
    let mut best_score = f32::INFINITY;
    for (c, &s) in scores.iter().enumerate() {
        if s < best_score {
            best_score = s;
            best = c;
        }
    }
    best
}

/// Squared L2 distance of two short vectors.
#[inline]
fn dist2(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// k-means++ seeding: `k` centroids (row-major `k x dim`) chosen from the rows of `data`.
fn seed_plus_plus(data: &[f32], dim: usize, k: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let n = data.len() / dim;
    let mut cent = Vec::with_capacity(k * dim);
    let first = rng.gen_range(0..n);
    cent.extend_from_slice(&data[first * dim..(first + 1) * dim]);
    let mut d2: Vec<f32> = data
        .chunks_exact(dim)
        .map(|x| dist2(x, &cent[..dim]))
        .collect();
    for _ in 1..k {
        let total: f64 = d2.iter().map(|&d| d as f64).sum();
        let pick = if total > 0.0 {
            let mut target = rng.gen::<f64>() * total;
            let mut chosen = n - 1;
            for (i, &d) in d2.iter().enumerate() {
                target -= d as f64;
                if target <= 0.0 && d > 0.0 {
                    chosen = i;
                    break;
                }
            }
            chosen
        } else {
            rng.gen_range(0..n)
        };
        let start = cent.len();
        cent.extend_from_slice(&data[pick * dim..(pick + 1) * dim]);
        let c = cent[start..].to_vec();
        for (x, d) in data.chunks_exact(dim).zip(d2.iter_mut()) {
            let nd = dist2(x, &c);
            if nd < *d {
                *d = nd;
            }
        }
    }
    cent
}

/// Trains `k` centroids (row-major `k x dim`) on the rows of `data` with at most `iters` Lloyd steps.
pub(crate) fn train(
    data: &[f32],
    dim: usize,
    k: usize,
    iters: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<f32> {
    let n = data.len().checked_div(dim).unwrap_or(0);
    if n == 0 || k == 0 {
        return vec![0.0; k * dim];
    }
    let mut cent = seed_plus_plus(data, dim, k, rng);
    let mut assign = vec![usize::MAX; n];
    let mut cent_t = vec![0.0f32; dim * k];
    let mut cnorm = vec![0.0f32; k];
    let mut scores = vec![0.0f32; k];
    let mut sums = vec![0.0f64; k * dim];
    let mut counts = vec![0usize; k];
    for _ in 0..iters {
        for c in 0..k {
            let row = &cent[c * dim..(c + 1) * dim];
            cnorm[c] = row.iter().map(|x| x * x).sum();
            for j in 0..dim {
                cent_t[j * k + c] = row[j];
            }
        }
        let mut changed = 0usize;
        for (i, x) in data.chunks_exact(dim).enumerate() {
            let a = nearest(x, &cent_t, &cnorm, k, &mut scores);
            if a != assign[i] {
                assign[i] = a;
                changed += 1;
            }
        }
        if changed == 0 {
            break;
        }
        sums.iter_mut().for_each(|s| *s = 0.0);
        counts.iter_mut().for_each(|c| *c = 0);
        for (x, &a) in data.chunks_exact(dim).zip(&assign) {
            counts[a] += 1;
            for (s, &v) in sums[a * dim..(a + 1) * dim].iter_mut().zip(x) {
                *s += v as f64;
            }
        }
        for c in 0..k {
            if counts[c] > 0 {
                for j in 0..dim {
                    cent[c * dim + j] = (sums[c * dim + j] / counts[c] as f64) as f32;
                }
            } else {
                // Empty cluster: restart it on a random row, slightly perturbed.
                let r = rng.gen_range(0..n);
                for j in 0..dim {
                    let v = data[r * dim + j];
                    cent[c * dim + j] = v + (rng.gen::<f32>() - 0.5) * 1e-4 * v.abs().max(1e-6);
                }
            }
        }
    }
    cent
}
