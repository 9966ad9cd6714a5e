//! End-to-end benchmark of vectorize_quant's `qhnsw` index against exact search and,
//! when the `vector` extension is installed on the same server, pgvector's HNSW.
//!
//! For every case and every `ef_search` of the sweep it measures recall@10 (against
//! exact neighbours computed here by brute force or read from a ground-truth file),
//! QPS and p50/p99 latency with one client and with N concurrent clients; for every
//! index its size, build time and peak build memory. Writes results.json, a Markdown
//! table and SVG plots into the output folder. See scripts/bench.sh.

#[allow(dead_code, unused_imports)]
#[path = "../../../src/distance/mod.rs"]
mod distance;

#[allow(dead_code, unused_imports)]
#[path = "../../../src/datagen.rs"]
mod datagen;

mod data;
mod mem;
mod report;

use anyhow::{bail, Context, Result};
use bytes::{BufMut, BytesMut};
use clap::Parser;
use data::{bar, Dataset};
use distance::Metric;
use postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use postgres::{Client, NoTls};
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const K: usize = 10;

#[derive(Parser, Debug, Clone)]
#[command(
    version,
    about = "End-to-end benchmark of qhnsw (and pgvector's hnsw when installed)"
)]
pub struct Args {
    /// libpq-style connection string (database is created if missing)
    #[arg(
        long,
        default_value = "host=/tmp port=28817 user=postgres",
        env = "VQ_BENCH_CONN"
    )]
    conn: String,
    /// Database to use (created if missing)
    #[arg(long, default_value = "vq_bench")]
    db: String,
    /// Synthetic rows (or: most rows read from --base)
    #[arg(long, default_value_t = 100_000)]
    rows: usize,
    /// Synthetic dimensions (128, 768, 1536, 3072, ... any value works)
    #[arg(long, default_value_t = 768)]
    dims: usize,
    /// Query count (synthetic) or most queries read from --query-file
    #[arg(long, default_value_t = 1000)]
    queries: usize,
    /// Seed of the synthetic generator
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Base vectors file (.npy float 2-D, .fvecs, .bvecs); replaces the synthetic data
    #[arg(long)]
    base: Option<PathBuf>,
    /// Query vectors file (.npy, .fvecs, .bvecs); required with --base
    #[arg(long)]
    query_file: Option<PathBuf>,
    /// Ground truth ids (.ivecs); computed by brute force when absent
    #[arg(long)]
    ground_truth: Option<PathBuf>,
    /// Dataset name used in the report
    #[arg(long)]
    name: Option<String>,
    /// Distance: l2, cosine or ip
    #[arg(long, default_value = "l2")]
    metric: String,
    /// HNSW m (both engines)
    #[arg(long, default_value_t = 16)]
    m: u32,
    /// HNSW ef_construction (both engines)
    #[arg(long, default_value_t = 64)]
    ef_construction: u32,
    /// ef_search sweep
    #[arg(long, value_delimiter = ',', default_value = "10,20,40,80,160")]
    ef_search: Vec<u32>,
    /// Concurrent clients of the second pass
    #[arg(long, default_value_t = 2)]
    clients: usize,
    /// qhnsw.rerank_candidates (server default when absent)
    #[arg(long)]
    rerank_candidates: Option<u32>,
    /// Candidates re-ranked exactly in the pgvector binary_quantize case: LIMIT of the inner
    /// query = max(ef_search, this); hnsw.ef_search is raised to that LIMIT
    #[arg(long, default_value_t = 40)]
    bq_candidates: u32,
    /// Cases, comma separated: none,sq8,sq8-f16,sq4,sq2,pq,binary,sq8col,pgv,pgv-half,pgv-bq,qv-sq8
    /// (or all); sq8col is a qhnsw sq8 index over an `sq8vector` column (table vqb_s);
    /// qv-sq8 a qhnsw sq8 index over pgvector's `vector` column (table vqb_pgv, needs
    /// the companion extension vectorize_quant_pgvector)
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "none,sq8,sq8-f16,sq4,pq,binary,sq8col,pgv,pgv-half,pgv-bq"
    )]
    cases: Vec<String>,
    /// Timed passes per ef_search and client count; the fastest is kept (other work on the
    /// machine only ever slows a pass down)
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Recall@10 levels at which the report compares QPS
    #[arg(long, value_delimiter = ',', default_value = "0.95,0.99")]
    recall_targets: Vec<f64>,
    /// Untimed warm-up queries per case (largest ef_search)
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    /// Output folder (results.json, results.md, *.svg)
    #[arg(long, default_value = "results/run")]
    out: PathBuf,
    /// Title of the report
    #[arg(long)]
    title: Option<String>,
    /// Extra line printed under the title in the report (e.g. how the server was set up)
    #[arg(long)]
    note: Vec<String>,
    /// Keep the last index of every case instead of dropping it
    #[arg(long)]
    keep_indexes: bool,
    /// Queries per block when a case's one-client pass alternates with the pgvector
    /// baseline (hnsw on vector, else on halfvec), so machine noise hits both alike;
    /// 0: no alternation
    #[arg(long, default_value_t = 100)]
    block: usize,
    /// Only write the synthetic set (--rows, --dims, --queries, --seed) to DIR/base.npy and
    /// DIR/queries.npy (float32), then exit: other tools (`bench.sh --citus`) load the same rows
    #[arg(long, value_name = "DIR")]
    dump_npy: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum Engine {
    Qhnsw,
    PgvHnsw,
    PgvHalfvec,
    PgvBinary,
}

/// One index configuration of the comparison.
#[derive(Clone, Debug)]
struct Case {
    id: String,
    label: String,
    engine: Engine,
    table: &'static str,
    create: String,
    index: String,
}

