// In-server tests of the concurrency protocol's single-backend parts (issue 11): the live
// count on the meta page (item 9) and corruption detection (item 10). The concurrent parts
// are server-level tests in tests/integration.rs.

/// The meta page of an index, decoded.
fn meta_of(index: &str) -> crate::am::pages::MetaPage {
    let oid = Spi::get_one::<pg_sys::Oid>(&format!("SELECT '{index}'::regclass::oid"))
        .unwrap()
        .unwrap();
    // SAFETY: the index exists; AccessShareLock while reading its meta page.
    unsafe {
        let rel = pg_sys::index_open(oid, pg_sys::AccessShareLock as i32);
        let meta = crate::am::meta::read_meta(rel);
        pg_sys::index_close(rel, pg_sys::AccessShareLock as i32);
        meta
    }
}

/// Rewrites the meta page of an index with `change` applied, with a valid checksum.
fn patch_meta(index: &str, change: impl FnOnce(&mut crate::am::pages::MetaPage)) {
    patch_page(index, 0, crate::am::pages::PageKind::Meta, |page| {
        let item = page.item_mut(1);
        let mut meta = crate::am::pages::MetaPage::decode(item).expect("meta decodes");
        change(&mut meta);
        item.copy_from_slice(&meta.encode());
    });
}

/// A 60-row, 8-dimension table with a qhnsw index `<name>_idx`.
fn small_index(name: &str) {
    load_table(name, 8, &embeddings_like(60, 8, 21));
    Spi::run(&format!(
        "CREATE INDEX {name}_idx ON {name} USING qhnsw (v qvector_l2_ops)"
    ))
    .unwrap();
    Spi::run("SET LOCAL enable_seqscan = off").unwrap();
}

/// The error of an index scan on `name`, as "SQLSTATE: message".
fn scan_error(name: &str) -> String {
    error_of(&format!(
        "SELECT id FROM {name} ORDER BY v <-> '[0,0,0,0,0,0,0,1]' LIMIT 5"
    ))
}

/// Issue 11 item 9: `vectors` counts rows inserted after the build (it showed the build
/// count: 1000 instead of 1200).
#[pg_test]
fn live_count_follows_inserts() {
    let rows = embeddings_like(1200, 8, 5);
    load_table("vq_count", 8, &rows[..1000 * 8]);
    load_table("vq_count_late", 8, &rows[1000 * 8..]);
    Spi::run("CREATE INDEX vq_count_idx ON vq_count USING qhnsw (v qvector_l2_ops)").unwrap();
    let vectors = || {
        Spi::get_one::<i64>("SELECT vectors FROM qhnsw_index_meta('vq_count_idx')")
            .unwrap()
            .unwrap()
    };
    assert_eq!(vectors(), 1000);
    Spi::run("INSERT INTO vq_count SELECT * FROM vq_count_late").unwrap();
    assert_eq!(vectors(), 1200);
    assert_eq!(meta_of("vq_count_idx").node_count, 1200);
}

/// Issue 11 item 10: a neighbour id whose block is beyond the end of the index is
/// reported as corruption (XX002), not as "could not read block" / a missing segment file.
#[pg_test]
fn neighbour_beyond_the_end_is_corruption() {
    small_index("vq_nb");
    let meta = meta_of("vq_nb_idx");
    let shape = crate::am::graph_pages::shape_of(&meta);
    let nblocks = Spi::get_one::<i64>("SELECT pg_relation_size('vq_nb_idx') / 8192")
        .unwrap()
        .unwrap() as u32;
    // One block past the end, and one past the first 1 GB segment.
    for beyond in [nblocks + 1, 200_000] {
        for block in meta.quantizer_first + meta.quantizer_blocks..nblocks {
            patch_page("vq_nb_idx", block, crate::am::pages::PageKind::Graph, |page| {
                for offset in 1..=page.item_count() {
                    let far = crate::am::pages::node_id(beyond, 1);
                    crate::am::pages::set_neighbors(page.item_mut(offset), shape, 0, &[far]);
                }
            });
        }
        let err = scan_error("vq_nb");
        assert!(
            err.starts_with("XX002: qhnsw index \"vq_nb_idx\" is corrupted at block")
                && err.contains("beyond the end of the index"),
            "{err}"
        );
    }
}

/// Issue 11 item 10: an entry point beyond the end of the index is XX002.
#[pg_test]
fn entry_point_beyond_the_end_is_corruption() {
    small_index("vq_entry");
    patch_meta("vq_entry_idx", |m| {
        m.entry_node = crate::am::pages::node_id(90_000, 1)
    });
    let err = scan_error("vq_entry");
    assert!(
        err.starts_with(
            "XX002: qhnsw index \"vq_entry_idx\" is corrupted at block 0: entry point (90000,1) is outside the index's"
        ),
        "{err}"
    );
    let insert = error_of("INSERT INTO vq_entry VALUES (99, '[1,2,3,4,5,6,7,8]')");
    assert!(insert.starts_with("XX002: "), "{insert}");
}

/// Issue 11 item 10: a corrupt code length is XX002 for INSERT and scans (INSERT panicked
/// with XX000 before).
#[pg_test]
fn corrupt_code_len_is_corruption() {
    small_index("vq_codelen");
    patch_meta("vq_codelen_idx", |m| m.code_len += 3);
    let insert = error_of("INSERT INTO vq_codelen VALUES (99, '[1,2,3,4,5,6,7,8]')");
    assert!(
        insert.starts_with("XX002: qhnsw index \"vq_codelen_idx\" is corrupted at block 0: code length"),
        "{insert}"
    );
    assert!(scan_error("vq_codelen").starts_with("XX002: "));
}

/// Issue 11 item 10: a changed metric byte is caught by the meta page checksum, and a
/// metric that disagrees with the operator class by the meta page check.
#[pg_test]
fn changed_metric_is_corruption() {
    small_index("vq_metric");
    patch_page("vq_metric_idx", 0, crate::am::pages::PageKind::Meta, |page| {
        page.item_mut(1)[12] = 2; // L2 -> cosine, checksum left as it was
    });
    assert_eq!(
        scan_error("vq_metric"),
        "XX002: qhnsw index \"vq_metric_idx\" is corrupted at block 0: meta page checksum mismatch"
    );
    assert_eq!(
        error_of("INSERT INTO vq_metric VALUES (99, '[1,2,3,4,5,6,7,8]')"),
        "XX002: qhnsw index \"vq_metric_idx\" is corrupted at block 0: meta page checksum mismatch"
    );
    // The same change with a valid checksum disagrees with the operator class.
    patch_page("vq_metric_idx", 0, crate::am::pages::PageKind::Meta, |page| {
        let item = page.item_mut(1);
        let crc = crate::am::pages::crc32c(&item[..64]);
        item[64..68].copy_from_slice(&crc.to_le_bytes());
    });
    assert!(
        scan_error("vq_metric").starts_with(
            "XX002: qhnsw index \"vq_metric_idx\" is corrupted at block 0: the meta page says metric Cosine"
        ),
        "{}",
        scan_error("vq_metric")
    );
}
