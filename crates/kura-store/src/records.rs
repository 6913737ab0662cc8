//! What a read leaves behind, committed together: group commit for bookkeeping.
//!
//! A download is a read, but its audit entry and the tenant's usage counter must be durable
//! before its last byte goes out (a crash must not leave a served download unaudited). As
//! a write transaction of its own per download, that bookkeeping was the cost of every
//! small download: a savepoint and four statements, each a message to the database's
//! connection thread, behind the one writer. Here concurrent records are queued and
//! written by one flusher, many at a time:
//!
//! - [`record`] queues a record and waits for its outcome; the first caller that finds no
//!   flusher running starts one (a task of its own, so a caller that goes away — a client
//!   that disconnects — does not take its record with it);
//! - the flusher takes everything queued (at most [`MAX_BATCH`]), groups it by tenant
//!   (each group: the usage deltas summed, the events appended to the tenant's chain in
//!   arrival order) and writes every group in one transaction — on a SQLite file in place
//!   on the writer ([`crate::Store::in_place_write`]), each group under a savepoint of its
//!   own so that a failing group rolls back only itself; elsewhere (PostgreSQL) one
//!   transaction per tenant, the tenants' transactions concurrently;
//! - every caller is answered only after the `COMMIT` that holds its record returned
//!   (`synchronous=FULL` on SQLite): an acknowledged record is durable. If that commit
//!   fails, every record in it fails with the same error;
//! - while a batch is being written the next one gathers, so under load a batch holds
//!   about as many records as arrived during one commit.

use crate::audit::NewEvent;
use crate::usage::Delta;
use crate::{Result, Store, StoreError};
use kura_domain::TenantId;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use tokio::sync::oneshot;

/// Records written by one flush at most.
pub const MAX_BATCH: usize = 1024;

/// What one finished read leaves behind for one tenant.
#[derive(Debug)]
pub struct Record {
    pub tenant: TenantId,
    /// Added to the tenant's usage figures (zero: none).
    pub usage: Delta,
    /// Appended to the tenant's audit chain, in this order.
    pub events: Vec<NewEvent>,
}

struct Item {
    record: Record,
    done: oneshot::Sender<Result<()>>,
}

#[derive(Default)]
struct Queue {
    pending: Vec<Item>,
    /// A flusher is running (it takes whatever is pending until nothing is).
    flushing: bool,
}

/// The queue of a store (shared by its clones).
#[derive(Default)]
pub(crate) struct Recorder {
    queue: Mutex<Queue>,
    batches: AtomicU64,
    records: AtomicU64,
}

impl Recorder {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        // A poisoned lock only means a flusher failed while holding it; the queue itself
        // is always left consistent (a push, or a drain).
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// (batches written, records in them)
    pub(crate) fn stats(&self) -> (u64, u64) {
        (
            self.batches.load(Ordering::Relaxed),
            self.records.load(Ordering::Relaxed),
        )
    }
}

/// Ends a flusher's turn if it is unwound or cancelled before it found the queue empty:
/// the next record starts a new one.
struct Turn<'a> {
    recorder: &'a Recorder,
    armed: bool,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.recorder.queue().flushing = false;
        }
    }
}

/// Writes `record` with whatever else is queued and returns once the transaction that
/// holds it is committed (durable), or with the error that kept it out.
pub async fn record(store: &Store, record: Record) -> Result<()> {
    let (done, outcome) = oneshot::channel();
    let lead = {
        let mut q = store.recorder.queue();
        q.pending.push(Item { record, done });
        !std::mem::replace(&mut q.flushing, true)
    };
    if lead {
        let store = store.clone();
        tokio::spawn(async move { flush_all(&store).await });
    }
    outcome
        .await
        .map_err(|_| StoreError::Unavailable("the record's batch was not written".into()))?
}

