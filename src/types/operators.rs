//! `qvector` operators and functions: distances, norms, arithmetic, comparison.
//!
//! Distances follow pgvector: `<->` L2, `<#>` negative inner product, `<=>` cosine
//! distance, `<+>` L1, each returning float8. Unlike pgvector, cosine distance with a
//! zero vector is an ERROR (DESIGN.md: "zero vectors under cosine" are bad input),
//! not a NaN that would sort unpredictably.

use crate::distance;
use crate::fmgr::{bool_datum, f64_datum, i32_datum, raise};
use crate::pg_fn;
use crate::types::qvector::{new_qvector, qvector_arg, raise_op_error};
use crate::types::vecops::{self, Op};
use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode as Code;
use std::cmp::Ordering;

/// ERRORs unless both operands have the same dimensions.
pub fn check_same_dims(a: &[f32], b: &[f32]) {
    if a.len() != b.len() {
        raise(
            Code::ERRCODE_DATA_EXCEPTION,
            format!("different qvector dimensions {} and {}", a.len(), b.len()),
        );
    }
}

/// Reads the two qvector arguments of a binary operator, checking their dimensions.
///
/// # Safety
/// Arguments 0 and 1 must be non-NULL qvectors.
unsafe fn two_args<'a>(fcinfo: pg_sys::FunctionCallInfo) -> (&'a [f32], &'a [f32]) {
    // SAFETY: guaranteed by the caller.
    let (a, b) = unsafe { (qvector_arg(fcinfo, 0), qvector_arg(fcinfo, 1)) };
    check_same_dims(a, b);
    (a, b)
}

/// Cosine distance that ERRORs on a zero vector.
pub fn checked_cosine_distance(a: &[f32], b: &[f32]) -> f64 {
    let (dot, na, nb) = dot_and_norms(a, b);
    if na == 0.0 || nb == 0.0 {
        raise(
            Code::ERRCODE_DATA_EXCEPTION,
            "cosine distance is undefined for a zero qvector",
        );
    }
    (1.0 - dot / (na * nb).sqrt()).clamp(0.0, 2.0)
}

/// Dot product and both squared norms in f64 (for exact SQL-level results).
fn dot_and_norms(a: &[f32], b: &[f32]) -> (f64, f64, f64) {
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (*x as f64, *y as f64);
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    (dot, na, nb)
}

pg_fn!(
    /// `l2_distance(qvector, qvector)` and `<->`.
    qvector_l2_distance,
    |fcinfo| {
        // SAFETY: two qvector arguments.
        let (a, b) = unsafe { two_args(fcinfo) };
        f64_datum(distance::l2_distance_f64(a, b))
    }
);

pg_fn!(
    /// `qvector_l2_squared_distance(qvector, qvector)`: squared L2, the index's L2 ordering.
    qvector_l2_squared_distance,
    |fcinfo| {
        // SAFETY: two qvector arguments.
        let (a, b) = unsafe { two_args(fcinfo) };
        f64_datum(distance::l2_squared_f64(a, b))
    }
);

pg_fn!(
    /// `inner_product(qvector, qvector)`.
    qvector_inner_product,
    |fcinfo| {
        // SAFETY: two qvector arguments.
        let (a, b) = unsafe { two_args(fcinfo) };
        f64_datum(distance::dot_f64(a, b))
    }
);

pg_fn!(
    /// `qvector_negative_inner_product(qvector, qvector)` and `<#>`.
    qvector_negative_inner_product,
    |fcinfo| {
        // SAFETY: two qvector arguments.
        let (a, b) = unsafe { two_args(fcinfo) };
        f64_datum(-distance::dot_f64(a, b))
    }
);

pg_fn!(
    /// `cosine_distance(qvector, qvector)` and `<=>`.
    qvector_cosine_distance,
    |fcinfo| {
        // SAFETY: two qvector arguments.
        let (a, b) = unsafe { two_args(fcinfo) };
        f64_datum(checked_cosine_distance(a, b))
    }
);

pg_fn!(
    /// `l1_distance(qvector, qvector)` and `<+>`.
    qvector_l1_distance,
    |fcinfo| {
        // SAFETY: two qvector arguments.
        let (a, b) = unsafe { two_args(fcinfo) };
        f64_datum(distance::l1_f64(a, b))
    }
);

pg_fn!(
    /// `vector_dims(qvector)`.
    qvector_dims,
    |fcinfo| {
        // SAFETY: argument 0 is a qvector.
        let a = unsafe { qvector_arg(fcinfo, 0) };
        i32_datum(a.len() as i32)
    }
);

pg_fn!(
    /// `vector_norm(qvector)`: Euclidean norm.
    qvector_norm,
    |fcinfo| {
        // SAFETY: argument 0 is a qvector.
        let a = unsafe { qvector_arg(fcinfo, 0) };
        f64_datum(a.iter().map(|x| (*x as f64) * (*x as f64)).sum::<f64>().sqrt())
    }
);

