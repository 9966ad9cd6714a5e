//! API errors: one JSON shape for REST and MCP, with the HTTP status derived from the
//! SQLSTATE PostgreSQL reported (the SQL API decides what is wrong; `vq` only maps it).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// An error answered to a client: HTTP status, short code, SQLSTATE when from PostgreSQL.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub sqlstate: Option<String>,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl ApiError {
    /// An error raised by `vq` itself (no SQLSTATE).
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            sqlstate: None,
            detail: None,
            hint: None,
        }
    }

    /// 400: the request itself is malformed.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 404: no such collection or route.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// The JSON body `{"error": {...}}`.
    pub fn to_json(&self) -> Value {
        json!({"error": {
            "status": self.status.as_u16(),
            "code": self.code,
            "message": self.message,
            "sqlstate": self.sqlstate,
            "detail": self.detail,
            "hint": self.hint,
        }})
    }
}

/// HTTP status and code for a SQLSTATE (classes as in PostgreSQL's errcodes.txt).
pub fn status_for_sqlstate(state: &str) -> (StatusCode, &'static str) {
    match state {
        "42501" => (StatusCode::FORBIDDEN, "permission_denied"),
        "42P01" | "42704" | "42883" => (StatusCode::NOT_FOUND, "undefined_object"),
        "55P03" | "40001" | "40P01" => (StatusCode::CONFLICT, "conflict"),
        "57014" => (StatusCode::GATEWAY_TIMEOUT, "query_canceled"),
        "25006" => (StatusCode::FORBIDDEN, "read_only"),
        _ if state.starts_with("22") || state.starts_with("42") || state.starts_with("54") => {
            (StatusCode::BAD_REQUEST, "invalid_request")
        }
        _ if state.starts_with("53") || state.starts_with("08") || state.starts_with("57") => {
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        }
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "database_error"),
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> ApiError {
        match e.as_db_error() {
            Some(db) => {
                let (status, code) = status_for_sqlstate(db.code().code());
                ApiError {
                    status,
                    code,
                    message: db.message().to_string(),
                    sqlstate: Some(db.code().code().to_string()),
                    detail: db.detail().map(str::to_string),
                    hint: db.hint().map(str::to_string),
                }
            }
            None => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                format!("database connection failed: {e}"),
            ),
        }
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(e: deadpool_postgres::PoolError) -> ApiError {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            other => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                format!("no database connection: {other}"),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.to_json())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_map_to_http() {
        assert_eq!(status_for_sqlstate("42501").0, StatusCode::FORBIDDEN);
        assert_eq!(status_for_sqlstate("22023").0, StatusCode::BAD_REQUEST);
        assert_eq!(status_for_sqlstate("42809").0, StatusCode::BAD_REQUEST);
        assert_eq!(status_for_sqlstate("42P01").0, StatusCode::NOT_FOUND);
        assert_eq!(status_for_sqlstate("57014").0, StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(status_for_sqlstate("40P01").0, StatusCode::CONFLICT);
        assert_eq!(
            status_for_sqlstate("53200").0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status_for_sqlstate("XX000").0,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
