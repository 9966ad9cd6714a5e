//! `avg` and `sum` of `qvector` and `sq8vector`: a float8[] state `{count, sum_1, ..., sum_n}`.
//!
//! Sums accumulate in float8 so averages of many rows stay accurate; the state
//! combines for parallel aggregation. Inside an aggregate the transition function
//! updates its own state in place instead of allocating a new array per row.
//!
//! The support functions are callable from SQL, so each one checks the state it is
//! given as pgvector does: a one-dimensional float8[] of at least one element with no
//! NULLs, whose dimensions (length - 1) match the other input and stay within
//! 1..=16000 whenever a vector is built from it. `{0}` is the empty state.

use crate::fmgr::{arg_datum, raise};
use crate::pg_fn;
use crate::types::qvector::{check_dims, qvector_arg};
use crate::types::sq8vector::sq8vector_arg;
use crate::types::text::MAX_DIMS;
use crate::types::vector_type::VectorType;
use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode as Code;

/// Returns the detoasted state array and its float8 elements (mutable: inside an
/// aggregate the transition function owns its state), ERRORing unless it is a 1-D
/// float8[] with at least one element and no NULLs; `caller` names the function.
///
/// # Safety
/// `datum` must be a non-NULL `float8[]` datum (the SQL signature guarantees the type).
unsafe fn state_array<'a>(datum: pg_sys::Datum, caller: &str) -> (pg_sys::Datum, &'a mut [f64]) {
    // SAFETY: detoasting an array datum gives a 4-byte-header, aligned ArrayType; for
    // ndim == 1 the dimension array follows the fixed header, and with no NULL bitmap
    // (dataoffset == 0) the data starts at the MAXALIGNed end of the header (ARR_DATA_PTR).
    unsafe {
        let arr = pg_sys::pg_detoast_datum(datum.cast_mut_ptr()) as *mut pg_sys::ArrayType;
        let base = arr as *mut u8;
        let dims_ptr = base.add(std::mem::size_of::<pg_sys::ArrayType>()) as *const i32;
        if (*arr).ndim != 1
            || (*arr).elemtype != pg_sys::FLOAT8OID
            || (*arr).dataoffset != 0
            || *dims_ptr < 1
        {
            raise(
                Code::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("{caller}: expected state array"),
            );
        }
        let header = std::mem::size_of::<pg_sys::ArrayType>() + 2 * std::mem::size_of::<i32>();
        let data = base.add((header + 7) & !7) as *mut f64;
        (
            pg_sys::Datum::from(arr),
            std::slice::from_raw_parts_mut(data, *dims_ptr as usize),
        )
    }
}

/// Builds a float8[] state datum.
fn state_datum(values: &[f64]) -> pg_sys::Datum {
    let datums: Vec<pg_sys::Datum> = values.iter().map(|v| crate::fmgr::f64_datum(*v)).collect();
    // SAFETY: float8 is by-value 8-byte double-aligned; construct_array copies.
    unsafe {
        pg_sys::Datum::from(pg_sys::construct_array(
            datums.as_ptr() as *mut pg_sys::Datum,
            datums.len() as i32,
            pg_sys::FLOAT8OID,
            8,
            true,
            b'd' as std::ffi::c_char,
        ))
    }
}

/// True when called as an aggregate transition function (state may be updated in place).
fn in_aggregate(fcinfo: pg_sys::FunctionCallInfo) -> bool {
    // SAFETY: AggCheckCallContext only inspects fcinfo->context.
    unsafe { pg_sys::AggCheckCallContext(fcinfo, std::ptr::null_mut()) != 0 }
}

/// ERRORs unless a state of `state_dims` dimensions can take a vector of `dims`.
fn check_state_dims(state_dims: usize, dims: usize) {
    if state_dims != dims {
        raise(
            Code::ERRCODE_DATA_EXCEPTION,
            format!("expected {state_dims} dimensions, not {dims}"),
        );
    }
}

