// Index scans return the right rows: expression and partial indexes with every quantizer
// and re-rank source, NULL queries, iterative scan modes, max_scan_tuples and
// scan_mem_multiplier, and the reserved qhnsw.* settings prefix (issue 12).

/// Every `quantizer` option value.
const SCAN_QUANTIZERS: [&str; 7] = ["none", "sq8", "sq4", "sq2", "pq", "binary", "auto"];
/// Every `rerank` option value.
const SCAN_RERANKS: [&str; 3] = ["heap", "float16", "none"];

/// The ids a query returns, in its order, comma-separated.
fn scan_ids(sql: &str) -> String {
    text_of(&format!(
        "SELECT coalesce(string_agg(id::text, ','), '') FROM ({sql}) s"
    ))
}

/// The ids of `sql` through a sequential scan (the exact answer).
fn exact_scan_ids(sql: &str) -> String {
    Spi::run("SET LOCAL enable_seqscan = on").unwrap();
    Spi::run("SET LOCAL enable_indexscan = off").unwrap();
    let ids = scan_ids(sql);
    Spi::run("SET LOCAL enable_indexscan = on").unwrap();
    Spi::run("SET LOCAL enable_seqscan = off").unwrap();
    ids
}

/// The `d` column of `sql`, in its order.
fn scan_distances(sql: &str) -> Vec<f64> {
    Spi::get_one::<Vec<f64>>(&format!("SELECT array_agg(d) FROM ({sql}) s"))
        .unwrap()
        .unwrap_or_default()
}

/// The `d` column of `sql` through a sequential scan.
fn exact_distances(sql: &str) -> Vec<f64> {
    Spi::run("SET LOCAL enable_seqscan = on").unwrap();
    Spi::run("SET LOCAL enable_indexscan = off").unwrap();
    let d = scan_distances(sql);
    Spi::run("SET LOCAL enable_indexscan = on").unwrap();
    Spi::run("SET LOCAL enable_seqscan = off").unwrap();
    d
}

/// How many ids two comma lists share.
fn shared_ids(a: &str, b: &str) -> usize {
    let b: std::collections::HashSet<&str> = b.split(',').collect();
    a.split(',').filter(|id| b.contains(id)).count()
}

/// Creates `index` with every quantizer and re-rank source (the `{with}` placeholder of
/// `create`) and checks each query (columns `id` and its distance `d`) through it: the
/// plan uses the index, and the ids equal the exact answer with `rerank = 'heap'`; with
/// `float16` the i-th row's exact distance equals the exact i-th distance to float16
/// precision (near-ties may swap); with `none` the order is the quantized one, so: k
/// distinct rows, exact for quantizer `none`, and at least `min_shared` of the exact ids
/// (1 for binary codes).
fn assert_every_config(create: &str, index: &str, queries: &[String], k: usize, min_shared: usize) {
    // A beam and a re-rank covering the whole (small) table: only the re-rank source decides.
    Spi::run("SET LOCAL qhnsw.ef_search = 1000").unwrap();
    Spi::run("SET LOCAL qhnsw.rerank_candidates = 10000").unwrap();
    let exact: Vec<String> = queries.iter().map(|q| exact_scan_ids(q)).collect();
    for want in &exact {
        assert_eq!(want.split(',').count(), k, "exact answer {want}");
    }
    for quantizer in SCAN_QUANTIZERS {
        for rerank in SCAN_RERANKS {
            let with = format!("quantizer = '{quantizer}', rerank = '{rerank}'");
            Spi::run(&create.replace("{with}", &with)).unwrap();
            for (sql, want) in queries.iter().zip(&exact) {
                let plan = plan_of(sql);
                assert!(plan.contains(&format!("Index Scan using {index}")), "{with}: {plan}");
                let got = scan_ids(sql);
                if rerank == "heap" || (rerank == "none" && quantizer == "none") {
                    assert_eq!(&got, want, "{with}: {sql}");
                } else if rerank == "float16" {
                    let (d_got, d_want) = (scan_distances(sql), exact_distances(sql));
                    assert_eq!(d_got.len(), k, "{with}: {got}");
                    for (a, b) in d_got.iter().zip(&d_want) {
                        assert!((a - b).abs() <= 2e-3 * b.abs().max(1.0), "{with}: {d_got:?} vs exact {d_want:?}");
                    }
                } else {
                    let ids: std::collections::HashSet<&str> = got.split(',').collect();
                    assert_eq!(ids.len(), k, "{with}: {got}");
                    let shared = shared_ids(&got, want);
                    let need = if quantizer == "binary" { 1 } else { min_shared };
                    assert!(shared >= need, "{with}: {got} vs exact {want} share {shared}");
                }
            }
            Spi::run(&format!("DROP INDEX {index}")).unwrap();
        }
    }
}

