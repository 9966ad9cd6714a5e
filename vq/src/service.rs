//! The operations behind REST and MCP. Each is one or a few calls of the extension's SQL
//! API (quantization_stats, quantization_optimize, qhnsw_quantize, qhnsw_indexes,
//! qhnsw_stat_indexes); identifiers are quoted on the server (format('%I')) and values are
//! always bound parameters.

use crate::error::ApiError;
use crate::sampler::Sampler;
use deadpool_postgres::Pool;
use serde_json::{json, Value};
use std::sync::Arc;

/// Longest vector accepted by `search` (the extension's own limit is 16000 dimensions).
pub const MAX_DIMENSIONS: usize = 16000;
/// Largest `k` of a search.
pub const MAX_K: i64 = 1000;
/// Largest `sample_queries` (quantization_stats accepts 1..10000).
pub const MAX_SAMPLE_QUERIES: i32 = 10000;

/// Settings shared by every request.
#[derive(Clone, Debug)]
pub struct Settings {
    pub token: Option<String>,
    pub read_only: bool,
    pub dashboard_sample_queries: i32,
}

/// Database pool, settings and the live-counter sampler.
#[derive(Clone)]
pub struct Service {
    pub pool: Pool,
    pub settings: Arc<Settings>,
    pub sampler: Arc<Sampler>,
    pub cache: Arc<tokio::sync::Mutex<crate::dashboard::Cache>>,
}

/// A resolved collection: the qhnsw_indexes row and the index OID.
#[derive(Clone, Debug)]
pub struct Collection {
    pub oid: u32,
    pub row: Value,
}

impl Collection {
    /// The index name.
    pub fn name(&self) -> &str {
        self.row["indexname"].as_str().unwrap_or("")
    }
}

/// The comparison operator of a metric name as reported by qhnsw_index_meta.
fn operator_for(metric: &str) -> Result<&'static str, ApiError> {
    match metric {
        "l2" => Ok("<->"),
        "inner_product" => Ok("<#>"),
        "cosine" => Ok("<=>"),
        other => Err(ApiError::bad_request(format!(
            "unsupported metric {other:?}"
        ))),
    }
}

/// `[x,y,...]`, the text form of a qvector.
pub fn vector_text(v: &[f64]) -> String {
    let parts: Vec<String> = v.iter().map(|x| format!("{x}")).collect();
    format!("[{}]", parts.join(","))
}

