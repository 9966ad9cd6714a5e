// qhnsw index tests: recall against exact search per quantizer and metric, plans,
// iterative scans, high dimensions, bad options, corrupted pages, inserts and deletes.

/// Loads `data` (rows of `dims`) into a new table `name (id int, v qvector(dims))` by binary COPY; ids are row numbers.
pub fn load_table(name: &str, dims: usize, data: &[f32]) {
    let mut file = b"PGCOPY\n\xff\r\n\0".to_vec();
    file.extend_from_slice(&0i32.to_be_bytes());
    file.extend_from_slice(&0i32.to_be_bytes());
    for (i, row) in data.chunks_exact(dims).enumerate() {
        file.extend_from_slice(&2i16.to_be_bytes());
        file.extend_from_slice(&4i32.to_be_bytes());
        file.extend_from_slice(&(i as i32).to_be_bytes());
        let payload = crate::types::binary::encode_binary(row);
        file.extend_from_slice(&(payload.len() as i32).to_be_bytes());
        file.extend_from_slice(&payload);
    }
    file.extend_from_slice(&(-1i16).to_be_bytes());
    let path = format!("/tmp/vq_load_{}_{name}.bin", std::process::id());
    std::fs::write(&path, &file).expect("write copy file");
    Spi::run(&format!("CREATE TABLE {name} (id int, v qvector({dims}))")).unwrap();
    Spi::run(&format!("COPY {name} FROM '{path}' (FORMAT binary)")).unwrap();
    let _ = std::fs::remove_file(&path);
}

/// The ORDER BY operator of a metric.
fn operator(metric: Metric) -> &'static str {
    match metric {
        Metric::L2 => "<->",
        Metric::InnerProduct => "<#>",
        Metric::Cosine => "<=>",
        Metric::L1 => "<+>",
    }
}

/// The operator class of a metric.
fn opclass(metric: Metric) -> &'static str {
    match metric {
        Metric::L2 => "qvector_l2_ops",
        Metric::InnerProduct => "qvector_ip_ops",
        Metric::Cosine => "qvector_cosine_ops",
        Metric::L1 => "qvector_l1_ops",
    }
}

/// Top-k ids for each query, ordered by `v <op> query` followed by `then` (e.g. ", id").
pub fn top_ids(table: &str, op: &str, queries: &[f32], dims: usize, k: usize, then: &str) -> Vec<Vec<u32>> {
    queries
        .chunks_exact(dims)
        .map(|q| {
            let sql = format!(
                "SELECT array_agg(id) FROM (SELECT id FROM {table} ORDER BY v {op} '{}'{then} LIMIT {k}) s",
                format_vector(q)
            );
            Spi::get_one::<Vec<i32>>(&sql).unwrap().unwrap_or_default().into_iter().map(|i| i as u32).collect()
        })
        .collect()
}

/// Top-k ids for each query through the index (seq scans disabled).
pub fn index_results(table: &str, metric: Metric, queries: &[f32], dims: usize, k: usize) -> Vec<Vec<u32>> {
    Spi::run("SET LOCAL enable_seqscan = off").unwrap();
    top_ids(table, operator(metric), queries, dims, k, "")
}

/// Builds an index with `options` for each metric and asserts recall@10 >= `threshold`.
fn assert_recall(dims: usize, quantizer: &str, extra: &str, threshold: f64) {
    let (n, nq) = (10_000, 100);
    let base = embeddings_like(n, dims, 7);
    let queries = queries_like(nq, dims, 7);
    let table = format!("vq_recall_{quantizer}_{dims}");
    load_table(&table, dims, &base);
    for metric in [Metric::L2, Metric::InnerProduct, Metric::Cosine] {
        Spi::run(&format!(
            "CREATE INDEX {table}_idx ON {table} USING qhnsw (v {}) WITH (quantizer = '{quantizer}'{extra})",
            opclass(metric)
        ))
        .unwrap();
        let truth = exact_knn(&base, &queries, dims, 10, metric);
        let got = index_results(&table, metric, &queries, dims, 10);
        let recall = recall_at(10, &truth, &got);
        pgrx::log!("recall@10 {quantizer} {dims}d {metric:?}: {recall:.4}");
        assert!(recall >= threshold, "{quantizer} {dims}d {metric:?}: recall@10 {recall:.4} < {threshold}");
        Spi::run(&format!("DROP INDEX {table}_idx")).unwrap();
    }
}

