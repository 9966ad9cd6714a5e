// In-server security tests: user code of an index (expression, partial-index predicate)
// runs as the table owner in a security-restricted context with a safe search_path,
// whoever calls the SQL API; every SQL-callable function checks privileges.
// Included into `mod tests` in lib.rs.

/// Creates role sec_alice owning table sec_alice.t with an expression index and a partial
/// index whose code logs every call (user, search_path, restricted?) and, run by a
/// superuser, makes sec_alice superuser: the exploit of issue 11.
fn sec_setup() {
    error_of("SELECT 1"); // creates the error helper while still superuser
    Spi::run("CREATE ROLE sec_alice NOLOGIN").unwrap();
    Spi::run("CREATE SCHEMA sec_alice AUTHORIZATION sec_alice").unwrap();
    load_table("sec_alice.t", 8, &embeddings_like(300, 8, 5));
    Spi::run("ALTER TABLE sec_alice.t OWNER TO sec_alice").unwrap();
    Spi::run("SET LOCAL ROLE sec_alice").unwrap();
    Spi::run(
        "CREATE TABLE sec_alice.calls (n serial, usr text, path text, restricted bool);
         CREATE TABLE sec_alice.fail (x int);
         CREATE FUNCTION sec_alice.guard() RETURNS void LANGUAGE plpgsql AS $$
         DECLARE restricted bool;
         BEGIN
           BEGIN -- SET ROLE is refused only in a security-restricted operation
             PERFORM pg_catalog.set_config('role', current_user::text, true);
             RAISE SQLSTATE 'P0002';
           EXCEPTION
             WHEN insufficient_privilege THEN restricted := true;
             WHEN no_data_found THEN restricted := false;
           END;
           INSERT INTO sec_alice.calls (usr, path, restricted)
             VALUES (current_user, pg_catalog.current_setting('search_path'), restricted);
           IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
             EXECUTE 'ALTER ROLE sec_alice SUPERUSER';
           END IF;
           PERFORM pg_catalog.set_config('search_path', 'sec_alice', false);
           IF EXISTS (SELECT 1 FROM sec_alice.fail) THEN
             RAISE EXCEPTION 'sec_alice fails on purpose';
           END IF;
         END $$;
         CREATE FUNCTION sec_alice.f(v public.qvector) RETURNS public.qvector
           LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN PERFORM sec_alice.guard(); RETURN v; END $$;
         CREATE FUNCTION sec_alice.p(id int) RETURNS bool
           LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN PERFORM sec_alice.guard(); RETURN id % 2 = 0; END $$;
         CREATE INDEX t_expr_idx ON sec_alice.t USING qhnsw ((sec_alice.f(v)) qvector_l2_ops);
         CREATE INDEX t_part_idx ON sec_alice.t USING qhnsw (v qvector_l2_ops) WHERE sec_alice.p(id);",
    )
    .unwrap();
    Spi::run("RESET ROLE").unwrap();
}

