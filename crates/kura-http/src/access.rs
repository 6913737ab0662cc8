//! Request ids, security headers and the access log (LOG-1). Entries go through a channel to
//! a writer task that inserts them in batches (up to 500 rows or every second).

use crate::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use kura_domain::clock::Stopwatch;
use kura_domain::{TenantId, UserId};
use kura_store::access_log::AccessEntry;
use kura_store::Store;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// The request id, set by [`middleware`] and echoed in `x-request-id`.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Filled by the authentication extractor so the access log knows who made the request.
#[derive(Debug, Clone, Default)]
pub struct Who(pub Arc<Mutex<Option<(TenantId, UserId)>>>);

impl Who {
    pub fn set(&self, tenant: TenantId, user: UserId) {
        if let Ok(mut w) = self.0.lock() {
            *w = Some((tenant, user));
        }
    }
    fn take(&self) -> Option<(TenantId, UserId)> {
        self.0.lock().ok().and_then(|mut w| w.take())
    }
}

pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; connect-src 'self'";

/// The client's address: the socket peer, or — when the peer is a trusted reverse proxy —
/// the nearest address in `X-Forwarded-For` that is not itself a trusted proxy.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub std::net::IpAddr);

pub fn client_ip(
    peer: std::net::IpAddr,
    headers: &axum::http::HeaderMap,
    trusted: &[String],
) -> std::net::IpAddr {
    let is_trusted = |ip: std::net::IpAddr| {
        trusted
            .iter()
            .any(|c| kura_domain::tenant::cidr_contains(c, ip) == Some(true))
    };
    if trusted.is_empty() || !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<std::net::IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|h| h.trim().parse().ok())
        .collect();
    hops.into_iter()
        .rev()
        .find(|ip| !is_trusted(*ip))
        .unwrap_or(peer)
}

pub async fn middleware(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let watch = Stopwatch::start();
    let request_id = kura_domain::ids::new_id();
    let who = Who::default();
    req.extensions_mut().insert(RequestId(request_id.clone()));
    req.extensions_mut().insert(who.clone());
    let method = req.method().clone();
    // The path only: query strings may carry tokens.
    let path: String = req.uri().path().chars().take(500).collect();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let client = peer.map(|p| client_ip(p, req.headers(), &state.http.trusted_proxies));
    if let Some(c) = client {
        req.extensions_mut().insert(ClientIp(c));
    }
    let ip = client.map(|c| c.to_string());
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());

    let mut res = next.run(req).await;

    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("x-request-id", v);
    }
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    if !h.contains_key("cache-control") {
        h.insert("cache-control", HeaderValue::from_static("no-store"));
    }
    let bytes = axum::body::HttpBody::size_hint(res.body())
        .exact()
        .unwrap_or(0) as i64;
    let (tenant_id, user_id) = who.take().unzip();
    let entry = AccessEntry {
        id: 0,
        tenant_id,
        user_id,
        at: state.services.now(),
        ip,
        method: method_str(&method),
        path: redact_path(&path),
        status: res.status().as_u16() as i64,
        latency_us: watch.elapsed().as_micros() as i64,
        bytes,
        request_id: Some(request_id),
    };
    state.metrics.observe(
        &route,
        method.as_str(),
        res.status().as_u16(),
        watch.elapsed().as_secs_f64(),
    );
    if state.access.try_send(entry).is_err() {
        tracing::warn!("access log queue full; entry dropped");
    }
    res
}

fn method_str(m: &Method) -> String {
    m.as_str().chars().take(16).collect()
}

/// Invitation, reset, export and operator login tokens travel in the path; the log keeps only a prefix.
fn redact_path(path: &str) -> String {
    for prefix in ["/invite/", "/reset/", "/export/", "/operator/login/"] {
        if let Some(rest) = path.strip_prefix(prefix) {
            return format!("{prefix}{}…", rest.chars().take(8).collect::<String>());
        }
    }
    path.to_string()
}

/// Starts the batch writer; returns the sender the middleware uses and the task handle
/// (finishes after every sender is dropped and the last batch is written).
pub fn start_writer(store: Store) -> (mpsc::Sender<AccessEntry>, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<AccessEntry>(10_000);
    let handle = tokio::spawn(async move {
        let mut batch = Vec::with_capacity(500);
        loop {
            let first = rx.recv().await;
            let Some(first) = first else { break };
            batch.push(first);
            let deadline = tokio::time::sleep(std::time::Duration::from_millis(200));
            tokio::pin!(deadline);
            while batch.len() < 500 {
                tokio::select! {
                    e = rx.recv() => match e { Some(e) => batch.push(e), None => break },
                    _ = &mut deadline => break,
                }
            }
            if let Err(e) = write_batch(&store, &batch).await {
                tracing::error!(error = %e, n = batch.len(), "writing access log batch failed");
            }
            batch.clear();
        }
    });
    (tx, handle)
}

async fn write_batch(store: &Store, batch: &[AccessEntry]) -> kura_store::Result<()> {
    let mut tx = store.system_tx().await?;
    kura_store::access_log::insert_batch(&mut tx, batch).await?;
    tx.commit().await
}

#[cfg(test)]
mod tests {
    #[test]
    fn invitation_tokens_are_not_logged() {
        assert_eq!(
            super::redact_path("/invite/kin_abcdefghijklmnopqrstuvwxyz"),
            "/invite/kin_abcd…"
        );
        assert_eq!(
            super::redact_path("/operator/login/kol_abcdefghijklmnopqrstuvwxyz"),
            "/operator/login/kol_abcd…"
        );
        assert_eq!(super::redact_path("/api/v1/me"), "/api/v1/me");
    }
}
