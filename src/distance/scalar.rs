//! Scalar reference implementations of every distance kernel.
//!
//! These are the semantics that the SIMD kernels must reproduce (up to float
//! summation order); property tests compare every SIMD path against them. They
//! are also the fallback on CPUs without a supported vector extension.
//!
//! All kernels operate on the common prefix of their inputs (the shorter length)
//! so that a length mismatch can never read out of bounds; callers are expected
//! to check lengths beforehand.

use half::f16;

/// Squared Euclidean distance.
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let d = x - y;
            d * d
        })
        .sum()
}

/// Inner product.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Manhattan (L1) distance.
pub fn l1(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum()
}

/// Squared Euclidean norm.
pub fn norm_squared(a: &[f32]) -> f32 {
    a.iter().map(|x| x * x).sum()
}

/// Cosine distance `1 - cos(a, b)` with the similarity clamped to [-1, 1]; NaN for a zero vector.
pub fn cosine_distance(a: &[f32], b: &[f32]) -> f32 {
    super::cosine_from_parts(dot(a, b), norm_squared(a), norm_squared(b))
}

/// Squared Euclidean distance accumulated in f64 (the overflow fallback).
pub fn l2_squared_f64(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = x as f64 - y as f64;
            d * d
        })
        .sum()
}

/// Inner product accumulated in f64 (the overflow fallback).
pub fn dot_f64(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

/// Manhattan distance accumulated in f64 (the overflow fallback).
pub fn l1_f64(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).abs())
        .sum()
}

/// Squared L2 distance between an f32 query and an f16 stored vector.
pub fn l2_squared_f16(q: &[f32], c: &[f16]) -> f32 {
    q.iter()
        .zip(c)
        .map(|(x, y)| {
            let d = x - y.to_f32();
            d * d
        })
        .sum()
}

/// Inner product between an f32 query and an f16 stored vector.
pub fn dot_f16(q: &[f32], c: &[f16]) -> f32 {
    q.iter().zip(c).map(|(x, y)| x * y.to_f32()).sum()
}

/// Number of differing bits.
pub fn hamming(a: &[u8], b: &[u8]) -> u32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut total = 0u32;
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        let x = u64::from_le_bytes(x.try_into().unwrap_or([0; 8]));
        let y = u64::from_le_bytes(y.try_into().unwrap_or([0; 8]));
        total += (x ^ y).count_ones();
    }
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        total += (x ^ y).count_ones();
    }
    total
}

/// Integer inner product of two u8 code vectors (wrapping on overflow).
pub fn dot_u8(a: &[u8], b: &[u8]) -> u32 {
    a.iter()
        .zip(b)
        .fold(0u32, |acc, (&x, &y)| acc.wrapping_add(x as u32 * y as u32))
}

/// Integer squared L2 distance of two u8 code vectors (wrapping on overflow).
pub fn l2_squared_u8(a: &[u8], b: &[u8]) -> u32 {
    a.iter().zip(b).fold(0u32, |acc, (&x, &y)| {
        let d = x as i32 - y as i32;
        acc.wrapping_add((d * d) as u32)
    })
}

/// Number of dimensions an affine-code kernel may touch: limited by every input.
fn affine_len(n: usize, codes_len: usize, per_byte: usize) -> usize {
    n.min(codes_len.saturating_mul(per_byte))
}

/// Codes per byte for a bit width (8 -> 1, 4 -> 2, 2 -> 4, anything else -> 8 one-bit codes).
fn per_byte(bits: u32) -> usize {
    match bits {
        8 => 1,
        4 => 2,
        2 => 4,
        _ => 8,
    }
}

/// Code value of dimension `i` in a packed code of `bits` bits per dimension.
#[inline(always)]
pub(crate) fn code_at(codes: &[u8], bits: u32, i: usize) -> u8 {
    match bits {
        8 => codes[i],
        4 => (codes[i / 2] >> ((i % 2) * 4)) & 0x0F,
        2 => (codes[i / 4] >> ((i % 4) * 2)) & 0x03,
        _ => (codes[i / 8] >> (i % 8)) & 0x01,
    }
}

/// `sum_i (d_i - s_i * c_i)^2` over packed codes of `bits` (8, 4 or 2) bits per dimension.
pub fn affine_l2(bits: u32, d: &[f32], s: &[f32], codes: &[u8]) -> f32 {
    let n = affine_len(d.len().min(s.len()), codes.len(), per_byte(bits));
    let mut acc = 0.0f32;
    for i in 0..n {
        let e = d[i] - s[i] * code_at(codes, bits, i) as f32;
        acc += e * e;
    }
    acc
}

/// `sum_i w_i * c_i` over packed codes of `bits` (8, 4 or 2) bits per dimension.
pub fn affine_dot(bits: u32, w: &[f32], codes: &[u8]) -> f32 {
    let n = affine_len(w.len(), codes.len(), per_byte(bits));
    w[..n]
        .iter()
        .enumerate()
        .map(|(i, wi)| wi * code_at(codes, bits, i) as f32)
        .sum()
}

/// `sum_i (d_i - s_i c_i)^2` for 8-bit codes.
pub fn sq8_l2(d: &[f32], s: &[f32], codes: &[u8]) -> f32 {
    affine_l2(8, d, s, codes)
}
/// `sum_i w_i c_i` for 8-bit codes.
pub fn sq8_dot(w: &[f32], codes: &[u8]) -> f32 {
    affine_dot(8, w, codes)
}
/// `sum_i (d_i - s_i c_i)^2` for 4-bit codes (dimension `i` in byte `i/2`, low nibble first).
pub fn sq4_l2(d: &[f32], s: &[f32], codes: &[u8]) -> f32 {
    affine_l2(4, d, s, codes)
}
/// `sum_i w_i c_i` for 4-bit codes.
pub fn sq4_dot(w: &[f32], codes: &[u8]) -> f32 {
    affine_dot(4, w, codes)
}
/// `sum_i (d_i - s_i c_i)^2` for 2-bit codes (dimension `i` in byte `i/4`, bits `2*(i%4)`).
pub fn sq2_l2(d: &[f32], s: &[f32], codes: &[u8]) -> f32 {
    affine_l2(2, d, s, codes)
}
/// `sum_i w_i c_i` for 2-bit codes.
pub fn sq2_dot(w: &[f32], codes: &[u8]) -> f32 {
    affine_dot(2, w, codes)
}

/// Sum of `w_i` over the dimensions whose bit is set (bit `i` = byte `i/8`, bit `i%8`).
pub fn masked_sum(w: &[f32], bits: &[u8]) -> f32 {
    let n = affine_len(w.len(), bits.len(), 8);
    let mut acc = 0.0f32;
    for (i, wi) in w.iter().enumerate().take(n) {
        if (bits[i / 8] >> (i % 8)) & 1 == 1 {
            acc += wi;
        }
    }
    acc
}

/// Sum of table lookups `sum_j table[j*256 + codes[j]]` (8-bit PQ / paired 4-bit PQ ADC).
pub fn lookup_sum_256(table: &[f32], codes: &[u8]) -> f32 {
    let mut acc = 0.0f32;
    for (row, &c) in table.chunks_exact(256).zip(codes) {
        acc += row[c as usize];
    }
    acc
}
