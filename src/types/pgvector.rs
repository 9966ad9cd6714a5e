//! pgvector's `vector` and `halfvec` as seen by this extension: reading and building
//! their datums without pgvector's library, recognising them in an operator class, and
//! the casts to and from `qvector` / `sq8vector` that `sql/vectorize_quant_pgvector.sql`
//! (the companion extension) declares.
//!
//! On-disk layouts (pgvector 0.8): `vector` is a varlena {int32 header, int16 dim, int16
//! unused, float4 x[dim]} (the same shape as `qvector`); `halfvec` is {int32 header, int16
//! dim, int16 unused, float16 x[dim]}, elements in the server's byte order. A type counts
//! as pgvector's only if it is named `vector` / `halfvec` and belongs to the extension
//! `vector`, so a user's own type of that name is never decoded this way.

use crate::fmgr::{arg_datum, arg_i32, raise};
use crate::pg_fn;
use crate::types::qvector::{check_typmod, qvector_arg, qvector_datum, QVECTOR_HEADER_BYTES};
use crate::types::sq8vector::encode_datum;
use crate::types::vector_type::VectorType;
use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode as Code;
use std::ffi::CStr;

/// Bytes before the first element of a `vector` or `halfvec`.
const HEADER_BYTES: usize = QVECTOR_HEADER_BYTES;

/// Detoasts a varlena of `element_bytes`-wide elements and returns (pointer to the
/// elements, dims), checking the header (`ty` names the type in the message).
///
/// # Safety
/// `datum` must be a non-NULL varlena datum.
unsafe fn elements(datum: pg_sys::Datum, element_bytes: usize, ty: &str) -> (*const u8, usize) {
    // SAFETY: detoasting returns a 4-byte-header, int-aligned copy or the original.
    unsafe {
        let ptr = pg_sys::pg_detoast_datum(datum.cast_mut_ptr::<pg_sys::varlena>());
        let size = pgrx::varlena::varsize_any(ptr);
        if size < HEADER_BYTES {
            raise(
                Code::ERRCODE_DATA_CORRUPTED,
                format!("corrupted {ty} datum: {size} bytes"),
            );
        }
        let dims = i16::from_ne_bytes(*(ptr as *const u8).add(4).cast::<[u8; 2]>());
        if dims <= 0 || size != HEADER_BYTES + dims as usize * element_bytes {
            raise(
                Code::ERRCODE_DATA_CORRUPTED,
                format!("corrupted {ty} datum: {size} bytes for {dims} dimensions"),
            );
        }
        ((ptr as *const u8).add(HEADER_BYTES), dims as usize)
    }
}

/// The elements of a pgvector `vector` datum (valid for the current memory context).
///
/// # Safety
/// `datum` must be a non-NULL value of pgvector's `vector`.
pub unsafe fn vector_from_datum<'a>(datum: pg_sys::Datum) -> &'a [f32] {
    // SAFETY: guaranteed by the caller; the detoasted copy is int-aligned after 8 bytes.
    unsafe {
        let (data, dims) = elements(datum, 4, "vector");
        std::slice::from_raw_parts(data as *const f32, dims)
    }
}

/// The elements of a pgvector `halfvec` datum, widened to float4 (exactly).
///
/// # Safety
/// `datum` must be a non-NULL value of pgvector's `halfvec`.
pub unsafe fn halfvec_from_datum(datum: pg_sys::Datum) -> Vec<f32> {
    // SAFETY: guaranteed by the caller; elements are read unaligned.
    unsafe {
        let (data, dims) = elements(datum, 2, "halfvec");
        (0..dims)
            .map(|i| {
                let bits = u16::from_ne_bytes(*data.add(2 * i).cast::<[u8; 2]>());
                half::f16::from_bits(bits).to_f32()
            })
            .collect()
    }
}

/// Builds a pgvector `vector` datum (the same bytes as a `qvector`).
pub fn vector_datum(values: &[f32]) -> pg_sys::Datum {
    qvector_datum(values)
}

