// sq8vector tests: round-trip error, exact operator values on codes, casts, bad input,
// binary COPY, comparison, and qhnsw indexes over sq8vector columns.

#[pg_test]
fn sq8vector_text_form_and_typmod() {
    // [0, 255] has step 1, so every integer in range is stored exactly.
    assert_eq!(text_of("SELECT '[0,255,3]'::sq8vector::text"), "[0,255,3]");
    assert_eq!(text_of("SELECT ' [ -255 , 255 ] '::sq8vector(2)::text"), "[-255,255]");
    assert_eq!(text_of("SELECT '[7,7,7]'::sq8vector::text"), "[7,7,7]");
    // Over [1, 3] the step is 2/255 (as float4, a hair above it), so 2 is stored as the
    // nearest grid value 1 + 127 * step; the smallest element is exact, the largest here too.
    assert_eq!(text_of("SELECT '[1,2,3]'::sq8vector::text"), "[1,1.9960785,3]");
    // Output re-parses to the same codes.
    assert_eq!(
        text_of("SELECT ('[1,2,3]'::sq8vector::text)::sq8vector::text"),
        "[1,1.9960785,3]"
    );
    Spi::run("CREATE TABLE sq_typmod (v sq8vector(3))").unwrap();
    assert_eq!(
        text_of("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'sq_typmod'::regclass AND attname = 'v'"),
        "sq8vector(3)"
    );
    // 16 header bytes + 1 per dimension, against qvector's 8 + 4 per dimension.
    assert_eq!(
        Spi::get_one::<i32>("SELECT pg_column_size(array_fill(0.5::real, ARRAY[768])::sq8vector)").unwrap(),
        Some(16 + 768)
    );
    assert_eq!(
        Spi::get_one::<i32>("SELECT pg_column_size(array_fill(0.5::real, ARRAY[768])::qvector)").unwrap(),
        Some(8 + 4 * 768)
    );
}

/// Every element of 300 seeded random vectors (768 dims, varied ranges) decodes to within
/// half a quantization step, `(max - min) / 255 / 2`, of its float4 value.
#[pg_test]
fn sq8vector_round_trip_within_half_a_step() {
    Spi::run("SELECT setseed(0.17)").unwrap();
    Spi::run(
        "CREATE TABLE sq_rt AS SELECT i, (SELECT array_agg(((random() * 2 - 1 + (i % 3) * 0.5 + 0 * g) * (i % 7 + 1) * 10 ^ (i % 5 - 2))::real)
              FROM generate_series(1, 768) g) AS a
         FROM generate_series(1, 300) i",
    )
    .unwrap();
    // Worst error as a fraction of the step, through text-free casts both ways.
    let worst = |decoded: &str| {
        f64_of(&format!(
            "WITH d AS (SELECT i, x::float8 AS x, y::float8 AS y
                        FROM sq_rt, unnest(a, ({decoded})::real[]) AS u(x, y)),
                  s AS (SELECT i, (max(x) - min(x)) / 255 AS step FROM d GROUP BY i)
             SELECT max(abs(x - y) / step) FROM d JOIN s USING (i)"
        ))
    };
    let via_array = worst("a::sq8vector");
    let via_qvector = worst("a::qvector(768)::sq8vector(768)::qvector");
    pgrx::log!("sq8vector worst round-trip error: {via_array} / {via_qvector} steps");
    // Half a step, plus float4 rounding of the decoded value (< 1e-4 step here).
    assert!(via_array <= 0.5 + 1e-4, "worst error {via_array} steps");
    assert!(via_qvector <= 0.5 + 1e-4, "worst error {via_qvector} steps");
    // ...and the bound is tight: some element is almost half a step off.
    assert!(via_array > 0.49, "worst error {via_array} steps");
    // The smallest element is always exact (it is the offset).
    assert_eq!(
        Spi::get_one::<i64>(
            "SELECT count(*) FROM sq_rt WHERE (SELECT min(x) FROM unnest(a) x) <> (SELECT min(y) FROM unnest(a::sq8vector::real[]) y)"
        )
        .unwrap(),
        Some(0)
    );
}

