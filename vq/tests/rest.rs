//! REST endpoints against a real PostgreSQL with the extension: every endpoint, the
//! error mapping (404, 400, 401, 403 with SQLSTATE, 413), and numbers equal to what the
//! SQL functions return. Run: cargo test --release --test rest -- --ignored --nocapture
mod common;

use common::{Cluster, Vq};
use serde_json::{json, Value};

/// The SQL function's row as JSON, computed by the test itself (superuser connection).
fn sql_json(db: &mut postgres::Client, q: &str) -> Value {
    db.query_one(q, &[]).unwrap().get(0)
}

#[test]
#[ignore]
fn rest_endpoints() {
    let cluster = Cluster::start();
    let mut db = cluster.sql();
    let vq = Vq::serve(&cluster.url("vq_app"), &["--token", "s3cret"]);

    // Collections: both indexes, equal to the qhnsw_indexes view.
    let (st, v) = vq.call("GET", "/collections", None, None);
    assert_eq!(st, 200, "{v}");
    let names: Vec<&str> = v["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["indexname"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["docs_emb_idx", "items_embedding_idx"]);
    let want = sql_json(
        &mut db,
        "SELECT to_jsonb(q) FROM qhnsw_indexes q WHERE indexname = 'items_embedding_idx'",
    );
    let got = &v["collections"][1];
    for k in [
        "index_bytes",
        "vectors",
        "method",
        "dimensions",
        "metric",
        "compression_ratio",
        "indexrelid",
    ] {
        assert_eq!(got[k], want[k], "collections field {k}");
    }
    assert_eq!(got["address"], "items.embedding");

    // One collection by index name and by table.column.
    let (st, a) = vq.call("GET", "/collections/items_embedding_idx", None, None);
    assert_eq!(st, 200, "{a}");
    let (_, b) = vq.call("GET", "/collections/items.embedding", None, None);
    assert_eq!(a["indexrelid"], b["indexrelid"]);
    assert_eq!(a["meta"]["method"], "sq8", "{a}");
    assert_eq!(a["meta"]["m"], 16);
    println!("ok: GET /collections, /collections/{{name}} (index name and table.column)");

    // Unknown collection: 404 JSON.
    let (st, e) = vq.call("GET", "/collections/nope/quantization/stats", None, None);
    assert_eq!(st, 404, "{e}");
    assert_eq!(e["error"]["code"], "not_found");
    let (st, e) = vq.call("GET", "/no/such/route", None, None);
    assert_eq!((st, e["error"]["code"].as_str()), (404, Some("not_found")));
    println!("ok: unknown collection / route -> 404");

    // Stats equal quantization_stats exactly; with samples, recall/MAP equal too.
    let (st, s) = vq.call(
        "GET",
        "/collections/items_embedding_idx/quantization/stats",
        None,
        None,
    );
    assert_eq!(st, 200, "{s}");
    let want = sql_json(
        &mut db,
        "SELECT to_jsonb(s) FROM quantization_stats('items_embedding_idx', 0) s",
    );
    assert_eq!(s, want, "stats differ from quantization_stats");
    let (st, s) = vq.call(
        "GET",
        "/collections/items.embedding/quantization/stats?sample_queries=20",
        None,
        None,
    );
    assert_eq!(st, 200, "{s}");
    let want = sql_json(
        &mut db,
        "SELECT to_jsonb(s) FROM quantization_stats('items_embedding_idx', 20) s",
    );
    for k in [
        "recall_at_10",
        "map_at_10",
        "index_bytes",
        "float4_bytes",
        "compression_ratio",
        "estimated_quality_loss",
        "reconstruction_error",
        "vectors",
    ] {
        assert_eq!(s[k], want[k], "sampled stats field {k}");
    }
    assert!(s["recall_at_10"].as_f64().unwrap() > 0.5, "{s}");
    assert!(s["p99_latency_ms"].as_f64().unwrap() >= s["mean_latency_ms"].as_f64().unwrap() * 0.0);
    let (st, e) = vq.call(
        "GET",
        "/collections/items_embedding_idx/quantization/stats?sample_queries=abc",
        None,
        None,
    );
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (400, Some("bad_request")),
        "{e}"
    );
    let (st, _) = vq.call(
        "GET",
        "/collections/items_embedding_idx/quantization/stats?sample_queries=20000",
        None,
        None,
    );
    assert_eq!(st, 400);
    println!("ok: GET stats equals quantization_stats (0 and 20 sample queries); bad sample_queries -> 400");

    // Search: the same ids and distances as the SQL query through the index.
    let q: String = db
        .query_one("SELECT embedding::text FROM items WHERE id = 7", &[])
        .unwrap()
        .get(0);
    let qv: Value = serde_json::from_str(&q).unwrap();
    let body = json!({"vector": qv, "k": 5, "ef_search": 64}).to_string();
    let (st, r) = vq.call(
        "POST",
        "/collections/items_embedding_idx/search",
        Some(&body),
        None,
    );
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["ef_search"], 64);
    let mut tx = db.transaction().unwrap();
    tx.batch_execute("SET LOCAL qhnsw.ef_search = 64").unwrap();
    let rows = tx
        .query(&format!("SELECT id, (embedding <-> '{q}'::qvector)::float8 FROM items ORDER BY embedding <-> '{q}'::qvector LIMIT 5"), &[])
        .unwrap();
    tx.commit().unwrap();
    let want: Vec<Value> = rows
        .iter()
        .map(|r| json!({"id": r.get::<_, i64>(0), "distance": r.get::<_, f64>(1)}))
        .collect();
    assert_eq!(r["results"], Value::Array(want));
    assert_eq!(r["results"][0]["id"], 7);
    assert_eq!(r["results"][0]["distance"], 0.0);
    // Cosine index on a table without a primary key: ids are ctids.
    let dq: String = db
        .query_one("SELECT emb::text FROM docs WHERE body = 'doc 3'", &[])
        .unwrap()
        .get(0);
    let body = json!({"vector": serde_json::from_str::<Value>(&dq).unwrap(), "k": 3}).to_string();
    let (st, r) = vq.call("POST", "/collections/docs.emb/search", Some(&body), None);
    assert_eq!(st, 200, "{r}");
    let ctid: String = db
        .query_one("SELECT ctid::text FROM docs WHERE body = 'doc 3'", &[])
        .unwrap()
        .get(0);
    assert_eq!(r["results"][0]["id"], json!(ctid));
    assert_eq!(r["metric"], "cosine");
    println!("ok: POST search equals the SQL query (l2 with primary key, cosine with ctid)");

    // Bad vectors: 400 (JSON shape checked by vq, dimensions by PostgreSQL with SQLSTATE).
    let (st, e) = vq.call(
        "POST",
        "/collections/items_embedding_idx/search",
        Some(r#"{"vector": [1, 2, 3]}"#),
        None,
    );
    assert_eq!(st, 400, "{e}");
    assert_eq!(
        e["error"]["sqlstate"].as_str().map(|s| &s[..2]),
        Some("22"),
        "{e}"
    );
    let (st, e) = vq.call(
        "POST",
        "/collections/items_embedding_idx/search",
        Some(r#"{"vector": ["a"]}"#),
        None,
    );
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (400, Some("bad_request")),
        "{e}"
    );
    let (st, _) = vq.call(
        "POST",
        "/collections/items_embedding_idx/search",
        Some(r#"{"vector": [1], "k": 0}"#),
        None,
    );
    assert_eq!(st, 400);
    let (st, _) = vq.call(
        "POST",
        "/collections/items_embedding_idx/search",
        Some("not json"),
        None,
    );
    assert_eq!(st, 400);
    let (st, e) = vq.call(
        "POST",
        "/collections/items_embedding_idx/search",
        Some(&body.replace("\"k\":3", "\"k\":3,\"ef_search\":-5")),
        None,
    );
    assert_eq!(st, 400, "ef_search -5: {e}");
    let big = format!("{{\"vector\": [{}]}}", vec!["0.125"; 300_000].join(","));
    let (st, e) = vq.call(
        "POST",
        "/collections/items_embedding_idx/search",
        Some(&big),
        None,
    );
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (413, Some("payload_too_large")),
        "{e}"
    );
    println!("ok: bad vector / k / JSON / ef_search -> 400; 2 MB body -> 413");

    // Optimize without apply: a read, equal to quantization_optimize.
    let (st, o) = vq.call(
        "POST",
        "/collections/items_embedding_idx/quantization/optimize",
        Some(r#"{"quality_threshold": 0.9}"#),
        None,
    );
    assert_eq!(st, 200, "{o}");
    let want: Vec<Value> = db
        .query(
            "SELECT to_jsonb(o) FROM quantization_optimize('items_embedding_idx', 0.9, false) o",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(o["candidates"], Value::Array(want.clone()));
    assert_eq!(o["applied"], false);
    let chosen = want
        .iter()
        .find(|r| r["chosen"] == true)
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(o["chosen"], chosen);
    println!(
        "ok: POST optimize (apply=false) equals quantization_optimize ({} candidates)",
        want.len()
    );

    // Writes need the token: 401 without or with a wrong one.
    let (st, e) = vq.call(
        "POST",
        "/collections/items_embedding_idx/quantization/optimize",
        Some(r#"{"apply": true}"#),
        None,
    );
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (401, Some("unauthorized")),
        "{e}"
    );
    let (st, _) = vq.call(
        "POST",
        "/collections/items_embedding_idx/quantize",
        Some(r#"{"quantizer": "sq4"}"#),
        Some("wrong"),
    );
    assert_eq!(st, 401);
    let (st, _) = vq.call(
        "POST",
        "/collections/items_embedding_idx/quantize",
        Some(r#"{"quantizer": "sq4"}"#),
        None,
    );
    assert_eq!(st, 401);
    println!("ok: writes without / with a wrong token -> 401");

    // SQL errors mapped: not the owner -> 403 42501; bad quantizer -> 400 with SQLSTATE 22023.
    let (st, e) = vq.call(
        "POST",
        "/collections/docs_emb_idx/quantize",
        Some(r#"{"quantizer": "sq8"}"#),
        Some("s3cret"),
    );
    assert_eq!(
        (st, e["error"]["sqlstate"].as_str()),
        (403, Some("42501")),
        "{e}"
    );
    let (st, e) = vq.call(
        "POST",
        "/collections/items_embedding_idx/quantize",
        Some(r#"{"quantizer": "sq3"}"#),
        Some("s3cret"),
    );
    assert_eq!(st, 400, "{e}");
    assert_eq!(e["error"]["sqlstate"], "22023", "{e}");
    let meta = sql_json(
        &mut db,
        "SELECT to_jsonb(meta_row) FROM qhnsw_index_meta('items_embedding_idx') meta_row",
    );
    assert_eq!(
        meta["method"], "sq8",
        "a failed re-quantize must leave the index alone"
    );
    println!("ok: SQL errors mapped (42501 -> 403, 22023 -> 400), failed ALTER rolled back");

    // Re-quantize to sq4, then retrain, with the token.
    let (st, r) = vq.call(
        "POST",
        "/collections/items.embedding/quantize",
        Some(r#"{"quantizer": "sq4"}"#),
        Some("s3cret"),
    );
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["quantize"]["method"], "sq4");
    assert_eq!(r["quantize"]["vectors"], 3000);
    assert_eq!(r["index"]["method"], "sq4");
    let meta = sql_json(
        &mut db,
        "SELECT to_jsonb(meta_row) FROM qhnsw_index_meta('items_embedding_idx') meta_row",
    );
    assert_eq!(meta["method"], "sq4");
    let (st, r) = vq.call(
        "POST",
        "/collections/items_embedding_idx/quantize",
        Some("{}"),
        Some("s3cret"),
    );
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["quantize"]["method"], "sq4");
    let (_, s) = vq.call(
        "GET",
        "/collections/items_embedding_idx/quantization/stats",
        None,
        None,
    );
    let want = sql_json(
        &mut db,
        "SELECT to_jsonb(s) FROM quantization_stats('items_embedding_idx', 0) s",
    );
    assert_eq!(s, want);
    // Apply the optimizer's choice with the token.
    let (st, o) = vq.call(
        "POST",
        "/collections/items_embedding_idx/quantization/optimize",
        Some(r#"{"quality_threshold": 0.9, "apply": true}"#),
        Some("s3cret"),
    );
    assert_eq!(st, 200, "{o}");
    assert_eq!(o["applied"], !o["chosen"].is_null());
    let meta = sql_json(
        &mut db,
        "SELECT to_jsonb(meta_row) FROM qhnsw_index_meta('items_embedding_idx') meta_row",
    );
    if o["applied"] == true {
        assert_eq!(meta["method"], o["chosen"]["method"]);
    }
    println!(
        "ok: POST quantize sq4 / retrain, optimize apply=true -> index now {}",
        meta["method"]
    );

    // Live counters: searches counted in qhnsw_stat_indexes, shown by GET /collections/{name}.
    let before: i64 = db
        .query_one(
            "SELECT scans FROM qhnsw_stat_indexes WHERE indexname = 'items_embedding_idx'",
            &[],
        )
        .unwrap()
        .get(0);
    let body = json!({"vector": qv, "k": 5}).to_string();
    for _ in 0..5 {
        let (st, _) = vq.call(
            "POST",
            "/collections/items_embedding_idx/search",
            Some(&body),
            None,
        );
        assert_eq!(st, 200);
    }
    let (_, d) = vq.call("GET", "/collections/items_embedding_idx", None, None);
    let after: i64 = db
        .query_one(
            "SELECT scans FROM qhnsw_stat_indexes WHERE indexname = 'items_embedding_idx'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(after - before, 5);
    assert_eq!(d["live"]["scans"], after);
    println!("ok: live counters ({after} scans) equal qhnsw_stat_indexes");

    // OpenAPI document.
    let (st, doc) = vq.call("GET", "/openapi.json", None, None);
    assert_eq!(st, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    for p in [
        "/collections",
        "/collections/{name}",
        "/collections/{name}/quantization/stats",
        "/collections/{name}/quantization/optimize",
        "/collections/{name}/quantize",
        "/collections/{name}/search",
    ] {
        assert!(doc["paths"][p].is_object(), "openapi lacks {p}");
    }
    println!("ok: /openapi.json");
    drop(vq);

    // Read-only mode: writes refused even with the token; reads work.
    let ro = Vq::serve(
        &cluster.url("vq_app"),
        &["--token", "s3cret", "--read-only"],
    );
    let (st, e) = ro.call(
        "POST",
        "/collections/items_embedding_idx/quantize",
        Some("{}"),
        Some("s3cret"),
    );
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (403, Some("read_only")),
        "{e}"
    );
    let (st, _) = ro.call(
        "GET",
        "/collections/items_embedding_idx/quantization/stats?sample_queries=5",
        None,
        None,
    );
    assert_eq!(st, 200);
    drop(ro);
    // No token configured: writes disabled (403), not open.
    let nt = Vq::serve(&cluster.url("vq_app"), &[]);
    let (st, e) = nt.call(
        "POST",
        "/collections/items_embedding_idx/quantize",
        Some("{}"),
        Some("anything"),
    );
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (403, Some("writes_disabled")),
        "{e}"
    );
    drop(nt);
    println!("ok: --read-only and token-less servers refuse writes (403)");

    // statement_timeout: a long measurement is canceled (57014) and answered 504.
    let slow = Vq::serve(&cluster.url("vq_app"), &["--statement-timeout", "100ms"]);
    let (st, e) = slow.call(
        "GET",
        "/collections/items_embedding_idx/quantization/stats?sample_queries=10000",
        None,
        None,
    );
    assert_eq!(
        (st, e["error"]["sqlstate"].as_str()),
        (504, Some("57014")),
        "{e}"
    );
    let (st, h) = slow.call("GET", "/healthz", None, None);
    assert_eq!(
        (st, h["role"].as_str()),
        (200, Some("vq_app")),
        "the pool recovers after a cancel"
    );
    drop(slow);
    println!("ok: statement_timeout -> 504 with SQLSTATE 57014");

    // A superuser role is refused unless --allow-superuser.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vq"))
        .args([
            "serve",
            "--database-url",
            &cluster.url("postgres"),
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is a superuser"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("ok: superuser connection refused by default");
}
