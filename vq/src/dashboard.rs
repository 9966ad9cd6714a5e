//! The dashboard at `/`: per collection its size against float4, compression, measured
//! recall/MAP and latency (quantization_stats with sample_queries), live QPS and mean
//! latency over time (the sampler), and the quantizer comparison of quantization_optimize.
//! Every figure is in an element with a stable id and `data-metric`/`data-value` (the raw
//! JSON number) so tests and scrapers can read it.

use crate::error::ApiError;
use crate::service::{Collection, Service};
use crate::svg::{bars, compare, esc, line, num};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::fmt::Write;
use std::time::{Duration, Instant};

/// How long measured stats and the quantizer comparison are reused.
const STATS_TTL: Duration = Duration::from_secs(60);
const COMPARE_TTL: Duration = Duration::from_secs(600);

/// Cached SQL results keyed by index OID and the index state they were computed on.
#[derive(Default)]
pub struct Cache {
    stats: HashMap<(u32, String), (Instant, Value)>,
    compare: HashMap<(u32, String), (Instant, Value)>,
    /// p99 latency of each measuring quantization_stats run, per index (last HISTORY runs).
    p99: HashMap<u32, VecDeque<(Instant, Option<f64>)>>,
}

/// Measuring runs kept per index for the p99 chart.
const HISTORY: usize = 120;

/// A key that changes when the index is rebuilt or grows.
fn state_key(c: &Collection) -> String {
    format!(
        "{}|{}|{}|{}",
        c.row["method"], c.row["parameters"], c.row["index_bytes"], c.row["vectors"]
    )
}

/// One figure: label, metric key, raw JSON value, shown text.
fn figure(out: &mut String, idx: &str, key: &str, label: &str, v: &Value, shown: String) {
    let _ = write!(
        out,
        r#"<div class="fig"><dt>{l}</dt><dd id="{id}" data-metric="{k}" data-value="{raw}">{s}</dd></div>"#,
        l = esc(label),
        id = esc(&format!("{idx}--{key}")),
        k = esc(key),
        raw = esc(&v.to_string()),
        s = esc(&shown)
    );
}

/// A float figure shown with `digits` decimals (NULL shows as n/a).
fn fnum(v: &Value, digits: usize, unit: &str) -> String {
    match v.as_f64() {
        Some(x) => format!("{x:.digits$}{unit}"),
        None => "n/a".into(),
    }
}

/// Bytes in MiB.
fn mib(v: &Value) -> String {
    v.as_f64()
        .map(|b| format!("{:.2} MiB", b / 1048576.0))
        .unwrap_or_else(|| "n/a".into())
}

/// Renders the whole page.
pub async fn render(s: &Service) -> Result<String, ApiError> {
    let collections = s.list_collections().await?;
    let mut cache = s.cache.lock().await;
    let mut body = String::new();
    for row in &collections {
        let c = Collection {
            oid: match &row["indexrelid"] {
                Value::String(s) => s.parse().unwrap_or(0),
                v => v.as_u64().unwrap_or(0) as u32,
            },
            row: row.clone(),
        };
        let key = (c.oid, state_key(&c));
        let stats = match cache.stats.get(&key) {
            Some((t, v)) if t.elapsed() < STATS_TTL => Ok(v.clone()),
            _ => {
                let r = s.stats(&c, s.settings.dashboard_sample_queries).await;
                if let Ok(v) = &r {
                    cache.stats.insert(key.clone(), (Instant::now(), v.clone()));
                    let h = cache.p99.entry(c.oid).or_default();
                    if h.len() == HISTORY {
                        h.pop_front();
                    }
                    h.push_back((Instant::now(), v["p99_latency_ms"].as_f64()));
                }
                r
            }
        };
        let compare = match cache.compare.get(&key) {
            Some((t, v)) if t.elapsed() < COMPARE_TTL => Ok(v.clone()),
            _ => {
                let r = s.optimize(&c, 0.95, false).await;
                if let Ok(v) = &r {
                    cache
                        .compare
                        .insert(key.clone(), (Instant::now(), v.clone()));
                }
                r
            }
        };
        let live = s.live_counters(&c).await?;
        match (stats, compare) {
            (Ok(st), Ok(cmp)) => {
                let p99: Vec<(f64, Option<f64>)> = cache
                    .p99
                    .get(&c.oid)
                    .map(|h| {
                        h.iter()
                            .map(|(t, v)| (-t.elapsed().as_secs_f64(), *v))
                            .collect()
                    })
                    .unwrap_or_default();
                section(&mut body, s, &c, &st, &cmp, &live, &p99);
            }
            (Err(e), _) | (_, Err(e)) => {
                // One collection that cannot be measured (e.g. an empty table) must not hide the others.
                let _ = write!(
                    body,
                    r#"<section class="collection" id="collection-{id}" data-collection="{id}"><h2>{id}</h2><p class="error" data-sqlstate="{st}">{m}</p></section>"#,
                    id = esc(c.name()),
                    st = esc(e.sqlstate.as_deref().unwrap_or("")),
                    m = esc(&e.message)
                );
            }
        }
    }
    drop(cache);
    if collections.is_empty() {
        body.push_str(r#"<p id="no-collections">No qhnsw index is readable by this role.</p>"#);
    }
    Ok(format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="15"><title>vq — vectorize_quant dashboard</title><style>{css}</style></head><body><header><h1>vectorize_quant · quantization dashboard</h1><p>{n} collection(s) · measured figures from <code>quantization_stats(index, sample_queries =&gt; {sq})</code> · live QPS and latency sampled from <code>qhnsw_stat_indexes</code> · refreshes every 15 s · <a href="/openapi.json">API</a></p></header>{body}</body></html>"#,
        css = CSS,
        n = collections.len(),
        sq = s.settings.dashboard_sample_queries
    ))
}

