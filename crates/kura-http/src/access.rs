//! Request ids, security headers and the access log (LOG-1). Entries go through a bounded
//! queue to a writer task that inserts them in batches (up to 1000 rows or every 200 ms).
//! When the queue is full or the database fails, entries go to a spool on disk that the
//! writer drains once the database takes writes again: nothing is dropped silently.

use crate::AppState;
use axum::extract::{ConnectInfo, Request};
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::response::Response;
use kura_domain::clock::Stopwatch;
use kura_domain::{TenantId, UserId};
use kura_store::access_log::AccessEntry;
use kura_store::Store;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
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

/// Request ids, security headers, the API's one error shape, metrics and the access log,
/// as one layer around every route (a hand-written service: one boxed future per request
/// and no per-request clone of the router, which `axum::middleware::from_fn` costs).
#[derive(Clone)]
pub struct AccessLayer {
    state: AppState,
}

impl AccessLayer {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

impl<S> tower::Layer<S> for AccessLayer {
    type Service = AccessService<S>;
    fn layer(&self, inner: S) -> AccessService<S> {
        AccessService {
            inner,
            state: self.state.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AccessService<S> {
    inner: S,
    state: AppState,
}

impl<S> tower::Service<Request> for AccessService<S>
where
    S: tower::Service<Request, Response = Response, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response, std::convert::Infallible>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let watch = Stopwatch::start();
        let request_id = kura_domain::ids::new_id();
        let who = Who::default();
        let state = self.state.clone();
        let method = req.method().clone();
        // The path only: query strings may carry tokens.
        let path = req.uri().path();
        let path = match path.char_indices().nth(500) {
            Some((cut, _)) => path[..cut].to_string(),
            None => path.to_string(),
        };
        let client = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| client_ip(c.0.ip(), req.headers(), &state.http.trusted_proxies));
        let route = req
            .extensions()
            .get::<axum::extract::MatchedPath>()
            .cloned();
        let ext = req.extensions_mut();
        ext.insert(RequestId(request_id.clone()));
        ext.insert(who.clone());
        if let Some(c) = client {
            ext.insert(ClientIp(c));
        }
        // The router is cloned into the future only when it was driven ready (tower's rule).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let fut = inner.call(req);
        Box::pin(async move {
            let Ok(res) = fut.await;
            let mut res = if path.starts_with("/api/") {
                crate::error::api_json_errors(res).await
            } else {
                res
            };
            // Names as constants (not parsed per response) and room for all of them at
            // once (one table growth, not several).
            let h = res.headers_mut();
            h.reserve(6);
            if let Ok(v) = HeaderValue::from_str(&request_id) {
                h.insert(X_REQUEST_ID, v);
            }
            h.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
            h.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            );
            if !h.contains_key(header::CACHE_CONTROL) {
                h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            }
            let status = res.status().as_u16();
            let elapsed = watch.elapsed();
            state.metrics.observe(
                route.as_ref().map_or("unmatched", |r| r.as_str()),
                &method,
                status,
                elapsed.as_secs_f64(),
            );
            let (tenant_id, user_id) = who.take().unzip();
            let entry = AccessEntry {
                id: 0,
                tenant_id,
                user_id,
                at: state.services.now(),
                ip: client.map(|c| c.to_string()),
                method: method_str(&method),
                path: redact_path(path),
                status: status as i64,
                latency_us: elapsed.as_micros() as i64,
                bytes: 0,
                request_id: Some(request_id),
            };
            Ok(log_when_sent(&state.access, entry, res))
        })
    }
}

/// A body of known size is logged now with its size; a stream (downloads, exports) when it
/// ends or is broken off, with the bytes that actually went out.
fn log_when_sent(log: &AccessLog, entry: AccessEntry, res: Response) -> Response {
    if let Some(n) = axum::body::HttpBody::size_hint(res.body()).exact() {
        log.record(AccessEntry {
            bytes: n as i64,
            ..entry
        });
        return res;
    }
    let (parts, body) = res.into_parts();
    let counted = Counted {
        entry: Some(entry),
        bytes: 0,
        log: log.clone(),
    };
    let stream = futures_util::stream::unfold(
        (body.into_data_stream(), counted),
        |(mut inner, mut counted)| async move {
            use futures_util::StreamExt;
            let item = inner.next().await?;
            if let Ok(b) = &item {
                counted.bytes += b.len() as u64;
            }
            Some((item, (inner, counted)))
        },
    );
    Response::from_parts(parts, axum::body::Body::from_stream(stream))
}

/// The access-log entry of a streamed response, written when the stream is dropped (at its
/// end, or when the client goes away) with the bytes sent so far.
struct Counted {
    entry: Option<AccessEntry>,
    bytes: u64,
    log: AccessLog,
}

