//! `aminsert`: encode the new row with the index's stored quantizer, store its
//! element on the insert page (or a new page), then link it with Algorithm 1 over
//! the pages (src/graph/insert.rs through `PageGraph`). Every page change is its own
//! GenericXLog record under an exclusive lock on that one page.
//!
//! An index created on an empty table stages its first rows exactly (see
//! [`STAGING_ROWS`]) and trains its quantizer from that bounded first batch.

use super::buffer::{block_count, graph_blocks, page_identity, raise_corrupt, PageRead, PageWrite};
use super::build::{
    check_row_dims, is_unit, item_pointer, normalize, start_staging, train_quantizer, write_graph,
    Collected, PageSink,
};
use super::graph_pages::{force_back_link, shape_of, with_element, PageGraph};
use super::locks;
use super::meta::{
    index_vector_type, load_quantizer, read_meta, update_meta, write_auto_reason, META_BLOCK,
};
use super::options::index_options;
use super::pages::{
    node_id, write_element, ElementRef, LayoutError, MetaPage, PageKind, ELEMENT_FIXED_BYTES,
    FLAG_FREE, INVALID_NODE, MAX_LEVEL,
};
use crate::distance::Metric;
use crate::graph::{insert_node, random_level, HnswParams};
use crate::types::vector_type::VectorType;
use pgrx::pg_sys;

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
            index_vector_type(index).read(*values).into_owned(),
            item_pointer(&*heap_tid),
        )
    };
    insert_vector(index, value, tid);
    false
}

/// Rows an index created on an empty table stages exactly before training its quantizer.
///
/// Staging keeps flat float4 codes in an ordinary graph (so scans need no special path);
/// once this many rows are in, the inserting backend trains the configured quantizer on
/// them (an exact, bounded first batch: training never sees fewer rows than this) and
/// rebuilds the graph into new pages, switching the meta page in one WAL record.
pub const STAGING_ROWS: u64 = 2000;

/// Stores and links one vector, staging it first if the index has no trained quantizer.
fn insert_vector(index: pg_sys::Relation, value: Vec<f32>, tid: (u32, u16)) {
    let meta = read_meta(index);
    if meta.staging || meta.quantizer_blocks == 0 {
        // Staging inserts and the conversion are serialised by the staging lock (held to
        // transaction end); a trained index never goes back to staging, so normal inserts
        // never take it.
        locks::staging_lock(index);
        let meta = read_meta(index);
        if meta.staging || meta.quantizer_blocks == 0 {
            insert_staged(index, value, tid);
            return;
        }
    }
    let _update = locks::insert_lock(index);
    // Read under the update lock: VACUUM moves the entry point only while it excludes inserts.
    let meta = read_meta(index);
    insert_linked(index, meta, value, tid);
}

/// Inserts one row of a memory-bounded build (past the rows its in-memory graph holds)
/// through the aminsert path of a trained index: WAL-logged page by page, like aminsert.
pub fn insert_built(index: pg_sys::Relation, value: Vec<f32>, tid: (u32, u16)) {
    let _update = locks::insert_lock(index);
    let meta = read_meta(index);
    insert_linked(index, meta, value, tid);
}

/// Staging-mode insert: initialises staging if needed, links the row, and converts the
/// index to its configured quantizer once it holds STAGING_ROWS rows.
fn insert_staged(index: pg_sys::Relation, value: Vec<f32>, tid: (u32, u16)) {
    {
        let _update = locks::insert_lock(index);
        let mut meta = read_meta(index);
        if meta.quantizer_blocks == 0 {
            meta.dims = value.len() as u32;
            let staged = start_staging(index, PageSink::Logged, meta);
            meta = update_meta(index, |m| *m = staged);
        }
        if !insert_linked(index, meta, value, tid) {
            return;
        }
    }
    let meta = read_meta(index);
    if meta.staging && meta.node_count >= STAGING_ROWS {
        // The conversion rewrites the whole graph: no insert or VACUUM repair may run meanwhile.
        let _exclusive = locks::exclude_inserts(index);
        let meta = read_meta(index);
        let converted = convert_staging(index, meta);
        update_meta(index, |m| *m = converted);
    }
}

/// Trains the configured quantizer on the staged rows and rebuilds the graph with it.
fn convert_staging(index: pg_sys::Relation, meta: MetaPage) -> MetaPage {
    let opts = index_options(index);
    let shape = shape_of(&meta);
    let dims = meta.dims as usize;
    let mut rows = Collected {
        dims,
        metric: meta.metric,
        // Staged rows come from index pages, not datums.
        vector_type: VectorType::QVector,
        tids: Vec::new(),
        data: Vec::new(),
        skipped_zero: 0,
    };
    // The staging codes: float4, or float16 for rows too large for float4 on a page.
    let Some(staged) = load_quantizer(index, &meta) else {
        return meta;
    };
    let mut row = vec![0f32; dims];
    for block in graph_blocks(index, meta.build_tag()) {
        let page = PageRead::new(index, block, PageKind::Graph);
        for offset in 1..=page.item_count() {
            match ElementRef::parse(page.item(offset), shape) {
                Ok(e) if !e.is_deleted() => {
                    rows.tids.push(e.heap_tid());
                    staged.decode(e.code(), &mut row);
                    rows.data.extend_from_slice(&row);
                }
                Ok(_) => {}
                Err(e) => raise_corrupt(index, block, &e),
            }
        }
    }
    if rows.tids.is_empty() {
        return meta;
    }
    let (quantizer, reason) = train_quantizer(&opts, dims, &rows.data, meta.metric);
    if let Some(reason) = reason {
        write_auto_reason(index, &reason);
    }
    write_graph(index, PageSink::Logged, &opts, &quantizer, &rows, meta)
}

