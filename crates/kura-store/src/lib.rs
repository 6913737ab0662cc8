//! Kura's database layer.
//!
//! One schema with a migration folder per backend (`migrations/sqlite`, `migrations/postgres`),
//! applied one transaction per version; a database newer than this binary is refused. All
//! queries go through sqlx's `Any` driver with ids as TEXT and times as BIGINT, so one code
//! path serves SQLite (embedded default, WAL) and PostgreSQL.
//!
//! Every repository function takes the [`TenantId`] and runs inside a [`Tx`] that was opened
//! for that tenant ([`Store::tenant_tx`]); a mismatch is an error, not a query. On PostgreSQL
//! the transaction also sets `kura.tenant_id` and drops to the `kura_app` role, so row-level
//! security enforces the same isolation a second time (TEN-3).

pub mod access_log;
pub mod api_tokens;
pub mod audit;
pub mod backup;
pub mod blobs;
mod checkpoint;
pub mod files;
pub mod generate;
pub mod incidents;
pub mod invitations;
pub mod jobs;
pub mod keys;
pub mod lifecycle;
pub mod mfa;
pub mod notices;
pub mod operator;
pub mod outbox;
pub mod passkeys;
pub mod records;
pub mod roles;
mod session_batch;
mod session_cache;
pub mod sessions;
pub mod signup;
pub mod status;
mod sync_read;
pub mod tenants;
pub mod throttle;
pub mod usage;
pub mod users;
pub mod workspace;
mod writer;

use kura_domain::TenantId;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Connection, Executor};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// The tenant id under which operator events outside any tenant are chained.
pub const SYSTEM_TENANT: &str = "_system";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error("transaction scope violation: opened for another tenant")]
    ScopeViolation,
    #[error(
        "database schema version {found} is newer than this binary ({known}); refusing to run"
    )]
    SchemaTooNew { found: i64, known: i64 },
    #[error("stored data is malformed: {0}")]
    Corrupt(String),
    /// The database cannot be reached or cannot take a writer right now (pool or write-lock
    /// timeout, connection lost, server shutting down): worth retrying later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database's disk is full (SQLITE_FULL, PostgreSQL 53100).
    #[error("database storage is full")]
    StorageFull,
    /// A concurrent transaction won (PostgreSQL serialization failure 40001 or deadlock
    /// 40P01): the transaction may be retried.
    #[error("serialization conflict; retry")]
    Serialization,
    #[error("database error: {0}")]
    Db(sqlx::Error),
    /// An error of SQLite used in place (see `writer::WriterShared::in_place`) that is none of
    /// the above.
    #[error("database error: {0}")]
    Sqlite(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
            sqlx::Error::Database(d) => {
                let code = d.code().map(|c| c.to_string()).unwrap_or_default();
                match code.as_str() {
                    // SQLite: SQLITE_FULL (13); PostgreSQL: disk_full.
                    "13" | "53100" => StoreError::StorageFull,
                    "40001" | "40P01" => StoreError::Serialization,
                    // SQLite: SQLITE_BUSY (5), SQLITE_LOCKED (6) after the busy timeout;
                    // PostgreSQL: connection exceptions (08…), shutdown / cannot connect now
                    // (57P01–57P03), too many connections (53300).
                    "5" | "6" | "517" | "261" | "53300" | "57P01" | "57P02" | "57P03" => {
                        StoreError::Unavailable(e.to_string())
                    }
                    c if c.starts_with("08") => StoreError::Unavailable(e.to_string()),
                    _ => StoreError::Db(e),
                }
            }
            _ => StoreError::Db(e),
        }
    }
}

