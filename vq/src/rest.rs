//! REST endpoints (`/collections/...`), JSON errors and bearer-token checks for writes.

use crate::dashboard;
use crate::error::ApiError;
use crate::openapi;
use crate::service::Service;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

/// Every route, with the body-size limit.
pub fn router(service: Service, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/", get(dashboard_page))
        .route("/openapi.json", get(|| async { Json(openapi::document()) }))
        .route("/healthz", get(health))
        .route("/collections", get(list))
        .route("/collections/{name}", get(describe))
        .route("/collections/{name}/quantization/stats", get(stats))
        .route("/collections/{name}/quantization/optimize", post(optimize))
        .route("/collections/{name}/quantize", post(quantize))
        .route("/collections/{name}/search", post(search))
        .fallback(|| async { ApiError::not_found("no such endpoint (see /openapi.json)") })
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(service)
}

/// A JSON body, or a 4xx ApiError saying what is wrong with it.
fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    use axum::http::StatusCode;
    b.map(|Json(v)| v).map_err(|r| match r.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body too large (see --max-body-bytes)",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as Content-Type: application/json",
        ),
        _ => ApiError::bad_request(r.body_text()),
    })
}

/// The bearer token of the request, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// GET /healthz: the database answers.
async fn health(State(s): State<Service>) -> Result<Json<Value>, ApiError> {
    let client = s.pool.get().await?;
    let v: String = client
        .query_one("SELECT current_user::text", &[])
        .await?
        .get(0);
    Ok(Json(
        json!({"ok": true, "role": v, "read_only": s.settings.read_only}),
    ))
}

/// GET /collections
async fn list(State(s): State<Service>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"collections": s.list_collections().await?})))
}

/// GET /collections/{name}
async fn describe(
    State(s): State<Service>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let c = s.resolve(&name).await?;
    Ok(Json(s.describe(&c).await?))
}

#[derive(Deserialize)]
struct StatsQuery {
    sample_queries: Option<i32>,
}

/// GET /collections/{name}/quantization/stats[?sample_queries=N]
async fn stats(
    State(s): State<Service>,
    Path(name): Path<String>,
    q: Result<Query<StatsQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(|r| ApiError::bad_request(r.body_text()))?;
    let c = s.resolve(&name).await?;
    Ok(Json(s.stats(&c, q.sample_queries.unwrap_or(0)).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OptimizeBody {
    quality_threshold: Option<f64>,
    apply: Option<bool>,
}

/// POST /collections/{name}/quantization/optimize {quality_threshold, apply}
async fn optimize(
    State(s): State<Service>,
    Path(name): Path<String>,
    headers: HeaderMap,
    b: Result<Json<OptimizeBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let b = body(b)?;
    let apply = b.apply.unwrap_or(false);
    if apply {
        s.authorize_write(bearer(&headers))?;
    }
    let c = s.resolve(&name).await?;
    Ok(Json(
        s.optimize(&c, b.quality_threshold.unwrap_or(0.95), apply)
            .await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuantizeBody {
    quantizer: Option<String>,
    pq_subvectors: Option<i32>,
    pq_bits: Option<i32>,
}

/// POST /collections/{name}/quantize {quantizer}: re-quantize (or retrain without one).
async fn quantize(
    State(s): State<Service>,
    Path(name): Path<String>,
    headers: HeaderMap,
    b: Result<Json<QuantizeBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    s.authorize_write(bearer(&headers))?;
    let b = body(b)?;
    let c = s.resolve(&name).await?;
    Ok(Json(
        s.quantize(&c, b.quantizer.as_deref(), b.pq_subvectors, b.pq_bits)
            .await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchBody {
    vector: Vec<f64>,
    k: Option<i64>,
    ef_search: Option<i32>,
}

/// POST /collections/{name}/search {vector, k, ef_search}
async fn search(
    State(s): State<Service>,
    Path(name): Path<String>,
    b: Result<Json<SearchBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let b = body(b)?;
    let c = s.resolve(&name).await?;
    Ok(Json(
        s.search(&c, &b.vector, b.k.unwrap_or(10), b.ef_search)
            .await?,
    ))
}

/// GET /: the dashboard.
async fn dashboard_page(State(s): State<Service>) -> Response {
    match dashboard::render(&s).await {
        Ok(html) => Html(html).into_response(),
        Err(e) => e.into_response(),
    }
}