#[derive(Serialize, Clone, Debug, Default)]
pub struct Point {
    pub ef_search: u32,
    pub recall: f64,
    pub qps1: f64,
    pub p50_ms1: f64,
    pub p99_ms1: f64,
    pub qps_n: f64,
    pub p50_ms_n: f64,
    pub p99_ms_n: f64,
}

#[derive(Serialize, Clone, Debug)]
pub struct CaseResult {
    pub id: String,
    pub label: String,
    pub engine: Engine,
    pub create_sql: String,
    pub index_bytes: i64,
    pub build_secs: f64,
    pub build_peak_mem_bytes: u64,
    pub build_peak_anon_bytes: u64,
    pub build_peak_dsm_bytes: u64,
    pub leader_vmhwm_bytes: u64,
    pub points: Vec<Point>,
    pub error: Option<String>,
    pub warnings: Vec<String>,
    /// 1-minute load average of the machine before and after the case.
    pub loadavg: String,
    /// The baseline case whose queries alternated with this case's in blocks.
    pub paired_with: Option<String>,
    /// Per ef_search: QPS of this case and of the baseline over the same alternating blocks.
    pub paired: Vec<Paired>,
}

/// One ef_search of a case measured in blocks alternating with the baseline's queries.
#[derive(Serialize, Clone, Debug, Default)]
pub struct Paired {
    pub ef_search: u32,
    /// QPS of the case over all its timed blocks (1 client).
    pub qps: f64,
    /// QPS of the baseline over the blocks interleaved with them.
    pub baseline_qps: f64,
}

#[derive(Serialize, Clone, Debug)]
pub struct RunResult {
    pub title: String,
    pub notes: Vec<String>,
    pub dataset: String,
    pub rows: usize,
    pub dims: usize,
    pub queries: usize,
    pub metric: String,
    pub m: u32,
    pub ef_construction: u32,
    pub clients: usize,
    pub rerank_candidates: String,
    pub bq_candidates: u32,
    pub repeat: usize,
    pub recall_targets: Vec<f64>,
    pub machine: String,
    pub server: Vec<(String, String)>,
    pub heap_bytes: Vec<(String, i64)>,
    pub pgvector: Option<String>,
    pub cases: Vec<CaseResult>,
    pub started: String,
    pub total_secs: f64,
}

/// A float vector sent in binary to qvector / vector (f32) or halfvec (f16) parameters.
#[derive(Debug)]
struct VecParam<'a>(&'a [f32]);

impl ToSql for VecParam<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.put_u16(self.0.len() as u16);
        out.put_u16(0);
        if ty.name() == "halfvec" {
            for x in self.0 {
                out.put_u16(half::f16::from_f32(*x).to_bits());
            }
        } else {
            for x in self.0 {
                out.put_f32(*x);
            }
        }
        Ok(IsNull::No)
    }
    fn accepts(ty: &Type) -> bool {
        matches!(ty.name(), "qvector" | "vector" | "halfvec")
    }
    to_sql_checked!();
}

fn metric_of(s: &str) -> Result<(Metric, &'static str, &'static str)> {
    // (metric, operator, opclass suffix)
    Ok(match s {
        "l2" => (Metric::L2, "<->", "l2_ops"),
        "cosine" => (Metric::Cosine, "<=>", "cosine_ops"),
        "ip" => (Metric::InnerProduct, "<#>", "ip_ops"),
        other => bail!("--metric {other}: want l2, cosine or ip"),
    })
}

struct Ctx {
    args: Args,
    base_cfg: postgres::Config,
}