impl Drop for Counted {
    fn drop(&mut self) {
        if let Some(mut e) = self.entry.take() {
            e.bytes = self.bytes as i64;
            self.log.record(e);
        }
    }
}

fn method_str(m: &Method) -> String {
    let s = m.as_str();
    match s.char_indices().nth(16) {
        Some((cut, _)) => s[..cut].to_string(),
        None => s.to_string(),
    }
}

/// Invitation, reset, export and operator login tokens travel in the path; the log keeps only a prefix.
fn redact_path(path: String) -> String {
    for prefix in ["/invite/", "/reset/", "/export/", "/operator/login/"] {
        if let Some(rest) = path.strip_prefix(prefix) {
            return format!("{prefix}{}…", rest.chars().take(8).collect::<String>());
        }
    }
    path
}

/// Counters of the access-log pipeline (`/metrics`).
#[derive(Debug, Default)]
pub struct AccessStats {
    /// Entries written to the database.
    pub written: AtomicU64,
    /// Entries put in the spool on disk (queue full, or the database failed).
    pub spooled: AtomicU64,
    /// Entries lost: neither the queue, the database nor the spool took them.
    pub dropped: AtomicU64,
    /// Batch writes that failed (each batch is kept in the spool and retried).
    pub write_failures: AtomicU64,
    /// Last warning (ms since the epoch) and warnings held back since.
    last_warn_ms: AtomicI64,
    held_back: AtomicU64,
}

impl AccessStats {
    /// Logs a warning at most once every 30 s, with the number held back since the last.
    fn warn(&self, now_ms: i64, what: &str) {
        let last = self.last_warn_ms.load(Ordering::Relaxed);
        if now_ms - last >= 30_000
            && self
                .last_warn_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let held = self.held_back.swap(0, Ordering::Relaxed);
            tracing::warn!(similar_since_last_warning = held, "access log: {what}");
        } else {
            self.held_back.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Entries per spool segment; a segment is written to the database in one transaction.
/// The request id header every response carries.
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

const SEGMENT_LINES: u64 = 1000;
/// Entries per database batch.
const BATCH: usize = 1000;
/// How often the writer looks at the queue while it gathers a batch.
const GATHER_STEP: std::time::Duration = std::time::Duration::from_millis(10);

/// The access log's way in: a bounded queue to the batch writer and, when the queue is full
/// or the database fails, a spool of JSON Lines segments on disk (`<data_dir>/spool`, 0700
/// directory, 0600 files) that the writer drains into the database once it can. Nothing is
/// dropped unless the spool itself cannot be written (counted in `kura_access_log_dropped_total`).
#[derive(Clone)]
pub struct AccessLog {
    tx: mpsc::Sender<AccessEntry>,
    shared: Arc<Shared>,
}

impl AccessLog {
    /// Queues an entry; spools it when the queue is full. Never blocks the request.
    pub fn record(&self, entry: AccessEntry) {
        match self.tx.try_send(entry) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(e)) | Err(mpsc::error::TrySendError::Closed(e)) => {
                self.shared
                    .spool_entries(std::slice::from_ref(&e), "queue full; spooling to disk");
            }
        }
    }

    pub fn stats(&self) -> &AccessStats {
        &self.shared.stats
    }
}

/// What the middleware and the writer share: the spool, the counters, the clock.
struct Shared {
    spool: Spool,
    stats: AccessStats,
    clock: Arc<dyn kura_domain::Clock>,
}

impl Shared {
    fn spool_entries(&self, entries: &[AccessEntry], why: &str) {
        let now = self.clock.now().millis();
        match self.spool.append(entries) {
            Ok(()) => {
                self.stats
                    .spooled
                    .fetch_add(entries.len() as u64, Ordering::Relaxed);
                self.stats.warn(now, why);
            }
            Err(e) => {
                self.stats
                    .dropped
                    .fetch_add(entries.len() as u64, Ordering::Relaxed);
                self.stats
                    .warn(now, &format!("spool not writable ({e}); entries lost"));
            }
        }
    }
}

/// One spooled entry (a JSON line).
#[derive(serde::Serialize, serde::Deserialize)]
struct SpoolLine {
    tenant_id: Option<String>,
    user_id: Option<String>,
    at: i64,
    ip: Option<String>,
    method: String,
    path: String,
    status: i64,
    latency_us: i64,
    bytes: i64,
    request_id: Option<String>,
}

