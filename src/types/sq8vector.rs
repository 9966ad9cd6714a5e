//! The `sq8vector` varlena: one byte per dimension plus a per-vector offset and scale
//! (see `sq8.rs` for the quantization and the distances on codes).
//!
//! On-disk layout: 4-byte varlena header, `u16 dims`, `u16 unused`, `f32 offset`,
//! `f32 scale`, then `dims` codes — 16 + n bytes against `qvector`'s 8 + 4n.
//! Text I/O uses `qvector`'s form: input is quantized, output prints the decoded values.
//! The SQL declarations are in sql/sq8vector.sql.

use crate::fmgr::{arg_datum, arg_i32, bool_datum, f64_datum, i32_datum, raise};
use crate::pg_fn;
use crate::types::operators::{compare, sign_bits_datum};
use crate::types::qvector::{
    array_elements, check_dims, check_typmod, cstring_datum, float4_array_datum, qvector_arg,
    qvector_datum, raise_binary_error, raise_op_error, raise_parse_error, recv_bytes, typmod_in,
};
use crate::types::sq8::{self, decode_sq8_binary, encode_sq8_binary, Sq8Ref, Sq8Vector};
use crate::types::text::{format_vector, parse_vector};
use crate::types::vecops::{self, Op};
use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode as Code;
use std::cmp::Ordering;

/// Type name used in messages.
const TYPE: &str = "sq8vector";

/// Bytes before the first code.
pub const SQ8VECTOR_HEADER_BYTES: usize = 16;

/// The fixed part of an `sq8vector` datum.
#[repr(C)]
struct Sq8Header {
    vl_len: u32,
    dims: u16,
    unused: u16,
    offset: f32,
    scale: f32,
}

const _: () = assert!(std::mem::size_of::<Sq8Header>() == SQ8VECTOR_HEADER_BYTES);

/// Detoasts an `sq8vector` datum and returns a view of it, checking the header.
///
/// # Safety
/// `datum` must point to an `sq8vector` varlena (possibly toasted or short-header).
pub unsafe fn sq8vector_from_datum<'a>(datum: pg_sys::Datum) -> Sq8Ref<'a> {
    // SAFETY: detoasting returns a 4-byte-header, int-aligned copy or the original.
    unsafe {
        let ptr = pg_sys::pg_detoast_datum(datum.cast_mut_ptr::<pg_sys::varlena>());
        let size = pgrx::varlena::varsize_any(ptr);
        let header = &*(ptr as *const Sq8Header);
        let dims = header.dims as usize;
        if size != SQ8VECTOR_HEADER_BYTES + dims
            || dims == 0
            || !header.offset.is_finite()
            || !(header.scale >= 0.0 && header.scale.is_finite())
        {
            raise(
                Code::ERRCODE_DATA_CORRUPTED,
                format!("corrupted sq8vector datum: {size} bytes for {dims} dimensions"),
            );
        }
        Sq8Ref {
            offset: header.offset,
            scale: header.scale,
            codes: std::slice::from_raw_parts((ptr as *const u8).add(SQ8VECTOR_HEADER_BYTES), dims),
        }
    }
}

/// Detoasts argument `n` (valid for the rest of the call).
///
/// # Safety
/// Argument `n` of `fcinfo` must be a non-NULL `sq8vector`.
pub unsafe fn sq8vector_arg<'a>(fcinfo: pg_sys::FunctionCallInfo, n: usize) -> Sq8Ref<'a> {
    // SAFETY: the caller guarantees the argument is an sq8vector datum.
    unsafe { sq8vector_from_datum(arg_datum(fcinfo, n)) }
}

/// Builds an `sq8vector` datum.
pub fn sq8vector_datum(v: Sq8Ref) -> pg_sys::Datum {
    let size = SQ8VECTOR_HEADER_BYTES + v.dims();
    // SAFETY: palloc0 returns zeroed, maxaligned memory of `size` bytes (or ERRORs); we
    // write the header and codes inside it.
    unsafe {
        let ptr = pg_sys::palloc0(size) as *mut u8;
        pgrx::varlena::set_varsize_4b(ptr as *mut pg_sys::varlena, size as i32);
        let header = &mut *(ptr as *mut Sq8Header);
        header.dims = v.dims() as u16;
        header.offset = v.offset;
        header.scale = v.scale;
        std::ptr::copy_nonoverlapping(v.codes.as_ptr(), ptr.add(SQ8VECTOR_HEADER_BYTES), v.dims());
        pg_sys::Datum::from(ptr)
    }
}

