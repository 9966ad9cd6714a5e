//! Scalar quantization with 8, 4 or 2 bits per dimension.
//!
//! Design: each dimension `i` has a uniform grid `lo_i + step_i * c`, `c` in
//! `0..=2^bits-1`. The range `[lo_i, hi_i]` is chosen per dimension among symmetric
//! quantile clips of the sample (from none up to 15% per side) by the smallest
//! measured mean squared quantization error, so 8-bit codes barely clip while 2-bit
//! codes clip the tails hard (measured: the MSE-optimal clip differs a lot by bits).
//!
//! Codes are packed LSB-first: 4-bit = two dimensions per byte (even dimension in the
//! low nibble), 2-bit = four per byte. Asymmetric estimates are affine in the code,
//! `sum (q_i - lo_i - step_i c_i)^2` (L2; half of it for cosine, see `quant`) or
//! `sum q_i lo_i + sum (q_i step_i) c_i` (inner product), and run
//! as one SIMD kernel (`distance::affine_l2` / `affine_dot`) without decoding.
//! L1 has no such form: it uses a 256-entry table per code byte (one lookup per byte).

use super::{check_vec, EstimatorKind, QuantError, SCRATCH};
use crate::distance::{self, scalar::code_at, Metric};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Most sample rows used to estimate the per-dimension ranges.
const MAX_TRAIN_ROWS: usize = 65_536;
/// Candidate clip fractions (per side) evaluated per dimension.
const CLIPS: [f64; 12] = [
    0.0, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.08, 0.11, 0.15,
];

/// Per-dimension uniform scalar quantizer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScalarQuantizer {
    bits: u32,
    dims: usize,
    lo: Vec<f32>,
    step: Vec<f32>,
}