#[pg_test]
fn recall_none_128() {
    assert_recall(128, "none", "", 0.98);
}

#[pg_test]
fn recall_sq8_128() {
    assert_recall(128, "sq8", "", 0.97);
}

#[pg_test]
fn recall_sq4_128() {
    assert_recall(128, "sq4", "", 0.95);
}

#[pg_test]
fn recall_pq_128() {
    assert_recall(128, "pq", "", 0.93);
}

#[pg_test]
fn recall_binary_128() {
    assert_recall(128, "binary", "", 0.93);
}

#[pg_test]
fn recall_none_768() {
    assert_recall(768, "none", "", 0.98);
}

#[pg_test]
fn recall_sq8_768() {
    assert_recall(768, "sq8", "", 0.97);
}

#[pg_test]
fn recall_sq4_768() {
    assert_recall(768, "sq4", "", 0.95);
}

#[pg_test]
fn recall_pq_768() {
    assert_recall(768, "pq", "", 0.93);
}

#[pg_test]
fn recall_binary_768() {
    assert_recall(768, "binary", "", 0.93);
}

#[pg_test]
fn recall_sq8_float16_rerank_768() {
    assert_recall(768, "sq8", ", rerank = 'float16'", 0.97);
}

/// 3072- and 4096-dimensional sq8 indexes (beyond pgvector's 2000 limit) build and reach sq8 recall.
#[pg_test]
fn high_dimensions_sq8() {
    for dims in [3072usize, 4096] {
        let (n, nq) = (3_000, 50);
        let base = embeddings_like(n, dims, 11);
        let queries = queries_like(nq, dims, 11);
        let table = format!("vq_high_{dims}");
        load_table(&table, dims, &base);
        Spi::run(&format!("CREATE INDEX {table}_idx ON {table} USING qhnsw (v qvector_l2_ops)")).unwrap();
        // With default settings the planner prefers the index to a scan of the small heap
        // whose vectors live in TOAST.
        Spi::run(&format!("ANALYZE {table}")).unwrap();
        let plan = plan_of(&format!(
            "SELECT id FROM {table} ORDER BY v <-> '{}' LIMIT 10",
            format_vector(&queries[..dims])
        ));
        assert!(plan.contains(&format!("Index Scan using {table}_idx")), "{plan}");
        let truth = exact_knn(&base, &queries, dims, 10, Metric::L2);
        let recall = recall_at(10, &truth, &index_results(&table, Metric::L2, &queries, dims, 10));
        assert!(recall >= 0.97, "{dims}d sq8 recall@10 {recall:.4}");
    }
}

/// Binary and PQ index the maximum 16000 dimensions.
#[pg_test]
fn sixteen_thousand_dimensions() {
    let dims = 16000;
    let base = embeddings_like(300, dims, 13);
    load_table("vq_16k", dims, &base);
    for (quantizer, extra) in [("binary", ""), ("pq", ", pq_subvectors = 2000")] {
        Spi::run(&format!(
            "CREATE INDEX vq_16k_idx ON vq_16k USING qhnsw (v qvector_l2_ops) WITH (quantizer = '{quantizer}'{extra})"
        ))
        .unwrap();
        let truth = exact_knn(&base, &base[..dims], dims, 1, Metric::L2);
        let got = index_results("vq_16k", Metric::L2, &base[..dims], dims, 1);
        assert_eq!(got, truth, "{quantizer}: a stored vector finds itself");
        Spi::run("DROP INDEX vq_16k_idx").unwrap();
    }
}

#[pg_test]
fn explain_uses_index_only_with_order_by() {
    load_table("vq_plan", 32, &embeddings_like(2000, 32, 3));
    Spi::run("CREATE INDEX vq_plan_idx ON vq_plan USING qhnsw (v qvector_l2_ops)").unwrap();
    Spi::run("ANALYZE vq_plan").unwrap();
    let plan = plan_of;
    let q = format_vector(&queries_like(1, 32, 3));
    let with_order = plan(&format!("SELECT id FROM vq_plan ORDER BY v <-> '{q}' LIMIT 10"));
    assert!(with_order.contains("Index Scan using vq_plan_idx"), "{with_order}");
    let without = plan("SELECT id FROM vq_plan WHERE id < 10");
    assert!(!without.contains("vq_plan_idx"), "{without}");
    let other_metric = plan(&format!("SELECT id FROM vq_plan ORDER BY v <=> '{q}' LIMIT 10"));
    assert!(!other_metric.contains("vq_plan_idx"), "{other_metric}");
}