/// Quantizes checked float4 elements into an `sq8vector` datum.
pub fn encode_datum(values: &[f32]) -> pg_sys::Datum {
    sq8vector_datum(Sq8Vector::encode(values).as_ref())
}

pg_fn!(
    /// `sq8vector_in(cstring, oid, int4)`: parses `qvector`'s text form and quantizes it.
    sq8vector_in,
    |fcinfo| {
        // SAFETY: argument 0 of a type input function is a NUL-terminated C string.
        let input = unsafe { std::ffi::CStr::from_ptr(arg_datum(fcinfo, 0).cast_mut_ptr()) };
        let text = String::from_utf8_lossy(input.to_bytes());
        // SAFETY: argument 2 is the int4 typmod.
        let typmod = unsafe { arg_i32(fcinfo, 2) };
        let values = parse_vector(&text).unwrap_or_else(|e| raise_parse_error(TYPE, e, &text));
        check_typmod(values.len(), typmod);
        encode_datum(&values)
    }
);

pg_fn!(
    /// `sq8vector_out(sq8vector)`: prints the decoded values.
    sq8vector_out,
    |fcinfo| {
        // SAFETY: argument 0 is an sq8vector.
        let v = unsafe { sq8vector_arg(fcinfo, 0) };
        cstring_datum(&format_vector(&v.decode()))
    }
);

pg_fn!(
    /// `sq8vector_typmod_in(cstring[])`: validates `sq8vector(n)`.
    sq8vector_typmod_in,
    |fcinfo| {
        // SAFETY: argument 0 is a cstring[].
        unsafe { typmod_in(fcinfo, TYPE) }
    }
);

pg_fn!(
    /// `sq8vector_recv(internal, oid, int4)`: reads dims, offset, scale and codes.
    sq8vector_recv,
    |fcinfo| {
        // SAFETY: argument 0 of a receive function is a StringInfo.
        let bytes = unsafe { recv_bytes(fcinfo) };
        // SAFETY: argument 2 is the int4 typmod.
        let typmod = unsafe { arg_i32(fcinfo, 2) };
        let v = decode_sq8_binary(bytes).unwrap_or_else(|e| raise_binary_error(TYPE, e));
        check_typmod(v.codes.len(), typmod);
        sq8vector_datum(v.as_ref())
    }
);

pg_fn!(
    /// `sq8vector_send(sq8vector)`: writes the binary form as bytea.
    sq8vector_send,
    |fcinfo| {
        // SAFETY: argument 0 is an sq8vector.
        let bytes = encode_sq8_binary(unsafe { sq8vector_arg(fcinfo, 0) });
        pg_sys::Datum::from(pgrx::varlena::rust_byte_slice_to_bytea(&bytes).into_pg())
    }
);

pg_fn!(
    /// `sq8vector(sq8vector, int4, bool)`: the typmod coercion.
    sq8vector_typmod_cast,
    |fcinfo| {
        // SAFETY: arguments are (sq8vector, int4).
        let (v, typmod) = unsafe { (sq8vector_arg(fcinfo, 0), arg_i32(fcinfo, 1)) };
        check_typmod(v.dims(), typmod);
        // SAFETY: returning the (possibly detoasted) input unchanged is valid.
        unsafe { arg_datum(fcinfo, 0) }
    }
);

pg_fn!(
    /// `qvector_to_sq8vector(qvector, int4, bool)`: quantizes.
    qvector_to_sq8vector,
    |fcinfo| {
        // SAFETY: arguments are (qvector, int4).
        let (values, typmod) = unsafe { (qvector_arg(fcinfo, 0), arg_i32(fcinfo, 1)) };
        check_typmod(values.len(), typmod);
        encode_datum(values)
    }
);

pg_fn!(
    /// `sq8vector_to_qvector(sq8vector, int4, bool)`: decodes.
    sq8vector_to_qvector,
    |fcinfo| {
        // SAFETY: arguments are (sq8vector, int4).
        let (v, typmod) = unsafe { (sq8vector_arg(fcinfo, 0), arg_i32(fcinfo, 1)) };
        check_typmod(v.dims(), typmod);
        qvector_datum(&v.decode())
    }
);

