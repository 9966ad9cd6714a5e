//! The `qvector` varlena: layout, detoasting, construction, I/O, typmod and casts.
//!
//! On-disk layout (same shape as pgvector's `vector`, so sizes compare 1:1):
//! 4-byte varlena header, `u16 dims`, `u16 unused`, then `dims` float4 values.

use crate::fmgr::{arg_bool, arg_datum, arg_i32, raise};
use crate::pg_fn;
use crate::types::binary::{decode_binary, encode_binary, BinaryError};
use crate::types::text::{format_vector, parse_vector, ParseError, MAX_DIMS};
use crate::types::vecops::OpError;
use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode as Code;

/// Bytes before the first element.
pub const QVECTOR_HEADER_BYTES: usize = 8;

/// The fixed part of a `qvector` datum.
#[repr(C)]
struct QVectorHeader {
    vl_len: u32,
    dims: u16,
    unused: u16,
}

const _: () = assert!(std::mem::size_of::<QVectorHeader>() == QVECTOR_HEADER_BYTES);

/// Detoasts argument `n` and returns its elements (valid for the rest of the call).
///
/// # Safety
/// Argument `n` of `fcinfo` must be a non-NULL `qvector`.
pub unsafe fn qvector_arg<'a>(fcinfo: pg_sys::FunctionCallInfo, n: usize) -> &'a [f32] {
    // SAFETY: the caller guarantees the argument is a qvector datum.
    unsafe { qvector_from_datum(arg_datum(fcinfo, n)) }
}

/// Detoasts a `qvector` datum and returns its elements, checking the header.
///
/// # Safety
/// `datum` must point to a `qvector` varlena (possibly toasted or short-header).
pub unsafe fn qvector_from_datum<'a>(datum: pg_sys::Datum) -> &'a [f32] {
    // SAFETY: detoasting returns a 4-byte-header, int-aligned copy or the original.
    unsafe {
        let ptr = pg_sys::pg_detoast_datum(datum.cast_mut_ptr::<pg_sys::varlena>());
        let size = pgrx::varlena::varsize_any(ptr);
        let header = &*(ptr as *const QVectorHeader);
        let dims = header.dims as usize;
        if size != QVECTOR_HEADER_BYTES + dims * 4 || dims == 0 {
            raise(
                Code::ERRCODE_DATA_CORRUPTED,
                format!("corrupted qvector datum: {size} bytes for {dims} dimensions"),
            );
        }
        std::slice::from_raw_parts(
            (ptr as *const u8).add(QVECTOR_HEADER_BYTES) as *const f32,
            dims,
        )
    }
}

/// Allocates a `qvector` of `dims` zeroed elements and returns it with its element slice.
pub fn new_qvector<'a>(dims: usize) -> (pg_sys::Datum, &'a mut [f32]) {
    let size = QVECTOR_HEADER_BYTES + dims * 4;
    // SAFETY: palloc0 returns zeroed, maxaligned memory of `size` bytes (or ERRORs);
    // we write the header inside it and hand out the element area.
    unsafe {
        let ptr = pg_sys::palloc0(size) as *mut u8;
        pgrx::varlena::set_varsize_4b(ptr as *mut pg_sys::varlena, size as i32);
        (*(ptr as *mut QVectorHeader)).dims = dims as u16;
        let data = std::slice::from_raw_parts_mut(ptr.add(QVECTOR_HEADER_BYTES) as *mut f32, dims);
        (pg_sys::Datum::from(ptr), data)
    }
}

/// Builds a `qvector` datum from elements (already validated).
pub fn qvector_datum(values: &[f32]) -> pg_sys::Datum {
    let (datum, data) = new_qvector(values.len());
    data.copy_from_slice(values);
    datum
}

/// ERRORs unless `dims` is within 1..=16000 (`ty` names the type in the message).
pub fn check_dims(ty: &str, dims: usize) {
    if dims == 0 {
        raise(
            Code::ERRCODE_DATA_EXCEPTION,
            format!("{ty} must have at least 1 dimension"),
        );
    }
    if dims > MAX_DIMS {
        raise(
            Code::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            format!("{ty} cannot have more than {MAX_DIMS} dimensions"),
        );
    }
}

/// ERRORs if a typmod is set and differs from `dims`.
pub fn check_typmod(dims: usize, typmod: i32) {
    if typmod != -1 && typmod as usize != dims {
        raise(
            Code::ERRCODE_DATA_EXCEPTION,
            format!("expected {typmod} dimensions, not {dims}"),
        );
    }
}

/// Raises the ERROR of a failed element-wise operation (PostgreSQL's float messages).
pub fn raise_op_error(err: OpError) -> ! {
    let message = match err {
        OpError::Overflow => "value out of range: overflow",
        OpError::Underflow => "value out of range: underflow",
    };
    raise(Code::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE, message)
}

