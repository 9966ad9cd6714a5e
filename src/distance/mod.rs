//! Distance kernels on f32, f16, u8 codes, packed scalar-quantized codes and bits,
//! with run-time CPU dispatch.
//!
//! Design: the CPU is probed once (`OnceLock`) and a table of plain function
//! pointers (`Kernels`) is chosen per kernel: AVX-512 (F/BW/VL, VPOPCNTDQ for
//! Hamming) > AVX2+FMA(+F16C) > scalar on x86_64; NEON for the f32 and 8-bit code
//! kernels on aarch64; scalar everywhere else. The public functions are thin safe
//! wrappers that call through that table, so the hot path costs one indirect call.
//!
//! Every kernel works on the common prefix of its inputs (never reads out of
//! bounds on a length mismatch); callers are expected to check lengths.
//! Ranking distances follow one convention everywhere (`metric_distance`): smaller
//! is closer; L2 -> squared L2, InnerProduct -> -dot, Cosine -> 1 - cos, L1 -> L1.
//!
//! Extreme values (issue 11.7): the f32 kernels overflow on finite inputs near
//! `f32::MAX` (a square of 1.9e19 is already beyond it). The public f32 functions
//! keep the SIMD fast path and recompute in f64 only when its result is not finite,
//! so they return the right value, or +/-Infinity only when the true value is beyond
//! f32. The `*_f64` functions serve the SQL operators (float8 results): they return
//! the true value, finite for any finite inputs, where pgvector (float sums) returns
//! Infinity. Norms for cosine (`normalize`, `cosine_distance`) fall back to f64 on
//! overflow and on underflow, so huge and tiny vectors are not taken for zero.

use half::f16;
use std::sync::OnceLock;

pub mod scalar;

#[cfg(target_arch = "aarch64")]
mod neon;
#[cfg(target_arch = "x86_64")]
mod x86;

#[cfg(test)]
mod tests;

/// Similarity metric of an index or query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Metric {
    /// Euclidean distance (ranked by its square).
    L2,
    /// Inner product (ranked by its negation).
    InnerProduct,
    /// Cosine distance `1 - cos`.
    Cosine,
    /// Manhattan (taxicab) distance.
    L1,
}

/// A set of kernel implementations for one instruction set.
#[derive(Clone, Copy)]
pub(crate) struct Kernels {
    pub name: &'static str,
    pub l2_squared: fn(&[f32], &[f32]) -> f32,
    pub dot: fn(&[f32], &[f32]) -> f32,
    pub l1: fn(&[f32], &[f32]) -> f32,
    pub l2_squared_f16: fn(&[f32], &[f16]) -> f32,
    pub dot_f16: fn(&[f32], &[f16]) -> f32,
    pub hamming: fn(&[u8], &[u8]) -> u32,
    pub dot_u8: fn(&[u8], &[u8]) -> u32,
    pub l2_squared_u8: fn(&[u8], &[u8]) -> u32,
    pub sq8_l2: fn(&[f32], &[f32], &[u8]) -> f32,
    pub sq8_dot: fn(&[f32], &[u8]) -> f32,
    pub sq4_l2: fn(&[f32], &[f32], &[u8]) -> f32,
    pub sq4_dot: fn(&[f32], &[u8]) -> f32,
    pub sq2_l2: fn(&[f32], &[f32], &[u8]) -> f32,
    pub sq2_dot: fn(&[f32], &[u8]) -> f32,
    pub masked_sum: fn(&[f32], &[u8]) -> f32,
}

/// The portable scalar kernel set.
pub(crate) const SCALAR_KERNELS: Kernels = Kernels {
    name: "scalar",
    l2_squared: scalar::l2_squared,
    dot: scalar::dot,
    l1: scalar::l1,
    l2_squared_f16: scalar::l2_squared_f16,
    dot_f16: scalar::dot_f16,
    hamming: scalar::hamming,
    dot_u8: scalar::dot_u8,
    l2_squared_u8: scalar::l2_squared_u8,
    sq8_l2: scalar::sq8_l2,
    sq8_dot: scalar::sq8_dot,
    sq4_l2: scalar::sq4_l2,
    sq4_dot: scalar::sq4_dot,
    sq2_l2: scalar::sq2_l2,
    sq2_dot: scalar::sq2_dot,
    masked_sum: scalar::masked_sum,
};

