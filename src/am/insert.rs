//! `aminsert`: encode the new row with the index's stored quantizer, store its
//! element on the insert page (or a new page), then link it with Algorithm 1 over
//! the pages (src/graph/insert.rs through `PageGraph`). Every page change is its own
//! GenericXLog record under an exclusive lock on that one page.

use super::buffer::PageWrite;
use super::build::{check_row_dims, item_pointer, normalize};
use super::graph_pages::{shape_of, PageGraph};
use super::meta::{load_quantizer, read_meta, relation_name, write_meta};
use super::pages::{node_id, write_element, PageKind, INVALID_NODE, MAX_LEVEL};
use crate::distance::Metric;
use crate::fmgr::raise_hint;
use crate::graph::{insert_node, random_level, HnswParams};
use crate::types::qvector::qvector_from_datum;
use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode as Code;

/// Most line pointers a graph page may hold (node ids keep 8 bits for the offset).
const MAX_ITEMS_PER_PAGE: u16 = 255;

/// `aminsert`.
#[pgrx::pg_guard]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C-unwind" fn aminsert(
    index: pg_sys::Relation,
    values: *mut pg_sys::Datum,
    isnull: *mut bool,
    heap_tid: pg_sys::ItemPointer,
    _heap: pg_sys::Relation,
    _check_unique: pg_sys::IndexUniqueCheck::Type,
    _index_unchanged: bool,
    _index_info: *mut pg_sys::IndexInfo,
) -> bool {
    // SAFETY: one indexed column; values/isnull/heap_tid are valid for this call.
    let (value, tid) = unsafe {
        if *isnull {
            return false;
        }
        (
            qvector_from_datum(*values).to_vec(),
            item_pointer(&*heap_tid),
        )
    };
    insert_vector(index, value, tid);
    false
}

/// Stores and links one vector.
fn insert_vector(index: pg_sys::Relation, mut value: Vec<f32>, tid: (u32, u16)) {
    let meta = read_meta(index);
    if meta.dims != 0 {
        check_row_dims(meta.dims as usize, value.len());
    }
    if meta.metric == Metric::Cosine && !normalize(&mut value) {
        return; // a zero vector has no cosine distance; like the build, it is not indexed
    }
    let Some(quantizer) = load_quantizer(index, &meta) else {
        raise_hint(
            Code::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!(
                "qhnsw index \"{}\" was built on an empty table and has no trained quantizer",
                relation_name(index)
            ),
            "Load data first and create the index afterwards, or REINDEX once the table has rows.",
        );
    };
    let shape = shape_of(&meta);
    let params = HnswParams::new(meta.m as usize, meta.ef_construction as usize);
    let level = random_level(&params, &mut rand::thread_rng()).min(MAX_LEVEL);
    let mut element = vec![0u8; shape.size(level)];
    let code = quantizer.encode_to_vec(&value);
    let float16: Option<Vec<half::f16>> = shape
        .float16_copy
        .then(|| value.iter().map(|v| half::f16::from_f32(*v)).collect());
    write_element(&mut element, shape, level, tid, &code, float16.as_deref());
    let id = store_element(index, &element, meta.insert_page);

    let entry =
        (meta.entry_node != INVALID_NODE).then_some((meta.entry_node, meta.entry_level as usize));
    let mut graph = PageGraph {
        index,
        shape,
        entry,
        estimator: quantizer.estimator(&value, meta.metric),
        quantizer: &quantizer,
        distances: 0,
    };
    insert_node(&mut graph, id, level, &params);
}

/// Appends an element on the insert page, or on a new page; returns its node id.
fn store_element(index: pg_sys::Relation, element: &[u8], insert_page: u32) -> u32 {
    let needed = element.len().div_ceil(8) * 8;
    if insert_page != 0 {
        let mut page = PageWrite::new(index, insert_page, PageKind::Graph);
        if page.free_space() >= needed && page.item_count() < MAX_ITEMS_PER_PAGE {
            if let Some(offset) = page.add_item(element) {
                let block = page.block();
                page.commit();
                return node_id(block, offset);
            }
        }
    }
    let mut page = PageWrite::extend(index, PageKind::Graph);
    let offset = page
        .add_item(element)
        .expect("an element fits an empty page");
    let block = page.block();
    page.commit();
    let mut meta = read_meta(index);
    if block > meta.insert_page {
        meta.insert_page = block;
        write_meta(index, &meta);
    }
    node_id(block, offset)
}