/// ERRORs with pgvector's messages if an element is NaN or infinite (`ty` names the type).
pub fn check_element(ty: &str, value: f32) {
    if value.is_nan() {
        raise(
            Code::ERRCODE_DATA_EXCEPTION,
            format!("NaN not allowed in {ty}"),
        );
    }
    if value.is_infinite() {
        raise(
            Code::ERRCODE_DATA_EXCEPTION,
            format!("infinite value not allowed in {ty}"),
        );
    }
}

/// Raises an ERROR with a SQLSTATE, message and DETAIL line; never returns.
#[track_caller]
pub fn raise_detail(code: Code, message: String, detail: &str) -> ! {
    pgrx::pg_sys::panic::ErrorReport::new(code, message, "vectorize_quant")
        .set_detail(detail)
        .report(pgrx::pg_sys::elog::PgLogLevel::ERROR);
    unreachable!("ERROR returned")
}

/// Copies a Rust string into a palloc'd C string datum.
pub fn cstring_datum(s: &str) -> pg_sys::Datum {
    // SAFETY: palloc returns len+1 writable bytes; we copy and NUL-terminate.
    unsafe {
        let ptr = pg_sys::palloc(s.len() + 1) as *mut u8;
        std::ptr::copy_nonoverlapping(s.as_ptr(), ptr, s.len());
        *ptr.add(s.len()) = 0;
        pg_sys::Datum::from(ptr)
    }
}

/// Raises the ERROR matching a text parse failure of type `ty`.
pub fn raise_parse_error(ty: &str, err: ParseError, input: &str) -> ! {
    let syntax = format!("invalid input syntax for type {ty}: \"{input}\"");
    match err {
        ParseError::Syntax => raise(Code::ERRCODE_INVALID_TEXT_REPRESENTATION, syntax),
        ParseError::MissingOpenBracket => raise_detail(
            Code::ERRCODE_INVALID_TEXT_REPRESENTATION,
            syntax,
            "Vector contents must start with \"[\".",
        ),
        ParseError::JunkAfterClose => raise_detail(
            Code::ERRCODE_INVALID_TEXT_REPRESENTATION,
            syntax,
            "Junk after closing right brace.",
        ),
        ParseError::NotANumber => raise(
            Code::ERRCODE_DATA_EXCEPTION,
            format!("NaN not allowed in {ty}"),
        ),
        ParseError::Infinite => raise(
            Code::ERRCODE_DATA_EXCEPTION,
            format!("infinite value not allowed in {ty}"),
        ),
        ParseError::OutOfRange(text) => raise(
            Code::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
            format!("\"{text}\" is out of range for type {ty}"),
        ),
        ParseError::NoDimensions => raise(
            Code::ERRCODE_DATA_EXCEPTION,
            format!("{ty} must have at least 1 dimension"),
        ),
        ParseError::TooManyDimensions => raise(
            Code::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            format!("{ty} cannot have more than {MAX_DIMS} dimensions"),
        ),
    }
}

pg_fn!(
    /// `qvector_in(cstring, oid, int4)`: parses the text form.
    qvector_in,
    |fcinfo| {
        // SAFETY: argument 0 of a type input function is a NUL-terminated C string.
        let input = unsafe { std::ffi::CStr::from_ptr(arg_datum(fcinfo, 0).cast_mut_ptr()) };
        let text = String::from_utf8_lossy(input.to_bytes());
        // SAFETY: argument 2 is the int4 typmod.
        let typmod = unsafe { arg_i32(fcinfo, 2) };
        let values = parse_vector(&text).unwrap_or_else(|e| raise_parse_error("qvector", e, &text));
        check_typmod(values.len(), typmod);
        qvector_datum(&values)
    }
);

pg_fn!(
    /// `qvector_out(qvector)`: formats the text form.
    qvector_out,
    |fcinfo| {
        // SAFETY: argument 0 is a qvector.
        let values = unsafe { qvector_arg(fcinfo, 0) };
        cstring_datum(&format_vector(values))
    }
);

