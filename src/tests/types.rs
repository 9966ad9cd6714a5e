// qvector type tests: exact operator values, casts, aggregates, and every bad input.


#[pg_test]
fn text_round_trip_and_typmod() {
    assert_eq!(
        text_of("SELECT '[1,2.5,-3e-2]'::qvector::text"),
        "[1,2.5,-0.03]"
    );
    assert_eq!(
        text_of("SELECT ' [ 1 , 2 ,3 ] '::qvector(3)::text"),
        "[1,2,3]"
    );
    assert_eq!(
        text_of("SELECT '[1e30,1.5e-7]'::qvector::text"),
        "[1e+30,1.5e-07]"
    );
    Spi::run("CREATE TABLE vq_typmod_probe (v qvector(3))").unwrap();
    assert_eq!(
        text_of("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'vq_typmod_probe'::regclass AND attname = 'v'"),
        "qvector(3)"
    );
}

#[pg_test]
fn distances_are_exact() {
    assert_eq!(f64_of("SELECT '[1,2,3]'::qvector <-> '[4,6,3]'"), 5.0);
    assert_eq!(
        f64_of("SELECT l2_distance('[1,2,3]'::qvector, '[4,6,3]')"),
        5.0
    );
    assert_eq!(f64_of("SELECT '[1,2,3]'::qvector <#> '[4,5,6]'"), -32.0);
    assert_eq!(
        f64_of("SELECT inner_product('[1,2,3]'::qvector, '[4,5,6]')"),
        32.0
    );
    assert_eq!(f64_of("SELECT '[1,0]'::qvector <=> '[0,1]'"), 1.0);
    assert_eq!(f64_of("SELECT '[1,1]'::qvector <=> '[-1,-1]'"), 2.0);
    assert_eq!(f64_of("SELECT '[3,4]'::qvector <=> '[6,8]'"), 0.0);
    assert_eq!(
        f64_of("SELECT cosine_distance('[1,2]'::qvector, '[2,1]')"),
        1.0 - 4.0 / 5.0
    );
    assert_eq!(f64_of("SELECT '[1,2,3]'::qvector <+> '[4,0,3]'"), 5.0);
    assert_eq!(
        f64_of("SELECT l1_distance('[-1,2]'::qvector, '[1,-2]')"),
        6.0
    );
    assert_eq!(f64_of("SELECT vector_norm('[3,4]'::qvector)"), 5.0);
    assert_eq!(
        Spi::get_one::<i32>("SELECT vector_dims('[1,2,3]'::qvector)").unwrap(),
        Some(3)
    );
    assert_eq!(
        text_of("SELECT l2_normalize('[3,4]'::qvector)::text"),
        "[0.6,0.8]"
    );
    assert_eq!(
        text_of("SELECT l2_normalize('[0,0]'::qvector)::text"),
        "[0,0]"
    );
    assert_eq!(
        text_of("SELECT binary_quantize('[1,-2,0,3,0.5,-1,1,1,2]'::qvector)::text"),
        "100110111"
    );
}

#[pg_test]
fn arithmetic_and_comparison() {
    assert_eq!(
        text_of("SELECT ('[1,2,3]'::qvector + '[4,5,6]')::text"),
        "[5,7,9]"
    );
    assert_eq!(
        text_of("SELECT ('[1,2,3]'::qvector - '[4,5,6]')::text"),
        "[-3,-3,-3]"
    );
    assert_eq!(
        text_of("SELECT ('[1,2,3]'::qvector * '[4,5,6]')::text"),
        "[4,10,18]"
    );
    assert_eq!(text_of("SELECT ('[1,2]'::qvector < '[1,3]')::text"), "true");
    assert_eq!(
        text_of("SELECT ('[1,2]'::qvector < '[1,2,0]')::text"),
        "true"
    );
    assert_eq!(text_of("SELECT ('[1,2]'::qvector = '[1,2]')::text"), "true");
    assert_eq!(text_of("SELECT ('[2]'::qvector >= '[1,9]')::text"), "true");
    Spi::run("CREATE TABLE vq_cmp (v qvector)").unwrap();
    Spi::run("INSERT INTO vq_cmp VALUES ('[3,1]'), ('[1,2]'), ('[1,2]'), ('[1,1,1]'), ('[2,0]')")
        .unwrap();
    assert_eq!(
        text_of("SELECT string_agg(v::text, ' ' ORDER BY v) FROM vq_cmp"),
        "[1,1,1] [1,2] [1,2] [2,0] [3,1]"
    );
    assert_eq!(
        Spi::get_one::<i64>("SELECT count(DISTINCT v) FROM vq_cmp").unwrap(),
        Some(4)
    );
    assert_eq!(
        Spi::get_one::<i64>("SELECT count(*) FROM (SELECT v FROM vq_cmp GROUP BY v) g").unwrap(),
        Some(4)
    );
    assert_eq!(
        error_of("CREATE UNIQUE INDEX ON vq_cmp (v)"),
        "23505: could not create unique index \"vq_cmp_v_idx\""
    );
    Spi::run("DELETE FROM vq_cmp WHERE v = '[1,2]'").unwrap();
    Spi::run("CREATE UNIQUE INDEX vq_cmp_u ON vq_cmp (v)").unwrap();
    assert!(
        error_of("INSERT INTO vq_cmp VALUES ('[3,1]')").starts_with("23505: duplicate key value")
    );
}

