//! MCP conformance: the official Python MCP SDK drives `vq mcp` over stdio
//! (tests/mcp_client.py) against a real cluster, then the same tools over streamable HTTP
//! (`vq serve --mcp-http`); the SQL truth is computed here.
//! Run: cargo test --release --test mcp -- --ignored --nocapture
mod common;

use common::Cluster;
use serde_json::{json, Value};
use std::process::Command;

#[test]
#[ignore]
fn mcp_over_stdio_with_python_sdk() {
    let cluster = Cluster::start();
    let mut db = cluster.sql();
    let one =
        |db: &mut postgres::Client, q: &str| -> Value { db.query_one(q, &[]).unwrap().get(0) };
    let stats0 = one(
        &mut db,
        "SELECT to_jsonb(s) FROM quantization_stats('items_embedding_idx', 0) s",
    );
    let recall20 = one(
        &mut db,
        "SELECT to_jsonb(recall_at_10) FROM quantization_stats('items_embedding_idx', 20)",
    );
    let optimize = one(&mut db, "SELECT jsonb_agg(to_jsonb(o)) FROM quantization_optimize('items_embedding_idx', 0.9, false) o");
    let q: String = db
        .query_one("SELECT embedding::text FROM items WHERE id = 11", &[])
        .unwrap()
        .get(0);
    let mut tx = db.transaction().unwrap();
    tx.batch_execute("SET LOCAL qhnsw.ef_search = 64").unwrap();
    let ids: Vec<i64> = tx
        .query(
            &format!("SELECT id FROM items ORDER BY embedding <-> '{q}'::qvector LIMIT 5"),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    tx.commit().unwrap();
    let truth = json!({
        "stats0": stats0, "recall20": recall20, "optimize": optimize,
        "vector": serde_json::from_str::<Value>(&q).unwrap(), "search_ids": ids,
    });
    let path = cluster.dir.join("truth.json");
    std::fs::write(&path, truth.to_string()).unwrap();
    // The same tools over streamable HTTP (vq serve --mcp-http).
    let http = common::Vq::serve(
        &cluster.url("vq_app"),
        &["--mcp-http", "--token", "mcp-t0ken"],
    );
    let mcp_url = format!("http://127.0.0.1:{}/mcp", http.port);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mcp_client.py");
    let out = Command::new("python3")
        .args([
            script,
            env!("CARGO_BIN_EXE_vq"),
            &cluster.url("vq_app"),
            "mcp-t0ken",
            path.to_str().unwrap(),
            &mcp_url,
        ])
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "python MCP client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("MCP checks passed"));
    let method: String = db
        .query_one(
            "SELECT method FROM qhnsw_index_meta('items_embedding_idx')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(method, "sq4", "apply_quantization changed the index");
}
