// In-server tests of the quantization SQL API (quantization_stats, quantization_optimize,
// qhnsw_quantize, counters, views, permissions). Included into `mod tests` in lib.rs.

/// Loads `rows` x `dims` seeded embeddings into `name` and indexes them with `with`; returns the data.
fn sqlapi_setup(name: &str, rows: usize, dims: usize, metric: Metric, with: &str) -> Vec<f32> {
    let data = embeddings_like(rows, dims, 11);
    load_table(name, dims, &data);
    Spi::run(&format!(
        "CREATE INDEX {name}_idx ON {name} USING qhnsw (v {}) WITH ({with})",
        opclass(metric)
    ))
    .unwrap();
    data
}

/// Returns one float8 column of `quantization_stats(index, n)`.
fn sqlapi_stat(index: &str, n: i32, column: &str) -> f64 {
    f64_of(&format!(
        "SELECT ({column})::float8 FROM quantization_stats('{index}', {n})"
    ))
}

/// Runs `sql` through the error-trapping helper without re-creating it (works under SET ROLE).
fn sqlapi_error_as_role(sql: &str) -> String {
    Spi::get_one_with_args::<String>("SELECT vq_test_error_of($1)", &[sql.into()])
        .expect("SPI")
        .expect("not null")
}

/// quantization_stats: sizes match the catalog and the table, recall matches an independent computation.
#[pg_test]
fn sqlapi_stats_sizes_and_recall() {
    let (rows, dims) = (2000usize, 32usize);
    let data = sqlapi_setup("sa_stats", rows, dims, Metric::L2, "quantizer = 'sq8'");
    Spi::run("SET LOCAL qhnsw.ef_search = 100").unwrap();
    let n = 50;
    let idx = "sa_stats_idx";
    assert_eq!(
        text_of(&format!("SELECT method FROM quantization_stats('{idx}')")),
        "sq8"
    );
    assert_eq!(sqlapi_stat(idx, 0, "bits"), 8.0);
    assert_eq!(sqlapi_stat(idx, 0, "code_bytes"), 32.0);
    assert_eq!(sqlapi_stat(idx, 0, "dimensions"), 32.0);
    assert_eq!(sqlapi_stat(idx, 0, "vectors"), rows as f64);
    assert_eq!(
        sqlapi_stat(idx, 0, "vectors"),
        f64_of("SELECT count(v)::float8 FROM sa_stats")
    );
    let size = f64_of(&format!("SELECT pg_relation_size('{idx}')::float8"));
    assert_eq!(sqlapi_stat(idx, 0, "index_bytes"), size);
    assert_eq!(
        sqlapi_stat(idx, 0, "float4_bytes"),
        (rows * dims * 4) as f64
    );
    let ratio = sqlapi_stat(idx, 0, "compression_ratio");
    assert!(
        (ratio - (rows * dims * 4) as f64 / size).abs() < 1e-9,
        "{ratio}"
    );
    assert!((sqlapi_stat(idx, 0, "memory_usage_mb") - size / 1048576.0).abs() < 1e-9);
    let loss = sqlapi_stat(idx, 0, "estimated_quality_loss");
    assert!((0.0..=0.02).contains(&loss), "sq8 loss {loss}");
    let err = sqlapi_stat(idx, 0, "reconstruction_error");
    assert!(
        (0.0..0.001).contains(&err),
        "sq8 reconstruction error {err}"
    );
    assert!(text_of(&format!(
        "SELECT chosen_because FROM quantization_stats('{idx}')"
    ))
    .contains("set explicitly"));
    // Without sample_queries the measured columns are NULL.
    assert!(Spi::get_one::<f64>(&format!(
        "SELECT recall_at_10 FROM quantization_stats('{idx}')"
    ))
    .unwrap()
    .is_none());

    // Measured recall vs an independent computation on the same sampled rows:
    // the planner's index scan for the approximate side, datagen::exact_knn for the truth.
    let stats = Spi::get_three::<f64, f64, f64>(&format!(
        "SELECT recall_at_10, map_at_10, qps FROM quantization_stats('{idx}', {n})"
    ))
    .unwrap();
    let (recall, map, qps) = (stats.0.unwrap(), stats.1.unwrap(), stats.2.unwrap());
    let pct = crate::sql_api::sample_percent(n as usize, rows as i64);
    let ids = Spi::get_one::<Vec<i32>>(&format!(
        "SELECT array_agg(id) FROM (SELECT id FROM sa_stats TABLESAMPLE BERNOULLI ({pct}) REPEATABLE ({}) WHERE (v) IS NOT NULL LIMIT {n}) s",
        crate::sql_api::SAMPLE_SEED
    ))
    .unwrap()
    .unwrap();
    assert_eq!(ids.len(), n as usize);
    let mut queries = Vec::new();
    for id in &ids {
        queries.extend_from_slice(&data[*id as usize * dims..(*id as usize + 1) * dims]);
    }
    let truth = exact_knn(&data, &queries, dims, 10, Metric::L2);
    let got = index_results("sa_stats", Metric::L2, &queries, dims, 10);
    let independent = recall_at(10, &truth, &got);
    assert!(
        (recall - independent).abs() <= 0.02,
        "quantization_stats recall {recall} vs independent {independent}"
    );
    assert!(recall >= 0.9, "{recall}");
    assert!(
        map > 0.0 && map <= recall + 1e-9,
        "map {map} recall {recall}"
    );
    assert!(qps > 0.0);
    let mean = sqlapi_stat(idx, n, "mean_latency_ms");
    let p99 = sqlapi_stat(idx, n, "p99_latency_ms");
    assert!(mean > 0.0 && p99 > 0.0, "{mean} {p99}");
}