/// Generates safe wrappers around `#[target_feature]` kernels of one x86 module.
#[cfg(target_arch = "x86_64")]
macro_rules! x86_wrappers {
    ($modname:ident, $isa:path, $feat:literal) => {
        mod $modname {
            use super::f16;
            use $isa as k;
            /// Safe wrapper; installed only after run-time detection of the features.
            pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
                // SAFETY: this wrapper is only reachable through a kernel table built after
                // the required CPU features were detected (see `detect`).
                unsafe { k::l2_squared(a, b) }
            }
            /// Safe wrapper; installed only after run-time detection of the features.
            pub fn dot(a: &[f32], b: &[f32]) -> f32 {
                // SAFETY: see `l2_squared`.
                unsafe { k::dot(a, b) }
            }
            /// Safe wrapper; installed only after run-time detection of the features.
            pub fn l1(a: &[f32], b: &[f32]) -> f32 {
                // SAFETY: see `l2_squared`.
                unsafe { k::l1(a, b) }
            }
            /// Safe wrapper; installed only after run-time detection of the features.
            pub fn l2_squared_f16(a: &[f32], b: &[f16]) -> f32 {
                // SAFETY: see `l2_squared`.
                unsafe { k::l2_squared_f16(a, b) }
            }
            /// Safe wrapper; installed only after run-time detection of the features.
            pub fn dot_f16(a: &[f32], b: &[f16]) -> f32 {
                // SAFETY: see `l2_squared`.
                unsafe { k::dot_f16(a, b) }
            }
            /// Safe wrapper; installed only after run-time detection of the features.
            pub fn hamming(a: &[u8], b: &[u8]) -> u32 {
                // SAFETY: see `l2_squared`.
                unsafe { k::hamming(a, b) }
            }
            /// Safe wrapper; installed only after run-time detection of the features.
            pub fn dot_u8(a: &[u8], b: &[u8]) -> u32 {
                // SAFETY: see `l2_squared`.
                unsafe { k::dot_u8(a, b) }
            }
            /// Safe wrapper; installed only after run-time detection of the features.
            pub fn l2_squared_u8(a: &[u8], b: &[u8]) -> u32 {
                // SAFETY: see `l2_squared`.
                unsafe { k::l2_squared_u8(a, b) }
            }
            /// Safe wrapper; installed only after run-time detection of the features.
            pub fn sq8_l2(d: &[f32], s: &[f32], c: &[u8]) -> f32 {
                // SAFETY: see `l2_squared`.
                unsafe { k::sq8_l2(d, s, c) }
            }
            /// Safe wrapper; installed only after run-time detection of the features.
            pub fn sq8_dot(w: &[f32], c: &[u8]) -> f32 {
                // SAFETY: see `l2_squared`.
                unsafe { k::sq8_dot(w, c) }
            }
            /// Safe wrapper; installed only after run-time detection of the features.
            pub fn sq4_l2(d: &[f32], s: &[f32], c: &[u8]) -> f32 {
                // SAFETY: see `l2_squared`.
                unsafe { k::sq4_l2(d, s, c) }
            }
            /// Safe wrapper; installed only after run-time detection of the features.
            pub fn sq4_dot(w: &[f32], c: &[u8]) -> f32 {
                // SAFETY: see `l2_squared`.
                unsafe { k::sq4_dot(w, c) }
            }
            /// Safe wrapper; installed only after run-time detection of the features.
            pub fn sq2_l2(d: &[f32], s: &[f32], c: &[u8]) -> f32 {
                // SAFETY: see `l2_squared`.
                unsafe { k::sq2_l2(d, s, c) }
            }
            /// Safe wrapper; installed only after run-time detection of the features.
            pub fn sq2_dot(w: &[f32], c: &[u8]) -> f32 {
                // SAFETY: see `l2_squared`.
                unsafe { k::sq2_dot(w, c) }
            }
            /// Safe wrapper; installed only after run-time detection of the features.
            pub fn masked_sum(w: &[f32], b: &[u8]) -> f32 {
                // SAFETY: see `l2_squared`.
                unsafe { k::masked_sum(w, b) }
            }
            /// The kernel table of this instruction set.
            pub const KERNELS: super::Kernels = super::Kernels {
                name: $feat,
                l2_squared,
                dot,
                l1,
                l2_squared_f16,
                dot_f16,
                hamming,
                dot_u8,
                l2_squared_u8,
                sq8_l2,
                sq8_dot,
                sq4_l2,
                sq4_dot,
                sq2_l2,
                sq2_dot,
                masked_sum,
            };
        }
    };
}