/// Whether a failed statement means the connection itself is gone (worth another one).
fn connection_lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(d) => d.code().is_some_and(|c| {
            c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}

impl StoreError {
    /// Maps a unique-constraint violation to [`StoreError::Conflict`].
    pub(crate) fn conflict_on_unique(e: sqlx::Error, what: &'static str) -> StoreError {
        match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(what),
            _ => StoreError::Db(e),
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A connection pool to one Kura database.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite has one writer: write transactions are units of a group commit there
    /// ([`writer`]) instead of failing with SQLITE_BUSY. Unused on PostgreSQL.
    writer: Arc<writer::WriterShared>,
    acquire_timeout: Duration,
    max_connections: u32,
    /// SQLite only: connections that read in place, without sqlx's thread hop
    /// ([`sync_read`]).
    readers: Option<Arc<sync_read::SyncReaders>>,
    /// The background WAL checkpointer's count (SQLite files).
    checkpoints: Arc<checkpoint::Checkpoints>,
    /// Bookkeeping of reads, committed in batches ([`records`]).
    recorder: Arc<records::Recorder>,
    /// Session lookups kept in memory ([`session_cache`]).
    sessions: Arc<session_cache::SessionCache>,
    /// PostgreSQL: concurrent session lookups asked for by one statement
    /// ([`session_batch`]).
    lookups: Arc<session_batch::Lookups>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish()
    }
}

/// What a transaction may touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxScope {
    Tenant(TenantId),
    /// Operator and cross-tenant work: tenant administration, session lookup by token hash,
    /// access-log batches, the job runner.
    System,
}

/// A database transaction (or, for [`Store::system_lookup`] on SQLite, a plain connection).
///
/// Cancellation-safe: whatever happens to the request that opened it (client gone, timeout,
/// panic), a transaction either commits in full or is rolled back before its connection goes
/// back to the pool and before SQLite's write lock is handed to the next writer. `BEGIN` and
/// `COMMIT` run on a task of their own, so dropping the caller's future part-way cannot leave
/// them half done; dropping an open `Tx` rolls back on a task of its own, and a connection
/// whose rollback fails is closed instead of being reused.
pub struct Tx {
    /// Taken only by [`Tx::commit`] and `Drop`, which both end the `Tx`.
    conn: Option<Conn>,
    /// A `BEGIN` (or, for a SQLite writer, a unit's savepoint) is outstanding (false for a
    /// plain connection).
    open: bool,
    scope: TxScope,
    backend: Backend,
}

/// Where a transaction runs: its own pooled connection, or (SQLite writes) a unit of the
/// writer's group commit.
enum Conn {
    Pooled(PoolConnection<Any>),
    Writer(writer::WriterGuard, Arc<writer::WriterShared>),
}

impl Drop for Tx {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        let Some(conn) = self.conn.take() else {
            return;
        };
        match (tokio::runtime::Handle::try_current(), conn) {
            (Ok(rt), Conn::Pooled(conn)) => {
                rt.spawn(roll_back(conn));
            }
            (Ok(rt), Conn::Writer(g, _)) => {
                // The writer is handed on only after the unit's rollback.
                rt.spawn(writer::WriterShared::abandon_unit(g));
            }
            (Err(_), Conn::Pooled(mut conn)) => {
                // No runtime to roll back on: never reuse a connection inside a transaction.
                conn.close_on_drop();
            }
            (Err(_), Conn::Writer(mut g, _)) => g.poison(),
        }
    }
}

/// Rolls back, then releases the connection.
async fn roll_back(mut conn: PoolConnection<Any>) {
    if let Err(e) = (&mut *conn).execute("ROLLBACK").await {
        tracing::warn!(error = %e, "rollback failed; the connection is closed, not reused");
        conn.close_on_drop();
    }
    drop(conn);
}