#[pg_test]
fn sq8vector_distances_on_codes() {
    // Exact where the values are on the grid.
    assert_eq!(f64_of("SELECT '[0,255,3]'::sq8vector <-> '[0,255,7]'"), 4.0);
    assert_eq!(
        f64_of("SELECT '[0,255,3]'::sq8vector <#> '[0,255,7]'"),
        -(255.0 * 255.0 + 21.0)
    );
    assert_eq!(
        f64_of("SELECT inner_product('[0,255,3]'::sq8vector, '[0,255,7]')"),
        255.0 * 255.0 + 21.0
    );
    assert_eq!(f64_of("SELECT '[0,255,3]'::sq8vector <+> '[0,255,7]'"), 4.0);
    assert_eq!(f64_of("SELECT l1_distance('[0,255,3]'::sq8vector, '[0,255,7]')"), 4.0);
    assert_eq!(f64_of("SELECT l2_distance('[0,255,3]'::sq8vector, '[0,255,3]')"), 0.0);
    assert_eq!(f64_of("SELECT '[1,0]'::sq8vector <=> '[0,1]'"), 1.0);
    assert_eq!(f64_of("SELECT cosine_distance('[1,1]'::sq8vector, '[-1,-1]')"), 2.0);
    assert!((f64_of("SELECT vector_norm('[3,4]'::sq8vector)") - 5.0).abs() < 1e-6);
    assert_eq!(Spi::get_one::<i32>("SELECT vector_dims('[1,2,3]'::sq8vector)").unwrap(), Some(3));
    assert!((f64_of("SELECT vector_norm(l2_normalize('[3,4,0,-2]'::sq8vector))") - 1.0).abs() < 1e-3);
    assert_eq!(text_of("SELECT l2_normalize('[0,0]'::sq8vector)::text"), "[0,0]");
    assert_eq!(
        text_of("SELECT binary_quantize('[1,-2,0.5,3,-1,-1,1,1,2]'::sq8vector)::text"),
        "101100111"
    );
    // A qvector operand is quantized implicitly (the sq8vector operator is chosen).
    assert_eq!(f64_of("SELECT '[0,255,3]'::sq8vector <-> '[0,255,7]'::qvector"), 4.0);
    // On random vectors the distances on codes equal the distances of the decoded values.
    Spi::run("SELECT setseed(0.5)").unwrap();
    Spi::run(
        "CREATE TABLE sq_pairs AS SELECT i,
            (SELECT array_agg(random() * 4 - 1) FROM generate_series(1, 300) WHERE i > 0)::sq8vector AS a,
            (SELECT array_agg(random() * 2 - 1) FROM generate_series(1, 300) WHERE i > 0)::sq8vector AS b
         FROM generate_series(1, 200) i",
    )
    .unwrap();
    // Relative to the distance itself, or for the inner product to |a| |b| (qvector's
    // float4 kernel loses that much to cancellation when the product is near 0).
    for (op, scale) in [
        ("<->", "a::qvector <-> b::qvector"),
        ("<#>", "vector_norm(a) * vector_norm(b)"),
        ("<=>", "a::qvector <=> b::qvector"),
        ("<+>", "a::qvector <+> b::qvector"),
    ] {
        let worst = f64_of(&format!(
            "SELECT max(abs((a {op} b) - (a::qvector {op} b::qvector)) / greatest({scale}, 1e-9)) FROM sq_pairs"
        ));
        assert!(worst < 1e-5, "{op}: relative difference {worst}");
    }
}

/// Arithmetic and aggregates work on decoded values and quantize the result (exact here:
/// every operand and result lies on its own grid).
#[pg_test]
fn sq8vector_arithmetic_and_aggregates() {
    assert_eq!(text_of("SELECT ('[0,255,3]'::sq8vector + '[0,255,7]')::text"), "[0,510,10]");
    assert_eq!(text_of("SELECT ('[0,255,100]'::sq8vector - '[0,0,0]')::text"), "[0,255,100]");
    assert_eq!(text_of("SELECT ('[0,255,2]'::sq8vector * '[1,1,1]')::text"), "[0,255,2]");
    Spi::run("CREATE TABLE sq_agg (v sq8vector(3))").unwrap();
    Spi::run("INSERT INTO sq_agg VALUES ('[0,255,51]'), ('[0,255,153]')").unwrap();
    assert_eq!(text_of("SELECT avg(v)::text FROM sq_agg"), "[0,255,102]");
    assert_eq!(text_of("SELECT sum(v)::text FROM sq_agg"), "[0,510,204]");
    assert_eq!(Spi::get_one::<String>("SELECT avg(v)::text FROM sq_agg WHERE false").unwrap(), None);
    assert_eq!(
        error_of("SELECT '[1,2]'::sq8vector + '[1,2,3]'"),
        "22000: different sq8vector dimensions 2 and 3"
    );
    assert_eq!(
        error_of("SELECT '[3e38,0]'::sq8vector + '[3e38,0]'"),
        "22003: value out of range: overflow"
    );
}