#[pg_test]
fn casts_round_trip() {
    assert_eq!(text_of("SELECT ARRAY[1,2,3]::qvector::text"), "[1,2,3]");
    assert_eq!(
        text_of("SELECT ARRAY[1.5,2,3]::real[]::qvector::text"),
        "[1.5,2,3]"
    );
    assert_eq!(
        text_of("SELECT ARRAY[1.5,2,3]::double precision[]::qvector::text"),
        "[1.5,2,3]"
    );
    assert_eq!(
        text_of("SELECT ARRAY[1.5,2,3]::numeric[]::qvector::text"),
        "[1.5,2,3]"
    );
    assert_eq!(
        text_of("SELECT '[1.5,2,3]'::qvector::real[]::text"),
        "{1.5,2,3}"
    );
    assert_eq!(
        text_of("SELECT '[0.1,2,3]'::qvector::real[]::qvector::text"),
        "[0.1,2,3]"
    );
    assert_eq!(text_of("SELECT ARRAY[1,2]::qvector(2)::text"), "[1,2]");
    Spi::run("CREATE TABLE vq_assign (v qvector(3))").unwrap();
    Spi::run("INSERT INTO vq_assign VALUES (ARRAY[1,2,3]), (ARRAY[4,5,6]::real[]), ('{7,8,9}'::float8[])").unwrap();
    assert_eq!(
        text_of("SELECT string_agg(v::text, ' ' ORDER BY v) FROM vq_assign"),
        "[1,2,3] [4,5,6] [7,8,9]"
    );
}

#[pg_test]
fn aggregates() {
    Spi::run("CREATE TABLE vq_agg (v qvector)").unwrap();
    assert_eq!(
        Spi::get_one::<String>("SELECT avg(v)::text FROM vq_agg").unwrap(),
        None
    );
    Spi::run("INSERT INTO vq_agg VALUES ('[1,2,3]'), ('[3,4,5]'), ('[5,6,10]')").unwrap();
    assert_eq!(text_of("SELECT avg(v)::text FROM vq_agg"), "[3,4,6]");
    assert_eq!(text_of("SELECT sum(v)::text FROM vq_agg"), "[9,12,18]");
    Spi::run("INSERT INTO vq_agg VALUES (NULL)").unwrap();
    assert_eq!(text_of("SELECT avg(v)::text FROM vq_agg"), "[3,4,6]");
    Spi::run("INSERT INTO vq_agg VALUES ('[1,2]')").unwrap();
    assert_eq!(
        error_of("SELECT avg(v) FROM vq_agg"),
        "22000: expected 3 dimensions, not 2"
    );
}

#[pg_test]
fn bad_text_input() {
    let syntax = |s: &str| format!("22P02: invalid input syntax for type qvector: \"{s}\"");
    for bad in ["[1,2", "1,2]", "[1,2]x", "", "[a,b]", "[1,,2]", "[1 2]"] {
        assert_eq!(
            error_of(&format!("SELECT '{bad}'::qvector")),
            syntax(bad),
            "{bad}"
        );
    }
    assert_eq!(
        error_of("SELECT '[]'::qvector"),
        "22000: qvector must have at least 1 dimension"
    );
    assert_eq!(
        error_of("SELECT '[NaN]'::qvector"),
        "22000: NaN not allowed in qvector"
    );
    assert_eq!(
        error_of("SELECT '[1,Infinity]'::qvector"),
        "22000: infinite value not allowed in qvector"
    );
    assert_eq!(
        error_of("SELECT '[-inf]'::qvector"),
        "22000: infinite value not allowed in qvector"
    );
    assert_eq!(
        error_of("SELECT '[1e39]'::qvector"),
        "22003: \"1e39\" is out of range for type qvector"
    );
    assert_eq!(
        error_of("SELECT ('[' || repeat('1,', 16000) || '1]')::qvector"),
        "54000: qvector cannot have more than 16000 dimensions"
    );
    assert_eq!(
        text_of("SELECT vector_dims(('[' || repeat('1,', 15999) || '1]')::qvector)::text"),
        "16000"
    );
}