impl From<&AccessEntry> for SpoolLine {
    fn from(e: &AccessEntry) -> Self {
        SpoolLine {
            tenant_id: e.tenant_id.as_ref().map(|t| t.as_str().to_string()),
            user_id: e.user_id.as_ref().map(|u| u.as_str().to_string()),
            at: e.at.0,
            ip: e.ip.clone(),
            method: e.method.clone(),
            path: e.path.clone(),
            status: e.status,
            latency_us: e.latency_us,
            bytes: e.bytes,
            request_id: e.request_id.clone(),
        }
    }
}

impl From<SpoolLine> for AccessEntry {
    fn from(l: SpoolLine) -> Self {
        AccessEntry {
            id: 0,
            tenant_id: l.tenant_id.map(|t| TenantId::from_string(&t)),
            user_id: l.user_id.map(|u| UserId::from_string(&u)),
            at: kura_domain::Timestamp(l.at),
            ip: l.ip,
            method: l.method,
            path: l.path,
            status: l.status,
            latency_us: l.latency_us,
            bytes: l.bytes,
            request_id: l.request_id,
        }
    }
}

/// Spool segments `access-<20-digit ms>-<10-digit seq>.jsonl`: names sort in write order.
struct Spool {
    dir: PathBuf,
    /// The segment being appended to, and its line count.
    current: Mutex<Option<(std::fs::File, u64)>>,
    seq: AtomicU64,
    /// A segment may be waiting to be drained.
    pending: std::sync::atomic::AtomicBool,
    start_ms: i64,
}

impl Spool {
    fn new(dir: PathBuf, start_ms: i64) -> Spool {
        let pending = std::fs::read_dir(&dir)
            .map(|mut d| d.any(|e| e.is_ok_and(|e| is_segment(&e.path()))))
            .unwrap_or(false);
        Spool {
            dir,
            current: Mutex::new(None),
            seq: AtomicU64::new(0),
            pending: std::sync::atomic::AtomicBool::new(pending),
            start_ms,
        }
    }

    fn append(&self, entries: &[AccessEntry]) -> std::io::Result<()> {
        use std::io::Write;
        let mut cur = self
            .current
            .lock()
            .map_err(|_| std::io::Error::other("spool lock poisoned"))?;
        for e in entries {
            if cur.is_none() {
                *cur = Some((self.open_segment()?, 0));
            }
            if let Some((f, n)) = cur.as_mut() {
                let mut line =
                    serde_json::to_vec(&SpoolLine::from(e)).map_err(std::io::Error::other)?;
                line.push(b'\n');
                f.write_all(&line)?;
                *n += 1;
                if *n >= SEGMENT_LINES {
                    *cur = None;
                }
            }
        }
        self.pending.store(true, Ordering::Release);
        Ok(())
    }

    fn open_segment(&self) -> std::io::Result<std::fs::File> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)?;
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let name = format!("access-{:020}-{:010}.jsonl", self.start_ms, seq);
        std::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .mode(0o600)
            .open(self.dir.join(name))
    }

    /// Closes the segment being written, so that every segment on disk is complete.
    fn seal(&self) {
        if let Ok(mut cur) = self.current.lock() {
            *cur = None;
        }
    }

    fn segments(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| is_segment(p))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

fn is_segment(p: &std::path::Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("access-") && n.ends_with(".jsonl"))
}

/// Starts the batch writer; returns the [`AccessLog`] the middleware uses and the task handle
/// (finishes after every sender is dropped and the last batch is written or spooled).
pub fn start_writer(
    store: Store,
    spool_dir: PathBuf,
    queue: usize,
    clock: Arc<dyn kura_domain::Clock>,
) -> (AccessLog, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel::<AccessEntry>(queue.max(1));
    let shared = Arc::new(Shared {
        spool: Spool::new(spool_dir, clock.now().millis()),
        stats: AccessStats::default(),
        clock,
    });
    // The writer holds no sender: the queue closes when the server's last handle is dropped.
    let writer = WriterState {
        store,
        log: shared.clone(),
        healthy: true,
        backoff_ms: 0,
    };
    let handle = tokio::spawn(writer.run(rx));
    (AccessLog { tx, shared }, handle)
}

struct WriterState {
    store: Store,
    log: Arc<Shared>,
    /// The last database write succeeded.
    healthy: bool,
    /// While unhealthy: wait this long before trying the database again.
    backoff_ms: u64,
}

