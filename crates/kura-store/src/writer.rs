//! Group commit for SQLite's one writer.
//!
//! SQLite has one writer at a time, and with `synchronous=FULL` every `COMMIT` is an
//! `fsync` of the WAL — the cost that used to bound every write path (a download's audit
//! entry and usage counter included) to one sync per request. Here write transactions are
//! *units* inside a shared batch on one writer connection:
//!
//! - a unit starts with `SAVEPOINT kura_unit` inside the batch's `BEGIN IMMEDIATE` (opened by
//!   the first unit), so a unit that fails or is dropped rolls back only itself
//!   (`ROLLBACK TO`);
//! - a unit that commits releases its savepoint; if nobody is queued for the writer (or the
//!   batch is full or old), it commits the batch — one sync for every unit in it — and
//!   answers all of them; otherwise it hands the writer to the next unit and waits for the
//!   batch's outcome;
//! - every caller is answered only after the `COMMIT` of its batch returned: an
//!   acknowledged write is durable. If the batch's `COMMIT` fails, every unit in it fails.
//!
//! Liveness does not depend on the next unit: a unit waiting for its batch commits the
//! batch itself after [`FLUSH_AFTER`] if nobody did, and a batch with no units in it is
//! never left open (it would hold SQLite's write lock against other processes).

use crate::{Result, StoreError};
use kura_domain::clock::Stopwatch;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Executor};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, Mutex, OwnedMutexGuard};

/// Units per batch at most.
const MAX_UNITS: usize = 512;
/// A batch older than this commits at the next unit's end even under continuous load.
const MAX_AGE: Duration = Duration::from_millis(10);
/// A unit waiting for its batch commits it itself after this long.
const FLUSH_AFTER: Duration = Duration::from_millis(4);

type Outcome = Result<()>;

/// One caller's work in an in-place batch: run in the batch's transaction (`None` when the
/// transaction could not be begun), it returns what answers the caller once the batch's
/// `COMMIT` has succeeded or failed, and whether the transaction is still clean (false if
/// the unit failed and its savepoint could not be rolled back: then nothing may commit).
type InPlaceUnit =
    Box<dyn FnOnce(Option<&rusqlite::Transaction<'_>>) -> (InPlaceAnswer, bool) + Send + 'static>;
/// Given the batch's outcome, answers one caller.
type InPlaceAnswer = Box<dyn FnOnce(Outcome) + Send + 'static>;

/// `f` as a unit of an in-place batch: in a savepoint of its own, rolled back alone if it
/// fails; its value is sent only if the batch commits.
fn in_place_unit<T, F>(f: F, answer: oneshot::Sender<Result<T>>) -> InPlaceUnit
where
    T: Send + 'static,
    F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T> + Send + 'static,
{
    Box::new(move |tx: Option<&rusqlite::Transaction<'_>>| {
        // None: the unit did not run (the batch never began; its outcome says why).
        let (out, clean) = match tx.map(|tx| in_savepoint(tx, f)) {
            Some((out, clean)) => (Some(out), clean),
            None => (None, true),
        };
        let answer: InPlaceAnswer = Box::new(move |batch: Outcome| {
            let _ = answer.send(match (out, batch) {
                (Some(Err(e)), _) => Err(e),
                (_, Err(e)) => Err(e),
                (Some(Ok(v)), Ok(())) => Ok(v),
                (None, Ok(())) => Err(StoreError::Unavailable(
                    "the in-place write batch did not run this write".into(),
                )),
            });
        });
        (answer, clean)
    })
}

/// Answers every unit of a batch that never ran (no connection, no transaction) with why.
fn answer_unrun(units: Vec<(u64, InPlaceUnit)>, e: &StoreError) {
    for (_, unit) in units {
        unit(None).0(Err(shared_error(e)));
    }
}