#[pg_test]
fn sq8vector_casts() {
    assert_eq!(text_of("SELECT ARRAY[0,255,3]::sq8vector::text"), "[0,255,3]");
    assert_eq!(text_of("SELECT ARRAY[0,255,3]::real[]::sq8vector::text"), "[0,255,3]");
    assert_eq!(text_of("SELECT ARRAY[0,255,3]::float8[]::sq8vector::text"), "[0,255,3]");
    assert_eq!(text_of("SELECT ARRAY[0,255,3]::numeric[]::sq8vector::text"), "[0,255,3]");
    assert_eq!(text_of("SELECT '[0,255,3]'::sq8vector::real[]::text"), "{0,255,3}");
    assert_eq!(text_of("SELECT '[0,255,3]'::qvector::sq8vector::qvector::text"), "[0,255,3]");
    // Assignment casts both ways between columns.
    Spi::run("CREATE TABLE sq_cast_q (v qvector(3))").unwrap();
    Spi::run("CREATE TABLE sq_cast_s (v sq8vector(3))").unwrap();
    Spi::run("INSERT INTO sq_cast_s VALUES ('[0,255,3]'::qvector), (ARRAY[0,255,4])").unwrap();
    Spi::run("INSERT INTO sq_cast_q SELECT v FROM sq_cast_s").unwrap();
    assert_eq!(text_of("SELECT string_agg(v::text, ' ' ORDER BY v) FROM sq_cast_q"), "[0,255,3] [0,255,4]");
    assert_eq!(
        error_of("INSERT INTO sq_cast_s VALUES ('[1,2]'::qvector)"),
        "22000: expected 3 dimensions, not 2"
    );
    assert_eq!(
        error_of("SELECT '[1,2]'::sq8vector::qvector(3)"),
        "22000: expected 3 dimensions, not 2"
    );
}

#[pg_test]
fn sq8vector_bad_input() {
    let cases = [
        ("SELECT '[1,2'::sq8vector", "22P02: invalid input syntax for type sq8vector: \"[1,2\""),
        ("SELECT '[1,,2]'::sq8vector", "22P02: invalid input syntax for type sq8vector: \"[1,,2]\""),
        ("SELECT '[1,NaN]'::sq8vector", "22000: NaN not allowed in sq8vector"),
        ("SELECT '[1,inf]'::sq8vector", "22000: infinite value not allowed in sq8vector"),
        ("SELECT '[1e39]'::sq8vector", "22003: \"1e39\" is out of range for type sq8vector"),
        ("SELECT '[]'::sq8vector", "22000: sq8vector must have at least 1 dimension"),
        ("SELECT '[1,2]'::sq8vector(3)", "22000: expected 3 dimensions, not 2"),
        ("SELECT '[1]'::sq8vector(0)", "22023: dimensions for type sq8vector must be at least 1"),
        ("SELECT '[1]'::sq8vector(16001)", "22023: dimensions for type sq8vector cannot exceed 16000"),
        ("SELECT '[1,2]'::sq8vector <-> '[1,2,3]'", "22000: different sq8vector dimensions 2 and 3"),
        ("SELECT '[0,0]'::sq8vector <=> '[1,2]'", "22000: cosine distance is undefined for a zero sq8vector"),
        ("SELECT ARRAY[1,NULL]::sq8vector", "22004: array must not contain nulls"),
        ("SELECT ARRAY[[1,2],[3,4]]::sq8vector", "22000: array must be 1-D"),
        ("SELECT '{}'::real[]::sq8vector", "22000: sq8vector must have at least 1 dimension"),
        ("SELECT array_fill(1, ARRAY[16001])::sq8vector", "54000: sq8vector cannot have more than 16000 dimensions"),
    ];
    for (sql, want) in cases {
        assert_eq!(error_of(sql), want, "{sql}");
    }
}