/// A WHERE filter keeping 1 row in 50 still returns the full LIMIT (iterative scan).
#[pg_test]
fn filtered_query_returns_full_limit() {
    let dims = 64;
    load_table("vq_filter", dims, &embeddings_like(10_000, dims, 5));
    Spi::run("CREATE INDEX ON vq_filter USING qhnsw (v qvector_l2_ops)").unwrap();
    Spi::run("SET LOCAL enable_seqscan = off").unwrap();
    let queries = queries_like(10, dims, 5);
    for q in queries.chunks_exact(dims) {
        let sql = format!(
            "SELECT count(*) FROM (SELECT id FROM vq_filter WHERE id % 50 = 0 ORDER BY v <-> '{}' LIMIT 10) s",
            format_vector(q)
        );
        assert_eq!(Spi::get_one::<i64>(&sql).unwrap(), Some(10));
    }
    Spi::run("SET LOCAL qhnsw.iterative_scan = off").unwrap();
    let sql = format!(
        "SELECT count(*) FROM (SELECT id FROM vq_filter WHERE id % 50 = 0 ORDER BY v <-> '{}' LIMIT 10) s",
        format_vector(&queries[..dims])
    );
    assert!(Spi::get_one::<i64>(&sql).unwrap().unwrap() < 10, "without iterative scan one beam is not enough");
}

/// Results come back in exact distance order (re-ranked), NULLs and duplicates are handled.
#[pg_test]
fn exact_order_nulls_and_duplicates() {
    Spi::run("CREATE TABLE vq_small (id int, v qvector(3))").unwrap();
    Spi::run(
        "INSERT INTO vq_small VALUES (1, '[1,1,1]'), (2, '[2,2,2]'), (3, '[1,1,2]'), (4, NULL), (5, '[1,1,1]'), (6, '[0,0,0.5]')",
    )
    .unwrap();
    Spi::run("CREATE INDEX ON vq_small USING qhnsw (v qvector_l2_ops)").unwrap();
    Spi::run("SET LOCAL enable_seqscan = off").unwrap();
    let order = text_of(
        "SELECT string_agg(id::text, ',') FROM (SELECT id FROM vq_small ORDER BY v <-> '[1,1,1]' LIMIT 10) s",
    );
    assert!(order == "1,5,3,6,2" || order == "5,1,3,6,2", "{order}");
    // a row inserted after the build is found first for its own vector
    Spi::run("INSERT INTO vq_small VALUES (7, '[1,1,1.5]')").unwrap();
    assert_eq!(
        text_of("SELECT string_agg(id::text, ',') FROM (SELECT id FROM vq_small ORDER BY v <-> '[1,1,1.5]' LIMIT 1) s"),
        "7"
    );
}

/// Opens an index by name and runs `f` on a write guard of one of its pages.
fn patch_page(index: &str, block: u32, kind: crate::am::pages::PageKind, f: impl FnOnce(&mut crate::am::buffer::PageWrite)) {
    let oid = Spi::get_one::<pg_sys::Oid>(&format!("SELECT '{index}'::regclass::oid")).unwrap().unwrap();
    // SAFETY: the index exists; we hold RowExclusiveLock while patching one page.
    unsafe {
        let rel = pg_sys::index_open(oid, pg_sys::RowExclusiveLock as i32);
        let mut page = crate::am::buffer::PageWrite::new(rel, block, kind);
        f(&mut page);
        page.commit();
        pg_sys::index_close(rel, pg_sys::RowExclusiveLock as i32);
    }
}

