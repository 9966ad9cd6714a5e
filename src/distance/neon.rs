//! aarch64 NEON kernels for the f32 distances (NEON is mandatory on aarch64, so no
//! run-time detection is needed). Code kernels use the scalar versions on aarch64.
//!
//! These cannot be executed on the x86 build machine; they mirror the AVX2 kernels
//! and finish with the scalar formula on the tail.

use super::scalar;
use std::arch::aarch64::*;

/// Squared L2 distance.
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let mut i = 0;
    // SAFETY: NEON is always present on aarch64; loads read 4 floats at i with i + 4 <= n.
    let head = unsafe {
        let mut acc = vdupq_n_f32(0.0);
        while i + 4 <= n {
            let d = vsubq_f32(vld1q_f32(a.as_ptr().add(i)), vld1q_f32(b.as_ptr().add(i)));
            acc = vfmaq_f32(acc, d, d);
            i += 4;
        }
        vaddvq_f32(acc)
    };
    head + scalar::l2_squared(&a[i..n], &b[i..n])
}

/// Inner product.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let mut i = 0;
    // SAFETY: NEON is always present on aarch64; loads read 4 floats at i with i + 4 <= n.
    let head = unsafe {
        let mut acc = vdupq_n_f32(0.0);
        while i + 4 <= n {
            acc = vfmaq_f32(
                acc,
                vld1q_f32(a.as_ptr().add(i)),
                vld1q_f32(b.as_ptr().add(i)),
            );
            i += 4;
        }
        vaddvq_f32(acc)
    };
    head + scalar::dot(&a[i..n], &b[i..n])
}

/// L1 distance.
pub fn l1(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let mut i = 0;
    // SAFETY: NEON is always present on aarch64; loads read 4 floats at i with i + 4 <= n.
    let head = unsafe {
        let mut acc = vdupq_n_f32(0.0);
        while i + 4 <= n {
            acc = vaddq_f32(
                acc,
                vabdq_f32(vld1q_f32(a.as_ptr().add(i)), vld1q_f32(b.as_ptr().add(i))),
            );
            i += 4;
        }
        vaddvq_f32(acc)
    };
    head + scalar::l1(&a[i..n], &b[i..n])
}

/// Affine dot over 8-bit codes.
pub fn sq8_dot(w: &[f32], codes: &[u8]) -> f32 {
    let n = w.len().min(codes.len());
    let mut i = 0;
    // SAFETY: NEON is always present on aarch64; reads 8 codes and 8 floats at i, i + 8 <= n.
    let head = unsafe {
        let mut acc = vdupq_n_f32(0.0);
        while i + 8 <= n {
            let c16 = vmovl_u8(vld1_u8(codes.as_ptr().add(i)));
            let c0 = vcvtq_f32_u32(vmovl_u16(vget_low_u16(c16)));
            let c1 = vcvtq_f32_u32(vmovl_u16(vget_high_u16(c16)));
            acc = vfmaq_f32(acc, vld1q_f32(w.as_ptr().add(i)), c0);
            acc = vfmaq_f32(acc, vld1q_f32(w.as_ptr().add(i + 4)), c1);
            i += 8;
        }
        vaddvq_f32(acc)
    };
    head + scalar::sq8_dot(&w[i..n], &codes[i..n])
}

/// Affine squared L2 over 8-bit codes.
pub fn sq8_l2(d: &[f32], s: &[f32], codes: &[u8]) -> f32 {
    let n = d.len().min(s.len()).min(codes.len());
    let mut i = 0;
    // SAFETY: NEON is always present on aarch64; reads 8 codes and 8 floats at i, i + 8 <= n.
    let head = unsafe {
        let mut acc = vdupq_n_f32(0.0);
        while i + 8 <= n {
            let c16 = vmovl_u8(vld1_u8(codes.as_ptr().add(i)));
            let c0 = vcvtq_f32_u32(vmovl_u16(vget_low_u16(c16)));
            let c1 = vcvtq_f32_u32(vmovl_u16(vget_high_u16(c16)));
            let e0 = vfmsq_f32(
                vld1q_f32(d.as_ptr().add(i)),
                vld1q_f32(s.as_ptr().add(i)),
                c0,
            );
            let e1 = vfmsq_f32(
                vld1q_f32(d.as_ptr().add(i + 4)),
                vld1q_f32(s.as_ptr().add(i + 4)),
                c1,
            );
            acc = vfmaq_f32(acc, e0, e0);
            acc = vfmaq_f32(acc, e1, e1);
            i += 8;
        }
        vaddvq_f32(acc)
    };
    head + scalar::sq8_l2(&d[i..n], &s[i..n], &codes[i..n])
}