impl Tx {
    pub(crate) fn conn(&mut self) -> &mut AnyConnection {
        #[allow(clippy::expect_used)]
        // Invariant: `conn` is `Some` for the whole life of a `Tx`; only `commit` and `Drop`
        // take it, and both end the `Tx`.
        match self.conn.as_mut().expect("a live Tx holds its connection") {
            Conn::Pooled(c) => c,
            Conn::Writer(g, _) => g.conn(),
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn scope(&self) -> &TxScope {
        &self.scope
    }

    /// Fails closed when a repository is called for a tenant other than the one this
    /// transaction was opened for. System transactions may touch any tenant.
    pub(crate) fn check(&self, tenant: &TenantId) -> Result<()> {
        match &self.scope {
            TxScope::System => Ok(()),
            TxScope::Tenant(t) if t == tenant => Ok(()),
            TxScope::Tenant(_) => Err(StoreError::ScopeViolation),
        }
    }

    /// Refuses anything but a system-scope transaction (operator tables).
    pub(crate) fn system_only(&self) -> Result<()> {
        if self.scope != TxScope::System {
            return Err(StoreError::ScopeViolation);
        }
        Ok(())
    }

    /// `FOR UPDATE` where the backend has it (PostgreSQL); SQLite serialises writers anyway.
    pub(crate) fn for_update(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        }
    }

    /// Commits. The `COMMIT` runs on a task of its own: once called, it completes even if
    /// the caller's future is dropped. On SQLite the unit is committed with its batch
    /// ([`writer`]): this returns once that batch is durable.
    pub async fn commit(mut self) -> Result<()> {
        if !self.open {
            return Ok(());
        }
        self.open = false;
        let mut conn = match self.conn.take() {
            None => return Ok(()),
            Some(Conn::Writer(g, shared)) => {
                let task = tokio::spawn(async move { shared.commit_unit(g).await });
                return match task.await {
                    Ok(r) => r,
                    Err(e) => Err(StoreError::Unavailable(format!("commit task: {e}"))),
                };
            }
            Some(Conn::Pooled(c)) => c,
        };
        let task = tokio::spawn(async move {
            let r = (&mut *conn).execute("COMMIT").await;
            if r.is_err() {
                // A COMMIT that failed may leave the transaction open (SQLite busy): end it,
                // or close the connection rather than reuse it.
                if (&mut *conn).execute("ROLLBACK").await.is_err() {
                    conn.close_on_drop();
                }
            }
            drop(conn);
            r
        });
        match task.await {
            Ok(r) => r.map(|_| ()).map_err(StoreError::from),
            Err(e) => Err(StoreError::Unavailable(format!("commit task: {e}"))),
        }
    }

    /// Runs raw SQL inside this transaction. For tests and maintenance tools only (the tamper
    /// tests edit rows directly with it); application code uses the repositories.
    pub async fn execute_raw(&mut self, sql: &str) -> Result<u64> {
        let sql = sql.to_string();
        Ok(self.conn().execute(sql.as_str()).await?.rows_affected())
    }
}

/// The migrations this binary knows, in order.
struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sqlite: include_str!("../migrations/sqlite/0001_init.sql"),
        postgres: include_str!("../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "files",
        sqlite: include_str!("../migrations/sqlite/0002_files.sql"),
        postgres: include_str!("../migrations/postgres/0002_files.sql"),
    },
    Migration {
        version: 3,
        name: "labels",
        sqlite: include_str!("../migrations/sqlite/0003_labels.sql"),
        postgres: include_str!("../migrations/postgres/0003_labels.sql"),
    },
    Migration {
        version: 4,
        name: "trash",
        sqlite: include_str!("../migrations/sqlite/0004_trash.sql"),
        postgres: include_str!("../migrations/postgres/0004_trash.sql"),
    },
    Migration {
        version: 5,
        name: "usage",
        sqlite: include_str!("../migrations/sqlite/0005_usage.sql"),
        postgres: include_str!("../migrations/postgres/0005_usage.sql"),
    },
    Migration {
        version: 6,
        name: "account",
        sqlite: include_str!("../migrations/sqlite/0006_account.sql"),
        postgres: include_str!("../migrations/postgres/0006_account.sql"),
    },
    Migration {
        version: 7,
        name: "mfa",
        sqlite: include_str!("../migrations/sqlite/0007_mfa.sql"),
        postgres: include_str!("../migrations/postgres/0007_mfa.sql"),
    },
    Migration {
        version: 8,
        name: "passkeys",
        sqlite: include_str!("../migrations/sqlite/0008_passkeys.sql"),
        postgres: include_str!("../migrations/postgres/0008_passkeys.sql"),
    },
    Migration {
        version: 9,
        name: "evidence",
        sqlite: include_str!("../migrations/sqlite/0009_evidence.sql"),
        postgres: include_str!("../migrations/postgres/0009_evidence.sql"),
    },
    Migration {
        version: 10,
        name: "backups",
        sqlite: include_str!("../migrations/sqlite/0010_backups.sql"),
        postgres: include_str!("../migrations/postgres/0010_backups.sql"),
    },
    Migration {
        version: 11,
        name: "lifecycle",
        sqlite: include_str!("../migrations/sqlite/0011_lifecycle.sql"),
        postgres: include_str!("../migrations/postgres/0011_lifecycle.sql"),
    },
    Migration {
        version: 12,
        name: "notices",
        sqlite: include_str!("../migrations/sqlite/0012_notices.sql"),
        postgres: include_str!("../migrations/postgres/0012_notices.sql"),
    },
    Migration {
        version: 13,
        name: "incidents",
        sqlite: include_str!("../migrations/sqlite/0013_incidents.sql"),
        postgres: include_str!("../migrations/postgres/0013_incidents.sql"),
    },
    Migration {
        version: 14,
        name: "status",
        sqlite: include_str!("../migrations/sqlite/0014_status.sql"),
        postgres: include_str!("../migrations/postgres/0014_status.sql"),
    },
    Migration {
        version: 15,
        name: "signup",
        sqlite: include_str!("../migrations/sqlite/0015_signup.sql"),
        postgres: include_str!("../migrations/postgres/0015_signup.sql"),
    },
    Migration {
        version: 16,
        name: "operator",
        sqlite: include_str!("../migrations/sqlite/0016_operator.sql"),
        postgres: include_str!("../migrations/postgres/0016_operator.sql"),
    },
    Migration {
        version: 17,
        name: "notice_withdraw",
        sqlite: include_str!("../migrations/sqlite/0017_notice_withdraw.sql"),
        postgres: include_str!("../migrations/postgres/0017_notice_withdraw.sql"),
    },
    Migration {
        version: 18,
        name: "audit_fixes",
        sqlite: include_str!("../migrations/sqlite/0018_audit_fixes.sql"),
        postgres: include_str!("../migrations/postgres/0018_audit_fixes.sql"),
    },
    Migration {
        version: 19,
        name: "session_lookup",
        sqlite: include_str!("../migrations/sqlite/0019_session_lookup.sql"),
        postgres: include_str!("../migrations/postgres/0019_session_lookup.sql"),
    },
    Migration {
        version: 20,
        name: "file_indexes",
        sqlite: include_str!("../migrations/sqlite/0020_file_indexes.sql"),
        postgres: include_str!("../migrations/postgres/0020_file_indexes.sql"),
    },
    Migration {
        version: 21,
        name: "auth_notify",
        sqlite: include_str!("../migrations/sqlite/0021_auth_notify.sql"),
        postgres: include_str!("../migrations/postgres/0021_auth_notify.sql"),
    },
    Migration {
        version: 22,
        name: "session_lookup_many",
        sqlite: include_str!("../migrations/sqlite/0022_session_lookup_many.sql"),
        postgres: include_str!("../migrations/postgres/0022_session_lookup_many.sql"),
    },
];