#[pg_test]
fn typmod_errors() {
    assert_eq!(
        error_of("SELECT '[1,2]'::qvector(3)"),
        "22000: expected 3 dimensions, not 2"
    );
    assert_eq!(
        error_of("SELECT '[1,2]'::qvector::qvector(3)"),
        "22000: expected 3 dimensions, not 2"
    );
    assert_eq!(
        error_of("CREATE TABLE vq_bad0 (v qvector(0))"),
        "22023: dimensions for type qvector must be at least 1"
    );
    assert_eq!(
        error_of("CREATE TABLE vq_bad1 (v qvector(16001))"),
        "22023: dimensions for type qvector cannot exceed 16000"
    );
    assert_eq!(
        error_of("CREATE TABLE vq_bad2 (v qvector(2,3))"),
        "22023: invalid type modifier"
    );
    Spi::run("CREATE TABLE vq_tm (v qvector(2))").unwrap();
    assert_eq!(
        error_of("INSERT INTO vq_tm VALUES ('[1,2,3]')"),
        "22000: expected 2 dimensions, not 3"
    );
    Spi::run("INSERT INTO vq_tm VALUES ('[1,2]')").unwrap();
    assert_eq!(
        error_of("UPDATE vq_tm SET v = '[1]'"),
        "22000: expected 2 dimensions, not 1"
    );
    assert_eq!(
        error_of("UPDATE vq_tm SET v = ARRAY[1,2,3]"),
        "22000: expected 2 dimensions, not 3"
    );
}

#[pg_test]
fn operand_and_array_errors() {
    let diff = "22000: different qvector dimensions 2 and 3";
    for op in ["<->", "<#>", "<=>", "<+>", "+", "-", "*"] {
        assert_eq!(
            error_of(&format!("SELECT '[1,2]'::qvector {op} '[1,2,3]'")),
            diff,
            "{op}"
        );
    }
    assert_eq!(
        error_of("SELECT '[0,0]'::qvector <=> '[1,2]'"),
        "22000: cosine distance is undefined for a zero qvector"
    );
    assert_eq!(
        error_of("SELECT '[3e38]'::qvector + '[3e38]'"),
        "22003: value out of range: overflow"
    );
    assert_eq!(
        error_of("SELECT ARRAY[[1,2],[3,4]]::qvector"),
        "22000: array must be 1-D"
    );
    assert_eq!(
        error_of("SELECT ARRAY[1,NULL,3]::qvector"),
        "22004: array must not contain nulls"
    );
    assert_eq!(
        error_of("SELECT '{}'::real[]::qvector"),
        "22000: qvector must have at least 1 dimension"
    );
    assert_eq!(
        error_of("SELECT ARRAY['NaN']::float8[]::qvector"),
        "22000: NaN not allowed in qvector"
    );
    assert_eq!(
        error_of("SELECT ARRAY[1e300]::float8[]::qvector"),
        "22000: infinite value not allowed in qvector"
    );
    assert_eq!(
        error_of("SELECT array_fill(1, ARRAY[16001])::qvector"),
        "54000: qvector cannot have more than 16000 dimensions"
    );
}

/// Loads one binary-COPY field holding `payload` into a column of type `typ` (table
/// `vq_recv_<typ>`); returns the error.
fn copy_binary_field(typ: &str, payload: &[u8]) -> String {
    let mut file = b"PGCOPY\n\xff\r\n\0".to_vec();
    file.extend_from_slice(&0i32.to_be_bytes());
    file.extend_from_slice(&0i32.to_be_bytes());
    file.extend_from_slice(&1i16.to_be_bytes());
    file.extend_from_slice(&(payload.len() as i32).to_be_bytes());
    file.extend_from_slice(payload);
    file.extend_from_slice(&(-1i16).to_be_bytes());
    let path = format!("/tmp/vq_recv_{typ}_{}.bin", std::process::id());
    std::fs::write(&path, &file).expect("write copy file");
    Spi::run(&format!("CREATE TABLE IF NOT EXISTS vq_recv_{typ} (v {typ})")).unwrap();
    let result = error_of(&format!("COPY vq_recv_{typ} FROM '{path}' (FORMAT binary)"));
    let _ = std::fs::remove_file(&path);
    result
}

