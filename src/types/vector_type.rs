//! Which SQL vector type an index column holds, and reading/building its datums as
//! float4 elements, so the index code works on `&[f32]` whatever the column type.

use crate::types::qvector::{qvector_datum, qvector_from_datum};
use crate::types::sq8vector::{encode_datum, sq8vector_from_datum};
use pgrx::pg_sys;
use std::borrow::Cow;

/// The SQL type of an indexed column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VectorType {
    /// `qvector`: float4 elements.
    QVector,
    /// `sq8vector`: one byte per element plus a per-vector offset and scale.
    Sq8Vector,
}

impl VectorType {
    /// The SQL name of the type (for messages).
    pub fn name(self) -> &'static str {
        match self {
            VectorType::QVector => "qvector",
            VectorType::Sq8Vector => "sq8vector",
        }
    }

    /// Reads a datum of this type as float4 elements (decoding an sq8vector).
    ///
    /// # Safety
    /// `datum` must be a non-NULL value of this type.
    pub unsafe fn read<'a>(self, datum: pg_sys::Datum) -> Cow<'a, [f32]> {
        match self {
            // SAFETY: guaranteed by the caller.
            VectorType::QVector => Cow::Borrowed(unsafe { qvector_from_datum(datum) }),
            // SAFETY: guaranteed by the caller.
            VectorType::Sq8Vector => Cow::Owned(unsafe { sq8vector_from_datum(datum) }.decode()),
        }
    }

    /// Builds a datum of this type from float4 elements (quantizing for sq8vector).
    pub fn datum(self, values: &[f32]) -> pg_sys::Datum {
        match self {
            VectorType::QVector => qvector_datum(values),
            VectorType::Sq8Vector => encode_datum(values),
        }
    }
}