/// quantization_stats on an index built on an empty table: sizes, no quantizer figures.
#[pg_test]
fn sqlapi_stats_empty_index() {
    Spi::run("CREATE TABLE sa_empty (id int, v qvector(8))").unwrap();
    Spi::run("CREATE INDEX sa_empty_idx ON sa_empty USING qhnsw (v qvector_l2_ops)").unwrap();
    assert_eq!(sqlapi_stat("sa_empty_idx", 10, "vectors"), 0.0);
    assert_eq!(sqlapi_stat("sa_empty_idx", 10, "dimensions"), 8.0);
    assert!(
        Spi::get_one::<f64>("SELECT recall_at_10 FROM quantization_stats('sa_empty_idx', 10)")
            .unwrap()
            .is_none()
    );
    assert_eq!(sqlapi_stat("sa_empty_idx", 0, "float4_bytes"), 0.0);
    let why = text_of("SELECT chosen_because FROM quantization_stats('sa_empty_idx')");
    assert!(
        why.starts_with("staging:") && why.contains("'sq8'"),
        "{why}"
    );
}

/// quantization_optimize picks the smallest candidate meeting 0.95; apply rebuilds with it and it still meets it.
#[pg_test]
fn sqlapi_optimize_picks_smallest_and_applies() {
    let (rows, dims) = (2000usize, 32usize);
    sqlapi_setup("sa_opt", rows, dims, Metric::Cosine, "quantizer = 'sq8'");
    Spi::run("SET LOCAL qhnsw.ef_search = 100").unwrap();
    let candidates: Vec<(String, String, f64, i32, bool)> = Spi::connect(|c| {
        c.select(
            "SELECT * FROM quantization_optimize('sa_opt_idx', 0.95)",
            None,
            &[],
        )
        .unwrap()
        .map(|r| {
            (
                r.get::<String>(1).unwrap().unwrap(),
                r.get::<String>(2).unwrap().unwrap(),
                r.get::<f64>(4).unwrap().unwrap(),
                r.get::<i32>(5).unwrap().unwrap(),
                r.get::<bool>(6).unwrap().unwrap(),
            )
        })
        .collect()
    });
    assert!(candidates.len() >= 10, "{candidates:?}");
    for m in ["none", "sq8", "sq4", "sq2", "pq", "binary"] {
        assert!(candidates.iter().any(|c| c.0 == m), "{m} missing");
    }
    let chosen: Vec<_> = candidates.iter().filter(|c| c.4).collect();
    assert_eq!(chosen.len(), 1, "{candidates:?}");
    let chosen = chosen[0].clone();
    assert!(chosen.2 >= 0.95);
    for c in &candidates {
        if c.2 >= 0.95 {
            assert!(c.3 >= chosen.3, "{c:?} is smaller than {chosen:?}");
        }
    }
    // Smaller than sq8 must have been found on this data (sq4 or PQ meet 0.95 with re-ranking).
    assert!(chosen.3 < 32, "{chosen:?}");

    // Apply: the index reports the chosen method and still meets the threshold.
    Spi::run("SELECT count(*) FROM quantization_optimize('sa_opt_idx', 0.95, apply => true)")
        .unwrap();
    assert_eq!(
        text_of("SELECT method FROM quantization_stats('sa_opt_idx')"),
        chosen.0
    );
    assert_eq!(
        Spi::get_one::<String>("SELECT parameters FROM quantization_stats('sa_opt_idx')")
            .unwrap()
            .unwrap_or_default(),
        chosen.1
    );
    assert_eq!(sqlapi_stat("sa_opt_idx", 0, "code_bytes"), chosen.3 as f64);
    let options = text_of(
        "SELECT array_to_string(reloptions, ',') FROM pg_class WHERE relname = 'sa_opt_idx'",
    );
    assert!(
        options.contains(&format!("quantizer={}", chosen.0)),
        "{options}"
    );
    let recall = sqlapi_stat("sa_opt_idx", 100, "recall_at_10");
    assert!(recall >= 0.95, "{} after apply: recall {recall}", chosen.0);
    assert!(
        text_of("SELECT chosen_because FROM quantization_stats('sa_opt_idx')")
            .contains("set explicitly")
    );

    // An impossible threshold: no candidate chosen, apply leaves the index as it is.
    let n_chosen = f64_of("SELECT count(*) FILTER (WHERE chosen)::float8 FROM quantization_optimize('sa_opt_idx', 1.0, true)");
    assert!(n_chosen <= 1.0);
    assert_eq!(
        error_of("SELECT * FROM quantization_optimize('sa_opt_idx', 1.5)"),
        "22023: quality_threshold must be between 0 and 1, not 1.5"
    );
}

