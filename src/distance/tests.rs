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