/// Three seeded query vectors of `dims` as SQL literals.
fn scan_queries(dims: usize, seed: u64) -> Vec<String> {
    queries_like(3, dims, seed)
        .chunks_exact(dims)
        .map(|q| format!("'{}'", format_vector(q)))
        .collect()
}

/// Item 1: an expression index (`l2_normalize(v)`) re-ranks the expression's value.
#[pg_test]
fn issue12_expression_index_reranks_the_expression_every_config() {
    let dims = 32;
    load_table("vq_expr", dims, &embeddings_like(600, dims, 41));
    Spi::run("SET LOCAL enable_seqscan = off").unwrap();
    let queries: Vec<String> = scan_queries(dims, 42)
        .iter()
        .map(|q| format!("SELECT id, l2_normalize(v) <#> {q} AS d FROM vq_expr ORDER BY l2_normalize(v) <#> {q} LIMIT 10"))
        .collect();
    assert_every_config(
        "CREATE INDEX vq_expr_idx ON vq_expr USING qhnsw ((l2_normalize(v)) qvector_ip_ops) WITH ({with})",
        "vq_expr_idx",
        &queries,
        10,
        3,
    );
}

/// Item 1: a partial index returns the exact rows of its predicate with every config.
#[pg_test]
fn issue12_partial_index_every_config() {
    let dims = 32;
    load_table("vq_part", dims, &embeddings_like(600, dims, 43));
    Spi::run("SET LOCAL enable_seqscan = off").unwrap();
    let queries: Vec<String> = scan_queries(dims, 44)
        .iter()
        .map(|q| format!("SELECT id, v <-> {q} AS d FROM vq_part WHERE id % 3 <> 0 ORDER BY v <-> {q} LIMIT 10"))
        .collect();
    assert_every_config(
        "CREATE INDEX vq_part_idx ON vq_part USING qhnsw (v qvector_l2_ops) WITH ({with}) WHERE id % 3 <> 0",
        "vq_part_idx",
        &queries,
        10,
        3,
    );
    // a partial expression index
    let queries: Vec<String> = scan_queries(dims, 45)
        .iter()
        .map(|q| {
            format!("SELECT id, l2_normalize(v) <=> {q} AS d FROM vq_part WHERE id > 200 ORDER BY l2_normalize(v) <=> {q} LIMIT 10")
        })
        .collect();
    assert_every_config(
        "CREATE INDEX vq_part_expr ON vq_part USING qhnsw ((l2_normalize(v)) qvector_cosine_ops) WITH ({with}) WHERE id > 200",
        "vq_part_expr",
        &queries,
        10,
        3,
    );
}

