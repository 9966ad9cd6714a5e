// Numeric robustness of the index and the operators: runs of identical vectors
// (issue 11.6), components near the float4 limits (11.7), and the L1 operator
// classes (12.8), each checked against exact search.

/// Every quantizer a qhnsw index can use, with its options.
const NUMERIC_QUANTIZERS: [&str; 5] = ["none", "sq8", "sq4", "pq", "binary"];

/// Id of the nearest row to `query` under `op` through the index (seq scans disabled).
fn nearest_by_index(table: &str, op: &str, query: &str) -> i32 {
    Spi::run("SET LOCAL enable_seqscan = off").unwrap();
    let id = Spi::get_one::<i32>(&format!("SELECT id FROM {table} ORDER BY v {op} '{query}' LIMIT 1"))
        .unwrap()
        .expect("a row");
    Spi::run("RESET enable_seqscan").unwrap();
    id
}

/// 11.6: 100 copies of one vector plus one other; `LIMIT 1` for the other returns it,
/// for every quantizer, whether the distinct row comes last or first, and for an index
/// built over the rows as well as one filled by inserts.
#[pg_test]
fn duplicates_do_not_hide_a_distinct_vector() {
    let dims = 16;
    let copy = format_vector(&(0..dims).map(|i| (i as f32 * 0.37).sin()).collect::<Vec<_>>());
    let other = format_vector(&(0..dims).map(|i| (i as f32 * 1.91 + 0.5).cos()).collect::<Vec<_>>());
    for quantizer in NUMERIC_QUANTIZERS {
        for (order, distinct_id) in [("last", 100), ("first", 0)] {
            for built in [true, false] {
                let table = format!("vq_dup_{quantizer}_{order}_{built}");
                Spi::run(&format!("CREATE TABLE {table} (id int, v qvector({dims}))")).unwrap();
                let create_index = format!(
                    "CREATE INDEX ON {table} USING qhnsw (v qvector_l2_ops) WITH (quantizer = '{quantizer}')"
                );
                if !built {
                    Spi::run(&create_index).unwrap();
                }
                for id in 0..=100 {
                    let v = if id == distinct_id { &other } else { &copy };
                    Spi::run(&format!("INSERT INTO {table} VALUES ({id}, '{v}')")).unwrap();
                }
                if built {
                    Spi::run(&create_index).unwrap();
                }
                let found = nearest_by_index(&table, "<->", &other);
                assert_eq!(
                    found, distinct_id,
                    "{quantizer}, distinct row {order}, index {}",
                    if built { "built" } else { "filled by inserts" }
                );
            }
        }
    }
}

/// 11.7: a cosine index keeps and returns vectors whose squared norm overflows float4
/// (a component of 2e19 or 1e38), built or inserted, for a flat and a quantized index.
#[pg_test]
fn cosine_index_returns_huge_vectors() {
    let dims = 8;
    let base = embeddings_like(200, dims, 5);
    for quantizer in ["none", "sq8"] {
        let table = format!("vq_huge_cos_{quantizer}");
        load_table(&table, dims, &base);
        Spi::run(&format!("INSERT INTO {table} VALUES (1000, '[2e19,0,0,0,0,0,0,0]')")).unwrap();
        Spi::run(&format!(
            "CREATE INDEX ON {table} USING qhnsw (v qvector_cosine_ops) WITH (quantizer = '{quantizer}')"
        ))
        .unwrap();
        Spi::run(&format!("INSERT INTO {table} VALUES (1001, '[0,0,-1e38,0,0,0,0,0]')")).unwrap();
        assert_eq!(nearest_by_index(&table, "<=>", "[1,0,0,0,0,0,0,0]"), 1000, "{quantizer}");
        assert_eq!(nearest_by_index(&table, "<=>", "[0,0,-3,0,0,0,0,0]"), 1001, "{quantizer}");
    }
    // The operators agree: both are at cosine distance 0 from their query.
    assert_eq!(f64_of("SELECT '[2e19,0,0]'::qvector <=> '[1,0,0]'"), 0.0);
    assert_eq!(f64_of("SELECT '[0,-1e38,0]'::qvector <=> '[0,-3,0]'"), 0.0);
}

/// 11.7: the distance operators on finite inputs near float4's limit return the exact
/// float8 value (pgvector's float sums give Infinity here).
#[pg_test]
fn distances_near_float4_max_are_finite_and_exact() {
    let (big, max, small) = (3e38f32 as f64, 3.4e38f32 as f64, 1e38f32 as f64);
    assert_eq!(f64_of("SELECT '[3e38]'::qvector <-> '[-3e38]'"), 2.0 * big);
    assert_eq!(f64_of("SELECT '[3e38]'::qvector <-> '[1e38]'"), big - small);
    assert_eq!(f64_of("SELECT l2_distance('[3.4e38,0]'::qvector, '[0,3.4e38]')"), (2.0 * max * max).sqrt());
    assert_eq!(f64_of("SELECT '[3e38,3e38,-1e38]'::qvector <#> '[1,1,1]'"), -(2.0 * big - small));
    assert_eq!(f64_of("SELECT inner_product('[3e38,3e38]'::qvector, '[3e38,1]')"), big * big + big);
    assert_eq!(f64_of("SELECT '[3e38,-3e38]'::qvector <+> '[-3e38,3e38]'"), 4.0 * big);
    assert_eq!(f64_of("SELECT qvector_l2_squared_distance('[3e38]'::qvector, '[0]')"), big * big);
    // Ordinary values keep their float4-kernel results.
    assert_eq!(f64_of("SELECT '[1,2]'::qvector <-> '[4,6]'"), 5.0);
    assert_eq!(f64_of("SELECT '[1,2]'::qvector <+> '[4,6]'"), 7.0);
}

