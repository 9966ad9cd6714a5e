//! Who may run what: the caller's privilege checks, and the table-owner context in
//! which user code of an index runs.
//!
//! An index expression or partial-index predicate is code written by the table's
//! owner (any SQL, through a PL/pgSQL function). The SQL API evaluates it when it
//! counts, samples or exactly searches the table; run as the caller, a superuser
//! inspecting an index would hand its owner superuser rights. So, like ANALYZE and
//! REINDEX (PostgreSQL's `do_analyze_rel`), every statement that may run such code
//! runs as the table owner with `SECURITY_RESTRICTED_OPERATION` (no `SET ROLE`, no
//! temporary objects, no cursors outliving the call) and `search_path = pg_catalog,
//! pg_temp` in a GUC nest level of its own, so settings changed by that code end with it.

use crate::fmgr::raise;
use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode as Code;
use std::ffi::CStr;

/// The `search_path` of user code run by the SQL API (PostgreSQL 17's `GUC_SAFE_SEARCH_PATH`).
pub const SAFE_SEARCH_PATH: &CStr = c"pg_catalog, pg_temp";

/// The current user.
pub fn user() -> pg_sys::Oid {
    // SAFETY: no preconditions inside a transaction.
    unsafe { pg_sys::GetUserId() }
}

/// True when the current user owns (or has the privileges of the owner of) relation `oid`.
pub fn owns(oid: pg_sys::Oid) -> bool {
    crate::compat::relation_ownercheck(oid, user())
}

/// True when the current user may SELECT from table `heap_oid` (table-level privilege).
pub fn may_select(heap_oid: pg_sys::Oid) -> bool {
    // SAFETY: plain catalog lookup for the current user.
    let result = unsafe {
        pg_sys::pg_class_aclcheck(heap_oid, user(), pg_sys::ACL_SELECT as pg_sys::AclMode)
    };
    result == pg_sys::AclResult::ACLCHECK_OK
}

/// ERROR 42501 unless the current user may SELECT from table `heap_oid` (named `table_sql`).
pub fn require_select(heap_oid: pg_sys::Oid, table_sql: &str) {
    if !may_select(heap_oid) {
        raise(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("permission denied for table {table_sql}"),
        );
    }
}

/// True when row-level security policies apply to the current user on table `heap_oid`.
pub fn row_security_applies(heap_oid: pg_sys::Oid) -> bool {
    // SAFETY: catalog lookup; with noError it returns instead of raising.
    let result = unsafe { pg_sys::check_enable_rls(heap_oid, pg_sys::InvalidOid, true) };
    result == pg_sys::CheckEnableRlsResult::RLS_ENABLED as i32
}

/// `schema.relation` of relation `oid`, quoted for SQL (as `quote_ident`).
pub fn qualified_name(oid: pg_sys::Oid) -> String {
    // SAFETY: catalog lookups of an existing relation; the strings are palloc'd copies.
    unsafe {
        let name = pg_sys::get_rel_name(oid);
        let schema = pg_sys::get_namespace_name(pg_sys::get_rel_namespace(oid));
        if name.is_null() || schema.is_null() {
            return oid.to_u32().to_string();
        }
        CStr::from_ptr(pg_sys::quote_qualified_identifier(schema, name))
            .to_string_lossy()
            .into_owned()
    }
}

/// Runs `f` as the owner of table `heap_oid`, security-restricted, with a safe `search_path`.
///
/// The caller's user id, security context and settings come back when `f` returns. If
/// `f` raises an ERROR, the abort of the (sub)transaction restores them: AbortTransaction
/// and AbortSubTransaction reset the user id and security context saved when the
/// (sub)transaction started and roll back GUC nest levels, as for ANALYZE.
pub fn as_table_owner<R>(heap_oid: pg_sys::Oid, f: impl FnOnce() -> R) -> R {
    // SAFETY: the table stays locked ACCESS SHARE until commit; the user-id and GUC calls
    // are do_analyze_rel's sequence and are undone below in reverse order.
    let (saved_user, saved_context, nest_level) = unsafe {
        let rel = pg_sys::table_open(heap_oid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let owner = (*(*rel).rd_rel).relowner;
        pg_sys::table_close(rel, pg_sys::NoLock as pg_sys::LOCKMODE);
        let mut saved_user = pg_sys::InvalidOid;
        let mut saved_context = 0;
        pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context);
        pg_sys::SetUserIdAndSecContext(
            owner,
            saved_context | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
        );
        let nest_level = pg_sys::NewGUCNestLevel();
        pg_sys::set_config_option(
            c"search_path".as_ptr(),
            SAFE_SEARCH_PATH.as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
        (saved_user, saved_context, nest_level)
    };
    let result = f();
    // SAFETY: undoes the settings above: GUC changes since the nest level, then the user.
    unsafe {
        pg_sys::AtEOXact_GUC(false, nest_level);
        pg_sys::SetUserIdAndSecContext(saved_user, saved_context);
    }
    result
}