/// Item 1: the issue's cases (a cast of another column, the 3-d example), an sq8vector
/// expression and a staging index (created empty, filled by inserts) all re-rank the
/// expression's value.
#[pg_test]
fn issue12_expression_index_casts_sq8vector_and_staging() {
    let dims = 32;
    load_table("vq_cast", dims, &embeddings_like(400, dims, 47));
    Spi::run("ALTER TABLE vq_cast ADD COLUMN r real[]").unwrap();
    Spi::run("UPDATE vq_cast SET r = (SELECT array_agg(x * 2) FROM unnest(v::real[]) x)").unwrap();
    Spi::run("SET LOCAL enable_seqscan = off").unwrap();
    Spi::run("SET LOCAL qhnsw.ef_search = 1000").unwrap();
    Spi::run("SET LOCAL qhnsw.rerank_candidates = 10000").unwrap();
    let q = &scan_queries(dims, 48)[0];
    let check = |create: &str, index: &str, sql: &str| {
        let want = exact_scan_ids(sql);
        Spi::run(create).unwrap();
        let plan = plan_of(sql);
        assert!(plan.contains(&format!("Index Scan using {index}")), "{plan}");
        assert_eq!(scan_ids(sql), want, "{create}");
        assert_eq!(want.split(',').count(), 10);
        Spi::run(&format!("DROP INDEX {index}")).unwrap();
    };
    let cast = format!("SELECT id FROM vq_cast ORDER BY (r::qvector({dims})) <-> {q} LIMIT 10");
    check(
        &format!("CREATE INDEX vq_cast_idx ON vq_cast USING qhnsw ((r::qvector({dims})) qvector_l2_ops)"),
        "vq_cast_idx",
        &cast,
    );
    let sq8 = format!("SELECT id FROM vq_cast ORDER BY (v::sq8vector({dims})) <=> {q} LIMIT 10");
    check(
        &format!("CREATE INDEX vq_cast_sq8 ON vq_cast USING qhnsw ((v::sq8vector({dims})) sq8vector_cosine_ops)"),
        "vq_cast_sq8",
        &sq8,
    );
    // The issue's example, exactly.
    Spi::run("CREATE TABLE vq_ex (id int, v qvector(3))").unwrap();
    Spi::run("SELECT setseed(0.5)").unwrap();
    Spi::run("INSERT INTO vq_ex SELECT i, ARRAY[random(),random(),random()] FROM generate_series(1,1000) i").unwrap();
    check(
        "CREATE INDEX vq_ex_idx ON vq_ex USING qhnsw ((l2_normalize(v)) qvector_ip_ops)",
        "vq_ex_idx",
        "SELECT id FROM vq_ex ORDER BY l2_normalize(v) <#> '[1,0,0]' LIMIT 10",
    );
    // Staging: the index is created on an empty table and every row arrives by INSERT.
    Spi::run(&format!("CREATE TABLE vq_stage (id int, v qvector({dims}))")).unwrap();
    Spi::run("CREATE INDEX vq_stage_idx ON vq_stage USING qhnsw ((l2_normalize(v)) qvector_ip_ops)")
        .unwrap();
    Spi::run("INSERT INTO vq_stage SELECT id, v FROM vq_cast").unwrap();
    let staged = format!("SELECT id FROM vq_stage ORDER BY l2_normalize(v) <#> {q} LIMIT 10");
    let want = exact_scan_ids(&staged);
    assert!(plan_of(&staged).contains("Index Scan using vq_stage_idx"));
    assert_eq!(scan_ids(&staged), want);
    let why = text_of("SELECT chosen_because FROM quantization_stats('vq_stage_idx')");
    assert!(why.starts_with("staging"), "{why}");
}

/// Item 2: a NULL query returns the indexed rows (in unspecified order), never a NULL row.
#[pg_test]
fn issue12_null_query_returns_rows() {
    let dims = 8;
    load_table("vq_nullq", dims, &embeddings_like(300, dims, 51));
    // 10 NULL rows (inserted, not updated: a HOT update before CREATE INDEX in the same
    // transaction would hide the index from the planner, indcheckxmin)
    Spi::run("INSERT INTO vq_nullq SELECT 1000 + i, NULL FROM generate_series(1, 10) i").unwrap();
    Spi::run("CREATE INDEX vq_nullq_idx ON vq_nullq USING qhnsw (v qvector_l2_ops)").unwrap();
    Spi::run("CREATE INDEX vq_nullq_cos ON vq_nullq USING qhnsw (v qvector_cosine_ops)").unwrap();
    Spi::run("SET LOCAL enable_seqscan = off").unwrap();
    for op in ["<->", "<=>"] {
        let q = |limit: usize| {
            format!("SELECT id, v FROM vq_nullq ORDER BY v {op} (SELECT NULL::qvector) LIMIT {limit}")
        };
        let index = if op == "<->" { "vq_nullq_idx" } else { "vq_nullq_cos" };
        assert!(plan_of(&q(5)).contains(&format!("Index Scan using {index}")), "{}", plan_of(&q(5)));
        let count = |sql: String| Spi::get_one::<i64>(&format!("SELECT count(*) FROM ({sql}) s")).unwrap();
        assert_eq!(count(q(5)), Some(5), "{op}");
        // iterative scan (the default) reaches every indexed row, each once
        assert_eq!(count(q(1000)), Some(300), "{op}");
        assert_eq!(
            Spi::get_one::<i64>(&format!("SELECT count(DISTINCT id) FROM ({}) s", q(1000))).unwrap(),
            Some(300)
        );
        assert_eq!(
            Spi::get_one::<i64>(&format!("SELECT count(*) FROM ({}) s WHERE v IS NULL", q(1000))).unwrap(),
            Some(0)
        );
        // without it, one beam: qhnsw.ef_search rows
        Spi::run("SET LOCAL qhnsw.iterative_scan = off").unwrap();
        assert_eq!(count(q(1000)), Some(40), "{op}");
        Spi::run("RESET qhnsw.iterative_scan").unwrap();
    }
}

