//! `none`: full-precision codes (little-endian f32 bytes, `4 * dims` bytes).

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