#[pg_test]
fn sq8vector_binary_input() {
    // dims 2, unused 0, offset 0.0, scale 1.0, codes 0 and 255.
    let good = "00020000000000003f80000000ff";
    assert_eq!(
        text_of("SELECT encode(sq8vector_send('[0,255]'::sq8vector), 'hex')"),
        good
    );
    let cases = [
        ("", "22P03: invalid binary sq8vector: needs 12 bytes, message has 0"),
        ("00020000000000003f800000", "22P03: invalid binary sq8vector: needs 14 bytes, message has 12"),
        ("00000000000000003f800000", "22000: sq8vector must have at least 1 dimension"),
        ("ffff0000000000003f800000", "54000: sq8vector cannot have more than 16000 dimensions"),
        ("00020001000000003f80000000ff", "22P03: invalid binary sq8vector: expected unused to be 0, not 1"),
        ("000200007fc000003f80000000ff", "22000: NaN not allowed in sq8vector"),
        ("00020000000000007f80000000ff", "22000: infinite value not allowed in sq8vector"),
        ("0002000000000000bf80000000ff", "22P03: invalid binary sq8vector: negative scale"),
        ("00020000000000007f00000000ff", "22003: invalid binary sq8vector: values out of range for float4"),
        ("00020000000000003f80000000ff00", "22P03: invalid binary sq8vector: 1 trailing bytes"),
    ];
    for (payload, want) in cases {
        assert_eq!(copy_binary_field("sq8vector", &hex(payload)), want, "{payload}");
    }
    assert_eq!(copy_binary_field("sq8vector", &hex(good)), "no error");
    assert_eq!(text_of("SELECT v::text FROM vq_recv_sq8vector"), "[0,255]");
}

#[pg_test]
fn sq8vector_binary_copy_and_comparison() {
    Spi::run("SELECT setseed(0.42)").unwrap();
    Spi::run(
        "CREATE TABLE sq_copy_src AS SELECT i AS id,
            (SELECT array_agg(random() * 2 - 1) FROM generate_series(1, 768) WHERE i > 0)::sq8vector(768) AS v
         FROM generate_series(1, 2000) i",
    )
    .unwrap();
    let path = format!("/tmp/vq_sq8_copy_{}.bin", std::process::id());
    Spi::run(&format!("COPY sq_copy_src TO '{path}' (FORMAT binary)")).unwrap();
    Spi::run("CREATE TABLE sq_copy_dst (id int, v sq8vector(768))").unwrap();
    Spi::run(&format!("COPY sq_copy_dst FROM '{path}' (FORMAT binary)")).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(
        Spi::get_one::<i64>(
            "SELECT count(*) FROM sq_copy_src s FULL JOIN sq_copy_dst d USING (id)
             WHERE s.v IS DISTINCT FROM d.v OR s.v::text IS DISTINCT FROM d.v::text
                OR sq8vector_send(s.v) IS DISTINCT FROM sq8vector_send(d.v)"
        )
        .unwrap(),
        Some(0)
    );
    assert_eq!(Spi::get_one::<i64>("SELECT count(DISTINCT v) FROM sq_copy_dst").unwrap(), Some(2000));
    // btree opclass: comparison on decoded values, unique index, ORDER BY.
    assert_eq!(Spi::get_one::<bool>("SELECT '[1,2]'::sq8vector = '[1,2]'").unwrap(), Some(true));
    assert_eq!(Spi::get_one::<bool>("SELECT '[1,2]'::sq8vector < '[1,3]'").unwrap(), Some(true));
    assert_eq!(Spi::get_one::<bool>("SELECT '[0,255]'::sq8vector < '[0,255,0]'").unwrap(), Some(true));
    Spi::run("CREATE UNIQUE INDEX ON sq_copy_dst (v)").unwrap();
    assert!(error_of("INSERT INTO sq_copy_dst SELECT 0, v FROM sq_copy_dst LIMIT 1").starts_with("23505"));
}

