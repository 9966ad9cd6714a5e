//! Server-level test of a major-version move (issue 18): a database with `qhnsw` indexes
//! dumped from PostgreSQL 15 (`VQ_PG_BIN`, default Debian's 15) with `pg_dump -Fc` and
//! restored with `pg_restore` (to a script, replayed by `psql` after dropping the 15.20-only
//! `pg_attver` column options, see [`drop_pg_attver`]) into PostgreSQL 18 (`VQ_PG18_BIN`, the wheel that
//! `install_pg18` in scripts/common.sh puts in place). The restore re-creates the
//! extension and rebuilds the indexes on 18; the test then checks that the stored vectors
//! are byte-for-byte the same text, that the index definitions survived, that the indexes
//! answer queries (recall@10 against exact search, the plan uses the index), that they
//! take new rows, and that `qhnsw_check` finds nothing.
//!
//! The extension must be installed in both builds. Without `VQ_PG18_BIN` (or with no
//! `postgres` binary there) the test prints a loud SKIPPED line, unless `VQ_REQUIRE_PG18=1`
//! (scripts/test.sh sets it), which turns that into a failure.
//! Run: `VQ_PG18_BIN=... cargo test --release --test upgrade -- --ignored --nocapture`.

mod common;

use common::*;
use postgres::{Client, NoTls};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The PostgreSQL 18 binaries, or None (with the reason) when they are not installed.
fn pg18_bin() -> Result<String, String> {
    let bin = std::env::var("VQ_PG18_BIN")
        .map_err(|_| "VQ_PG18_BIN is not set (PostgreSQL 18: PG_MAJOR=18 bash scripts/setup.sh)")?;
    if Path::new(&bin).join("postgres").exists() {
        Ok(bin)
    } else {
        Err(format!("VQ_PG18_BIN={bin} holds no postgres binary"))
    }
}

/// A throwaway PostgreSQL 18 cluster; stopped (immediate) and deleted on drop.
struct Server18 {
    bin: String,
    root: PathBuf,
    data: PathBuf,
    port: u16,
}