#[cfg(target_arch = "x86_64")]
x86_wrappers!(avx2_safe, super::x86::avx2, "avx2");
#[cfg(target_arch = "x86_64")]
x86_wrappers!(avx512_safe, super::x86::avx512, "avx512");

/// Whether the AVX2 kernel set can run (AVX2, FMA, F16C, POPCNT).
#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c")
        && is_x86_feature_detected!("popcnt")
}

/// Whether the AVX-512 kernel set can run (F, BW, VL on top of the AVX2 set).
#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    has_avx2()
        && is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl")
}

/// Every kernel set that can run on this CPU, best last (used by tests and benches).
pub(crate) fn available_kernel_sets() -> Vec<Kernels> {
    #[allow(unused_mut)]
    let mut sets = vec![SCALAR_KERNELS];
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2() {
            sets.push(avx2_safe::KERNELS);
        }
        if has_avx512() {
            let mut k = avx512_safe::KERNELS;
            if !is_x86_feature_detected!("avx512vpopcntdq") {
                k.hamming = avx2_safe::hamming;
            }
            sets.push(k);
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        let mut k = SCALAR_KERNELS;
        k.name = "neon";
        k.l2_squared = neon::l2_squared;
        k.dot = neon::dot;
        k.l1 = neon::l1;
        k.sq8_l2 = neon::sq8_l2;
        k.sq8_dot = neon::sq8_dot;
        sets.push(k);
    }
    sets
}

/// The best kernel set for this CPU, detected once.
#[inline]
pub(crate) fn kernels() -> &'static Kernels {
    static KERNELS: OnceLock<Kernels> = OnceLock::new();
    KERNELS.get_or_init(|| available_kernel_sets().pop().unwrap_or(SCALAR_KERNELS))
}

/// Cache lines [`prefetch`] asks for: the hardware prefetcher streams the rest of a row
/// once its first lines are being loaded.
const PREFETCH_LINES: usize = 2;

/// Asks the CPU to start loading the first cache lines of `values` (a hint: no effect on results).
#[inline]
pub fn prefetch<T>(values: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        let bytes = std::mem::size_of_val(values);
        let start = values.as_ptr().cast::<i8>();
        for line in 0..PREFETCH_LINES.min(bytes.div_ceil(64)) {
            // SAFETY: a prefetch never faults or changes memory; the address is inside
            // `values` (line * 64 < its size in bytes).
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    start.add(line * 64),
                )
            };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = values;
}

/// The float4 values of little-endian code bytes, without copying, when the bytes are
/// 4-byte aligned on a little-endian machine (None otherwise: decode them instead).
#[inline]
pub fn f32_view(bytes: &[u8]) -> Option<&[f32]> {
    if cfg!(target_endian = "big") {
        return None;
    }
    // SAFETY: every bit pattern is a valid f32, and align_to only puts correctly
    // aligned whole elements in the middle slice.
    let (head, values, tail) = unsafe { bytes.align_to::<f32>() };
    (head.is_empty() && tail.is_empty()).then_some(values)
}

/// Asks the CPU to start loading the cache line holding `address` (a hint: it never
/// faults, reads nothing and changes nothing, whatever the address).
#[inline]
pub fn prefetch_address(address: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults or changes memory, valid address or not.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(address.cast::<i8>())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}

