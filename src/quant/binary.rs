//! Binary quantization: one bit per dimension (`x_i > t_i`), LSB-first in bytes.
//!
//! Design: `t_i` is the per-dimension mean or median of the sample. A code decodes
//! to `x̂_i = m_i + a * s_i` with `s_i = ±1`, `m_i` the midpoint of the sample's mean
//! values on either side of `t_i`, and one global magnitude `a` (the RMS half-gap
//! between those side means), so that `|x̂ - m|^2 = dims * a^2` for every code.
//!
//! Measured on clustered 768-d data (recall@10 after exact re-rank of 40, L2):
//! per-dimension magnitudes `a_i` (the MSE-optimal side means) 0.969, plain Hamming
//! 0.977, uniform magnitude 0.993 — so the uniform-magnitude reconstruction is used.
//! With it every distance is "constant + sum of weights over set bits":
//!
//! - L2: `|q - x̂|^2 = sum r_i^2 + dims a^2 + 2a sum r_i - 4a sum_{bit} r_i`, `r = q - m`
//! - dot: `q . x̂ = q . m - a sum q_i + 2a sum_{bit} q_i`
//! - cosine (unit vectors, see `quant`): half the L2 form,
//! - L1: `sum |q_i - m_i + a| + sum_{bit} (|q_i - m_i - a| - |q_i - m_i + a|)`,
//!
//! i.e. one masked-add kernel (`distance::masked_sum`, the bits are used directly as
//! an AVX-512 lane mask). Code to code, L2 is exactly `4 a^2 * hamming(a, b)`
//! (VPOPCNTDQ), L1 is `2a * hamming(a, b)`, and dot needs two masked sums and one
//! Hamming distance.

use super::{check_vec, BinaryThreshold, EstimatorKind, QuantError};
use crate::distance::{self, Metric};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// One-bit-per-dimension quantizer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BinaryQuantizer {
    dims: usize,
    threshold: Vec<f32>,
    center: Vec<f32>,
    magnitude: f32,
    /// Derived: `|center|^2`.
    #[serde(skip)]
    center_sq: f32,
}

impl BinaryQuantizer {
    /// Fits thresholds, centres and the magnitude on `sample` (validated by the caller).
    pub(crate) fn train(rule: BinaryThreshold, dims: usize, sample: &[f32]) -> Self {
        let rows = sample.len() / dims;
        let stats: Vec<(f32, f32, f32)> = (0..dims)
            .into_par_iter()
            .map(|i| {
                let mut col: Vec<f32> = (0..rows).map(|r| sample[r * dims + i]).collect();
                let t = match rule {
                    BinaryThreshold::Mean => {
                        (col.iter().map(|&x| x as f64).sum::<f64>() / rows as f64) as f32
                    }
                    BinaryThreshold::Median => {
                        let mid = (rows - 1) / 2;
                        *col.select_nth_unstable_by(mid, f32::total_cmp).1
                    }
                };
                let (mut sb, mut nb, mut sa, mut na) = (0.0f64, 0usize, 0.0f64, 0usize);
                for &x in &col {
                    if x > t {
                        sa += x as f64;
                        na += 1;
                    } else {
                        sb += x as f64;
                        nb += 1;
                    }
                }
                let below = if nb > 0 { (sb / nb as f64) as f32 } else { t };
                let above = if na > 0 { (sa / na as f64) as f32 } else { t };
                (t, 0.5 * (below + above), 0.5 * (above - below))
            })
            .collect();
        let mean_sq = stats.iter().map(|s| (s.2 as f64).powi(2)).sum::<f64>() / dims as f64;
        let mut q = BinaryQuantizer {
            dims,
            threshold: stats.iter().map(|s| s.0).collect(),
            center: stats.iter().map(|s| s.1).collect(),
            magnitude: mean_sq.sqrt() as f32,
            center_sq: 0.0,
        };
        q.derive();
        q
    }

    /// Computes the derived (non-serialised) values.
    fn derive(&mut self) {
        self.center_sq = distance::norm_squared(&self.center);
    }

    /// Number of dimensions.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// Bytes per code.
    pub fn code_len(&self) -> usize {
        self.dims.div_ceil(8)
    }

