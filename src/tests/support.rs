// In-server tests (`cargo pgrx test`): SQL behaviour of the type and the index.



/// Runs `sql` and returns `"SQLSTATE: message"` of the error it raises, or `"no error"`.
pub fn error_of(sql: &str) -> String {
    ensure_error_helper();
    Spi::get_one_with_args::<String>("SELECT vq_test_error_of($1)", &[sql.into()])
        .expect("SPI")
        .expect("not null")
}

/// Creates the PL/pgSQL helper that traps an error in a subtransaction.
fn ensure_error_helper() {
    Spi::run(
        "CREATE OR REPLACE FUNCTION vq_test_error_of(sql text) RETURNS text LANGUAGE plpgsql AS $$
         BEGIN EXECUTE sql; RETURN 'no error';
         EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$",
    )
    .expect("create helper");
}

/// Returns the single text value of a query.
pub fn text_of(sql: &str) -> String {
    Spi::get_one::<String>(sql).expect("SPI").expect("not null")
}

/// Returns the single float8 value of a query.
pub fn f64_of(sql: &str) -> f64 {
    Spi::get_one::<f64>(sql).expect("SPI").expect("not null")
}

/// Runs `sql` and returns one diagnostics item (`PG_EXCEPTION_HINT`, `PG_EXCEPTION_DETAIL`)
/// of the error it raises (empty if none).
pub fn error_item_of(sql: &str, item: &str) -> String {
    let function = format!("vq_test_{}_of", item.to_lowercase());
    Spi::run(&format!(
        "CREATE OR REPLACE FUNCTION {function}(sql text) RETURNS text LANGUAGE plpgsql AS $$
         DECLARE d text; BEGIN EXECUTE sql; RETURN '';
         EXCEPTION WHEN OTHERS THEN GET STACKED DIAGNOSTICS d = {item}; RETURN d; END $$"
    ))
    .expect("create helper");
    Spi::get_one_with_args::<String>(&format!("SELECT {function}($1)"), &[sql.into()])
        .expect("SPI")
        .unwrap_or_default()
}

/// Runs `sql` and returns the HINT of the error it raises (empty if none).
pub fn hint_of(sql: &str) -> String {
    error_item_of(sql, "PG_EXCEPTION_HINT")
}

/// Bytes of a hex string (`"00ff"` -> `[0, 255]`).
pub fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The `EXPLAIN (COSTS OFF)` plan of a query, one line per plan line.
pub fn plan_of(sql: &str) -> String {
    Spi::connect(|client| {
        client
            .select(&format!("EXPLAIN (COSTS OFF) {sql}"), None, &[])
            .unwrap()
            .map(|row| row.get::<String>(1).unwrap().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    })
}