/// A corrupted element is reported as index corruption, not a crash.
#[pg_test]
fn corrupted_element_is_reported() {
    load_table("vq_corrupt", 8, &embeddings_like(50, 8, 9));
    Spi::run("CREATE INDEX vq_corrupt_idx ON vq_corrupt USING qhnsw (v qvector_l2_ops)").unwrap();
    let last_block = Spi::get_one::<i64>("SELECT pg_relation_size('vq_corrupt_idx') / 8192 - 1").unwrap().unwrap();
    patch_page("vq_corrupt_idx", last_block as u32, crate::am::pages::PageKind::Graph, |page| {
        for offset in 1..=page.item_count() {
            page.item_mut(offset)[0] = 0x55;
        }
    });
    Spi::run("SET LOCAL enable_seqscan = off").unwrap();
    let err = error_of("SELECT * FROM vq_corrupt ORDER BY v <-> '[0,0,0,0,0,0,0,1]' LIMIT 5");
    assert!(err.starts_with("XX002: qhnsw index \"vq_corrupt_idx\" is corrupted at block"), "{err}");
}

#[pg_test]
fn bad_options_are_rejected() {
    Spi::run("CREATE TABLE vq_opts (v qvector(4))").unwrap();
    let create = |with: &str| error_of(&format!("CREATE INDEX ON vq_opts USING qhnsw (v qvector_l2_ops) WITH ({with})"));
    assert_eq!(create("m = 1"), "22023: value 1 out of bounds for option \"m\"");
    assert_eq!(create("m = 101"), "22023: value 101 out of bounds for option \"m\"");
    assert_eq!(create("ef_construction = 3"), "22023: value 3 out of bounds for option \"ef_construction\"");
    assert_eq!(create("m = 40, ef_construction = 64"), "22023: ef_construction must be greater than or equal to 2 * m");
    assert_eq!(create("quantizer = 'sq3'"), "22023: invalid value for qhnsw option \"quantizer\": \"sq3\"");
    assert_eq!(create("rerank = 'disk'"), "22023: invalid value for qhnsw option \"rerank\": \"disk\"");
    assert_eq!(create("pq_bits = 6"), "22023: pq_bits must be 4 or 8");
    assert_eq!(create("colour = 'red'"), "22023: unrecognized parameter \"colour\"");
    Spi::run("INSERT INTO vq_opts VALUES ('[1,2,3,4]'), ('[4,3,2,1]')").unwrap();
    let err = create("quantizer = 'pq', pq_subvectors = 3");
    assert!(err.starts_with("22023: cannot train the quantizer: "), "{err}");
    assert!(err.contains('3') && err.contains('4'), "names the sub-vectors and dimensions: {err}");
}

#[pg_test]
fn wrong_dimensions_are_rejected() {
    Spi::run("CREATE TABLE vq_dims (v qvector)").unwrap();
    Spi::run("INSERT INTO vq_dims VALUES ('[1,2,3]'), ('[3,2,1]')").unwrap();
    Spi::run("CREATE INDEX ON vq_dims USING qhnsw (v qvector_l2_ops)").unwrap();
    assert_eq!(error_of("INSERT INTO vq_dims VALUES ('[1,2]')"), "22000: expected 3 dimensions, not 2");
    Spi::run("SET LOCAL enable_seqscan = off").unwrap();
    assert_eq!(error_of("SELECT * FROM vq_dims ORDER BY v <-> '[1,2]' LIMIT 1"), "22000: expected 3 dimensions, not 2");
    Spi::run("CREATE TABLE vq_dims2 (v qvector)").unwrap();
    Spi::run("INSERT INTO vq_dims2 VALUES ('[1,2,3]'), ('[3,2]')").unwrap();
    assert_eq!(error_of("CREATE INDEX ON vq_dims2 USING qhnsw (v qvector_l2_ops)"), "22000: expected 3 dimensions, not 2");
}