    /// Sets bit `i` when `v_i > threshold_i`.
    pub fn encode(&self, v: &[f32], out: &mut [u8]) {
        out.iter_mut().for_each(|b| *b = 0);
        let n = v.len().min(self.dims).min(out.len() * 8);
        for i in 0..n {
            if v[i] > self.threshold[i] {
                out[i / 8] |= 1 << (i % 8);
            }
        }
    }

    /// Maps each bit to `center_i ± magnitude`.
    pub fn decode(&self, code: &[u8], out: &mut [f32]) {
        let n = out.len().min(self.dims).min(code.len() * 8);
        for i in 0..n {
            let sign = if (code[i / 8] >> (i % 8)) & 1 == 1 {
                1.0
            } else {
                -1.0
            };
            out[i] = self.center[i] + sign * self.magnitude;
        }
    }

    /// Masked-sum weights and constant for the asymmetric estimate.
    pub(super) fn estimator(&self, q: &[f32], metric: Metric) -> EstimatorKind {
        let a = self.magnitude;
        match metric {
            Metric::L2 | Metric::Cosine => {
                let scale = if metric == Metric::Cosine { 0.5 } else { 1.0 };
                let (mut r2, mut rsum) = (0.0f32, 0.0f32);
                let w = q
                    .iter()
                    .zip(&self.center)
                    .map(|(x, m)| {
                        let r = x - m;
                        r2 += r * r;
                        rsum += r;
                        -4.0 * a * r * scale
                    })
                    .collect();
                let bias = r2 + self.dims as f32 * a * a + 2.0 * a * rsum;
                EstimatorKind::Masked {
                    w,
                    bias: scale * bias,
                }
            }
            Metric::L1 => {
                // Dimension i decodes to m_i - a (bit 0) or m_i + a (bit 1).
                let mut bias = 0.0f32;
                let w = q
                    .iter()
                    .zip(&self.center)
                    .map(|(x, m)| {
                        let (off, on) = ((x - (m - a)).abs(), (x - (m + a)).abs());
                        bias += off;
                        on - off
                    })
                    .collect();
                EstimatorKind::Masked { w, bias }
            }
            Metric::InnerProduct => {
                let qsum: f32 = q.iter().sum();
                let w = q.iter().map(|x| -2.0 * a * x).collect();
                EstimatorKind::Masked {
                    w,
                    bias: -(distance::dot(q, &self.center) - a * qsum),
                }
            }
        }
    }

    /// Plain Hamming distance between two codes.
    pub fn hamming(&self, a: &[u8], b: &[u8]) -> u32 {
        distance::hamming(a, b)
    }

    /// Closed-form distance between two reconstructions, computed on the bits.
    pub(crate) fn code_distance(&self, metric: Metric, a: &[u8], b: &[u8]) -> f32 {
        let len = self.code_len();
        let (a, b) = (&a[..a.len().min(len)], &b[..b.len().min(len)]);
        let mag = self.magnitude;
        let ham = distance::hamming(a, b) as f32;
        match metric {
            Metric::L2 => 4.0 * mag * mag * ham,
            Metric::Cosine => 2.0 * mag * mag * ham,
            Metric::L1 => 2.0 * mag * ham,
            Metric::InnerProduct => {
                // sum m_i s_i = 2 sum_{bit} m_i - sum m_i, and sum s_a s_b = dims - 2 hamming.
                let msum: f32 = self.center.iter().sum();
                let ms_a = 2.0 * distance::masked_sum(&self.center, a) - msum;
                let ms_b = 2.0 * distance::masked_sum(&self.center, b) - msum;
                -(self.center_sq + mag * (ms_a + ms_b) + mag * mag * (self.dims as f32 - 2.0 * ham))
            }
        }
    }

    /// Checks a deserialised quantizer and rebuilds derived values.
    pub(crate) fn validate(mut self) -> Result<Self, QuantError> {
        check_vec("binary thresholds", &self.threshold, self.dims)?;
        check_vec("binary centres", &self.center, self.dims)?;
        if !self.magnitude.is_finite() || self.magnitude < 0.0 {
            return Err(QuantError::Corrupt("invalid binary magnitude".into()));
        }
        self.derive();
        Ok(self)
    }
}
