//! The dashboard in headless Chromium: the figures rendered for the demo index equal
//! quantization_stats, the quantizer table equals quantization_optimize, live QPS is
//! charted, no console errors, and a screenshot is saved as a test artifact
//! (target/test-artifacts/dashboard.png). Run: cargo test --release --test dashboard -- --ignored --nocapture
mod common;

use common::{Cluster, Vq};
use serde_json::{json, Value};
use std::process::Command;

/// Headless Chromium with a throwaway profile; returns (stdout, stderr).
fn chromium(args: &[&str]) -> (String, String) {
    let bin = std::env::var("VQ_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let profile = std::env::temp_dir().join(format!("vq-chromium-{}", std::process::id()));
    let out = Command::new("timeout")
        .arg("180")
        .arg(&bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-dev-shm-usage",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {bin}: {e} (apt-get install chromium)"));
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Console errors and failed loads in Chromium's log.
fn console_problems(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| {
            l.contains("CONSOLE") || l.contains("Uncaught") || l.contains("Failed to load resource")
        })
        .map(str::to_string)
        .collect()
}

/// The data-value of the element with this id (parsed as JSON).
fn figure(dom: &str, id: &str) -> Value {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element #{id} in the DOM"));
    let rest = &dom[at..];
    let v = rest
        .split("data-value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap();
    serde_json::from_str(&v.replace("&quot;", "\"")).unwrap()
}

#[test]
#[ignore]
fn dashboard_in_headless_chromium() {
    let cluster = Cluster::start();
    let mut db = cluster.sql();
    // An index on an empty table: its section may only show what can be measured, and
    // must not hide the others.
    db.batch_execute(
        "CREATE TABLE empty_t (id int PRIMARY KEY, v qvector(8));
         CREATE INDEX empty_idx ON empty_t USING qhnsw (v qvector_l2_ops);
         GRANT SELECT ON empty_t TO vq_app;",
    )
    .unwrap();
    let vq = Vq::serve(
        &cluster.url("vq_app"),
        &["--dashboard-sample-queries", "50"],
    );
    // Traffic for the live charts: searches over ~3 s while the sampler ticks every 0.5 s.
    let q: String = db
        .query_one("SELECT embedding::text FROM items WHERE id = 3", &[])
        .unwrap()
        .get(0);
    let body = json!({"vector": serde_json::from_str::<Value>(&q).unwrap(), "k": 10}).to_string();
    let t0 = std::time::Instant::now();
    let mut n = 0;
    while t0.elapsed().as_secs_f64() < 3.0 {
        let (st, _) = vq.call(
            "POST",
            "/collections/items_embedding_idx/search",
            Some(&body),
            None,
        );
        assert_eq!(st, 200);
        n += 1;
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    println!("{n} searches for the live charts");
    let (st, html) = vq.get_text("/"); // computes and caches the measured figures
    assert_eq!(st, 200, "{html}");
    assert!(
        !html.contains("http://") && !html.contains("https://") && !html.contains("<script src"),
        "external asset in the page"
    );

    let url = format!("http://127.0.0.1:{}/", vq.port);
    let (dom, log) = chromium(&["--dump-dom", &url]);
    assert!(
        dom.contains("quantization dashboard"),
        "page did not render: {dom}"
    );
    assert!(
        dom.contains("id=\"collection-empty_idx\""),
        "no section for the empty index"
    );
    let problems = console_problems(&log);
    assert!(problems.is_empty(), "console errors: {problems:?}");

    let truth: Value = db
        .query_one(
            "SELECT to_jsonb(s) FROM quantization_stats('items_embedding_idx', 50) s",
            &[],
        )
        .unwrap()
        .get(0);
    for k in [
        "vectors",
        "index_bytes",
        "float4_bytes",
        "compression_ratio",
        "memory_usage_mb",
        "recall_at_10",
        "map_at_10",
        "estimated_quality_loss",
    ] {
        let shown = figure(&dom, &format!("items_embedding_idx--{k}"));
        assert_eq!(
            shown, truth[k],
            "dashboard {k} differs from quantization_stats"
        );
        println!("ok: dashboard {k} = {shown}");
    }
    let docs: Value = db
        .query_one(
            "SELECT to_jsonb(s) FROM quantization_stats('docs_emb_idx', 50) s",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        figure(&dom, "docs_emb_idx--compression_ratio"),
        docs["compression_ratio"]
    );
    assert_eq!(
        figure(&dom, "docs_emb_idx--recall_at_10"),
        docs["recall_at_10"]
    );
    // The quantizer comparison is quantization_optimize's rows.
    let cands: Vec<Value> = db
        .query(
            "SELECT to_jsonb(o) FROM quantization_optimize('items_embedding_idx', 0.95, false) o",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let section = dom
        .split("id=\"collection-items_embedding_idx\"")
        .nth(1)
        .unwrap();
    let rows: Vec<&str> = section.split("<tr class=\"candidate\"").skip(1).collect();
    assert_eq!(rows.len(), cands.len());
    for (row, c) in rows.iter().zip(&cands) {
        assert!(
            row.contains(&format!(
                "data-method=\"{}\"",
                c["method"].as_str().unwrap()
            )),
            "{row}"
        );
        assert!(
            row.contains(&format!("data-recall=\"{}\"", c["recall"])),
            "{row} vs {c}"
        );
    }
    println!(
        "ok: quantizer comparison = quantization_optimize ({} rows)",
        cands.len()
    );
    // Live QPS chart has data (a polyline), scans figure counts our searches.
    let live = &section[section.find("Live QPS").expect("live QPS chart")..];
    let chart = &live[..live.find("</svg>").unwrap()];
    assert!(chart.contains("<polyline"), "no live QPS line: {chart}");
    assert!(
        figure(&dom, "items_embedding_idx--live_scans")
            .as_i64()
            .unwrap()
            >= n
    );

    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/target/test-artifacts");
    std::fs::create_dir_all(dir).unwrap();
    let png = format!("{dir}/dashboard.png");
    let _ = std::fs::remove_file(&png);
    let (_, log) = chromium(&[
        &format!("--screenshot={png}"),
        "--window-size=1280,1400",
        "--hide-scrollbars",
        &url,
    ]);
    assert!(console_problems(&log).is_empty());
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 10_000,
        "screenshot {png} missing or empty ({size} bytes)"
    );
    println!("ok: screenshot {png} ({size} bytes)");
}