/// Item 9: the iterative_scan values; strict_order returns the exact filtered answer in
/// non-decreasing distance order across several batches.
#[pg_test]
fn issue12_iterative_scan_modes_and_strict_order() {
    assert_eq!(text_of("SHOW qhnsw.iterative_scan"), "relaxed_order");
    Spi::run("SET LOCAL qhnsw.iterative_scan = on").unwrap();
    assert_eq!(text_of("SHOW qhnsw.iterative_scan"), "relaxed_order");
    Spi::run("SET LOCAL qhnsw.iterative_scan = strict_order").unwrap();
    assert_eq!(text_of("SHOW qhnsw.iterative_scan"), "strict_order");
    Spi::run("SET LOCAL qhnsw.iterative_scan = off").unwrap();
    assert_eq!(text_of("SHOW qhnsw.iterative_scan"), "off");
    assert!(
        error_of("SET qhnsw.iterative_scan = sideways").starts_with("22023: invalid value for parameter"),
        "{}",
        error_of("SET qhnsw.iterative_scan = sideways")
    );
    let dims = 16;
    load_table("vq_strict", dims, &embeddings_like(3000, dims, 53));
    Spi::run("CREATE INDEX ON vq_strict USING qhnsw (v qvector_l2_ops)").unwrap();
    Spi::run("SET LOCAL enable_seqscan = off").unwrap();
    // default beam (40) and 1 row in 25 kept: 20 rows take about 12 batches. (With a
    // beam of 10 both qhnsw and pgvector miss the nearest row of such a query: the
    // graph search reaches it only after farther rows went out.)
    for q in scan_queries(dims, 54) {
        let sql = format!("SELECT id, v <-> {q} AS d FROM vq_strict WHERE id % 25 = 0 ORDER BY v <-> {q} LIMIT 20");
        let want = exact_scan_ids(&sql);
        Spi::run("SET LOCAL qhnsw.iterative_scan = off").unwrap();
        let one_beam = scan_ids(&sql);
        assert!(one_beam.split(',').count() < 20, "one beam gave {one_beam}");
        Spi::run("SET LOCAL qhnsw.iterative_scan = strict_order").unwrap();
        assert!(plan_of(&sql).contains("Index Scan"));
        assert_eq!(scan_ids(&sql), want, "{q}");
        let distances = Spi::get_one::<Vec<f64>>(&format!("SELECT array_agg(d) FROM ({sql}) s"))
            .unwrap()
            .unwrap();
        assert_eq!(distances.len(), 20);
        assert!(distances.windows(2).all(|w| w[0] <= w[1]), "{distances:?}");
        Spi::run("SET LOCAL qhnsw.iterative_scan = relaxed_order").unwrap();
        assert_eq!(scan_ids(&sql).split(',').count(), 20);
    }
}