/// One transaction on `conn` for `units`, each in its savepoint, answered after the
/// `COMMIT` (or with why the transaction did not begin or commit). Whether it committed.
fn run_units(conn: &mut rusqlite::Connection, units: Vec<(u64, InPlaceUnit)>) -> bool {
    let tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            // Not begun (another process holds the lock past the busy timeout, a full
            // disk): every unit hears why, none ran.
            answer_unrun(units, &write_error(e));
            return false;
        }
    };
    let mut clean = true;
    let mut answers: Vec<InPlaceAnswer> = Vec::with_capacity(units.len());
    for (_, unit) in units {
        let (answer, c) = unit(Some(&tx));
        clean &= c;
        answers.push(answer);
    }
    let outcome = if clean {
        tx.commit().map_err(write_error)
    } else {
        // A failed unit's writes could not be undone alone: the whole batch is dropped
        // (the transaction rolls back) rather than committed with them.
        drop(tx);
        Err(StoreError::Unavailable(
            "a failed write could not be rolled back alone; its batch was rolled back".into(),
        ))
    };
    match outcome {
        Ok(()) => {
            answers.into_iter().for_each(|a| a(Ok(())));
            true
        }
        Err(e) => {
            answers.into_iter().for_each(|a| a(Err(shared_error(&e))));
            false
        }
    }
}

/// Runs `f` inside `SAVEPOINT kura_in_place`: released if it succeeds, rolled back to (and
/// released) if it fails, so the rest of the batch is as if it never ran. The flag is false
/// when a failed unit's savepoint could not be rolled back (the batch must then not commit).
fn in_savepoint<T>(
    tx: &rusqlite::Transaction<'_>,
    f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>,
) -> (Result<T>, bool) {
    if let Err(e) = tx.execute_batch("SAVEPOINT kura_in_place") {
        // Nothing of this unit ran.
        return (Err(write_error(e)), true);
    }
    let out = f(tx).and_then(|v| {
        tx.execute_batch("RELEASE kura_in_place")
            .map_err(write_error)?;
        Ok(v)
    });
    match out {
        Ok(v) => (Ok(v), true),
        Err(e) => {
            let undone = tx
                .execute_batch("ROLLBACK TO kura_in_place; RELEASE kura_in_place")
                .is_ok();
            (Err(e), undone)
        }
    }
}

/// The same error for every unit of a batch (a full disk stays a full disk: 507, not 503).
pub(crate) fn shared_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::StorageFull => StoreError::StorageFull,
        StoreError::Serialization => StoreError::Serialization,
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        other => StoreError::Unavailable(format!("write batch failed: {other}")),
    }
}

/// The writer connection and its open batch.
pub(crate) struct Writer {
    conn: Option<PoolConnection<Any>>,
    /// The plain SQLite connection of [`WriterShared::in_place`] (opened on first use,
    /// closed by [`WriterShared::quiesce`]).
    in_place: Option<rusqlite::Connection>,
    /// A `BEGIN IMMEDIATE` is open on `conn`.
    batch_open: bool,
    started: Option<Stopwatch>,
    /// Units released into the open batch.
    units: usize,
    /// Their callers, waiting for the batch's `COMMIT`.
    waiting: Vec<oneshot::Sender<Outcome>>,
    /// Batches committed (and units in them), for the metrics and the tests.
    batches: u64,
    batched_units: u64,
}

/// Shared by every clone of a SQLite `Store`.
pub(crate) struct WriterShared {
    state: Arc<Mutex<Writer>>,
    /// Callers waiting for the writer right now.
    queued: AtomicUsize,
    /// Transactions committed by [`WriterShared::in_place`] (for the tests).
    in_place_commits: std::sync::atomic::AtomicU64,
    /// Units waiting for the next in-place batch, with their ids.
    in_place_queue: std::sync::Mutex<Vec<(u64, InPlaceUnit)>>,
    in_place_ids: std::sync::atomic::AtomicU64,
}

/// Counts a caller as queued for the writer until it has it (or gives up).
struct Queued<'a>(&'a AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The writer, held by one unit.
pub(crate) type WriterGuard = OwnedMutexGuard<Writer>;