/// Names of the vector features detected at run time and the kernel set in use.
pub fn cpu_features() -> &'static str {
    static FEATURES: OnceLock<String> = OnceLock::new();
    FEATURES.get_or_init(|| {
        #[allow(unused_mut)]
        let mut found: Vec<&str> = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            let probes = [
                ("avx512f", is_x86_feature_detected!("avx512f")),
                ("avx512bw", is_x86_feature_detected!("avx512bw")),
                ("avx512vl", is_x86_feature_detected!("avx512vl")),
                ("vpopcntdq", is_x86_feature_detected!("avx512vpopcntdq")),
                ("avx2", is_x86_feature_detected!("avx2")),
                ("fma", is_x86_feature_detected!("fma")),
                ("f16c", is_x86_feature_detected!("f16c")),
                ("popcnt", is_x86_feature_detected!("popcnt")),
            ];
            found.extend(probes.iter().filter(|p| p.1).map(|p| p.0));
        }
        #[cfg(target_arch = "aarch64")]
        found.push("neon");
        format!("{} (kernels: {})", found.join(" "), kernels().name)
    })
}

/// Squared Euclidean distance (f64 recomputation when the f32 sum overflows).
#[inline]
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    let fast = (kernels().l2_squared)(a, b);
    if fast.is_finite() {
        fast
    } else {
        scalar::l2_squared_f64(a, b) as f32
    }
}

/// Inner product (f64 recomputation when the f32 sum overflows).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let fast = (kernels().dot)(a, b);
    if fast.is_finite() {
        fast
    } else {
        scalar::dot_f64(a, b) as f32
    }
}

/// Manhattan (L1) distance (f64 recomputation when the f32 sum overflows).
#[inline]
pub fn l1(a: &[f32], b: &[f32]) -> f32 {
    let fast = (kernels().l1)(a, b);
    if fast.is_finite() {
        fast
    } else {
        scalar::l1_f64(a, b) as f32
    }
}

/// Squared Euclidean norm (f64 recomputation when the f32 sum overflows).
#[inline]
pub fn norm_squared(a: &[f32]) -> f32 {
    let fast = (kernels().dot)(a, a);
    if fast.is_finite() {
        fast
    } else {
        scalar::dot_f64(a, a) as f32
    }
}

/// Euclidean distance as float8: the f32 kernel, or an f64 sum when that overflows (always finite for finite inputs).
pub fn l2_distance_f64(a: &[f32], b: &[f32]) -> f64 {
    l2_squared_f64(a, b).sqrt()
}

/// Squared Euclidean distance as float8 (see `l2_distance_f64`).
pub fn l2_squared_f64(a: &[f32], b: &[f32]) -> f64 {
    let fast = (kernels().l2_squared)(a, b);
    if fast.is_finite() {
        fast as f64
    } else {
        scalar::l2_squared_f64(a, b)
    }
}

/// Inner product as float8 (see `l2_distance_f64`).
pub fn dot_f64(a: &[f32], b: &[f32]) -> f64 {
    let fast = (kernels().dot)(a, b);
    if fast.is_finite() {
        fast as f64
    } else {
        scalar::dot_f64(a, b)
    }
}

/// L1 distance as float8 (see `l2_distance_f64`).
pub fn l1_f64(a: &[f32], b: &[f32]) -> f64 {
    let fast = (kernels().l1)(a, b);
    if fast.is_finite() {
        fast as f64
    } else {
        scalar::l1_f64(a, b)
    }
}

/// Smallest f32 sum of squares trusted as a norm: below it, squares of small components may have underflowed.
const NORM_SQUARED_UNDERFLOW: f32 = 1e-30;

/// Scales `v` to unit length in place; false (and `v` unchanged) for a zero vector. Huge or tiny vectors are normalised through an f64 norm.
pub fn normalize(v: &mut [f32]) -> bool {
    let fast = (kernels().dot)(v, v);
    if fast.is_finite() && fast >= NORM_SQUARED_UNDERFLOW {
        let norm = fast.sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
        return true;
    }
    let norm = scalar::dot_f64(v, v).sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return false;
    }
    v.iter_mut().for_each(|x| *x = (*x as f64 / norm) as f32);
    true
}

