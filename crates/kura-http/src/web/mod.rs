//! The web console: server-rendered pages in Japanese and English, plain HTML forms (no
//! inline script, so the CSP forbids all inline code), every form protected by a CSRF token.
//!
//! Session cookies are `__Host-` prefixed, `Secure`, `HttpOnly`, `SameSite=Strict`. Forms of
//! a logged-in user carry the session's CSRF token; the login and invitation forms, which have
//! no session yet, use a double-submit cookie.

pub mod i18n;
mod operator;
mod pages;

use crate::extract::{cookie, request_ctx, token_from, TokenSource};
use crate::AppState;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use i18n::{Lang, Tr};
use kura_domain::{authorize, Action, Decision, Resource};
use kura_services::auth::AuthContext;
use kura_services::{RequestCtx, ServiceError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::workspace))
        .route("/login", get(pages::login_page).post(pages::login_submit))
        .route("/logout", post(pages::logout))
        .route("/lang", post(pages::set_lang))
        .route(
            "/invite/{token}",
            get(pages::invite_page).post(pages::invite_submit),
        )
        .route("/reset", get(pages::reset_page).post(pages::reset_submit))
        .route(
            "/reset/{token}",
            get(pages::reset_token_page).post(pages::reset_token_submit),
        )
        .route("/folders", post(pages::folder_create))
        .route("/folders/{id}/rename", post(pages::folder_rename))
        .route("/folders/{id}/delete", post(pages::folder_delete))
        .route("/projects", post(pages::project_create))
        .route("/projects/{id}/delete", post(pages::project_delete))
        .route("/projects/{id}", get(pages::project_page))
        .route(
            "/projects/{id}/files",
            post(pages::file_upload).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/files/{id}", get(pages::file_page))
        .route("/files/{id}/update", post(pages::file_update))
        .route("/files/{id}/delete", post(pages::file_delete))
        .route("/files/{id}/restore", post(pages::file_untrash))
        .route("/files/{id}/purge", post(pages::file_purge))
        .route(
            "/files/{id}/versions/{version}/restore",
            post(pages::version_restore),
        )
        .route("/search", get(pages::search_page))
        .route("/users", get(pages::users_page).post(pages::user_invite))
        .route("/users/{id}/freeze", post(pages::user_freeze))
        .route("/service-accounts", post(pages::service_account_create))
        .route(
            "/users/{id}/tokens",
            get(pages::service_tokens_page).post(pages::service_token_create),
        )
        .route(
            "/users/{id}/tokens/{tid}/revoke",
            post(pages::service_token_revoke),
        )
        .route("/users/{id}/sessions/end", post(pages::user_end_sessions))
        .route("/account", get(pages::account_page))
        .route(
            "/security",
            get(pages::security_page).post(pages::security_submit),
        )
        .route("/account/totp/start", post(pages::totp_start))
        .route("/account/totp/confirm", post(pages::totp_confirm))
        .route("/account/totp/disable", post(pages::totp_disable))
        .route("/login/mfa", post(pages::login_mfa))
        .route("/login/passkey/options", post(pages::login_passkey_options))
        .route("/login/passkey", post(pages::login_passkey))
        .route("/account/passkeys", post(pages::passkey_add))
        .route("/account/passkeys/{id}/delete", post(pages::passkey_remove))
        .route("/sessions/{id}/end", post(pages::session_end))
        .route("/account/tokens", post(pages::token_create))
        .route("/account/tokens/{id}/revoke", post(pages::token_revoke))
        .route("/users/{id}/unfreeze", post(pages::user_unfreeze))
        .route("/users/{id}/delete", post(pages::user_delete))
        .route("/users/{id}/grants", post(pages::grant_add))
        .route("/users/{id}/grants/{gid}/delete", post(pages::grant_remove))
        .route("/audit", get(pages::audit_page))
        .route("/access-log", get(pages::access_page))
        .route("/usage", get(pages::usage_page))
        .route("/static/kura.css", get(css))
        .route("/static/kura.js", get(js))
        .route("/outbox", get(pages::outbox_page))
        .route("/status", get(pages::status_page))
        .route(
            "/signup",
            get(pages::signup_page).post(pages::signup_submit),
        )
        .route("/export/{token}", get(pages::termination_export))
        .merge(operator::router())
        .fallback(pages::not_found)
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/kura.css"),
    )
        .into_response()
}