/// Validates the typmod `ty(n)` of a vector type (the body of its `typmod_in`).
///
/// # Safety
/// Argument 0 of `fcinfo` must be a `cstring[]`.
pub unsafe fn typmod_in(fcinfo: pg_sys::FunctionCallInfo, ty: &str) -> pg_sys::Datum {
    let mut count = 0i32;
    // SAFETY: argument 0 is a cstring[]; ArrayGetIntegerTypmods parses it (or ERRORs).
    let mods = unsafe {
        let arr =
            pg_sys::pg_detoast_datum(arg_datum(fcinfo, 0).cast_mut_ptr()) as *mut pg_sys::ArrayType;
        let ptr = pg_sys::ArrayGetIntegerTypmods(arr, &mut count);
        std::slice::from_raw_parts(ptr, count.max(0) as usize)
    };
    if mods.len() != 1 {
        raise(
            Code::ERRCODE_INVALID_PARAMETER_VALUE,
            "invalid type modifier",
        );
    }
    if mods[0] < 1 {
        raise(
            Code::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("dimensions for type {ty} must be at least 1"),
        );
    }
    if mods[0] as usize > MAX_DIMS {
        raise(
            Code::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("dimensions for type {ty} cannot exceed {MAX_DIMS}"),
        );
    }
    crate::fmgr::i32_datum(mods[0])
}

pg_fn!(
    /// `qvector_typmod_in(cstring[])`: validates `qvector(n)`.
    qvector_typmod_in,
    |fcinfo| {
        // SAFETY: argument 0 is a cstring[].
        unsafe { typmod_in(fcinfo, "qvector") }
    }
);

/// Returns the unread bytes of a receive function's StringInfo argument, consuming them.
///
/// # Safety
/// Argument 0 of `fcinfo` must be a StringInfo (a type receive function's first argument).
pub unsafe fn recv_bytes<'a>(fcinfo: pg_sys::FunctionCallInfo) -> &'a [u8] {
    // SAFETY: data[cursor..len] of the StringInfo is the message.
    unsafe {
        let buf = arg_datum(fcinfo, 0).cast_mut_ptr::<pg_sys::StringInfoData>();
        let start = (*buf).cursor as usize;
        let end = (*buf).len as usize;
        let bytes = std::slice::from_raw_parts(((*buf).data as *const u8).add(start), end - start);
        (*buf).cursor = (*buf).len;
        bytes
    }
}

pg_fn!(
    /// `qvector_recv(internal, oid, int4)`: reads the binary form from a StringInfo.
    qvector_recv,
    |fcinfo| {
        // SAFETY: argument 0 of a receive function is a StringInfo.
        let bytes = unsafe { recv_bytes(fcinfo) };
        // SAFETY: argument 2 is the int4 typmod.
        let typmod = unsafe { arg_i32(fcinfo, 2) };
        let values = decode_binary(bytes).unwrap_or_else(|e| raise_binary_error("qvector", e));
        check_typmod(values.len(), typmod);
        qvector_datum(&values)
    }
);

/// Raises the ERROR matching a binary decode failure of type `ty`.
pub fn raise_binary_error(ty: &str, err: BinaryError) -> ! {
    let bad = Code::ERRCODE_INVALID_BINARY_REPRESENTATION;
    match err {
        BinaryError::Truncated { needed, got } => raise(
            bad,
            format!("invalid binary {ty}: needs {needed} bytes, message has {got}"),
        ),
        BinaryError::NoDimensions => raise(
            Code::ERRCODE_DATA_EXCEPTION,
            format!("{ty} must have at least 1 dimension"),
        ),
        BinaryError::TooManyDimensions(_) => raise(
            Code::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            format!("{ty} cannot have more than {MAX_DIMS} dimensions"),
        ),
        BinaryError::UnusedNotZero(v) => raise(
            bad,
            format!("invalid binary {ty}: expected unused to be 0, not {v}"),
        ),
        BinaryError::NotANumber => raise(
            Code::ERRCODE_DATA_EXCEPTION,
            format!("NaN not allowed in {ty}"),
        ),
        BinaryError::Infinite => raise(
            Code::ERRCODE_DATA_EXCEPTION,
            format!("infinite value not allowed in {ty}"),
        ),
        BinaryError::TrailingBytes(n) => {
            raise(bad, format!("invalid binary {ty}: {n} trailing bytes"))
        }
        BinaryError::NegativeScale => raise(bad, format!("invalid binary {ty}: negative scale")),
        BinaryError::Overflow => raise(
            Code::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
            format!("invalid binary {ty}: values out of range for float4"),
        ),
    }
}

pg_fn!(
    /// `qvector_send(qvector)`: writes the binary form as bytea.
    qvector_send,
    |fcinfo| {
        // SAFETY: argument 0 is a qvector.
        let values = unsafe { qvector_arg(fcinfo, 0) };
        let bytes = encode_binary(values);
        pgrx::pg_sys::Datum::from(pgrx::varlena::rust_byte_slice_to_bytea(&bytes).into_pg())
    }
);

