//! `subvector(v, start, count)` and `v || w` for `qvector` and `sq8vector`, with
//! pgvector's semantics and messages (bounds in `vecops::subvector_range`).
//!
//! An sq8vector's subvector keeps its offset and scale, so it decodes to exactly the
//! selected elements; a concatenation is quantized again over both halves, like the
//! other sq8vector operators that build a new vector.

use crate::fmgr::{arg_i32, raise};
use crate::pg_fn;
use crate::types::qvector::{check_dims, qvector_arg, qvector_datum};
use crate::types::sq8::Sq8Ref;
use crate::types::sq8vector::{encode_datum, sq8vector_arg, sq8vector_datum};
use crate::types::vecops::subvector_range;
use pgrx::pg_sys::errcodes::PgSqlErrorCode as Code;
use std::ops::Range;

/// The range `subvector(_, start, count)` selects from `dims` elements, or the ERROR
/// pgvector raises for an empty one.
fn selected(ty: &str, dims: usize, start: i32, count: i32) -> Range<usize> {
    subvector_range(dims, start, count).unwrap_or_else(|| {
        raise(
            Code::ERRCODE_DATA_EXCEPTION,
            format!("{ty} must have at least 1 dimension"),
        )
    })
}

pg_fn!(
    /// `subvector(qvector, int4, int4)`: `count` elements from 1-based `start`.
    qvector_subvector,
    |fcinfo| {
        // SAFETY: arguments are (qvector, int4, int4).
        let (v, start, count) =
            unsafe { (qvector_arg(fcinfo, 0), arg_i32(fcinfo, 1), arg_i32(fcinfo, 2)) };
        qvector_datum(&v[selected("qvector", v.len(), start, count)])
    }
);

pg_fn!(
    /// `qvector || qvector`: concatenation (at most 16000 dimensions).
    qvector_concat,
    |fcinfo| {
        // SAFETY: two qvector arguments.
        let (a, b) = unsafe { (qvector_arg(fcinfo, 0), qvector_arg(fcinfo, 1)) };
        check_dims("qvector", a.len() + b.len());
        let mut values = Vec::with_capacity(a.len() + b.len());
        values.extend_from_slice(a);
        values.extend_from_slice(b);
        qvector_datum(&values)
    }
);

pg_fn!(
    /// `subvector(sq8vector, int4, int4)`: the selected codes with the same offset and scale.
    sq8vector_subvector,
    |fcinfo| {
        // SAFETY: arguments are (sq8vector, int4, int4).
        let (v, start, count) =
            unsafe { (sq8vector_arg(fcinfo, 0), arg_i32(fcinfo, 1), arg_i32(fcinfo, 2)) };
        let range = selected("sq8vector", v.dims(), start, count);
        sq8vector_datum(Sq8Ref {
            offset: v.offset,
            scale: v.scale,
            codes: &v.codes[range],
        })
    }
);

pg_fn!(
    /// `sq8vector || sq8vector`: the decoded values of both, quantized again.
    sq8vector_concat,
    |fcinfo| {
        // SAFETY: two sq8vector arguments.
        let (a, b) = unsafe { (sq8vector_arg(fcinfo, 0), sq8vector_arg(fcinfo, 1)) };
        check_dims("sq8vector", a.dims() + b.dims());
        let mut values = a.decode();
        values.extend(b.decode());
        encode_datum(&values)
    }
);