/// qhnsw_quantize after a data shift (constant offset on every vector) restores recall.
#[pg_test]
fn sqlapi_quantize_restores_recall_after_shift() {
    let (rows, dims) = (2000usize, 32usize);
    sqlapi_setup("sa_drift", rows, dims, Metric::L2, "quantizer = 'sq4'");
    Spi::run("SET LOCAL qhnsw.ef_search = 100").unwrap();
    let before = sqlapi_stat("sa_drift_idx", 50, "recall_at_10");
    assert!(before >= 0.9, "{before}");
    let offset = format_vector(&vec![3.0f32; dims]);
    Spi::run(&format!("UPDATE sa_drift SET v = v + '{offset}'")).unwrap();
    let drifted = sqlapi_stat("sa_drift_idx", 50, "recall_at_10");
    let (method, vectors, errors) = Spi::get_three::<String, i64, Vec<f64>>(
        "SELECT method, vectors, ARRAY[reconstruction_error_before, reconstruction_error_after] FROM qhnsw_quantize('sa_drift_idx')",
    )
    .unwrap();
    assert_eq!(method.unwrap(), "sq4");
    assert_eq!(vectors.unwrap(), rows as i64);
    let errors = errors.unwrap();
    let (err_before, err_after) = (errors[0], errors[1]);
    assert!(err_after < err_before, "{err_before} -> {err_after}");
    let restored = sqlapi_stat("sa_drift_idx", 50, "recall_at_10");
    assert!(
        drifted < 0.8,
        "shifted data should break the old quantizer: {drifted}"
    );
    assert!(
        restored >= 0.9,
        "recall after qhnsw_quantize {restored} (drifted {drifted})"
    );
    assert_eq!(sqlapi_stat("sa_drift_idx", 0, "vectors"), rows as f64);
}

