//! Reads of the hot path on SQLite without a thread hop.
//!
//! sqlx runs every SQLite connection on a thread of its own: a statement is a message to
//! that thread and every row a message back, and with the wake-ups on both sides that hand-
//! over cost more than SQLite's own work for a point lookup (profiled: most of the CPU of
//! an authenticated request went to it). The few statements every request runs (the
//! session lookup, and a file action's file, project, folders and version) therefore go
//! to a small set of plain SQLite connections used in place, on the calling thread: a
//! lookup by primary key in pages SQLite has cached takes a few microseconds, less than
//! the hand-over alone.
//!
//! These connections only read (`PRAGMA query_only`): WAL readers never wait for the
//! writer, and a read that would wait (a checkpoint in a rare state) gives up after a
//! short busy timeout. Any failure here is reported to the caller, which then takes the
//! ordinary path through sqlx — so an error is never decided by this module alone.

use crate::{Result, StoreError};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// Connections kept idle (more may be open at once under load; the extra ones close).
const MAX_IDLE: usize = 8;

pub(crate) struct SyncReaders {
    path: PathBuf,
    idle: Mutex<Vec<Reader>>,
    closed: AtomicBool,
    /// Reads answered here (for tests and diagnostics).
    served: AtomicU64,
}

/// One in-place connection, with the column names of the statements it has run.
pub(crate) struct Reader {
    conn: rusqlite::Connection,
    names: std::collections::HashMap<String, Vec<String>>,
}

impl Reader {
    /// Runs `sql` (a cached statement) with `params` and calls `f` with every row.
    pub(crate) fn each<P: rusqlite::Params>(
        &mut self,
        sql: &str,
        params: P,
        mut f: impl FnMut(&SqliteRow<'_>) -> Result<()>,
    ) -> Result<()> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(sync_error)?;
        if !self.names.contains_key(sql) {
            let names = stmt
                .column_names()
                .into_iter()
                .map(str::to_string)
                .collect();
            self.names.insert(sql.to_string(), names);
        }
        let names = self
            .names
            .get(sql)
            .ok_or_else(|| StoreError::Corrupt("statement columns".into()))?;
        let mut rows = stmt.query(params).map_err(sync_error)?;
        while let Some(row) = rows.next().map_err(sync_error)? {
            f(&SqliteRow {
                row,
                names,
                next: std::cell::Cell::new(0),
            })?;
        }
        Ok(())
    }

    /// The one row `sql` gives, mapped by `f`; `None` when there is none.
    pub(crate) fn one<P: rusqlite::Params, T>(
        &mut self,
        sql: &str,
        params: P,
        f: impl Fn(&SqliteRow<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        let mut out = None;
        self.each(sql, params, |r| {
            out = Some(f(r)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// Runs `f` in one read transaction: every statement sees the same snapshot.
    pub(crate) fn snapshot<T>(&mut self, f: impl FnOnce(&mut Reader) -> Result<T>) -> Result<T> {
        self.conn.execute_batch("BEGIN").map_err(sync_error)?;
        let out = f(self);
        let end = if out.is_ok() { "COMMIT" } else { "ROLLBACK" };
        self.conn.execute_batch(end).map_err(sync_error)?;
        out
    }
}

impl SyncReaders {
    /// Readers of the SQLite database file named by a `sqlite:` URL; `None` for an
    /// in-memory database (nothing another connection could open).
    pub(crate) fn for_url(url: &str) -> Option<SyncReaders> {
        let rest = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))?;
        let path = rest.split('?').next().unwrap_or(rest);
        if path.is_empty() || path.contains(":memory:") || path.starts_with("file:") {
            return None;
        }
        Some(SyncReaders {
            path: PathBuf::from(path),
            idle: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            served: AtomicU64::new(0),
        })
    }

    fn open(&self) -> rusqlite::Result<Reader> {
        // `query_only` refuses every write.
        let conn = open_plain(
            &self.path,
            std::time::Duration::from_millis(200),
            "PRAGMA query_only = ON; PRAGMA cache_size = -2048;",
        )?;
        Ok(Reader {
            conn,
            names: Default::default(),
        })
    }

    /// Runs `f` on an idle connection (opening one if none is idle) on this thread.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut Reader) -> Result<T>) -> Result<T> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Unavailable("the store is closed".into()));
        }
        let idle = self.idle.lock().ok().and_then(|mut v| v.pop());
        let mut conn = match idle {
            Some(c) => c,
            None => self.open().map_err(sync_error)?,
        };
        let out = f(&mut conn);
        if out.is_ok() {
            self.served.fetch_add(1, Ordering::Relaxed);
        }
        if out.is_ok() && !self.closed.load(Ordering::Acquire) {
            if let Ok(mut v) = self.idle.lock() {
                if v.len() < MAX_IDLE {
                    v.push(conn);
                }
            }
        }
        out
    }

    /// The database file.
    pub(crate) fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Whether the store was closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// How many reads were answered in place so far.
    pub(crate) fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// Closes the idle connections; later calls fail (and their callers take sqlx).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        if let Ok(mut v) = self.idle.lock() {
            v.clear();
        }
    }
}

/// A plain SQLite connection to the existing database file `path` (read-write without
/// create: a read-only open of a WAL database can fail to map the shared-memory index),
/// with `busy` as its busy timeout and `pragmas` run once — the one way this crate opens a
/// connection outside sqlx (in-place readers, the in-place writer, the checkpointer).
pub(crate) fn open_plain(
    path: &std::path::Path,
    busy: std::time::Duration,
    pragmas: &str,
) -> rusqlite::Result<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(busy)?;
    conn.execute_batch(pragmas)?;
    Ok(conn)
}

