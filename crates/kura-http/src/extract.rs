//! Request extractors: an authenticated call ([`Call`]: state, caller and request facts in
//! one), who is calling ([`Auth`]), the request's facts for the audit log ([`Ctx`]) and JSON
//! bodies whose errors come back in Kura's error format ([`ApiJson`]).

use crate::access::{RequestId, Who};
use crate::error::ApiError;
use crate::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, Method, StatusCode};
use kura_services::auth::AuthContext;
use kura_services::{RequestCtx, ServiceError};
use std::net::SocketAddr;

/// The facts about a request that go into audit records.
pub struct Ctx(pub RequestCtx);

pub fn request_ctx(parts: &Parts) -> RequestCtx {
    RequestCtx {
        ip: parts
            .extensions
            .get::<crate::access::ClientIp>()
            .map(|c| c.0)
            .or_else(|| {
                parts
                    .extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|c| c.0.ip())
            })
            .map(|ip| ip.to_string()),
        request_id: parts.extensions.get::<RequestId>().map(|r| r.0.clone()),
        user_agent: parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(300).collect()),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Ctx(request_ctx(parts)))
    }
}

/// Reads a cookie by name.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Where a token came from: a bearer header (API clients) or the console's session cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    Bearer,
    Cookie,
}

pub fn token_from(parts: &Parts, cookie_name: &str) -> Option<(String, TokenSource)> {
    if let Some(h) = parts.headers.get(header::AUTHORIZATION) {
        let v = h.to_str().ok()?;
        let t = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))?;
        return Some((t.trim().to_string(), TokenSource::Bearer));
    }
    cookie(&parts.headers, cookie_name).map(|c| (c.to_string(), TokenSource::Cookie))
}

/// An authenticated caller. A cookie-authenticated request that changes something must also
/// carry the session's CSRF token in `x-csrf-token`.
pub struct Auth(pub AuthContext);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (token, source) = token_from(parts, state.cookie_name())
            .ok_or_else(|| ApiError::from(ServiceError::Unauthenticated))?;
        let auth = state.services.authenticate(&token).await?;
        if let Some(who) = parts.extensions.get::<Who>() {
            who.set(auth.tenant.id.clone(), auth.user.id.clone());
        }
        if !ip_allowed(&auth, parts) {
            state
                .services
                .record_ip_denial(&auth, &request_ctx(parts))
                .await;
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "ip_not_allowed",
                "your organisation does not allow access from this address",
            ));
        }
        if auth.token_scopes.is_some() {
            if source == TokenSource::Cookie {
                // API tokens are bearer credentials only.
                return Err(ApiError::from(ServiceError::Unauthenticated));
            }
            if !token_allows(&auth, parts) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "insufficient_scope",
                    "this API token's scopes do not cover this request",
                ));
            }
        }
        if auth.must_enrol_mfa && !enrolment_route(parts.uri.path()) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "mfa_enrolment_required",
                "your organisation requires two-step verification: enrol first (POST /api/v1/me/mfa/totp)",
            ));
        }
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if source == TokenSource::Cookie && !safe {
            let sent = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if !kura_crypto::ct_eq(sent.as_bytes(), auth.session.csrf_token.as_bytes()) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "csrf",
                    "missing or wrong x-csrf-token header",
                ));
            }
        }
        Ok(Auth(auth))
    }
}

/// Everything an authenticated API handler needs, in one extractor —
/// `Call(state, auth, ctx): Call`: the application state, the caller (as [`Auth`] checks
/// it: token, IP allowlist, token scopes, MFA enrolment, CSRF for cookies) and the request's
/// facts for the audit log (as [`Ctx`]).
pub struct Call(pub AppState, pub AuthContext, pub RequestCtx);

impl FromRequestParts<AppState> for Call {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Auth(auth) = Auth::from_request_parts(parts, state).await?;
        Ok(Call(state.clone(), auth, request_ctx(parts)))
    }
}

/// Whether an API token's scopes cover the route: the route's declared [`ApiArea`]
/// (`<area>:read` for GET/HEAD, `<area>:write` otherwise; write includes read). A route
/// without an area (none of the API's) is refused.
fn token_allows(auth: &kura_services::auth::AuthContext, parts: &Parts) -> bool {
    let Some(scopes) = &auth.token_scopes else {
        return true;
    };
    let Some(area) = parts.extensions.get::<kura_services::auth::ApiArea>() else {
        return false;
    };
    let read = matches!(parts.method, Method::GET | Method::HEAD);
    area.token_allows(scopes, read)
}

/// The tenant's IP allowlist (IAM-7) for this user and this request's client address.
pub fn ip_allowed(auth: &kura_services::auth::AuthContext, parts: &Parts) -> bool {
    let ip = request_ctx(parts).ip.and_then(|i| i.parse().ok());
    auth.tenant.settings.ip_allowed(ip, &auth.builtin_roles())
}

/// What a session that must enrol a second factor may still reach.
pub fn enrolment_route(path: &str) -> bool {
    path == "/api/v1/me"
        || path.starts_with("/api/v1/me/mfa")
        || path == "/api/v1/auth/logout"
        || path == "/account"
        || path.starts_with("/account/totp")
        || path.starts_with("/account/passkeys")
        || path == "/logout"
}

/// A JSON body; malformed JSON is a 400 and JSON of the wrong shape (unknown or missing
/// fields, wrong types) a 422, in Kura's error format.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::BytesRejection(_)) => Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "request body too large or unreadable",
            )),
            // Well-formed JSON of the wrong shape (a missing or unknown field, a wrong type):
            // 422, naming what is wrong.
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                e.body_text(),
            )),
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}
