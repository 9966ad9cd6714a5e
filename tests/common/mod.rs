//! Harness shared by the server-level test files: seeded data, throwaway clusters
//! owned by the `postgres` OS user, kill -9, and index checks from a client.
//! `VQ_PG_BIN` points at another PostgreSQL build (default: Debian's 15).
#![allow(dead_code)]

use postgres::{Client, NoTls};
use std::collections::{HashMap, HashSet};
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU16, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// PostgreSQL binaries: `VQ_PG_BIN`, else Debian's PostgreSQL 15.
pub fn pg_bin() -> String {
    std::env::var("VQ_PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".to_string())
}

// ---------------------------------------------------------------------------------
// Seeded data
// ---------------------------------------------------------------------------------

/// SplitMix64: a small, good-quality seeded generator.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(1e-300);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// Clustered gaussian data; the vector of a row is a pure function of its id, so
/// threads and checks can regenerate any row without sharing storage.
#[derive(Clone)]
pub struct Data {
    pub seed: u64,
    pub centres: Vec<Vec<f32>>,
}

impl Data {
    pub fn new(dims: usize, clusters: usize, seed: u64) -> Data {
        let mut rng = Rng::new(seed);
        let centres = (0..clusters)
            .map(|_| (0..dims).map(|_| (rng.normal() * 1.0) as f32).collect())
            .collect();
        Data { seed, centres }
    }
    pub fn sample(&self, stream: u64) -> Vec<f32> {
        let mut rng = Rng::new(
            self.seed
                .wrapping_mul(31)
                .wrapping_add(stream.wrapping_mul(0xD1B5_4A32_D192_ED03)),
        );
        let c = &self.centres[rng.below(self.centres.len())];
        c.iter()
            .map(|&x| x + (rng.normal() * 0.35) as f32)
            .collect()
    }
    /// The vector of row `id`.
    pub fn row(&self, id: i64) -> Vec<f32> {
        self.sample(id as u64)
    }
    /// Query vector `i` (a different stream than rows, same distribution).
    pub fn query(&self, i: usize) -> Vec<f32> {
        self.sample((1u64 << 62) + i as u64)
    }
}

/// `[a,b,c]` with shortest round-trip float formatting, so the server stores exactly
/// the f32 values the test computes with.
pub fn vtext(v: &[f32]) -> String {
    let mut s = String::with_capacity(v.len() * 12);
    s.push('[');
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!("{x}"));
    }
    s.push(']');
    s
}

pub fn l2sq(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum()
}

// ---------------------------------------------------------------------------------
// Throwaway clusters
// ---------------------------------------------------------------------------------

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a PostgreSQL binary as the `postgres` OS user (initdb refuses root).
pub fn pg_cmd(bin: &str, args: &[&str]) -> Output {
    pg_cmd_at(&pg_bin(), bin, args)
}

/// Runs binary `bin` of the PostgreSQL build in `dir` as the `postgres` OS user.
pub fn pg_cmd_at(dir: &str, bin: &str, args: &[&str]) -> Output {
    let path = format!("{dir}/{bin}");
    let out = if is_root() {
        Command::new("sudo")
            .args(["-u", "postgres", "-H", &path])
            .args(args)
            .output()
    } else {
        Command::new(&path).args(args).output()
    };
    out.unwrap_or_else(|e| panic!("cannot run {bin}: {e}"))
}

