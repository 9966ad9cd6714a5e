// In-server tests of index builds: worker threads (bounded, joined, never started by
// INSERT) and options checked against the dimensions when the index learns them.

/// Threads of this backend process right now.
fn backend_threads() -> usize {
    std::fs::read_dir("/proc/self/task").expect("/proc/self/task").count()
}

/// Threads of this backend once exited threads are gone from /proc (the kernel removes a
/// joined thread's entry a moment after the join returns; a live thread never goes away).
fn settled_backend_threads() -> usize {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while backend_threads() > 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    backend_threads()
}

/// Worker threads started by builds in this backend so far.
fn threads_started() -> usize {
    crate::am::threads::THREADS_STARTED.load(std::sync::atomic::Ordering::Relaxed)
}

/// CREATE INDEX uses max_parallel_maintenance_workers threads (none for 0) and leaves none
/// behind; an INSERT that converts a staged index starts none.
#[pg_test]
fn build_threads_are_bounded_joined_and_never_started_by_insert() {
    assert_eq!(settled_backend_threads(), 1, "a backend starts single-threaded");
    load_table("vq_thr", 16, &embeddings_like(3000, 16, 5));
    assert_eq!(settled_backend_threads(), 1, "loading rows starts no thread");

    Spi::run("SET max_parallel_maintenance_workers = 0").unwrap();
    let before = threads_started();
    Spi::run("CREATE INDEX vq_thr_0 ON vq_thr USING qhnsw (v qvector_l2_ops)").unwrap();
    assert_eq!(threads_started(), before, "0 workers: the backend builds alone");
    assert_eq!(settled_backend_threads(), 1, "no thread after a build without workers");

    Spi::run("SET max_parallel_maintenance_workers = 2").unwrap();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let before = threads_started();
    Spi::run("CREATE INDEX vq_thr_2 ON vq_thr USING qhnsw (v qvector_l2_ops)").unwrap();
    assert_eq!(threads_started() - before, 2.min(cores), "2 workers, at most the cores");
    assert_eq!(settled_backend_threads(), 1, "every build thread joined");
    Spi::run("REINDEX INDEX vq_thr_2").unwrap();
    assert_eq!(settled_backend_threads(), 1, "every REINDEX thread joined");

    // An index created on an empty table converts its staged rows at the 2000th INSERT.
    Spi::run("CREATE TABLE vq_thr_ins (id int, v qvector(16))").unwrap();
    Spi::run("CREATE INDEX vq_thr_ins_idx ON vq_thr_ins USING qhnsw (v qvector_l2_ops)").unwrap();
    let before = threads_started();
    Spi::run("INSERT INTO vq_thr_ins SELECT id, v FROM vq_thr WHERE id < 2500").unwrap();
    assert!(
        Spi::get_one::<bool>("SELECT trained FROM qhnsw_index_meta('vq_thr_ins_idx')").unwrap().unwrap(),
        "the staged index was converted"
    );
    assert_eq!(text_of("SELECT method FROM qhnsw_index_meta('vq_thr_ins_idx')"), "sq8");
    assert_eq!(threads_started(), before, "INSERT starts no worker thread");
    assert_eq!(settled_backend_threads(), 1, "INSERT leaves no thread (no rayon global pool either)");
}