/// Item 10: max_scan_tuples bounds the visited nodes, after which the nodes already
/// seen are still returned (pgvector's definition); scan_mem_multiplier bounds memory.
#[pg_test]
fn issue12_max_scan_tuples_and_scan_mem_multiplier() {
    let dims = 32;
    load_table("vq_maxscan", dims, &embeddings_like(5000, dims, 55));
    Spi::run("CREATE INDEX ON vq_maxscan USING qhnsw (v qvector_l2_ops)").unwrap();
    Spi::run("SET LOCAL enable_seqscan = off").unwrap();
    let q = &scan_queries(dims, 56)[0];
    let count = |filter: &str| {
        Spi::get_one::<i64>(&format!(
            "SELECT count(*) FROM (SELECT id FROM vq_maxscan {filter} ORDER BY v <-> {q} LIMIT 100000) s"
        ))
        .unwrap()
        .unwrap()
    };
    // Unbounded: every row, and every row of a 10% filter.
    assert_eq!(count(""), 5000);
    assert_eq!(count("WHERE id % 10 = 0"), 500);
    let with_max = |max: i32, filter: &str| {
        Spi::run(&format!("SET LOCAL qhnsw.max_scan_tuples = {max}")).unwrap();
        count(filter)
    };
    // 1: only the nodes the first beam evaluated (it is not limited); every node seen
    // is returned, so at least max_scan_tuples rows come back, and far from all 5000.
    let (first, all, more) = (with_max(1, ""), with_max(500, ""), with_max(2000, ""));
    let filtered = with_max(500, "WHERE id % 10 = 0");
    pgrx::log!("max_scan_tuples 1 / 500 / 2000: {first} / {all} / {more} rows; 500 with a 10% filter: {filtered}");
    assert!(first >= 40 && first <= all && all <= more, "{first} {all} {more}");
    assert!((500..=2000).contains(&all), "{all}");
    assert!((2000..5000).contains(&more), "{more}");
    // about a tenth of the rows seen pass the filter
    assert!((30..=200).contains(&filtered), "{filtered}");
    Spi::run("RESET qhnsw.max_scan_tuples").unwrap();
    // A 64 kB budget stops the search well before the table is exhausted.
    Spi::run("SET LOCAL work_mem = '64kB'").unwrap();
    let bounded = count("");
    pgrx::log!("work_mem = 64kB: {bounded} rows");
    assert!((40..5000).contains(&bounded), "{bounded}");
    Spi::run("SET LOCAL qhnsw.scan_mem_multiplier = 1000").unwrap();
    assert_eq!(count(""), 5000);
    assert!(error_of("SET qhnsw.scan_mem_multiplier = 0.5").starts_with("22023:"));
}

/// Item 11: the qhnsw prefix is reserved: a misspelt setting is an ERROR.
#[pg_test]
fn issue12_qhnsw_settings_prefix_is_reserved() {
    let err = error_of("SET qhnsw.ef_serch = 10");
    assert_eq!(
        err,
        "42602: invalid configuration parameter name \"qhnsw.ef_serch\""
    );
    Spi::run("SET LOCAL qhnsw.ef_search = 10").unwrap();
    assert_eq!(text_of("SHOW qhnsw.ef_search"), "10");
    assert!(error_of("SET qhnsw.ef_search = 0").starts_with("22023:"));
}

/// Issue 14 (re-rank floor): with auto re-ranking a lower ef_search narrows the beam and
/// the re-rank (one beam returns ef_search rows, not the quantizer's re-rank count), while
/// an explicit qhnsw.rerank_candidates still widens the beam to itself.
#[pg_test]
fn issue14_lower_ef_search_narrows_beam_and_rerank() {
    let dims = 16;
    load_table("vq_floor", dims, &embeddings_like(2000, dims, 57));
    Spi::run("SET LOCAL enable_seqscan = off").unwrap();
    Spi::run("SET LOCAL qhnsw.iterative_scan = off").unwrap();
    let q = &scan_queries(dims, 58)[0];
    let sql = format!("SELECT id FROM vq_floor ORDER BY v <-> {q} LIMIT 1000");
    let rows = || Spi::get_one::<i64>(&format!("SELECT count(*) FROM ({sql}) s")).unwrap();
    // (quantizer, auto re-rank count at ef_search 40, beam at ef_search 10)
    for (quantizer, at_default, at_ten) in [("sq8", 40, 10), ("sq4", 60, 15), ("pq", 100, 25)] {
        Spi::run(&format!(
            "CREATE INDEX vq_floor_idx ON vq_floor USING qhnsw (v qvector_l2_ops) WITH (quantizer = '{quantizer}')"
        ))
        .unwrap();
        Spi::run("RESET qhnsw.ef_search").unwrap();
        assert_eq!(rows(), Some(at_default), "{quantizer} at the default ef_search");
        Spi::run("SET LOCAL qhnsw.ef_search = 10").unwrap();
        assert_eq!(rows(), Some(at_ten), "{quantizer} at ef_search 10");
        // every row of the narrow beam is still re-ranked: exact distances, in order
        let d = scan_distances(&format!("SELECT v <-> {q} AS d FROM vq_floor ORDER BY v <-> {q} LIMIT 1000"));
        assert_eq!(d.len(), at_ten as usize, "{quantizer}");
        assert!(d.windows(2).all(|w| w[0] <= w[1]), "{quantizer}: {d:?}");
        Spi::run("SET LOCAL qhnsw.rerank_candidates = 30").unwrap();
        assert_eq!(rows(), Some(30), "{quantizer}: an explicit re-rank count keeps its beam");
        Spi::run("RESET qhnsw.rerank_candidates").unwrap();
        Spi::run("DROP INDEX vq_floor_idx").unwrap();
    }
}

