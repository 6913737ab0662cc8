//! Kura's use cases. Each public method: checks input, asks [`kura_domain::authorize`] through
//! [`Services::require`], changes the store, and appends the audit event in the *same*
//! transaction — so a change without its audit record (or the reverse) cannot be committed.
//! Denied attempts are audited too, in a transaction of their own.

pub mod audit;
pub mod auth;
pub mod backup;
mod error;
pub mod export;
pub mod files;
pub mod incidents;
pub mod jobs;
pub mod lifecycle;
pub mod mail;
pub mod mfa;
pub mod notices;
pub mod operator;
pub mod passkeys;
pub mod signup;
pub mod status;
pub mod tenants;
pub mod users;
pub mod workspace;

pub use error::ServiceError;
pub use kura_store as store;

use kura_domain::{authorize, Action, Clock, Decision, Principal, Resource, Timestamp};
use kura_store::audit::NewEvent;
use kura_store::{Store, Tx};
use std::sync::Arc;
use tokio::sync::Semaphore;

pub type Result<T> = std::result::Result<T, ServiceError>;

/// Settings the services need from the deployment's configuration.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The URL users reach the console at, for links in mail (e.g. `http://localhost:8080`).
    pub public_url: String,
    /// How long an invitation link stays valid.
    pub invitation_ttl_secs: i64,
    /// How long a password-reset link stays valid.
    pub password_reset_ttl_secs: i64,
    /// Failed-login throttling (IAM-8).
    pub login: LoginThrottle,
    /// How often each tenant's audit chain head gets a signed checkpoint.
    pub checkpoint_interval_secs: i64,
    /// Backup generations kept.
    pub backup_keep: usize,
    /// Label of where backups are kept (shown with them, e.g. `ap-northeast-1`).
    pub backup_region: String,
    /// Daily backup time of day (`HH:MM`) in `backup_time_zone`.
    pub backup_time: String,
    pub backup_time_zone: String,
    /// Days from termination to the deletion of a tenant's data.
    pub delete_after_days: i64,
    /// Days from that deletion to the destruction of its keys (crypto-shredding).
    pub shred_after_days: i64,
    /// Availability objective, percent (OPS-7).
    pub slo_percent: f64,
    /// Planned downtime allowed per year, hours.
    pub planned_downtime_budget_hours: f64,
    /// Self-service sign-up (TEN-2) is open.
    pub signup_enabled: bool,
    /// Who provides the service, as documents (deletion certificates) name the issuer.
    pub provider_name: String,
    /// `public_url` was configured (not the `http://localhost:<port>` default).
    pub public_url_configured: bool,
    /// Seconds between background re-encryption rounds on each node (0: off).
    pub reencrypt_interval_secs: u64,
}

/// Failed-login throttling: growing delays, then a temporary lock, per account and per
/// client address.
#[derive(Debug, Clone)]
pub struct LoginThrottle {
    /// Failures of one account (tenant + e-mail) within the window that lock it.
    pub account_max_failures: i64,
    /// Failures from one client address within the window that lock the address.
    pub ip_max_failures: i64,
    /// The counting window and the lock's length.
    pub lock_secs: i64,
    /// The delay added to the n-th failure in a row: `base × 2^(n-3)` from the third,
    /// at most 4 s. 0 turns delays off.
    pub delay_base_ms: u64,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self {
            account_max_failures: 5,
            ip_max_failures: 30,
            lock_secs: 15 * 60,
            delay_base_ms: 250,
        }
    }
}