pg_fn!(
    /// `qvector(qvector, int4, bool)`: the typmod coercion (checks the dimensions).
    qvector_typmod_cast,
    |fcinfo| {
        // SAFETY: arguments are (qvector, int4).
        let (values, typmod) = unsafe { (qvector_arg(fcinfo, 0), arg_i32(fcinfo, 1)) };
        check_typmod(values.len(), typmod);
        // SAFETY: returning the (possibly detoasted) input unchanged is valid.
        unsafe { arg_datum(fcinfo, 0) }
    }
);

pg_fn!(
    /// `array_to_qvector(anyarray, int4, bool)`: casts int4[], real[], float8[] and numeric[].
    array_to_qvector,
    |fcinfo| {
        // SAFETY: arguments are (array, int4 typmod, bool).
        let (datum, typmod, _explicit) =
            unsafe { (arg_datum(fcinfo, 0), arg_i32(fcinfo, 1), arg_bool(fcinfo, 2)) };
        // SAFETY: argument 0 is an array datum.
        let values = unsafe { array_elements(datum, "qvector") };
        check_dims("qvector", values.len());
        check_typmod(values.len(), typmod);
        qvector_datum(&values)
    }
);

/// Reads a 1-D array of int4, float4, float8 or numeric into f32 elements, rounding as
/// pgvector does and rejecting NaN and infinity (`ty` is the target type, for messages).
///
/// # Safety
/// `datum` must be an array datum.
pub unsafe fn array_elements(datum: pg_sys::Datum, ty: &str) -> Vec<f32> {
    // SAFETY: detoast the array and read its header fields.
    let (arr, ndim, elemtype) = unsafe {
        let arr = pg_sys::pg_detoast_datum(datum.cast_mut_ptr()) as *mut pg_sys::ArrayType;
        (arr, (*arr).ndim, (*arr).elemtype)
    };
    if ndim > 1 {
        raise(Code::ERRCODE_DATA_EXCEPTION, "array must be 1-D");
    }
    if ndim == 0 {
        check_dims(ty, 0);
    }
    let (mut typlen, mut typbyval, mut typalign) = (0i16, false, 0 as std::ffi::c_char);
    let mut elems: *mut pg_sys::Datum = std::ptr::null_mut();
    let mut nulls: *mut bool = std::ptr::null_mut();
    let mut count = 0i32;
    // SAFETY: standard deconstruction of a valid array; outputs are palloc'd.
    let (elems, nulls) = unsafe {
        pg_sys::get_typlenbyvalalign(elemtype, &mut typlen, &mut typbyval, &mut typalign);
        pg_sys::deconstruct_array(
            arr,
            elemtype,
            typlen as i32,
            typbyval,
            typalign,
            &mut elems,
            &mut nulls,
            &mut count,
        );
        (
            std::slice::from_raw_parts(elems, count as usize),
            std::slice::from_raw_parts(nulls, count as usize),
        )
    };
    if nulls.iter().any(|n| *n) {
        raise(
            Code::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "array must not contain nulls",
        );
    }
    check_dims(ty, elems.len());
    elems
        .iter()
        .map(|d| {
            let value = match elemtype {
                pg_sys::INT4OID => d.value() as i32 as f32,
                pg_sys::FLOAT4OID => f32::from_bits(d.value() as u32),
                pg_sys::FLOAT8OID => f64::from_bits(d.value() as u64) as f32,
                pg_sys::NUMERICOID => {
                    // SAFETY: numeric_float4 takes one numeric datum (and ERRORs itself
                    // for a value beyond float4, as in pgvector).
                    unsafe {
                        pgrx::fcinfo::direct_function_call::<f32>(pg_sys::numeric_float4, &[Some(*d)])
                    }
                    .unwrap_or(f32::NAN)
                }
                _ => raise(
                    Code::ERRCODE_DATA_EXCEPTION,
                    "unsupported array type: expected integer[], real[], double precision[] or numeric[]",
                ),
            };
            check_element(ty, value);
            value
        })
        .collect()
}

/// Builds a `real[]` datum from elements.
pub fn float4_array_datum(values: &[f32]) -> pg_sys::Datum {
    let datums: Vec<pg_sys::Datum> = values.iter().map(|v| crate::fmgr::f32_datum(*v)).collect();
    // SAFETY: float4 is by-value, 4 bytes, int-aligned; construct_array copies the datums.
    unsafe {
        pg_sys::Datum::from(pg_sys::construct_array(
            datums.as_ptr() as *mut pg_sys::Datum,
            datums.len() as i32,
            pg_sys::FLOAT4OID,
            4,
            true,
            b'i' as std::ffi::c_char,
        ))
    }
}

pg_fn!(
    /// `qvector_to_float4(qvector, int4, bool)`: casts to `real[]`.
    qvector_to_float4,
    |fcinfo| {
        // SAFETY: argument 0 is a qvector.
        float4_array_datum(unsafe { qvector_arg(fcinfo, 0) })
    }
);