/// Builds a pgvector `halfvec` datum, rounding each element to the nearest float16.
pub fn halfvec_datum(values: &[f32]) -> pg_sys::Datum {
    let size = HEADER_BYTES + values.len() * 2;
    // SAFETY: palloc0 returns zeroed memory of `size` bytes (or ERRORs); the header and
    // elements are written inside it.
    unsafe {
        let ptr = pg_sys::palloc0(size) as *mut u8;
        pgrx::varlena::set_varsize_4b(ptr as *mut pg_sys::varlena, size as i32);
        *ptr.add(4).cast::<[u8; 2]>() = (values.len() as i16).to_ne_bytes();
        for (i, &x) in values.iter().enumerate() {
            *ptr.add(HEADER_BYTES + 2 * i).cast::<[u8; 2]>() =
                half::f16::from_f32(x).to_bits().to_ne_bytes();
        }
        pg_sys::Datum::from(ptr)
    }
}

/// `Some(PgVector / PgHalfvec)` when `type_oid` is pgvector's `vector` / `halfvec`.
pub fn pgvector_type(type_oid: pg_sys::Oid) -> Option<VectorType> {
    // SAFETY: a syscache lookup by OID; the tuple is released before returning and the
    // name is copied out first.
    let name = unsafe {
        let tuple = pg_sys::SearchSysCache1(
            pg_sys::SysCacheIdentifier::TYPEOID as i32,
            pg_sys::Datum::from(type_oid),
        );
        if tuple.is_null() {
            return None;
        }
        let form = pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_type>(tuple);
        let name = pgrx::name_data_to_str(&(*form).typname).to_string();
        pg_sys::ReleaseSysCache(tuple);
        name
    };
    let vector_type = match name.as_str() {
        "vector" => VectorType::PgVector,
        "halfvec" => VectorType::PgHalfvec,
        _ => return None,
    };
    // SAFETY: catalog lookups; get_extension_name returns a palloc'd string or NULL.
    let extension = unsafe {
        let ext = pg_sys::getExtensionOfObject(pg_sys::TypeRelationId, type_oid);
        if ext == pg_sys::InvalidOid {
            return None;
        }
        let name = pg_sys::get_extension_name(ext);
        if name.is_null() {
            return None;
        }
        CStr::from_ptr(name).to_string_lossy().into_owned()
    };
    (extension == "vector").then_some(vector_type)
}

/// The metric of a pgvector-type opclass from its support function 1 (pgvector's own
/// distance functions: squared L2, negative inner product, cosine and L1 distance).
pub fn pgvector_metric(support_function: &str) -> Option<crate::distance::Metric> {
    use crate::distance::Metric;
    Some(match support_function {
        "vector_l2_squared_distance" | "halfvec_l2_squared_distance" => Metric::L2,
        "vector_negative_inner_product" | "halfvec_negative_inner_product" => Metric::InnerProduct,
        "cosine_distance" => Metric::Cosine,
        "l1_distance" => Metric::L1,
        _ => return None,
    })
}

pg_fn!(
    /// `vector_to_qvector(vector, int4, bool)`: the cast `vector` → `qvector`.
    vector_to_qvector,
    |fcinfo| {
        // SAFETY: arguments are (vector, int4).
        let (values, typmod) = unsafe { (vector_from_datum(arg_datum(fcinfo, 0)), arg_i32(fcinfo, 1)) };
        check_typmod(values.len(), typmod);
        qvector_datum(values)
    }
);

pg_fn!(
    /// `qvector_to_vector(qvector, int4, bool)`: the cast `qvector` → `vector`.
    qvector_to_vector,
    |fcinfo| {
        // SAFETY: arguments are (qvector, int4).
        let (values, typmod) = unsafe { (qvector_arg(fcinfo, 0), arg_i32(fcinfo, 1)) };
        check_typmod(values.len(), typmod);
        vector_datum(values)
    }
);

pg_fn!(
    /// `halfvec_to_qvector(halfvec, int4, bool)`: the cast `halfvec` → `qvector` (exact).
    halfvec_to_qvector,
    |fcinfo| {
        // SAFETY: arguments are (halfvec, int4).
        let (values, typmod) = unsafe { (halfvec_from_datum(arg_datum(fcinfo, 0)), arg_i32(fcinfo, 1)) };
        check_typmod(values.len(), typmod);
        qvector_datum(&values)
    }
);

pg_fn!(
    /// `vector_to_sq8vector(vector, int4, bool)`: the cast `vector` → `sq8vector` (quantizes).
    vector_to_sq8vector,
    |fcinfo| {
        // SAFETY: arguments are (vector, int4).
        let (values, typmod) = unsafe { (vector_from_datum(arg_datum(fcinfo, 0)), arg_i32(fcinfo, 1)) };
        check_typmod(values.len(), typmod);
        encode_datum(values)
    }
);