impl LoginThrottle {
    /// The delay before answering the `failures`-th failure in a row.
    pub fn delay_ms(&self, failures: i64) -> u64 {
        if failures < 3 || self.delay_base_ms == 0 {
            return 0;
        }
        let shift = (failures - 3).min(10) as u32;
        self.delay_base_ms.saturating_mul(1 << shift).min(4_000)
    }
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            public_url: "http://localhost:8080".into(),
            invitation_ttl_secs: 7 * 86_400,
            password_reset_ttl_secs: 30 * 60,
            login: LoginThrottle::default(),
            checkpoint_interval_secs: 3600,
            backup_keep: 7,
            backup_region: "local".into(),
            backup_time: "03:00".into(),
            backup_time_zone: "Asia/Tokyo".into(),
            delete_after_days: 30,
            shred_after_days: 7,
            slo_percent: 99.0,
            planned_downtime_budget_hours: 60.0,
            signup_enabled: false,
            provider_name: "Kura".into(),
            public_url_configured: false,
            reencrypt_interval_secs: 0,
        }
    }
}

/// This node's service-level counters (OPS-8).
#[derive(Debug, Default)]
pub struct Metrics {
    auth_failures: std::sync::atomic::AtomicU64,
    integrity_failures: std::sync::atomic::AtomicU64,
    job_runs: std::sync::Mutex<std::collections::BTreeMap<(String, String), u64>>,
}

/// A copy of the counters.
#[derive(Debug, Clone, Default)]
pub struct MetricsSnapshot {
    pub auth_failures: u64,
    /// Stored blobs that failed their integrity check when read (altered, truncated).
    pub integrity_failures: u64,
    pub job_runs: std::collections::BTreeMap<(String, String), u64>,
}

impl Metrics {
    pub fn auth_failed(&self) {
        self.auth_failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    pub fn integrity_failed(&self) {
        self.integrity_failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    pub fn job_ran(&self, job: &str, ok: bool) {
        if let Ok(mut m) = self.job_runs.lock() {
            *m.entry((
                job.to_string(),
                if ok { "ok" } else { "failed" }.to_string(),
            ))
            .or_default() += 1;
        }
    }
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            auth_failures: self
                .auth_failures
                .load(std::sync::atomic::Ordering::Relaxed),
            integrity_failures: self
                .integrity_failures
                .load(std::sync::atomic::Ordering::Relaxed),
            job_runs: self.job_runs.lock().map(|m| m.clone()).unwrap_or_default(),
        }
    }
}

/// Facts about the request a use case runs for, recorded in the audit log.
#[derive(Debug, Clone, Default)]
pub struct RequestCtx {
    pub ip: Option<String>,
    pub request_id: Option<String>,
    pub user_agent: Option<String>,
}

/// Who acts.
#[derive(Debug, Clone)]
pub enum Actor<'a> {
    User(&'a Principal),
    /// The operator, through the CLI. Never has access to tenant data through the product
    /// (IAM-10); what it does is audited.
    Operator,
    /// The operator, through an operator console session (its name).
    OperatorConsole(&'a str),
    /// Someone not logged in (login attempts, invitation links).
    Anonymous,
    /// A scheduled job (retention purges and the like).
    System(&'static str),
}

impl Actor<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Actor::User(_) => "user",
            Actor::Operator | Actor::OperatorConsole(_) => "operator",
            Actor::Anonymous => "anonymous",
            Actor::System(_) => "system",
        }
    }
    fn id(&self) -> Option<String> {
        match self {
            Actor::User(p) => Some(p.user_id.as_str().to_string()),
            Actor::Operator => Some(operator_name()),
            Actor::OperatorConsole(name) => Some(format!("console:{name}")),
            Actor::Anonymous => None,
            Actor::System(job) => Some(format!("job:{job}")),
        }
    }
}

/// Who acts for the operator: the CLI (recorded as the OS user) or an operator console
/// session (recorded by the name its login link was made for).
#[derive(Debug, Clone, Copy)]
pub enum Operator<'a> {
    Cli,
    Console(&'a str),
}

impl<'a> Operator<'a> {
    pub(crate) fn actor(self) -> Actor<'a> {
        match self {
            Operator::Cli => Actor::Operator,
            Operator::Console(name) => Actor::OperatorConsole(name),
        }
    }
}

/// The operator's identity in audit records: the OS user running the CLI.
fn operator_name() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .map(|u| format!("cli:{u}"))
        .unwrap_or_else(|_| "cli".into())
}