/// Normalises (cosine), encodes, stores and links one vector; false if it was not indexed.
fn insert_linked(
    index: pg_sys::Relation,
    meta: MetaPage,
    mut value: Vec<f32>,
    tid: (u32, u16),
) -> bool {
    if meta.dims != 0 {
        check_row_dims(meta.dims as usize, value.len());
    }
    if meta.metric == Metric::Cosine && !normalize(&mut value) {
        return false; // a zero vector has no cosine distance; like the build, it is not indexed
    }
    let Some(quantizer) = load_quantizer(index, &meta) else {
        raise_corrupt(
            index,
            META_BLOCK,
            &LayoutError::Corrupt("the index has no quantizer pages".into()),
        );
    };
    if meta.unit_norm && !is_unit(&value) {
        // a vector of another length: stop ranking inner product with the L2 estimator
        update_meta(index, |m| m.unit_norm = false);
    }
    let meta = MetaPage {
        unit_norm: meta.unit_norm && is_unit(&value),
        ..meta
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
    let id = store_element(index, &element, meta.insert_page, meta.build_tag());

    let entry =
        (meta.entry_node != INVALID_NODE).then_some((meta.entry_node, meta.entry_level as usize));
    let mut graph = PageGraph::new(
        index,
        shape,
        entry,
        quantizer.estimator(&value, meta.code_metric()),
        &quantizer,
    );
    insert_node(&mut graph, id, level, &params);
    if entry.is_none() && graph.entry.is_some_and(|(e, _)| e != id) {
        // Another insert made the empty index's first node meanwhile: link to it.
        insert_node(&mut graph, id, level, &params);
    }
    if !graph.back_linked {
        let neighbors: Vec<u32> = with_element(index, shape, id, |e| e.neighbors(0).collect());
        if !neighbors.is_empty() {
            let _link = locks::link_lock(index);
            force_back_link(&mut graph, &neighbors, id);
        }
    }
    update_meta(index, |m| m.node_count += 1);
    true
}

/// Stores an element where VACUUM freed space (reusing a tombstone's slot), else on
/// the insert page, else on a new page; returns its node id.
fn store_element(index: pg_sys::Relation, element: &[u8], insert_page: u32, tag: u32) -> u32 {
    let needed = element.len().div_ceil(8) * 8;
    // SAFETY: a free space map lookup.
    let recorded = unsafe { pg_sys::GetPageWithFreeSpace(index, needed) };
    if recorded != pg_sys::InvalidBlockNumber {
        if let Some(id) = store_on(index, recorded, element, tag) {
            return id;
        }
    }
    if insert_page != 0 {
        if let Some(id) = store_on(index, insert_page, element, tag) {
            return id;
        }
    }
    let mut page = PageWrite::extend(index, PageKind::Graph, tag);
    let offset = page
        .add_item(element)
        .expect("an element fits an empty page");
    let block = page.block();
    page.commit();
    update_meta(index, |m| m.insert_page = m.insert_page.max(block));
    node_id(block, offset)
}

/// Tries to store an element on one page of the current build: over a tombstone, or
/// as a new item. Updates the page's entry in the free space map either way.
fn store_on(index: pg_sys::Relation, block: u32, element: &[u8], tag: u32) -> Option<u32> {
    if block >= block_count(index) || page_identity(index, block) != Some((PageKind::Graph, tag)) {
        // SAFETY: forget a stale free space map entry.
        unsafe { pg_sys::RecordPageWithFreeSpace(index, block, 0) };
        return None;
    }
    let mut page = PageWrite::new(index, block, PageKind::Graph);
    let tombstone = (1..=page.item_count()).find(|&offset| {
        let item = page.item_mut(offset);
        item.len() == ELEMENT_FIXED_BYTES && item[2] & FLAG_FREE != 0
    });
    let stored = match tombstone {
        // SAFETY: offset is a valid item of the locked working copy; Postgres checks the space.
        Some(offset) => unsafe {
            pg_sys::PageIndexTupleOverwrite(
                page.page(),
                offset,
                element.as_ptr() as pg_sys::Item,
                element.len(),
            )
        }
        .then_some(offset),
        None if page.item_count() < MAX_ITEMS_PER_PAGE => page.add_item(element),
        None => None,
    };
    let free = if page.item_count() >= MAX_ITEMS_PER_PAGE && tombstone.is_none() {
        0
    } else {
        page.free_space()
    };
    let id = stored.map(|offset| node_id(block, offset));
    if stored.is_some() {
        page.commit();
    } else {
        drop(page);
    }
    // SAFETY: records what is left on the page.
    unsafe { pg_sys::RecordPageWithFreeSpace(index, block, free) };
    id
}