pg_fn!(
    /// `array_to_sq8vector(anyarray, int4, bool)`: from int4[], real[], float8[], numeric[].
    array_to_sq8vector,
    |fcinfo| {
        // SAFETY: arguments are (array, int4 typmod).
        let (datum, typmod) = unsafe { (arg_datum(fcinfo, 0), arg_i32(fcinfo, 1)) };
        // SAFETY: argument 0 is an array datum.
        let values = unsafe { array_elements(datum, TYPE) };
        check_dims(TYPE, values.len());
        check_typmod(values.len(), typmod);
        encode_datum(&values)
    }
);

pg_fn!(
    /// `sq8vector_to_float4(sq8vector, int4, bool)`: casts to `real[]` (decoded values).
    sq8vector_to_float4,
    |fcinfo| {
        // SAFETY: argument 0 is an sq8vector.
        float4_array_datum(&unsafe { sq8vector_arg(fcinfo, 0) }.decode())
    }
);

/// Reads the two sq8vector arguments of a binary operator, checking their dimensions.
///
/// # Safety
/// Arguments 0 and 1 must be non-NULL sq8vectors.
unsafe fn two_args<'a>(fcinfo: pg_sys::FunctionCallInfo) -> (Sq8Ref<'a>, Sq8Ref<'a>) {
    // SAFETY: guaranteed by the caller.
    let (a, b) = unsafe { (sq8vector_arg(fcinfo, 0), sq8vector_arg(fcinfo, 1)) };
    if a.dims() != b.dims() {
        raise(
            Code::ERRCODE_DATA_EXCEPTION,
            format!(
                "different sq8vector dimensions {} and {}",
                a.dims(),
                b.dims()
            ),
        );
    }
    (a, b)
}

/// Cosine distance that ERRORs on a zero vector (as for `qvector`).
pub fn checked_cosine_distance(a: Sq8Ref, b: Sq8Ref) -> f64 {
    sq8::cosine_distance(a, b).unwrap_or_else(|| {
        raise(
            Code::ERRCODE_DATA_EXCEPTION,
            "cosine distance is undefined for a zero sq8vector",
        )
    })
}

pg_fn!(
    /// `l2_distance(sq8vector, sq8vector)` and `<->`.
    sq8vector_l2_distance,
    |fcinfo| {
        // SAFETY: two sq8vector arguments.
        let (a, b) = unsafe { two_args(fcinfo) };
        f64_datum(sq8::l2_squared(a, b).sqrt())
    }
);

pg_fn!(
    /// `sq8vector_l2_squared_distance(sq8vector, sq8vector)`: the index's L2 ordering.
    sq8vector_l2_squared_distance,
    |fcinfo| {
        // SAFETY: two sq8vector arguments.
        let (a, b) = unsafe { two_args(fcinfo) };
        f64_datum(sq8::l2_squared(a, b))
    }
);

pg_fn!(
    /// `inner_product(sq8vector, sq8vector)`.
    sq8vector_inner_product,
    |fcinfo| {
        // SAFETY: two sq8vector arguments.
        let (a, b) = unsafe { two_args(fcinfo) };
        f64_datum(sq8::dot(a, b))
    }
);

pg_fn!(
    /// `sq8vector_negative_inner_product(sq8vector, sq8vector)` and `<#>`.
    sq8vector_negative_inner_product,
    |fcinfo| {
        // SAFETY: two sq8vector arguments.
        let (a, b) = unsafe { two_args(fcinfo) };
        f64_datum(-sq8::dot(a, b))
    }
);

pg_fn!(
    /// `cosine_distance(sq8vector, sq8vector)` and `<=>`.
    sq8vector_cosine_distance,
    |fcinfo| {
        // SAFETY: two sq8vector arguments.
        let (a, b) = unsafe { two_args(fcinfo) };
        f64_datum(checked_cosine_distance(a, b))
    }
);

pg_fn!(
    /// `l1_distance(sq8vector, sq8vector)` and `<+>`.
    sq8vector_l1_distance,
    |fcinfo| {
        // SAFETY: two sq8vector arguments.
        let (a, b) = unsafe { two_args(fcinfo) };
        f64_datum(sq8::l1(a, b))
    }
);