/// An audit event under construction.
pub(crate) struct Event {
    pub action: &'static str,
    pub target_kind: Option<&'static str>,
    pub target_id: Option<String>,
    pub result: &'static str,
    pub details: serde_json::Value,
}

impl Event {
    pub fn new(action: &'static str) -> Self {
        Self {
            action,
            target_kind: None,
            target_id: None,
            result: "success",
            details: serde_json::Value::Object(Default::default()),
        }
    }
    pub fn target(mut self, kind: &'static str, id: impl ToString) -> Self {
        self.target_kind = Some(kind);
        self.target_id = Some(id.to_string());
        self
    }
    pub fn result(mut self, r: &'static str) -> Self {
        self.result = r;
        self
    }
    pub fn details(mut self, d: serde_json::Value) -> Self {
        self.details = d;
        self
    }
}

/// The application: every use case hangs off this.
#[derive(Clone)]
pub struct Services {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<ServiceConfig>,
    pub keys: Arc<files::KeyRing>,
    pub blobs: kura_store::blobs::Blobs,
    /// The deployment's Ed25519 key for audit checkpoints and exports (LOG-5).
    pub signing: Arc<kura_crypto::sign::SigningKey>,
    /// Counters for `/metrics` (this node).
    pub metrics: Arc<Metrics>,
    /// Where backup generations go (OPS-1); `None`: backups are off.
    pub backups: Option<kura_store::blobs::Blobs>,
    /// The SMTP server the outbox is delivered to; `None`: mail stays in the outbox.
    pub mailer: Option<Arc<mail::SmtpSender>>,
    /// Bounds concurrent Argon2 runs (19 MiB each) to the number of cores; each run borrows
    /// a reused workspace from `hash_memory`, so a log-in flood costs a fixed amount of
    /// memory (cores × 19 MiB), not 19 MiB per attempt, and the workspaces are dropped
    /// [`HASH_MEMORY_IDLE`] after the last hash (memory back near idle after a flood).
    hash_permits: Arc<Semaphore>,
    hash_memory: Arc<std::sync::Mutex<HashMemory>>,
    /// Sessions' last use, written in batches ([`auth::session`]).
    pub(crate) touches: Arc<std::sync::Mutex<auth::PendingTouches>>,
}

/// How long reusable Argon2 workspaces are kept after the last password hash.
const HASH_MEMORY_IDLE: std::time::Duration = std::time::Duration::from_secs(2);

/// Argon2 workspaces not in use, and how many hashes have finished (to tell whether any
/// finished since a release was scheduled).
#[derive(Default)]
struct HashMemory {
    free: Vec<kura_crypto::password::Workspace>,
    finished: u64,
}