/// Loads seeded vectors into `name (id int, v sq8vector(dims))`.
fn load_sq8_table(name: &str, dims: usize, data: &[f32]) {
    load_table(&format!("{name}_src"), dims, data);
    Spi::run(&format!("CREATE TABLE {name} AS SELECT id, v::sq8vector({dims}) AS v FROM {name}_src")).unwrap();
    Spi::run(&format!("DROP TABLE {name}_src")).unwrap();
}

/// qhnsw over an sq8vector column: each opclass reaches sq8 recall against the exact
/// sequential scan with the same operator, EXPLAIN uses the index, inserts are found.
#[pg_test]
fn sq8vector_qhnsw_recall_per_metric() {
    let (n, nq, dims) = (10_000, 100, 128);
    let base = embeddings_like(n, dims, 7);
    let queries = queries_like(nq, dims, 7);
    load_sq8_table("sq_idx", dims, &base);
    let metrics = [("sq8vector_l2_ops", "<->"), ("sq8vector_ip_ops", "<#>"), ("sq8vector_cosine_ops", "<=>")];
    let truths: Vec<_> = metrics
        .iter()
        // Exact search: the sequential scan with the same operator (ties by id).
        .map(|(_, op)| top_ids("sq_idx", op, &queries, dims, 10, ", id"))
        .collect();
    for ((opclass, op), truth) in metrics.iter().zip(&truths) {
        for quantizer in ["sq8", "binary"] {
            Spi::run(&format!(
                "CREATE INDEX sq_idx_idx ON sq_idx USING qhnsw (v {opclass}) WITH (quantizer = '{quantizer}')"
            ))
            .unwrap();
            Spi::run("SET LOCAL enable_seqscan = off").unwrap();
            let plan = plan_of(&format!(
                "SELECT id FROM sq_idx ORDER BY v {op} '{}' LIMIT 10",
                format_vector(&queries[..dims])
            ));
            assert!(plan.contains("Index Scan using sq_idx_idx"), "{plan}");
            let got = top_ids("sq_idx", op, &queries, dims, 10, "");
            let recall = recall_at(10, truth, &got);
            pgrx::log!("sq8vector {opclass} {quantizer}: recall@10 {recall:.4}");
            let threshold = if quantizer == "sq8" { 0.97 } else { 0.93 };
            assert!(recall >= threshold, "{opclass} {quantizer}: recall@10 {recall:.4}");
            Spi::run("RESET enable_seqscan").unwrap();
            Spi::run("DROP INDEX sq_idx_idx").unwrap();
        }
    }
    // Rows inserted after the build are found through the index.
    Spi::run("CREATE INDEX sq_idx_idx ON sq_idx USING qhnsw (v sq8vector_l2_ops)").unwrap();
    let extra = queries_like(200, dims, 7);
    for (i, row) in extra.chunks_exact(dims).enumerate() {
        Spi::run(&format!("INSERT INTO sq_idx VALUES ({}, '{}')", 100_000 + i, format_vector(row))).unwrap();
    }
    Spi::run("SET LOCAL enable_seqscan = off").unwrap();
    let found = extra
        .chunks_exact(dims)
        .enumerate()
        .filter(|(i, row)| {
            let sql = format!("SELECT id FROM sq_idx ORDER BY v <-> '{}' LIMIT 1", format_vector(row));
            Spi::get_one::<i32>(&sql).unwrap() == Some(100_000 + *i as i32)
        })
        .count();
    assert_eq!(found, 200, "inserted rows found as their own nearest neighbour");
    assert_eq!(
        text_of("SELECT method FROM quantization_stats('sq_idx_idx')"),
        "sq8"
    );
    let recall = f64_of("SELECT recall_at_10 FROM quantization_stats('sq_idx_idx', 50)");
    assert!(recall >= 0.95, "quantization_stats recall on an sq8vector index: {recall}");
    // quantization_optimize samples the sq8vector column too and picks one candidate.
    assert_eq!(
        text_of("SELECT (count(*) >= 6) || ' ' || count(*) FILTER (WHERE chosen) FROM quantization_optimize('sq_idx_idx')"),
        "true 1"
    );
}