/// `{insert} VALUES (?,…),(?,…)…`: `rows` rows of `cols` anonymous placeholders, for
/// multi-row INSERTs on SQLite (which looks a numbered `$n` up by a linear scan — quadratic
/// over a statement this size).
pub(crate) fn sqlite_values(insert: &str, rows: usize, cols: usize) -> String {
    let mut sql = String::with_capacity(insert.len() + 8 + rows * (cols * 2 + 2));
    sql.push_str(insert);
    sql.push_str(" VALUES ");
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push('(');
        for c in 0..cols {
            if c > 0 {
                sql.push(',');
            }
            sql.push('?');
        }
        sql.push(')');
    }
    sql
}

/// A nullable millisecond column as a time.
pub(crate) fn opt_ts(r: &sqlx::any::AnyRow, col: &str) -> Result<Option<kura_domain::Timestamp>> {
    use sqlx::Row;
    Ok(r.try_get::<Option<i64>, _>(col)?
        .map(kura_domain::Timestamp))
}

/// The newest schema version this binary knows.
pub fn schema_version() -> i64 {
    MIGRATIONS.last().map(|m| m.version).unwrap_or(0)
}

/// Options for [`Store::connect`].
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// `sqlite:///path/to/kura.db` or `postgres://user@host/db`.
    pub url: String,
    pub max_connections: u32,
    /// PostgreSQL only: a schema to use (created if missing) instead of `public`. The test
    /// suite gives each test its own.
    pub pg_schema: Option<String>,
    /// How long a request waits for a pooled connection (and, on SQLite, for the write
    /// lock) before it fails with [`StoreError::Unavailable`] (503).
    pub acquire_timeout: Duration,
    /// PostgreSQL: create `pg_schema` if it is missing (false for commands that must not
    /// start a deployment).
    pub create_schema: bool,
}