pg_fn!(
    /// `vector_dims(sq8vector)`.
    sq8vector_dims,
    |fcinfo| {
        // SAFETY: argument 0 is an sq8vector.
        i32_datum(unsafe { sq8vector_arg(fcinfo, 0) }.dims() as i32)
    }
);

pg_fn!(
    /// `vector_norm(sq8vector)`: Euclidean norm, from the codes.
    sq8vector_norm,
    |fcinfo| {
        // SAFETY: argument 0 is an sq8vector.
        f64_datum(unsafe { sq8vector_arg(fcinfo, 0) }.norm_squared().sqrt())
    }
);

pg_fn!(
    /// `l2_normalize(sq8vector)`: the unit vector, quantized again (a zero vector stays zero).
    sq8vector_l2_normalize,
    |fcinfo| {
        // SAFETY: argument 0 is an sq8vector.
        let v = unsafe { sq8vector_arg(fcinfo, 0) };
        let norm = v.norm_squared().sqrt();
        let mut values = v.decode();
        if norm > 0.0 {
            for x in &mut values {
                *x = (*x as f64 / norm) as f32;
            }
        }
        encode_datum(&values)
    }
);

pg_fn!(
    /// `binary_quantize(sq8vector)`: `bit(n)` with 1 where the decoded element is positive.
    sq8vector_binary_quantize,
    |fcinfo| {
        // SAFETY: argument 0 is an sq8vector.
        sign_bits_datum(&unsafe { sq8vector_arg(fcinfo, 0) }.decode())
    }
);

/// Applies an element-wise operation to the decoded operands (with `qvector`'s overflow
/// and underflow checks) and quantizes the result.
///
/// # Safety
/// Arguments 0 and 1 must be non-NULL sq8vectors.
unsafe fn elementwise(fcinfo: pg_sys::FunctionCallInfo, op: Op) -> pg_sys::Datum {
    // SAFETY: guaranteed by the caller.
    let (a, b) = unsafe { two_args(fcinfo) };
    let (a, b) = (a.decode(), b.decode());
    let mut out = vec![0.0; a.len()];
    vecops::apply(op, &a, &b, &mut out).unwrap_or_else(|e| raise_op_error(e));
    encode_datum(&out)
}

pg_fn!(
    /// `sq8vector + sq8vector` (on decoded values, result quantized).
    sq8vector_add,
    |fcinfo| {
        // SAFETY: two sq8vector arguments.
        unsafe { elementwise(fcinfo, Op::Add) }
    }
);

pg_fn!(
    /// `sq8vector - sq8vector`.
    sq8vector_sub,
    |fcinfo| {
        // SAFETY: two sq8vector arguments.
        unsafe { elementwise(fcinfo, Op::Sub) }
    }
);

pg_fn!(
    /// `sq8vector * sq8vector` (element-wise).
    sq8vector_mul,
    |fcinfo| {
        // SAFETY: two sq8vector arguments.
        unsafe { elementwise(fcinfo, Op::Mul) }
    }
);

/// Compares the decoded values of the two sq8vector arguments (as `qvector` does).
///
/// # Safety
/// Arguments 0 and 1 must be non-NULL sq8vectors.
unsafe fn compare_args(fcinfo: pg_sys::FunctionCallInfo) -> Ordering {
    // SAFETY: guaranteed by the caller.
    let (a, b) = unsafe { (sq8vector_arg(fcinfo, 0), sq8vector_arg(fcinfo, 1)) };
    compare(&a.decode(), &b.decode())
}

/// Declares the btree comparison functions over [`compare_args`].
macro_rules! sq8_comparisons {
    ($($name:ident => $test:ident),* $(,)?) => {$(
        pg_fn!(
            /// A btree comparison operator on decoded values.
            $name,
            |fcinfo| {
                // SAFETY: two sq8vector arguments.
                bool_datum(unsafe { compare_args(fcinfo) }.$test())
            }
        );
    )*};
}

sq8_comparisons!(
    sq8vector_lt => is_lt,
    sq8vector_le => is_le,
    sq8vector_eq => is_eq,
    sq8vector_ne => is_ne,
    sq8vector_ge => is_ge,
    sq8vector_gt => is_gt,
);

pg_fn!(
    /// `sq8vector_cmp`: btree support function 1.
    sq8vector_cmp,
    |fcinfo| {
        // SAFETY: two sq8vector arguments.
        i32_datum(unsafe { compare_args(fcinfo) } as i32)
    }
);