/// Runs `sql` as `role` (None: the test's superuser) and asserts that the index code it ran,
/// ran as sec_alice, restricted, with the safe search_path, and left the caller's user and
/// settings alone; and that sec_alice did not become superuser.
fn sec_assert_runs_as_owner(role: Option<&str>, sql: &str) {
    Spi::run("DELETE FROM sec_alice.calls").unwrap();
    if let Some(role) = role {
        Spi::run(&format!("SET LOCAL ROLE {role}")).unwrap();
    }
    let user = text_of("SELECT current_user::text");
    let path = text_of("SELECT current_setting('search_path')");
    Spi::run(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    assert_eq!(text_of("SELECT current_user::text"), user, "{sql}");
    assert_eq!(
        text_of("SELECT current_setting('search_path')"),
        path,
        "{sql}"
    );
    Spi::run("RESET ROLE").unwrap();
    assert!(
        f64_of("SELECT count(*)::float8 FROM sec_alice.calls") > 0.0,
        "{sql}: the index code never ran"
    );
    assert_eq!(
        text_of(
            "SELECT string_agg(DISTINCT usr || ' restricted=' || restricted, ', ') FROM sec_alice.calls"
        ),
        "sec_alice restricted=true",
        "{sql}"
    );
    assert_eq!(
        text_of("SELECT path FROM sec_alice.calls ORDER BY n LIMIT 1"),
        "pg_catalog, pg_temp",
        "{sql}"
    );
    assert_eq!(
        text_of("SELECT rolsuper::text FROM pg_roles WHERE rolname = 'sec_alice'"),
        "false",
        "{sql}: the table owner became superuser"
    );
}

/// Every SQL API function a superuser runs on an expression index and a partial index
/// runs the owner's code as the owner, restricted (issue 11: the escalation exploit).
#[pg_test]
fn sec_superuser_runs_owner_code_as_owner() {
    sec_setup();
    for idx in ["sec_alice.t_expr_idx", "sec_alice.t_part_idx"] {
        for call in [
            format!("SELECT * FROM quantization_stats('{idx}')"),
            format!("SELECT * FROM quantization_stats('{idx}', 5)"),
            format!("SELECT * FROM quantization_optimize('{idx}', 0.9)"),
            format!("SELECT * FROM quantization_optimize('{idx}', 0.0, apply => true)"),
            format!("SELECT * FROM qhnsw_quantize('{idx}')"),
        ] {
            sec_assert_runs_as_owner(None, &call);
        }
    }
    assert_eq!(
        f64_of("SELECT vectors::float8 FROM quantization_stats('sec_alice.t_part_idx')"),
        150.0
    );
}

/// A non-superuser with SELECT on the table runs the owner's code as the owner too (never
/// as themselves); row-level security that applies to the caller refuses the table scans.
#[pg_test]
fn sec_reader_runs_owner_code_as_owner() {
    sec_setup();
    Spi::run("CREATE ROLE sec_bob NOLOGIN").unwrap();
    Spi::run("GRANT USAGE ON SCHEMA sec_alice TO sec_bob").unwrap();
    Spi::run("GRANT SELECT ON sec_alice.t TO sec_bob").unwrap();
    for idx in ["sec_alice.t_expr_idx", "sec_alice.t_part_idx"] {
        for call in [
            format!("SELECT * FROM quantization_stats('{idx}', 5)"),
            format!("SELECT * FROM quantization_optimize('{idx}', 0.9)"),
        ] {
            sec_assert_runs_as_owner(Some("sec_bob"), &call);
        }
    }
    Spi::run("ALTER TABLE sec_alice.t ENABLE ROW LEVEL SECURITY").unwrap();
    Spi::run("SET LOCAL ROLE sec_bob").unwrap();
    assert_eq!(
        sqlapi_error_as_role("SELECT * FROM quantization_stats('sec_alice.t_expr_idx')"),
        "42501: permission denied for table sec_alice.t: row-level security applies to the current user and this function reads every row"
    );
    assert_eq!(
        sqlapi_error_as_role("SELECT * FROM qhnsw_index_meta('sec_alice.t_expr_idx')"),
        "no error"
    );
    Spi::run("RESET ROLE").unwrap();
    assert_eq!(
        error_of("SELECT * FROM quantization_stats('sec_alice.t_expr_idx')"),
        "no error"
    );
}

/// An ERROR raised by the owner's code gives the caller back their own user, a role
/// change that is allowed again (not restricted) and their search_path.
#[pg_test]
fn sec_error_in_owner_code_restores_the_caller() {
    sec_setup();
    Spi::run("CREATE ROLE sec_carol NOLOGIN").unwrap();
    Spi::run("INSERT INTO sec_alice.fail VALUES (1)").unwrap();
    let me = text_of("SELECT current_user::text");
    let path = text_of("SELECT current_setting('search_path')");
    for call in [
        "SELECT * FROM quantization_stats('sec_alice.t_expr_idx')",
        "SELECT * FROM quantization_stats('sec_alice.t_part_idx', 5)",
        "SELECT * FROM qhnsw_quantize('sec_alice.t_part_idx')",
    ] {
        assert!(
            error_of(call).starts_with("P0001: sec_alice fails on purpose"),
            "{call}: {}",
            error_of(call)
        );
        assert_eq!(text_of("SELECT current_user::text"), me);
        assert_eq!(text_of("SELECT current_setting('search_path')"), path);
        Spi::run("SET LOCAL ROLE sec_carol").unwrap();
        assert_eq!(text_of("SELECT current_user::text"), "sec_carol");
        Spi::run("RESET ROLE").unwrap();
    }
    assert_eq!(
        text_of("SELECT rolsuper::text FROM pg_roles WHERE rolname = 'sec_alice'"),
        "false"
    );
}

/// qhnsw_check and qhnsw_check_problems need SELECT on the table, like quantization_stats.
#[pg_test]
fn sec_check_needs_select() {
    sqlapi_setup("sec_chk", 200, 8, Metric::L2, "quantizer = 'sq8'");
    error_of("SELECT 1");
    Spi::run("CREATE ROLE sec_dave NOLOGIN").unwrap();
    Spi::run("SET LOCAL ROLE sec_dave").unwrap();
    let denied = "42501: permission denied for table public.sec_chk";
    assert_eq!(
        sqlapi_error_as_role("SELECT * FROM qhnsw_check('sec_chk_idx')"),
        denied
    );
    assert_eq!(
        sqlapi_error_as_role("SELECT qhnsw_check_problems('sec_chk_idx')"),
        denied
    );
    Spi::run("RESET ROLE").unwrap();
    Spi::run("GRANT SELECT ON sec_chk TO sec_dave").unwrap();
    Spi::run("SET LOCAL ROLE sec_dave").unwrap();
    assert_eq!(
        f64_of("SELECT count(*)::float8 FROM qhnsw_check('sec_chk_idx')"),
        0.0
    );
    Spi::run("RESET ROLE").unwrap();
}

/// The expression and predicate are deparsed under the restricted search_path, so objects
/// the caller's search_path finds (here in public) are schema-qualified and still resolve.
#[pg_test]
fn sec_deparsed_sql_is_schema_qualified() {
    load_table("sec_pub", 8, &embeddings_like(200, 8, 6));
    Spi::run(
        "CREATE FUNCTION public.sec_same(v public.qvector) RETURNS public.qvector
           LANGUAGE sql IMMUTABLE AS 'SELECT v';
         CREATE FUNCTION public.sec_keep(id int) RETURNS bool
           LANGUAGE sql IMMUTABLE AS 'SELECT id < 120';
         CREATE INDEX sec_pub_idx ON sec_pub USING qhnsw ((sec_same(v)) qvector_l2_ops)
           WHERE sec_keep(id);",
    )
    .unwrap();
    // sample_queries: the exact search evaluates the deparsed expression and predicate too.
    assert_eq!(
        f64_of("SELECT vectors::float8 FROM quantization_stats('sec_pub_idx', 5)"),
        120.0
    );
    assert_eq!(
        f64_of("SELECT vectors::float8 FROM qhnsw_quantize('sec_pub_idx')"),
        120.0
    );
}
