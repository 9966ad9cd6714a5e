//! The meta page and the quantizer pages: reading, writing, and a per-backend cache
//! of decoded quantizers keyed by the build id stored in the meta page.

use super::buffer::{raise_corrupt, PageRead, PageWrite};
use super::pages::{MetaPage, PageKind, META_BYTES};
use crate::distance::Metric;
use crate::fmgr::{raise, raise_hint};
use crate::quant::Quantizer;
use crate::types::vector_type::VectorType;
use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode as Code;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

/// Block number of the meta page.
pub const META_BLOCK: u32 = 0;

/// Decodes the meta page bytes, raising the right ERROR on failure.
pub fn decode_meta(index: pg_sys::Relation, bytes: &[u8]) -> MetaPage {
    match MetaPage::decode(bytes) {
        Ok(meta) => meta,
        Err(super::pages::LayoutError::UnsupportedVersion(v)) => raise_hint(
            Code::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!(
                "qhnsw index \"{}\" has format version {v}, but this build of vectorize_quant reads version {}",
                relation_name(index),
                super::pages::FORMAT_VERSION
            ),
            format!("REINDEX INDEX {} to rebuild it in the current format.", relation_name(index)),
        ),
        Err(e) => raise_corrupt(index, META_BLOCK, &e),
    }
}

/// Reads the meta page.
pub fn read_meta(index: pg_sys::Relation) -> MetaPage {
    let page = PageRead::new(index, META_BLOCK, PageKind::Meta);
    decode_meta(index, page.item(1))
}

/// Rewrites the meta page under GenericXLog (the caller serialises writers).
pub fn write_meta(index: pg_sys::Relation, meta: &MetaPage) {
    let mut page = PageWrite::new(index, META_BLOCK, PageKind::Meta);
    let item = page.item_mut(1);
    if item.len() != META_BYTES {
        raise_corrupt(
            index,
            META_BLOCK,
            &super::pages::LayoutError::Corrupt("meta item has the wrong size".into()),
        );
    }
    item.copy_from_slice(&meta.encode());
    page.commit();
}

/// The index's name.
pub fn relation_name(rel: pg_sys::Relation) -> String {
    // SAFETY: rel is an open relation; relname is a NameData.
    unsafe { pgrx::name_data_to_str(&(*(*rel).rd_rel).relname) }.to_string()
}

/// The metric and column type of an index, from its opclass's distance support function.
pub fn index_opclass(index: pg_sys::Relation) -> (Metric, VectorType) {
    // SAFETY: index is open; support function 1 exists for our opclasses.
    let name = unsafe {
        let proc = pg_sys::index_getprocid(index, 1, 1);
        let name = pg_sys::get_func_name(proc);
        if name.is_null() {
            String::new()
        } else {
            std::ffi::CStr::from_ptr(name)
                .to_string_lossy()
                .into_owned()
        }
    };
    match name.as_str() {
        "qvector_l2_squared_distance" => (Metric::L2, VectorType::QVector),
        "qvector_negative_inner_product" => (Metric::InnerProduct, VectorType::QVector),
        "cosine_distance" => (Metric::Cosine, VectorType::QVector),
        "sq8vector_l2_squared_distance" => (Metric::L2, VectorType::Sq8Vector),
        "sq8vector_negative_inner_product" => (Metric::InnerProduct, VectorType::Sq8Vector),
        "sq8vector_cosine_distance" => (Metric::Cosine, VectorType::Sq8Vector),
        "l1_distance" => (Metric::L1, VectorType::QVector),
        "sq8vector_l1_distance" => (Metric::L1, VectorType::Sq8Vector),
        other => raise(
            Code::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!("qhnsw does not support the distance function \"{other}\""),
        ),
    }
}

/// The metric of an index.
pub fn index_metric(index: pg_sys::Relation) -> Metric {
    index_opclass(index).0
}

/// The SQL type of the indexed column (`qvector` or `sq8vector`).
pub fn index_vector_type(index: pg_sys::Relation) -> VectorType {
    index_opclass(index).1
}

thread_local! {
    /// Decoded quantizers by (index oid, build id).
    static QUANTIZERS: RefCell<HashMap<(u32, u64), Arc<Quantizer>>> = RefCell::new(HashMap::new());
}

/// Loads (or returns the cached) quantizer of an index.
pub fn load_quantizer(index: pg_sys::Relation, meta: &MetaPage) -> Option<Arc<Quantizer>> {
    if meta.quantizer_blocks == 0 {
        return None;
    }
    // SAFETY: index is open.
    let oid = unsafe { (*index).rd_id }.to_u32();
    let key = (oid, meta.build_id);
    if let Some(q) = QUANTIZERS.with(|c| c.borrow().get(&key).cloned()) {
        return Some(q);
    }
    let mut blob = Vec::with_capacity(meta.quantizer_bytes as usize);
    for block in meta.quantizer_first..meta.quantizer_first + meta.quantizer_blocks {
        let page = PageRead::new(index, block, PageKind::Quantizer);
        blob.extend_from_slice(page.item(1));
    }
    let quantizer = match Quantizer::from_bytes(&blob) {
        Ok(q) => Arc::new(q),
        Err(e) => raise_corrupt(
            index,
            meta.quantizer_first,
            &super::pages::LayoutError::Corrupt(format!("stored quantizer is unreadable: {e}")),
        ),
    };
    QUANTIZERS.with(|c| {
        let mut cache = c.borrow_mut();
        cache.retain(|(o, _), _| *o != oid);
        cache.insert(key, quantizer.clone());
    });
    Some(quantizer)
}

/// Stores why `quantizer = 'auto'` chose its quantizer (item 2 of the meta page).
pub fn write_auto_reason(index: pg_sys::Relation, reason: &str) {
    let mut page = PageWrite::new(index, META_BLOCK, PageKind::Meta);
    let bytes = reason.as_bytes();
    if page.item_count() >= 2 {
        // SAFETY: item 2 exists on the locked working copy; Postgres checks the space.
        let ok = unsafe {
            pg_sys::PageIndexTupleOverwrite(
                page.page(),
                2,
                bytes.as_ptr() as pg_sys::Item,
                bytes.len(),
            )
        };
        if !ok {
            return; // the reason is informational; keep the old one rather than fail an insert
        }
    } else if page.add_item(bytes).is_none() {
        return;
    }
    page.commit();
}

/// Why `quantizer = 'auto'` chose the index's quantizer, if it did.
pub fn read_auto_reason(index: pg_sys::Relation) -> Option<String> {
    let page = PageRead::new(index, META_BLOCK, PageKind::Meta);
    (page.item_count() >= 2).then(|| String::from_utf8_lossy(page.item(2)).into_owned())
}
