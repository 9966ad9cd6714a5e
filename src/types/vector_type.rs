//! Which SQL vector type an index column holds, and reading/building its datums as
//! float4 elements, so the index code works on `&[f32]` whatever the column type.

use crate::types::pgvector::{halfvec_datum, halfvec_from_datum, vector_datum, vector_from_datum};
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
    /// pgvector's `vector` (float4 elements; opclasses from `vectorize_quant_pgvector`).
    PgVector,
    /// pgvector's `halfvec` (float16 elements).
    PgHalfvec,
}

impl VectorType {
    /// The SQL name of the type (for messages).
    pub fn name(self) -> &'static str {
        match self {
            VectorType::QVector => "qvector",
            VectorType::Sq8Vector => "sq8vector",
            VectorType::PgVector => "vector",
            VectorType::PgHalfvec => "halfvec",
        }
    }

    /// Whether this is one of pgvector's types (re-ranked with pgvector's own functions).
    pub fn is_pgvector(self) -> bool {
        matches!(self, VectorType::PgVector | VectorType::PgHalfvec)
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
            // SAFETY: guaranteed by the caller.
            VectorType::PgVector => Cow::Borrowed(unsafe { vector_from_datum(datum) }),
            // SAFETY: guaranteed by the caller.
            VectorType::PgHalfvec => Cow::Owned(unsafe { halfvec_from_datum(datum) }),
        }
    }

    /// Builds a datum of this type from float4 elements (quantizing for sq8vector, rounding to float16 for halfvec).
    pub fn datum(self, values: &[f32]) -> pg_sys::Datum {
        match self {
            VectorType::QVector => qvector_datum(values),
            VectorType::Sq8Vector => encode_datum(values),
            VectorType::PgVector => vector_datum(values),
            VectorType::PgHalfvec => halfvec_datum(values),
        }
    }
}