/// Options that cannot fit the column's dimensions fail at CREATE INDEX, not at the
/// 2000th INSERT; an unconstrained column is checked at its first row.
#[pg_test]
fn build_options_checked_against_dimensions_when_known() {
    Spi::run("CREATE TABLE vq_optdim (v qvector(16))").unwrap();
    assert_eq!(
        error_of("CREATE INDEX ON vq_optdim USING qhnsw (v qvector_l2_ops) WITH (quantizer = 'pq', pq_subvectors = 7)"),
        "22023: cannot train the quantizer: pq_subvectors (7) must divide the number of dimensions (16)"
    );
    assert_eq!(
        error_of("CREATE INDEX ON vq_optdim USING qhnsw (v qvector_l2_ops) WITH (quantizer = 'pq', pq_subvectors = 32)"),
        "22023: cannot train the quantizer: pq_subvectors (32) must divide the number of dimensions (16)"
    );
    // A valid configuration on the empty table takes 2100 rows through its conversion.
    Spi::run("CREATE INDEX vq_optdim_ok ON vq_optdim USING qhnsw (v qvector_l2_ops) WITH (quantizer = 'pq', pq_subvectors = 4)").unwrap();
    load_rows_into("vq_optdim", 16, 2100, 6);
    assert_eq!(text_of("SELECT method || ' ' || code_bytes FROM qhnsw_index_meta('vq_optdim_ok')"), "pq 4");

    // Unconstrained column: the index cannot know the dimensions before the first row.
    Spi::run("CREATE TABLE vq_optfree (v qvector)").unwrap();
    Spi::run("CREATE INDEX vq_optfree_idx ON vq_optfree USING qhnsw (v qvector_l2_ops) WITH (quantizer = 'pq', pq_subvectors = 7)").unwrap();
    let row16 = format!("'{}'", format_vector(&embeddings_like(1, 16, 7)));
    assert_eq!(
        error_of(&format!("INSERT INTO vq_optfree VALUES ({row16})")),
        "22023: cannot train the quantizer: pq_subvectors (7) must divide the number of dimensions (16)"
    );
    Spi::run("ALTER INDEX vq_optfree_idx SET (pq_subvectors = 8)").unwrap();
    Spi::run(&format!("INSERT INTO vq_optfree VALUES ({row16})")).unwrap();
    assert_eq!(Spi::get_one::<i64>("SELECT count(*) FROM vq_optfree").unwrap(), Some(1));
}

/// ALTER INDEX checks what it can without data; a pq_subvectors that no longer fits a
/// staged index never makes an INSERT fail (the conversion falls back to the default).
#[pg_test]
fn build_altered_options_never_break_inserts() {
    Spi::run("CREATE TABLE vq_optalt (v qvector(16))").unwrap();
    Spi::run("CREATE INDEX vq_optalt_idx ON vq_optalt USING qhnsw (v qvector_l2_ops) WITH (quantizer = 'pq', pq_subvectors = 4)").unwrap();
    assert_eq!(
        error_of("ALTER INDEX vq_optalt_idx SET (m = 40)"),
        "22023: ef_construction must be greater than or equal to 2 * m"
    );
    assert_eq!(error_of("ALTER INDEX vq_optalt_idx SET (pq_bits = 5)"), "22023: pq_bits must be 4 or 8");
    Spi::run("ALTER INDEX vq_optalt_idx SET (pq_subvectors = 7)").unwrap();
    load_rows_into("vq_optalt", 16, 2100, 8);
    assert_eq!(Spi::get_one::<i64>("SELECT count(*) FROM vq_optalt").unwrap(), Some(2100));
    // Converted with the default pq_subvectors for 16 dimensions (2 sub-vectors, 2 bytes).
    assert_eq!(text_of("SELECT method || ' ' || code_bytes FROM qhnsw_index_meta('vq_optalt_idx')"), "pq 2");
    Spi::run("INSERT INTO vq_optalt SELECT v FROM vq_optalt LIMIT 10").unwrap();
}

/// Inserts `n` seeded `dims`-dimensional rows into a one-column table, one INSERT each.
fn load_rows_into(table: &str, dims: usize, n: usize, seed: u64) {
    let data = embeddings_like(n, dims, seed);
    for row in data.chunks_exact(dims) {
        Spi::run(&format!("INSERT INTO {table} VALUES ('{}')", format_vector(row))).unwrap();
    }
}

/// The progress phase names.
#[pg_test]
fn build_phase_names() {
    let name = |phase: i64| {
        Spi::get_one::<String>(&format!(
            "SELECT pg_indexam_progress_phasename((SELECT oid FROM pg_am WHERE amname = 'qhnsw'), {phase})"
        ))
        .unwrap()
    };
    assert_eq!(name(2).as_deref(), Some("loading tuples"));
    assert_eq!(name(5).as_deref(), Some("building graph"));
    assert_eq!(name(6).as_deref(), Some("writing index pages"));
    assert_eq!(name(7).as_deref(), Some("loading tuples as codes (memory-bounded)"));
    assert_eq!(name(8).as_deref(), Some("inserting tuples into the on-page graph (memory-bounded)"));
    assert_eq!(name(99), None);
}

/// Rows linked in memory and rows inserted on pages by bounded builds of this backend so far.
fn bounded_rows() -> (usize, usize) {
    use crate::am::bounded::BOUNDED_ROWS;
    use std::sync::atomic::Ordering;
    (BOUNDED_ROWS[0].load(Ordering::Relaxed), BOUNDED_ROWS[1].load(Ordering::Relaxed))
}

