//! The `sq8vector` value with no Postgres in it: per-vector 8-bit scalar quantization,
//! distances on the codes, and the binary wire format.
//!
//! A vector `v` is stored as `offset = min(v)`, `scale = (max(v) - min(v)) / 255` and
//! one byte per element, `code = round((v - offset) / scale)`. It decodes to
//! `offset + scale * code`, so every element is within half a quantization step
//! (`scale / 2`) of the original, up to float4 rounding of the decoded value.
//!
//! Distances never decode to floats: with `a = oa + sa·ca` and `b = ob + sb·cb`,
//! `a·b = d·oa·ob + oa·sb·Σcb + ob·sa·Σca + sa·sb·Σca·cb`, and the squared L2 distance
//! and norms expand the same way, so the only per-element work is the exact integer
//! sums `Σc`, `Σc²` and `Σca·cb` (the SIMD `dot_u8` kernel). The expansion is evaluated
//! in f64 from exact integers, so a vector's distance to itself is exactly 0.

use crate::distance;
use crate::types::binary::{check_framing, BinaryError};

/// Bytes of the binary header: `u16 dims`, `u16 unused`, `f32 offset`, `f32 scale`.
pub const SQ8_BINARY_HEADER_BYTES: usize = 12;

/// A borrowed sq8vector: offset, scale and one code per dimension.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sq8Ref<'a> {
    /// Value of code 0 (the smallest element).
    pub offset: f32,
    /// Value step between consecutive codes (0 when all elements are equal).
    pub scale: f32,
    /// One code per dimension.
    pub codes: &'a [u8],
}

/// An owned sq8vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sq8Vector {
    /// Value of code 0.
    pub offset: f32,
    /// Value step between consecutive codes.
    pub scale: f32,
    /// One code per dimension.
    pub codes: Vec<u8>,
}

impl Sq8Vector {
    /// Quantizes finite elements: offset = min, scale = range / 255, codes rounded to nearest.
    pub fn encode(values: &[f32]) -> Self {
        let (min, max) = values
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(*v), hi.max(*v))
            });
        if values.is_empty() {
            return Self {
                offset: 0.0,
                scale: 0.0,
                codes: Vec::new(),
            };
        }
        let scale = ((max as f64 - min as f64) / 255.0) as f32;
        let codes = if scale > 0.0 {
            let (offset, step) = (min as f64, scale as f64);
            values
                .iter()
                .map(|v| ((*v as f64 - offset) / step).round().clamp(0.0, 255.0) as u8)
                .collect()
        } else {
            vec![0; values.len()]
        };
        Self {
            offset: min,
            scale,
            codes,
        }
    }

    /// Borrows this vector.
    pub fn as_ref(&self) -> Sq8Ref<'_> {
        Sq8Ref {
            offset: self.offset,
            scale: self.scale,
            codes: &self.codes,
        }
    }
}

impl Sq8Ref<'_> {
    /// Number of dimensions.
    pub fn dims(&self) -> usize {
        self.codes.len()
    }

    /// An owned copy.
    pub fn to_vector(&self) -> Sq8Vector {
        Sq8Vector {
            offset: self.offset,
            scale: self.scale,
            codes: self.codes.to_vec(),
        }
    }

    /// The value a code stands for (computed in f64, rounded once to float4).
    #[inline]
    pub fn value(&self, code: u8) -> f32 {
        (self.offset as f64 + self.scale as f64 * code as f64)
            .clamp(f32::MIN as f64, f32::MAX as f64) as f32
    }

    /// Decodes every element into float4.
    pub fn decode(&self) -> Vec<f32> {
        let table = self.value_table();
        self.codes.iter().map(|c| table[*c as usize]).collect()
    }

    /// The 256 values the codes stand for.
    fn value_table(&self) -> [f32; 256] {
        std::array::from_fn(|c| self.value(c as u8))
    }

    /// Exact `(Σc, Σc²)` of the codes.
    fn code_sums(&self) -> (f64, f64) {
        let squares = distance::dot_u8(self.codes, self.codes);
        (code_sum(*self), squares as f64)
    }

    /// Squared Euclidean norm, from the codes.
    pub fn norm_squared(&self) -> f64 {
        let (sum, squares) = self.code_sums();
        let (o, s, d) = (self.offset as f64, self.scale as f64, self.dims() as f64);
        (d * o * o + 2.0 * o * s * sum + s * s * squares).max(0.0)
    }
}

