//! Kura's HTTP layer: the JSON API under `/api/v1` (with its OpenAPI document), health
//! endpoints, the access log, and the server-rendered console (ja/en). Thin by design:
//! handlers parse, call a service, and render; permissions are decided in the services
//! through `kura_domain::authorize`.

pub mod access;
pub mod api;
pub mod bench;
pub mod common;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod openapi;
pub mod web;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use kura_services::Services;

/// HTTP-level settings.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Mark cookies `Secure` and use the `__Host-` prefix. Browsers accept this on
    /// `http://localhost`; turn it off only for plain HTTP on another host name.
    pub secure_cookies: bool,
    /// Largest request body accepted by the API and console (bytes); uploads excepted.
    pub body_limit: usize,
    /// Largest file upload (bytes).
    pub max_upload_bytes: u64,
    /// Reverse proxies (CIDR) whose `X-Forwarded-For` is believed for the client address.
    pub trusted_proxies: Vec<String>,
    /// Set only by `kura bench`: mounts the plain (unencrypted) baseline routes, storing
    /// in this directory.
    pub bench_dir: Option<std::path::PathBuf>,
    /// Mount `/outbox` (the mail outbox, loopback clients only): `kura demo`.
    pub mail_outbox_page: bool,
    /// A bearer token that opens `/metrics` to other hosts (loopback always may).
    pub metrics_token: Option<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            secure_cookies: true,
            body_limit: 1024 * 1024,
            max_upload_bytes: 10 * 1024 * 1024 * 1024,
            trusted_proxies: Vec::new(),
            bench_dir: None,
            mail_outbox_page: false,
            metrics_token: None,
        }
    }
}

/// What every handler shares; handlers hold an [`AppState`] (one reference count per
/// clone — axum clones the state for every request).
pub struct AppParts {
    pub services: Services,
    pub access: access::AccessLog,
    pub http: std::sync::Arc<HttpConfig>,
    pub metrics: std::sync::Arc<metrics::HttpMetrics>,
}

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState(std::sync::Arc<AppParts>);

impl AppState {
    pub fn new(parts: AppParts) -> Self {
        Self(std::sync::Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;
    fn deref(&self) -> &AppParts {
        &self.0
    }
}

impl AppState {
    pub fn cookie_name(&self) -> &'static str {
        if self.http.secure_cookies {
            "__Host-kura_session"
        } else {
            "kura_session"
        }
    }
    pub fn csrf_cookie_name(&self) -> &'static str {
        if self.http.secure_cookies {
            "__Host-kura_csrf"
        } else {
            "kura_csrf"
        }
    }
}

/// The whole application: API, health, console, with the access-log/request-id middleware
/// and the body limit around everything.
pub fn app(state: AppState) -> Router {
    let limit = state.http.body_limit;
    let mut r = Router::new();
    if state.http.bench_dir.is_some() {
        r = r.merge(bench::router());
    }
    r.route("/metrics", axum::routing::get(metrics::metrics))
        .merge(api::router())
        .merge(web::router())
        .layer(DefaultBodyLimit::max(limit))
        .layer(access::AccessLayer::new(state.clone()))
        .with_state(state)
}
