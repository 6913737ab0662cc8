//! The one place where errors become HTTP responses. Users see a code and a safe message;
//! internal causes go to the log with the request id, never into the response.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kura_services::ServiceError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<i64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "not found")
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound => ApiError::not_found(),
            ServiceError::Forbidden => ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "you do not have permission to do this",
            ),
            ServiceError::Unauthenticated => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "authentication required",
            ),
            ServiceError::BadCredentials => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "bad_credentials",
                "invalid tenant, e-mail or password",
            ),
            ServiceError::Invalid(d) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", d.to_string())
            }
            ServiceError::WeakPassword(p) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "weak_password",
                format!("password {p}"),
            ),
            ServiceError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            ServiceError::TooLarge(m) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", m)
            }
            ServiceError::QuotaExceeded(m) => {
                ApiError::new(StatusCode::INSUFFICIENT_STORAGE, "quota_exceeded", m)
            }
            ServiceError::TooManyAttempts { retry_after_secs } => ApiError {
                retry_after: Some(retry_after_secs.max(1)),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_attempts",
                    "too many failed attempts; try again later or reset your password",
                )
            },
            ServiceError::Tampered => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "integrity",
                "the stored data failed its integrity check and was not returned",
            ),
            ServiceError::Rejected { code, message } => {
                ApiError::new(StatusCode::UNAUTHORIZED, code, message)
            }
            ServiceError::RateLimited { retry_after_secs } => ApiError {
                retry_after: Some(retry_after_secs.max(1)),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "too many requests; try again later",
                )
            },
            ServiceError::Unavailable(cause) => {
                tracing::warn!(%cause, "dependency unavailable");
                ApiError {
                    retry_after: Some(5),
                    ..ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "unavailable",
                        "the service is temporarily unavailable; try again shortly",
                    )
                }
            }
            ServiceError::StorageFull(cause) => {
                tracing::error!(%cause, "storage full");
                ApiError::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "storage_full",
                    "the server's storage is full; nothing was saved — try again later or tell the operator",
                )
            }
            ServiceError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; quote the x-request-id header when reporting it",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": { "code": self.code, "message": self.message }
        });
        let mut res = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = axum::http::HeaderValue::from_str(&secs.to_string()) {
                res.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
            }
        }
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"kura\""),
            );
        }
        res
    }
}

/// One error shape for every rejection of the API: whatever answered 4xx/5xx under
/// `/api/` without a JSON body — axum's own rejections of a malformed query value
/// (`?version=abc`), of a path that is not UTF-8, a 405 with no body — is rewritten into
/// `{"error":{"code","message"}}`, keeping the status and headers (`Allow` on a 405); every
/// 401 names the scheme in `WWW-Authenticate`.
/// (Called by the access layer for paths under `/api/`.)
pub async fn api_json_errors(res: Response) -> Response {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let is_json = res
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let code = match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthenticated",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_server_error() => "internal",
        _ => "error",
    };
    let message = if status.is_server_error() || text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        text
    };
    let body = serde_json::to_vec(&serde_json::json!({
        "error": { "code": code, "message": message }
    }))
    .unwrap_or_default();
    parts.headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    if status == StatusCode::UNAUTHORIZED {
        parts.headers.insert(
            axum::http::header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer realm=\"kura\""),
        );
    }
    Response::from_parts(parts, axum::body::Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_do_not_leak() {
        let e: ApiError =
            ServiceError::internal("database error: relation users at 10.0.0.5").into();
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.message.contains("10.0.0.5"));
        let e: ApiError = ServiceError::NotFound.into();
        assert_eq!((e.status, e.code), (StatusCode::NOT_FOUND, "not_found"));
        let e: ApiError = ServiceError::Forbidden.into();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        let e: ApiError = ServiceError::Conflict("x".into()).into();
        assert_eq!(e.status, StatusCode::CONFLICT);
        let e: ApiError = ServiceError::invalid("name", "must not be empty").into();
        assert_eq!(
            (e.status, e.message.as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "name: must not be empty")
        );
    }
}