/// `Σc` of a vector's codes, exact.
fn code_sum(v: Sq8Ref) -> f64 {
    v.codes.iter().map(|c| *c as u64).sum::<u64>() as f64
}

/// `a·b` from the code sums `Σca`, `Σcb` and the integer dot product `Σca·cb`.
fn dot_from_sums(a: Sq8Ref, b: Sq8Ref, sum_a: f64, sum_b: f64, cross: f64) -> f64 {
    let (oa, sa, ob, sb) = (
        a.offset as f64,
        a.scale as f64,
        b.offset as f64,
        b.scale as f64,
    );
    a.dims() as f64 * oa * ob + oa * sb * sum_b + ob * sa * sum_a + sa * sb * cross
}

/// The per-pair terms cosine is built from: `(a·b, |a|², |b|²)`, from the codes.
pub fn dot_and_norms(a: Sq8Ref, b: Sq8Ref) -> (f64, f64, f64) {
    let cross = distance::dot_u8(a.codes, b.codes) as f64;
    let dot = dot_from_sums(a, b, code_sum(a), code_sum(b), cross);
    (dot, a.norm_squared(), b.norm_squared())
}

/// Inner product, from the codes (dimensions must match).
pub fn dot(a: Sq8Ref, b: Sq8Ref) -> f64 {
    let cross = distance::dot_u8(a.codes, b.codes) as f64;
    dot_from_sums(a, b, code_sum(a), code_sum(b), cross)
}

/// Squared Euclidean distance, from the codes: `|a|² + |b|² - 2 a·b`, never negative.
///
/// Written as `Σ(Δo + sa·ca - sb·cb)²` expanded, so equal vectors give exactly 0.
pub fn l2_squared(a: Sq8Ref, b: Sq8Ref) -> f64 {
    let (sum_a, sq_a) = a.code_sums();
    let (sum_b, sq_b) = b.code_sums();
    let cross = distance::dot_u8(a.codes, b.codes) as f64;
    let (sa, sb) = (a.scale as f64, b.scale as f64);
    let delta = a.offset as f64 - b.offset as f64;
    let d = a.dims() as f64;
    let total = d * delta * delta
        + sa * sa * sq_a
        + sb * sb * sq_b
        + 2.0 * delta * (sa * sum_a - sb * sum_b)
        - 2.0 * sa * sb * cross;
    total.max(0.0)
}

/// Cosine distance `1 - cos(a, b)` clamped to [0, 2]; None when either vector is zero.
pub fn cosine_distance(a: Sq8Ref, b: Sq8Ref) -> Option<f64> {
    let (dot, na, nb) = dot_and_norms(a, b);
    if na <= 0.0 || nb <= 0.0 {
        return None;
    }
    Some((1.0 - (dot / (na * nb).sqrt()).clamp(-1.0, 1.0)).clamp(0.0, 2.0))
}

/// Manhattan (L1) distance: the one metric without an integer expansion, so it goes
/// through two 256-entry value tables instead of decoding the vectors.
pub fn l1(a: Sq8Ref, b: Sq8Ref) -> f64 {
    let (ta, tb) = (a.value_table(), b.value_table());
    a.codes
        .iter()
        .zip(b.codes)
        .map(|(x, y)| (ta[*x as usize] as f64 - tb[*y as usize] as f64).abs())
        .sum()
}

/// Encodes the binary wire form (network byte order, like `qvector`'s).
pub fn encode_sq8_binary(v: Sq8Ref) -> Vec<u8> {
    let mut out = Vec::with_capacity(SQ8_BINARY_HEADER_BYTES + v.dims());
    out.extend_from_slice(&(v.dims() as u16).to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&v.offset.to_bits().to_be_bytes());
    out.extend_from_slice(&v.scale.to_bits().to_be_bytes());
    out.extend_from_slice(v.codes);
    out
}

