//! x86_64 SIMD kernels: AVX2+FMA(+F16C) and AVX-512 (F/BW/VL, optional VPOPCNTDQ).
//!
//! Design: every kernel is an `unsafe fn` compiled with `#[target_feature]` for its
//! instruction set, wrapped by a safe `fn` that is only ever placed in a dispatch
//! table (see `super::Kernels`) after the required features were detected at run
//! time. That detection is the safety argument of every wrapper.
//!
//! Inputs of different lengths are handled by working on the common prefix, so the
//! kernels never read out of bounds even when callers pass mismatched slices.
//! AVX-512 kernels finish with masked loads (no scalar tail); AVX2 kernels finish
//! with a scalar tail using the same formula as `super::scalar`.
//!
//! Packed code layouts (shared with `super::scalar` and `crate::quant`):
//! 8-bit: one byte per dimension; 4-bit: dimension `i` in byte `i/2`, low nibble
//! for even `i`; 2-bit: dimension `i` in byte `i/4` at bit `2*(i%4)`; 1-bit:
//! dimension `i` in byte `i/8` at bit `i%8`.

use super::scalar;
use half::f16;
use std::arch::x86_64::*;

/// Common length of two slices.
#[inline(always)]
fn common(a: usize, b: usize) -> usize {
    a.min(b)
}

pub mod avx2 {
    //! AVX2 + FMA (+ F16C for the f16 kernels) implementations.
    use super::*;