impl Services {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        config: ServiceConfig,
        master_key: kura_crypto::keys::SecretKey,
        blobs: kura_store::blobs::Blobs,
        signing: kura_crypto::sign::SigningKey,
    ) -> Self {
        let permits = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Self {
            store,
            clock,
            config: Arc::new(config),
            keys: Arc::new(files::KeyRing::new(master_key)),
            blobs,
            signing: Arc::new(signing),
            metrics: Arc::new(Metrics::default()),
            backups: None,
            mailer: None,
            hash_permits: Arc::new(Semaphore::new(permits)),
            hash_memory: Arc::new(std::sync::Mutex::new(HashMemory::default())),
            touches: Arc::default(),
        }
    }

    /// The backup store (local directory or S3).
    pub fn with_backups(mut self, store: kura_store::blobs::Blobs) -> Self {
        self.backups = Some(store);
        self
    }

    /// Delivers the outbox over SMTP (the `mail.deliver` job runs on every node).
    pub fn with_mailer(mut self, smtp: mail::SmtpSender) -> Self {
        self.mailer = Some(Arc::new(smtp));
        self
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Counts one request against the rate-limit key `key` (a fixed window of
    /// `window_secs`); refused with `RateLimited` (and the seconds to wait) once more than
    /// `max` fall in the window. Keys are namespaced (`signup:ip:…`, `reset:acct:…`) in the
    /// same counter table as failed log-ins.
    pub(crate) async fn rate_limit(&self, key: &str, max: i64, window_secs: i64) -> Result<()> {
        let now = self.now();
        let mut tx = self.store.system_tx().await?;
        let t = kura_store::throttle::record_failure(&mut tx, key, now, window_secs * 1000).await?;
        tx.commit().await?;
        if t.failures <= max {
            return Ok(());
        }
        let retry = (t.window_start.0 + window_secs * 1000 - now.0) / 1000;
        Err(ServiceError::RateLimited {
            retry_after_secs: retry.max(1),
        })
    }

    /// Whether the key is over `max` in its current window, without counting.
    pub(crate) async fn rate_exceeded(
        &self,
        key: &str,
        max: i64,
        window_secs: i64,
    ) -> Result<bool> {
        let now = self.now();
        let mut tx = self.store.system_read().await?;
        let t = kura_store::throttle::get(&mut tx, key).await?;
        Ok(t.is_some_and(|t| t.window_start.0 >= now.0 - window_secs * 1000 && t.failures >= max))
    }

    /// Whether the database can take a writer and the blob store answers, each checked
    /// concurrently within one second (`/readyz`, `/metrics`, the status probe): a stalled
    /// dependency makes a node unready quickly instead of hanging the check.
    pub async fn readiness(&self) -> (bool, bool) {
        let within = std::time::Duration::from_secs(1);
        let db = self.store.ping(within);
        let storage = async {
            matches!(
                tokio::time::timeout(within, self.blobs.check()).await,
                Ok(Ok(()))
            )
        };
        tokio::join!(db, storage)
    }

    /// Appends an audit event to `tenant`'s chain inside `tx`.
    pub(crate) async fn audit(
        &self,
        tx: &mut Tx,
        tenant: &kura_domain::TenantId,
        actor: &Actor<'_>,
        ctx: &RequestCtx,
        ev: Event,
    ) -> Result<()> {
        kura_store::audit::append(tx, tenant, self.new_event(actor, ctx, ev)).await?;
        Ok(())
    }

    /// The audit record of `ev` by `actor` in the request `ctx`, stamped now.
    pub(crate) fn new_event(&self, actor: &Actor<'_>, ctx: &RequestCtx, ev: Event) -> NewEvent {
        NewEvent {
            at: self.now(),
            actor_kind: actor.kind(),
            actor_id: actor.id(),
            action: ev.action.to_string(),
            target_kind: ev.target_kind,
            target_id: ev.target_id,
            result: ev.result,
            ip: ctx.ip.clone(),
            request_id: ctx.request_id.clone(),
            details: ev.details,
        }
    }

    /// Appends an audit event in a transaction of its own (for failures and denials, whose
    /// main transaction is rolled back).
    pub(crate) async fn audit_alone(
        &self,
        tenant: &kura_domain::TenantId,
        actor: &Actor<'_>,
        ctx: &RequestCtx,
        ev: Event,
    ) -> Result<()> {
        let mut tx = if tenant.as_str() == kura_store::SYSTEM_TENANT {
            self.store.system_tx().await?
        } else {
            self.store.tenant_tx(tenant).await?
        };
        self.audit(&mut tx, tenant, actor, ctx, ev).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The one gate every use case passes: asks [`authorize`], audits a denial, and maps the
    /// decision to an error that reveals nothing (NotFound for what the principal cannot see).
    pub async fn require(
        &self,
        p: &Principal,
        action: Action,
        resource: &Resource,
        ctx: &RequestCtx,
    ) -> Result<()> {
        match authorize(p, action, resource) {
            Decision::Allow => Ok(()),
            denied => {
                let target = match resource {
                    Resource::Tenant(t) => ("tenant", t.as_str().to_string()),
                    Resource::Folder { path, .. } => (
                        "folder",
                        path.last()
                            .map(|f| f.as_str().to_string())
                            .unwrap_or_default(),
                    ),
                    Resource::Project { project_id, .. } => {
                        ("project", project_id.as_str().to_string())
                    }
                };
                self.audit_alone(
                    &p.tenant_id,
                    &Actor::User(p),
                    ctx,
                    Event::new("access.denied")
                        .target(target.0, target.1)
                        .result("denied")
                        .details(serde_json::json!({ "action": action.as_str() })),
                )
                .await?;
                Err(match denied {
                    Decision::Forbidden => ServiceError::Forbidden,
                    _ => ServiceError::NotFound,
                })
            }
        }
    }

    /// Audits that a principal asked for an id that does not exist in their tenant (possibly
    /// another tenant's), then answers NotFound.
    pub(crate) async fn not_found(
        &self,
        p: &Principal,
        kind: &'static str,
        id: &str,
        ctx: &RequestCtx,
    ) -> ServiceError {
        let r = self
            .audit_alone(
                &p.tenant_id,
                &Actor::User(p),
                ctx,
                Event::new("access.denied")
                    .target(kind, id)
                    .result("denied")
                    .details(serde_json::json!({ "reason": "not_found" })),
            )
            .await;
        match r {
            Ok(()) => ServiceError::NotFound,
            Err(e) => e,
        }
    }

    /// Runs `f` with a reused Argon2 workspace on a blocking thread, at most one per core.
    /// The workspaces are dropped once no hash has finished for [`HASH_MEMORY_IDLE`].
    async fn with_hash_memory<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut kura_crypto::password::Workspace) -> T + Send + 'static,
    ) -> Result<T> {
        let permit = self
            .hash_permits
            .acquire()
            .await
            .map_err(|_| ServiceError::internal("hash semaphore closed"))?;
        let pool = self.hash_memory.clone();
        let (out, finished) = tokio::task::spawn_blocking(move || {
            let mut ws = pool
                .lock()
                .ok()
                .and_then(|mut m| m.free.pop())
                .unwrap_or_default();
            let out = f(&mut ws);
            let finished = pool.lock().ok().map(|mut m| {
                m.free.push(ws);
                m.finished += 1;
                m.finished
            });
            (out, finished)
        })
        .await
        .map_err(|_| ServiceError::internal("hash task failed"))?;
        drop(permit);
        if let Some(finished) = finished {
            let pool = self.hash_memory.clone();
            tokio::spawn(async move {
                tokio::time::sleep(HASH_MEMORY_IDLE).await;
                if let Ok(mut m) = pool.lock() {
                    if m.finished == finished {
                        m.free.clear();
                    }
                }
            });
        }
        Ok(out)
    }

    /// Reusable Argon2 workspaces held right now (dropped [`HASH_MEMORY_IDLE`] after the
    /// last hash).
    pub fn hash_workspaces_held(&self) -> usize {
        self.hash_memory.lock().map(|m| m.free.len()).unwrap_or(0)
    }

    pub(crate) async fn hash_password(&self, password: String) -> Result<String> {
        self.with_hash_memory(move |ws| kura_crypto::password::hash_with(&password, ws))
            .await?
            .map_err(|_| ServiceError::internal("password hashing failed"))
    }

    pub(crate) async fn verify_password(&self, password: String, phc: String) -> Result<bool> {
        self.with_hash_memory(move |ws| kura_crypto::password::verify_with(&password, &phc, ws))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::LoginThrottle;

    #[test]
    fn failed_login_delays_grow_and_are_capped() {
        let p = LoginThrottle::default();
        let d: Vec<u64> = (1..=10).map(|n| p.delay_ms(n)).collect();
        assert_eq!(d, vec![0, 0, 250, 500, 1000, 2000, 4000, 4000, 4000, 4000]);
        let off = LoginThrottle {
            delay_base_ms: 0,
            ..LoginThrottle::default()
        };
        assert_eq!(off.delay_ms(9), 0);
    }
}
