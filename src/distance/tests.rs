//! Property tests: every SIMD kernel set equals the scalar reference (floats within a
//! tight relative tolerance, integer kernels exactly) for lengths 0..=1100.

use super::*;
use proptest::prelude::*;

/// Float vector of the given length with values in [-2, 2].
fn vec_f32(n: usize) -> impl Strategy<Value = Vec<f32>> {
    proptest::collection::vec(-2.0f32..2.0, n)
}

/// Two float vectors of the same random length in 0..=1100.
fn pair() -> impl Strategy<Value = (Vec<f32>, Vec<f32>)> {
    (0usize..=1100).prop_flat_map(|n| (vec_f32(n), vec_f32(n)))
}

/// Two byte vectors of the same random length in 0..=1100.
fn bytes_pair() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    (0usize..=1100).prop_flat_map(|n| {
        (
            proptest::collection::vec(any::<u8>(), n),
            proptest::collection::vec(any::<u8>(), n),
        )
    })
}

/// Asserts `got` equals `want` within a relative tolerance scaled by `magnitude`.
fn close(got: f32, want: f32, magnitude: f32, what: &str, set: &str) {
    let tol = 2e-5 * magnitude.max(1.0);
    assert!(
        (got - want).abs() <= tol,
        "{what} [{set}]: got {got}, scalar {want}, tol {tol}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Test: f32 kernels match scalar.
    #[test]
    fn f32_kernels_match_scalar((a, b) in pair()) {
        let mag_dot: f32 = a.iter().zip(&b).map(|(x, y)| (x * y).abs()).sum();
        for k in available_kernel_sets() {
            close((k.l2_squared)(&a, &b), scalar::l2_squared(&a, &b), scalar::l2_squared(&a, &b), "l2", k.name);
            close((k.dot)(&a, &b), scalar::dot(&a, &b), mag_dot, "dot", k.name);
            close((k.l1)(&a, &b), scalar::l1(&a, &b), scalar::l1(&a, &b), "l1", k.name);
            close((k.dot)(&a, &a), scalar::norm_squared(&a), scalar::norm_squared(&a), "norm", k.name);
        }
    }

    /// Test: f16 kernels match scalar.
    #[test]
    fn f16_kernels_match_scalar((a, b) in pair()) {
        let h: Vec<f16> = b.iter().map(|&x| f16::from_f32(x)).collect();
        let mag_dot: f32 = a.iter().zip(&b).map(|(x, y)| (x * y).abs()).sum();
        for k in available_kernel_sets() {
            let want = scalar::l2_squared_f16(&a, &h);
            close((k.l2_squared_f16)(&a, &h), want, want, "l2_f16", k.name);
            close((k.dot_f16)(&a, &h), scalar::dot_f16(&a, &h), mag_dot, "dot_f16", k.name);
        }
    }

    /// Test: integer kernels exact.
    #[test]
    fn integer_kernels_exact((a, b) in bytes_pair()) {
        for k in available_kernel_sets() {
            prop_assert_eq!((k.hamming)(&a, &b), scalar::hamming(&a, &b), "hamming {}", k.name);
            prop_assert_eq!((k.dot_u8)(&a, &b), scalar::dot_u8(&a, &b), "dot_u8 {}", k.name);
            prop_assert_eq!((k.l2_squared_u8)(&a, &b), scalar::l2_squared_u8(&a, &b), "l2_u8 {}", k.name);
        }
    }

    /// Test: code kernels match scalar.
    #[test]
    fn code_kernels_match_scalar((d, s) in pair(), seed in any::<u64>()) {
        let n = d.len();
        let mut state = seed | 1;
        let mut next = || { state ^= state << 13; state ^= state >> 7; state ^= state << 17; state as u8 };
        let codes: Vec<u8> = (0..n).map(|_| next()).collect();
        let s: Vec<f32> = s.iter().map(|x| x.abs() * 0.01).collect();
        for k in available_kernel_sets() {
            for (bits, l2f, dotf) in [(8u32, k.sq8_l2, k.sq8_dot), (4, k.sq4_l2, k.sq4_dot), (2, k.sq2_l2, k.sq2_dot)] {
                let c = &codes[..n.div_ceil(8 / bits as usize)];
                let want = scalar::affine_l2(bits, &d, &s, c);
                close(l2f(&d, &s, c), want, want, "affine_l2", k.name);
                let mag: f32 = (0..n).map(|i| (d[i] * scalar::code_at(c, bits, i) as f32).abs()).sum();
                close(dotf(&d, c), scalar::affine_dot(bits, &d, c), mag, "affine_dot", k.name);
            }
            let bits = &codes[..n.div_ceil(8)];
            let mag: f32 = d.iter().map(|x| x.abs()).sum();
            close((k.masked_sum)(&d, bits), scalar::masked_sum(&d, bits), mag, "masked_sum", k.name);
        }
    }
}

/// Test: mismatched lengths use common prefix.
#[test]
fn mismatched_lengths_use_common_prefix() {
    let a = vec![1.0f32; 37];
    let b = vec![2.0f32; 20];
    for k in available_kernel_sets() {
        assert_eq!((k.l2_squared)(&a, &b), 20.0, "{}", k.name);
        assert_eq!((k.hamming)(&[0xFF; 70], &[0; 3]), 24, "{}", k.name);
        assert_eq!((k.sq4_l2)(&a, &a, &[0u8; 5]), 10.0, "{}", k.name);
    }
}

/// Test: metric distance conventions.
#[test]
fn metric_distance_conventions() {
    let a = [1.0f32, 0.0, 0.0];
    let b = [0.0f32, 2.0, 0.0];
    assert_eq!(metric_distance(Metric::L2, &a, &b), 5.0);
    assert_eq!(metric_distance(Metric::InnerProduct, &a, &a), -1.0);
    assert!((metric_distance(Metric::Cosine, &a, &b) - 1.0).abs() < 1e-6);
    assert!((cosine_distance(&a, &a)).abs() < 1e-6);
    assert!(cosine_distance(&a, &[0.0; 3]).is_nan());
    assert!(!cpu_features().is_empty());
}

/// Issue 11.7: finite inputs near `f32::MAX` give the right distances (the f64
/// fallback), +Infinity only when the true value is beyond f32; the float8 versions
/// are exact.
#[test]
fn extreme_values_do_not_overflow() {
    let big = 3e38f32;
    let wide = big as f64;
    // Partial sums overflow f32 (the plain kernel gives a non-finite value), the result fits.
    let mut x = vec![big; 16];
    x.extend(vec![-big; 15]);
    let ones = vec![1.0f32; x.len()];
    assert!(!scalar::dot(&x, &ones).is_finite());
    assert_eq!(dot(&x, &ones), big);
    assert_eq!(dot_f64(&x, &ones), wide);
    // True values beyond f32: +/-Infinity in f32, exact in f64.
    assert_eq!(l2_squared(&[big], &[-big]), f32::INFINITY);
    assert_eq!(l2_distance_f64(&[big], &[-big]), 2.0 * wide);
    assert_eq!(l2_squared_f64(&[big], &[0.0]), wide * wide);
    assert_eq!(dot(&[big, big], &[big, 1.0]), f32::INFINITY);
    assert_eq!(dot_f64(&[big, big], &[big, 1.0]), wide * wide + wide);
    assert_eq!(l1(&[big, -big], &[-big, big]), f32::INFINITY);
    assert_eq!(l1_f64(&[big, -big], &[-big, big]), 4.0 * wide);
    assert_eq!(norm_squared(&[big]), f32::INFINITY);
    // A difference that fits f32 although its square does not.
    assert_eq!(l2_distance_f64(&[big], &[1e38]), wide - 1e38f32 as f64);
    // Metric distances stay ordered: a huge row is farther than every ordinary one.
    assert!(metric_distance(Metric::L2, &[1.0, 2.0], &[1e30, 0.0]) > 1e30);
    assert_eq!(metric_distance(Metric::L1, &[1.0, 2.0], &[4.0, 6.0]), 7.0);
}

/// Issue 11.7: cosine norms neither overflow (a 1.9e19 component squares past f32)
/// nor underflow (1e-25 squares to 0 in f32), so such vectors are not taken for zero.
#[test]
fn cosine_of_huge_and_tiny_vectors() {
    for scale in [2e19f32, 3e38, 1e-25, 1e-40] {
        let a = [scale, 0.0, scale];
        assert!(
            cosine_distance(&a, &[1.0, 0.0, 1.0]).abs() < 1e-6,
            "{scale}"
        );
        assert!(
            (cosine_distance(&a, &[0.0, 1.0, 0.0]) - 1.0).abs() < 1e-6,
            "{scale}"
        );
        let mut v = a;
        assert!(normalize(&mut v), "{scale}");
        let h = std::f32::consts::FRAC_1_SQRT_2;
        assert!(
            (v[0] - h).abs() < 1e-6 && v[1] == 0.0 && (v[2] - h).abs() < 1e-6,
            "{scale}: {v:?}"
        );
    }
    let mut zero = [0.0f32; 3];
    assert!(!normalize(&mut zero));
    assert!(cosine_distance(&[0.0; 3], &[1.0, 0.0, 0.0]).is_nan());
    // Ordinary vectors keep the f32 path.
    let mut v = [3.0f32, 4.0];
    assert!(normalize(&mut v));
    assert_eq!(v, [0.6, 0.8]);
}

#[test]
fn f32_view_reads_aligned_code_bytes_in_place() {
    let values = [1.5f32, -2.25, 0.0, f32::MAX, f32::MIN_POSITIVE];
    let code: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    // Place the code at a 4-byte aligned address inside a larger buffer.
    let mut buffer = vec![0u8; code.len() + 8];
    let start = (4 - buffer.as_ptr() as usize % 4) % 4;
    buffer[start..start + code.len()].copy_from_slice(&code);
    let aligned = &buffer[start..start + code.len()];
    assert_eq!(f32_view(aligned), Some(&values[..]));
    // Misaligned, or not a whole number of floats: decode instead.
    assert_eq!(f32_view(&buffer[start + 1..start + 1 + 16]), None);
    assert_eq!(f32_view(&aligned[..6]), None);
    assert_eq!(f32_view(&[]), Some(&[][..]));
}