/// 11.7: a binary L2 index over data where 1% of the rows have one 1e30 component keeps
/// its recall for ordinary queries (exact truth over every row, outliers included).
#[pg_test]
fn binary_index_robust_to_huge_outlier_rows() {
    let (n, dims) = (10_000, 128);
    let mut base = embeddings_like(n, dims, 11);
    for row in (0..n).step_by(100) {
        base[row * dims + row % dims] = 1e30;
    }
    load_table("vq_outliers", dims, &base);
    Spi::run("CREATE INDEX vq_outliers_idx ON vq_outliers USING qhnsw (v qvector_l2_ops) WITH (quantizer = 'binary')")
        .unwrap();
    let queries = queries_like(100, dims, 11);
    let truth = exact_knn(&base, &queries, dims, 10, Metric::L2);
    let got = index_results("vq_outliers", Metric::L2, &queries, dims, 10);
    let recall = recall_at(10, &truth, &got);
    pgrx::log!("binary L2 with 1% outlier rows: recall@10 {recall:.4}");
    assert!(recall >= 0.9, "recall@10 {recall:.4}");
}

/// 12.8: `qvector_l1_ops` with every quantizer reaches the L2 recall thresholds against
/// exact L1 search, EXPLAIN uses the index, and rows inserted after the build are found.
#[pg_test]
fn l1_opclass_recall_per_quantizer() {
    let (n, nq, dims) = (10_000, 100, 128);
    let base = embeddings_like(n, dims, 13);
    let queries = queries_like(nq, dims, 13);
    load_table("vq_l1", dims, &base);
    let truth = exact_knn(&base, &queries, dims, 10, Metric::L1);
    // Rows from the same distribution as the base (the 20 generated after it).
    let extra = embeddings_like(n + 20, dims, 13).split_off(n * dims);
    for (quantizer, threshold) in [("none", 0.98), ("sq8", 0.97), ("sq4", 0.95), ("pq", 0.93), ("binary", 0.93)] {
        Spi::run(&format!(
            "CREATE INDEX vq_l1_idx ON vq_l1 USING qhnsw (v qvector_l1_ops) WITH (quantizer = '{quantizer}')"
        ))
        .unwrap();
        Spi::run("SET LOCAL enable_seqscan = off").unwrap();
        let plan = plan_of(&format!("SELECT id FROM vq_l1 ORDER BY v <+> '{}' LIMIT 10", format_vector(&queries[..dims])));
        assert!(plan.contains("Index Scan using vq_l1_idx"), "{plan}");
        let got = index_results("vq_l1", Metric::L1, &queries, dims, 10);
        let recall = recall_at(10, &truth, &got);
        pgrx::log!("recall@10 {quantizer} 128d L1: {recall:.4}");
        assert!(recall >= threshold, "{quantizer}: recall@10 {recall:.4} < {threshold}");
        // Inserted rows are found at distance 0 from themselves.
        for (i, row) in extra.chunks_exact(dims).enumerate() {
            Spi::run(&format!("INSERT INTO vq_l1 VALUES ({}, '{}')", 100_000 + i, format_vector(row))).unwrap();
        }
        for (i, row) in extra.chunks_exact(dims).enumerate() {
            let text = format_vector(row);
            let found = nearest_by_index("vq_l1", "<+>", &text);
            let gap = f64_of(&format!("SELECT v <+> '{text}' FROM vq_l1 WHERE id = {found}"));
            assert_eq!(gap, 0.0, "{quantizer}: inserted row {} not found (got {found})", 100_000 + i);
        }
        Spi::run("DELETE FROM vq_l1 WHERE id >= 100000").unwrap();
        Spi::run("DROP INDEX vq_l1_idx").unwrap();
    }
}

/// 12.8: `sq8vector_l1_ops` matches the exact sequential scan with `<+>` on the codes.
#[pg_test]
fn sq8vector_l1_opclass_recall() {
    let (n, nq, dims) = (10_000, 100, 128);
    let base = embeddings_like(n, dims, 17);
    let queries = queries_like(nq, dims, 17);
    load_sq8_table("sq_l1", dims, &base);
    let truth = top_ids("sq_l1", "<+>", &queries, dims, 10, ", id");
    for (quantizer, threshold) in [("sq8", 0.97), ("binary", 0.93)] {
        Spi::run(&format!(
            "CREATE INDEX sq_l1_idx ON sq_l1 USING qhnsw (v sq8vector_l1_ops) WITH (quantizer = '{quantizer}')"
        ))
        .unwrap();
        Spi::run("SET LOCAL enable_seqscan = off").unwrap();
        let plan = plan_of(&format!("SELECT id FROM sq_l1 ORDER BY v <+> '{}' LIMIT 10", format_vector(&queries[..dims])));
        assert!(plan.contains("Index Scan using sq_l1_idx"), "{plan}");
        let got = top_ids("sq_l1", "<+>", &queries, dims, 10, "");
        let recall = recall_at(10, &truth, &got);
        pgrx::log!("sq8vector L1 {quantizer}: recall@10 {recall:.4}");
        assert!(recall >= threshold, "{quantizer}: recall@10 {recall:.4} < {threshold}");
        Spi::run("RESET enable_seqscan").unwrap();
        Spi::run("DROP INDEX sq_l1_idx").unwrap();
    }
}
