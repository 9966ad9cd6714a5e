//! `avg` and `sum` of `qvector` and `sq8vector`: a float8[] state `{count, sum_1, ..., sum_n}`.
//!
//! Sums accumulate in float8 so averages of many rows stay accurate; the state
//! combines for parallel aggregation. Inside an aggregate the transition function
//! updates its own state in place instead of allocating a new array per row.

use crate::fmgr::{arg_datum, raise};
use crate::pg_fn;
use crate::types::qvector::{check_finite, qvector_arg};
use crate::types::sq8vector::sq8vector_arg;
use crate::types::vector_type::VectorType;
use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode as Code;

/// Returns the float8 elements of a state array (detoasted, mutable in aggregate memory).
///
/// # Safety
/// `datum` must be a 1-D float8[] without NULLs (our own state).
unsafe fn state_values<'a>(datum: pg_sys::Datum) -> &'a mut [f64] {
    // SAFETY: float8[] has no nulls bitmap here; data follows the fixed header (ARR_DATA_PTR).
    unsafe {
        let arr = pg_sys::pg_detoast_datum(datum.cast_mut_ptr()) as *mut pg_sys::ArrayType;
        if (*arr).ndim != 1 || (*arr).elemtype != pg_sys::FLOAT8OID || (*arr).dataoffset != 0 {
            raise(
                Code::ERRCODE_DATA_EXCEPTION,
                "invalid qvector aggregate state",
            );
        }
        let dims = *((arr as *mut u8).add(std::mem::size_of::<pg_sys::ArrayType>()) as *const i32);
        let header = std::mem::size_of::<pg_sys::ArrayType>() + 2 * std::mem::size_of::<i32>();
        let data = (arr as *mut u8).add((header + 7) & !7) as *mut f64;
        std::slice::from_raw_parts_mut(data, dims as usize)
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

/// Transition function body: adds the elements `v` of one row to the state (argument 0).
fn accumulate(fcinfo: pg_sys::FunctionCallInfo, v: &[f32]) -> pg_sys::Datum {
    // SAFETY: argument 0 is the float8[] state.
    let state = unsafe { state_values(arg_datum(fcinfo, 0)) };
    let count = state[0];
    if count > 0.0 && state.len() != v.len() + 1 {
        raise(
            Code::ERRCODE_DATA_EXCEPTION,
            format!("expected {} dimensions, not {}", state.len() - 1, v.len()),
        );
    }
    if count > 0.0 && in_aggregate(fcinfo) {
        state[0] += 1.0;
        for (s, x) in state[1..].iter_mut().zip(v) {
            *s += *x as f64;
        }
        // SAFETY: returning the state we updated in place.
        return unsafe { arg_datum(fcinfo, 0) };
    }
    let mut next = vec![0f64; v.len() + 1];
    next[0] = count + 1.0;
    for (i, x) in v.iter().enumerate() {
        next[i + 1] = if count > 0.0 { state[i + 1] } else { 0.0 } + *x as f64;
    }
    state_datum(&next)
}

pg_fn!(
    /// `qvector_accum(float8[], qvector)`: adds one vector to the state.
    qvector_accum,
    |fcinfo| {
        // SAFETY: argument 1 is a qvector.
        accumulate(fcinfo, unsafe { qvector_arg(fcinfo, 1) })
    }
);

pg_fn!(
    /// `sq8vector_accum(float8[], sq8vector)`: adds one decoded sq8vector to the state.
    sq8vector_accum,
    |fcinfo| {
        // SAFETY: argument 1 is an sq8vector.
        accumulate(fcinfo, &unsafe { sq8vector_arg(fcinfo, 1) }.decode())
    }
);

pg_fn!(
    /// `qvector_combine(float8[], float8[])`: merges two partial states.
    qvector_combine,
    |fcinfo| {
        // SAFETY: both arguments are float8[] states.
        let (a, b) = unsafe { (state_values(arg_datum(fcinfo, 0)), state_values(arg_datum(fcinfo, 1))) };
        if a[0] == 0.0 {
            return state_datum(b);
        }
        if b[0] == 0.0 {
            return state_datum(a);
        }
        if a.len() != b.len() {
            raise(
                Code::ERRCODE_DATA_EXCEPTION,
                format!("expected {} dimensions, not {}", a.len() - 1, b.len() - 1),
            );
        }
        let merged: Vec<f64> = a.iter().zip(b.iter()).map(|(x, y)| x + y).collect();
        state_datum(&merged)
    }
);

/// Final function body: the sums (divided by the count for `avg`) as a vector of
/// `vector_type`, or NULL for no rows.
fn finish(
    fcinfo: pg_sys::FunctionCallInfo,
    average: bool,
    vector_type: VectorType,
) -> pg_sys::Datum {
    // SAFETY: argument 0 is a float8[] state.
    let state = unsafe { state_values(arg_datum(fcinfo, 0)) };
    let count = state[0];
    if count == 0.0 {
        // SAFETY: returning NULL from a non-strict final function.
        return unsafe { pgrx::fcinfo::pg_return_null(fcinfo) };
    }
    let out: Vec<f32> = state[1..]
        .iter()
        .map(|s| if average { *s / count } else { *s } as f32)
        .collect();
    check_finite(&out);
    vector_type.datum(&out)
}

pg_fn!(
    /// `qvector_avg(float8[])`: final function of `avg(qvector)`.
    qvector_avg,
    |fcinfo| { finish(fcinfo, true, VectorType::QVector) }
);

pg_fn!(
    /// `qvector_sum(float8[])`: final function of `sum(qvector)`.
    qvector_sum,
    |fcinfo| { finish(fcinfo, false, VectorType::QVector) }
);

pg_fn!(
    /// `sq8vector_avg(float8[])`: final function of `avg(sq8vector)` (quantizes the mean).
    sq8vector_avg,
    |fcinfo| { finish(fcinfo, true, VectorType::Sq8Vector) }
);

pg_fn!(
    /// `sq8vector_sum(float8[])`: final function of `sum(sq8vector)` (quantizes the sum).
    sq8vector_sum,
    |fcinfo| { finish(fcinfo, false, VectorType::Sq8Vector) }
);
