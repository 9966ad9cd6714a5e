//! Outlier-robust training input: per-dimension clipping to Tukey fences.
//!
//! Design (issue 11.7): a few rows with huge components (one 1e30 component in 1% of
//! the rows) would otherwise dominate every statistic a quantizer fits — a scalar
//! min/max or clip search (their squared errors swamp everything else in f64), the
//! binary side means and magnitude, k-means sums of squares (which overflow f32).
//! So before training, each dimension's values are clipped to
//! `[q1 - FENCE * s, q3 + FENCE * s]`, where `q1`, `q3` are the quartiles of the
//! column and `s` its interquartile range (or, for columns whose middle half is one
//! value, the 5%-95% or 0.5%-99.5% range; a column constant over 99% of the sample is
//! left alone). With `FENCE = 6` the fences sit about 8.8 standard deviations out for
//! Gaussian data, so ordinary columns are never touched and training is unchanged;
//! outliers are trained as if they sat on the fence. Encoding is not affected: an
//! outlier row still gets a code (clamped for scalar, its bit for binary, its nearest
//! centroid for PQ), and the index re-ranks it with its exact distance.

use rayon::prelude::*;
use std::borrow::Cow;

/// Fence distance beyond the quartiles, in units of the column's spread.
const FENCE: f64 = 6.0;
/// Most values per column used to estimate its quantiles.
const QUANTILE_ROWS: usize = 8192;

/// Value at quantile `p` of `values` (reorders `values`).
fn quantile(values: &mut [f32], p: f64) -> f64 {
    let idx = ((values.len() - 1) as f64 * p).round() as usize;
    *values.select_nth_unstable_by(idx, f32::total_cmp).1 as f64
}

/// The clipping interval of one column, or None when the column has no usable spread.
fn fences(column: &mut [f32]) -> Option<(f32, f32)> {
    for (lo_p, hi_p) in [(0.25, 0.75), (0.05, 0.95), (0.005, 0.995)] {
        let (lo, hi) = (quantile(column, lo_p), quantile(column, hi_p));
        let spread = hi - lo;
        if spread > 0.0 {
            let clamp = |x: f64| x.clamp(f32::MIN as f64, f32::MAX as f64) as f32;
            return Some((clamp(lo - FENCE * spread), clamp(hi + FENCE * spread)));
        }
    }
    None
}

/// `sample` (row-major, `dims` columns, finite) with each column clipped to its fences; borrowed when nothing lies outside them.
pub(crate) fn clip_outliers(dims: usize, sample: &[f32]) -> Cow<'_, [f32]> {
    let rows = sample.len() / dims;
    if rows < 4 {
        return Cow::Borrowed(sample);
    }
    let stride = rows.div_ceil(QUANTILE_ROWS).max(1);
    let limits: Vec<Option<(f32, f32)>> = (0..dims)
        .into_par_iter()
        .map(|i| {
            let mut column: Vec<f32> = (0..rows)
                .step_by(stride)
                .map(|r| sample[r * dims + i])
                .collect();
            fences(&mut column)
        })
        .collect();
    let outside = |i: usize, x: f32| limits[i].is_some_and(|(lo, hi)| x < lo || x > hi);
    let any_outside = sample
        .par_chunks(dims)
        .any(|row| row.iter().enumerate().any(|(i, &x)| outside(i, x)));
    if !any_outside {
        return Cow::Borrowed(sample);
    }
    let mut clipped = sample.to_vec();
    clipped.par_chunks_mut(dims).for_each(|row| {
        for (x, limit) in row.iter_mut().zip(&limits) {
            if let Some((lo, hi)) = limit {
                *x = x.clamp(*lo, *hi);
            }
        }
    });
    Cow::Owned(clipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ordinary data is returned as is; a huge component is pulled to its column's fence.
    #[test]
    fn clips_only_outliers() {
        let dims = 2;
        let mut sample: Vec<f32> = (0..1000)
            .flat_map(|r| [(r % 10) as f32, (r % 7) as f32 - 3.0])
            .collect();
        assert!(matches!(clip_outliers(dims, &sample), Cow::Borrowed(_)));
        sample[2 * 500] = 1e30;
        sample[2 * 501 + 1] = -3e38;
        let clipped = clip_outliers(dims, &sample);
        // Column 0: quartiles 2 and 7 (spread 5), fences -28 and 37.
        assert_eq!(clipped[2 * 500], 37.0);
        // Column 1: quartiles -2 and 2 (spread 4), fences -26 and 26.
        assert_eq!(clipped[2 * 501 + 1], -26.0);
        let changed = clipped.iter().zip(&sample).filter(|(a, b)| a != b).count();
        assert_eq!(changed, 2);
    }
}
