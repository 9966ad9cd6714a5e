//! `qhnsw_check(index)`: a structural checker for operators and tests. It verifies
//! page headers, element encodings, that every neighbour reference points at an
//! element of the current build, the entry point, and that every live node is
//! reachable from the entry point over layer 0. Problems come back as text rows.
//! Like the SQL API, it needs SELECT on the index's table (else ERROR 42501).

use super::buffer::{block_count, graph_blocks, page_identity, PageRead};
use super::graph_pages::shape_of;
use super::meta::{decode_meta, load_quantizer};
use super::pages::{node_id, node_location, ElementRef, PageKind, INVALID_NODE};
use crate::fmgr::{arg_datum, raise};
use crate::pg_fn;
use crate::sql_api::privilege::{may_select, qualified_name, require_select};
use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode as Code;
use std::collections::{HashMap, HashSet, VecDeque};

/// One node as the checker sees it.
struct NodeInfo {
    deleted: bool,
    free: bool,
    layer0: Vec<u32>,
}

/// Runs every check on an open qhnsw index and lists the problems found.
pub fn check_index(index: pg_sys::Relation) -> Vec<String> {
    let mut problems = Vec::new();
    if page_identity(index, 0).map(|(k, _)| k) != Some(PageKind::Meta) {
        return vec!["block 0 is not a qhnsw meta page".into()];
    }
    let meta = {
        let page = PageRead::new(index, 0, PageKind::Meta);
        decode_meta(index, page.item(1))
    };
    if meta.quantizer_blocks > 0 {
        load_quantizer(index, &meta);
    }
    let shape = shape_of(&meta);
    let tag = meta.build_tag();
    let blocks: HashSet<u32> = graph_blocks(index, tag).into_iter().collect();
    let mut nodes: HashMap<u32, NodeInfo> = HashMap::new();
    let mut references: Vec<(u32, u32)> = Vec::new();
    for &block in &blocks {
        let page = PageRead::new(index, block, PageKind::Graph);
        for offset in 1..=page.item_count() {
            let id = node_id(block, offset);
            match ElementRef::parse(page.item(offset), shape) {
                Ok(e) => {
                    for layer in 0..=e.level() {
                        let list: Vec<u32> = e.neighbors(layer).collect();
                        let unique: HashSet<u32> = list.iter().copied().collect();
                        if unique.len() != list.len() {
                            problems.push(format!("block {block} offset {offset}: duplicate neighbours on layer {layer}"));
                        }
                        if unique.contains(&id) {
                            problems.push(format!(
                                "block {block} offset {offset}: links to itself on layer {layer}"
                            ));
                        }
                        references.extend(list.iter().map(|n| (id, *n)));
                    }
                    let layer0 = e.neighbors(0).collect();
                    nodes.insert(
                        id,
                        NodeInfo {
                            deleted: e.is_deleted(),
                            free: e.is_free(),
                            layer0,
                        },
                    );
                }
                Err(err) => problems.push(format!("block {block} offset {offset}: {err}")),
            }
        }
    }
    let nblocks = block_count(index);
    for (from, to) in &references {
        if !nodes.contains_key(to) {
            let (b, o) = node_location(*to);
            let (fb, fo) = node_location(*from);
            let why = if b >= nblocks {
                "beyond the end of the index"
            } else {
                "not an element of this build"
            };
            problems.push(format!(
                "block {fb} offset {fo}: neighbour ({b},{o}) is {why}"
            ));
        }
    }
    let live = nodes.values().filter(|n| !n.deleted).count();
    if meta.entry_node == INVALID_NODE {
        if live > 0 {
            problems.push(format!("no entry point but {live} live nodes"));
        }
        return problems;
    }
    match nodes.get(&meta.entry_node) {
        None => problems.push("entry point is not an element of this build".into()),
        Some(n) if n.free => problems.push("entry point is a freed element".into()),
        Some(_) => {
            let mut seen = HashSet::from([meta.entry_node]);
            let mut queue = VecDeque::from([meta.entry_node]);
            while let Some(id) = queue.pop_front() {
                if let Some(n) = nodes.get(&id) {
                    for next in &n.layer0 {
                        if nodes.contains_key(next) && seen.insert(*next) {
                            queue.push_back(*next);
                        }
                    }
                }
            }
            let unreachable = nodes
                .iter()
                .filter(|(id, n)| !n.deleted && !seen.contains(id))
                .count();
            if unreachable > 0 {
                problems.push(format!(
                    "{unreachable} of {live} live nodes are unreachable from the entry point"
                ));
            }
        }
    }
    problems
}

pg_fn!(
    /// `qhnsw_check_problems(regclass) returns text[]`: the checker's findings (needs SELECT on the table).
    qhnsw_check_problems,
    |fcinfo| {
        // SAFETY: argument 0 is a regclass (an oid by value).
        let oid = pg_sys::Oid::from(unsafe { arg_datum(fcinfo, 0) }.value() as u32);
        // SAFETY: opening the relation with AccessShareLock; we check it is a qhnsw index
        // (so rd_index is set) and that the caller may read its table before checking it.
        let problems = unsafe {
            let rel = pg_sys::relation_open(oid, pg_sys::AccessShareLock as i32);
            let is_qhnsw = (*(*rel).rd_rel).relkind == pg_sys::RELKIND_INDEX as std::ffi::c_char
                && (*(*rel).rd_rel).relam == pg_sys::get_am_oid(c"qhnsw".as_ptr(), false);
            if !is_qhnsw {
                let name = super::meta::relation_name(rel);
                pg_sys::relation_close(rel, pg_sys::AccessShareLock as i32);
                raise(Code::ERRCODE_WRONG_OBJECT_TYPE, format!("\"{name}\" is not a qhnsw index"));
            }
            let heap = (*(*rel).rd_index).indrelid;
            if !may_select(heap) {
                pg_sys::relation_close(rel, pg_sys::AccessShareLock as i32);
                require_select(heap, &qualified_name(heap));
            }
            let problems = check_index(rel);
            pg_sys::relation_close(rel, pg_sys::AccessShareLock as i32);
            problems
        };
        let datums: Vec<pg_sys::Datum> = problems
            .iter()
            .map(|p| pgrx::pg_sys::Datum::from(pgrx::varlena::rust_str_to_text_p(p).into_pg()))
            .collect();
        // SAFETY: text is a varlena (-1 length, not by value, int-aligned); construct_array copies.
        unsafe {
            pg_sys::Datum::from(pg_sys::construct_array(
                datums.as_ptr() as *mut pg_sys::Datum,
                datums.len() as i32,
                pg_sys::TEXTOID,
                -1,
                false,
                b'i' as std::ffi::c_char,
            ))
        }
    }
);