/// Permissions: no SELECT on the table -> 42501; apply / qhnsw_quantize need ownership.
#[pg_test]
fn sqlapi_permissions() {
    sqlapi_setup("sa_perm", 300, 8, Metric::L2, "quantizer = 'sq8'");
    error_of("SELECT 1"); // creates the helper while still superuser
    Spi::run("CREATE ROLE sa_reader").unwrap();
    Spi::run("GRANT EXECUTE ON FUNCTION vq_test_error_of(text) TO sa_reader").unwrap();
    Spi::run("SET LOCAL ROLE sa_reader").unwrap();
    let denied = "42501: permission denied for table public.sa_perm";
    assert_eq!(
        sqlapi_error_as_role("SELECT * FROM quantization_stats('sa_perm_idx')"),
        denied
    );
    assert_eq!(
        sqlapi_error_as_role("SELECT * FROM quantization_optimize('sa_perm_idx')"),
        denied
    );
    assert_eq!(
        sqlapi_error_as_role("SELECT * FROM qhnsw_quantize('sa_perm_idx')"),
        denied
    );
    assert_eq!(
        sqlapi_error_as_role("SELECT * FROM qhnsw_index_meta('sa_perm_idx')"),
        denied
    );
    assert_eq!(
        f64_of("SELECT count(*)::float8 FROM qhnsw_indexes WHERE indexname = 'sa_perm_idx'"),
        0.0
    );
    assert!(sqlapi_error_as_role("SELECT qhnsw_stat_reset()")
        .starts_with("42501: permission denied for function"));
    Spi::run("RESET ROLE").unwrap();
    Spi::run("GRANT SELECT ON sa_perm TO sa_reader").unwrap();
    Spi::run("SET LOCAL ROLE sa_reader").unwrap();
    assert_eq!(
        sqlapi_error_as_role("SELECT * FROM quantization_stats('sa_perm_idx', 5)"),
        "no error"
    );
    assert_eq!(
        sqlapi_error_as_role("SELECT * FROM quantization_optimize('sa_perm_idx', 0.9)"),
        "no error"
    );
    let not_owner = "42501: must be owner of index public.sa_perm_idx";
    assert_eq!(
        sqlapi_error_as_role(
            "SELECT * FROM quantization_optimize('sa_perm_idx', 0.9, apply => true)"
        ),
        not_owner
    );
    assert_eq!(
        sqlapi_error_as_role("SELECT * FROM qhnsw_quantize('sa_perm_idx')"),
        not_owner
    );
    assert_eq!(
        f64_of("SELECT count(*)::float8 FROM qhnsw_indexes WHERE indexname = 'sa_perm_idx'"),
        1.0
    );
    Spi::run("RESET ROLE").unwrap();
}

/// Non-qhnsw relations and bad arguments get clear errors.
#[pg_test]
fn sqlapi_wrong_relations_and_arguments() {
    sqlapi_setup("sa_wrong", 100, 8, Metric::L2, "quantizer = 'sq8'");
    Spi::run("CREATE INDEX sa_wrong_btree ON sa_wrong (id)").unwrap();
    assert_eq!(
        error_of("SELECT * FROM quantization_stats('sa_wrong_btree')"),
        "42809: index \"public.sa_wrong_btree\" is not a qhnsw index (it uses btree)"
    );
    assert_eq!(
        error_of("SELECT * FROM quantization_optimize('sa_wrong')"),
        "42809: \"public.sa_wrong\" is not an index"
    );
    assert_eq!(
        error_of("SELECT * FROM qhnsw_quantize('sa_wrong_btree')"),
        "42809: index \"public.sa_wrong_btree\" is not a qhnsw index (it uses btree)"
    );
    assert_eq!(
        error_of("SELECT * FROM quantization_stats('sa_wrong_idx', -1)"),
        "22023: sample_queries must be between 0 and 10000, not -1"
    );
    assert_eq!(
        error_of("SELECT * FROM quantization_stats('no_such_index')"),
        "42P01: relation \"no_such_index\" does not exist"
    );
}