/// Recall@10 (default ef_search, 100 queries) of a memory-bounded build is within 0.01 of
/// the in-memory build on the same 10k x 32 rows, for sq8, sq4, pq and binary; the bounded
/// build (maintenance_work_mem = 1MB) links part of the rows in memory and inserts the rest
/// on pages, and indexes every row.
#[pg_test]
fn bounded_build_recall_matches_in_memory_build() {
    let (n, dims, nq) = (10_000, 32, 100);
    let base = embeddings_like(n, dims, 11);
    let queries = queries_like(nq, dims, 11);
    load_table("vq_bounded", dims, &base);
    let truth = exact_knn(&base, &queries, dims, 10, Metric::L2);
    for quantizer in ["sq8", "sq4", "pq", "binary"] {
        let mut recall = Vec::new();
        for mem in ["64MB", "1MB"] {
            let before = bounded_rows();
            Spi::run(&format!("SET maintenance_work_mem = '{mem}'")).unwrap();
            Spi::run(&format!(
                "CREATE INDEX vq_bounded_idx ON vq_bounded USING qhnsw (v qvector_l2_ops) WITH (quantizer = '{quantizer}')"
            ))
            .unwrap();
            let after = bounded_rows();
            let (linked, inserted) = (after.0 - before.0, after.1 - before.1);
            if mem == "1MB" {
                assert!(linked > 500 && inserted > 500, "{quantizer}: {linked} linked, {inserted} inserted");
                assert_eq!(linked + inserted, n, "{quantizer}: every row is indexed");
            } else {
                assert_eq!((linked, inserted), (0, 0), "{quantizer}: 64MB builds in memory");
            }
            let nodes = Spi::get_one::<i64>("SELECT vectors FROM qhnsw_index_meta('vq_bounded_idx')").unwrap();
            assert_eq!(nodes, Some(n as i64), "{quantizer} {mem}");
            let got = index_results("vq_bounded", Metric::L2, &queries, dims, 10);
            let r = recall_at(10, &truth, &got);
            pgrx::log!("bounded build recall@10 {quantizer} {mem}: {r:.4} ({linked} linked, {inserted} inserted)");
            recall.push(r);
            Spi::run("DROP INDEX vq_bounded_idx").unwrap();
        }
        assert!(
            recall[1] >= recall[0] - 0.01,
            "{quantizer}: bounded recall@10 {:.4} vs in-memory {:.4}",
            recall[1],
            recall[0]
        );
    }
}

/// A bounded build whose codes do not fit beside its graph writes them to a spill file:
/// past temp_file_limit it stops with 53400 and leaves no file behind; with room it
/// indexes every row, and no spill file outlives the build.
#[pg_test]
fn bounded_build_spill_obeys_temp_file_limit() {
    let (n, dims) = (10_000, 32);
    load_table("vq_spill", dims, &embeddings_like(n, dims, 12));
    let spill_files = || {
        std::fs::read_dir("base/pgsql_tmp")
            .map(|d| d.filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().contains(".qhnsw")).count())
            .unwrap_or(0)
    };
    // sq8 codes of 10k x 32 are 320 kB; 1MB holds the graph of ~5000 rows only.
    Spi::run("SET maintenance_work_mem = '1MB'").unwrap();
    Spi::run("SET temp_file_limit = '100kB'").unwrap();
    let create = "CREATE INDEX vq_spill_idx ON vq_spill USING qhnsw (v qvector_l2_ops) WITH (quantizer = 'sq8')";
    assert_eq!(
        error_of(create),
        "53400: qhnsw build: spill file size exceeds temp_file_limit (100kB)"
    );
    assert_eq!(spill_files(), 0);
    Spi::run("SET temp_file_limit = '1MB'").unwrap();
    let before = bounded_rows();
    Spi::run(create).unwrap();
    let after = bounded_rows();
    assert_eq!(after.0 - before.0 + after.1 - before.1, n, "every row is indexed");
    assert!(after.0 - before.0 > 4000, "the graph alone fits ~5000 rows: {:?}", (before, after));
    assert_eq!(spill_files(), 0);
    Spi::run("RESET temp_file_limit").unwrap();
}