impl ConnectOptions {
    pub fn new(url: impl Into<String>, max_connections: u32) -> ConnectOptions {
        ConnectOptions {
            url: url.into(),
            max_connections,
            pg_schema: None,
            acquire_timeout: Duration::from_secs(5),
            create_schema: true,
        }
    }
}

impl Store {
    pub async fn connect(opts: &ConnectOptions) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if opts.url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if opts.url.starts_with("postgres:") || opts.url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Corrupt(
                "database url must start with sqlite: or postgres:".into(),
            ));
        };
        let mut url = opts.url.clone();
        if backend == Backend::Sqlite && !url.contains('?') {
            url.push_str("?mode=rwc");
        }
        if let Some(schema) = &opts.pg_schema {
            if !schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                return Err(StoreError::Corrupt("invalid schema name".into()));
            }
        }
        if let Some(schema) = opts.pg_schema.as_ref().filter(|_| opts.create_schema) {
            let mut conn = AnyConnection::connect(&url).await?;
            let sql = format!("CREATE SCHEMA IF NOT EXISTS {schema}");
            conn.execute(sql.as_str()).await?;
            conn.close().await?;
        }
        let connect = AnyConnectOptions::from_str(&url)?;
        let schema = opts.pg_schema.clone();
        let pool = AnyPoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .acquire_timeout(opts.acquire_timeout)
            // A ping before every checkout is a round trip per query; broken connections
            // surface as errors on use instead.
            .test_before_acquire(false)
            .after_connect(move |conn, _meta| {
                let schema = schema.clone();
                Box::pin(async move {
                    match backend {
                        Backend::Sqlite => {
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            conn.execute("PRAGMA busy_timeout = 10000").await?;
                            // FULL: a commit is on disk (WAL fsynced) before it is
                            // acknowledged — an upload answered 201 survives a power loss.
                            conn.execute("PRAGMA synchronous = FULL").await?;
                            // 8 MiB of page cache per connection (SQLite's default is 2):
                            // the upper levels of the file indexes stay in memory at a
                            // million files. Filled as pages are read, so idle stays small.
                            // (No mmap: a disk error would be a SIGBUS, not an error.)
                            conn.execute("PRAGMA cache_size = -8192").await?;
                            // Checkpoints run in the background (`checkpoint`); a commit
                            // checkpoints only if that falls far behind.
                            let auto =
                                format!("PRAGMA wal_autocheckpoint = {}", checkpoint::AUTO_PAGES);
                            conn.execute(auto.as_str()).await?;
                        }
                        Backend::Postgres => {
                            if let Some(s) = schema {
                                let sql = format!("SET search_path TO {s}");
                                conn.execute(sql.as_str()).await?;
                            }
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(connect)
            .await?;
        if backend == Backend::Sqlite {
            pool.execute("PRAGMA journal_mode = WAL").await?;
        }
        let readers = match backend {
            Backend::Sqlite => sync_read::SyncReaders::for_url(&url).map(Arc::new),
            Backend::Postgres => None,
        };
        let checkpoints = Arc::new(checkpoint::Checkpoints::default());
        if let Some(r) = &readers {
            checkpoint::start(r, &checkpoints);
        }
        let sessions = Arc::new(session_cache::SessionCache::default());
        // Checked against `auth_version`: on a SQLite file by every in-place lookup, on
        // PostgreSQL once per batch of lookups ([`session_batch`]). An in-memory SQLite:
        // every lookup goes to the database, nothing is kept.
        if readers.is_some() || backend == Backend::Postgres {
            sessions.start_versioned();
        }
        Ok(Store {
            pool,
            backend,
            writer: Arc::new(writer::WriterShared::new()),
            acquire_timeout: opts.acquire_timeout,
            max_connections: opts.max_connections.max(1),
            readers,
            checkpoints,
            recorder: Arc::default(),
            sessions,
            lookups: Arc::default(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Reads answered in place by SQLite's synchronous readers so far (0 on PostgreSQL).
    pub fn in_place_reads(&self) -> u64 {
        self.readers.as_ref().map_or(0, |r| r.served())
    }

    /// Background WAL checkpoints that copied frames back so far (0 on PostgreSQL).
    pub fn wal_checkpoints(&self) -> u64 {
        self.checkpoints.done()
    }

    /// Session lookups answered from this node's memory so far ([`session_cache`]).
    pub fn session_cache_hits(&self) -> u64 {
        self.sessions.hits()
    }

    /// Whether this node serves session lookups from memory (a SQLite database file or
    /// PostgreSQL).
    pub fn session_cache_live(&self) -> bool {
        self.sessions.is_live()
    }

    pub(crate) fn session_lookups(&self) -> &session_batch::Lookups {
        &self.lookups
    }

    /// PostgreSQL: batches of session lookups checked so far (one `auth_version` read
    /// each), and the lookups they answered ([`session_batch`]; (0, 0) on SQLite).
    pub fn session_lookup_batches(&self) -> (u64, u64) {
        self.lookups.stats()
    }

    pub(crate) fn session_cache(&self) -> &session_cache::SessionCache {
        &self.sessions
    }

    /// Record batches written so far and the records in them ([`records`]).
    pub fn record_batches(&self) -> (u64, u64) {
        self.recorder.stats()
    }

    /// Write transactions committed in place on SQLite so far (0 on PostgreSQL).
    pub fn in_place_writes(&self) -> u64 {
        self.writer.in_place_commits()
    }

    /// Whether [`Store::in_place_write`] can be used: a SQLite database file.
    pub(crate) fn can_write_in_place(&self) -> bool {
        self.readers.is_some()
    }

    /// Runs `f` in a write transaction of its own on a plain SQLite connection, holding the
    /// group-commit writer (see [`writer::WriterShared::in_place`]). Only where
    /// [`Store::can_write_in_place`].
    pub(crate) async fn in_place_write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T> + Send + 'static,
    {
        let Some(readers) = self.readers.as_deref() else {
            return Err(StoreError::Unavailable(
                "no database file to write in place".into(),
            ));
        };
        if readers.is_closed() {
            return Err(StoreError::Unavailable("the store is closed".into()));
        }
        self.writer
            .in_place(readers.path(), self.acquire_timeout, f)
            .await
    }

    /// SQLite's in-place readers (none on PostgreSQL or for an in-memory database).
    pub(crate) fn sync_readers(&self) -> Option<&sync_read::SyncReaders> {
        self.readers.as_deref()
    }

    /// Applies every migration this binary knows that the database lacks, one transaction
    /// per version. Refuses a database whose schema is newer than this binary.
    pub async fn migrate(&self) -> Result<Vec<i64>> {
        // No write batch is open while the schema changes.
        let _guard = self.writer.quiesce().await;
        let mut conn = self.pool.acquire().await?;
        conn.execute(
            "CREATE TABLE IF NOT EXISTS kura_schema (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        )
        .await?;
        if self.backend == Backend::Postgres {
            // Serialise concurrent migrators (several nodes starting at once).
            conn.execute("SELECT pg_advisory_lock(7412001)").await?;
        }
        let result = self.migrate_locked(&mut conn).await;
        if self.backend == Backend::Postgres {
            conn.execute("SELECT pg_advisory_unlock(7412001)").await?;
        }
        result
    }

    async fn migrate_locked(&self, conn: &mut AnyConnection) -> Result<Vec<i64>> {
        let found: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM kura_schema")
            .fetch_one(&mut *conn)
            .await?;
        let found = found.unwrap_or(0);
        if found > schema_version() {
            return Err(StoreError::SchemaTooNew {
                found,
                known: schema_version(),
            });
        }
        let mut applied = Vec::new();
        for m in MIGRATIONS.iter().filter(|m| m.version > found) {
            let mut tx = conn.begin().await?;
            let sql = match self.backend {
                Backend::Sqlite => m.sqlite,
                Backend::Postgres => m.postgres,
            };
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO kura_schema (version, name, applied_at) VALUES ($1, $2, $3)")
                .bind(m.version)
                .bind(m.name)
                .bind(0_i64)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            tracing::info!(version = m.version, name = m.name, "applied migration");
            applied.push(m.version);
        }
        Ok(applied)
    }

    /// The schema version the database is at.
    pub async fn current_version(&self) -> Result<i64> {
        let v: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM kura_schema")
            .fetch_one(&self.pool)
            .await?;
        Ok(v.unwrap_or(0))
    }

    /// Opens a transaction on a task of its own, so that a caller dropped part-way can never
    /// leave a `BEGIN` without its `Tx` (a connection back in the pool inside a transaction,
    /// holding SQLite's write lock for good). If the caller is gone when it is done, the
    /// `Tx` is dropped there and rolls back.
    async fn begin(&self, scope: TxScope, write: bool) -> Result<Tx> {
        let store = self.clone();
        match tokio::spawn(async move { store.begin_now(scope, write).await }).await {
            Ok(r) => r,
            Err(e) => Err(StoreError::Unavailable(format!("begin task: {e}"))),
        }
    }

    async fn begin_now(&self, scope: TxScope, write: bool) -> Result<Tx> {
        let mut tx = Tx {
            conn: None,
            open: false,
            scope,
            backend: self.backend,
        };
        if write && self.backend == Backend::Sqlite {
            let g = self
                .writer
                .begin_unit(&self.pool, self.acquire_timeout)
                .await?;
            tx.conn = Some(Conn::Writer(g, self.writer.clone()));
            tx.open = true;
            return Ok(tx);
        }
        // A pooled connection may have died while idle (PostgreSQL restarted): try another
        // one rather than fail the request; nothing has happened yet, so this is safe.
        let mut tries = 0;
        loop {
            let mut conn = self.pool.acquire().await?;
            match (&mut *conn).execute("BEGIN").await {
                Ok(_) => {
                    tx.conn = Some(Conn::Pooled(conn));
                    tx.open = true;
                    break;
                }
                Err(e) if connection_lost(&e) && tries <= self.max_connections => {
                    tracing::info!(error = %e, "dropping a dead pooled connection");
                    conn.close_on_drop();
                    tries += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
        if self.backend == Backend::Postgres {
            let (tenant, system) = match &tx.scope {
                TxScope::Tenant(t) => (t.as_str().to_string(), "off"),
                TxScope::System => (String::new(), "on"),
            };
            sqlx::query(
                "SELECT set_config('role', 'kura_app', true), set_config('kura.tenant_id', $1, true), set_config('kura.system', $2, true)",
            )
            .bind(tenant)
            .bind(system)
            .execute(tx.conn())
            .await?;
        }
        Ok(tx)
    }

    /// A transaction that may read and write one tenant's rows only.
    pub async fn tenant_tx(&self, tenant: &TenantId) -> Result<Tx> {
        self.begin(TxScope::Tenant(tenant.clone()), true).await
    }

    /// A read-only-by-intent transaction for one tenant (does not queue behind SQLite's
    /// writer).
    pub async fn tenant_read(&self, tenant: &TenantId) -> Result<Tx> {
        self.begin(TxScope::Tenant(tenant.clone()), false).await
    }

    /// A transaction for operator and cross-tenant work.
    pub async fn system_tx(&self) -> Result<Tx> {
        self.begin(TxScope::System, true).await
    }

    /// A single-statement system read (the session lookup of every request). On SQLite this
    /// is a plain connection — one statement is atomic without BEGIN/ROLLBACK round trips;
    /// on PostgreSQL it is a transaction, which row-level security needs.
    pub async fn system_lookup(&self) -> Result<Tx> {
        match self.backend {
            Backend::Sqlite => Ok(Tx {
                conn: Some(Conn::Pooled(self.pool.acquire().await?)),
                open: false,
                scope: TxScope::System,
                backend: self.backend,
            }),
            Backend::Postgres => self.system_read().await,
        }
    }

    /// Runs one statement on a pooled connection outside any transaction (for statements
    /// that set up their own scope, like PostgreSQL's session lookup function). A pooled
    /// connection that died while idle is replaced, as when a transaction begins.
    pub(crate) async fn one_statement<T, F>(&self, run: F) -> Result<T>
    where
        F: for<'c> Fn(
            &'c mut AnyConnection,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = std::result::Result<T, sqlx::Error>> + Send + 'c>,
        >,
    {
        let mut tries = 0;
        loop {
            let mut conn = self.pool.acquire().await?;
            match run(&mut conn).await {
                Ok(v) => return Ok(v),
                Err(e) if connection_lost(&e) && tries <= self.max_connections => {
                    tracing::info!(error = %e, "dropping a dead pooled connection");
                    conn.close_on_drop();
                    tries += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// A read transaction for operator and cross-tenant lookups.
    pub async fn system_read(&self) -> Result<Tx> {
        self.begin(TxScope::System, false).await
    }

    /// Is the database reachable, and can a writer proceed? (for `/readyz`). A write
    /// transaction is opened (on SQLite: the write lock and `BEGIN IMMEDIATE`; on PostgreSQL:
    /// a transaction that must not be read-only) and rolled back, within `within`.
    pub async fn ping(&self, within: Duration) -> bool {
        let probe = async {
            let mut tx = self.system_tx().await?;
            let ro: String = sqlx::query_scalar(match self.backend {
                Backend::Postgres => "SELECT current_setting('transaction_read_only')",
                Backend::Sqlite => "SELECT 'off'",
            })
            .fetch_one(tx.conn())
            .await?;
            drop(tx);
            Ok::<bool, StoreError>(ro == "off")
        };
        matches!(tokio::time::timeout(within, probe).await, Ok(Ok(true)))
    }

    /// How durable a commit is, as the database reports it: SQLite's `synchronous` level
    /// (`FULL` = the WAL is fsynced at every commit), PostgreSQL's `synchronous_commit`.
    pub async fn durability(&self) -> Result<String> {
        let mut tx = self.system_read().await?;
        let v = match self.backend {
            Backend::Sqlite => {
                let n: i64 = sqlx::query_scalar("PRAGMA synchronous")
                    .fetch_one(tx.conn())
                    .await?;
                match n {
                    0 => "sqlite synchronous=OFF",
                    1 => "sqlite synchronous=NORMAL",
                    2 => "sqlite synchronous=FULL",
                    _ => "sqlite synchronous=EXTRA",
                }
                .to_string()
            }
            Backend::Postgres => {
                let v: String = sqlx::query_scalar("SELECT current_setting('synchronous_commit')")
                    .fetch_one(tx.conn())
                    .await?;
                format!("postgres synchronous_commit={v}")
            }
        };
        Ok(v)
    }

    pub async fn close(&self) {
        self.sessions.close();
        if let Some(r) = &self.readers {
            r.close();
        }
        // The writer gives its connection back first: the pool waits for every one.
        drop(self.writer.quiesce().await);
        self.pool.close().await;
    }

    /// SQLite group commit so far: (batches committed, write transactions in them).
    pub async fn write_batches(&self) -> (u64, u64) {
        self.writer.stats().await
    }
}

/// `Ok` when a statement touched a row, `NotFound` when it touched none.
pub(crate) fn found(rows_affected: u64) -> Result<()> {
    if rows_affected == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(s: &str, what: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// Labels, tags and custom attributes of a folder, project or file (DATA-2). A value, not
/// a row: it is stored as JSON columns and written into audit details, so it serializes.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Labels {
    /// Own classification level; `None` inherits from the parent.
    pub label: Option<String>,
    pub tags: Vec<String>,
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

impl Labels {
    /// Whether custom attribute `key` equals `value` (a string attribute compares as
    /// text, any other as the JSON that `value` parses to).
    pub fn attribute_is(&self, key: &str, value: &str) -> bool {
        self.attributes.get(key).is_some_and(|x| match x {
            serde_json::Value::String(s) => s == value,
            other => serde_json::from_str::<serde_json::Value>(value).is_ok_and(|p| &p == other),
        })
    }

    pub(crate) fn from_row<R: sync_read::RowGet>(r: &R) -> Result<Labels> {
        Ok(Labels {
            label: r.opt_text("", "label")?,
            tags: parse_json(&r.text("", "tags")?, "tags")?,
            attributes: parse_json(&r.text("", "attributes")?, "attributes")?,
        })
    }
    pub(crate) fn tags_json(&self) -> String {
        serde_json::Value::from(self.tags.clone()).to_string()
    }
    pub(crate) fn attributes_json(&self) -> String {
        serde_json::Value::Object(self.attributes.clone()).to_string()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn multi_row_values_have_anonymous_placeholders() {
        assert_eq!(
            crate::sqlite_values("INSERT INTO t (a, b)", 3, 2),
            "INSERT INTO t (a, b) VALUES (?,?),(?,?),(?,?)"
        );
    }
}
