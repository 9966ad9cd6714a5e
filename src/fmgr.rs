//! Thin helpers for functions called through Postgres' V1 calling convention.
//!
//! Most SQL-callable functions of the extension are declared by hand in `sql/`
//! (like pgvector's), and implemented here as raw `fcinfo` functions: that keeps
//! the SQL surface exactly as a pgvector user expects (STRICT, IMMUTABLE,
//! PARALLEL SAFE, typmod-aware casts) without teaching pgrx about our varlena types.

use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;

/// Declares a raw V1 SQL-callable function: `pg_fn!(name, |fcinfo| body)`.
///
/// The body runs inside `#[pg_guard]`, so an `error!` or Rust panic becomes a
/// Postgres ERROR instead of unwinding through C.
#[macro_export]
macro_rules! pg_fn {
    ($(#[$meta:meta])* $name:ident, |$fcinfo:ident| $body:block) => {
        $(#[$meta])*
        ///
        /// # Safety
        /// Called only by Postgres' function manager, with the `fcinfo` of a call
        /// declared in sql/ with the matching argument types.
        #[unsafe(no_mangle)]
        pub unsafe extern "C-unwind" fn $name(
            $fcinfo: ::pgrx::pg_sys::FunctionCallInfo,
        ) -> ::pgrx::pg_sys::Datum {
            let body = move || -> ::pgrx::pg_sys::Datum { $body };
            // SAFETY: the guard catches Rust panics and Postgres ERRORs raised inside the
            // body and re-raises them as Postgres errors at this C boundary.
            unsafe { ::pgrx::pg_sys::submodules::panic::pgrx_extern_c_guard(body) }
        }
        ::paste::paste! {
            #[unsafe(no_mangle)]
            #[doc(hidden)]
            pub extern "C" fn [<pg_finfo_ $name>]() -> &'static ::pgrx::pg_sys::Pg_finfo_record {
                const V1_API: ::pgrx::pg_sys::Pg_finfo_record =
                    ::pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
                &V1_API
            }
        }
    };
}

/// Returns argument `n` of a V1 call as a raw datum (callers know it is not NULL: STRICT).
///
/// # Safety
/// `fcinfo` must be the live call info of a function with at least `n + 1` arguments.
pub unsafe fn arg_datum(fcinfo: pg_sys::FunctionCallInfo, n: usize) -> pg_sys::Datum {
    // SAFETY: guaranteed by the caller; pgrx reads args[n] of the fcinfo.
    unsafe { pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, n) }
}

/// Returns argument `n` as an i32.
///
/// # Safety
/// As for [`arg_datum`]; the argument must be an `int4`.
pub unsafe fn arg_i32(fcinfo: pg_sys::FunctionCallInfo, n: usize) -> i32 {
    // SAFETY: guaranteed by the caller.
    unsafe { arg_datum(fcinfo, n) }.value() as i32
}

/// Returns argument `n` as an f64 (`float8`, passed by value).
///
/// # Safety
/// As for [`arg_datum`]; the argument must be a `float8`.
pub unsafe fn arg_f64(fcinfo: pg_sys::FunctionCallInfo, n: usize) -> f64 {
    // SAFETY: guaranteed by the caller; float8 is by-value on 64-bit builds.
    f64::from_bits(unsafe { arg_datum(fcinfo, n) }.value() as u64)
}

/// Returns argument `n` as a bool.
///
/// # Safety
/// As for [`arg_datum`]; the argument must be a `bool`.
pub unsafe fn arg_bool(fcinfo: pg_sys::FunctionCallInfo, n: usize) -> bool {
    // SAFETY: guaranteed by the caller.
    unsafe { arg_datum(fcinfo, n) }.value() != 0
}

/// Makes an f64 datum (`float8` is passed by value).
pub fn f64_datum(v: f64) -> pg_sys::Datum {
    pg_sys::Datum::from(v.to_bits() as usize)
}

/// Makes an f32 datum.
pub fn f32_datum(v: f32) -> pg_sys::Datum {
    pg_sys::Datum::from(v.to_bits() as usize)
}

/// Makes an i32 datum.
pub fn i32_datum(v: i32) -> pg_sys::Datum {
    pg_sys::Datum::from(v as isize as usize)
}

/// Makes a bool datum.
pub fn bool_datum(v: bool) -> pg_sys::Datum {
    pg_sys::Datum::from(v as usize)
}

/// Raises an ERROR with a SQLSTATE and message; never returns.
#[track_caller]
pub fn raise(code: PgSqlErrorCode, message: impl Into<String>) -> ! {
    pgrx::pg_sys::panic::ErrorReport::new(code, message.into(), "vectorize_quant")
        .report(pgrx::pg_sys::elog::PgLogLevel::ERROR);
    unreachable!("ERROR returned")
}

/// Raises an ERROR with a SQLSTATE, message and hint; never returns.
#[track_caller]
pub fn raise_hint(code: PgSqlErrorCode, message: impl Into<String>, hint: impl Into<String>) -> ! {
    pgrx::pg_sys::panic::ErrorReport::new(code, message.into(), "vectorize_quant")
        .set_hint(hint.into())
        .report(pgrx::pg_sys::elog::PgLogLevel::ERROR);
    unreachable!("ERROR returned")
}