impl WriterState {
    async fn run(mut self, mut rx: mpsc::Receiver<AccessEntry>) {
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            // Wake at least every second to drain the spool or retry after a failure.
            let wait = if self.healthy { 1000 } else { self.backoff_ms };
            let first = tokio::select! {
                e = rx.recv() => match e { Some(e) => Some(e), None => break },
                _ = tokio::time::sleep(std::time::Duration::from_millis(wait)) => None,
            };
            if let Some(first) = first {
                batch.push(first);
                // The rest of the batch: what the queue holds, looked at every few
                // milliseconds for up to 200 ms (not a wake-up of this task per entry,
                // which under load cost every request a task switch).
                let gathering = Stopwatch::start();
                loop {
                    while batch.len() < BATCH {
                        match rx.try_recv() {
                            Ok(e) => batch.push(e),
                            Err(_) => break,
                        }
                    }
                    if batch.len() >= BATCH
                        || rx.is_closed()
                        || gathering.elapsed() >= std::time::Duration::from_millis(200)
                    {
                        break;
                    }
                    tokio::time::sleep(GATHER_STEP).await;
                }
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                self.write_or_spool(full.into()).await;
            }
            if self.healthy && self.log.spool.pending.load(Ordering::Acquire) {
                self.drain().await;
            } else if !self.healthy {
                // Probe with the spool: everything since the failure is there.
                self.drain().await;
            }
        }
        // Shutdown: what is still queued, then one more attempt at the spool.
        while let Ok(e) = rx.try_recv() {
            batch.push(e);
        }
        if !batch.is_empty() {
            self.write_or_spool(batch.into()).await;
        }
        if self.log.spool.pending.load(Ordering::Acquire) {
            self.drain().await;
        }
    }

    async fn write_or_spool(&mut self, batch: Arc<[AccessEntry]>) {
        if !self.healthy {
            // Keep order with what is already spooled; the drain retries the database.
            self.log
                .spool_entries(&batch, "database unavailable; spooling to disk");
            return;
        }
        match kura_store::access_log::write_batch(&self.store, batch.clone()).await {
            Ok(()) => {
                self.log
                    .stats
                    .written
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                self.failed(&e);
                self.log
                    .spool_entries(&batch, "database write failed; spooling to disk");
            }
        }
    }

    fn failed(&mut self, e: &kura_store::StoreError) {
        self.log
            .stats
            .write_failures
            .fetch_add(1, Ordering::Relaxed);
        let now = self.log.clock.now().millis();
        self.log.stats.warn(
            now,
            &format!("writing a batch failed ({e}); kept in the spool"),
        );
        self.healthy = false;
        self.backoff_ms = (self.backoff_ms * 2).clamp(250, 30_000);
    }

    /// Writes every complete spool segment to the database, oldest first, one transaction
    /// each, deleting a segment once it is committed. Stops at the first failure.
    async fn drain(&mut self) {
        self.log.spool.seal();
        self.log.spool.pending.store(false, Ordering::Release);
        for seg in self.log.spool.segments() {
            let entries = match read_segment(&seg).await {
                Ok(v) => v,
                Err(e) => {
                    // Unreadable: keep it aside for the operator, never delete evidence.
                    tracing::error!(segment = %seg.display(), error = %e, "access log spool segment unreadable; renamed to .bad");
                    let _ = tokio::fs::rename(&seg, seg.with_extension("bad")).await;
                    continue;
                }
            };
            let mut ok = true;
            for chunk in entries.chunks(BATCH) {
                // One segment is at most BATCH lines: one transaction.
                if let Err(e) =
                    kura_store::access_log::write_batch(&self.store, chunk.to_vec().into()).await
                {
                    self.failed(&e);
                    ok = false;
                    break;
                }
            }
            if !ok {
                self.log.spool.pending.store(true, Ordering::Release);
                return;
            }
            self.log
                .stats
                .written
                .fetch_add(entries.len() as u64, Ordering::Relaxed);
            if let Err(e) = tokio::fs::remove_file(&seg).await {
                tracing::error!(segment = %seg.display(), error = %e, "removing a drained spool segment failed");
            }
        }
        self.healthy = true;
        self.backoff_ms = 0;
    }
}

async fn read_segment(p: &std::path::Path) -> std::io::Result<Vec<AccessEntry>> {
    let text = tokio::fs::read_to_string(p).await?;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<SpoolLine>(line) {
            Ok(l) => out.push(AccessEntry::from(l)),
            // A torn last line (the process was killed mid-write) is skipped.
            Err(e) => {
                tracing::warn!(segment = %p.display(), error = %e, "skipping a torn spool line")
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn invitation_tokens_are_not_logged() {
        assert_eq!(
            super::redact_path("/invite/kin_abcdefghijklmnopqrstuvwxyz".into()),
            "/invite/kin_abcd…"
        );
        assert_eq!(
            super::redact_path("/operator/login/kol_abcdefghijklmnopqrstuvwxyz".into()),
            "/operator/login/kol_abcd…"
        );
        assert_eq!(super::redact_path("/api/v1/me".into()), "/api/v1/me");
    }
}