/// Live counters count index scans, the views list the index, reset zeroes them.
#[pg_test]
fn sqlapi_counters_and_views() {
    sqlapi_setup(
        "sa_cnt",
        500,
        16,
        Metric::L2,
        "quantizer = 'sq8', m = 8, ef_construction = 32",
    );
    let oid = f64_of("SELECT 'sa_cnt_idx'::regclass::oid::text::float8");
    Spi::run("SELECT qhnsw_stat_reset('sa_cnt_idx')").unwrap();
    Spi::run("SET LOCAL enable_seqscan = off").unwrap();
    let q = format_vector(&[0.1f32; 16]);
    for _ in 0..3 {
        Spi::run(&format!(
            "SELECT id FROM sa_cnt ORDER BY v <-> '{q}' LIMIT 5"
        ))
        .unwrap();
    }
    let view = |col: &str| {
        f64_of(&format!(
            "SELECT ({col})::text::float8 FROM qhnsw_stat_indexes WHERE indexname = 'sa_cnt_idx'"
        ))
    };
    assert_eq!(view("scans"), 3.0);
    assert_eq!(view("rows_returned"), 15.0);
    assert!(view("distance_computations") > 0.0);
    assert!(view("reranked_candidates") > 0.0);
    assert!(view("total_scan_time_ms") > 0.0);
    assert_eq!(view("indexrelid"), oid);
    let preloaded =
        text_of("SELECT current_setting('shared_preload_libraries')").contains("vectorize_quant");
    assert_eq!(
        Spi::get_one::<bool>(
            "SELECT shared FROM qhnsw_stat_indexes WHERE indexname = 'sa_cnt_idx'"
        )
        .unwrap()
        .unwrap(),
        preloaded
    );
    assert_eq!(
        f64_of(&format!(
            "SELECT scans::float8 FROM qhnsw_stat_counters() WHERE indexrelid = {oid}"
        )),
        3.0
    );
    Spi::run("SELECT qhnsw_stat_reset('sa_cnt_idx')").unwrap();
    assert_eq!(view("scans"), 0.0);
    assert_eq!(view("rows_returned"), 0.0);
    Spi::run(&format!(
        "SELECT id FROM sa_cnt ORDER BY v <-> '{q}' LIMIT 2"
    ))
    .unwrap();
    assert_eq!(view("scans"), 1.0);
    Spi::run("SELECT qhnsw_stat_reset()").unwrap();
    assert_eq!(view("scans"), 0.0);
    assert!(
        Spi::get_one::<pgrx::datum::TimestampWithTimeZone>("SELECT qhnsw_stat_reset_time()")
            .unwrap()
            .is_some()
    );

    // qhnsw_indexes: one row with the meta page's figures and the catalog's size and options.
    let (method, vectors, bytes) = Spi::get_three::<String, i64, i64>(
        "SELECT method, vectors, index_bytes FROM qhnsw_indexes WHERE indexname = 'sa_cnt_idx'",
    )
    .unwrap();
    assert_eq!(method.unwrap(), "sq8");
    assert_eq!(vectors.unwrap(), 500);
    assert_eq!(
        bytes.unwrap() as f64,
        f64_of("SELECT pg_relation_size('sa_cnt_idx')::float8")
    );
    assert_eq!(
        text_of("SELECT schemaname || '.' || tablename || '.' || columnname FROM qhnsw_indexes WHERE indexname = 'sa_cnt_idx'"),
        "public.sa_cnt.v"
    );
    assert_eq!(
        text_of("SELECT array_to_string(options, ',') FROM qhnsw_indexes WHERE indexname = 'sa_cnt_idx'"),
        "quantizer=sq8,m=8,ef_construction=32"
    );
    let ratio =
        f64_of("SELECT compression_ratio FROM qhnsw_indexes WHERE indexname = 'sa_cnt_idx'");
    assert!((ratio - (500.0 * 16.0 * 4.0) / bytes.unwrap() as f64).abs() < 1e-9);
}