/// An index whose meta page says another format version ERRORs with a HINT to REINDEX.
#[pg_test]
fn unknown_format_version_is_reported() {
    Spi::run("CREATE TABLE vq_ver (v qvector(2))").unwrap();
    Spi::run("INSERT INTO vq_ver VALUES ('[1,2]'), ('[2,1]')").unwrap();
    Spi::run("CREATE INDEX vq_ver_idx ON vq_ver USING qhnsw (v qvector_l2_ops)").unwrap();
    patch_page("vq_ver_idx", 0, crate::am::pages::PageKind::Meta, |page| {
        page.item_mut(1)[4..8].copy_from_slice(&99u32.to_le_bytes());
    });
    Spi::run("SET LOCAL enable_seqscan = off").unwrap();
    let sql = "SELECT * FROM vq_ver ORDER BY v <-> '[1,2]' LIMIT 1";
    assert_eq!(
        error_of(sql),
        "0A000: qhnsw index \"vq_ver_idx\" has format version 99, but this build of vectorize_quant reads version 2"
    );
    assert_eq!(hint_of(sql), "REINDEX INDEX vq_ver_idx to rebuild it in the current format.");
}
fn l2_recall(table: &str, base: &[f32], dims: usize, seed: u64) -> f64 {
    let queries = queries_like(100, dims, seed);
    let truth = exact_knn(base, &queries, dims, 10, Metric::L2);
    recall_at(10, &truth, &index_results(table, Metric::L2, &queries, dims, 10))
}

/// An index created on an empty table stages, trains from its first batch, and then
/// reaches the read-path recall after 10k single-row inserts.
#[pg_test]
fn empty_index_filled_by_inserts() {
    let dims = 128;
    let base = embeddings_like(10_000, dims, 21);
    load_table("vq_src_empty", dims, &base);
    for (quantizer, threshold) in [("sq8", 0.97), ("pq", 0.93), ("binary", 0.93)] {
        let table = format!("vq_empty_{quantizer}");
        Spi::run(&format!("CREATE TABLE {table} (id int, v qvector({dims}))")).unwrap();
        Spi::run(&format!("CREATE INDEX {table}_idx ON {table} USING qhnsw (v qvector_l2_ops) WITH (quantizer = '{quantizer}')"))
            .unwrap();
        Spi::run(&format!("INSERT INTO {table} SELECT * FROM vq_src_empty ORDER BY id")).unwrap();
        let recall = l2_recall(&table, &base, dims, 21);
        pgrx::log!("empty-built {quantizer} after 10k inserts: recall@10 {recall:.4}");
        assert!(recall >= threshold, "{quantizer}: recall@10 {recall:.4} < {threshold}");
    }
}

/// Rows inserted after the build are found as well as built ones.
#[pg_test]
fn inserts_after_build_keep_recall() {
    let dims = 128;
    let base = embeddings_like(10_000, dims, 23);
    load_table("vq_after", dims, &base[..5_000 * dims]);
    Spi::run("CREATE INDEX vq_after_idx ON vq_after USING qhnsw (v qvector_l2_ops)").unwrap();
    load_table("vq_after_more", dims, &base[5_000 * dims..]);
    Spi::run("INSERT INTO vq_after SELECT id + 5000, v FROM vq_after_more ORDER BY id").unwrap();
    let recall = l2_recall("vq_after", &base, dims, 23);
    assert!(recall >= 0.97, "recall@10 after inserts {recall:.4}");
}

/// Deleted rows are never returned after VACUUM, and survivors are still found.
#[pg_test]
fn deletes_and_vacuum_never_return_dead_rows() {
    let dims = 64;
    let base = embeddings_like(4_000, dims, 25);
    load_table("vq_del", dims, &base);
    Spi::run("CREATE INDEX vq_del_idx ON vq_del USING qhnsw (v qvector_l2_ops)").unwrap();
    Spi::run("DELETE FROM vq_del WHERE id % 4 <> 0").unwrap();
    let queries = queries_like(20, dims, 25);
    Spi::run("SET LOCAL enable_seqscan = off").unwrap();
    for q in queries.chunks_exact(dims) {
        let sql = format!(
            "SELECT count(*) FILTER (WHERE id % 4 <> 0) FROM (SELECT id FROM vq_del ORDER BY v <-> '{}' LIMIT 10) s",
            format_vector(q)
        );
        assert_eq!(Spi::get_one::<i64>(&sql).unwrap(), Some(0));
    }
}