#[pg_test]
fn bad_binary_input() {
    assert_eq!(
        copy_binary_field("qvector", &[]),
        "22P03: invalid binary qvector: needs 4 bytes, message has 0"
    );
    assert_eq!(
        copy_binary_field("qvector", &hex("0003")),
        "22P03: invalid binary qvector: needs 4 bytes, message has 2"
    );
    assert_eq!(
        copy_binary_field("qvector", &hex("00030000")),
        "22P03: invalid binary qvector: needs 16 bytes, message has 4"
    );
    assert_eq!(
        copy_binary_field("qvector", &hex("000200003f800000")),
        "22P03: invalid binary qvector: needs 12 bytes, message has 8"
    );
    assert_eq!(
        copy_binary_field("qvector", &hex("ffff0000")),
        "54000: qvector cannot have more than 16000 dimensions"
    );
    assert_eq!(
        copy_binary_field("qvector", &hex("00000000")),
        "22000: qvector must have at least 1 dimension"
    );
    assert_eq!(
        copy_binary_field("qvector", &hex("000100013f800000")),
        "22P03: invalid binary qvector: expected unused to be 0, not 1"
    );
    assert_eq!(
        copy_binary_field("qvector", &hex("000100007fc00000")),
        "22000: NaN not allowed in qvector"
    );
    assert_eq!(
        copy_binary_field("qvector", &hex("000100007f800000")),
        "22000: infinite value not allowed in qvector"
    );
    assert_eq!(
        copy_binary_field("qvector", &hex("000100003f80000000")),
        "22P03: invalid binary qvector: 1 trailing bytes"
    );
    assert_eq!(
        copy_binary_field("qvector", &hex("000200003f80000040000000")),
        "no error"
    );
    assert_eq!(text_of("SELECT v::text FROM vq_recv_qvector"), "[1,2]");
    assert_eq!(
        text_of("SELECT encode(qvector_send('[1,2]'::qvector), 'hex')"),
        "000200003f80000040000000"
    );
}

#[pg_test]
fn binary_copy_round_trip_768() {
    Spi::run("SELECT setseed(0.42)").unwrap();
    Spi::run(
        "CREATE TABLE vq_copy_src AS SELECT i AS id,
            (SELECT array_agg(random() * 2 - 1)::real[] FROM generate_series(1, 768) WHERE i > 0)::qvector(768) AS v
         FROM generate_series(1, 10000) i",
    )
    .unwrap();
    let path = format!("/tmp/vq_copy_{}.bin", std::process::id());
    Spi::run(&format!("COPY vq_copy_src TO '{path}' (FORMAT binary)")).unwrap();
    Spi::run("CREATE TABLE vq_copy_dst (id int, v qvector(768))").unwrap();
    Spi::run(&format!("COPY vq_copy_dst FROM '{path}' (FORMAT binary)")).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(
        Spi::get_one::<i64>("SELECT count(*) FROM vq_copy_dst").unwrap(),
        Some(10000)
    );
    assert_eq!(
        Spi::get_one::<i64>("SELECT count(DISTINCT v) FROM vq_copy_src").unwrap(),
        Some(10000)
    );
    let mismatches = Spi::get_one::<i64>(
        "SELECT count(*) FROM vq_copy_src s FULL JOIN vq_copy_dst d USING (id)
         WHERE s.v IS DISTINCT FROM d.v OR s.v::text IS DISTINCT FROM d.v::text",
    )
    .unwrap();
    assert_eq!(mismatches, Some(0));
}

/// Runs `sql` and returns the DETAIL of the error it raises (empty if none).
fn detail_of(sql: &str) -> String {
    error_item_of(sql, "PG_EXCEPTION_DETAIL")
}

