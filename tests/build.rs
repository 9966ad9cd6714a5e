//! Server-level tests of index builds: cancelling CREATE INDEX (threads stop within a
//! second, the server never restarts, a later build is sound) and build progress in
//! `pg_stat_progress_create_index`. Run with `cargo test --release --test build -- --ignored`.

mod common;
use common::*;

use postgres::error::SqlState;
use std::thread;
use std::time::{Duration, Instant};

/// Rows of the cancellation test.
const CANCEL_ROWS: i64 = 200_000;
/// The build the cancellation test cancels, then completes (a lighter graph than the
/// default keeps it short; m = 8 gave recall@10 0.886 here, too low).
const CANCEL_BUILD: &str =
    "CREATE INDEX items_idx ON items USING qhnsw (v qvector_l2_ops) WITH (m = 12, ef_construction = 48)";
/// Dimensions of the cancellation test.
const CANCEL_DIMS: usize = 128;

/// Asserts the server log shows no crash and no Rust panic.
fn assert_clean_log(cluster: &Cluster) {
    let log = std::fs::read_to_string(cluster.log_path()).unwrap_or_default();
    for bad in [
        "terminated by signal",
        "panicked",
        "server process",
        "PANIC",
    ] {
        assert!(
            !log.contains(bad),
            "server log contains {bad:?}:\n{}",
            cluster.log_tail(40)
        );
    }
}

/// Runs `CREATE INDEX` on `c` and cancels it from a second connection after `delay`;
/// returns how long the statement took to return after the cancel, and the build phase
/// the cancel found.
fn cancel_after(
    cluster: &Cluster,
    c: &mut postgres::Client,
    pid: i32,
    delay: Duration,
) -> (Duration, String) {
    let conninfo = cluster.conninfo();
    let canceller = thread::spawn(move || {
        let mut admin = postgres::Client::connect(&conninfo, postgres::NoTls).unwrap();
        thread::sleep(delay);
        let phase: Option<String> = admin
            .query_opt(
                "SELECT phase FROM pg_stat_progress_create_index WHERE pid = $1",
                &[&pid],
            )
            .unwrap()
            .map(|r| r.get(0));
        let at = Instant::now();
        let sent: bool = admin
            .query_one("SELECT pg_cancel_backend($1)", &[&pid])
            .unwrap()
            .get(0);
        assert!(sent, "pg_cancel_backend({pid}) found no backend");
        (at, phase.unwrap_or_default())
    });
    let result = c.batch_execute(CANCEL_BUILD);
    let returned = Instant::now();
    let (cancelled_at, phase) = canceller.join().unwrap();
    let err = result.expect_err("CREATE INDEX finished before its cancel");
    assert_eq!(err.code(), Some(&SqlState::QUERY_CANCELED), "{err}");
    (returned.saturating_duration_since(cancelled_at), phase)
}