/// qhnsw_check is clean on a healthy index and names a broken neighbour reference.
#[pg_test]
fn check_finds_broken_references() {
    load_table("vq_chk", 16, &embeddings_like(500, 16, 27));
    Spi::run("CREATE INDEX vq_chk_idx ON vq_chk USING qhnsw (v qvector_l2_ops)").unwrap();
    Spi::run("INSERT INTO vq_chk SELECT id + 500, v FROM vq_chk WHERE id < 100").unwrap();
    assert_eq!(Spi::get_one::<i64>("SELECT count(*) FROM qhnsw_check('vq_chk_idx')").unwrap(), Some(0));
    let last_block = Spi::get_one::<i64>("SELECT pg_relation_size('vq_chk_idx') / 8192 - 1").unwrap().unwrap();
    patch_page("vq_chk_idx", last_block as u32, crate::am::pages::PageKind::Graph, |page| {
        for offset in 1..=page.item_count() {
            let item = page.item_mut(offset);
            if item[1] == 0 && item[12] > 0 {
                item[16..20].copy_from_slice(&crate::am::pages::node_id(99_999, 1).to_le_bytes());
                break;
            }
        }
    });
    let problems = text_of("SELECT string_agg(p, '; ') FROM qhnsw_check('vq_chk_idx') p");
    assert!(problems.contains("neighbour (99999,1) is beyond the end of the index"), "{problems}");
    Spi::run("CREATE INDEX vq_chk_btree ON vq_chk (id)").unwrap();
    assert_eq!(
        error_of("SELECT * FROM qhnsw_check('vq_chk_btree')"),
        "42809: \"vq_chk_btree\" is not a qhnsw index"
    );
}

/// quantizer = 'auto' evaluates the candidates at build time, keeps the smallest meeting
/// the threshold, records why, and the index then meets that threshold.
#[pg_test]
fn auto_quantizer_is_chosen_and_explained() {
    let dims = 64;
    let base = embeddings_like(4_000, dims, 31);
    load_table("vq_auto", dims, &base);
    Spi::run(
        "CREATE INDEX vq_auto_idx ON vq_auto USING qhnsw (v qvector_l2_ops) WITH (quantizer = 'auto', quality_threshold = 0.95)",
    )
    .unwrap();
    let because = text_of("SELECT chosen_because FROM quantization_stats('vq_auto_idx')");
    let method = text_of("SELECT method FROM quantization_stats('vq_auto_idx')");
    assert!(because.starts_with("quantizer = 'auto': smallest meeting recall 0.95: "), "{because}");
    assert!(because.contains(&format!(": {method}")), "{method} / {because}");
    assert_ne!(method, "none", "a quantizer smaller than float4 meets 0.95 on this data");
    let recall = l2_recall("vq_auto", &base, dims, 31);
    assert!(recall >= 0.95, "auto-chosen {method}: recall@10 {recall:.4}");
}

/// UNLOGGED tables, TRUNCATE and REINDEX keep a working index.
#[pg_test]
fn unlogged_truncate_and_reindex() {
    let dims = 16;
    let base = embeddings_like(1_000, dims, 41);
    load_table("vq_maint", dims, &base);
    Spi::run("CREATE UNLOGGED TABLE vq_unlogged (id int, v qvector(16))").unwrap();
    Spi::run("INSERT INTO vq_unlogged SELECT * FROM vq_maint").unwrap();
    Spi::run("CREATE INDEX vq_unlogged_idx ON vq_unlogged USING qhnsw (v qvector_l2_ops)").unwrap();
    assert!(l2_recall("vq_unlogged", &base, dims, 41) >= 0.97);
    Spi::run("REINDEX INDEX vq_unlogged_idx").unwrap();
    assert!(l2_recall("vq_unlogged", &base, dims, 41) >= 0.97);
    Spi::run("TRUNCATE vq_unlogged").unwrap();
    assert_eq!(text_of("SELECT count(*)::text FROM (SELECT id FROM vq_unlogged ORDER BY v <-> (SELECT v FROM vq_maint LIMIT 1) LIMIT 5) s"), "0");
    Spi::run("INSERT INTO vq_unlogged SELECT * FROM vq_maint").unwrap();
    assert!(l2_recall("vq_unlogged", &base, dims, 41) >= 0.97, "after TRUNCATE and re-insert (staging, then trained)");
    assert_eq!(Spi::get_one::<i64>("SELECT count(*) FROM qhnsw_check('vq_unlogged_idx')").unwrap(), Some(0));
}