// Issue 12, item 3: untyped literals resolve to qvector wherever qvector and sq8vector
// both have an overload (one type category, qvector preferred).
#[pg_test]
fn issue12_untyped_literals_resolve_to_qvector() {
    assert_eq!(f64_of("SELECT vector_norm('[3,4]')"), 5.0);
    assert_eq!(
        Spi::get_one::<i32>("SELECT vector_dims('[1,2,3]')").unwrap(),
        Some(3)
    );
    assert_eq!(
        text_of("SELECT l2_normalize('[3,4]')::text || ' ' || pg_typeof(l2_normalize('[3,4]'))"),
        "[0.6,0.8] qvector"
    );
    assert_eq!(text_of("SELECT binary_quantize('[1,0,-1]')::text"), "100");
    assert_eq!(f64_of("SELECT l2_distance('[0,0]', '[3,4]')"), 5.0);
    assert_eq!(f64_of("SELECT inner_product('[1,2]', '[3,4]')"), 11.0);
    assert_eq!(f64_of("SELECT cosine_distance('[1,0]', '[0,2]')"), 1.0);
    assert_eq!(f64_of("SELECT l1_distance('[0,0]', '[3,4]')"), 7.0);
    assert_eq!(f64_of("SELECT '[1,2]' <#> '[3,4]'"), -11.0);
    assert_eq!(f64_of("SELECT '[1,2]' <=> '[2,4]'"), 0.0);
    assert_eq!(f64_of("SELECT '[0,0]' <+> '[3,4]'"), 7.0);
    assert_eq!(
        text_of("SELECT subvector('[1,2,3]', 2, 2)::text || ' ' || pg_typeof(subvector('[1,2,3]', 2, 2))"),
        "[2,3] qvector"
    );
    // One typed operand still decides: sq8vector columns keep their own operators.
    Spi::run("CREATE TABLE vq_cat (q qvector, s sq8vector)").unwrap();
    Spi::run("INSERT INTO vq_cat VALUES ('[1,2,3]', '[1,2,3]')").unwrap();
    assert_eq!(f64_of("SELECT s <-> '[1,2,3]' FROM vq_cat"), 0.0);
    assert_eq!(
        text_of("SELECT pg_typeof(s || '[4]')::text || ' ' || pg_typeof(q || '[4]') FROM vq_cat"),
        "sq8vector qvector"
    );
    assert_eq!(
        text_of("SELECT pg_typeof(q + s)::text FROM vq_cat"),
        "sq8vector"
    );
}

// Issue 12, item 4: + - * raise pgvector's overflow and underflow errors.
#[pg_test]
fn issue12_arithmetic_overflow_and_underflow() {
    let overflow = "22003: value out of range: overflow";
    let underflow = "22003: value out of range: underflow";
    for ty in ["qvector", "sq8vector"] {
        assert_eq!(error_of(&format!("SELECT '[3e38]'::{ty} + '[3e38]'")), overflow);
        assert_eq!(error_of(&format!("SELECT '[-3e38]'::{ty} - '[3e38]'")), overflow);
        assert_eq!(error_of(&format!("SELECT '[1e37]'::{ty} * '[1e37]'")), overflow);
        assert_eq!(error_of(&format!("SELECT '[1e-37]'::{ty} * '[1e-37]'")), underflow);
        assert_eq!(error_of(&format!("SELECT '[2,-1e-30]'::{ty} * '[3,1e-30]'")), underflow);
    }
    // A subnormal product is a value, as for float4 (float4mul agrees on its text).
    assert_eq!(
        text_of("SELECT (('[1e-20]'::qvector * '[1e-20]')::text = '[' || (1e-20::real * 1e-20::real)::text || ']')::text"),
        "true"
    );
    assert_eq!(
        text_of("SELECT ('[0,2]'::qvector * '[1e-37,3]')::text"),
        "[0,6]"
    );
    assert_eq!(
        text_of("SELECT ('[1e-45]'::qvector - '[1e-45]')::text"),
        "[0]"
    );
}

