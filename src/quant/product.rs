//! Product quantization: `m` subspaces of `dims/m` dimensions, each with 16 (4-bit)
//! or 256 (8-bit) centroids.
//!
//! Design:
//! - Training: one seeded row subsample (at most 32 rows per centroid for 8-bit,
//!   4096 rows for 4-bit) shared by all subspaces; each subspace runs k-means++ and
//!   Lloyd iterations (`kmeans::train`) with its own ChaCha stream (`stream = j + 1`),
//!   in parallel with rayon. Results are collected in subspace order, so the trained
//!   codebooks are identical for a seed whatever the thread count.
//! - Codes: 8-bit = one byte per subspace; 4-bit = two subspaces per byte, even
//!   subspace in the low nibble.
//! - Search (ADC): per query a table of partial distances per subspace and centroid.
//!   For 4-bit codes the two 16-entry tables of a byte's nibbles are merged into one
//!   256-entry table per byte, so both widths score as one f32 lookup per code byte.

use super::{check_vec, kmeans, EstimatorKind, QuantError, QuantizerConfig};
use crate::distance::Metric;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Lloyd iterations per subspace.
const KMEANS_ITERS: usize = 16;

/// Trained product quantizer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProductQuantizer {
    dims: usize,
    m: usize,
    bits: u32,
    dsub: usize,
    /// `m x ks x dsub` centroids.
    centroids: Vec<f32>,
}

/// Default subvector count: dims/8, or the largest divisor of dims not above it.
pub(crate) fn default_subvectors(dims: usize) -> usize {
    let target = (dims / 8).max(1);
    (1..=target)
        .rev()
        .find(|m| dims.is_multiple_of(*m))
        .unwrap_or(1)
}

impl ProductQuantizer {
    /// Trains codebooks on `sample` (validated by the caller: non-empty, finite, whole rows).
    pub(crate) fn train(
        config: &QuantizerConfig,
        dims: usize,
        sample: &[f32],
    ) -> Result<Self, QuantError> {
        let bits = config.pq_bits as u32;
        if bits != 4 && bits != 8 {
            return Err(QuantError::InvalidConfig(format!(
                "pq_bits must be 4 or 8, not {bits}"
            )));
        }
        let m = if config.pq_subvectors == 0 {
            default_subvectors(dims)
        } else {
            config.pq_subvectors
        };
        if m > dims || !dims.is_multiple_of(m) {
            return Err(QuantError::InvalidConfig(format!(
                "pq_subvectors ({m}) must divide the number of dimensions ({dims})"
            )));
        }
        let dsub = dims / m;
        let ks = 1usize << bits;
        let rows = sample.len() / dims;
        let max_rows = if bits == 8 { ks * 32 } else { 4096 };
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let picked: Vec<usize> = if rows > max_rows {
            let mut idx = rand::seq::index::sample(&mut rng, rows, max_rows).into_vec();
            idx.sort_unstable();
            idx
        } else {
            (0..rows).collect()
        };
        let per_sub: Vec<Vec<f32>> = (0..m)
            .into_par_iter()
            .map(|j| {
                let mut data = Vec::with_capacity(picked.len() * dsub);
                for &r in &picked {
                    let start = r * dims + j * dsub;
                    data.extend_from_slice(&sample[start..start + dsub]);
                }
                let mut sub_rng = ChaCha8Rng::seed_from_u64(config.seed);
                sub_rng.set_stream(j as u64 + 1);
                kmeans::train(&data, dsub, ks, KMEANS_ITERS, &mut sub_rng)
            })
            .collect();
        Ok(ProductQuantizer {
            dims,
            m,
            bits,
            dsub,
            centroids: per_sub.concat(),
        })
    }

    /// Number of dimensions.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// Number of subvectors.
    pub fn subvectors(&self) -> usize {
        self.m
    }

    /// Bits per subvector code (4 or 8).
    pub fn code_bits(&self) -> u32 {
        self.bits
    }

    /// Centroids per subspace.
    fn ks(&self) -> usize {
        1 << self.bits
    }

    /// Bytes per code.
    pub fn code_len(&self) -> usize {
        (self.m * self.bits as usize).div_ceil(8)
    }