impl Ctx {
    fn connect(&self) -> Result<Client> {
        let mut cfg = self.base_cfg.clone();
        cfg.dbname(&self.args.db);
        Ok(cfg.connect(NoTls)?)
    }
    fn connect_with_notices(&self, sink: Arc<Mutex<String>>) -> Result<Client> {
        let mut cfg = self.base_cfg.clone();
        cfg.dbname(&self.args.db);
        cfg.notice_callback(move |n| {
            *sink.lock().unwrap() = n.message().to_string();
        });
        Ok(cfg.connect(NoTls)?)
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(dir) = &args.dump_npy {
        let (base, queries) = data::synthetic(args.rows, args.dims, args.queries, args.seed);
        std::fs::create_dir_all(dir)?;
        data::write_npy(&dir.join("base.npy"), &base, args.dims)?;
        return data::write_npy(&dir.join("queries.npy"), &queries, args.dims);
    }
    let started = Instant::now();
    let (metric, op, opsuffix) = metric_of(&args.metric)?;
    let base_cfg: postgres::Config = args.conn.parse().context("--conn")?;

    // ---- server, database, extensions
    let mut admin_cfg = base_cfg.clone();
    admin_cfg.dbname("postgres");
    let mut admin = admin_cfg
        .connect(NoTls)
        .context("connecting to PostgreSQL (see --conn)")?;
    if admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&args.db])?
        .is_none()
    {
        admin.batch_execute(&format!("CREATE DATABASE {}", args.db))?;
    }
    drop(admin);
    let ctx = Ctx {
        args: args.clone(),
        base_cfg,
    };
    let mut c = ctx.connect()?;
    c.batch_execute("CREATE EXTENSION IF NOT EXISTS vectorize_quant")?;
    let pgv_available = c
        .query_opt(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'",
            &[],
        )?
        .is_some();
    let pgvector = if pgv_available {
        c.batch_execute("CREATE EXTENSION IF NOT EXISTS vector")?;
        // qhnsw opclasses for the vector column (case qv-sq8), when the companion is installed.
        if c.query_opt(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'vectorize_quant_pgvector'",
            &[],
        )?
        .is_some()
        {
            c.batch_execute("CREATE EXTENSION IF NOT EXISTS vectorize_quant_pgvector")?;
        }
        let v: String = c
            .query_one(
                "SELECT extversion FROM pg_extension WHERE extname = 'vector'",
                &[],
            )?
            .get(0);
        println!("pgvector {v} found: its cases run on the same server");
        Some(v)
    } else {
        println!("pgvector was not found on this server (no `vector` in pg_available_extensions): pgvector cases are skipped");
        None
    };
    let mut server = Vec::new();
    server.push((
        "version".into(),
        c.query_one("SELECT version()", &[])?.get::<_, String>(0),
    ));
    let vq: String = c
        .query_one(
            "SELECT extversion FROM pg_extension WHERE extname = 'vectorize_quant'",
            &[],
        )?
        .get(0);
    server.push(("vectorize_quant".into(), vq));
    for s in [
        "shared_buffers",
        "maintenance_work_mem",
        "work_mem",
        "max_parallel_maintenance_workers",
        "jit",
    ] {
        let v: String = c.query_one(&format!("SHOW {s}"), &[])?.get(0);
        server.push((s.into(), v));
    }
    println!(
        "server: {}",
        server
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    // ---- dataset
    let ds = load_dataset(&args, metric)?;
    println!(
        "dataset {}: {} rows x {} dims, {} queries",
        ds.name,
        ds.rows(),
        ds.dims,
        ds.nqueries()
    );
    let d = ds.dims;

    // ---- cases
    let want = |id: &str| args.cases.iter().any(|c| c == id || c == "all");
    let mut cases = Vec::new();
    let mut skipped = Vec::new();
    let with = |extra: &str| {
        format!(
            "m = {}, ef_construction = {}{}",
            args.m, args.ef_construction, extra
        )
    };
    let qcases: [(&str, &str, &str); 7] = [
        ("none", "qhnsw none (float4)", "quantizer = 'none'"),
        (
            "sq8",
            "qhnsw sq8 rerank=heap",
            "quantizer = 'sq8', rerank = 'heap'",
        ),
        (
            "sq8-f16",
            "qhnsw sq8 rerank=float16",
            "quantizer = 'sq8', rerank = 'float16'",
        ),
        ("sq4", "qhnsw sq4", "quantizer = 'sq4'"),
        ("sq2", "qhnsw sq2", "quantizer = 'sq2'"),
        ("pq", "qhnsw pq", "quantizer = 'pq'"),
        ("binary", "qhnsw binary", "quantizer = 'binary'"),
    ];
    for (id, label, q) in qcases {
        if want(id) {
            let index = format!("vqb_idx_{}", id.replace('-', "_"));
            cases.push(Case {
                id: id.into(),
                label: label.into(),
                engine: Engine::Qhnsw,
                table: "vqb_q",
                create: format!(
                    "CREATE INDEX {index} ON vqb_q USING qhnsw (v qvector_{opsuffix}) WITH ({q}, {})",
                    with("")
                ),
                index,
            });
        }
    }
    if want("sq8col") {
        cases.push(Case {
            id: "sq8col".into(),
            label: "qhnsw sq8 on an sq8vector column".into(),
            engine: Engine::Qhnsw,
            table: "vqb_s",
            create: format!(
                "CREATE INDEX vqb_idx_sq8col ON vqb_s USING qhnsw (v sq8vector_{opsuffix}) WITH (quantizer = 'sq8', {})",
                with("")
            ),
            index: "vqb_idx_sq8col".into(),
        });
    }
    if pgvector.is_some() {
        let pw = format!("WITH ({})", with(""));
        let pg: [(&str, &str, Engine, String, usize); 3] = [
            (
                "pgv",
                "pgvector hnsw (vector)",
                Engine::PgvHnsw,
                format!("(v vector_{opsuffix})"),
                2000,
            ),
            (
                "pgv-half",
                "pgvector hnsw (halfvec)",
                Engine::PgvHalfvec,
                format!("((v::halfvec({d})) halfvec_{opsuffix})"),
                4000,
            ),
            (
                "pgv-bq",
                "pgvector binary_quantize + rerank",
                Engine::PgvBinary,
                format!("((binary_quantize(v)::bit({d})) bit_hamming_ops)"),
                64000,
            ),
        ];
        for (id, label, engine, expr, limit) in pg {
            if !want(id) {
                continue;
            }
            if d > limit {
                skipped.push(format!("{label}: skipped, pgvector's hnsw indexes at most {limit} dimensions for this type"));
                continue;
            }
            let index = format!("vqb_idx_{}", id.replace('-', "_"));
            cases.push(Case {
                id: id.into(),
                label: label.into(),
                engine,
                table: "vqb_pgv",
                create: format!("CREATE INDEX {index} ON vqb_pgv USING hnsw {expr} {pw}"),
                index,
            });
        }
        if want("qv-sq8") {
            cases.push(Case {
                id: "qv-sq8".into(),
                label: "qhnsw sq8 on the vector column".into(),
                engine: Engine::Qhnsw,
                table: "vqb_pgv",
                create: format!(
                    "CREATE INDEX vqb_idx_qv_sq8 ON vqb_pgv USING qhnsw (v vector_{opsuffix}) WITH (quantizer = 'sq8', {})",
                    with("")
                ),
                index: "vqb_idx_qv_sq8".into(),
            });
        }
    } else if args
        .cases
        .iter()
        .any(|c| c.starts_with("pgv") || c == "qv-sq8" || c == "all")
    {
        skipped.push("pgvector cases: skipped, pgvector (extension `vector`) is not installed on this server".into());
    }
    for s in &skipped {
        println!("{s}");
    }

    // ---- tables
    ensure_table(&ctx, "vqb_q", "qvector", &ds)?;
    if cases.iter().any(|c| c.table == "vqb_pgv") {
        ensure_table(&ctx, "vqb_pgv", "vector", &ds)?;
    }
    if cases.iter().any(|c| c.table == "vqb_s") {
        ensure_sq8_table(&ctx, &ds)?;
    }
    let mut heap_bytes = Vec::new();
    for t in ["vqb_q", "vqb_s", "vqb_pgv"] {
        if let Some(r) = c.query_opt("SELECT pg_total_relation_size(to_regclass($1))", &[&t])? {
            if let Some(b) = r.get::<_, Option<i64>>(0) {
                heap_bytes.push((t.to_string(), b));
            }
        }
    }
    // Drop every index of a previous interrupted run so that only the case's index exists.
    for r in c.query(
        "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid IN (to_regclass('vqb_q'), to_regclass('vqb_s'), to_regclass('vqb_pgv'))",
        &[],
    )? {
        let name: String = r.get(0);
        c.batch_execute(&format!("DROP INDEX IF EXISTS {name}"))?;
    }
    let lib_mtime = library_mtime(&mut c);
    drop(c);

    // ---- run: the baseline (pgvector hnsw on vector, else on halfvec) first; its index
    // stays while the other cases run, which alternate query blocks with it.
    let baseline = cases
        .iter()
        .find(|c| c.engine == Engine::PgvHnsw)
        .or_else(|| cases.iter().find(|c| c.engine == Engine::PgvHalfvec))
        .cloned()
        .filter(|_| args.block > 0);
    if let Some(b) = &baseline {
        cases.sort_by_key(|c| c.id != b.id);
    }
    let mut baseline_ok = false;
    let mut results = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        println!(
            "\n[{}/{}] {}\n    {}",
            i + 1,
            cases.len(),
            case.label,
            case.create
        );
        let load0 = mem::loadavg();
        let partner = baseline.as_ref().filter(|_| baseline_ok);
        let mut r = run_case(&ctx, case, partner, &ds, metric, op);
        let is_baseline = baseline.as_ref().is_some_and(|b| b.id == case.id);
        baseline_ok |= is_baseline && r.error.is_none();
        r.loadavg = format!("{load0} -> {}", mem::loadavg());
        if let Ok(mut c) = ctx.connect() {
            let now = library_mtime(&mut c);
            if now != lib_mtime {
                r.warnings.push(
                    "vectorize_quant.so was replaced on disk during this run (another build installed it): results may mix versions".into(),
                );
            }
        }
        match &r.error {
            Some(e) => println!("    ERROR: {e}"),
            None => {
                println!(
                    "    index {:.1} MiB, build {:.1} s, peak build memory {:.0} MiB (dynamic shared memory {:.0} MiB)",
                    r.index_bytes as f64 / 1048576.0,
                    r.build_secs,
                    r.build_peak_mem_bytes as f64 / 1048576.0,
                    r.build_peak_dsm_bytes as f64 / 1048576.0
                );
                for p in &r.points {
                    println!(
                        "    ef_search {:>4}: recall@10 {:.4}  1 client {:>7.1} QPS p50 {:.2} ms p99 {:.2} ms | {} clients {:>7.1} QPS p50 {:.2} ms p99 {:.2} ms",
                        p.ef_search, p.recall, p.qps1, p.p50_ms1, p.p99_ms1, args.clients, p.qps_n, p.p50_ms_n, p.p99_ms_n
                    );
                }
            }
        }
        for w in &r.warnings {
            println!("    WARNING: {w}");
        }
        results.push(r);
        if !args.keep_indexes && !is_baseline {
            if let Ok(mut c) = ctx.connect() {
                let _ = c.batch_execute(&format!("DROP INDEX IF EXISTS {}", case.index));
            }
        }
    }
    if let (Some(b), false) = (&baseline, args.keep_indexes) {
        if let Ok(mut c) = ctx.connect() {
            let _ = c.batch_execute(&format!("DROP INDEX IF EXISTS {}", b.index));
        }
    }

    let mut notes = args.note.clone();
    notes.extend(skipped);
    let run = RunResult {
        title: args
            .title
            .clone()
            .unwrap_or_else(|| format!("{} ({} x {})", ds.name, ds.rows(), ds.dims)),
        notes,
        dataset: ds.name.clone(),
        rows: ds.rows(),
        dims: ds.dims,
        queries: ds.nqueries(),
        metric: args.metric.clone(),
        m: args.m,
        ef_construction: args.ef_construction,
        clients: args.clients,
        rerank_candidates: args
            .rerank_candidates
            .map_or_else(|| "server default (40)".to_string(), |v| v.to_string()),
        bq_candidates: args.bq_candidates,
        repeat: args.repeat.max(1),
        recall_targets: args.recall_targets.clone(),
        machine: mem::machine(),
        server,
        heap_bytes,
        pgvector,
        cases: results,
        started: format!("{:?}", std::time::SystemTime::now()),
        total_secs: started.elapsed().as_secs_f64(),
    };
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(
        args.out.join("results.json"),
        serde_json::to_string_pretty(&run)?,
    )?;
    let md = report::markdown(&run);
    std::fs::write(args.out.join("results.md"), &md)?;
    report::plots(&run, &args.out)?;
    println!("\n{md}");
    println!(
        "wrote {}/results.md, results.json, recall_qps.svg, recall_qps_clients.svg, index_size.svg, build_time.svg ({:.0} s in all)",
        args.out.display(),
        run.total_secs
    );
    Ok(())
}