/// Cancel CREATE INDEX on 200k x 128 rows 5 times at seeded random moments (plus one
/// statement_timeout) in one session: each returns 57014 within 1 s, the server never
/// restarts, nothing panics, and a final build reaches the usual recall.
#[test]
#[ignore]
fn cancelled_builds_stop_within_a_second() {
    let cluster = Cluster::primary("build_cancel");
    let mut c = cluster.connect();
    setup_table(&mut c, "items", CANCEL_DIMS);
    // Many small clusters: each query's neighbours sit in one cluster of ~100 rows.
    let data = Data::new(CANCEL_DIMS, 2000, 41);
    let t = Instant::now();
    copy_rows(&mut c, "items", &data, 0..CANCEL_ROWS);
    println!(
        "  loaded {CANCEL_ROWS} rows in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let postmaster = cluster.postmaster_pid();
    let pid: i32 = c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    c.batch_execute("SET max_parallel_maintenance_workers = 2; SET maintenance_work_mem = '1GB'")
        .unwrap();
    let mut rng = Rng::new(7);
    for round in 0..5 {
        let delay = Duration::from_millis(200 + rng.below(5800) as u64);
        let (latency, phase) = cancel_after(&cluster, &mut c, pid, delay);
        println!(
            "  cancel {round} after {:.2} s ({phase}): returned {:.3} s after the cancel",
            delay.as_secs_f64(),
            latency.as_secs_f64()
        );
        assert!(
            latency < Duration::from_secs(1),
            "cancel {round} took {latency:?}"
        );
    }
    c.batch_execute("SET statement_timeout = '2500ms'").unwrap();
    let t = Instant::now();
    let err = c
        .batch_execute(CANCEL_BUILD)
        .expect_err("CREATE INDEX finished within statement_timeout");
    let took = t.elapsed();
    println!(
        "  statement_timeout 2.5 s: returned after {:.3} s",
        took.as_secs_f64()
    );
    assert_eq!(err.code(), Some(&SqlState::QUERY_CANCELED), "{err}");
    assert!(
        took < Duration::from_millis(3500),
        "statement_timeout took {took:?}"
    );
    c.batch_execute("RESET statement_timeout").unwrap();

    let same: i32 = c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    assert_eq!(same, pid, "the session survived every cancel");
    assert_eq!(
        cluster.postmaster_pid(),
        postmaster,
        "the server never restarted"
    );
    assert_clean_log(&cluster);

    let t = Instant::now();
    c.batch_execute(CANCEL_BUILD).unwrap();
    println!("  final CREATE INDEX: {:.1} s", t.elapsed().as_secs_f64());
    force_index(&mut c, "items", "items_idx", &data);
    c.batch_execute("SET qhnsw.ef_search = 100").unwrap();
    let all: Vec<i64> = (0..CANCEL_ROWS).collect();
    let recall =
        recall_at_k(&mut c, "items", &data, &all, 50, 10).live_only("after 6 cancelled builds");
    assert!(recall >= 0.9, "recall@10 {recall:.4}");
    assert_eq!(cluster.postmaster_pid(), postmaster);
    assert_clean_log(&cluster);
}

/// Signals a worker thread must block (bit signo - 1): SIGINT, SIGQUIT, SIGUSR1, SIGUSR2,
/// SIGALRM, SIGTERM.
const WORKER_MUST_BLOCK: u64 = (1 << 1) | (1 << 2) | (1 << 9) | (1 << 11) | (1 << 13) | (1 << 14);

/// Thread ids of process `pid`.
fn backend_tasks(pid: i32) -> Vec<i32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| e.file_name().to_string_lossy().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The blocked-signal mask of thread `tid` (None once it exited).
fn blocked_signals(tid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("SigBlk:"))?;
    u64::from_str_radix(line["SigBlk:".len()..].trim(), 16).ok()
}

/// One row of pg_stat_progress_create_index: (phase, tuples_done, tuples_total).
type ProgressRow = (String, i64, i64);

