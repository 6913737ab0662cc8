//! WAL checkpoints off the commit path (SQLite).
//!
//! With SQLite's default, the commit that takes the write-ahead log past 1,000 pages
//! (4 MiB) also copies the log back into the database file and syncs it — inside that
//! commit, so the write (a group-commit batch of requests, an audit batch) that happens to
//! cross the line waits for it: measured here, such a commit took 3–15 ms instead of
//! about 1. Instead, a checkpointer copies committed frames back in the background
//! (`PRAGMA wal_checkpoint(PASSIVE)`: it takes no lock a writer or reader waits for) every
//! [`EVERY`], on a connection of its own on a blocking thread, and the connections'
//! automatic checkpoint is moved out to [`AUTO_PAGES`] as a safety net for when the
//! background one cannot keep up. The checkpointer ends when the store is closed or
//! dropped.

use crate::sync_read::SyncReaders;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often the background checkpointer runs.
const EVERY: Duration = Duration::from_millis(200);

/// Every connection's automatic checkpoint threshold, in pages (64 MiB of log at 4 KiB
/// pages): reached only if the background checkpointer falls behind.
pub(crate) const AUTO_PAGES: u32 = 16_384;

/// Checkpoints that copied frames back (for the tests and diagnostics).
#[derive(Default)]
pub(crate) struct Checkpoints(AtomicU64);

impl Checkpoints {
    pub(crate) fn done(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Starts the background checkpointer of the database `readers` reads; it holds the
/// readers only weakly and ends with them.
pub(crate) fn start(readers: &Arc<SyncReaders>, count: &Arc<Checkpoints>) {
    let readers: Weak<SyncReaders> = Arc::downgrade(readers);
    let count = Arc::downgrade(count);
    tokio::spawn(async move {
        let mut conn: Option<rusqlite::Connection> = None;
        loop {
            tokio::time::sleep(EVERY).await;
            let (Some(r), Some(count)) = (readers.upgrade(), count.upgrade()) else {
                return;
            };
            if r.is_closed() {
                return;
            }
            let path = r.path().to_path_buf();
            drop(r);
            let c = conn.take();
            let done = tokio::task::spawn_blocking(move || {
                let c = match c {
                    Some(c) => c,
                    None => open(&path)?,
                };
                // (busy, frames in the log, frames copied back)
                let (_, log, copied): (i64, i64, i64) =
                    c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                        Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                    })?;
                Ok::<_, rusqlite::Error>((c, log > 0 && copied > 0))
            })
            .await;
            match done {
                Ok(Ok((c, copied))) => {
                    conn = Some(c);
                    if copied {
                        count.0.fetch_add(1, Ordering::Relaxed);
                    }
                }
                // The next round opens a new connection; the safety net still holds.
                Ok(Err(e)) => tracing::debug!(error = %e, "background WAL checkpoint failed"),
                Err(e) => tracing::debug!(error = %e, "background WAL checkpoint task failed"),
            }
        }
    });
}

fn open(path: &std::path::Path) -> rusqlite::Result<rusqlite::Connection> {
    // FULL: the log is synced before frames are copied back, and the database file after.
    crate::sync_read::open_plain(
        path,
        Duration::from_millis(100),
        &format!("PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = {AUTO_PAGES};"),
    )
}