    /// Horizontal sum of an `__m256`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn hsum(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps(v, 1);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0x55));
        _mm_cvtss_f32(s)
    }

    /// Horizontal sum of the i32 lanes of an `__m256i`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn hsum_i32(v: __m256i) -> u32 {
        let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
        _mm_cvtsi128_si32(s) as u32
    }

    /// Squared L2 distance.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
        let n = common(a.len(), b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = _mm256_setzero_ps();
        let mut acc1 = _mm256_setzero_ps();
        let mut i = 0;
        // SAFETY: every load reads 8 floats at index i with i + 8 <= n (or i + 16 <= n).
        unsafe {
            while i + 16 <= n {
                let d0 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
                let d1 = _mm256_sub_ps(
                    _mm256_loadu_ps(pa.add(i + 8)),
                    _mm256_loadu_ps(pb.add(i + 8)),
                );
                acc0 = _mm256_fmadd_ps(d0, d0, acc0);
                acc1 = _mm256_fmadd_ps(d1, d1, acc1);
                i += 16;
            }
            if i + 8 <= n {
                let d0 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
                acc0 = _mm256_fmadd_ps(d0, d0, acc0);
                i += 8;
            }
        }
        hsum(_mm256_add_ps(acc0, acc1)) + scalar::l2_squared(&a[i..n], &b[i..n])
    }

    /// Inner product.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = common(a.len(), b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = _mm256_setzero_ps();
        let mut acc1 = _mm256_setzero_ps();
        let mut i = 0;
        // SAFETY: every load reads 8 floats at index i with i + 8 <= n.
        unsafe {
            while i + 16 <= n {
                acc0 =
                    _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
                acc1 = _mm256_fmadd_ps(
                    _mm256_loadu_ps(pa.add(i + 8)),
                    _mm256_loadu_ps(pb.add(i + 8)),
                    acc1,
                );
                i += 16;
            }
            if i + 8 <= n {
                acc0 =
                    _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
                i += 8;
            }
        }
        hsum(_mm256_add_ps(acc0, acc1)) + scalar::dot(&a[i..n], &b[i..n])
    }

    /// L1 distance.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn l1(a: &[f32], b: &[f32]) -> f32 {
        let n = common(a.len(), b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let sign = _mm256_set1_ps(-0.0);
        let mut acc = _mm256_setzero_ps();
        let mut i = 0;
        // SAFETY: every load reads 8 floats at index i with i + 8 <= n.
        unsafe {
            while i + 8 <= n {
                let d = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
                acc = _mm256_add_ps(acc, _mm256_andnot_ps(sign, d));
                i += 8;
            }
        }
        hsum(acc) + scalar::l1(&a[i..n], &b[i..n])
    }

    /// Squared L2 distance between an f32 query and f16 values.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn l2_squared_f16(q: &[f32], c: &[f16]) -> f32 {
        let n = common(q.len(), c.len());
        let (pq, pc) = (q.as_ptr(), c.as_ptr() as *const u16);
        let mut acc = _mm256_setzero_ps();
        let mut i = 0;
        // SAFETY: reads 8 f32 and 8 f16 (16 bytes) at index i with i + 8 <= n.
        unsafe {
            while i + 8 <= n {
                let h = _mm_loadu_si128(pc.add(i) as *const __m128i);
                let d = _mm256_sub_ps(_mm256_loadu_ps(pq.add(i)), _mm256_cvtph_ps(h));
                acc = _mm256_fmadd_ps(d, d, acc);
                i += 8;
            }
        }
        hsum(acc) + scalar::l2_squared_f16(&q[i..n], &c[i..n])
    }

    /// Inner product between an f32 query and f16 values.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn dot_f16(q: &[f32], c: &[f16]) -> f32 {
        let n = common(q.len(), c.len());
        let (pq, pc) = (q.as_ptr(), c.as_ptr() as *const u16);
        let mut acc = _mm256_setzero_ps();
        let mut i = 0;
        // SAFETY: reads 8 f32 and 8 f16 (16 bytes) at index i with i + 8 <= n.
        unsafe {
            while i + 8 <= n {
                let h = _mm_loadu_si128(pc.add(i) as *const __m128i);
                acc = _mm256_fmadd_ps(_mm256_loadu_ps(pq.add(i)), _mm256_cvtph_ps(h), acc);
                i += 8;
            }
        }
        hsum(acc) + scalar::dot_f16(&q[i..n], &c[i..n])
    }

    /// Hamming distance using the scalar POPCNT instruction on u64 words.
    #[target_feature(enable = "popcnt")]
    pub unsafe fn hamming(a: &[u8], b: &[u8]) -> u32 {
        scalar::hamming(a, b)
    }

    /// Integer dot product of u8 vectors.
    #[target_feature(enable = "avx2")]
    pub unsafe fn dot_u8(a: &[u8], b: &[u8]) -> u32 {
        let n = common(a.len(), b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = _mm256_setzero_si256();
        let mut i = 0;
        // SAFETY: reads 16 bytes at index i with i + 16 <= n.
        unsafe {
            while i + 16 <= n {
                let x = _mm256_cvtepu8_epi16(_mm_loadu_si128(pa.add(i) as *const __m128i));
                let y = _mm256_cvtepu8_epi16(_mm_loadu_si128(pb.add(i) as *const __m128i));
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(x, y));
                i += 16;
            }
        }
        hsum_i32(acc).wrapping_add(scalar::dot_u8(&a[i..n], &b[i..n]))
    }

    /// Integer squared L2 distance of u8 vectors.
    #[target_feature(enable = "avx2")]
    pub unsafe fn l2_squared_u8(a: &[u8], b: &[u8]) -> u32 {
        let n = common(a.len(), b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = _mm256_setzero_si256();
        let mut i = 0;
        // SAFETY: reads 16 bytes at index i with i + 16 <= n.
        unsafe {
            while i + 16 <= n {
                let x = _mm256_cvtepu8_epi16(_mm_loadu_si128(pa.add(i) as *const __m128i));
                let y = _mm256_cvtepu8_epi16(_mm_loadu_si128(pb.add(i) as *const __m128i));
                let d = _mm256_sub_epi16(x, y);
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(d, d));
                i += 16;
            }
        }
        hsum_i32(acc).wrapping_add(scalar::l2_squared_u8(&a[i..n], &b[i..n]))
    }

    /// Accumulates `(d - s*c)^2` for 16 codes held in the bytes of `c16`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn acc_l2_16(acc: __m256, d: *const f32, s: *const f32, c16: __m128i) -> __m256 {
        let c0 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(c16));
        let c1 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(c16, 8)));
        // SAFETY: the caller guarantees 16 readable floats at `d` and `s`.
        unsafe {
            let e0 = _mm256_fnmadd_ps(_mm256_loadu_ps(s), c0, _mm256_loadu_ps(d));
            let e1 = _mm256_fnmadd_ps(_mm256_loadu_ps(s.add(8)), c1, _mm256_loadu_ps(d.add(8)));
            _mm256_fmadd_ps(e1, e1, _mm256_fmadd_ps(e0, e0, acc))
        }
    }

    /// Accumulates `w * c` for 16 codes held in the bytes of `c16`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn acc_dot_16(acc: __m256, w: *const f32, c16: __m128i) -> __m256 {
        let c0 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(c16));
        let c1 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(c16, 8)));
        // SAFETY: the caller guarantees 16 readable floats at `w`.
        unsafe {
            let a = _mm256_fmadd_ps(_mm256_loadu_ps(w), c0, acc);
            _mm256_fmadd_ps(_mm256_loadu_ps(w.add(8)), c1, a)
        }
    }

    /// Splits 16 bytes of 4-bit codes into two vectors of 16 code values in dimension order.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn unpack4(b: __m128i) -> (__m128i, __m128i) {
        let m = _mm_set1_epi8(0x0F);
        let lo = _mm_and_si128(b, m);
        let hi = _mm_and_si128(_mm_srli_epi16(b, 4), m);
        (_mm_unpacklo_epi8(lo, hi), _mm_unpackhi_epi8(lo, hi))
    }

    /// Splits 16 bytes of 2-bit codes into four vectors of 16 code values in dimension order.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn unpack2(b: __m128i) -> [__m128i; 4] {
        let m = _mm_set1_epi8(0x03);
        let a0 = _mm_and_si128(b, m);
        let a1 = _mm_and_si128(_mm_srli_epi16(b, 2), m);
        let a2 = _mm_and_si128(_mm_srli_epi16(b, 4), m);
        let a3 = _mm_and_si128(_mm_srli_epi16(b, 6), m);
        let x01l = _mm_unpacklo_epi8(a0, a1);
        let x23l = _mm_unpacklo_epi8(a2, a3);
        let x01h = _mm_unpackhi_epi8(a0, a1);
        let x23h = _mm_unpackhi_epi8(a2, a3);
        [
            _mm_unpacklo_epi16(x01l, x23l),
            _mm_unpackhi_epi16(x01l, x23l),
            _mm_unpacklo_epi16(x01h, x23h),
            _mm_unpackhi_epi16(x01h, x23h),
        ]
    }

    /// Affine squared L2 over 8-bit codes.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn sq8_l2(d: &[f32], s: &[f32], codes: &[u8]) -> f32 {
        let n = d.len().min(s.len()).min(codes.len());
        let mut acc = _mm256_setzero_ps();
        let mut i = 0;
        // SAFETY: reads 16 codes and 16 floats of d and s at i with i + 16 <= n.
        unsafe {
            while i + 16 <= n {
                let c = _mm_loadu_si128(codes.as_ptr().add(i) as *const __m128i);
                acc = acc_l2_16(acc, d.as_ptr().add(i), s.as_ptr().add(i), c);
                i += 16;
            }
        }
        hsum(acc) + scalar::sq8_l2(&d[i..n], &s[i..n], &codes[i..n])
    }

    /// Affine dot over 8-bit codes.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn sq8_dot(w: &[f32], codes: &[u8]) -> f32 {
        let n = w.len().min(codes.len());
        let mut acc = _mm256_setzero_ps();
        let mut i = 0;
        // SAFETY: reads 16 codes and 16 floats at i with i + 16 <= n.
        unsafe {
            while i + 16 <= n {
                let c = _mm_loadu_si128(codes.as_ptr().add(i) as *const __m128i);
                acc = acc_dot_16(acc, w.as_ptr().add(i), c);
                i += 16;
            }
        }
        hsum(acc) + scalar::sq8_dot(&w[i..n], &codes[i..n])
    }

    /// Affine squared L2 over 4-bit codes.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn sq4_l2(d: &[f32], s: &[f32], codes: &[u8]) -> f32 {
        let n = d.len().min(s.len()).min(codes.len() * 2);
        let mut acc = _mm256_setzero_ps();
        let mut i = 0;
        // SAFETY: 32 dimensions use 16 code bytes at i/2 and 32 floats at i, i + 32 <= n.
        unsafe {
            while i + 32 <= n {
                let b = _mm_loadu_si128(codes.as_ptr().add(i / 2) as *const __m128i);
                let (c0, c1) = unpack4(b);
                acc = acc_l2_16(acc, d.as_ptr().add(i), s.as_ptr().add(i), c0);
                acc = acc_l2_16(acc, d.as_ptr().add(i + 16), s.as_ptr().add(i + 16), c1);
                i += 32;
            }
        }
        hsum(acc) + scalar::sq4_l2(&d[i..n], &s[i..n], &codes[i / 2..])
    }

    /// Affine dot over 4-bit codes.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn sq4_dot(w: &[f32], codes: &[u8]) -> f32 {
        let n = w.len().min(codes.len() * 2);
        let mut acc = _mm256_setzero_ps();
        let mut i = 0;
        // SAFETY: 32 dimensions use 16 code bytes at i/2 and 32 floats at i, i + 32 <= n.
        unsafe {
            while i + 32 <= n {
                let b = _mm_loadu_si128(codes.as_ptr().add(i / 2) as *const __m128i);
                let (c0, c1) = unpack4(b);
                acc = acc_dot_16(acc, w.as_ptr().add(i), c0);
                acc = acc_dot_16(acc, w.as_ptr().add(i + 16), c1);
                i += 32;
            }
        }
        hsum(acc) + scalar::sq4_dot(&w[i..n], &codes[i / 2..])
    }

    /// Affine squared L2 over 2-bit codes.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn sq2_l2(d: &[f32], s: &[f32], codes: &[u8]) -> f32 {
        let n = d.len().min(s.len()).min(codes.len() * 4);
        let mut acc = _mm256_setzero_ps();
        let mut i = 0;
        // SAFETY: 64 dimensions use 16 code bytes at i/4 and 64 floats at i, i + 64 <= n.
        unsafe {
            while i + 64 <= n {
                let b = _mm_loadu_si128(codes.as_ptr().add(i / 4) as *const __m128i);
                for (k, c) in unpack2(b).into_iter().enumerate() {
                    let o = i + 16 * k;
                    acc = acc_l2_16(acc, d.as_ptr().add(o), s.as_ptr().add(o), c);
                }
                i += 64;
            }
        }
        hsum(acc) + scalar::sq2_l2(&d[i..n], &s[i..n], &codes[i / 4..])
    }

    /// Affine dot over 2-bit codes.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn sq2_dot(w: &[f32], codes: &[u8]) -> f32 {
        let n = w.len().min(codes.len() * 4);
        let mut acc = _mm256_setzero_ps();
        let mut i = 0;
        // SAFETY: 64 dimensions use 16 code bytes at i/4 and 64 floats at i, i + 64 <= n.
        unsafe {
            while i + 64 <= n {
                let b = _mm_loadu_si128(codes.as_ptr().add(i / 4) as *const __m128i);
                for (k, c) in unpack2(b).into_iter().enumerate() {
                    acc = acc_dot_16(acc, w.as_ptr().add(i + 16 * k), c);
                }
                i += 64;
            }
        }
        hsum(acc) + scalar::sq2_dot(&w[i..n], &codes[i / 4..])
    }

    /// Sum of the weights whose bit is set.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn masked_sum(w: &[f32], bits: &[u8]) -> f32 {
        let n = w.len().min(bits.len() * 8);
        let sel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
        let mut acc = _mm256_setzero_ps();
        let mut i = 0;
        // SAFETY: reads one bit byte at i/8 and 8 floats at i with i + 8 <= n.
        unsafe {
            while i + 8 <= n {
                let byte = _mm256_set1_epi32(*bits.get_unchecked(i / 8) as i32);
                let mask = _mm256_cmpeq_epi32(_mm256_and_si256(byte, sel), sel);
                let v = _mm256_and_ps(
                    _mm256_loadu_ps(w.as_ptr().add(i)),
                    _mm256_castsi256_ps(mask),
                );
                acc = _mm256_add_ps(acc, v);
                i += 8;
            }
        }
        hsum(acc) + scalar::masked_sum(&w[i..n], &bits[i / 8..])
    }
}

