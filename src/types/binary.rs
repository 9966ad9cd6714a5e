//! Binary (send/recv) form of a vector, with no Postgres in it.
//!
//! Layout, network byte order like pgvector: `u16 dims`, `u16 unused (0)`, then
//! `dims` IEEE float4 values. Decoding checks every length before reading, so a
//! short or absurd buffer is an error, never an out-of-bounds read.

use crate::types::text::MAX_DIMS;

/// Why a binary vector was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BinaryError {
    /// Fewer bytes than the header or the announced dimensions need.
    Truncated { needed: usize, got: usize },
    /// The dimension count is 0.
    NoDimensions,
    /// The dimension count exceeds [`MAX_DIMS`].
    TooManyDimensions(usize),
    /// The reserved field is not zero.
    UnusedNotZero(u16),
    /// An element is NaN.
    NotANumber,
    /// An element is infinite.
    Infinite,
    /// Bytes remain after the last element.
    TrailingBytes(usize),
    /// An sq8vector's scale is negative.
    NegativeScale,
    /// An sq8vector's largest value does not fit in float4.
    Overflow,
}

/// Encodes elements in the binary wire format.
pub fn encode_binary(values: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + values.len() * 4);
    out.extend_from_slice(&(values.len() as u16).to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    for v in values {
        out.extend_from_slice(&v.to_bits().to_be_bytes());
    }
    out
}

/// Checks the framing every binary vector shares: at least `header` bytes starting with
/// `u16 dims` (1..=16000) and `u16 unused` (0), and exactly `header + dims * element`
/// bytes in all; returns the dimensions.
pub fn check_framing(bytes: &[u8], header: usize, element: usize) -> Result<usize, BinaryError> {
    if bytes.len() < header {
        return Err(BinaryError::Truncated {
            needed: header,
            got: bytes.len(),
        });
    }
    let dims = u16::from_be_bytes([bytes[0], bytes[1]]) as usize;
    let unused = u16::from_be_bytes([bytes[2], bytes[3]]);
    if dims == 0 {
        return Err(BinaryError::NoDimensions);
    }
    if dims > MAX_DIMS {
        return Err(BinaryError::TooManyDimensions(dims));
    }
    if unused != 0 {
        return Err(BinaryError::UnusedNotZero(unused));
    }
    let needed = header + dims * element;
    if bytes.len() < needed {
        return Err(BinaryError::Truncated {
            needed,
            got: bytes.len(),
        });
    }
    if bytes.len() > needed {
        return Err(BinaryError::TrailingBytes(bytes.len() - needed));
    }
    Ok(dims)
}

/// Decodes the binary wire format, checking lengths and values.
pub fn decode_binary(bytes: &[u8]) -> Result<Vec<f32>, BinaryError> {
    check_framing(bytes, 4, 4)?;
    bytes[4..]
        .chunks_exact(4)
        .map(|c| {
            let v = f32::from_bits(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
            if v.is_nan() {
                Err(BinaryError::NotANumber)
            } else if v.is_infinite() {
                Err(BinaryError::Infinite)
            } else {
                Ok(v)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let v = vec![1.0f32, -2.5, 3e-7, f32::MAX];
        assert_eq!(decode_binary(&encode_binary(&v)).unwrap(), v);
    }

    #[test]
    fn rejects_every_truncation() {
        let bytes = encode_binary(&[1.0, 2.0, 3.0]);
        for len in 0..bytes.len() {
            assert!(
                matches!(
                    decode_binary(&bytes[..len]),
                    Err(BinaryError::Truncated { .. })
                ),
                "len {len}"
            );
        }
    }

    #[test]
    fn rejects_bad_headers_and_values() {
        assert_eq!(decode_binary(&[0, 0, 0, 0]), Err(BinaryError::NoDimensions));
        assert_eq!(
            decode_binary(&[0xff, 0xff, 0, 0]),
            Err(BinaryError::TooManyDimensions(65535))
        );
        assert_eq!(
            decode_binary(&[0, 1, 0, 7, 0, 0, 0, 0]),
            Err(BinaryError::UnusedNotZero(7))
        );
        let mut nan = encode_binary(&[1.0]);
        nan[4..8].copy_from_slice(&f32::NAN.to_bits().to_be_bytes());
        assert_eq!(decode_binary(&nan), Err(BinaryError::NotANumber));
        let mut inf = encode_binary(&[1.0]);
        inf[4..8].copy_from_slice(&f32::INFINITY.to_bits().to_be_bytes());
        assert_eq!(decode_binary(&inf), Err(BinaryError::Infinite));
        let mut long = encode_binary(&[1.0]);
        long.push(0);
        assert_eq!(decode_binary(&long), Err(BinaryError::TrailingBytes(1)));
    }
}