    /// Centroid `c` of subspace `j`.
    fn centroid(&self, j: usize, c: usize) -> &[f32] {
        let start = (j * self.ks() + c) * self.dsub;
        &self.centroids[start..start + self.dsub]
    }

    /// Code of subspace `j` in `code`.
    fn code_of(&self, code: &[u8], j: usize) -> usize {
        if self.bits == 8 {
            code[j] as usize
        } else {
            ((code[j / 2] >> ((j % 2) * 4)) & 0x0F) as usize
        }
    }

    /// Assigns each subvector of `v` to its nearest centroid.
    pub fn encode(&self, v: &[f32], out: &mut [u8]) {
        out.iter_mut().for_each(|b| *b = 0);
        if v.len() < self.dims || out.len() < self.code_len() {
            return;
        }
        for j in 0..self.m {
            let x = &v[j * self.dsub..(j + 1) * self.dsub];
            let mut best = 0;
            let mut best_d = f32::INFINITY;
            for c in 0..self.ks() {
                let d: f32 = x
                    .iter()
                    .zip(self.centroid(j, c))
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum();
                if d < best_d {
                    best_d = d;
                    best = c;
                }
            }
            if self.bits == 8 {
                out[j] = best as u8;
            } else {
                out[j / 2] |= (best as u8) << ((j % 2) * 4);
            }
        }
    }

    /// Concatenates the centroids named by `code`.
    pub fn decode(&self, code: &[u8], out: &mut [f32]) {
        if code.len() < self.code_len() || out.len() < self.dims {
            out.iter_mut().for_each(|x| *x = 0.0);
            return;
        }
        for j in 0..self.m {
            let c = self.code_of(code, j);
            out[j * self.dsub..(j + 1) * self.dsub].copy_from_slice(self.centroid(j, c));
        }
    }

    /// ADC table of one byte per row of 256 floats.
    pub(super) fn estimator(&self, q: &[f32], metric: Metric) -> EstimatorKind {
        let ks = self.ks();
        let mut sub = vec![0.0f32; self.m * ks];
        for j in 0..self.m {
            let x = &q[j * self.dsub..(j + 1) * self.dsub];
            for c in 0..ks {
                let cent = self.centroid(j, c);
                sub[j * ks + c] = match metric {
                    Metric::L2 => x.iter().zip(cent).map(|(a, b)| (a - b) * (a - b)).sum(),
                    Metric::Cosine => {
                        0.5 * x
                            .iter()
                            .zip(cent)
                            .map(|(a, b)| (a - b) * (a - b))
                            .sum::<f32>()
                    }
                    Metric::InnerProduct => -x.iter().zip(cent).map(|(a, b)| a * b).sum::<f32>(),
                    Metric::L1 => x.iter().zip(cent).map(|(a, b)| (a - b).abs()).sum(),
                };
            }
        }
        let bias = 0.0;
        if self.bits == 8 {
            return EstimatorKind::Table { table: sub, bias };
        }
        let bytes = self.code_len();
        let mut table = vec![0.0f32; bytes * 256];
        for b in 0..bytes {
            let lo = &sub[2 * b * 16..2 * b * 16 + 16];
            let has_hi = 2 * b + 1 < self.m;
            for v in 0..256usize {
                let hi = if has_hi {
                    sub[(2 * b + 1) * 16 + (v >> 4)]
                } else {
                    0.0
                };
                table[b * 256 + v] = lo[v & 15] + hi;
            }
        }
        EstimatorKind::Table { table, bias }
    }

    /// Checks a deserialised quantizer.
    pub(crate) fn validate(self) -> Result<Self, QuantError> {
        if self.bits != 4 && self.bits != 8 {
            return Err(QuantError::Corrupt(format!(
                "invalid pq bits {}",
                self.bits
            )));
        }
        if self.m == 0
            || self.m > self.dims
            || !self.dims.is_multiple_of(self.m)
            || self.dsub != self.dims / self.m
        {
            return Err(QuantError::Corrupt(format!(
                "inconsistent pq shape: {} dims, {} subvectors of {}",
                self.dims, self.m, self.dsub
            )));
        }
        check_vec(
            "pq centroids",
            &self.centroids,
            self.m * self.ks() * self.dsub,
        )?;
        Ok(self)
    }
}
