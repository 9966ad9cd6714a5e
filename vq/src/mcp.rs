//! MCP tools over stdio (rmcp): the same operations as the REST API, for AI agents.
//! Write tools (`apply_quantization`) need the server's token as their `token` argument.

use crate::error::ApiError;
use crate::service::Service;
use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
use rmcp::model::{CallToolResult, ServerCapabilities, ServerConfig};
use rmcp::{schemars, tool, tool_handler, tool_router, ErrorData, ServerHandler, ServiceExt};
use serde::Deserialize;
use serde_json::{json, Value};

/// The MCP server: the shared Service plus rmcp's tool router.
#[derive(Clone)]
pub struct VqMcp {
    service: Service,
    #[allow(dead_code)] // read by the code #[tool_handler] generates
    tool_router: ToolRouter<Self>,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct StatsArgs {
    /// Collection: qhnsw index name, schema.index or table.column.
    pub collection: String,
    /// Sampled queries for measured recall@10/MAP@10/latency (0 = none, at most 10000).
    #[serde(default)]
    pub sample_queries: Option<i32>,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct RecommendArgs {
    /// Collection: qhnsw index name, schema.index or table.column.
    pub collection: String,
    /// Recall@10 the chosen quantizer must reach (default 0.95).
    #[serde(default)]
    pub quality_threshold: Option<f64>,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct ApplyArgs {
    /// Collection: qhnsw index name, schema.index or table.column.
    pub collection: String,
    /// Explicit quantizer (none, sq8, sq4, sq2, pq, binary); omitted = the recommendation for quality_threshold.
    #[serde(default)]
    pub quantizer: Option<String>,
    /// Recall@10 target when no quantizer is given (default 0.95).
    #[serde(default)]
    pub quality_threshold: Option<f64>,
    /// The token vq was started with (--token / VQ_TOKEN).
    #[serde(default)]
    pub token: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct SearchArgs {
    /// Collection: qhnsw index name, schema.index or table.column.
    pub collection: String,
    /// Query vector (as many numbers as the column's dimensions).
    pub vector: Vec<f64>,
    /// Number of neighbours (1..1000, default 10).
    #[serde(default)]
    pub k: Option<i64>,
    /// qhnsw.ef_search for this search.
    #[serde(default)]
    pub ef_search: Option<i32>,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct ReportArgs {
    /// Collection: qhnsw index name, schema.index or table.column.
    pub collection: String,
    /// Sampled queries for the recall check (default 100).
    #[serde(default)]
    pub sample_queries: Option<i32>,
    /// Recall@10 below which the collection is flagged (default: the index's quality_threshold option, else 0.95).
    #[serde(default)]
    pub recall_threshold: Option<f64>,
}

/// A tool result: the JSON value, or a tool-level error carrying the ApiError JSON.
fn result(r: Result<Value, ApiError>) -> Result<CallToolResult, ErrorData> {
    Ok(match r {
        Ok(v) => CallToolResult::structured(v),
        Err(e) => CallToolResult::structured_error(e.to_json()),
    })
}

#[tool_router]
impl VqMcp {
    /// A server over the shared Service.
    pub fn new(service: Service) -> VqMcp {
        VqMcp {
            service,
            tool_router: Self::tool_router(),
        }
    }

    #[tool(
        description = "List the vector collections (qhnsw indexes) with quantizer, size and compression ratio"
    )]
    async fn list_collections(&self) -> Result<CallToolResult, ErrorData> {
        result(
            self.service
                .list_collections()
                .await
                .map(|c| json!({"collections": c})),
        )
    }

    #[tool(
        description = "quantization_stats of a collection: size, compression, estimated quality loss; with sample_queries also measured recall@10, MAP@10, latency and QPS"
    )]
    async fn quantization_stats(
        &self,
        Parameters(a): Parameters<StatsArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let s = &self.service;
        result(
            async {
                let c = s.resolve(&a.collection).await?;
                s.stats(&c, a.sample_queries.unwrap_or(0)).await
            }
            .await,
        )
    }

    #[tool(
        description = "Recommend a quantizer: runs quantization_optimize without applying it and explains the choice (smallest code meeting the recall threshold)"
    )]
    async fn recommend_quantization(
        &self,
        Parameters(a): Parameters<RecommendArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let s = &self.service;
        result(
            async {
                let c = s.resolve(&a.collection).await?;
                let threshold = a.quality_threshold.unwrap_or(0.95);
                let mut v = s.optimize(&c, threshold, false).await?;
                v["current"] =
                    json!({"method": c.row["method"], "parameters": c.row["parameters"]});
                v["explanation"] = json!(explain(&v, &c.row, threshold));
                Ok(v)
            }
            .await,
        )
    }

    #[tool(
        description = "Re-quantize a collection (REINDEX): with quantizer, that quantizer; without, the one quantization_optimize chooses for quality_threshold. Needs token"
    )]
    async fn apply_quantization(
        &self,
        Parameters(a): Parameters<ApplyArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let s = &self.service;
        result(
            async {
                s.authorize_write(a.token.as_deref())?;
                let c = s.resolve(&a.collection).await?;
                match a.quantizer.as_deref() {
                    Some(q) => s.quantize(&c, Some(q), None, None).await,
                    None => {
                        s.optimize(&c, a.quality_threshold.unwrap_or(0.95), true)
                            .await
                    }
                }
            }
            .await,
        )
    }

    #[tool(
        description = "k nearest neighbours of a vector in a collection, through its qhnsw index"
    )]
    async fn search(
        &self,
        Parameters(a): Parameters<SearchArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let s = &self.service;
        result(
            async {
                let c = s.resolve(&a.collection).await?;
                s.search(&c, &a.vector, a.k.unwrap_or(10), a.ef_search)
                    .await
            }
            .await,
        )
    }

    #[tool(
        description = "Quality report: measured recall@10/MAP@10 and latency (sampled index scans), live counters, and an alert when recall fell below the collection's threshold"
    )]
    async fn quality_report(
        &self,
        Parameters(a): Parameters<ReportArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let s = &self.service;
        result(
            async {
                let c = s.resolve(&a.collection).await?;
                s.quality_report(&c, a.sample_queries.unwrap_or(100), a.recall_threshold)
                    .await
            }
            .await,
        )
    }
}