fn load_dataset(args: &Args, metric: Metric) -> Result<Dataset> {
    let (name, base, queries, dims, mut truth, fp) = if let Some(base_path) = &args.base {
        let qpath = args
            .query_file
            .as_ref()
            .context("--base needs --query-file")?;
        let pb = bar(2, "read files");
        let (base, n, d) = data::read_matrix(base_path, Some(args.rows))?;
        pb.inc(1);
        let (queries, _nq, qd) = data::read_matrix(qpath, Some(args.queries))?;
        pb.inc(1);
        pb.finish();
        if qd != d {
            bail!("queries have {qd} dimensions, base rows {d}");
        }
        let meta = std::fs::metadata(base_path)?;
        let fp = format!(
            "file {} size {} mtime {:?} rows {n} dims {d}",
            base_path.display(),
            meta.len(),
            meta.modified().ok()
        );
        let total_rows = n; // rows actually read
        let truth = match &args.ground_truth {
            Some(gt) => {
                // Ground truth files refer to the whole base file: only usable when it was read whole.
                let whole = match base_path.extension().and_then(|e| e.to_str()) {
                    Some("fvecs") => meta.len() as usize / (4 + 4 * d) == total_rows,
                    Some("bvecs") => meta.len() as usize / (4 + d) == total_rows,
                    _ => true,
                };
                if whole {
                    println!("ground truth: read from {}", gt.display());
                    Some(data::read_truth(gt, args.queries)?)
                } else {
                    println!("--rows truncates the base file: ignoring --ground-truth, computing exact neighbours");
                    None
                }
            }
            None => None,
        };
        let name = args.name.clone().unwrap_or_else(|| {
            base_path
                .parent()
                .and_then(|p| p.file_name())
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_else(|| "files".into())
        });
        (name, base, queries, d, truth, fp)
    } else {
        let (base, queries) = data::synthetic(args.rows, args.dims, args.queries, args.seed);
        let name = args
            .name
            .clone()
            .unwrap_or_else(|| format!("synthetic-{}", args.dims));
        let fp = format!(
            "synthetic rows {} dims {} seed {}",
            args.rows, args.dims, args.seed
        );
        (name, base, queries, args.dims, None, fp)
    };
    if truth.is_none() {
        truth = Some(data::exact_truth(&base, &queries, dims, K, metric));
    }
    // The content hash makes a changed generator or file reload the tables.
    let fp = format!("{fp} hash {:016x}", content_hash(&base));
    Ok(Dataset {
        name,
        dims,
        base,
        queries,
        truth: truth.unwrap(),
        fingerprint: fp.replace('\'', ""),
    })
}