/// Elements that cannot fit a page are refused with 54000 at CREATE INDEX; an index on an
/// empty 3072-dimensional table stages its first rows as float16, then trains sq8.
#[pg_test]
fn page_sized_elements() {
    let dims = 3072;
    let base = embeddings_like(2_100, dims, 13);
    load_table("vq_big_src", dims, &base);
    let refused = error_of("CREATE INDEX ON vq_big_src USING qhnsw (v qvector_l2_ops) WITH (quantizer = 'none')");
    assert!(
        refused.starts_with("54000: qhnsw elements for 3072 dimensions with quantizer 'none' need up to 13404 bytes"),
        "{refused}"
    );
    let refused = error_of(
        "CREATE INDEX ON vq_big_src USING qhnsw (v qvector_l2_ops) WITH (quantizer = 'sq8', rerank = 'float16')",
    );
    assert!(refused.starts_with("54000: qhnsw elements for 3072 dimensions with quantizer 'sq8'"), "{refused}");
    Spi::run("CREATE TABLE vq_big (id int, v qvector(3072))").unwrap();
    let refused = error_of("CREATE INDEX ON vq_big USING qhnsw (v qvector_l2_ops) WITH (quantizer = 'none')");
    assert!(refused.starts_with("54000: qhnsw elements for 3072 dimensions"), "{refused}");
    Spi::run("CREATE TABLE vq_huge (id int, v qvector(4096))").unwrap();
    assert_eq!(
        error_of("CREATE INDEX ON vq_huge USING qhnsw (v qvector_l2_ops)"),
        "54000: a qhnsw index on an empty table cannot stage 4096-dimensional rows: even as float16 they do not fit on a page"
    );
    // Staged as float16: every row is its own nearest neighbour while staging...
    Spi::run("CREATE INDEX vq_big_idx ON vq_big USING qhnsw (v qvector_l2_ops)").unwrap();
    Spi::run("INSERT INTO vq_big SELECT * FROM vq_big_src WHERE id < 500").unwrap();
    assert_eq!(text_of("SELECT method FROM quantization_stats('vq_big_idx')"), "none");
    Spi::run("SET LOCAL enable_seqscan = off").unwrap();
    let own_nearest = |ids: std::ops::Range<usize>| {
        ids.step_by(25)
            .filter(|&i| {
                let sql = format!(
                    "SELECT id FROM vq_big ORDER BY v <-> '{}' LIMIT 1",
                    format_vector(&base[i * dims..(i + 1) * dims])
                );
                Spi::get_one::<i32>(&sql).unwrap() == Some(i as i32)
            })
            .count()
    };
    assert_eq!(own_nearest(0..500), 20);
    // ...and after 2000 rows the index trains sq8 on them and keeps finding every row.
    Spi::run("INSERT INTO vq_big SELECT * FROM vq_big_src WHERE id >= 500").unwrap();
    assert_eq!(text_of("SELECT method FROM quantization_stats('vq_big_idx')"), "sq8");
    assert_eq!(own_nearest(0..2_100), 84);
    assert_eq!(
        Spi::get_one::<i64>("SELECT count(*) FROM qhnsw_check('vq_big_idx')").unwrap(),
        Some(0)
    );
}

/// Re-ranking detoasts heap vectors into a context reset per chunk: a LATERAL join that
/// rescans the index 200 times (40 TOASTed 12 kB vectors each, ~100 MB if kept) stays flat.
#[pg_test]
fn rescans_do_not_accumulate_memory() {
    let dims = 3072;
    load_table("vq_mem", dims, &embeddings_like(2_000, dims, 17));
    Spi::run("CREATE INDEX ON vq_mem USING qhnsw (v qvector_l2_ops)").unwrap();
    Spi::run(
        "CREATE FUNCTION vq_backend_bytes() RETURNS bigint LANGUAGE sql VOLATILE AS
         $$ SELECT sum(total_bytes)::bigint FROM pg_backend_memory_contexts $$",
    )
    .unwrap();
    Spi::run("SET LOCAL enable_seqscan = off").unwrap();
    let growth = Spi::get_one::<i64>(
        "SELECT max(b) - min(b) FROM (
           SELECT vq_backend_bytes() AS b
           FROM (SELECT id, v FROM vq_mem WHERE id < 200) q
           CROSS JOIN LATERAL (SELECT m.id FROM vq_mem m ORDER BY m.v <-> q.v LIMIT 1) s) t",
    )
    .unwrap()
    .unwrap();
    assert!(growth < 16 << 20, "backend memory grew by {growth} bytes over 200 rescans");
}