/// A sentence explaining quantization_optimize's choice.
fn explain(v: &Value, current: &Value, threshold: f64) -> String {
    let cands = v["candidates"].as_array().cloned().unwrap_or_default();
    let meeting = cands
        .iter()
        .filter(|r| r["recall"].as_f64().is_some_and(|x| x >= threshold))
        .count();
    let label = |r: &Value| {
        let p = r["parameters"].as_str().unwrap_or("");
        let m = r["method"].as_str().unwrap_or("");
        if p.is_empty() {
            m.to_string()
        } else {
            format!("{m} ({p})")
        }
    };
    let now = format!("the index now uses {}", label(current));
    match v["chosen"].as_object() {
        Some(_) => {
            let c = &v["chosen"];
            format!(
                "Recommend {}: {} bytes per vector with recall@10 {:.4} on the sample, the smallest of the {meeting} of {} candidates reaching the threshold {threshold}; {now}.",
                label(c), c["bytes_per_vector"], c["recall"].as_f64().unwrap_or(0.0), cands.len()
            )
        }
        None => {
            let best = cands.iter().max_by(|a, b| {
                a["recall"]
                    .as_f64()
                    .unwrap_or(0.0)
                    .total_cmp(&b["recall"].as_f64().unwrap_or(0.0))
            });
            format!(
                "No candidate reaches recall@10 {threshold}; the most accurate is {} at {:.4}; {now}. Lower the threshold or keep the current quantizer.",
                best.map(label).unwrap_or_default(),
                best.and_then(|b| b["recall"].as_f64()).unwrap_or(0.0)
            )
        }
    }
}

#[tool_handler]
impl ServerHandler for VqMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(rmcp::model::Implementation::new("vq", env!("CARGO_PKG_VERSION")))
            .with_instructions("Quantization of vectorize_quant qhnsw indexes: list collections, stats, recommend/apply a quantizer, search, quality reports.")
    }
}

/// Serves MCP over stdin/stdout until the client disconnects.
pub async fn serve_stdio(service: Service) -> anyhow::Result<()> {
    let running = VqMcp::new(service).serve(rmcp::transport::stdio()).await?;
    running.waiting().await?;
    Ok(())
}

/// The MCP streamable-HTTP endpoint (stateless, JSON responses) for `vq serve --mcp-http`.
pub fn http_service(
    service: Service,
) -> rmcp::transport::streamable_http_server::StreamableHttpService<
    VqMcp,
    rmcp::transport::streamable_http_server::session::local::LocalSessionManager,
> {
    use rmcp::transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService,
    };
    StreamableHttpService::new(
        move || Ok(VqMcp::new(service.clone())),
        Default::default(),
        StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true),
    )
}