/// A rusqlite error as a store error (the caller falls back to sqlx, which reports its own).
pub(crate) fn sync_error(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("sqlite read: {e}"))
}

/// A result row of either driver: a sqlx row of the ordinary path, or a rusqlite row of
/// [`SyncReaders`] — so that one function maps a row to a record for both. Columns are
/// named by prefix and name (`u_` + `email` for a join's `u_email`), found without
/// building the name.
pub(crate) trait RowGet {
    /// The index of the column named `{prefix}{name}`.
    fn col(&self, prefix: &str, name: &str) -> Result<usize>;
    fn text_at(&self, i: usize) -> Result<String>;
    fn opt_text_at(&self, i: usize) -> Result<Option<String>>;
    fn int_at(&self, i: usize) -> Result<i64>;
    fn opt_int_at(&self, i: usize) -> Result<Option<i64>>;

    fn text(&self, prefix: &str, name: &str) -> Result<String> {
        self.text_at(self.col(prefix, name)?)
    }
    fn opt_text(&self, prefix: &str, name: &str) -> Result<Option<String>> {
        self.opt_text_at(self.col(prefix, name)?)
    }
    fn int(&self, prefix: &str, name: &str) -> Result<i64> {
        self.int_at(self.col(prefix, name)?)
    }
    fn opt_int(&self, prefix: &str, name: &str) -> Result<Option<i64>> {
        self.opt_int_at(self.col(prefix, name)?)
    }
}

fn is_named(col: &str, prefix: &str, name: &str) -> bool {
    col.len() == prefix.len() + name.len() && col.starts_with(prefix) && col.ends_with(name)
}

fn no_column(prefix: &str, name: &str) -> StoreError {
    StoreError::Corrupt(format!("no column {prefix}{name}"))
}

impl RowGet for sqlx::any::AnyRow {
    fn col(&self, prefix: &str, name: &str) -> Result<usize> {
        use sqlx::Column;
        sqlx::Row::columns(self)
            .iter()
            .position(|c| is_named(c.name(), prefix, name))
            .ok_or_else(|| no_column(prefix, name))
    }
    fn text_at(&self, i: usize) -> Result<String> {
        Ok(sqlx::Row::try_get(self, i)?)
    }
    fn opt_text_at(&self, i: usize) -> Result<Option<String>> {
        Ok(sqlx::Row::try_get(self, i)?)
    }
    fn int_at(&self, i: usize) -> Result<i64> {
        Ok(sqlx::Row::try_get(self, i)?)
    }
    fn opt_int_at(&self, i: usize) -> Result<Option<i64>> {
        Ok(sqlx::Row::try_get(self, i)?)
    }
}

/// A rusqlite row with its statement's column names (read once per statement: rusqlite
/// asks SQLite for a name, and measures it, at every lookup by name).
pub(crate) struct SqliteRow<'a> {
    pub(crate) row: &'a rusqlite::Row<'a>,
    pub(crate) names: &'a [String],
    /// Where the next lookup starts: mappings read columns mostly in the order they are
    /// selected, so the search usually ends at its first comparison.
    next: std::cell::Cell<usize>,
}

impl RowGet for SqliteRow<'_> {
    fn col(&self, prefix: &str, name: &str) -> Result<usize> {
        let n = self.names.len();
        let start = self.next.get();
        let i = (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| is_named(&self.names[i], prefix, name))
            .ok_or_else(|| no_column(prefix, name))?;
        self.next.set(i + 1);
        Ok(i)
    }
    fn text_at(&self, i: usize) -> Result<String> {
        self.row.get(i).map_err(sync_error)
    }
    fn opt_text_at(&self, i: usize) -> Result<Option<String>> {
        self.row.get(i).map_err(sync_error)
    }
    fn int_at(&self, i: usize) -> Result<i64> {
        self.row.get(i).map_err(sync_error)
    }
    fn opt_int_at(&self, i: usize) -> Result<Option<i64>> {
        self.row.get(i).map_err(sync_error)
    }
}

#[cfg(test)]
mod tests {
    use super::SyncReaders;

    #[test]
    fn file_urls_get_readers_and_memory_databases_do_not() {
        let r = SyncReaders::for_url("sqlite:///var/lib/kura/kura.db?mode=rwc");
        assert_eq!(
            r.map(|r| r.path),
            Some(std::path::PathBuf::from("/var/lib/kura/kura.db"))
        );
        assert!(SyncReaders::for_url("sqlite::memory:").is_none());
        assert!(SyncReaders::for_url("sqlite://").is_none());
        assert!(SyncReaders::for_url("postgres://x@y/z").is_none());
    }

    #[test]
    fn columns_are_found_by_prefix_and_name() {
        use super::{Reader, RowGet};
        let mut reader = Reader {
            conn: rusqlite::Connection::open_in_memory().unwrap(),
            names: Default::default(),
        };
        let sql = "SELECT 'a' AS id, 'b' AS u_id, NULL AS u_ip, 7 AS created_at";
        for _ in 0..2 {
            let mut seen = 0;
            reader
                .each(sql, [], |r| {
                    assert_eq!(r.text("", "id")?, "a");
                    assert_eq!(r.text("u_", "id")?, "b");
                    assert_eq!(r.opt_text("u_", "ip")?, None);
                    assert_eq!(r.int("", "created_at")?, 7);
                    assert!(r.text("x_", "id").is_err(), "no such column");
                    seen += 1;
                    Ok(())
                })
                .unwrap();
            assert_eq!(seen, 1);
        }
    }
}
