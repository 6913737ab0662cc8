//! `/metrics` in the Prometheus text format (OPS-8): requests by route and status, latency
//! histograms by route, failed log-ins, job runs, stored bytes, readiness. Kept by hand
//! (a few maps behind a mutex) rather than a metrics framework: the set is small and fixed.
//!
//! Served to clients on this machine, or to anyone presenting `metrics_token` as a bearer
//! token; otherwise it does not exist (404).

use crate::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use std::fmt::Write;
use std::sync::Mutex;

/// Latency bucket bounds, seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// One route's counters: requests by (method, status) — a handful per route, so a short
/// list — and its latency histogram.
#[derive(Default)]
struct RouteStats {
    requests: Vec<(&'static str, u16, u64)>,
    latency: Histogram,
}

#[derive(Default)]
struct Inner {
    /// Matched route → its counters. Looked up by `&str`: counting a request allocates
    /// nothing once its route has been seen.
    routes: std::collections::HashMap<String, RouteStats>,
}

/// The HTTP layer's counters.
#[derive(Default)]
pub struct HttpMetrics {
    inner: Mutex<Inner>,
}

/// The method as a label: the standard ones by name, anything else as `OTHER` (the label
/// set stays bounded whatever clients send).
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

impl HttpMetrics {
    pub fn observe(&self, route: &str, method: &Method, status: u16, seconds: f64) {
        let Ok(mut m) = self.inner.lock() else {
            return;
        };
        let r = match m.routes.get_mut(route) {
            Some(r) => r,
            None => m.routes.entry(route.to_string()).or_default(),
        };
        let method = method_label(method);
        match r
            .requests
            .iter_mut()
            .find(|(mm, st, _)| *mm == method && *st == status)
        {
            Some((_, _, n)) => *n += 1,
            None => r.requests.push((method, status, 1)),
        }
        let h = &mut r.latency;
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }
}

/// A label value, escaped for the text format.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn allowed(state: &AppState, headers: &HeaderMap, ip: Option<std::net::IpAddr>) -> bool {
    if let Some(token) = state
        .http
        .metrics_token
        .as_deref()
        .filter(|t| !t.is_empty())
    {
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if kura_crypto::ct_eq(sent.as_bytes(), token.as_bytes()) {
            return true;
        }
    }
    ip.is_some_and(|i| i.is_loopback())
}

pub async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
    ip: Option<axum::Extension<crate::access::ClientIp>>,
) -> Response {
    if !allowed(&state, &headers, ip.map(|axum::Extension(c)| c.0)) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let mut out = String::new();
    {
        let Ok(m) = state.metrics.inner.lock() else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        out.push_str(
            "# HELP kura_http_requests_total HTTP requests by matched route, method and status.\n",
        );
        out.push_str("# TYPE kura_http_requests_total counter\n");
        let mut routes: Vec<(&String, &RouteStats)> = m.routes.iter().collect();
        routes.sort_by(|a, b| a.0.cmp(b.0));
        let mut requests: Vec<(&String, &str, u16, u64)> = routes
            .iter()
            .flat_map(|(route, r)| {
                r.requests
                    .iter()
                    .map(move |(mm, st, n)| (*route, *mm, *st, *n))
            })
            .collect();
        requests.sort();
        for (route, method, status, n) in requests {
            let _ = writeln!(
                out,
                "kura_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                label(route),
                label(method)
            );
        }
        out.push_str(
            "# HELP kura_http_request_duration_seconds Request latency by matched route.\n",
        );
        out.push_str("# TYPE kura_http_request_duration_seconds histogram\n");
        for (route, stats) in &routes {
            let h = &stats.latency;
            let r = label(route);
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "kura_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "kura_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "kura_http_request_duration_seconds_sum{{route=\"{r}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "kura_http_request_duration_seconds_count{{route=\"{r}\"}} {}",
                h.count
            );
        }
    }
    let al = state.access.stats();
    for (name, help, v) in [
        (
            "kura_access_log_written_total",
            "Access-log entries written to the database (this node).",
            &al.written,
        ),
        (
            "kura_access_log_spooled_total",
            "Access-log entries spooled to disk because the queue was full or the database failed; written later (this node).",
            &al.spooled,
        ),
        (
            "kura_access_log_dropped_total",
            "Access-log entries lost because not even the spool could take them (this node).",
            &al.dropped,
        ),
        (
            "kura_access_log_write_failures_total",
            "Access-log batch writes that failed and were kept for a retry (this node).",
            &al.write_failures,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        let _ = writeln!(
            out,
            "{name} {}",
            v.load(std::sync::atomic::Ordering::Relaxed)
        );
    }
    let sm = state.services.metrics.snapshot();
    out.push_str(
        "# HELP kura_auth_failures_total Failed log-ins and second factors (this node).\n",
    );
    out.push_str("# TYPE kura_auth_failures_total counter\n");
    let _ = writeln!(out, "kura_auth_failures_total {}", sm.auth_failures);
    out.push_str(
        "# HELP kura_integrity_failures_total Stored files that failed their integrity check when read (this node): alert on any.\n",
    );
    out.push_str("# TYPE kura_integrity_failures_total counter\n");
    let _ = writeln!(
        out,
        "kura_integrity_failures_total {}",
        sm.integrity_failures
    );
    out.push_str(
        "# HELP kura_job_runs_total Scheduled job runs on this node, by job and outcome.\n",
    );
    out.push_str("# TYPE kura_job_runs_total counter\n");
    for ((job, status), n) in &sm.job_runs {
        let _ = writeln!(
            out,
            "kura_job_runs_total{{job=\"{}\",status=\"{}\"}} {n}",
            label(job),
            label(status)
        );
    }
    if let Ok(Some(age)) = state.services.last_backup_age_secs().await {
        out.push_str("# HELP kura_last_backup_age_seconds Seconds since the newest backup generation that was written and verified.\n");
        out.push_str("# TYPE kura_last_backup_age_seconds gauge\n");
        let _ = writeln!(out, "kura_last_backup_age_seconds {age}");
    }
    if let Ok(n) = state.services.overdue_incidents().await {
        out.push_str("# HELP kura_incidents_overdue Open incidents whose tenants were not notified by the deadline.\n");
        out.push_str("# TYPE kura_incidents_overdue gauge\n");
        let _ = writeln!(out, "kura_incidents_overdue {n}");
    }
    let (db, storage) = state.services.readiness().await;
    out.push_str("# HELP kura_up Whether the database and the blob storage answer (1/0).\n");
    out.push_str("# TYPE kura_up gauge\n");
    let _ = writeln!(out, "kura_up{{component=\"database\"}} {}", u8::from(db));
    let _ = writeln!(
        out,
        "kura_up{{component=\"storage\"}} {}",
        u8::from(storage)
    );
    if let Ok(bytes) = state.services.stored_bytes_total().await {
        out.push_str(
            "# HELP kura_storage_bytes Plaintext bytes stored, all tenants, all versions.\n",
        );
        out.push_str("# TYPE kura_storage_bytes gauge\n");
        let _ = writeln!(out, "kura_storage_bytes {bytes}");
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}