pub mod avx512 {
    //! AVX-512 F/BW/VL (+ VPOPCNTDQ for Hamming) implementations with masked tails.
    use super::*;

    /// Mask selecting the first `r` (< 16) lanes.
    #[inline(always)]
    fn tail16(r: usize) -> __mmask16 {
        ((1u32 << r) - 1) as __mmask16
    }

    /// Squared L2 distance.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,fma")]
    pub unsafe fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
        let n = common(a.len(), b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = _mm512_setzero_ps();
        let mut acc1 = _mm512_setzero_ps();
        let mut i = 0;
        // SAFETY: unmasked loads read 16 floats at i with i + 16 <= n; the final masked
        // load only touches the r = n - i < 16 remaining valid elements.
        unsafe {
            while i + 32 <= n {
                let d0 = _mm512_sub_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)));
                let d1 = _mm512_sub_ps(
                    _mm512_loadu_ps(pa.add(i + 16)),
                    _mm512_loadu_ps(pb.add(i + 16)),
                );
                acc0 = _mm512_fmadd_ps(d0, d0, acc0);
                acc1 = _mm512_fmadd_ps(d1, d1, acc1);
                i += 32;
            }
            if i + 16 <= n {
                let d0 = _mm512_sub_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)));
                acc0 = _mm512_fmadd_ps(d0, d0, acc0);
                i += 16;
            }
            if i < n {
                let m = tail16(n - i);
                let d = _mm512_sub_ps(
                    _mm512_maskz_loadu_ps(m, pa.add(i)),
                    _mm512_maskz_loadu_ps(m, pb.add(i)),
                );
                acc1 = _mm512_fmadd_ps(d, d, acc1);
            }
        }
        _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1))
    }

    /// Inner product.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,fma")]
    pub unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = common(a.len(), b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = _mm512_setzero_ps();
        let mut acc1 = _mm512_setzero_ps();
        let mut i = 0;
        // SAFETY: unmasked loads read 16 floats at i with i + 16 <= n; the masked tail
        // load only touches the remaining valid elements.
        unsafe {
            while i + 32 <= n {
                acc0 =
                    _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)), acc0);
                acc1 = _mm512_fmadd_ps(
                    _mm512_loadu_ps(pa.add(i + 16)),
                    _mm512_loadu_ps(pb.add(i + 16)),
                    acc1,
                );
                i += 32;
            }
            if i + 16 <= n {
                acc0 =
                    _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)), acc0);
                i += 16;
            }
            if i < n {
                let m = tail16(n - i);
                acc1 = _mm512_fmadd_ps(
                    _mm512_maskz_loadu_ps(m, pa.add(i)),
                    _mm512_maskz_loadu_ps(m, pb.add(i)),
                    acc1,
                );
            }
        }
        _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1))
    }

    /// L1 distance.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,fma")]
    pub unsafe fn l1(a: &[f32], b: &[f32]) -> f32 {
        let n = common(a.len(), b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = _mm512_setzero_ps();
        let mut i = 0;
        // SAFETY: unmasked loads stay below n; the masked tail load touches only valid lanes.
        unsafe {
            while i + 16 <= n {
                let d = _mm512_sub_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)));
                acc = _mm512_add_ps(acc, _mm512_abs_ps(d));
                i += 16;
            }
            if i < n {
                let m = tail16(n - i);
                let d = _mm512_sub_ps(
                    _mm512_maskz_loadu_ps(m, pa.add(i)),
                    _mm512_maskz_loadu_ps(m, pb.add(i)),
                );
                acc = _mm512_add_ps(acc, _mm512_abs_ps(d));
            }
        }
        _mm512_reduce_add_ps(acc)
    }

    /// Squared L2 distance between an f32 query and f16 values.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,fma,f16c")]
    pub unsafe fn l2_squared_f16(q: &[f32], c: &[f16]) -> f32 {
        let n = common(q.len(), c.len());
        let (pq, pc) = (q.as_ptr(), c.as_ptr() as *const u16);
        let mut acc = _mm512_setzero_ps();
        let mut i = 0;
        // SAFETY: unmasked loads read 16 elements at i with i + 16 <= n; masked tail
        // loads touch only the remaining valid elements.
        unsafe {
            while i + 16 <= n {
                let h = _mm256_loadu_si256(pc.add(i) as *const __m256i);
                let d = _mm512_sub_ps(_mm512_loadu_ps(pq.add(i)), _mm512_cvtph_ps(h));
                acc = _mm512_fmadd_ps(d, d, acc);
                i += 16;
            }
            if i < n {
                let m = tail16(n - i);
                let h = _mm256_maskz_loadu_epi16(m, pc.add(i) as *const i16);
                let d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, pq.add(i)), _mm512_cvtph_ps(h));
                acc = _mm512_fmadd_ps(d, d, acc);
            }
        }
        _mm512_reduce_add_ps(acc)
    }

    /// Inner product between an f32 query and f16 values.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,fma,f16c")]
    pub unsafe fn dot_f16(q: &[f32], c: &[f16]) -> f32 {
        let n = common(q.len(), c.len());
        let (pq, pc) = (q.as_ptr(), c.as_ptr() as *const u16);
        let mut acc = _mm512_setzero_ps();
        let mut i = 0;
        // SAFETY: as in `l2_squared_f16`.
        unsafe {
            while i + 16 <= n {
                let h = _mm256_loadu_si256(pc.add(i) as *const __m256i);
                acc = _mm512_fmadd_ps(_mm512_loadu_ps(pq.add(i)), _mm512_cvtph_ps(h), acc);
                i += 16;
            }
            if i < n {
                let m = tail16(n - i);
                let h = _mm256_maskz_loadu_epi16(m, pc.add(i) as *const i16);
                acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, pq.add(i)), _mm512_cvtph_ps(h), acc);
            }
        }
        _mm512_reduce_add_ps(acc)
    }

    /// Hamming distance with VPOPCNTQ on 64-byte blocks.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vpopcntdq")]
    pub unsafe fn hamming(a: &[u8], b: &[u8]) -> u32 {
        let n = common(a.len(), b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = _mm512_setzero_si512();
        let mut i = 0;
        // SAFETY: unmasked loads read 64 bytes at i with i + 64 <= n; the masked tail
        // load touches only the remaining n - i < 64 bytes.
        unsafe {
            while i + 64 <= n {
                let x = _mm512_xor_si512(
                    _mm512_loadu_si512(pa.add(i) as *const _),
                    _mm512_loadu_si512(pb.add(i) as *const _),
                );
                acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(x));
                i += 64;
            }
            if i < n {
                let m: __mmask64 = (1u64 << (n - i)) - 1;
                let x = _mm512_xor_si512(
                    _mm512_maskz_loadu_epi8(m, pa.add(i) as *const i8),
                    _mm512_maskz_loadu_epi8(m, pb.add(i) as *const i8),
                );
                acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(x));
            }
        }
        _mm512_reduce_add_epi64(acc) as u32
    }

    /// Integer dot product of u8 vectors.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    pub unsafe fn dot_u8(a: &[u8], b: &[u8]) -> u32 {
        let n = common(a.len(), b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = _mm512_setzero_si512();
        let mut i = 0;
        // SAFETY: unmasked loads read 32 bytes at i with i + 32 <= n; the masked tail
        // load touches only the remaining valid bytes.
        unsafe {
            while i + 32 <= n {
                let x = _mm512_cvtepu8_epi16(_mm256_loadu_si256(pa.add(i) as *const __m256i));
                let y = _mm512_cvtepu8_epi16(_mm256_loadu_si256(pb.add(i) as *const __m256i));
                acc = _mm512_add_epi32(acc, _mm512_madd_epi16(x, y));
                i += 32;
            }
            if i < n {
                let m: __mmask32 = ((1u64 << (n - i)) - 1) as __mmask32;
                let x = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, pa.add(i) as *const i8));
                let y = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, pb.add(i) as *const i8));
                acc = _mm512_add_epi32(acc, _mm512_madd_epi16(x, y));
            }
        }
        _mm512_reduce_add_epi32(acc) as u32
    }

    /// Integer squared L2 distance of u8 vectors.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    pub unsafe fn l2_squared_u8(a: &[u8], b: &[u8]) -> u32 {
        let n = common(a.len(), b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = _mm512_setzero_si512();
        let mut i = 0;
        // SAFETY: as in `dot_u8`.
        unsafe {
            while i + 32 <= n {
                let x = _mm512_cvtepu8_epi16(_mm256_loadu_si256(pa.add(i) as *const __m256i));
                let y = _mm512_cvtepu8_epi16(_mm256_loadu_si256(pb.add(i) as *const __m256i));
                let d = _mm512_sub_epi16(x, y);
                acc = _mm512_add_epi32(acc, _mm512_madd_epi16(d, d));
                i += 32;
            }
            if i < n {
                let m: __mmask32 = ((1u64 << (n - i)) - 1) as __mmask32;
                let x = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, pa.add(i) as *const i8));
                let y = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, pb.add(i) as *const i8));
                let d = _mm512_sub_epi16(x, y);
                acc = _mm512_add_epi32(acc, _mm512_madd_epi16(d, d));
            }
        }
        _mm512_reduce_add_epi32(acc) as u32
    }

    /// Accumulates `(d - s*c)^2` over the first lanes selected by `m` of 16 codes in `c16`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,fma")]
    unsafe fn acc_l2_16(
        acc: __m512,
        m: __mmask16,
        d: *const f32,
        s: *const f32,
        c16: __m128i,
    ) -> __m512 {
        let c = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(c16));
        // SAFETY: the caller guarantees the lanes selected by `m` are readable at d and s.
        unsafe {
            let e = _mm512_fnmadd_ps(_mm512_maskz_loadu_ps(m, s), c, _mm512_maskz_loadu_ps(m, d));
            _mm512_fmadd_ps(e, e, acc)
        }
    }

    /// Accumulates `w*c` over the lanes selected by `m` of 16 codes in `c16`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,fma")]
    unsafe fn acc_dot_16(acc: __m512, m: __mmask16, w: *const f32, c16: __m128i) -> __m512 {
        let c = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(c16));
        // SAFETY: the caller guarantees the lanes selected by `m` are readable at w.
        unsafe { _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w), c, acc) }
    }

    /// Affine squared L2 over 8-bit codes.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,fma")]
    pub unsafe fn sq8_l2(d: &[f32], s: &[f32], codes: &[u8]) -> f32 {
        let n = d.len().min(s.len()).min(codes.len());
        let (pd, ps, pc) = (d.as_ptr(), s.as_ptr(), codes.as_ptr());
        let mut acc0 = _mm512_setzero_ps();
        let mut acc1 = _mm512_setzero_ps();
        let mut i = 0;
        // SAFETY: full blocks read 32 codes/floats at i with i + 32 <= n; the tail uses
        // masks covering only the n - i remaining elements.
        unsafe {
            while i + 32 <= n {
                let c = _mm256_loadu_si256(pc.add(i) as *const __m256i);
                acc0 = acc_l2_16(acc0, !0, pd.add(i), ps.add(i), _mm256_castsi256_si128(c));
                acc1 = acc_l2_16(
                    acc1,
                    !0,
                    pd.add(i + 16),
                    ps.add(i + 16),
                    _mm256_extracti128_si256(c, 1),
                );
                i += 32;
            }
            while i < n {
                let r = (n - i).min(16);
                let m = if r == 16 { !0 } else { tail16(r) };
                let c = _mm_maskz_loadu_epi8(m, pc.add(i) as *const i8);
                acc0 = acc_l2_16(acc0, m, pd.add(i), ps.add(i), c);
                i += r;
            }
        }
        _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1))
    }

    /// Affine dot over 8-bit codes.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,fma")]
    pub unsafe fn sq8_dot(w: &[f32], codes: &[u8]) -> f32 {
        let n = w.len().min(codes.len());
        let (pw, pc) = (w.as_ptr(), codes.as_ptr());
        let mut acc0 = _mm512_setzero_ps();
        let mut acc1 = _mm512_setzero_ps();
        let mut i = 0;
        // SAFETY: as in `sq8_l2`.
        unsafe {
            while i + 32 <= n {
                let c = _mm256_loadu_si256(pc.add(i) as *const __m256i);
                acc0 = acc_dot_16(acc0, !0, pw.add(i), _mm256_castsi256_si128(c));
                acc1 = acc_dot_16(acc1, !0, pw.add(i + 16), _mm256_extracti128_si256(c, 1));
                i += 32;
            }
            while i < n {
                let r = (n - i).min(16);
                let m = if r == 16 { !0 } else { tail16(r) };
                let c = _mm_maskz_loadu_epi8(m, pc.add(i) as *const i8);
                acc0 = acc_dot_16(acc0, m, pw.add(i), c);
                i += r;
            }
        }
        _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1))
    }

    /// Affine squared L2 over 4-bit codes.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,fma")]
    pub unsafe fn sq4_l2(d: &[f32], s: &[f32], codes: &[u8]) -> f32 {
        let n = d.len().min(s.len()).min(codes.len() * 2);
        let (pd, ps) = (d.as_ptr(), s.as_ptr());
        let mut acc0 = _mm512_setzero_ps();
        let mut acc1 = _mm512_setzero_ps();
        let mut i = 0;
        // SAFETY: 32 dimensions use 16 code bytes at i/2 and 32 floats at i, i + 32 <= n.
        unsafe {
            while i + 32 <= n {
                let b = _mm_loadu_si128(codes.as_ptr().add(i / 2) as *const __m128i);
                let (c0, c1) = super::avx2::unpack4(b);
                acc0 = acc_l2_16(acc0, !0, pd.add(i), ps.add(i), c0);
                acc1 = acc_l2_16(acc1, !0, pd.add(i + 16), ps.add(i + 16), c1);
                i += 32;
            }
        }
        _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1))
            + scalar::sq4_l2(&d[i..n], &s[i..n], &codes[i / 2..])
    }

    /// Affine dot over 4-bit codes.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,fma")]
    pub unsafe fn sq4_dot(w: &[f32], codes: &[u8]) -> f32 {
        let n = w.len().min(codes.len() * 2);
        let pw = w.as_ptr();
        let mut acc0 = _mm512_setzero_ps();
        let mut acc1 = _mm512_setzero_ps();
        let mut i = 0;
        // SAFETY: 32 dimensions use 16 code bytes at i/2 and 32 floats at i, i + 32 <= n.
        unsafe {
            while i + 32 <= n {
                let b = _mm_loadu_si128(codes.as_ptr().add(i / 2) as *const __m128i);
                let (c0, c1) = super::avx2::unpack4(b);
                acc0 = acc_dot_16(acc0, !0, pw.add(i), c0);
                acc1 = acc_dot_16(acc1, !0, pw.add(i + 16), c1);
                i += 32;
            }
        }
        _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) + scalar::sq4_dot(&w[i..n], &codes[i / 2..])
    }

    /// Affine squared L2 over 2-bit codes.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,fma")]
    pub unsafe fn sq2_l2(d: &[f32], s: &[f32], codes: &[u8]) -> f32 {
        let n = d.len().min(s.len()).min(codes.len() * 4);
        let (pd, ps) = (d.as_ptr(), s.as_ptr());
        let mut acc = [_mm512_setzero_ps(); 2];
        let mut i = 0;
        // SAFETY: 64 dimensions use 16 code bytes at i/4 and 64 floats at i, i + 64 <= n.
        unsafe {
            while i + 64 <= n {
                let b = _mm_loadu_si128(codes.as_ptr().add(i / 4) as *const __m128i);
                for (k, c) in super::avx2::unpack2(b).into_iter().enumerate() {
                    let o = i + 16 * k;
                    acc[k & 1] = acc_l2_16(acc[k & 1], !0, pd.add(o), ps.add(o), c);
                }
                i += 64;
            }
        }
        _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1]))
            + scalar::sq2_l2(&d[i..n], &s[i..n], &codes[i / 4..])
    }

    /// Affine dot over 2-bit codes.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,fma")]
    pub unsafe fn sq2_dot(w: &[f32], codes: &[u8]) -> f32 {
        let n = w.len().min(codes.len() * 4);
        let pw = w.as_ptr();
        let mut acc = [_mm512_setzero_ps(); 2];
        let mut i = 0;
        // SAFETY: 64 dimensions use 16 code bytes at i/4 and 64 floats at i, i + 64 <= n.
        unsafe {
            while i + 64 <= n {
                let b = _mm_loadu_si128(codes.as_ptr().add(i / 4) as *const __m128i);
                for (k, c) in super::avx2::unpack2(b).into_iter().enumerate() {
                    acc[k & 1] = acc_dot_16(acc[k & 1], !0, pw.add(i + 16 * k), c);
                }
                i += 64;
            }
        }
        _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1]))
            + scalar::sq2_dot(&w[i..n], &codes[i / 4..])
    }

    /// Sum of the weights whose bit is set, using the bits directly as a lane mask.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    pub unsafe fn masked_sum(w: &[f32], bits: &[u8]) -> f32 {
        let n = w.len().min(bits.len() * 8);
        let pw = w.as_ptr();
        let mut acc0 = _mm512_setzero_ps();
        let mut acc1 = _mm512_setzero_ps();
        let mut i = 0;
        // SAFETY: full blocks read 2 bit bytes at i/8 and 16 floats at i with i + 16 <= n;
        // the tail reads only the remaining bit bytes and a masked float load.
        unsafe {
            while i + 32 <= n {
                let m = (bits.as_ptr().add(i / 8) as *const u32).read_unaligned();
                acc0 = _mm512_mask_add_ps(acc0, m as __mmask16, acc0, _mm512_loadu_ps(pw.add(i)));
                acc1 = _mm512_mask_add_ps(
                    acc1,
                    (m >> 16) as __mmask16,
                    acc1,
                    _mm512_loadu_ps(pw.add(i + 16)),
                );
                i += 32;
            }
            while i < n {
                let r = (n - i).min(16);
                let lo = *bits.get_unchecked(i / 8) as u16;
                let hi = if r > 8 {
                    *bits.get_unchecked(i / 8 + 1) as u16
                } else {
                    0
                };
                let valid = if r == 16 { !0 } else { tail16(r) };
                let m = (lo | (hi << 8)) & valid;
                acc0 = _mm512_mask_add_ps(acc0, m, acc0, _mm512_maskz_loadu_ps(valid, pw.add(i)));
                i += r;
            }
        }
        _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1))
    }
}