impl WriterShared {
    pub(crate) fn new() -> Self {
        WriterShared {
            state: Arc::new(Mutex::new(Writer {
                conn: None,
                in_place: None,
                batch_open: false,
                started: None,
                units: 0,
                waiting: Vec::new(),
                batches: 0,
                batched_units: 0,
            })),
            queued: AtomicUsize::new(0),
            in_place_commits: std::sync::atomic::AtomicU64::new(0),
            in_place_queue: std::sync::Mutex::new(Vec::new()),
            in_place_ids: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The writer, waited for at most `timeout`; counted as queued meanwhile (a unit that
    /// commits then hands the writer on rather than committing its batch alone).
    async fn acquire(&self, timeout: Duration) -> Result<WriterGuard> {
        self.queued.fetch_add(1, Ordering::SeqCst);
        let _queued = Queued(&self.queued);
        tokio::time::timeout(timeout, self.state.clone().lock_owned())
            .await
            .map_err(|_| {
                StoreError::Unavailable("timed out waiting for the database's write lock".into())
            })
    }

    /// Waits (at most `timeout`) for the writer, then opens a unit: the batch's
    /// `BEGIN IMMEDIATE` if none is open, and the unit's savepoint.
    pub(crate) async fn begin_unit(
        &self,
        pool: &AnyPool,
        timeout: Duration,
    ) -> Result<WriterGuard> {
        let mut g = self.acquire(timeout).await?;
        if g.conn.is_none() {
            g.conn = Some(pool.acquire().await?);
        }
        if !g.batch_open {
            // IMMEDIATE: a deferred transaction that reads, then writes, would fail with
            // SQLITE_BUSY instead of waiting when another process holds the write lock.
            if let Err(e) = g.conn().execute("BEGIN IMMEDIATE").await {
                let e = StoreError::from(e);
                g.fail_batch(&e).await;
                return Err(e);
            }
            g.batch_open = true;
            g.started = Some(Stopwatch::start());
        }
        if let Err(e) = g.conn().execute("SAVEPOINT kura_unit").await {
            let e = StoreError::from(e);
            g.fail_batch(&e).await;
            return Err(e);
        }
        Ok(g)
    }

    /// Ends a unit that committed: releases its savepoint, then commits the batch or hands
    /// the writer on and waits for the batch's outcome.
    pub(crate) async fn commit_unit(&self, mut g: WriterGuard) -> Result<()> {
        if let Err(e) = g.conn().execute("RELEASE SAVEPOINT kura_unit").await {
            g.rollback_unit().await;
            end_if_idle(&mut g).await;
            return Err(e.into());
        }
        g.units += 1;
        let full = g.units >= MAX_UNITS || g.started.is_some_and(|s| s.elapsed() >= MAX_AGE);
        if full || self.queued.load(Ordering::SeqCst) == 0 {
            return g.flush().await;
        }
        let (tx, mut rx) = oneshot::channel();
        g.waiting.push(tx);
        drop(g);
        loop {
            match tokio::time::timeout(FLUSH_AFTER, &mut rx).await {
                Ok(Ok(r)) => return r,
                Ok(Err(_)) => {
                    return Err(StoreError::Unavailable(
                        "the write batch ended without an outcome".into(),
                    ))
                }
                Err(_) => {
                    // Nobody committed the batch yet: do it (it may have been done while
                    // this waited for the writer; then the answer is already there).
                    let mut g = self.state.clone().lock_owned().await;
                    if g.batch_open && !g.waiting.is_empty() {
                        let _ = g.flush().await;
                    }
                }
            }
        }
    }

    /// Ends a unit that was dropped without committing: rolls back only its own work.
    pub(crate) async fn abandon_unit(mut g: WriterGuard) {
        g.rollback_unit().await;
        end_if_idle(&mut g).await;
    }

    /// Commits any open batch and gives the writer connection back to the pool (before the
    /// pool closes, or before migrations run on another connection).
    pub(crate) async fn quiesce(&self) -> WriterGuard {
        let mut g = self.state.clone().lock_owned().await;
        if g.batch_open {
            let _ = g.flush().await;
        }
        g.end_batch();
        g.in_place = None;
        g
    }

    /// Runs `f` in a write transaction on a plain SQLite connection to the database file
    /// `path`, on a blocking thread, while holding the writer: no sqlx batch is open
    /// meanwhile (one open is committed first), so the two never contend for SQLite's write
    /// lock inside this process. Bulk writes that would otherwise be a message to sqlx's
    /// connection thread per statement and a copy of every bound value (access-log batches,
    /// audit batches, download records) take this path.
    ///
    /// Group commit: callers that arrive while another one holds the writer queue their
    /// work, and the next holder runs everything queued in one transaction, each unit in a
    /// savepoint of its own (a unit that fails is rolled back alone and gets its error) —
    /// one `COMMIT`, one sync (`synchronous=FULL`) for all of them. Every caller is answered
    /// after that `COMMIT` returned; if it fails, every unit fails with its error and
    /// nothing of the batch stays.
    pub(crate) async fn in_place<T, F>(
        &self,
        path: &std::path::Path,
        timeout: Duration,
        f: F,
    ) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let id = self.in_place_ids.fetch_add(1, Ordering::Relaxed);
        self.lock_queue().push((id, in_place_unit(f, answer)));
        match self.acquire(timeout).await {
            Ok(mut g) => {
                let units = std::mem::take(&mut *self.lock_queue());
                // Empty when an earlier holder took this caller's unit into its batch.
                if !units.is_empty() {
                    if g.batch_open {
                        // Its units are answered by this commit, as by any flush.
                        let _ = g.flush().await;
                    }
                    self.run_in_place(&mut g, path, units).await;
                }
            }
            Err(e) => {
                // Not run unless an earlier holder already took it: then its answer comes.
                let mut queue = self.lock_queue();
                if let Some(i) = queue.iter().position(|(u, _)| *u == id) {
                    drop(queue.remove(i));
                    return Err(e);
                }
            }
        }
        answered.await.map_err(|_| {
            StoreError::Unavailable("the in-place write batch ended without an answer".into())
        })?
    }

    /// The queue of in-place units; a poisoned lock (a panic while pushing) still holds a
    /// usable queue.
    fn lock_queue(&self) -> std::sync::MutexGuard<'_, Vec<(u64, InPlaceUnit)>> {
        self.in_place_queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One transaction for `units` (see [`WriterShared::in_place`]), answered after its
    /// `COMMIT`.
    async fn run_in_place(
        &self,
        g: &mut WriterGuard,
        path: &std::path::Path,
        units: Vec<(u64, InPlaceUnit)>,
    ) {
        let path = path.to_path_buf();
        let conn = g.in_place.take();
        let ran = tokio::task::spawn_blocking(move || {
            let mut conn = match conn {
                Some(c) => c,
                None => match open_writer(&path) {
                    Ok(c) => c,
                    Err(e) => {
                        answer_unrun(units, &write_error(e));
                        return None;
                    }
                },
            };
            let committed = run_units(&mut conn, units);
            // A connection whose transaction could not be ended is not reused.
            Some((conn.is_autocommit().then_some(conn), committed))
        })
        .await;
        // A unit that panicked dropped every answer: its callers see the batch end unanswered.
        if let Ok(Some((conn, committed))) = ran {
            g.in_place = conn;
            if committed {
                self.in_place_commits.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Transactions committed in place so far.
    pub(crate) fn in_place_commits(&self) -> u64 {
        self.in_place_commits.load(Ordering::Relaxed)
    }

    /// (batches committed, units in them)
    pub(crate) async fn stats(&self) -> (u64, u64) {
        let g = self.state.lock().await;
        (g.batches, g.batched_units)
    }
}

/// A plain connection for [`WriterShared::in_place`], set up as sqlx's connections are.
fn open_writer(path: &std::path::Path) -> rusqlite::Result<rusqlite::Connection> {
    crate::sync_read::open_plain(path, Duration::from_secs(10), &writer_pragmas())
}

/// The pragmas of the in-place writer connection.
fn writer_pragmas() -> String {
    format!(
        "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA cache_size = -2048; \
         PRAGMA wal_autocheckpoint = {};",
        crate::checkpoint::AUTO_PAGES
    )
}

/// Gives `conn` the in-place writer's settings (for `kura bench`'s SQLite ceiling).
pub(crate) fn configure_writer(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.execute_batch(&writer_pragmas())
}

/// Binds a run of rows into one multi-row `INSERT` (`insert` + [`crate::sqlite_values`] of
/// `cols` anonymous placeholders each), `per_statement` rows at a time, values bound
/// straight into the prepared (and cached) statement by `row`.
pub(crate) fn insert_values<T>(
    tx: &rusqlite::Transaction<'_>,
    insert: &str,
    cols: usize,
    per_statement: usize,
    rows: &[T],
    row: impl Fn(&mut Binder<'_, '_>, &T) -> Result<()>,
) -> Result<()> {
    for chunk in rows.chunks(per_statement.max(1)) {
        let sql = crate::sqlite_values(insert, chunk.len(), cols);
        let mut stmt = tx.prepare_cached(&sql).map_err(write_error)?;
        let mut b = Binder {
            stmt: &mut stmt,
            at: 0,
        };
        for r in chunk {
            row(&mut b, r)?;
        }
        stmt.raw_execute().map_err(write_error)?;
    }
    Ok(())
}

/// Binds the next placeholder of a statement of [`insert_values`].
pub(crate) struct Binder<'s, 'c> {
    stmt: &'s mut rusqlite::CachedStatement<'c>,
    at: usize,
}

impl Binder<'_, '_> {
    pub(crate) fn bind(&mut self, v: &dyn rusqlite::ToSql) -> Result<()> {
        self.at += 1;
        self.stmt
            .raw_bind_parameter(self.at, v)
            .map_err(write_error)
    }
}

/// A rusqlite error of a write as a store error: a full disk stays a full disk (507), a
/// lock not had within the busy timeout is "unavailable" (503), as through sqlx.
pub(crate) fn write_error(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => StoreError::StorageFull,
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => {
            StoreError::Unavailable(format!("database busy: {e}"))
        }
        _ => StoreError::Sqlite(e.to_string()),
    }
}

/// A batch with no unit in it is not left open: it would hold SQLite's write lock.
async fn end_if_idle(g: &mut WriterGuard) {
    if !g.batch_open {
        return;
    }
    // Units waiting for the batch commit it themselves if no other unit comes.
    if g.waiting.is_empty() {
        if g.units == 0 {
            g.rollback_batch().await;
        } else {
            // Committed units nobody waits for (a committed unit either flushed or
            // waits): commit rather than hold the lock.
            let _ = g.flush().await;
        }
    }
}

impl Writer {
    pub(crate) fn conn(&mut self) -> &mut AnyConnection {
        #[allow(clippy::expect_used)]
        // Invariant: a unit exists only after `begin_unit` set the connection, and only
        // `end_batch` (when no unit holds the writer) clears it.
        self.conn.as_mut().expect("the writer holds its connection")
    }

    /// No batch is open: the connection goes back to the pool (a store with one
    /// connection needs it for reads).
    fn end_batch(&mut self) {
        self.batch_open = false;
        self.started = None;
        self.units = 0;
        self.conn = None;
    }

    /// Rolls the batch back and ends it; a connection whose rollback fails is closed,
    /// never reused (its transaction state is unknown).
    async fn rollback_batch(&mut self) {
        if let Some(c) = self.conn.as_mut() {
            if c.execute("ROLLBACK").await.is_err() {
                c.close_on_drop();
            }
        }
        self.end_batch();
    }

    /// Answers every unit waiting for the batch.
    fn answer(&mut self, outcome: &Outcome) {
        for w in self.waiting.drain(..) {
            let _ = w.send(match outcome {
                Ok(()) => Ok(()),
                Err(e) => Err(shared_error(e)),
            });
        }
    }

    /// Without a runtime to roll back on (a `Tx` dropped outside one): the connection is
    /// closed, never reused, and every unit of the batch fails.
    pub(crate) fn poison(&mut self) {
        if let Some(c) = self.conn.as_mut() {
            c.close_on_drop();
        }
        self.end_batch();
        self.answer(&Err(StoreError::Unavailable(
            "write batch abandoned".into(),
        )));
    }

    async fn rollback_unit(&mut self) {
        if self.conn.is_none() || !self.batch_open {
            return;
        }
        let undone = self
            .conn()
            .execute("ROLLBACK TO SAVEPOINT kura_unit")
            .await
            .is_ok()
            && self
                .conn()
                .execute("RELEASE SAVEPOINT kura_unit")
                .await
                .is_ok();
        if !undone {
            // SQLite rolled the whole transaction back (I/O error, full disk) or the
            // connection broke: the batch is lost, and every unit in it fails.
            self.fail_batch(&StoreError::Unavailable(
                "the write batch was rolled back".into(),
            ))
            .await;
        }
    }

    /// Rolls the whole batch back and fails every unit in it.
    async fn fail_batch(&mut self, why: &StoreError) {
        self.rollback_batch().await;
        self.answer(&Err(shared_error(why)));
    }

    /// Commits the batch (one sync) and answers every unit in it.
    async fn flush(&mut self) -> Outcome {
        let outcome = match self.conn().execute("COMMIT").await {
            Ok(_) => {
                self.batches += 1;
                self.batched_units += self.units as u64;
                self.end_batch();
                Ok(())
            }
            // A COMMIT that failed may leave the transaction open: end it.
            Err(e) => {
                self.rollback_batch().await;
                Err(StoreError::from(e))
            }
        };
        self.answer(&outcome);
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh WAL database file with `t(k TEXT PRIMARY KEY)` holding `dup`.
    fn database(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("kura-writer-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.db");
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE t (k TEXT PRIMARY KEY); INSERT INTO t VALUES ('dup');",
        )
        .unwrap();
        path
    }

    fn keys(path: &std::path::Path) -> Vec<String> {
        let c = rusqlite::Connection::open(path).unwrap();
        let mut st = c.prepare("SELECT k FROM t ORDER BY k").unwrap();
        let rows = st.query_map([], |r| r.get(0)).unwrap();
        rows.map(|r| r.unwrap()).collect()
    }

    /// A unit that holds the writer for 200 ms (inserting `key`, if any), started 50 ms before
    /// this returns: units started meanwhile queue behind it and form the next batch.
    async fn hold_writer(
        w: &Arc<WriterShared>,
        path: &std::path::Path,
        key: Option<&'static str>,
    ) -> tokio::task::JoinHandle<Result<()>> {
        let (w, path) = (w.clone(), path.to_path_buf());
        let first = tokio::spawn(async move {
            w.in_place(&path, Duration::from_secs(10), move |tx| {
                std::thread::sleep(Duration::from_millis(200));
                if let Some(k) = key {
                    tx.execute("INSERT INTO t VALUES (?1)", [k])
                        .map_err(write_error)?;
                }
                Ok(())
            })
            .await
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        first
    }

    /// Concurrent in-place writes share commits; a unit that fails is rolled back alone
    /// (its own earlier insert too) and gets its error; every other one is on disk when
    /// its caller is answered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn in_place_units_commit_together_and_fail_alone() {
        let path = database("batch");
        let w = Arc::new(WriterShared::new());
        let timeout = Duration::from_secs(10);
        // The first unit holds the writer a while, so the others queue behind it.
        let first = hold_writer(&w, &path, Some("a-first")).await;
        let mut tasks = Vec::new();
        for i in 0..64 {
            let (w, path) = (w.clone(), path.clone());
            tasks.push(tokio::spawn(async move {
                let out = w
                    .in_place(&path, timeout, move |tx| {
                        tx.execute("INSERT INTO t VALUES (?1)", [format!("k{i:02}")])
                            .map_err(write_error)?;
                        if i % 8 == 0 {
                            tx.execute("INSERT INTO t VALUES ('dup')", [])
                                .map_err(write_error)?;
                        }
                        Ok(i)
                    })
                    .await;
                if let Ok(v) = out {
                    assert_eq!(v, i);
                    // Acknowledged: on disk for any other connection now.
                    assert!(
                        keys(&path).contains(&format!("k{i:02}")),
                        "k{i:02} not visible"
                    );
                }
                (i, out.is_ok())
            }));
        }
        first.await.unwrap().unwrap();
        for t in tasks {
            let (i, ok) = t.await.unwrap();
            assert_eq!(ok, i % 8 != 0, "unit {i}");
        }
        let mut want: Vec<String> = vec!["a-first".into(), "dup".into()];
        want.extend((0..64).filter(|i| i % 8 != 0).map(|i| format!("k{i:02}")));
        want.sort();
        assert_eq!(keys(&path), want);
        let commits = w.in_place_commits();
        assert!(commits < 10, "65 units in {commits} commits: not batched");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    /// A failed unit that cannot be rolled back alone (it released its own savepoint, so
    /// `ROLLBACK TO` finds none) takes its whole batch down instead of committing its
    /// partial writes: every caller in that batch hears an error, nothing of it is on disk,
    /// and the writer works for the next caller.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_unit_that_cannot_be_undone_rolls_its_batch_back() {
        let path = database("undone");
        let w = Arc::new(WriterShared::new());
        let timeout = Duration::from_secs(10);
        let first = hold_writer(&w, &path, None).await;
        let mut tasks = Vec::new();
        for i in 0..8 {
            let (w, path) = (w.clone(), path.clone());
            tasks.push(tokio::spawn(async move {
                w.in_place(&path, timeout, move |tx| {
                    tx.execute("INSERT INTO t VALUES (?1)", [format!("k{i}")])
                        .map_err(write_error)?;
                    if i == 3 {
                        tx.execute_batch("RELEASE kura_in_place")
                            .map_err(write_error)?;
                        return Err(StoreError::Corrupt("unit 3 fails after its release".into()));
                    }
                    Ok(())
                })
                .await
                .is_ok()
            }));
        }
        first.await.unwrap().unwrap();
        for t in tasks {
            assert!(
                !t.await.unwrap(),
                "a unit of the rolled-back batch was acknowledged"
            );
        }
        assert_eq!(keys(&path), vec!["dup".to_string()]);
        w.in_place(&path, timeout, |tx| {
            tx.execute("INSERT INTO t VALUES ('after')", [])
                .map_err(write_error)?;
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(keys(&path), vec!["after".to_string(), "dup".to_string()]);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    /// A caller that gives up waiting for the writer takes its unit back: it never runs
    /// later behind the caller's back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_in_place_unit_that_timed_out_never_runs() {
        let path = database("timeout");
        let w = Arc::new(WriterShared::new());
        let held = w.acquire(Duration::from_secs(1)).await.unwrap();
        let out = w
            .in_place(&path, Duration::from_millis(50), |tx| {
                tx.execute("INSERT INTO t VALUES ('late')", [])
                    .map_err(write_error)?;
                Ok(())
            })
            .await;
        assert!(matches!(out, Err(StoreError::Unavailable(_))), "{out:?}");
        drop(held);
        w.in_place(&path, Duration::from_secs(5), |tx| {
            tx.execute("INSERT INTO t VALUES ('next')", [])
                .map_err(write_error)?;
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(keys(&path), vec!["dup".to_string(), "next".to_string()]);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}