/// The section of one collection.
fn section(
    out: &mut String,
    s: &Service,
    c: &Collection,
    st: &Value,
    cmp: &Value,
    live: &Value,
    p99: &[(f64, Option<f64>)],
) {
    let idx = c.name().to_string();
    let _ = write!(
        out,
        r#"<section class="collection" id="collection-{id}" data-collection="{id}"><h2>{id} <small>{addr} · {m} {p} · {d} dims · {metric}</small></h2><dl class="figures">"#,
        id = esc(&idx),
        addr = esc(c.row["address"].as_str().unwrap_or("")),
        m = esc(st["method"].as_str().unwrap_or("")),
        p = esc(st["parameters"].as_str().unwrap_or("")),
        d = st["dimensions"],
        metric = esc(st["metric"].as_str().unwrap_or(""))
    );
    figure(
        out,
        &idx,
        "vectors",
        "vectors",
        &st["vectors"],
        st["vectors"].to_string(),
    );
    figure(
        out,
        &idx,
        "index_bytes",
        "index size",
        &st["index_bytes"],
        mib(&st["index_bytes"]),
    );
    figure(
        out,
        &idx,
        "float4_bytes",
        "float4 size",
        &st["float4_bytes"],
        mib(&st["float4_bytes"]),
    );
    figure(
        out,
        &idx,
        "compression_ratio",
        "compression ratio",
        &st["compression_ratio"],
        fnum(&st["compression_ratio"], 2, "×"),
    );
    figure(
        out,
        &idx,
        "memory_usage_mb",
        "memory (MiB)",
        &st["memory_usage_mb"],
        fnum(&st["memory_usage_mb"], 2, ""),
    );
    figure(
        out,
        &idx,
        "recall_at_10",
        "recall@10",
        &st["recall_at_10"],
        fnum(&st["recall_at_10"], 4, ""),
    );
    figure(
        out,
        &idx,
        "map_at_10",
        "MAP@10",
        &st["map_at_10"],
        fnum(&st["map_at_10"], 4, ""),
    );
    figure(
        out,
        &idx,
        "estimated_quality_loss",
        "est. quality loss",
        &st["estimated_quality_loss"],
        fnum(&st["estimated_quality_loss"], 4, ""),
    );
    figure(
        out,
        &idx,
        "mean_latency_ms",
        "mean latency",
        &st["mean_latency_ms"],
        fnum(&st["mean_latency_ms"], 3, " ms"),
    );
    figure(
        out,
        &idx,
        "p99_latency_ms",
        "p99 latency",
        &st["p99_latency_ms"],
        fnum(&st["p99_latency_ms"], 3, " ms"),
    );
    figure(
        out,
        &idx,
        "qps",
        "QPS (sampled)",
        &st["qps"],
        fnum(&st["qps"], 0, ""),
    );
    figure(
        out,
        &idx,
        "live_scans",
        "scans (live)",
        &live["scans"],
        live["scans"].to_string(),
    );
    out.push_str("</dl><div class=\"charts\">");
    let index_mb = st["index_bytes"].as_f64().unwrap_or(0.0) / 1048576.0;
    let float_mb = st["float4_bytes"].as_f64().unwrap_or(0.0) / 1048576.0;
    out.push_str(&bars(
        "Index size vs float4 vectors",
        &[
            ("float4".into(), float_mb, "#aaaaaa"),
            ("index".into(), index_mb, "#1f77b4"),
        ],
        "MiB",
    ));
    let recall = st["recall_at_10"].as_f64().unwrap_or(0.0);
    let map = st["map_at_10"].as_f64().unwrap_or(0.0);
    out.push_str(&bars(
        "Measured quality (sampled index scans)",
        &[
            ("recall@10".into(), recall, "#2ca02c"),
            ("MAP@10".into(), map, "#98df8a"),
            ("1.0".into(), 1.0, "#dddddd"),
        ],
        "",
    ));
    let pts = s.sampler.points(c.oid);
    let t_end = pts.last().map(|p| p.unix_ms).unwrap_or(0.0);
    let qps: Vec<(f64, Option<f64>)> = pts
        .iter()
        .map(|p| ((p.unix_ms - t_end) / 1000.0, Some(p.qps)))
        .collect();
    let lat: Vec<(f64, Option<f64>)> = pts
        .iter()
        .map(|p| ((p.unix_ms - t_end) / 1000.0, p.mean_latency_ms))
        .collect();
    out.push_str(&line(
        "Live QPS (index scans per second)",
        &qps,
        "q/s",
        "#ff7f0e",
    ));
    out.push_str(&line("Live mean scan latency", &lat, "ms", "#9467bd"));
    out.push_str(&line(
        "p99 latency of each measuring run (quantization_stats)",
        p99,
        "ms",
        "#8c564b",
    ));
    let current = st["method"].as_str().unwrap_or("");
    let current_params = st["parameters"].as_str().unwrap_or("");
    let cands = cmp["candidates"].as_array().cloned().unwrap_or_default();
    let pts: Vec<(String, f64, f64, bool, bool)> = cands
        .iter()
        .map(|r| {
            let m = r["method"].as_str().unwrap_or("");
            let p = r["parameters"].as_str().unwrap_or("");
            (
                if p.is_empty() {
                    m.to_string()
                } else {
                    format!("{m} {}", p.replace("pq_", ""))
                },
                r["bytes_per_vector"].as_f64().unwrap_or(0.0),
                r["recall"].as_f64().unwrap_or(0.0),
                r["chosen"] == Value::Bool(true),
                m == current && p == current_params,
            )
        })
        .collect();
    out.push_str(&compare(
        "Quantizers compared by quantization_optimize (threshold 0.95): size vs recall",
        &pts,
    ));
    out.push_str("</div><table class=\"compare\"><thead><tr><th>method</th><th>parameters</th><th>bits/dim</th><th>bytes/vector</th><th>recall@10</th><th>chosen</th></tr></thead><tbody>");
    for r in &cands {
        let m = r["method"].as_str().unwrap_or("");
        let p = r["parameters"].as_str().unwrap_or("");
        let _ = write!(
            out,
            r#"<tr class="candidate" data-method="{m}" data-parameters="{p}" data-recall="{rr}" data-bytes="{b}"><td>{m}</td><td>{p}</td><td>{bits}</td><td>{b}</td><td>{rs}</td><td>{ch}</td></tr>"#,
            m = esc(m),
            p = esc(p),
            rr = esc(&r["recall"].to_string()),
            b = r["bytes_per_vector"],
            bits = num(r["bits_per_dimension"].as_f64().unwrap_or(0.0)),
            rs = fnum(&r["recall"], 4, ""),
            ch = if r["chosen"] == Value::Bool(true) {
                "✔"
            } else {
                ""
            }
        );
    }
    out.push_str("</tbody></table></section>");
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:16px;color:#222;background:#fafafa}\
h1{font-size:20px;margin:0}header p{color:#555;font-size:13px}\
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:12px;margin:12px 0}\
h2{font-size:17px;margin:0 0 8px}h2 small{font-weight:normal;color:#666;font-size:13px}\
dl.figures{display:flex;flex-wrap:wrap;gap:8px;margin:0}.fig{border:1px solid #eee;border-radius:4px;padding:4px 10px;min-width:92px}\
dt{font-size:11px;color:#666}dd{margin:0;font-size:16px;font-weight:600}\
.charts{display:flex;flex-wrap:wrap;gap:10px;margin-top:10px}.chart{border:1px solid #eee;background:#fff}\
.ct{font-size:12px;font-weight:600}.cl{font-size:11px}\
table.compare{border-collapse:collapse;font-size:12px;margin-top:8px}table.compare td,table.compare th{border:1px solid #ddd;padding:2px 8px;text-align:right}";