pub fn pg_cmd_ok(bin: &str, args: &[&str]) {
    let out = pg_cmd(bin, args);
    assert!(
        out.status.success(),
        "{bin} {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub static NEXT_PORT: AtomicU16 = AtomicU16::new(29000);

/// A port on 127.0.0.1 nobody listens on.
pub fn free_port() -> u16 {
    loop {
        let p = NEXT_PORT.fetch_add(1, Ordering::SeqCst);
        assert!(p < 29900, "no free port found");
        if TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

/// A temp directory owned by `postgres`, removed on drop.
pub fn make_root(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let root = std::env::temp_dir().join(format!(
        "vq_it_{}_{}_{}",
        name,
        std::process::id(),
        nanos % 100000
    ));
    fs::create_dir_all(&root).unwrap();
    if is_root() {
        let st = Command::new("chown")
            .args(["postgres:postgres", root.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(st.success(), "chown {root:?}");
    }
    root
}

/// One PostgreSQL cluster; stopped (immediate) and deleted on drop, also on panic.
pub struct Cluster {
    pub name: String,
    pub root: PathBuf,
    pub data: PathBuf,
    pub port: u16,
}

impl Cluster {
    pub fn conf_lines(&self) -> String {
        format!(
            "\n# vectorize_quant integration test\nport = {}\nlisten_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{}'\nshared_preload_libraries = ''\nwal_level = replica\n\
             fsync = on\nsynchronous_commit = on\nmax_wal_senders = 5\nhot_standby = on\n\
             max_connections = 40\nshared_buffers = 64MB\nautovacuum = off\n",
            self.port,
            self.root.display()
        )
    }

    /// initdb + start a new primary.
    pub fn primary(name: &str) -> Cluster {
        Cluster::primary_with(name, "")
    }

    /// initdb + start a new primary with `extra` appended to postgresql.conf (later
    /// lines win, e.g. `shared_preload_libraries = 'citus'`).
    pub fn primary_with(name: &str, extra: &str) -> Cluster {
        let root = make_root(name);
        let c = Cluster {
            name: name.into(),
            data: root.join("data"),
            root,
            port: free_port(),
        };
        pg_cmd_ok(
            "initdb",
            &[
                "-D",
                c.data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        c.append_conf(&c.conf_lines());
        c.append_conf(extra);
        c.start();
        c
    }

    /// `pg_basebackup -R` of `primary`, started as a streaming standby.
    pub fn standby_of(primary: &Cluster, name: &str) -> Cluster {
        let root = make_root(name);
        let c = Cluster {
            name: name.into(),
            data: root.join("data"),
            root,
            port: free_port(),
        };
        pg_cmd_ok(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &primary.port.to_string(),
                "-U",
                "postgres",
                "-D",
                c.data.to_str().unwrap(),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
            ],
        );
        c.append_conf(&c.conf_lines());
        c.start();
        c
    }

    pub fn append_conf(&self, text: &str) {
        use std::io::Write;
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(self.data.join("postgresql.conf"))
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    pub fn log_path(&self) -> PathBuf {
        self.root.join("server.log")
    }

    pub fn start(&self) {
        let log = self.log_path();
        let out = pg_cmd(
            "pg_ctl",
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "120",
                "start",
            ],
        );
        if !out.status.success() {
            panic!(
                "pg_ctl start of {} failed: {}\n--- server log tail ---\n{}",
                self.name,
                String::from_utf8_lossy(&out.stderr),
                self.log_tail(40)
            );
        }
    }

    pub fn log_tail(&self, n: usize) -> String {
        let text = fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    pub fn postmaster_pid(&self) -> Option<i32> {
        let text = fs::read_to_string(self.data.join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// `kill -9` of the postmaster and all its children at once (a server crash).
    pub fn kill9(&self) {
        let pm = self.postmaster_pid().expect("postmaster.pid");
        let mut pids = vec![pm];
        pids.extend(children_of(pm));
        // The postmaster must be killed; a child may have exited since it was listed
        // (kill then says "No such process"), which is fine.
        let st = Command::new("kill")
            .arg("-9")
            .arg(pm.to_string())
            .status()
            .unwrap();
        assert!(st.success(), "kill -9 {pm}");
        for child in &pids[1..] {
            let _ = Command::new("kill")
                .arg("-9")
                .arg(child.to_string())
                .stderr(std::process::Stdio::null())
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while pids.iter().any(|&p| alive(p)) {
            assert!(
                Instant::now() < deadline,
                "server processes survive kill -9: {pids:?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
        // A killed postmaster nobody reaps stays a zombie, which still answers kill(pid, 0):
        // remove the stale lock file then, as a reboot would make it stale anyway.
        // The same holds for the socket lock file.
        if Path::new(&format!("/proc/{pm}")).exists() {
            let _ = fs::remove_file(self.data.join("postmaster.pid"));
            let _ = fs::remove_file(self.root.join(format!(".s.PGSQL.{}.lock", self.port)));
        }
    }

    pub fn stop_immediate(&self) {
        let _ = pg_cmd(
            "pg_ctl",
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }

    pub fn conninfo(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres connect_timeout=10 \
             options='-c statement_timeout=180000'",
            self.port
        )
    }

    pub fn connect(&self) -> Client {
        Client::connect(&self.conninfo(), NoTls)
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.name))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "--- {} server log tail ---\n{}\n---",
                self.name,
                self.log_tail(60)
            );
        }
        if let Some(pm) = self.postmaster_pid() {
            if alive(pm) {
                self.stop_immediate();
            }
            if alive(pm) {
                let mut pids = vec![pm];
                pids.extend(children_of(pm));
                let _ = Command::new("kill")
                    .arg("-9")
                    .args(pids.iter().map(|p| p.to_string()))
                    .status();
            }
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// Whether `pid` is a live process (zombies count as dead).
pub fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|s| s.split_whitespace().next())
                .unwrap_or("X");
            state != "Z" && state != "X"
        }
        Err(_) => false,
    }
}

pub fn children_of(ppid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let rest = stat.rsplit(')').next().unwrap_or("");
            let mut f = rest.split_whitespace();
            let _state = f.next();
            if f.next().and_then(|p| p.parse::<i32>().ok()) == Some(ppid) {
                out.push(pid);
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------
// SQL helpers
// ---------------------------------------------------------------------------------

pub fn setup_table(c: &mut Client, table: &str, dims: usize) {
    c.batch_execute(&format!(
        "CREATE EXTENSION IF NOT EXISTS vectorize_quant;
         CREATE TABLE {table} (id bigint PRIMARY KEY, v qvector({dims}) NOT NULL);"
    ))
    .unwrap();
}

/// COPY rows `ids` (vectors from `data`) into `table`.
pub fn copy_rows(c: &mut Client, table: &str, data: &Data, ids: impl Iterator<Item = i64>) {
    use std::io::Write;
    let mut w = c
        .copy_in(&format!("COPY {table} (id, v) FROM STDIN"))
        .unwrap();
    for id in ids {
        writeln!(w, "{}\t{}", id, vtext(&data.row(id))).unwrap();
    }
    w.finish().unwrap();
}

/// Binary COPY of rows `ids` (vectors from `data`) into `table (id bigint, v qvector)`:
/// several times faster than text for large loads.
pub fn copy_rows_binary(c: &mut Client, table: &str, data: &Data, ids: impl Iterator<Item = i64>) {
    use std::io::Write;
    let mut w = c
        .copy_in(&format!("COPY {table} (id, v) FROM STDIN (FORMAT binary)"))
        .unwrap();
    let mut buf = b"PGCOPY\n\xff\r\n\0".to_vec();
    buf.extend_from_slice(&[0u8; 8]);
    for id in ids {
        let v = data.row(id);
        buf.extend_from_slice(&2i16.to_be_bytes());
        buf.extend_from_slice(&8i32.to_be_bytes());
        buf.extend_from_slice(&id.to_be_bytes());
        buf.extend_from_slice(&((4 + 4 * v.len()) as i32).to_be_bytes());
        buf.extend_from_slice(&(v.len() as u16).to_be_bytes());
        buf.extend_from_slice(&0u16.to_be_bytes());
        for x in v {
            buf.extend_from_slice(&x.to_bits().to_be_bytes());
        }
        if buf.len() > 1 << 20 {
            w.write_all(&buf).unwrap();
            buf.clear();
        }
    }
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    w.write_all(&buf).unwrap();
    w.finish().unwrap();
}

pub fn create_index(c: &mut Client, table: &str, index: &str) {
    let t = Instant::now();
    c.batch_execute(&format!(
        "CREATE INDEX {index} ON {table} USING qhnsw (v qvector_l2_ops) WITH (quantizer = 'sq8')"
    ))
    .unwrap();
    println!("  CREATE INDEX {index}: {:.2} s", t.elapsed().as_secs_f64());
}

pub fn index_size(c: &mut Client, index: &str) -> i64 {
    c.query_one("SELECT pg_relation_size($1::text::regclass)", &[&index])
        .unwrap()
        .get(0)
}

pub fn all_ids(c: &mut Client, table: &str) -> HashSet<i64> {
    c.query(&format!("SELECT id FROM {table}"), &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Makes the session use the index for ORDER BY ... LIMIT and checks that it does.
pub fn force_index(c: &mut Client, table: &str, index: &str, data: &Data) {
    c.batch_execute("SET enable_seqscan = off").unwrap();
    let q = vtext(&data.query(0));
    let plan: Vec<String> = c
        .query(
            &format!("EXPLAIN SELECT id FROM {table} ORDER BY v <-> '{q}' LIMIT 10"),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect();
    let plan = plan.join("\n");
    assert!(
        plan.contains(&format!("Index Scan using {index}")),
        "plan does not use {index}:\n{plan}"
    );
}

pub fn knn_sql(table: &str) -> String {
    format!("SELECT id FROM {table} ORDER BY v <-> $1::text::qvector LIMIT $2")
}

pub fn knn(
    c: &mut Client,
    stmt: &postgres::Statement,
    q: &[f32],
    k: i64,
) -> Result<Vec<i64>, postgres::Error> {
    Ok(c.query(stmt, &[&vtext(q), &k])?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Exact-match lookup through the index: Ok(true) when the row (or a row with a
/// vector at distance 0) comes first.
pub fn exact_match(
    c: &mut Client,
    stmt: &postgres::Statement,
    data: &Data,
    id: i64,
) -> Result<bool, postgres::Error> {
    let rows = c.query(stmt, &[&vtext(&data.row(id))])?;
    Ok(match rows.first() {
        Some(r) => r.get::<_, i64>(0) == id || r.get::<_, f64>(1) == 0.0,
        None => false,
    })
}

pub fn exact_sql(table: &str) -> String {
    // An equality filter over the index order: the (iterative) index scan must reach the row.
    format!(
        "SELECT id, (v <-> $1::text::qvector)::float8 FROM {table} WHERE v = $1::text::qvector ORDER BY v <-> $1::text::qvector LIMIT 1"
    )
}

/// Every id in `ids` found by an exact-match query; returns the misses.
pub fn check_reachable(c: &mut Client, table: &str, data: &Data, ids: &[i64]) -> Vec<i64> {
    let stmt = c.prepare(&exact_sql(table)).unwrap();
    let mut missed = Vec::new();
    for &id in ids {
        if !exact_match(c, &stmt, data, id)
            .unwrap_or_else(|e| panic!("exact-match query for id {id}: {e}"))
        {
            missed.push(id);
        }
    }
    missed
}

/// Recall@k of the index over `live` (exact truth computed here) on `nq` queries,
/// plus the returned ids that are not in `live` (deleted or unknown rows).
pub struct RecallReport {
    pub recall: f64,
    pub foreign: Vec<i64>,
    pub short: usize,
}

impl RecallReport {
    /// Prints the figures under `what`, panics if a row outside the live set came back,
    /// and returns the recall.
    pub fn live_only(&self, what: &str) -> f64 {
        println!(
            "  recall@10 {what}: {:.4} (ids outside the live set returned: {}, short results: {})",
            self.recall,
            self.foreign.len(),
            self.short
        );
        assert!(
            self.foreign.is_empty(),
            "{what}: ids outside the live set returned: {:?}",
            &self.foreign[..self.foreign.len().min(20)]
        );
        self.recall
    }
}

pub fn recall_at_k(
    c: &mut Client,
    table: &str,
    data: &Data,
    live: &[i64],
    nq: usize,
    k: usize,
) -> RecallReport {
    let vecs: HashMap<i64, Vec<f32>> = live.iter().map(|&id| (id, data.row(id))).collect();
    let stmt = c.prepare(&knn_sql(table)).unwrap();
    let (mut hits, mut total, mut short) = (0usize, 0usize, 0usize);
    let mut foreign = Vec::new();
    for i in 0..nq {
        let q = data.query(i);
        let mut d: Vec<f64> = vecs.values().map(|v| l2sq(v, &q)).collect();
        d.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let kk = k.min(d.len());
        let bound = d[kk - 1] * (1.0 + 1e-6) + 1e-9;
        let got = knn(c, &stmt, &q, k as i64).unwrap_or_else(|e| panic!("knn query {i}: {e}"));
        if got.len() < kk {
            short += 1;
        }
        for id in got {
            match vecs.get(&id) {
                Some(v) if l2sq(v, &q) <= bound => hits += 1,
                Some(_) => {}
                None => foreign.push(id),
            }
        }
        total += kk;
    }
    RecallReport {
        recall: hits as f64 / total as f64,
        foreign,
        short,
    }
}

/// Runs `qhnsw_check(index)` if the function exists. It returns one text row per
/// problem found (`SETOF text`): the index is clean when it returns no rows (a boolean
/// variant must return true). An ERROR is a failure too. Returns Err(description).
pub fn run_qhnsw_check(c: &mut Client, index: &str) -> Result<(), String> {
    let rows = c
        .query(
            "SELECT prorettype::regtype::text FROM pg_proc WHERE proname = 'qhnsw_check'",
            &[],
        )
        .unwrap();
    let Some(row) = rows.first() else {
        println!("  qhnsw_check: function not present in this build -> check SKIPPED");
        return Ok(());
    };
    let rettype: String = row.get(0);
    let t = Instant::now();
    match c.simple_query(&format!("SELECT * FROM qhnsw_check('{index}')")) {
        Ok(msgs) => {
            let mut found = Vec::new();
            for m in msgs {
                if let postgres::SimpleQueryMessage::Row(r) = m {
                    let vals: Vec<String> = (0..r.len())
                        .map(|i| r.get(i).unwrap_or("NULL").to_string())
                        .collect();
                    found.push(vals.join(" | "));
                }
            }
            let problems: Vec<&String> = if rettype == "boolean" {
                found.iter().filter(|v| v.as_str() != "t").collect()
            } else {
                found.iter().collect()
            };
            println!(
                "  qhnsw_check('{index}') [{rettype}, {:.1} s] -> {}",
                t.elapsed().as_secs_f64(),
                if problems.is_empty() {
                    "clean".to_string()
                } else {
                    format!("{} problem(s): {:?}", problems.len(), problems)
                }
            );
            if problems.is_empty() {
                Ok(())
            } else {
                Err(format!("qhnsw_check('{index}') reports: {problems:?}"))
            }
        }
        Err(e) => Err(format!("qhnsw_check('{index}') raised: {e}")),
    }
}