/// FNV-1a over the bits of every value (chunked in parallel).
fn content_hash(v: &[f32]) -> u64 {
    use rayon::prelude::*;
    let fnv = |h: u64, x: u64| (h ^ x).wrapping_mul(0x100000001b3);
    v.par_chunks(1 << 16)
        .map(|c| {
            c.iter()
                .fold(0xcbf29ce484222325u64, |h, x| fnv(h, x.to_bits() as u64))
        })
        .collect::<Vec<u64>>()
        .into_iter()
        .fold(0xcbf29ce484222325u64, fnv)
}

/// Creates and loads `table (id int4, v typ(dims))` by binary COPY unless it already holds this dataset.
fn ensure_table(ctx: &Ctx, table: &str, typ: &str, ds: &Dataset) -> Result<()> {
    let mut c = ctx.connect()?;
    let have: Option<String> = c
        .query_one(
            "SELECT obj_description(to_regclass($1), 'pg_class')",
            &[&table],
        )?
        .get(0);
    if have.as_deref() == Some(ds.fingerprint.as_str()) {
        println!("table {table} already holds this dataset: reusing it");
        return Ok(());
    }
    c.batch_execute(&format!(
        "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id int4 NOT NULL, v {typ}({}))",
        ds.dims
    ))?;
    let pb = bar(ds.rows() as u64, &format!("COPY {table}"));
    let t0 = Instant::now();
    {
        let w = c.copy_in(&format!("COPY {table} (id, v) FROM STDIN (FORMAT binary)"))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, w);
        w.write_all(b"PGCOPY\n\xff\r\n\0")?;
        w.write_all(&0i32.to_be_bytes())?;
        w.write_all(&0i32.to_be_bytes())?;
        for i in 0..ds.rows() {
            w.write_all(&2i16.to_be_bytes())?;
            w.write_all(&4i32.to_be_bytes())?;
            w.write_all(&(i as i32).to_be_bytes())?;
            w.write_all(&((4 + 4 * ds.dims) as i32).to_be_bytes())?;
            w.write_all(&(ds.dims as u16).to_be_bytes())?;
            w.write_all(&0u16.to_be_bytes())?;
            for x in ds.row(i) {
                w.write_all(&x.to_be_bytes())?;
            }
            if i % 1000 == 999 {
                pb.set_position(i as u64 + 1);
            }
        }
        w.write_all(&(-1i16).to_be_bytes())?;
        let w = w.into_inner().map_err(|e| anyhow::anyhow!("flush: {e}"))?;
        w.finish()?;
    }
    pb.finish_with_message(format!("{:.1} s", t0.elapsed().as_secs_f64()));
    let pb = bar(1, "VACUUM ANALYZE");
    c.batch_execute(&format!("VACUUM (ANALYZE) {table}"))?;
    c.batch_execute("CHECKPOINT")?;
    c.batch_execute(&format!("COMMENT ON TABLE {table} IS '{}'", ds.fingerprint))?;
    pb.inc(1);
    pb.finish();
    Ok(())
}

/// Creates `vqb_s (id, v sq8vector(d))` from `vqb_q` (the same rows, quantized per vector).
fn ensure_sq8_table(ctx: &Ctx, ds: &Dataset) -> Result<()> {
    let mut c = ctx.connect()?;
    let have: Option<String> = c
        .query_one(
            "SELECT obj_description(to_regclass('vqb_s'), 'pg_class')",
            &[],
        )?
        .get(0);
    if have.as_deref() == Some(ds.fingerprint.as_str()) {
        println!("table vqb_s already holds this dataset: reusing it");
        return Ok(());
    }
    let pb = bar(1, "vqb_s (sq8vector)");
    // One statement per call: VACUUM cannot run inside a multi-statement batch.
    for sql in [
        "DROP TABLE IF EXISTS vqb_s".to_string(),
        format!(
            "CREATE TABLE vqb_s (id int4 NOT NULL, v sq8vector({}))",
            ds.dims
        ),
        "INSERT INTO vqb_s SELECT id, v FROM vqb_q".to_string(),
        "VACUUM (ANALYZE) vqb_s".to_string(),
        "CHECKPOINT".to_string(),
        format!("COMMENT ON TABLE vqb_s IS '{}'", ds.fingerprint),
    ] {
        c.batch_execute(&sql)?;
    }
    pb.inc(1);
    pb.finish();
    Ok(())
}