/// Flushes batches until nothing is queued.
async fn flush_all(store: &Store) {
    let r = &*store.recorder;
    let mut turn = Turn {
        recorder: r,
        armed: true,
    };
    loop {
        let batch: Vec<Item> = {
            let mut q = r.queue();
            if q.pending.is_empty() {
                // Under the lock: a record queued after this starts a flusher of its own.
                q.flushing = false;
                turn.armed = false;
                return;
            }
            let n = q.pending.len().min(MAX_BATCH);
            q.pending.drain(..n).collect()
        };
        r.batches.fetch_add(1, Ordering::Relaxed);
        r.records.fetch_add(batch.len() as u64, Ordering::Relaxed);
        flush(store, batch).await;
    }
}

/// One tenant's part of a batch.
struct Group {
    tenant: TenantId,
    usage: Delta,
    events: Vec<NewEvent>,
}

/// Writes one batch and answers every caller in it.
async fn flush(store: &Store, batch: Vec<Item>) {
    // Grouped by tenant in order of first arrival; each tenant's events in arrival order.
    let mut groups: Vec<Group> = Vec::new();
    let mut callers: Vec<Vec<oneshot::Sender<Result<()>>>> = Vec::new();
    for Item { record, done } in batch {
        let i = match groups.iter().position(|g| g.tenant == record.tenant) {
            Some(i) => i,
            None => {
                groups.push(Group {
                    tenant: record.tenant,
                    usage: Delta::default(),
                    events: Vec::new(),
                });
                callers.push(Vec::new());
                groups.len() - 1
            }
        };
        let g = &mut groups[i];
        g.usage += record.usage;
        g.events.extend(record.events);
        callers[i].push(done);
    }
    let outcomes: Vec<Result<()>> = if store.can_write_in_place() {
        let n = groups.len();
        match store
            .in_place_write(move |tx| write_in_place(tx, groups))
            .await
        {
            Ok(each) => each,
            Err(e) => (0..n)
                .map(|_| Err(crate::writer::shared_error(&e)))
                .collect(),
        }
    } else {
        futures_util::future::join_all(groups.into_iter().map(|g| write_tx(store, g))).await
    };
    for (outcome, group) in outcomes.into_iter().zip(callers) {
        for done in group {
            // A caller that went away no longer waits; its record is written all the same.
            let _ = done.send(match &outcome {
                Ok(()) => Ok(()),
                Err(e) => Err(crate::writer::shared_error(e)),
            });
        }
    }
}

/// Every group in the one transaction of `tx`, each under a savepoint of its own; the
/// outcome of each (an error of a group rolled back only that group).
fn write_in_place(tx: &rusqlite::Transaction<'_>, groups: Vec<Group>) -> Result<Vec<Result<()>>> {
    use crate::writer::write_error;
    let mut out = Vec::with_capacity(groups.len());
    for g in groups {
        tx.execute_batch("SAVEPOINT kura_record")
            .map_err(write_error)?;
        let r = (|| {
            if !g.usage.is_zero() {
                crate::usage::add_in_place(tx, &g.tenant, &g.usage)?;
            }
            crate::audit::append_in_place(tx, &g.tenant, g.events)?;
            Ok(())
        })();
        match &r {
            Ok(()) => tx.execute_batch("RELEASE kura_record"),
            Err(e) => {
                tracing::error!(tenant = %g.tenant.as_str(), error = %e, "records of a tenant were not written");
                tx.execute_batch("ROLLBACK TO kura_record; RELEASE kura_record")
            }
        }
        .map_err(write_error)?;
        out.push(r);
    }
    Ok(out)
}

/// One group in a tenant transaction of its own.
async fn write_tx(store: &Store, g: Group) -> Result<()> {
    let mut tx = store.tenant_tx(&g.tenant).await?;
    if !g.usage.is_zero() {
        let u = &g.usage;
        crate::usage::add(
            &mut tx,
            &g.tenant,
            u.uploads,
            u.upload_bytes,
            u.downloads,
            u.download_bytes,
        )
        .await?;
    }
    crate::audit::append_batch(&mut tx, &g.tenant, g.events).await?;
    tx.commit().await
}