async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/kura.js"),
    )
        .into_response()
}

pub const LANG_COOKIE: &str = "kura_lang";

/// The console language: the user's own setting, then the language cookie, then the
/// browser's Accept-Language, then the tenant's default, then Japanese.
pub fn resolve_lang(headers: &HeaderMap, auth: Option<&AuthContext>) -> Lang {
    if let Some(l) = auth
        .and_then(|a| a.user.locale.as_deref())
        .and_then(Lang::parse)
    {
        return l;
    }
    let cookie_lang = cookie(headers, LANG_COOKIE).and_then(Lang::parse);
    if let Some(l) = cookie_lang {
        return l;
    }
    if let Some(l) = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(Lang::from_accept_language)
    {
        return l;
    }
    auth.and_then(|a| Lang::parse(&a.tenant.settings.default_locale))
        .unwrap_or(Lang::Ja)
}

/// A logged-in console user. Without a valid session cookie the request is redirected to the
/// login page.
pub struct Console {
    /// The application (state, principal and request context come in one extractor).
    pub state: AppState,
    pub auth: AuthContext,
    pub tr: Tr,
    pub ctx: RequestCtx,
    /// Service notices for this tenant, shown on every page until they are past.
    pub notices: Vec<kura_store::notices::Notice>,
}

impl Console {
    pub fn may(&self, action: Action) -> bool {
        authorize(
            &self.auth.principal,
            action,
            &Resource::Tenant(self.auth.tenant.id.clone()),
        ) == Decision::Allow
    }
}

impl axum::extract::FromRequestParts<AppState> for Console {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let token = match token_from(parts, state.cookie_name()) {
            Some((t, TokenSource::Cookie)) => t,
            _ => return Err(Redirect::to("/login").into_response()),
        };
        match state.services.authenticate(&token).await {
            Ok(auth) => {
                if let Some(who) = parts.extensions.get::<crate::access::Who>() {
                    who.set(auth.tenant.id.clone(), auth.user.id.clone());
                }
                if !crate::extract::ip_allowed(&auth, parts) {
                    state
                        .services
                        .record_ip_denial(&auth, &request_ctx(parts))
                        .await;
                    return Err(Redirect::to("/login?err=ip_not_allowed").into_response());
                }
                if auth.token_scopes.is_some() {
                    // An API token is not a console login.
                    return Err(Redirect::to("/login").into_response());
                }
                if auth.must_enrol_mfa && !crate::extract::enrolment_route(parts.uri.path()) {
                    return Err(Redirect::to("/account").into_response());
                }
                let tr = Tr(resolve_lang(&parts.headers, Some(&auth)));
                let mut notices = state
                    .services
                    .current_notices(&auth.tenant.id)
                    .await
                    .unwrap_or_default();
                // Open incidents the tenant was notified of show the same way.
                for i in state
                    .services
                    .current_incidents(&auth.tenant.id)
                    .await
                    .unwrap_or_default()
                {
                    let latest = i.updates.last();
                    notices.insert(
                        0,
                        kura_store::notices::Notice {
                            id: i.id.clone(),
                            kind: "incident".into(),
                            title_ja: i.title_ja.clone(),
                            title_en: i.title_en.clone(),
                            body_ja: latest.map(|u| u.text_ja.clone()).unwrap_or_default(),
                            body_en: latest.map(|u| u.text_en.clone()).unwrap_or_default(),
                            published_at: i.notified_at.unwrap_or(i.detected_at),
                            effective_at: i.detected_at,
                            show_until: i.detected_at,
                            tenants: i.tenants.clone(),
                            withdrawn_at: None,
                        },
                    );
                }
                Ok(Console {
                    state: state.clone(),
                    auth,
                    tr,
                    ctx: request_ctx(parts),
                    notices,
                })
            }
            Err(_) => {
                let mut res = Redirect::to("/login?expired=1").into_response();
                set_cookie(&mut res, &clear_cookie(state.cookie_name()));
                Err(res)
            }
        }
    }
}