/// `1 - dot / (|a| |b|)` computed in f64 from f32 parts, similarity clamped to [-1, 1].
pub(crate) fn cosine_from_parts(dot: f32, na: f32, nb: f32) -> f32 {
    cosine_from_f64_parts(dot as f64, na as f64, nb as f64)
}

/// `1 - dot / (|a| |b|)` from f64 parts, similarity clamped to [-1, 1]; NaN for a zero norm.
fn cosine_from_f64_parts(dot: f64, na: f64, nb: f64) -> f32 {
    if na <= 0.0 || nb <= 0.0 {
        return f32::NAN;
    }
    let sim = dot / (na.sqrt() * nb.sqrt());
    (1.0 - sim.clamp(-1.0, 1.0)) as f32
}

/// Cosine distance `1 - cos(a, b)`; NaN when either vector is zero (callers check). Parts that overflow or underflow f32 are recomputed in f64.
#[inline]
pub fn cosine_distance(a: &[f32], b: &[f32]) -> f32 {
    let k = kernels();
    let (dot, na, nb) = ((k.dot)(a, b), (k.dot)(a, a), (k.dot)(b, b));
    let trusted = |x: f32| x.is_finite() && x >= NORM_SQUARED_UNDERFLOW;
    if dot.is_finite() && trusted(na) && trusted(nb) {
        cosine_from_parts(dot, na, nb)
    } else {
        cosine_from_f64_parts(
            scalar::dot_f64(a, b),
            scalar::dot_f64(a, a),
            scalar::dot_f64(b, b),
        )
    }
}

/// Squared L2 distance between an f32 query and an f16 stored vector.
#[inline]
pub fn l2_squared_f16(q: &[f32], c: &[f16]) -> f32 {
    (kernels().l2_squared_f16)(q, c)
}

/// Inner product between an f32 query and an f16 stored vector.
#[inline]
pub fn dot_f16(q: &[f32], c: &[f16]) -> f32 {
    (kernels().dot_f16)(q, c)
}

/// Number of differing bits (popcount of XOR).
#[inline]
pub fn hamming(a: &[u8], b: &[u8]) -> u32 {
    (kernels().hamming)(a, b)
}

/// Integer inner product of two u8 code vectors.
#[inline]
pub fn dot_u8(a: &[u8], b: &[u8]) -> u32 {
    (kernels().dot_u8)(a, b)
}

/// Integer squared L2 distance of two u8 code vectors.
#[inline]
pub fn l2_squared_u8(a: &[u8], b: &[u8]) -> u32 {
    (kernels().l2_squared_u8)(a, b)
}

/// `sum_i (d_i - s_i c_i)^2` over packed codes of `bits` (8, 4, else 2) bits per dimension.
#[inline]
pub fn affine_l2(bits: u32, d: &[f32], s: &[f32], codes: &[u8]) -> f32 {
    let k = kernels();
    match bits {
        8 => (k.sq8_l2)(d, s, codes),
        4 => (k.sq4_l2)(d, s, codes),
        _ => (k.sq2_l2)(d, s, codes),
    }
}

/// `sum_i w_i c_i` over packed codes of `bits` (8, 4, else 2) bits per dimension.
#[inline]
pub fn affine_dot(bits: u32, w: &[f32], codes: &[u8]) -> f32 {
    let k = kernels();
    match bits {
        8 => (k.sq8_dot)(w, codes),
        4 => (k.sq4_dot)(w, codes),
        _ => (k.sq2_dot)(w, codes),
    }
}

/// Sum of `w_i` over the dimensions whose bit is set in `bits` (LSB-first).
#[inline]
pub fn masked_sum(w: &[f32], bits: &[u8]) -> f32 {
    (kernels().masked_sum)(w, bits)
}

/// Distance used for ranking under a metric: L2 -> squared L2, InnerProduct -> -dot, Cosine -> 1 - cos, L1 -> L1.
#[inline]
pub fn metric_distance(metric: Metric, a: &[f32], b: &[f32]) -> f32 {
    match metric {
        Metric::L2 => l2_squared(a, b),
        Metric::InnerProduct => -dot(a, b),
        Metric::Cosine => cosine_distance(a, b),
        Metric::L1 => l1(a, b),
    }
}