/// Issue 14: float4 codes (quantizer `none`) are the values, so under L2 a scan returns
/// the exact answer without re-ranking from the heap (the counter stays 0; sq8, and
/// normalised float4 codes under cosine, still re-rank), with exact answers for both.
/// Scans pin buffers through backend-local hints (`ReadRecentBuffer`): the answers stay
/// exact when the index gets a new relation file (REINDEX, DROP and CREATE) and for a
/// temporary table's index (local buffers, read without hints).
#[pg_test]
fn issue14_float4_codes_skip_rerank_and_buffer_hints_follow_files() {
    let dims = 16;
    load_table("vq_exact", dims, &embeddings_like(2000, dims, 61));
    Spi::run("SET LOCAL enable_seqscan = off").unwrap();
    Spi::run("SET LOCAL qhnsw.ef_search = 1000").unwrap();
    let queries = scan_queries(dims, 62);
    let counter = |col: &str| {
        f64_of(&format!(
            "SELECT ({col})::text::float8 FROM qhnsw_stat_indexes WHERE indexname = 'vq_exact_idx'"
        ))
    };
    let check = |table: &str, op: &str, what: &str| {
        for q in &queries {
            let sql = format!("SELECT id FROM {table} ORDER BY v {op} {q} LIMIT 10");
            let plan = plan_of(&sql);
            assert!(plan.contains("Index Scan using"), "{what}: {plan}");
            assert_eq!(scan_ids(&sql), exact_scan_ids(&sql), "{what}: {sql}");
        }
    };
    for (opclass, op) in [("qvector_l2_ops", "<->"), ("qvector_cosine_ops", "<=>")] {
        for quantizer in ["none", "sq8"] {
            Spi::run(&format!(
                "CREATE INDEX vq_exact_idx ON vq_exact USING qhnsw (v {opclass}) WITH (quantizer = '{quantizer}')"
            ))
            .unwrap();
            Spi::run("SELECT qhnsw_stat_reset('vq_exact_idx')").unwrap();
            check("vq_exact", op, &format!("{quantizer} {opclass}"));
            assert!(counter("distance_computations") > 0.0);
            let reranked = counter("reranked_candidates");
            if quantizer == "none" && op == "<->" {
                assert_eq!(reranked, 0.0, "float4 codes under L2 are not re-ranked");
            } else {
                // sq8 codes, and normalised float4 codes under cosine, are re-ranked
                assert!(reranked >= 30.0, "{quantizer} {opclass} re-ranks: {reranked}");
            }
            Spi::run("REINDEX INDEX vq_exact_idx").unwrap();
            check("vq_exact", op, &format!("{quantizer} {opclass} after REINDEX"));
            Spi::run("DROP INDEX vq_exact_idx").unwrap();
        }
    }
    Spi::run("CREATE TEMP TABLE vq_exact_tmp AS SELECT * FROM vq_exact").unwrap();
    Spi::run("CREATE INDEX ON vq_exact_tmp USING qhnsw (v qvector_l2_ops) WITH (quantizer = 'sq8')").unwrap();
    check("vq_exact_tmp", "<->", "temporary table (local buffers)");
    Spi::run("TRUNCATE vq_exact_tmp").unwrap();
    Spi::run("INSERT INTO vq_exact_tmp SELECT * FROM vq_exact").unwrap();
    check("vq_exact_tmp", "<->", "temporary table after TRUNCATE");
}
