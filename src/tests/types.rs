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
        "[1e+30,1.5e-7]"
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
        "22003: \"1e300\" is out of range for type qvector"
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