/// During a build of 100k rows the phase names change and tuples_done rises to
/// tuples_total; the backend has exactly one worker thread (the setting is 1), with every
/// signal blocked.
#[test]
#[ignore]
fn build_progress_is_reported() {
    const ROWS: i64 = 100_000;
    let cluster = Cluster::primary("build_progress");
    let mut c = cluster.connect();
    setup_table(&mut c, "items", 16);
    let data = Data::new(16, 20, 43);
    copy_rows(&mut c, "items", &data, 0..ROWS);
    let pid: i32 = c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    c.batch_execute("SET max_parallel_maintenance_workers = 1")
        .unwrap();
    let conninfo = cluster.conninfo();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = done.clone();
    let poller = thread::spawn(move || {
        let mut watch = postgres::Client::connect(&conninfo, postgres::NoTls).unwrap();
        let stmt = watch
            .prepare(
                "SELECT phase, coalesce(tuples_done, 0), coalesce(tuples_total, 0) \
                 FROM pg_stat_progress_create_index WHERE pid = $1",
            )
            .unwrap();
        let mut seen: Vec<ProgressRow> = Vec::new();
        let (mut most_threads, mut unmasked) = (0, Vec::new());
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            for row in watch.query(&stmt, &[&pid]).unwrap() {
                let sample: ProgressRow = (row.get(0), row.get(1), row.get(2));
                if seen.last() != Some(&sample) {
                    seen.push(sample);
                }
            }
            let tasks = backend_tasks(pid);
            most_threads = most_threads.max(tasks.len());
            for tid in tasks.into_iter().filter(|&tid| tid != pid) {
                if let Some(mask) = blocked_signals(tid) {
                    if mask & WORKER_MUST_BLOCK != WORKER_MUST_BLOCK {
                        unmasked.push((tid, format!("{mask:x}")));
                    }
                }
            }
            thread::sleep(Duration::from_millis(5));
        }
        (seen, most_threads, unmasked)
    });
    let t = Instant::now();
    c.batch_execute("CREATE INDEX items_idx ON items USING qhnsw (v qvector_l2_ops)")
        .unwrap();
    println!("  CREATE INDEX: {:.1} s", t.elapsed().as_secs_f64());
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (seen, most_threads, unmasked) = poller.join().unwrap();
    println!("  most threads of the backend during the build: {most_threads}");
    assert_eq!(
        most_threads, 2,
        "max_parallel_maintenance_workers = 1: one worker thread"
    );
    assert!(
        unmasked.is_empty(),
        "worker threads with signals not blocked: {unmasked:?}"
    );
    let mut phases: Vec<&str> = Vec::new();
    for (phase, _, _) in &seen {
        if phases.last() != Some(&phase.as_str()) {
            phases.push(phase);
        }
    }
    println!("  phases seen: {phases:?} ({} samples)", seen.len());
    assert!(
        phases.contains(&"building index: loading tuples")
            && phases.contains(&"building index: building graph"),
        "phases seen: {phases:?}"
    );
    let graph: Vec<&ProgressRow> = seen
        .iter()
        .filter(|(phase, _, _)| phase == "building index: building graph")
        .collect();
    assert!(
        graph.iter().all(|(_, _, total)| *total == ROWS),
        "graph totals: {graph:?}"
    );
    assert!(
        graph.windows(2).all(|w| w[0].1 <= w[1].1),
        "tuples_done never goes backwards: {graph:?}"
    );
    let distinct = graph
        .iter()
        .map(|g| g.1)
        .collect::<std::collections::BTreeSet<_>>();
    assert!(
        distinct.len() >= 3,
        "tuples_done rises during the graph build: {graph:?}"
    );
    let last = graph.last().map_or(0, |g| g.1);
    assert!(
        last * 2 >= ROWS,
        "tuples_done reached {last} of {ROWS}: {graph:?}"
    );
    assert!(
        seen.iter().any(
            |(phase, done, total)| phase == "building index: writing index pages"
                && done == total
                && *total == ROWS
        ),
        "tuples_done reaches tuples_total when the pages are written: {:?}",
        &seen[seen.len().saturating_sub(5)..]
    );
    let loading_done = seen
        .iter()
        .filter(|(phase, _, _)| phase == "building index: loading tuples")
        .map(|s| s.1)
        .max()
        .unwrap_or(0);
    assert!(loading_done > 0, "rows counted while loading: {seen:?}");
}

