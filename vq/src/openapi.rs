//! The OpenAPI 3.1 document served at /openapi.json (written by hand; small API).

use serde_json::{json, Value};

/// A path parameter `name` (index name or table.column).
fn name_param() -> Value {
    json!({"name": "name", "in": "path", "required": true,
           "description": "index name, schema.index, table.column or schema.table.column",
           "schema": {"type": "string", "maxLength": 300}})
}

/// Standard error responses.
fn errors(extra: &[&str]) -> Value {
    let mut m = serde_json::Map::new();
    for code in ["400", "404", "500", "503"].iter().chain(extra) {
        m.insert(code.to_string(), json!({"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}));
    }
    Value::Object(m)
}

/// Merges a 200 response into the error responses.
fn responses(ok: &str, extra: &[&str]) -> Value {
    let mut r = errors(extra);
    r["200"] =
        json!({"description": ok, "content": {"application/json": {"schema": {"type": "object"}}}});
    r
}

/// The whole document.
pub fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {"title": "vq: vectorize_quant REST API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Collections are qhnsw indexes. Every answer comes from the extension's SQL API. Write operations need `Authorization: Bearer <token>`."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
                "status": {"type": "integer"}, "code": {"type": "string"}, "message": {"type": "string"},
                "sqlstate": {"type": ["string", "null"]}, "detail": {"type": ["string", "null"]}, "hint": {"type": ["string", "null"]}}}}}}
        },
        "paths": {
            "/collections": {"get": {"summary": "Every qhnsw index readable by the role (qhnsw_indexes)", "responses": responses("collections", &[])}},
            "/collections/{name}": {"get": {"summary": "One collection with its meta page and live counters", "parameters": [name_param()], "responses": responses("collection", &["409"])}},
            "/collections/{name}/quantization/stats": {"get": {"summary": "quantization_stats(index, sample_queries)",
                "parameters": [name_param(), {"name": "sample_queries", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 0, "maximum": 10000}}],
                "responses": responses("one quantization_stats row", &["403"])}},
            "/collections/{name}/quantization/optimize": {"post": {"summary": "quantization_optimize(index, quality_threshold, apply); apply needs the bearer token",
                "parameters": [name_param()], "security": [{}, {"bearer": []}],
                "requestBody": {"content": {"application/json": {"schema": {"type": "object", "additionalProperties": false, "properties": {
                    "quality_threshold": {"type": "number", "default": 0.95}, "apply": {"type": "boolean", "default": false}}}}}},
                "responses": responses("candidates and the chosen one", &["401", "403", "413"])}},
            "/collections/{name}/quantize": {"post": {"summary": "Re-quantize: ALTER INDEX SET (quantizer ...) + qhnsw_quantize (REINDEX) in one transaction; without quantizer, retrain",
                "parameters": [name_param()], "security": [{"bearer": []}],
                "requestBody": {"content": {"application/json": {"schema": {"type": "object", "additionalProperties": false, "properties": {
                    "quantizer": {"type": "string", "enum": ["none", "sq8", "sq4", "sq2", "pq", "binary"]},
                    "pq_subvectors": {"type": "integer"}, "pq_bits": {"type": "integer", "enum": [4, 8]}}}}}},
                "responses": responses("qhnsw_quantize row and the index after", &["401", "403", "409", "413"])}},
            "/collections/{name}/search": {"post": {"summary": "k nearest rows through the index",
                "parameters": [name_param()],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["vector"], "additionalProperties": false, "properties": {
                    "vector": {"type": "array", "items": {"type": "number"}, "maxItems": 16000},
                    "k": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 10},
                    "ef_search": {"type": "integer"}}}}}},
                "responses": responses("ids and distances", &["403", "413"])}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI document"}}}},
            "/": {"get": {"summary": "Dashboard (HTML)", "responses": {"200": {"description": "HTML page"}}}}
        }
    })
}