/// Which aggregate a transition function serves (only the dimension message differs:
/// pgvector's `sum` adds vectors, its `avg` accumulates a state).
#[derive(Clone, Copy)]
enum Aggregate {
    /// `avg`: "expected 2 dimensions, not 1".
    Avg,
    /// `sum` of the named type: "different qvector dimensions 2 and 1".
    Sum(&'static str),
}

/// ERRORs if a float8 sum overflowed.
fn check_sum(v: f64) {
    if v.is_infinite() {
        raise(
            Code::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
            "value out of range: overflow",
        );
    }
}

/// Transition function body: adds the elements `v` of one row to the state (argument 0).
fn accumulate(
    fcinfo: pg_sys::FunctionCallInfo,
    v: &[f32],
    caller: &str,
    aggregate: Aggregate,
) -> pg_sys::Datum {
    // SAFETY: argument 0 is the float8[] state.
    let (array, state) = unsafe { state_array(arg_datum(fcinfo, 0), caller) };
    let dims = state.len() - 1;
    if dims == 0 {
        let mut next = Vec::with_capacity(v.len() + 1);
        next.push(state[0] + 1.0);
        next.extend(v.iter().map(|x| *x as f64));
        return state_datum(&next);
    }
    match aggregate {
        Aggregate::Avg => check_state_dims(dims, v.len()),
        Aggregate::Sum(ty) if dims != v.len() => raise(
            Code::ERRCODE_DATA_EXCEPTION,
            format!("different {ty} dimensions {dims} and {}", v.len()),
        ),
        Aggregate::Sum(_) => {}
    }
    if in_aggregate(fcinfo) {
        state[0] += 1.0;
        for (s, x) in state[1..].iter_mut().zip(v) {
            *s += *x as f64;
            check_sum(*s);
        }
        // The (detoasted) state we updated in place; nodeAgg copies it into the
        // aggregate context if detoasting made a new one.
        return array;
    }
    let mut next = Vec::with_capacity(state.len());
    next.push(state[0] + 1.0);
    for (s, x) in state[1..].iter().zip(v) {
        let sum = s + *x as f64;
        check_sum(sum);
        next.push(sum);
    }
    state_datum(&next)
}

pg_fn!(
    /// `qvector_accum(float8[], qvector)`: adds one vector to the state of `avg`.
    qvector_accum,
    |fcinfo| {
        // SAFETY: argument 1 is a qvector.
        let v = unsafe { qvector_arg(fcinfo, 1) };
        accumulate(fcinfo, v, "qvector_accum", Aggregate::Avg)
    }
);

pg_fn!(
    /// `qvector_sum_accum(float8[], qvector)`: adds one vector to the state of `sum`.
    qvector_sum_accum,
    |fcinfo| {
        // SAFETY: argument 1 is a qvector.
        let v = unsafe { qvector_arg(fcinfo, 1) };
        accumulate(fcinfo, v, "qvector_sum_accum", Aggregate::Sum("qvector"))
    }
);

pg_fn!(
    /// `sq8vector_accum(float8[], sq8vector)`: adds one decoded sq8vector to the state of `avg`.
    sq8vector_accum,
    |fcinfo| {
        // SAFETY: argument 1 is an sq8vector.
        let v = unsafe { sq8vector_arg(fcinfo, 1) }.decode();
        accumulate(fcinfo, &v, "sq8vector_accum", Aggregate::Avg)
    }
);

pg_fn!(
    /// `sq8vector_sum_accum(float8[], sq8vector)`: adds one decoded sq8vector to the state of `sum`.
    sq8vector_sum_accum,
    |fcinfo| {
        // SAFETY: argument 1 is an sq8vector.
        let v = unsafe { sq8vector_arg(fcinfo, 1) }.decode();
        accumulate(fcinfo, &v, "sq8vector_sum_accum", Aggregate::Sum("sq8vector"))
    }
);

/// Copies a partial state that is combined with an empty one: `{0}` stays empty, any
/// other state must have 1..=16000 dimensions.
fn copy_state(state: &[f64]) -> pg_sys::Datum {
    if state[0] == 0.0 {
        return state_datum(&[0.0]);
    }
    check_dims("qvector", state.len() - 1);
    state_datum(state)
}

pg_fn!(
    /// `qvector_combine(float8[], float8[])`: merges two partial states.
    qvector_combine,
    |fcinfo| {
        const CALLER: &str = "qvector_combine";
        // SAFETY: both arguments are float8[] states.
        let ((_, a), (_, b)) = unsafe {
            (
                state_array(arg_datum(fcinfo, 0), CALLER),
                state_array(arg_datum(fcinfo, 1), CALLER),
            )
        };
        for s in [&*a, &*b] {
            if s.len() - 1 > MAX_DIMS {
                check_dims("qvector", s.len() - 1);
            }
        }
        if a[0] == 0.0 {
            return copy_state(b);
        }
        if b[0] == 0.0 {
            return copy_state(a);
        }
        check_dims("qvector", a.len() - 1);
        check_state_dims(a.len() - 1, b.len() - 1);
        let merged: Vec<f64> = a
            .iter()
            .zip(b.iter())
            .map(|(x, y)| {
                let sum = x + y;
                check_sum(sum);
                sum
            })
            .collect();
        state_datum(&merged)
    }
);

/// Final function body: the sums (divided by the count for `avg`) as a vector of
/// `vector_type`, or NULL for no rows.
fn finish(
    fcinfo: pg_sys::FunctionCallInfo,
    average: bool,
    vector_type: VectorType,
    caller: &str,
) -> pg_sys::Datum {
    // SAFETY: argument 0 is a float8[] state.
    let (_, state) = unsafe { state_array(arg_datum(fcinfo, 0), caller) };
    let count = state[0];
    if count == 0.0 {
        // SAFETY: returning NULL from a final function (SQL defines avg of no rows as NULL).
        return unsafe { pgrx::fcinfo::pg_return_null(fcinfo) };
    }
    let ty = vector_type.name();
    check_dims(ty, state.len() - 1);
    let out: Vec<f32> = state[1..]
        .iter()
        .map(|s| if average { *s / count } else { *s } as f32)
        .collect();
    for x in &out {
        if x.is_nan() {
            raise(
                Code::ERRCODE_DATA_EXCEPTION,
                format!("NaN not allowed in {ty}"),
            );
        }
        if x.is_infinite() {
            // pgvector: avg checks the element, sum (float4 additions) overflows.
            if average {
                raise(
                    Code::ERRCODE_DATA_EXCEPTION,
                    format!("infinite value not allowed in {ty}"),
                );
            }
            check_sum(f64::INFINITY);
        }
    }
    vector_type.datum(&out)
}

pg_fn!(
    /// `qvector_avg(float8[])`: final function of `avg(qvector)`.
    qvector_avg,
    |fcinfo| { finish(fcinfo, true, VectorType::QVector, "qvector_avg") }
);

pg_fn!(
    /// `qvector_sum(float8[])`: final function of `sum(qvector)`.
    qvector_sum,
    |fcinfo| { finish(fcinfo, false, VectorType::QVector, "qvector_sum") }
);

pg_fn!(
    /// `sq8vector_avg(float8[])`: final function of `avg(sq8vector)` (quantizes the mean).
    sq8vector_avg,
    |fcinfo| { finish(fcinfo, true, VectorType::Sq8Vector, "sq8vector_avg") }
);

pg_fn!(
    /// `sq8vector_sum(float8[])`: final function of `sum(sq8vector)` (quantizes the sum).
    sq8vector_sum,
    |fcinfo| { finish(fcinfo, false, VectorType::Sq8Vector, "sq8vector_sum") }
);