// Issue 12, item 5: the aggregate support functions reject malformed states.
#[pg_test]
fn issue12_aggregate_states_are_checked() {
    assert_eq!(
        error_of("CREATE TABLE vq_bad_avg AS SELECT qvector_avg('{1}') v"),
        "22000: qvector must have at least 1 dimension"
    );
    assert_eq!(
        error_of("SELECT qvector_avg(array_agg(n)) FROM generate_series(1, 16002) n"),
        "54000: qvector cannot have more than 16000 dimensions"
    );
    assert_eq!(
        error_of("SELECT qvector_sum(array_agg(n)) FROM generate_series(1, 16002) n"),
        "54000: qvector cannot have more than 16000 dimensions"
    );
    let big = "(SELECT array_agg(n) FROM generate_series(1, 16002) n)";
    for sql in [
        format!("SELECT qvector_combine('{{0}}', {big})"),
        format!("SELECT qvector_combine({big}, '{{0}}')"),
        format!("SELECT qvector_combine({big}, {big})"),
    ] {
        assert_eq!(
            error_of(&sql),
            "54000: qvector cannot have more than 16000 dimensions",
            "{sql}"
        );
    }
    assert_eq!(
        error_of("SELECT qvector_accum('{0,0}', '[1,2,3]')"),
        "22000: expected 1 dimensions, not 3"
    );
    assert_eq!(
        error_of("SELECT qvector_combine('{1,2}', '{1,2,3}')"),
        "22000: expected 1 dimensions, not 2"
    );
    for (call, state) in [
        ("qvector_accum", "(%s, '[1,2,3]')"),
        ("qvector_sum_accum", "(%s, '[1,2,3]')"),
        ("sq8vector_accum", "(%s, '[1,2,3]')"),
        ("sq8vector_sum_accum", "(%s, '[1,2,3]')"),
        ("qvector_combine", "(%s, '{1,2}')"),
        ("qvector_combine", "('{1,2}', %s)"),
        ("qvector_avg", "(%s)"),
        ("qvector_sum", "(%s)"),
        ("sq8vector_avg", "(%s)"),
        ("sq8vector_sum", "(%s)"),
    ] {
        for bad in ["'{{0}}'", "'{NULL,2}'", "'{}'", "'{1,NULL}'"] {
            let sql = format!("SELECT {call}{}", state.replace("%s", bad));
            assert_eq!(
                error_of(&sql),
                format!("22023: {call}: expected state array"),
                "{sql}"
            );
        }
    }
    assert_eq!(
        error_of("SELECT qvector_avg('{1,1e39}')"),
        "22000: infinite value not allowed in qvector"
    );
    assert_eq!(
        error_of("SELECT qvector_sum('{1,1e39}')"),
        "22003: value out of range: overflow"
    );
    assert_eq!(
        error_of("SELECT qvector_avg('{1,NaN}')"),
        "22000: NaN not allowed in qvector"
    );
    assert_eq!(
        error_of("SELECT sq8vector_avg('{1}')"),
        "22000: sq8vector must have at least 1 dimension"
    );
    // Well-formed states keep pgvector's results.
    assert_eq!(text_of("SELECT qvector_accum('{0}', '[1,2,3]')::text"), "{1,1,2,3}");
    assert_eq!(text_of("SELECT qvector_accum('{0,0,0,0}', '[1,2,3]')::text"), "{1,1,2,3}");
    assert_eq!(text_of("SELECT qvector_accum('{2,1,1}', '[1,2]')::text"), "{3,2,3}");
    assert_eq!(text_of("SELECT qvector_combine('{1,2}', '{3,4}')::text"), "{4,6}");
    assert_eq!(text_of("SELECT qvector_combine('{0}', '{2,4}')::text"), "{2,4}");
    assert_eq!(text_of("SELECT qvector_combine('{0}', '{0}')::text"), "{0}");
    assert_eq!(text_of("SELECT qvector_avg('{2,2,4,6}')::text"), "[1,2,3]");
    assert_eq!(text_of("SELECT qvector_sum('{2,2,4,6}')::text"), "[2,4,6]");
    assert_eq!(
        Spi::get_one::<String>("SELECT qvector_avg('{0}')::text").unwrap(),
        None
    );
    assert_eq!(
        text_of("SELECT avg(v)::text FROM unnest(ARRAY['[3e38]'::qvector, '[3e38]']) v"),
        "[3e+38]"
    );
    assert_eq!(
        error_of("SELECT sum(v) FROM unnest(ARRAY['[3e38]'::qvector, '[3e38]']) v"),
        "22003: value out of range: overflow"
    );
    // pgvector's messages for mixed dimensions: avg accumulates, sum adds vectors.
    assert_eq!(
        error_of("SELECT avg(v) FROM unnest(ARRAY['[1,2]'::qvector, '[3]']) v"),
        "22000: expected 2 dimensions, not 1"
    );
    assert_eq!(
        error_of("SELECT sum(v) FROM unnest(ARRAY['[1,2]'::qvector, '[3]']) v"),
        "22000: different qvector dimensions 2 and 1"
    );
    assert_eq!(
        error_of("SELECT sum(v) FROM unnest(ARRAY['[1,2]'::sq8vector, '[3]']) v"),
        "22000: different sq8vector dimensions 2 and 1"
    );
    assert_eq!(
        text_of("SELECT sum(v)::text FROM unnest(ARRAY['[1,2,3]'::qvector, '[3,5,7]', NULL]) v"),
        "[4,7,10]"
    );
}