fn query_sql(case: &Case, op: &str, d: usize, ef: u32, bq_candidates: u32) -> String {
    if case.table == "vqb_s" {
        // The float4 query is quantized to sq8vector by the implicit cast.
        return format!("SELECT id FROM vqb_s ORDER BY v {op} $1::qvector({d}) LIMIT {K}");
    }
    match case.engine {
        Engine::Qhnsw | Engine::PgvHnsw => format!("SELECT id FROM {} ORDER BY v {op} $1 LIMIT {K}", case.table),
        Engine::PgvHalfvec => format!(
            "SELECT id FROM {} ORDER BY v::halfvec({d}) {op} $1::halfvec({d}) LIMIT {K}",
            case.table
        ),
        Engine::PgvBinary => format!(
            "SELECT id FROM (SELECT id, v FROM {} ORDER BY binary_quantize(v)::bit({d}) <~> binary_quantize($1::vector({d})) LIMIT {}) s ORDER BY s.v {op} $1::vector({d}) LIMIT {K}",
            case.table,
            ef.max(bq_candidates)
        ),
    }
}

fn set_sql(case: &Case, args: &Args, ef: u32) -> String {
    match case.engine {
        Engine::Qhnsw => {
            let mut s = format!("SET qhnsw.ef_search = {ef};");
            if let Some(r) = args.rerank_candidates {
                s += &format!("SET qhnsw.rerank_candidates = {r};");
            }
            s
        }
        Engine::PgvBinary => format!("SET hnsw.ef_search = {};", ef.max(args.bq_candidates)),
        _ => format!("SET hnsw.ef_search = {ef};"),
    }
}

/// Replaces every quoted literal longer than 40 characters by its start and `...'`.
fn shorten_literals(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(1000));
    for (i, part) in text.split('\'').enumerate() {
        if i > 0 {
            out.push('\'');
        }
        if i % 2 == 1 && part.chars().count() > 40 {
            out.extend(part.chars().take(40));
            out.push_str("...");
        } else {
            out.push_str(part);
        }
    }
    out
}

fn vec_literal(v: &[f32]) -> String {
    let parts: Vec<String> = v.iter().map(|x| format!("{x}")).collect();
    format!("'[{}]'", parts.join(","))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Builds a case's index and measures it (alternating with `baseline`'s index when given).
fn run_case(
    ctx: &Ctx,
    case: &Case,
    baseline: Option<&Case>,
    ds: &Dataset,
    metric: Metric,
    op: &str,
) -> CaseResult {
    let mut r = CaseResult {
        id: case.id.clone(),
        label: case.label.clone(),
        engine: case.engine,
        create_sql: case.create.clone(),
        index_bytes: 0,
        build_secs: 0.0,
        build_peak_mem_bytes: 0,
        build_peak_anon_bytes: 0,
        build_peak_dsm_bytes: 0,
        leader_vmhwm_bytes: 0,
        points: Vec::new(),
        error: None,
        warnings: Vec::new(),
        loadavg: String::new(),
        paired_with: None,
        paired: Vec::new(),
    };
    for attempt in 0..2 {
        r.error = None;
        r.points.clear();
        r.paired.clear();
        let res = build(ctx, case, &mut r)
            .map_err(|e| format!("build: {e:#}"))
            .and_then(|_| {
                search(ctx, case, baseline, ds, metric, op, &mut r)
                    .map_err(|e| format!("search: {e:#}"))
            });
        match res {
            Ok(()) => break,
            Err(e) => {
                let crashed = [
                    "connection closed",
                    "recovery mode",
                    "terminating connection",
                    "shutting down",
                ]
                .iter()
                .any(|m| e.contains(m));
                r.error = Some(e.clone());
                if !crashed || attempt == 1 {
                    break;
                }
                r.warnings.push(format!(
                    "the server lost the connection ({e}); see its log (a backend crash, or the extension's .so replaced during the run); retried once"
                ));
                println!(
                    "    server connection lost ({e}); waiting for the server and retrying once"
                );
                let t0 = Instant::now();
                while t0.elapsed() < Duration::from_secs(120) && ctx.connect().is_err() {
                    std::thread::sleep(Duration::from_secs(2));
                }
            }
        }
    }
    r
}

/// Modification time of the installed extension library, to detect it being replaced mid-run.
fn library_mtime(c: &mut Client) -> Option<std::time::SystemTime> {
    let dir: String = c
        .query_one(
            "SELECT setting FROM pg_config WHERE name = 'PKGLIBDIR'",
            &[],
        )
        .ok()?
        .get(0);
    std::fs::metadata(format!("{dir}/vectorize_quant.so"))
        .ok()?
        .modified()
        .ok()
}

