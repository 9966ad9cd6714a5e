//! `none`: full-precision codes (little-endian f32 bytes, `4 * dims` bytes), and the
//! float16 codes an empty index stages rows in when float4 elements would not fit a page.

use serde::{Deserialize, Serialize};

/// Stores vectors unquantized.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FlatQuantizer {
    dims: usize,
}

impl FlatQuantizer {
    /// A flat quantizer for `dims` dimensions.
    pub fn new(dims: usize) -> Self {
        FlatQuantizer { dims }
    }

    /// Number of dimensions.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// Bytes per code.
    pub fn code_len(&self) -> usize {
        self.dims * 4
    }

    /// Writes the little-endian bytes of `v`.
    pub fn encode(&self, v: &[f32], out: &mut [u8]) {
        for (o, x) in out.chunks_exact_mut(4).zip(v) {
            o.copy_from_slice(&x.to_le_bytes());
        }
    }

    /// Reads the little-endian floats of `code`.
    pub fn decode(&self, code: &[u8], out: &mut [f32]) {
        for (o, c) in out.iter_mut().zip(code.chunks_exact(4)) {
            *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
    }
}

/// Stores vectors as float16 (`2 * dims` bytes): an empty index stages its first rows
/// this way when their float4 codes would not fit on a page (more than ~1700 dimensions).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HalfQuantizer {
    dims: usize,
}

impl HalfQuantizer {
    /// A float16 quantizer for `dims` dimensions.
    pub fn new(dims: usize) -> Self {
        HalfQuantizer { dims }
    }

    /// Number of dimensions.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// Bytes per code.
    pub fn code_len(&self) -> usize {
        self.dims * 2
    }

    /// Writes the little-endian float16 bytes of `v` (rounded to nearest).
    pub fn encode(&self, v: &[f32], out: &mut [u8]) {
        for (o, x) in out.chunks_exact_mut(2).zip(v) {
            o.copy_from_slice(&half::f16::from_f32(*x).to_le_bytes());
        }
    }

    /// Reads the float16 values of `code` as f32.
    pub fn decode(&self, code: &[u8], out: &mut [f32]) {
        for (o, c) in out.iter_mut().zip(code.chunks_exact(2)) {
            *o = half::f16::from_le_bytes([c[0], c[1]]).to_f32();
        }
    }
}
