//! Seeded synthetic data shaped like real sentence embeddings, plus exact k-NN
//! ground truth and recall.
//!
//! Model (all derived from the seed, so base rows and queries share it):
//! - a latent space of `LATENT` dimensions with a power-law variance spectrum
//!   (dimension `j` has standard deviation `(j+1)^-0.6`), so the intrinsic
//!   dimensionality is far below `dims`;
//! - `CLUSTERS` gaussian cluster centres in that latent space; a row is a centre
//!   plus latent noise with the same decaying spectrum;
//! - a dense random mixing matrix (`LATENT x dims`) maps latents to `dims`, with
//!   per-output-dimension gains (some dimensions carry much more energy) and a common
//!   mean offset (real embeddings are not centred);
//! - small isotropic noise in all `dims`, then every row is L2-normalised.
//!
//! Rows are generated in fixed chunks with one ChaCha stream per chunk, so the result
//! is identical for a seed whatever the number of rayon threads.

use crate::distance::{metric_distance, Metric};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

/// Latent (intrinsic) dimensionality of the generated data.
const LATENT: usize = 64;
/// Number of gaussian clusters.
const CLUSTERS: usize = 80;
/// Rows per independently seeded chunk.
const CHUNK: usize = 256;
/// Stream offset separating query streams from base streams.
const QUERY_STREAM: u64 = 1 << 40;

/// The seeded generative model shared by base rows and queries.
struct Model {
    dims: usize,
    centres: Vec<f32>, // CLUSTERS x LATENT
    spectrum: Vec<f32>,
    mixing: Vec<f32>, // LATENT x dims
    offset: Vec<f32>,
}

impl Model {
    /// Builds the model for `dims` from `seed`.
    fn new(dims: usize, seed: u64) -> Model {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let spectrum: Vec<f32> = (0..LATENT).map(|j| ((j + 1) as f32).powf(-0.6)).collect();
        let centres: Vec<f32> = (0..CLUSTERS * LATENT)
            .map(|i| normal(&mut rng) * spectrum[i % LATENT] * 1.2)
            .collect();
        let gains: Vec<f32> = (0..dims).map(|_| (0.6 * normal(&mut rng)).exp()).collect();
        let scale = 1.0 / (LATENT as f32).sqrt();
        let mixing: Vec<f32> = (0..LATENT * dims)
            .map(|i| normal(&mut rng) * scale * gains[i % dims])
            .collect();
        let offset: Vec<f32> = (0..dims).map(|_| 0.15 * normal(&mut rng)).collect();
        Model {
            dims,
            centres,
            spectrum,
            mixing,
            offset,
        }
    }

    /// Writes `out.len() / dims` rows drawn with `rng`.
    fn fill(&self, rng: &mut ChaCha8Rng, out: &mut [f32]) {
        let mut latent = [0.0f32; LATENT];
        for row in out.chunks_exact_mut(self.dims) {
            let c = rng.gen_range(0..CLUSTERS);
            let centre = &self.centres[c * LATENT..(c + 1) * LATENT];
            for (j, l) in latent.iter_mut().enumerate() {
                *l = centre[j] + 0.7 * self.spectrum[j] * normal(rng);
            }
            row.copy_from_slice(&self.offset);
            for (j, &l) in latent.iter().enumerate() {
                let m = &self.mixing[j * self.dims..(j + 1) * self.dims];
                for (r, &w) in row.iter_mut().zip(m) {
                    *r += l * w;
                }
            }
            for r in row.iter_mut() {
                *r += 0.02 * normal(rng);
            }
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            if norm > 0.0 {
                row.iter_mut().for_each(|x| *x /= norm);
            }
        }
    }