/// A visitor who may or may not be logged in (login and invitation pages).
pub struct Visitor {
    pub tr: Tr,
    pub ctx: RequestCtx,
    pub pre_csrf: Option<String>,
}

impl axum::extract::FromRequestParts<AppState> for Visitor {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Visitor {
            tr: Tr(resolve_lang(&parts.headers, None)),
            ctx: request_ctx(parts),
            pre_csrf: cookie(&parts.headers, state.csrf_cookie_name()).map(str::to_string),
        })
    }
}

pub fn session_cookie(state: &AppState, token: &str, max_age: i64) -> String {
    let secure = if state.http.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
        state.cookie_name()
    )
}

pub fn clear_cookie(name: &str) -> String {
    let secure = if name.starts_with("__Host-") {
        "; Secure"
    } else {
        ""
    };
    format!("{name}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
}

pub fn set_cookie(res: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// Sends the user back to `path` with a translated notice (`ok`) or error (`err`).
pub fn back_ok(path: &str, key: &str) -> Response {
    Redirect::to(&format!("{path}?ok={key}")).into_response()
}

/// Sends the user back to `path` with a translated error. Errors travel as message keys
/// and whitelisted parameters only (`err`, `reason`, `field`, `n`) — never as text: a link
/// someone else crafted shows nothing but Kura's own translated messages.
pub fn back_err(path: &str, e: &ServiceError) -> Response {
    let (code, extra) = match e {
        ServiceError::NotFound => ("not_found", String::new()),
        ServiceError::Forbidden => ("forbidden", String::new()),
        ServiceError::Invalid(kura_domain::DomainError::Invalid { field, .. }) => {
            ("invalid", format!("&field={}", encode(field)))
        }
        ServiceError::WeakPassword(p) => {
            use kura_domain::policy::PasswordProblem as P;
            let (reason, n) = match p {
                P::TooShort { min } => ("pw_too_short", Some(*min)),
                P::TooLong { max } => ("pw_too_long", Some(*max)),
                P::NeedsLetter => ("pw_letter", None),
                P::NeedsDigit => ("pw_digit", None),
                P::NeedsSymbol => ("pw_symbol", None),
                P::NeedsMixedCase => ("pw_mixed_case", None),
                P::TooWeak { .. } => ("pw_too_weak", None),
                P::Personal => ("pw_personal", None),
            };
            (
                "weak_password",
                format!(
                    "&reason={reason}{}",
                    n.map(|n| format!("&n={n}")).unwrap_or_default()
                ),
            )
        }
        ServiceError::Conflict(m) => (
            "conflict",
            conflict_reason(m)
                .map(|r| format!("&reason={r}"))
                .unwrap_or_default(),
        ),
        ServiceError::TooLarge(_) => ("too_large", String::new()),
        ServiceError::QuotaExceeded(_) => ("quota", String::new()),
        ServiceError::Tampered => ("internal", String::new()),
        ServiceError::TooManyAttempts { .. } => ("locked", String::new()),
        ServiceError::RateLimited { .. } => ("rate_limited", String::new()),
        ServiceError::Rejected { code, .. } => ("rejected", format!("&reason={code}")),
        ServiceError::Unavailable(cause) => {
            tracing::warn!(%cause, "dependency unavailable in console");
            ("unavailable", String::new())
        }
        ServiceError::StorageFull(cause) => {
            tracing::error!(%cause, "storage full in console");
            ("storage_full", String::new())
        }
        ServiceError::Unauthenticated | ServiceError::BadCredentials => {
            return Redirect::to("/login?expired=1").into_response()
        }
        ServiceError::Internal(cause) => {
            tracing::error!(%cause, "internal error in console");
            ("internal", String::new())
        }
    };
    Redirect::to(&format!("{path}?err={code}{extra}")).into_response()
}

/// Conflicts the services report (by the start of their text) and their message keys.
const CONFLICT_REASONS: &[(&str, &str)] = &[
    ("the folder is not empty", "folder_not_empty"),
    ("the project still has files", "project_not_empty"),
    ("the user is already frozen", "already_frozen"),
    ("the user is not frozen", "not_frozen"),
    (
        "a file with this name exists in the project",
        "file_name_taken",
    ),
    ("a role with this name exists", "role_name_taken"),
    ("a user with this e-mail exists", "email_taken"),
    (
        "you cannot freeze or delete your own account",
        "own_account",
    ),
    (
        "this is the tenant's last active contract admin",
        "last_contract_admin",
    ),
    (
        "this IP allowlist would lock out your current address",
        "ip_lockout",
    ),
    ("too many concurrent uploads of this file", "busy"),
    ("an authenticator app is already set up", "totp_exists"),
    ("your organisation requires a second factor", "mfa_required"),
    ("this passkey is already registered", "passkey_exists"),
];

/// The message key (`err.r.<key>`) of a conflict the services report, when known.
fn conflict_reason(message: &str) -> Option<&'static str> {
    CONFLICT_REASONS
        .iter()
        .find(|(m, _)| message.starts_with(m))
        .map(|(_, k)| *k)
}

/// The console pages a "back" address may lead to (their first path segment).
const CONSOLE_ROOTS: &[&str] = &[
    "",
    "login",
    "signup",
    "invite",
    "reset",
    "projects",
    "files",
    "search",
    "users",
    "account",
    "audit",
    "access-log",
    "usage",
    "security",
    "status",
    "outbox",
    "operator",
];

/// A "back" address from a form, if it is a known console page and stays one after the
/// browser's decoding: printable ASCII only, one leading slash, no backslash, and no
/// percent-escape that decodes to a control character, a space, a backslash or a second
/// leading slash (`/%09/evil.example` is `//evil.example` to a browser).
pub fn safe_back(back: &str) -> Option<String> {
    if back.is_empty() || back.len() > 500 || !back.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    if back.contains('\\') {
        return None;
    }
    let path = back.split(['?', '#']).next().unwrap_or_default();
    if !path.starts_with('/') || path.starts_with("//") {
        return None;
    }
    let decoded = percent_decode(path)?;
    if decoded.starts_with(b"//")
        || decoded
            .iter()
            .any(|b| b.is_ascii_control() || *b == b' ' || *b == b'\\')
    {
        return None;
    }
    let first = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    CONSOLE_ROOTS.contains(&first).then(|| back.to_string())
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

pub use crate::common::encode;

pub fn html(status: StatusCode, body: Result<String, askama::Error>) -> Response {
    match body {
        Ok(b) => (status, Html(b)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

#[cfg(test)]
mod back_tests {
    use super::safe_back;

    #[test]
    fn every_conflict_reason_is_translated() {
        for (_, key) in super::CONFLICT_REASONS {
            let k = format!("err.r.{key}");
            assert!(
                super::i18n::MESSAGES.iter().any(|(m, _, _)| *m == k),
                "{k} missing"
            );
        }
    }

    #[test]
    fn back_addresses_stay_on_console_pages() {
        for ok in [
            "/",
            "/projects/abc",
            "/audit?from=2026-11-01&user=x",
            "/account",
        ] {
            assert_eq!(safe_back(ok).as_deref(), Some(ok), "{ok}");
        }
        for bad in [
            "//evil.example/phish",
            "/%09/evil.example/phish",
            "/%2F/evil.example",
            "/\\evil.example",
            "/%5Cevil.example",
            "https://evil.example/",
            "/\tx",
            "/a\r\nSet-Cookie: x=1",
            "/%0d%0aLocation:%20x",
            "/x\0",
            "/api/v1/me",
            "/nowhere",
            "/%zz",
            "",
        ] {
            assert_eq!(safe_back(bad), None, "{bad:?}");
        }
    }
}