impl Service {
    /// Whether writes are possible and the bearer token matches (REST and MCP share it).
    pub fn authorize_write(&self, presented: Option<&str>) -> Result<(), ApiError> {
        use axum::http::StatusCode;
        if self.settings.read_only {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "read_only",
                "vq runs in read-only mode (--read-only): write operations are disabled",
            ));
        }
        let Some(expected) = self.settings.token.as_deref() else {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "writes_disabled",
                "write operations need a token: start vq with --token or VQ_TOKEN",
            ));
        };
        match presented {
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this operation needs a bearer token (Authorization: Bearer <token>)",
            )),
            Some(t) if constant_time_eq(t.as_bytes(), expected.as_bytes()) => Ok(()),
            Some(_) => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "the bearer token is not valid",
            )),
        }
    }

    /// Every qhnsw index the role may read, as qhnsw_indexes rows plus `address` (table.column).
    pub async fn list_collections(&self) -> Result<Vec<Value>, ApiError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT to_jsonb(q) || jsonb_build_object('address', q.tablename || '.' || q.columnname)
                 FROM qhnsw_indexes q ORDER BY q.schemaname, q.indexname",
                &[],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get::<_, Value>(0)).collect())
    }

    /// Finds a collection by index name, schema.index, table.column or schema.table.column.
    pub async fn resolve(&self, name: &str) -> Result<Collection, ApiError> {
        if name.is_empty() || name.len() > 300 {
            return Err(ApiError::bad_request(
                "a collection name is 1 to 300 characters",
            ));
        }
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT q.indexrelid, to_jsonb(q) || jsonb_build_object('address', q.tablename || '.' || q.columnname)
                 FROM qhnsw_indexes q
                 WHERE $1::text IN (q.indexname, q.schemaname || '.' || q.indexname,
                                    q.tablename || '.' || q.columnname,
                                    q.schemaname || '.' || q.tablename || '.' || q.columnname)",
                &[&name],
            )
            .await?;
        match rows.len() {
            0 => Err(ApiError::not_found(format!(
                "collection {name:?} not found: no qhnsw index of that name (or table.column) readable by this role"
            ))),
            1 => Ok(Collection {
                oid: rows[0].get(0),
                row: rows[0].get(1),
            }),
            n => Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "ambiguous",
                format!("collection {name:?} matches {n} qhnsw indexes: use schema.index_name"),
            )),
        }
    }

    /// The collection with its meta page and live counters.
    pub async fn describe(&self, c: &Collection) -> Result<Value, ApiError> {
        let client = self.pool.get().await?;
        let meta: Value = client
            .query_one(
                "SELECT to_jsonb(meta_row) FROM qhnsw_index_meta($1::oid::regclass) meta_row",
                &[&c.oid],
            )
            .await?
            .get(0);
        let live = self.live_counters(c).await?;
        let mut out = c.row.clone();
        out["meta"] = meta;
        out["live"] = live;
        Ok(out)
    }

    /// quantization_stats(index, sample_queries): its one row as JSON.
    pub async fn stats(&self, c: &Collection, sample_queries: i32) -> Result<Value, ApiError> {
        if !(0..=MAX_SAMPLE_QUERIES).contains(&sample_queries) {
            return Err(ApiError::bad_request(format!(
                "sample_queries must be between 0 and {MAX_SAMPLE_QUERIES}"
            )));
        }
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "SELECT to_jsonb(s) FROM quantization_stats($1::oid::regclass, $2::int) s",
                &[&c.oid, &sample_queries],
            )
            .await?;
        Ok(row.get(0))
    }

    /// quantization_optimize(index, threshold, apply): every candidate, the chosen one.
    pub async fn optimize(
        &self,
        c: &Collection,
        quality_threshold: f64,
        apply: bool,
    ) -> Result<Value, ApiError> {
        if !quality_threshold.is_finite() {
            return Err(ApiError::bad_request("quality_threshold must be a number"));
        }
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT to_jsonb(o) FROM quantization_optimize($1::oid::regclass, $2::float8, $3::bool) o",
                &[&c.oid, &quality_threshold, &apply],
            )
            .await?;
        let candidates: Vec<Value> = rows.iter().map(|r| r.get::<_, Value>(0)).collect();
        let chosen = candidates
            .iter()
            .find(|r| r["chosen"] == Value::Bool(true))
            .cloned()
            .unwrap_or(Value::Null);
        Ok(json!({
            "collection": c.name(),
            "quality_threshold": quality_threshold,
            "applied": apply && !chosen.is_null(),
            "chosen": chosen,
            "candidates": candidates,
        }))
    }

    /// Re-quantizes: with a quantizer, ALTER INDEX ... SET (...) then qhnsw_quantize
    /// (REINDEX) in one transaction; without one, qhnsw_quantize alone (retrain).
    pub async fn quantize(
        &self,
        c: &Collection,
        quantizer: Option<&str>,
        pq_subvectors: Option<i32>,
        pq_bits: Option<i32>,
    ) -> Result<Value, ApiError> {
        if quantizer.is_none() && (pq_subvectors.is_some() || pq_bits.is_some()) {
            return Err(ApiError::bad_request(
                "pq_subvectors and pq_bits need quantizer = \"pq\"",
            ));
        }
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        if let Some(q) = quantizer {
            let alter: String = tx
                .query_one(
                    "SELECT format('ALTER INDEX %I.%I SET (%s)', n.nspname, c.relname,
                        concat_ws(', ', format('quantizer = %L', $2::text),
                            CASE WHEN $3::int IS NOT NULL THEN format('pq_subvectors = %s', $3::int) END,
                            CASE WHEN $4::int IS NOT NULL THEN format('pq_bits = %s', $4::int) END))
                     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE c.oid = $1::oid",
                    &[&c.oid, &q, &pq_subvectors, &pq_bits],
                )
                .await?
                .get(0);
            tx.batch_execute(&alter).await?;
        }
        let result: Value = tx
            .query_one(
                "SELECT to_jsonb(r) FROM qhnsw_quantize($1::oid::regclass) r",
                &[&c.oid],
            )
            .await?
            .get(0);
        tx.commit().await?;
        drop(client);
        let after = self.resolve(c.name()).await.map(|c| c.row).ok();
        Ok(json!({"collection": c.name(), "quantize": result, "index": after}))
    }

    /// k nearest rows of `vector` through the index (ef_search set for this transaction).
    pub async fn search(
        &self,
        c: &Collection,
        vector: &[f64],
        k: i64,
        ef_search: Option<i32>,
    ) -> Result<Value, ApiError> {
        if vector.is_empty() || vector.len() > MAX_DIMENSIONS {
            return Err(ApiError::bad_request(format!(
                "vector must have 1 to {MAX_DIMENSIONS} numbers"
            )));
        }
        if !(1..=MAX_K).contains(&k) {
            return Err(ApiError::bad_request(format!(
                "k must be between 1 and {MAX_K}"
            )));
        }
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let info = tx
            .query_opt(
                "SELECT n.nspname::text, t.relname::text, pg_get_indexdef(i.indexrelid, 1, true),
                        format_type(a.atttypid, NULL), m.metric,
                        (SELECT pa.attname::text FROM pg_index pi
                         JOIN pg_attribute pa ON pa.attrelid = pi.indrelid AND pa.attnum = pi.indkey[0]
                         WHERE pi.indrelid = i.indrelid AND pi.indisprimary AND pi.indnatts = 1)
                 FROM pg_index i
                 JOIN pg_class t ON t.oid = i.indrelid
                 JOIN pg_namespace n ON n.oid = t.relnamespace
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                 CROSS JOIN qhnsw_index_meta(i.indexrelid) m
                 WHERE i.indexrelid = $1::oid",
                &[&c.oid],
            )
            .await?
            .ok_or_else(|| {
                ApiError::bad_request("search needs an index on a plain column (not an expression)")
            })?;
        let metric: String = info.get(4);
        let op = operator_for(&metric)?;
        let sql: String = tx
            .query_one(
                "SELECT format('SELECT %s AS id, (%s %s $1::text::%s)::float8 AS distance FROM %I.%I
                                ORDER BY %s %s $1::text::%s LIMIT $2',
                               CASE WHEN $6::text IS NULL THEN 'to_jsonb(ctid::text)'
                                    ELSE format('to_jsonb(%I)', $6::text) END,
                               $3::text, $5::text, $4::text, $1::text, $2::text,
                               $3::text, $5::text, $4::text)",
                &[
                    &info.get::<_, String>(0),
                    &info.get::<_, String>(1),
                    &info.get::<_, String>(2),
                    &info.get::<_, String>(3),
                    &op,
                    &info.get::<_, Option<String>>(5),
                ],
            )
            .await?
            .get(0);
        if let Some(ef) = ef_search {
            tx.execute(
                "SELECT set_config('qhnsw.ef_search', $1::int::text, true)",
                &[&ef],
            )
            .await?;
        }
        let text = vector_text(vector);
        let rows = tx.query(&sql, &[&text, &k]).await?;
        let ef_used: String = tx
            .query_one("SELECT current_setting('qhnsw.ef_search')", &[])
            .await?
            .get(0);
        tx.commit().await?;
        let results: Vec<Value> = rows
            .iter()
            .map(|r| json!({"id": r.get::<_, Value>(0), "distance": r.get::<_, f64>(1)}))
            .collect();
        Ok(json!({
            "collection": c.name(),
            "k": k,
            "ef_search": ef_used.parse::<i64>().ok(),
            "metric": metric,
            "results": results,
        }))
    }

    /// The qhnsw_stat_indexes row of the collection.
    pub async fn live_counters(&self, c: &Collection) -> Result<Value, ApiError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT to_jsonb(s) FROM qhnsw_stat_indexes s WHERE s.indexrelid = $1::oid",
                &[&c.oid],
            )
            .await?;
        Ok(row.map(|r| r.get(0)).unwrap_or(Value::Null))
    }

    /// Measured recall and latency against a threshold (the index's quality_threshold
    /// option when set), the live counters and the sampled QPS/latency series.
    pub async fn quality_report(
        &self,
        c: &Collection,
        sample_queries: i32,
        recall_threshold: Option<f64>,
    ) -> Result<Value, ApiError> {
        let sample_queries = if sample_queries == 0 {
            100
        } else {
            sample_queries
        };
        let stats = self.stats(c, sample_queries).await?;
        let live = self.live_counters(c).await?;
        let option_threshold =
            option_value(&c.row, "quality_threshold").and_then(|v| v.parse().ok());
        let (threshold, source) = match (recall_threshold, option_threshold) {
            (Some(t), _) => (t, "argument"),
            (None, Some(t)) => (t, "index option quality_threshold"),
            (None, None) => (0.95, "default"),
        };
        let recall = stats["recall_at_10"].as_f64();
        let below = recall.map(|r| r < threshold).unwrap_or(false);
        let series = self.sampler.series(c.oid);
        let summary = match recall {
            Some(r) if below => format!(
                "ALERT: {} measured recall@10 {:.4} is below its threshold {:.4} ({source}); consider quantization_optimize or a larger qhnsw.ef_search",
                c.name(), r, threshold
            ),
            Some(r) => format!(
                "OK: {} measured recall@10 {:.4} meets its threshold {:.4} ({source})",
                c.name(), r, threshold
            ),
            None => format!("{}: recall could not be measured (empty table?)", c.name()),
        };
        Ok(json!({
            "collection": c.name(),
            "threshold": threshold,
            "threshold_source": source,
            "recall_below_threshold": below,
            "summary": summary,
            "stats": stats,
            "live": live,
            "live_series": series,
        }))
    }
}

/// The value of `key=value` in the index's reloptions (qhnsw_indexes.options).
pub fn option_value(row: &Value, key: &str) -> Option<String> {
    row["options"].as_array()?.iter().find_map(|o| {
        let s = o.as_str()?;
        let (k, v) = s.split_once('=')?;
        (k == key).then(|| v.to_string())
    })
}

/// Compares two byte strings in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(vector_text(&[1.0, -0.5, 3.25]), "[1,-0.5,3.25]");
        let row = json!({"options": ["quantizer=auto", "quality_threshold=0.9"]});
        assert_eq!(
            option_value(&row, "quality_threshold").as_deref(),
            Some("0.9")
        );
        assert_eq!(option_value(&row, "m"), None);
        assert_eq!(operator_for("inner_product").unwrap(), "<#>");
        assert!(operator_for("hamming").is_err());
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
