//! The meta page and the quantizer pages: reading, writing, and a per-backend cache
//! of decoded quantizers keyed by the build id stored in the meta page.

use super::buffer::{block_count, raise_corrupt, PageRead, PageWrite};
use super::pages::{node_location, LayoutError, MetaPage, PageKind, INVALID_NODE, META_BYTES};
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

/// Decodes the meta page bytes and checks them against the relation, raising the right
/// ERROR on failure (XX002 for corruption, a REINDEX hint for another format version).
pub fn decode_meta(index: pg_sys::Relation, bytes: &[u8]) -> MetaPage {
    match MetaPage::decode(bytes) {
        Ok(meta) => {
            check_meta_bounds(index, &meta);
            meta
        }
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

/// Raises XX002 for a meta page field that cannot be right for this relation.
fn meta_corrupt(index: pg_sys::Relation, why: String) -> ! {
    raise_corrupt(index, META_BLOCK, &LayoutError::Corrupt(why))
}

/// Checks every block number and length of the meta page against the relation's size,
/// the page size and the index's operator class, before anything uses them.
fn check_meta_bounds(index: pg_sys::Relation, meta: &MetaPage) {
    let nblocks = block_count(index);
    let quantizer_end = meta.quantizer_first as u64 + meta.quantizer_blocks as u64;
    if meta.quantizer_blocks > 0 && (meta.quantizer_first == 0 || quantizer_end > nblocks as u64) {
        meta_corrupt(
            index,
            format!(
                "quantizer pages {}..{quantizer_end} are outside the index's {nblocks} blocks",
                meta.quantizer_first
            ),
        );
    }
    if meta.entry_node != INVALID_NODE {
        let (block, offset) = node_location(meta.entry_node);
        if block == 0 || block >= nblocks || offset == 0 {
            meta_corrupt(
                index,
                format!("entry point ({block},{offset}) is outside the index's {nblocks} blocks"),
            );
        }
    }
    if meta.insert_page >= nblocks {
        meta_corrupt(
            index,
            format!(
                "insert page {} is outside the index's {nblocks} blocks",
                meta.insert_page
            ),
        );
    }
    let element = super::graph_pages::shape_of(meta).size(0);
    if element > pg_sys::BLCKSZ as usize {
        meta_corrupt(
            index,
            format!(
                "code length {} gives {element}-byte elements, larger than a page",
                meta.code_len
            ),
        );
    }
    if meta.metric != index_metric(index) {
        meta_corrupt(
            index,
            format!(
                "the meta page says metric {:?}, which is not the operator class's",
                meta.metric
            ),
        );
    }
}

/// Reads the meta page.
pub fn read_meta(index: pg_sys::Relation) -> MetaPage {
    let page = PageRead::new(index, META_BLOCK, PageKind::Meta);
    decode_meta(index, page.item(1))
}

/// Changes the meta page read-modify-write under one exclusive buffer lock and one
/// GenericXLog record, so concurrent writers never lose each other's changes; `change`
/// applies its caller's monotone rule (see locks.rs). Returns the page as written.
pub fn update_meta(index: pg_sys::Relation, change: impl FnOnce(&mut MetaPage)) -> MetaPage {
    let mut page = PageWrite::new(index, META_BLOCK, PageKind::Meta);
    let mut meta = decode_meta(index, page.item_mut(1));
    let before = meta.clone();
    change(&mut meta);
    if meta == before {
        return meta; // nothing changed: dropping the guard aborts the empty record
    }
    let item = page.item_mut(1);
    if item.len() != META_BYTES {
        meta_corrupt(index, "meta page item has the wrong size".into());
    }
    item.copy_from_slice(&meta.encode());
    page.commit();
    meta
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
    // pgvector's types are recognised by the opclass's input type, since their support
    // functions share names (`cosine_distance`, `l1_distance`) with ours.
    // SAFETY: index is open; rd_opcintype has an entry per key column (one).
    let input_type = unsafe { *(*index).rd_opcintype };
    if let Some(vector_type) = crate::types::pgvector::pgvector_type(input_type) {
        return match crate::types::pgvector::pgvector_metric(&name) {
            Some(metric) => (metric, vector_type),
            None => raise(
                Code::ERRCODE_FEATURE_NOT_SUPPORTED,
                format!(
                    "qhnsw does not support the distance function \"{name}\" for type {}",
                    vector_type.name()
                ),
            ),
        };
    }
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

/// The SQL type of the indexed column (`qvector`, `sq8vector`, pgvector's `vector` or `halfvec`).
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
        check_code_len(index, meta, &q);
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
    check_code_len(index, meta, &quantizer);
    QUANTIZERS.with(|c| {
        let mut cache = c.borrow_mut();
        cache.retain(|(o, _), _| *o != oid);
        cache.insert(key, quantizer.clone());
    });
    Some(quantizer)
}

/// Raises XX002 unless the meta page's code length is the stored quantizer's.
fn check_code_len(index: pg_sys::Relation, meta: &MetaPage, quantizer: &Quantizer) {
    if quantizer.code_len() != meta.code_len as usize {
        meta_corrupt(
            index,
            format!(
                "code length {} differs from the stored quantizer's {}",
                meta.code_len,
                quantizer.code_len()
            ),
        );
    }
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