fn build(ctx: &Ctx, case: &Case, r: &mut CaseResult) -> Result<()> {
    let notice = Arc::new(Mutex::new(String::new()));
    let mut bc = ctx.connect_with_notices(notice.clone())?;
    let pid: i32 = bc.query_one("SELECT pg_backend_pid()", &[])?.get(0);
    bc.batch_execute(&format!("DROP INDEX IF EXISTS {}", case.index))?;
    bc.batch_execute("CHECKPOINT")?;
    let mut monitor = ctx.connect()?;
    let stop = Arc::new(AtomicBool::new(false));
    let pb = indicatif::ProgressBar::new_spinner();
    pb.set_style(
        indicatif::ProgressStyle::with_template("{prefix:>18} {spinner} {elapsed} {msg}").unwrap(),
    );
    pb.set_prefix("CREATE INDEX");
    pb.enable_steady_tick(Duration::from_millis(200));
    let sampler = {
        let stop = stop.clone();
        let pb = pb.clone();
        let notice = notice.clone();
        std::thread::spawn(move || {
            let mut s = mem::Sampler::new(pid as u32);
            let mut last = Instant::now() - Duration::from_secs(10);
            while !stop.load(Ordering::Relaxed) {
                s.sample();
                if last.elapsed() >= Duration::from_millis(500) {
                    last = Instant::now();
                    let mut prog = String::new();
                    if let Ok(Some(row)) = monitor.query_opt(
                        "SELECT phase, tuples_done, tuples_total, blocks_done, blocks_total FROM pg_stat_progress_create_index WHERE pid = $1",
                        &[&pid],
                    ) {
                        let phase: String = row.get(0);
                        let (td, tt, bd, bt): (i64, i64, i64, i64) = (row.get(1), row.get(2), row.get(3), row.get(4));
                        prog = if tt > 0 {
                            format!("{phase}: {td}/{tt} tuples")
                        } else if bt > 0 {
                            format!("{phase}: {bd}/{bt} blocks")
                        } else {
                            phase
                        };
                    }
                    let n = notice.lock().unwrap().clone();
                    pb.set_message(format!(
                        "mem {:.0} MiB (peak {:.0}) | {prog} {}",
                        s.current as f64 / 1048576.0,
                        s.peak as f64 / 1048576.0,
                        n.chars().take(70).collect::<String>()
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            s
        })
    };
    let t0 = Instant::now();
    let res = bc.batch_execute(&case.create);
    let secs = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let s = sampler.join().expect("sampler thread");
    pb.finish_with_message(format!(
        "{secs:.1} s, peak memory {:.0} MiB",
        s.peak as f64 / 1048576.0
    ));
    res?;
    r.build_secs = secs;
    r.build_peak_mem_bytes = s.peak;
    r.build_peak_anon_bytes = s.peak_anon;
    r.build_peak_dsm_bytes = s.peak_dsm;
    r.leader_vmhwm_bytes = mem::vmhwm(pid as u32).unwrap_or(0);
    r.index_bytes = bc
        .query_one("SELECT pg_relation_size(to_regclass($1))", &[&case.index])?
        .get(0);
    Ok(())
}

/// EXPLAIN lines of `case`'s query for the first query vector at `ef` (its settings set on `c`).
fn plan_of(
    c: &mut Client,
    case: &Case,
    args: &Args,
    op: &str,
    ds: &Dataset,
    ef: u32,
) -> Result<Vec<String>> {
    c.batch_execute(&set_sql(case, args, ef))?;
    let sql = query_sql(case, op, ds.dims, ef, args.bq_candidates)
        .replace("$1", &vec_literal(ds.query(0)));
    Ok(c.query(&format!("EXPLAIN {sql}"), &[])?
        .iter()
        .map(|row| row.get::<_, String>(0))
        .collect())
}

/// Runs queries `range` on a prepared statement; returns the seconds it took.
fn run_block(
    c: &mut Client,
    st: &postgres::Statement,
    ds: &Dataset,
    range: std::ops::Range<usize>,
    pb: &indicatif::ProgressBar,
) -> Result<f64> {
    let t0 = Instant::now();
    for i in range {
        c.query(st, &[&VecParam(ds.query(i))])?;
        pb.inc(1);
    }
    Ok(t0.elapsed().as_secs_f64())
}

fn search(
    ctx: &Ctx,
    case: &Case,
    baseline: Option<&Case>,
    ds: &Dataset,
    metric: Metric,
    op: &str,
    r: &mut CaseResult,
) -> Result<()> {
    let args = &ctx.args;
    // The baseline's index stays built while the other cases run: their one-client pass
    // alternates blocks of queries with it.
    let mut baseline = baseline.filter(|b| b.id != case.id && args.block > 0);
    let mut base_conn = match baseline {
        Some(b) => {
            let mut c = ctx.connect()?;
            c.batch_execute("SET jit = off")?;
            // The baseline's queries must use its own index: a case on the same table and
            // operator (qv-sq8 over pgvector's column) could take them over.
            let plan = plan_of(&mut c, b, args, op, ds, 40)?;
            if plan.iter().any(|l| l.contains(&b.index)) {
                Some(c)
            } else {
                r.warnings.push(format!(
                    "no alternating blocks: the baseline's query would not use {} on this table (plan: {})",
                    b.index,
                    shorten_literals(&plan.join(" / "))
                ));
                baseline = None;
                None
            }
        }
        None => None,
    };
    r.paired_with = baseline.map(|b| b.label.clone());
    let nclients = args.clients.max(1);
    let mut conns: Vec<Client> = (0..nclients)
        .map(|_| ctx.connect())
        .collect::<Result<_>>()?;
    for c in conns.iter_mut() {
        c.batch_execute("SET jit = off")?;
    }
    let nq = ds.nqueries();
    let efs = &args.ef_search;
    let max_ef = *efs.iter().max().unwrap_or(&40);

    // The planner must use the index: check the plan once.
    {
        let plan = plan_of(&mut conns[0], case, args, op, ds, max_ef)?;
        if !plan.iter().any(|l| l.contains(&case.index)) {
            r.warnings.push(format!(
                "the planner did not choose {} (plan: {}); enable_seqscan = off was set for the measurement",
                case.index,
                shorten_literals(&plan.join(" / "))
            ));
            for c in conns.iter_mut() {
                c.batch_execute("SET enable_seqscan = off")?;
            }
        }
    }

    // Warm the caches: the index and the table (with TOAST) through pg_prewarm when it is available.
    {
        let c = &mut conns[0];
        if c.batch_execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
            .is_ok()
        {
            let _ = c.query(
                "SELECT pg_prewarm(to_regclass($1)), pg_prewarm(to_regclass($2)), \
                 (SELECT pg_prewarm(reltoastrelid) FROM pg_class WHERE oid = to_regclass($2) AND reltoastrelid <> 0)",
                &[&case.index, &case.table],
            );
        }
    }
    let reps = args.repeat.max(1);
    let paired_queries = if baseline.is_some() {
        reps * efs.len() * nq
    } else {
        0
    };
    let total =
        (args.warmup.min(nq) + reps * efs.len() * nq * (1 + nclients) + paired_queries) as u64;
    let pb = bar(total, "queries");
    // Warm-up (untimed).
    {
        let c = &mut conns[0];
        c.batch_execute(&set_sql(case, args, max_ef))?;
        let st = c.prepare(&query_sql(case, op, ds.dims, max_ef, args.bq_candidates))?;
        pb.set_message("warm-up");
        for i in 0..args.warmup.min(nq) {
            c.query(&st, &[&VecParam(ds.query(i))])?;
            pb.inc(1);
        }
    }
    for &ef in efs {
        let sql = query_sql(case, op, ds.dims, ef, args.bq_candidates);
        for c in conns.iter_mut() {
            c.batch_execute(&set_sql(case, args, ef))?;
        }
        // Pass 1: one client, all queries; gives recall and latency. With a baseline, the
        // queries go in blocks alternating with the baseline's (who goes first alternates too).
        pb.set_message(format!("ef_search {ef}, 1 client"));
        let base_st = match (baseline, base_conn.as_mut()) {
            (Some(b), Some(bc)) => {
                bc.batch_execute(&set_sql(b, args, ef))?;
                Some(bc.prepare(&query_sql(b, op, ds.dims, ef, args.bq_candidates))?)
            }
            _ => None,
        };
        let block = if base_st.is_some() {
            args.block
        } else {
            nq.max(1)
        };
        let (mut case_secs, mut base_secs) = (0.0, 0.0);
        let c = &mut conns[0];
        let st = c.prepare(&sql)?;
        let mut best1: Option<(f64, Vec<f64>)> = None;
        let mut got = Vec::with_capacity(nq);
        for rep in 0..reps {
            let mut lat = Vec::with_capacity(nq);
            let mut wall = 0.0;
            for (bi, start) in (0..nq).step_by(block).enumerate() {
                let end = (start + block).min(nq);
                let base_first = bi % 2 == 1;
                if let (true, Some(bs), Some(bc)) =
                    (base_first, base_st.as_ref(), base_conn.as_mut())
                {
                    base_secs += run_block(bc, bs, ds, start..end, &pb)?;
                }
                let t0 = Instant::now();
                for i in start..end {
                    let t = Instant::now();
                    let rows = c.query(&st, &[&VecParam(ds.query(i))])?;
                    lat.push(t.elapsed().as_secs_f64() * 1e3);
                    if rep == 0 {
                        got.push(
                            rows.iter()
                                .map(|row| row.get::<_, i32>(0))
                                .collect::<Vec<i32>>(),
                        );
                    }
                    pb.inc(1);
                }
                wall += t0.elapsed().as_secs_f64();
                if let (false, Some(bs), Some(bc)) =
                    (base_first, base_st.as_ref(), base_conn.as_mut())
                {
                    base_secs += run_block(bc, bs, ds, start..end, &pb)?;
                }
            }
            case_secs += wall;
            lat.sort_by(|a, b| a.total_cmp(b));
            if best1.as_ref().is_none_or(|(w, _)| wall < *w) {
                best1 = Some((wall, lat));
            }
        }
        let (wall1, lat) = best1.unwrap();
        if base_st.is_some() && case_secs > 0.0 && base_secs > 0.0 {
            r.paired.push(Paired {
                ef_search: ef,
                qps: (reps * nq) as f64 / case_secs,
                baseline_qps: (reps * nq) as f64 / base_secs,
            });
        }
        let recall = data::recall(ds, metric, K, &got);
        // Pass 2: N clients at once, each running every query from its own offset.
        pb.set_message(format!("ef_search {ef}, {nclients} clients"));
        let mut bestn: Option<(f64, Vec<f64>)> = None;
        for _rep in 0..reps {
            let t0 = Instant::now();
            let lats: Vec<Result<Vec<f64>>> = std::thread::scope(|scope| {
                let handles: Vec<_> = conns
                    .iter_mut()
                    .enumerate()
                    .map(|(ci, c)| {
                        let sql = &sql;
                        let pb = pb.clone();
                        scope.spawn(move || -> Result<Vec<f64>> {
                            let st = c.prepare(sql)?;
                            let mut l = Vec::with_capacity(nq);
                            for j in 0..nq {
                                let i = (j + ci * nq / nclients) % nq;
                                let t = Instant::now();
                                c.query(&st, &[&VecParam(ds.query(i))])?;
                                l.push(t.elapsed().as_secs_f64() * 1e3);
                                pb.inc(1);
                            }
                            Ok(l)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("client thread"))
                    .collect()
            });
            let walln = t0.elapsed().as_secs_f64();
            let mut all = Vec::new();
            for l in lats {
                all.extend(l?);
            }
            all.sort_by(|a, b| a.total_cmp(b));
            if bestn.as_ref().is_none_or(|(w, _)| walln < *w) {
                bestn = Some((walln, all));
            }
        }
        let (walln, all) = bestn.unwrap();
        r.points.push(Point {
            ef_search: ef,
            recall,
            qps1: nq as f64 / wall1,
            p50_ms1: percentile(&lat, 0.5),
            p99_ms1: percentile(&lat, 0.99),
            qps_n: all.len() as f64 / walln,
            p50_ms_n: percentile(&all, 0.5),
            p99_ms_n: percentile(&all, 0.99),
        });
        pb.set_message(format!("ef_search {ef}: recall@10 {recall:.3}"));
    }
    pb.finish();
    Ok(())
}