pg_fn!(
    /// `l2_normalize(qvector)`: unit vector (a zero vector stays zero, as in pgvector).
    qvector_l2_normalize,
    |fcinfo| {
        // SAFETY: argument 0 is a qvector.
        let a = unsafe { qvector_arg(fcinfo, 0) };
        let norm = a.iter().map(|x| (*x as f64) * (*x as f64)).sum::<f64>().sqrt();
        let (datum, out) = new_qvector(a.len());
        if norm > 0.0 {
            for (o, x) in out.iter_mut().zip(a) {
                *o = (*x as f64 / norm) as f32;
            }
        }
        datum
    }
);

/// Builds a `bit(n)` datum with 1 where the element is positive (`binary_quantize`).
pub fn sign_bits_datum(values: &[f32]) -> pg_sys::Datum {
    let bytes = values.len().div_ceil(8);
    let size = 8 + bytes; // varlena header + int32 bit length + bits
                          // SAFETY: palloc0'd buffer of `size` bytes laid out as a VarBit.
    unsafe {
        let ptr = pg_sys::palloc0(size) as *mut u8;
        pgrx::varlena::set_varsize_4b(ptr as *mut pg_sys::varlena, size as i32);
        *(ptr.add(4) as *mut i32) = values.len() as i32;
        let bits = std::slice::from_raw_parts_mut(ptr.add(8), bytes);
        for (i, x) in values.iter().enumerate() {
            if *x > 0.0 {
                bits[i / 8] |= 0x80 >> (i % 8);
            }
        }
        pg_sys::Datum::from(ptr)
    }
}

pg_fn!(
    /// `binary_quantize(qvector)`: `bit(n)` with 1 where the element is positive.
    qvector_binary_quantize,
    |fcinfo| {
        // SAFETY: argument 0 is a qvector.
        sign_bits_datum(unsafe { qvector_arg(fcinfo, 0) })
    }
);

/// Applies an element-wise operation with pgvector's overflow and underflow checks.
fn elementwise(a: &[f32], b: &[f32], op: Op) -> pg_sys::Datum {
    check_same_dims(a, b);
    let (datum, out) = new_qvector(a.len());
    vecops::apply(op, a, b, out).unwrap_or_else(|e| raise_op_error(e));
    datum
}

pg_fn!(
    /// `qvector + qvector`.
    qvector_add,
    |fcinfo| {
        // SAFETY: two qvector arguments.
        let (a, b) = unsafe { two_args(fcinfo) };
        elementwise(a, b, Op::Add)
    }
);

pg_fn!(
    /// `qvector - qvector`.
    qvector_sub,
    |fcinfo| {
        // SAFETY: two qvector arguments.
        let (a, b) = unsafe { two_args(fcinfo) };
        elementwise(a, b, Op::Sub)
    }
);

pg_fn!(
    /// `qvector * qvector` (element-wise).
    qvector_mul,
    |fcinfo| {
        // SAFETY: two qvector arguments.
        let (a, b) = unsafe { two_args(fcinfo) };
        elementwise(a, b, Op::Mul)
    }
);

/// Total order of qvectors: element-wise, then by dimensions (as pgvector).
pub fn compare(a: &[f32], b: &[f32]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        match x.partial_cmp(y) {
            Some(Ordering::Equal) | None => continue,
            Some(other) => return other,
        }
    }
    a.len().cmp(&b.len())
}

/// Compares the two qvector arguments.
///
/// # Safety
/// Arguments 0 and 1 must be non-NULL qvectors.
unsafe fn compare_args(fcinfo: pg_sys::FunctionCallInfo) -> Ordering {
    // SAFETY: guaranteed by the caller.
    unsafe { compare(qvector_arg(fcinfo, 0), qvector_arg(fcinfo, 1)) }
}

pg_fn!(
    /// `qvector_cmp`: btree support function 1.
    qvector_cmp,
    |fcinfo| {
        // SAFETY: two qvector arguments.
        i32_datum(unsafe { compare_args(fcinfo) } as i32)
    }
);

pg_fn!(
    /// `<`.
    qvector_lt,
    |fcinfo| {
        // SAFETY: two qvector arguments.
        bool_datum(unsafe { compare_args(fcinfo) }.is_lt())
    }
);

pg_fn!(
    /// `<=`.
    qvector_le,
    |fcinfo| {
        // SAFETY: two qvector arguments.
        bool_datum(unsafe { compare_args(fcinfo) }.is_le())
    }
);

pg_fn!(
    /// `=`.
    qvector_eq,
    |fcinfo| {
        // SAFETY: two qvector arguments.
        bool_datum(unsafe { compare_args(fcinfo) }.is_eq())
    }
);

pg_fn!(
    /// `<>`.
    qvector_ne,
    |fcinfo| {
        // SAFETY: two qvector arguments.
        bool_datum(unsafe { compare_args(fcinfo) }.is_ne())
    }
);

pg_fn!(
    /// `>=`.
    qvector_ge,
    |fcinfo| {
        // SAFETY: two qvector arguments.
        bool_datum(unsafe { compare_args(fcinfo) }.is_ge())
    }
);

pg_fn!(
    /// `>`.
    qvector_gt,
    |fcinfo| {
        // SAFETY: two qvector arguments.
        bool_datum(unsafe { compare_args(fcinfo) }.is_gt())
    }
);