/// Decodes the binary wire form, checking lengths, offset and scale.
pub fn decode_sq8_binary(bytes: &[u8]) -> Result<Sq8Vector, BinaryError> {
    let header = SQ8_BINARY_HEADER_BYTES;
    check_framing(bytes, header, 1)?;
    let f32_at = |i: usize| {
        f32::from_bits(u32::from_be_bytes([
            bytes[i],
            bytes[i + 1],
            bytes[i + 2],
            bytes[i + 3],
        ]))
    };
    let (offset, scale) = (f32_at(4), f32_at(8));
    if offset.is_nan() || scale.is_nan() {
        return Err(BinaryError::NotANumber);
    }
    if offset.is_infinite() || scale.is_infinite() {
        return Err(BinaryError::Infinite);
    }
    if scale < 0.0 {
        return Err(BinaryError::NegativeScale);
    }
    // (Encoding may round the top value a hair above f32::MAX; decoding clamps it.)
    if offset as f64 + 255.0 * scale as f64 > f32::MAX as f64 * (1.0 + 1e-6) {
        return Err(BinaryError::Overflow);
    }
    Ok(Sq8Vector {
        offset,
        // -0.0 and 0.0 are the same step; store the canonical one.
        scale: scale.max(0.0),
        codes: bytes[header..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Seeded vectors with varied ranges, signs and magnitudes.
    fn random_vectors(n: usize, dims: usize) -> Vec<Vec<f32>> {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        (0..n)
            .map(|i| {
                let magnitude = 10f32.powi((i % 9) as i32 - 4);
                let shift = rng.gen_range(-2.0..2.0f32) * magnitude;
                (0..dims)
                    .map(|_| rng.gen_range(-1.0..1.0f32) * magnitude + shift)
                    .collect()
            })
            .collect()
    }

    #[test]
    fn round_trip_error_is_at_most_half_a_step() {
        for v in random_vectors(500, 97) {
            let q = Sq8Vector::encode(&v);
            let decoded = q.as_ref().decode();
            let (min, max) = v
                .iter()
                .fold((f32::MAX, f32::MIN), |(a, b), x| (a.min(*x), b.max(*x)));
            let step = (max as f64 - min as f64) / 255.0;
            // Half a step, plus one rounding of the decoded value to float4.
            let slack = max.abs().max(min.abs()) as f64 * f32::EPSILON as f64;
            for (x, y) in v.iter().zip(&decoded) {
                let err = (*x as f64 - *y as f64).abs();
                assert!(
                    err <= step / 2.0 + slack,
                    "{x} -> {y}: {err} > {}",
                    step / 2.0
                );
            }
            assert_eq!(decoded.iter().cloned().fold(f32::MAX, f32::min), min);
        }
    }

    #[test]
    fn constant_and_extreme_vectors() {
        let q = Sq8Vector::encode(&[3.5; 4]);
        assert_eq!((q.offset, q.scale), (3.5, 0.0));
        assert_eq!(q.as_ref().decode(), vec![3.5; 4]);
        let q = Sq8Vector::encode(&[-f32::MAX, f32::MAX]);
        let decoded = q.as_ref().decode();
        assert_eq!(decoded[0], -f32::MAX);
        assert!(decoded[1].is_finite() && decoded[1] > 0.99 * f32::MAX);
    }

    #[test]
    fn encoding_decoded_values_is_stable() {
        for v in random_vectors(200, 33) {
            let once = Sq8Vector::encode(&v);
            let twice = Sq8Vector::encode(&once.as_ref().decode());
            assert_eq!(once.codes, twice.codes);
            assert_eq!(once.as_ref().decode(), twice.as_ref().decode());
        }
    }

    #[test]
    fn distances_on_codes_match_decoded_values() {
        let vs = random_vectors(60, 300);
        for pair in vs.chunks(2) {
            let (a, b) = (Sq8Vector::encode(&pair[0]), Sq8Vector::encode(&pair[1]));
            let (x, y) = (a.as_ref().decode(), b.as_ref().decode());
            let (x, y): (Vec<f64>, Vec<f64>) = (
                x.iter().map(|v| *v as f64).collect(),
                y.iter().map(|v| *v as f64).collect(),
            );
            let dot_ref: f64 = x.iter().zip(&y).map(|(p, q)| p * q).sum();
            let l2_ref: f64 = x.iter().zip(&y).map(|(p, q)| (p - q) * (p - q)).sum();
            let l1_ref: f64 = x.iter().zip(&y).map(|(p, q)| (p - q).abs()).sum();
            let na: f64 = x.iter().map(|p| p * p).sum();
            let nb: f64 = y.iter().map(|p| p * p).sum();
            let cos_ref = 1.0 - dot_ref / (na.sqrt() * nb.sqrt());
            let scale = na.max(nb);
            let close = |got: f64, want: f64, what: &str| {
                assert!(
                    (got - want).abs() <= 1e-6 * scale.max(1e-30),
                    "{what}: {got} vs {want}"
                );
            };
            close(dot(a.as_ref(), b.as_ref()), dot_ref, "dot");
            close(l2_squared(a.as_ref(), b.as_ref()), l2_ref, "l2");
            close(a.as_ref().norm_squared(), na, "norm");
            assert!((l1(a.as_ref(), b.as_ref()) - l1_ref).abs() <= 1e-9 * l1_ref.max(1e-30));
            let cos = cosine_distance(a.as_ref(), b.as_ref()).unwrap();
            assert!((cos - cos_ref).abs() < 1e-6, "cos {cos} vs {cos_ref}");
        }
    }

    #[test]
    fn exact_values_on_small_vectors() {
        // [0, 255] has scale 1, so codes are the values themselves.
        let a = Sq8Vector::encode(&[0.0, 255.0, 3.0]);
        let b = Sq8Vector::encode(&[0.0, 255.0, 7.0]);
        assert_eq!(
            (a.offset, a.scale, a.codes.clone()),
            (0.0, 1.0, vec![0, 255, 3])
        );
        assert_eq!(l2_squared(a.as_ref(), b.as_ref()), 16.0);
        assert_eq!(dot(a.as_ref(), b.as_ref()), 255.0 * 255.0 + 21.0);
        assert_eq!(l1(a.as_ref(), b.as_ref()), 4.0);
        assert_eq!(l2_squared(a.as_ref(), a.as_ref()), 0.0);
        let zero = Sq8Vector::encode(&[0.0, 0.0, 0.0]);
        assert_eq!(cosine_distance(a.as_ref(), zero.as_ref()), None);
    }

    #[test]
    fn binary_round_trips_and_rejects_bad_input() {
        let v = Sq8Vector::encode(&[1.0, -2.5, 3e-3, 40.0]);
        let bytes = encode_sq8_binary(v.as_ref());
        assert_eq!(decode_sq8_binary(&bytes).unwrap(), v);
        for len in 0..bytes.len() {
            assert!(
                matches!(
                    decode_sq8_binary(&bytes[..len]),
                    Err(BinaryError::Truncated { .. })
                ),
                "len {len}"
            );
        }
        let with = |at: usize, word: [u8; 4]| {
            let mut b = bytes.clone();
            b[at..at + 4].copy_from_slice(&word);
            decode_sq8_binary(&b)
        };
        assert_eq!(with(0, [0, 0, 0, 0]), Err(BinaryError::NoDimensions));
        assert_eq!(
            with(0, [0xff, 0xff, 0, 0]),
            Err(BinaryError::TooManyDimensions(65535))
        );
        assert_eq!(with(0, [0, 4, 0, 9]), Err(BinaryError::UnusedNotZero(9)));
        assert_eq!(
            with(4, f32::NAN.to_bits().to_be_bytes()),
            Err(BinaryError::NotANumber)
        );
        assert_eq!(
            with(8, f32::INFINITY.to_bits().to_be_bytes()),
            Err(BinaryError::Infinite)
        );
        assert_eq!(
            with(8, (-1.0f32).to_bits().to_be_bytes()),
            Err(BinaryError::NegativeScale)
        );
        assert_eq!(
            with(8, (f32::MAX / 2.0).to_bits().to_be_bytes()),
            Err(BinaryError::Overflow)
        );
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(decode_sq8_binary(&long), Err(BinaryError::TrailingBytes(1)));
    }
}