/// float4out's text of `v` (the session has extra_float_digits = 1).
fn float4out_text(v: f32) -> String {
    // SAFETY: float4out takes one float4 datum and returns a palloc'd C string.
    unsafe {
        let datum = pgrx::fcinfo::direct_function_call_as_datum(
            pgrx::pg_sys::float4out,
            &[Some(pgrx::pg_sys::Datum::from(v.to_bits() as usize))],
        )
        .expect("float4out returned NULL");
        let ptr = datum.cast_mut_ptr::<std::ffi::c_char>();
        let text = std::ffi::CStr::from_ptr(ptr).to_str().unwrap().to_owned();
        pgrx::pg_sys::pfree(ptr.cast());
        text
    }
}

// Issue 12, item 6: every element prints exactly as float4out with extra_float_digits = 1
// (pgvector's format): ~1M seeded random bit patterns plus the edge cases.
#[pg_test]
fn issue12_text_output_matches_float4out() {
    use crate::types::text::write_f32;
    Spi::run("SET extra_float_digits = 1").unwrap();
    let mut values: Vec<f32> = vec![0.0, -0.0, f32::MAX, f32::MIN, f32::MIN_POSITIVE, -f32::MIN_POSITIVE];
    // Subnormals: the smallest, the largest, every power of two among them.
    for bits in [1u32, 2, 3, 0x7f_ffff, 0x40_0000, 0x7f_fffe] {
        values.push(f32::from_bits(bits));
    }
    for shift in 0..23 {
        values.push(f32::from_bits(1 << shift));
    }
    // Powers of ten, their float neighbours, and the plain/exponent thresholds.
    for e in -45..=38 {
        let p: f32 = format!("1e{e}").parse().unwrap();
        for bits in [p.to_bits().wrapping_sub(1), p.to_bits(), p.to_bits() + 1] {
            values.push(f32::from_bits(bits));
        }
    }
    for t in [0.0001f32, 0.00001, 999999.0, 999999.5, 1e6, 100000.0, 123456789.0, 0.00001, 16777216.0] {
        values.push(t);
        values.push(f32::from_bits(t.to_bits() - 1));
        values.push(f32::from_bits(t.to_bits() + 1));
    }
    // Every integer below 100000 and a sample of the integers up to 2^24 (Ryū's
    // small-integer path).
    values.extend((1..100_000).map(|i| i as f32));
    values.extend((0..20_000u32).map(|i| (i * 839 % (1 << 24)) as f32));
    // ~1M seeded random bit patterns (xorshift32), finite ones only.
    let mut x: u32 = 0x2545_f491;
    for _ in 0..1_000_000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        values.push(f32::from_bits(x));
    }
    let mut checked = 0usize;
    let mut ours = String::new();
    for v in values.iter().filter(|v| v.is_finite()) {
        for v in [*v, -*v] {
            ours.clear();
            write_f32(&mut ours, v);
            assert_eq!(ours, float4out_text(v), "bits {:#010x}", v.to_bits());
            checked += 1;
        }
    }
    assert!(checked > 2_000_000, "{checked}");
    // End to end through qvector_out and sq8vector_out.
    assert_eq!(
        text_of("SELECT '[0.00001,123456789]'::qvector::text"),
        "[1e-05,1.2345679e+08]"
    );
    assert_eq!(
        text_of("SELECT '[1e-46,-1e-46,1.5e-38,-1.5e38]'::qvector::text"),
        "[0,-0,1.5e-38,-1.5e+38]"
    );
    Spi::run("SELECT setseed(0.12)").unwrap();
    assert_eq!(
        text_of(
            "SELECT count(*) FILTER (WHERE v::text <> translate(v::real[]::text, '{}', '[]'))::text
             FROM (SELECT array_agg(((random() * 2 - 1) * 10 ^ (random() * 76 - 38))::real)::qvector v
                   FROM generate_series(1, 100000) i GROUP BY i % 100) g"
        ),
        "0"
    );
    assert_eq!(
        text_of("SELECT '[0.00001,123456789]'::sq8vector::text"),
        "[1e-05,1.2345679e+08]"
    );
}