/// RssAnon of process `pid` in KiB (None once it exited).
fn rss_anon_kib(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("RssAnon:"))?;
    line["RssAnon:".len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// CREATE INDEX on 200k x 384 rows (vectors TOASTed out of line) with maintenance_work_mem
/// = 64MB (float4 rows alone would take 293 MiB): the building backend's peak RssAnon,
/// sampled every 5 ms, stays within maintenance_work_mem + 64 MiB; the build says it is
/// memory-bounded, reports its bounded phases, indexes every row, and reaches the usual
/// recall.
#[test]
#[ignore]
fn bounded_build_stays_within_maintenance_work_mem() {
    const ROWS: i64 = 200_000;
    const DIMS: usize = 384;
    const MWM_MIB: u64 = 64;
    let cluster = Cluster::primary("build_memory");
    let mut c = cluster.connect();
    setup_table(&mut c, "items", DIMS);
    // Rows past the TOAST threshold with the vector stored out of line: every read
    // detoasts it, which must not accumulate over the build's heap scans.
    c.batch_execute(
        "ALTER TABLE items ADD COLUMN pad text DEFAULT repeat('x', 600);
         ALTER TABLE items ALTER COLUMN pad SET STORAGE PLAIN, ALTER COLUMN v SET STORAGE EXTERNAL",
    )
    .unwrap();
    let data = Data::new(DIMS, 2000, 45);
    let t = Instant::now();
    copy_rows_binary(&mut c, "items", &data, 0..ROWS);
    println!("  loaded {ROWS} rows in {:.1} s", t.elapsed().as_secs_f64());
    drop(c);
    let notices = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = notices.clone();
    let mut config: postgres::Config = cluster.conninfo().parse().unwrap();
    config.notice_callback(move |n| sink.lock().unwrap().push(n.message().to_string()));
    let mut c = config.connect(postgres::NoTls).unwrap();
    let pid: i32 = c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    c.batch_execute(&format!(
        "SET maintenance_work_mem = '{MWM_MIB}MB'; SET max_parallel_maintenance_workers = 2; SET statement_timeout = 0"
    ))
    .unwrap();
    let before = rss_anon_kib(pid).unwrap();
    let conninfo = cluster.conninfo();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = done.clone();
    let sampler = thread::spawn(move || {
        let mut watch = postgres::Client::connect(&conninfo, postgres::NoTls).unwrap();
        let (mut peak, mut phases) = (0u64, Vec::<String>::new());
        let mut last_poll = Instant::now();
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            peak = peak.max(rss_anon_kib(pid).unwrap_or(0));
            if last_poll.elapsed() >= Duration::from_millis(200) {
                last_poll = Instant::now();
                let row = watch
                    .query_opt(
                        "SELECT phase FROM pg_stat_progress_create_index WHERE pid = $1",
                        &[&pid],
                    )
                    .unwrap();
                if let Some(phase) = row.map(|r| r.get::<_, String>(0)) {
                    if phases.last() != Some(&phase) {
                        phases.push(phase);
                    }
                }
            }
            thread::sleep(Duration::from_millis(5));
        }
        (peak, phases)
    });
    let t = Instant::now();
    c.batch_execute(
        "CREATE INDEX items_idx ON items USING qhnsw (v qvector_l2_ops) WITH (quantizer = 'sq8')",
    )
    .unwrap();
    let took = t.elapsed();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (peak, phases) = sampler.join().unwrap();
    println!(
        "  CREATE INDEX: {:.1} s; RssAnon before {} MiB, peak {} MiB (limit {} MiB)",
        took.as_secs_f64(),
        before >> 10,
        peak >> 10,
        MWM_MIB + 64
    );
    println!("  phases: {phases:?}");
    let notices = notices.lock().unwrap().clone();
    println!("  notices: {notices:?}");
    assert!(
        peak <= (MWM_MIB + 64) << 10,
        "peak RssAnon {} MiB > maintenance_work_mem + 64 MiB",
        peak >> 10
    );
    assert!(
        notices.iter().any(|n| n.contains("memory-bounded build")),
        "no memory-bounded NOTICE: {notices:?}"
    );
    // The sq8 codes (73 MiB) do not fit beside the graph: they spill, and the graph of
    // all 200k rows is linked in memory.
    assert!(
        notices.iter().any(|n| n.contains(
            "200000 rows linked in memory from sq8 codes (codes in a spill file), 0 inserted"
        )),
        "no spill NOTICE: {notices:?}"
    );
    assert!(
        phases
            .iter()
            .any(|p| p == "building index: loading tuples as codes (memory-bounded)"),
        "phases: {phases:?}"
    );
    let vectors: i64 = c
        .query_one("SELECT vectors FROM qhnsw_index_meta('items_idx')", &[])
        .unwrap()
        .get(0);
    assert_eq!(vectors, ROWS, "every row is indexed");
    force_index(&mut c, "items", "items_idx", &data);
    let all: Vec<i64> = (0..ROWS).collect();
    let recall = recall_at_k(&mut c, "items", &data, &all, 30, 10).live_only("bounded build");
    assert!(recall >= 0.9, "recall@10 {recall:.4}");
    assert_clean_log(&cluster);
}