    /// Generates `n` rows using the streams starting at `stream_base`.
    fn generate(&self, n: usize, seed: u64, stream_base: u64) -> Vec<f32> {
        let mut out = vec![0.0f32; n * self.dims];
        if self.dims == 0 {
            return out;
        }
        out.par_chunks_mut(CHUNK * self.dims)
            .enumerate()
            .for_each(|(chunk, block)| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_DA7A);
                rng.set_stream(stream_base + chunk as u64);
                self.fill(&mut rng, block);
            });
        out
    }
}

/// One standard normal sample.
#[inline]
fn normal(rng: &mut ChaCha8Rng) -> f32 {
    StandardNormal.sample(rng)
}

/// `n` unit-norm rows of `dims` floats (row-major), clustered and anisotropic, deterministic for `seed`.
pub fn embeddings_like(n: usize, dims: usize, seed: u64) -> Vec<f32> {
    Model::new(dims, seed).generate(n, seed, 0)
}

/// `n` query rows from the same distribution as `embeddings_like(_, dims, seed)` but independent streams.
pub fn queries_like(n: usize, dims: usize, seed: u64) -> Vec<f32> {
    Model::new(dims, seed).generate(n, seed, QUERY_STREAM)
}

/// Exact k nearest neighbours (ids in ascending distance, ties by id) of every query, by brute force.
pub fn exact_knn(
    base: &[f32],
    queries: &[f32],
    dims: usize,
    k: usize,
    metric: Metric,
) -> Vec<Vec<u32>> {
    if dims == 0 {
        return Vec::new();
    }
    queries
        .par_chunks_exact(dims)
        .map(|q| {
            let scored: Vec<(f32, u32)> = base
                .chunks_exact(dims)
                .enumerate()
                .map(|(i, x)| (metric_distance(metric, q, x), i as u32))
                .collect();
            top_k(scored, k)
        })
        .collect()
}

/// Ids of the `k` smallest `(distance, id)` pairs in ascending order (NaN sorts last).
pub fn top_k(mut scored: Vec<(f32, u32)>, k: usize) -> Vec<u32> {
    let cmp = |a: &(f32, u32), b: &(f32, u32)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
    let k = k.min(scored.len());
    if k == 0 {
        return Vec::new();
    }
    if k < scored.len() {
        scored.select_nth_unstable_by(k - 1, cmp);
        scored.truncate(k);
    }
    scored.sort_unstable_by(cmp);
    scored.into_iter().map(|(_, i)| i).collect()
}

/// Mean fraction of the true top-`k` found in the first `k` results of `got`.
pub fn recall_at(k: usize, truth: &[Vec<u32>], got: &[Vec<u32>]) -> f64 {
    if truth.is_empty() || k == 0 {
        return 0.0;
    }
    let mut total = 0.0;
    for (t, g) in truth.iter().zip(got) {
        let t = &t[..k.min(t.len())];
        let g = &g[..k.min(g.len())];
        let hits = g.iter().filter(|id| t.contains(id)).count();
        total += hits as f64 / t.len().max(1) as f64;
    }
    total / truth.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test: deterministic unit norm and fast.
    #[test]
    fn deterministic_unit_norm_and_fast() {
        let t = std::time::Instant::now();
        let a = embeddings_like(2000, 768, 7);
        let b = embeddings_like(2000, 768, 7);
        assert_eq!(a, b);
        assert_ne!(a, queries_like(2000, 768, 7));
        assert_ne!(a, embeddings_like(2000, 768, 8));
        for row in a.chunks_exact(768) {
            let n: f32 = row.iter().map(|x| x * x).sum();
            assert!((n - 1.0).abs() < 1e-4);
        }
        assert!(t.elapsed().as_secs() < 10);
    }

    /// Test: knn and recall.
    #[test]
    fn knn_and_recall() {
        let base = embeddings_like(500, 32, 1);
        let truth = exact_knn(&base, &base[..32 * 5], 32, 10, Metric::L2);
        for (qi, t) in truth.iter().enumerate() {
            assert_eq!(t[0], qi as u32);
        }
        assert_eq!(recall_at(10, &truth, &truth), 1.0);
    }
}