// Issue 12, item 6: malformed text input errors carry pgvector's DETAIL lines.
#[pg_test]
fn issue12_text_input_errors_carry_detail() {
    let syntax = |s: &str| format!("22P02: invalid input syntax for type qvector: \"{s}\"");
    for (bad, detail) in [
        ("1,2,3", "Vector contents must start with \"[\"."),
        ("", "Vector contents must start with \"[\"."),
        ("[1,2,3]9", "Junk after closing right brace."),
        ("[1,2,3", ""),
        ("[1,]", ""),
        ("[1, ,3]", ""),
        ("[", ""),
        ("[0xg]", ""),
    ] {
        let sql = format!("SELECT '{bad}'::qvector");
        assert_eq!(error_of(&sql), syntax(bad), "{bad}");
        assert_eq!(detail_of(&sql), detail, "{bad}");
        let sql8 = format!("SELECT '{bad}'::sq8vector");
        assert_eq!(detail_of(&sql8), detail, "{bad}");
    }
    assert_eq!(
        error_of("SELECT '[-4e38,1]'::qvector"),
        "22003: \"-4e38\" is out of range for type qvector"
    );
    assert_eq!(text_of("SELECT '[1.,2.,3.]'::qvector::text"), "[1,2,3]");
    // Hexadecimal literals, as pgvector's strtof reads them.
    assert_eq!(
        text_of("SELECT '[0x10,-0x1.8p1,0x.8]'::qvector::text"),
        "[16,-3,0.5]"
    );
    assert_eq!(
        text_of("SELECT '[1.00000005960464477539062500001]'::qvector::text"),
        "[1.0000001]"
    );
}

// Issue 12, item 7: subvector() and || with pgvector's semantics.
#[pg_test]
fn issue12_subvector_and_concat() {
    for (start, count, want) in [
        ("1", "3", "[1,2,3]"),
        ("3", "2", "[3,4]"),
        ("-1", "3", "[1]"),
        ("3", "9", "[3,4,5]"),
        ("3", "2147483647", "[3,4,5]"),
        ("-2147483644", "2147483647", "[1,2]"),
    ] {
        assert_eq!(
            text_of(&format!("SELECT subvector('[1,2,3,4,5]'::qvector, {start}, {count})::text")),
            want,
            "{start} {count}"
        );
    }
    for (start, count) in [("1", "0"), ("3", "-1"), ("-1", "2"), ("2147483647", "10"), ("6", "1")] {
        assert_eq!(
            error_of(&format!("SELECT subvector('[1,2,3,4,5]'::qvector, {start}, {count})")),
            "22000: qvector must have at least 1 dimension",
            "{start} {count}"
        );
    }
    assert_eq!(
        text_of("SELECT ('[1,2,3]'::qvector || '[4,5]'::qvector)::text"),
        "[1,2,3,4,5]"
    );
    assert_eq!(
        text_of("SELECT pg_typeof('[1,2,3]'::qvector || '[4,5]'::qvector)::text"),
        "qvector"
    );
    assert_eq!(
        text_of("SELECT ('[1,2,3]'::qvector || '[4,5]')::text"),
        "[1,2,3,4,5]"
    );
    assert_eq!(
        error_of("SELECT array_fill(0, ARRAY[16000])::qvector || '[1]'"),
        "54000: qvector cannot have more than 16000 dimensions"
    );
    assert_eq!(
        text_of("SELECT vector_dims(array_fill(0, ARRAY[15999])::qvector || '[1]')::text"),
        "16000"
    );
    // sq8vector: a subvector decodes to exactly the selected elements; || quantizes again.
    assert_eq!(
        text_of("SELECT (subvector(v, 2, 3)::real[] = (v::real[])[2:4])::text
                 FROM (SELECT '[0.5,-1,2.25,7,3]'::sq8vector v) s"),
        "true"
    );
    assert_eq!(
        text_of("SELECT pg_typeof(subvector('[1,2,3]'::sq8vector, 1, 2))::text"),
        "sq8vector"
    );
    assert_eq!(
        error_of("SELECT subvector('[1,2,3]'::sq8vector, 4, 1)"),
        "22000: sq8vector must have at least 1 dimension"
    );
    assert_eq!(
        text_of("SELECT ('[0,1]'::sq8vector || '[2,3]'::sq8vector)::text || ' ' || pg_typeof('[0]'::sq8vector || '[1]'::sq8vector)"),
        "[0,1,2,3] sq8vector"
    );
    assert_eq!(
        error_of("SELECT array_fill(0, ARRAY[16000])::sq8vector || '[1]'::sq8vector"),
        "54000: sq8vector cannot have more than 16000 dimensions"
    );
}