impl Server18 {
    /// initdb + start with the binaries in `bin`.
    fn start(bin: &str) -> Server18 {
        let root = make_root("pg18");
        let s = Server18 {
            bin: bin.to_string(),
            data: root.join("data"),
            root,
            port: free_port(),
        };
        s.run_ok(
            "initdb",
            &[
                "-D",
                s.path(&s.data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let conf = format!(
            "\nport = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             shared_buffers = 64MB\nautovacuum = off\nmax_connections = 20\n",
            s.port,
            s.root.display()
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(s.data.join("postgresql.conf"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, conf.as_bytes()))
            .unwrap();
        let log = s.root.join("server.log");
        s.run_ok(
            "pg_ctl",
            &[
                "-D",
                s.path(&s.data),
                "-l",
                s.path(&log),
                "-w",
                "-t",
                "120",
                "start",
            ],
        );
        s
    }

    /// A path as &str (every path here is UTF-8).
    fn path<'a>(&self, p: &'a Path) -> &'a str {
        p.to_str().unwrap()
    }

    /// Runs a binary of this build as `postgres`, panicking with its output on failure.
    fn run_ok(&self, bin: &str, args: &[&str]) {
        let out = pg_cmd_at(&self.bin, bin, args);
        assert!(
            out.status.success(),
            "PostgreSQL 18 {bin} {args:?} failed: {}\n{}\n--- server log tail ---\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.root.join("server.log")).unwrap_or_default()
        );
    }

    fn connect(&self) -> Client {
        Client::connect(
            &format!(
                "host=127.0.0.1 port={} user=postgres dbname=postgres connect_timeout=10",
                self.port
            ),
            NoTls,
        )
        .expect("connect to the PostgreSQL 18 cluster")
    }
}

impl Drop for Server18 {
    fn drop(&mut self) {
        let _ = pg_cmd_at(
            &self.bin,
            "pg_ctl",
            &["-D", self.path(&self.data), "-m", "immediate", "-w", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// One text line per row (`id v`), hashed on the server: equal on both sides iff every
/// vector prints the same.
fn content_md5(c: &mut Client, table: &str) -> (i64, String) {
    let row = c
        .query_one(
            &format!("SELECT count(*), md5(string_agg(id || ' ' || v::text, E'\\n' ORDER BY id)) FROM {table}"),
            &[],
        )
        .unwrap();
    (row.get(0), row.get(1))
}

/// Copies the restore script `from` to `to` without the column options
/// `ALTER TABLE ONLY t ALTER COLUMN c SET (pg_attver=N);` and returns how many it dropped.
/// Debian's PostgreSQL 15.20 gives every column that option and dumps it; PostgreSQL 18.6
/// rejects it ("unrecognized parameter"), which rolls back the whole CREATE TABLE. Any other
/// column option is kept, so a restore error still fails the test.
fn drop_pg_attver(from: &Path, to: &Path) -> usize {
    let text = std::fs::read_to_string(from).expect("read the restore script");
    let is_attver = |l: &str| {
        l.starts_with("ALTER TABLE ONLY ")
            && l.contains(" ALTER COLUMN ")
            && l.split_once(" SET (pg_attver=").is_some_and(|(_, rest)| {
                rest.strip_suffix(");")
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            })
    };
    let kept: Vec<&str> = text.lines().filter(|l| !is_attver(l)).collect();
    std::fs::write(to, kept.join("\n") + "\n").expect("write the filtered script");
    text.lines().count() - kept.len()
}

/// `pg_get_indexdef` of every index of `table`, sorted.
fn index_defs(c: &mut Client, table: &str) -> Vec<String> {
    c.query(
        "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = $1::text::regclass ORDER BY 1",
        &[&table],
    )
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// Recall@10 of `table`'s qhnsw index over rows 1..=n, the index forced.
fn index_recall(c: &mut Client, table: &str, index: &str, data: &Data, n: i64) -> f64 {
    force_index(c, table, index, data);
    let live: Vec<i64> = (1..=n).collect();
    recall_at_k(c, table, data, &live, 50, 10).live_only(&format!("{table} ({index})"))
}

#[test]
#[ignore = "starts its own PostgreSQL servers: scripts/test.sh runs it with --ignored"]
fn dump_from_15_restores_into_18() {
    println!("\n=== pg_dump on 15, pg_restore into 18 (qhnsw indexes) ===");
    let bin18 = match pg18_bin() {
        Ok(b) => b,
        Err(why) => {
            assert!(
                std::env::var("VQ_REQUIRE_PG18").as_deref() != Ok("1"),
                "VQ_REQUIRE_PG18=1 but {why}"
            );
            println!("\n  *** SKIPPED: {why} ***\n");
            return;
        }
    };
    let started = Instant::now();
    let n: i64 = 3000;
    let data = Data::new(32, 24, 18);

    // PostgreSQL 15: two tables, an sq8 index with non-default options and a PQ index.
    let old = Cluster::primary("up15");
    let mut c15 = old.connect();
    let v15: String = c15
        .query_one("SHOW server_version_num", &[])
        .unwrap()
        .get(0);
    assert!(v15.starts_with("15"), "VQ_PG_BIN runs {v15}, not 15");
    for t in ["items", "items_pq"] {
        setup_table(&mut c15, t, 32);
        copy_rows(&mut c15, t, &data, 1..=n);
    }
    c15.batch_execute(
        "CREATE INDEX items_idx ON items USING qhnsw (v qvector_l2_ops)
             WITH (quantizer = 'sq8', m = 12, ef_construction = 48);
         CREATE INDEX items_pq_idx ON items_pq USING qhnsw (v qvector_l2_ops)
             WITH (quantizer = 'pq');",
    )
    .unwrap();
    let recall15 = index_recall(&mut c15, "items", "items_idx", &data, n);
    let recall15_pq = index_recall(&mut c15, "items_pq", "items_pq_idx", &data, n);
    let content15 = content_md5(&mut c15, "items");
    let defs15 = [
        index_defs(&mut c15, "items"),
        index_defs(&mut c15, "items_pq"),
    ];

    // Dump with 18's pg_dump (the newer client, as PostgreSQL recommends), restore on 18.
    let new = Server18::start(&bin18);
    let dump = old.root.join("vq.dump");
    let script = old.root.join("vq.sql");
    let from = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres",
        old.port
    );
    let into = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres",
        new.port
    );
    let t = Instant::now();
    new.run_ok("pg_dump", &["-Fc", "-d", &from, "-f", new.path(&dump)]);
    new.run_ok("pg_restore", &["-f", new.path(&script), new.path(&dump)]);
    let filtered = old.root.join("vq-18.sql");
    let removed = drop_pg_attver(&script, &filtered);
    println!("  removed {removed} `SET (pg_attver=...)` column options that 18 does not know");
    new.run_ok(
        "psql",
        &[
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            &into,
            "-f",
            new.path(&filtered),
        ],
    );
    println!("  pg_dump + pg_restore: {:.1} s", t.elapsed().as_secs_f64());

    let mut c18 = new.connect();
    let v18: String = c18
        .query_one("SHOW server_version_num", &[])
        .unwrap()
        .get(0);
    assert!(v18.starts_with("18"), "VQ_PG18_BIN runs {v18}, not 18");
    assert_eq!(content_md5(&mut c18, "items"), content15, "vectors changed");
    assert_eq!(
        [
            index_defs(&mut c18, "items"),
            index_defs(&mut c18, "items_pq")
        ],
        defs15,
        "index definitions changed"
    );
    let recall18 = index_recall(&mut c18, "items", "items_idx", &data, n);
    let recall18_pq = index_recall(&mut c18, "items_pq", "items_pq_idx", &data, n);
    println!(
        "  recall@10 sq8: 15 {recall15:.4} -> 18 {recall18:.4}; pq: 15 {recall15_pq:.4} -> 18 {recall18_pq:.4}"
    );
    assert!(
        recall18 >= 0.95,
        "sq8 recall@10 on 18: {recall18:.4} < 0.95"
    );
    assert!(
        recall18_pq >= 0.90,
        "pq recall@10 on 18: {recall18_pq:.4} < 0.90"
    );
    for (table, index) in [("items", "items_idx"), ("items_pq", "items_pq_idx")] {
        run_qhnsw_check(&mut c18, index).unwrap();
        // The restored index takes new rows and finds each as its own nearest neighbour.
        copy_rows(&mut c18, table, &data, n + 1..=n + 200);
        let new_ids: Vec<i64> = (n + 1..=n + 200).collect();
        let missed = check_reachable(&mut c18, table, &data, &new_ids);
        assert!(
            missed.is_empty(),
            "{index} on 18: rows inserted after the restore not found: {missed:?}"
        );
        run_qhnsw_check(&mut c18, index).unwrap();
    }
    println!("  done in {:.1} s", started.elapsed().as_secs_f64());
}