/// Value at quantile `p` of a sorted column.
fn quantile(sorted: &[f32], p: f64) -> f32 {
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Mean squared error of quantizing `values` on the grid `lo + step * c`, `c <= levels`.
fn grid_mse(values: &[f32], lo: f32, hi: f32, levels: u32) -> f64 {
    let step = (hi - lo) / levels as f32;
    if step <= 0.0 {
        return values.iter().map(|&x| ((x - lo) as f64).powi(2)).sum();
    }
    let inv = 1.0 / step;
    values
        .iter()
        .map(|&x| {
            let c = ((x - lo) * inv).round().clamp(0.0, levels as f32);
            let e = (x - (lo + c * step)) as f64;
            e * e
        })
        .sum()
}

impl ScalarQuantizer {
    /// Fits per-dimension ranges on `sample` (validated by the caller: non-empty, finite, whole rows).
    pub(crate) fn train(bits: u32, dims: usize, sample: &[f32]) -> Self {
        let rows = sample.len() / dims;
        let stride = rows.div_ceil(MAX_TRAIN_ROWS).max(1);
        let levels = (1u32 << bits) - 1;
        let ranges: Vec<(f32, f32)> = (0..dims)
            .into_par_iter()
            .map(|i| {
                let mut col: Vec<f32> = (0..rows)
                    .step_by(stride)
                    .map(|r| sample[r * dims + i])
                    .collect();
                col.sort_unstable_by(f32::total_cmp);
                // Evaluate on at most 8192 evenly spaced order statistics (quantile-preserving).
                let eval_stride = col.len().div_ceil(8192).max(1);
                let eval: Vec<f32> = col.iter().step_by(eval_stride).copied().collect();
                let mut best = (col[0], col[col.len() - 1]);
                let mut best_mse = f64::INFINITY;
                for &p in &CLIPS {
                    let (lo, hi) = (quantile(&col, p), quantile(&col, 1.0 - p));
                    let mse = grid_mse(&eval, lo, hi, levels);
                    if mse < best_mse {
                        best_mse = mse;
                        best = (lo, hi);
                    }
                }
                best
            })
            .collect();
        let lo = ranges.iter().map(|r| r.0).collect();
        let step = ranges
            .iter()
            .map(|r| ((r.1 as f64 - r.0 as f64) / levels as f64).clamp(0.0, f32::MAX as f64) as f32)
            .collect();
        ScalarQuantizer {
            bits,
            dims,
            lo,
            step,
        }
    }

    /// Bits per dimension (8, 4 or 2).
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// Number of dimensions.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// Bytes per code.
    pub fn code_len(&self) -> usize {
        (self.dims * self.bits as usize).div_ceil(8)
    }

    /// Lower end of each dimension's range.
    pub fn lo(&self) -> &[f32] {
        &self.lo
    }

    /// Grid step of each dimension.
    pub fn step(&self) -> &[f32] {
        &self.step
    }

    /// Quantizes and packs `v` into `out`.
    pub fn encode(&self, v: &[f32], out: &mut [u8]) {
        let levels = ((1u32 << self.bits) - 1) as f32;
        out.iter_mut().for_each(|b| *b = 0);
        let per_byte = 8 / self.bits as usize;
        let n = v.len().min(self.dims).min(out.len() * per_byte);
        for i in 0..n {
            let s = self.step[i];
            let c = if s > 0.0 {
                ((v[i] - self.lo[i]) / s).round().clamp(0.0, levels) as u8
            } else {
                0
            };
            let shift = (i % per_byte) * self.bits as usize;
            out[i / per_byte] |= c << shift;
        }
    }

    /// Unpacks `code` and maps each value back to its grid point.
    pub fn decode(&self, code: &[u8], out: &mut [f32]) {
        let per_byte = 8 / self.bits as usize;
        let n = out.len().min(self.dims).min(code.len() * per_byte);
        for (i, o) in out[..n].iter_mut().enumerate() {
            *o = self.lo[i] + self.step[i] * code_at(code, self.bits, i) as f32;
        }
    }

    /// Per-query affine weights for the asymmetric estimate.
    pub(super) fn estimator(&self, q: &[f32], metric: Metric) -> EstimatorKind {
        match metric {
            Metric::L2 | Metric::Cosine => EstimatorKind::Affine {
                bits: self.bits,
                l2: true,
                a: q.iter().zip(&self.lo).map(|(x, l)| x - l).collect(),
                s: self.step.clone(),
                bias: 0.0,
                sign: if metric == Metric::Cosine { 0.5 } else { 1.0 },
            },
            Metric::InnerProduct => EstimatorKind::Affine {
                bits: self.bits,
                l2: false,
                a: q.iter().zip(&self.step).map(|(x, s)| x * s).collect(),
                s: Vec::new(),
                bias: -distance::dot(q, &self.lo),
                sign: -1.0,
            },
            Metric::L1 => EstimatorKind::Table {
                table: self.l1_table(q),
                bias: 0.0,
            },
        }
    }

    /// L1 lookup table: for each code byte and each of its 256 values, `sum |q_i - decode_i|` over the dimensions packed in that byte.
    fn l1_table(&self, q: &[f32]) -> Vec<f32> {
        let bits = self.bits as usize;
        let per_byte = 8 / bits;
        let mask = (1usize << bits) - 1;
        let mut table = vec![0.0f32; self.code_len() * 256];
        for (b, row) in table.chunks_exact_mut(256).enumerate() {
            for slot in 0..per_byte {
                let i = b * per_byte + slot;
                if i >= self.dims {
                    break;
                }
                let (x, lo, step) = (q.get(i).copied().unwrap_or(0.0), self.lo[i], self.step[i]);
                for (v, entry) in row.iter_mut().enumerate() {
                    let c = ((v >> (slot * bits)) & mask) as f32;
                    *entry += (x - (lo + step * c)).abs();
                }
            }
        }
        table
    }

    /// Code-to-code estimate: decode `a`, then the affine kernel against `b`.
    pub(crate) fn code_distance(&self, metric: Metric, a: &[u8], b: &[u8]) -> f32 {
        let per_byte = 8 / self.bits as usize;
        let n = self.dims.min(a.len() * per_byte);
        SCRATCH.with_borrow_mut(|(x, w, _)| {
            x.clear();
            x.resize(self.dims, 0.0);
            w.clear();
            w.resize(self.dims, 0.0);
            match metric {
                Metric::L2 | Metric::Cosine => {
                    for (i, xi) in x[..n].iter_mut().enumerate() {
                        *xi = self.step[i] * code_at(a, self.bits, i) as f32;
                    }
                    let l2 = distance::affine_l2(self.bits, x, &self.step, b);
                    if metric == Metric::Cosine {
                        0.5 * l2
                    } else {
                        l2
                    }
                }
                Metric::InnerProduct => {
                    self.decode(a, x);
                    for i in 0..self.dims {
                        w[i] = x[i] * self.step[i];
                    }
                    -(distance::dot(x, &self.lo) + distance::affine_dot(self.bits, w, b))
                }
                Metric::L1 => {
                    self.decode(a, x);
                    self.decode(b, w);
                    distance::l1(x, w)
                }
            }
        })
    }

    /// Checks a deserialised quantizer.
    pub(crate) fn validate(self) -> Result<Self, QuantError> {
        if !matches!(self.bits, 2 | 4 | 8) {
            return Err(QuantError::Corrupt(format!(
                "invalid scalar bits {}",
                self.bits
            )));
        }
        check_vec("scalar lo", &self.lo, self.dims)?;
        check_vec("scalar step", &self.step, self.dims)?;
        if self.step.iter().any(|&s| s < 0.0) {
            return Err(QuantError::Corrupt("negative scalar step".into()));
        }
        Ok(self)
    }
}
