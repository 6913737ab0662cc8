//! PostgreSQL: session lookups from memory, checked by one statement per batch of requests.
//!
//! Every request looks its session up; on PostgreSQL each lookup was a round trip to the
//! server and a five-table join there: under load, most of what a request cost. A node
//! keeps the lookups it answered ([`crate::session_cache`], as on SQLite) and checks them
//! against `auth_version` (migration 22), which every transaction changing a row a
//! lookup reads moves on at its commit, whichever node or process makes it. The check is
//! shared by concurrent requests:
//!
//! - [`lookup`] queues a token hash and waits; a lookup that finds fewer than
//!   [`MAX_FLUSHERS`] flushers running starts one (a task of its own, so a request that
//!   goes away does not take the others' answers with it);
//! - the flusher takes everything queued (at most [`MAX_BATCH`]), reads `auth_version`
//!   (dropping every kept entry if it moved), answers what is kept, and looks up the rest
//!   with one `kura_session_lookup_many` (migration 22) for all of them;
//! - a lookup queued while a statement is under way waits for the next one: every answer
//!   rests on a version read by a statement that started after its lookup was queued, so
//!   whatever was committed before a request arrived — a freeze, a revocation, a logout,
//!   on this node, another node or from the CLI — is seen by it, exactly as with a
//!   statement of its own.
//!
//! A failed statement fails every lookup in it (the request is refused, as before).

use crate::sessions::{OwnerRows, SessionOwner};
use crate::{Result, Store, StoreError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use tokio::sync::oneshot;

/// Token hashes asked for by one statement at most.
pub const MAX_BATCH: usize = 256;

struct Item {
    hash: String,
    done: oneshot::Sender<Result<Option<SessionOwner>>>,
}

#[derive(Default)]
struct Queue {
    pending: Vec<Item>,
    /// Flushers running (each takes whatever is pending until nothing is).
    flushers: usize,
}

/// Flushers at most. One: lookups that arrive while a batch is checked wait for the next,
/// larger batch — fewer statements, and in `kura bench` on PostgreSQL `/me` at 0.47–0.52
/// of `/healthz` against 0.44–0.49 with two flushers and 0.32–0.48 with three (a second
/// flusher sends the next batch sooner, but the statements cost more than the wait).
const MAX_FLUSHERS: usize = 1;

/// The lookup queue of a store (shared by its clones).
#[derive(Default)]
pub(crate) struct Lookups {
    queue: Mutex<Queue>,
    batches: AtomicU64,
    lookups: AtomicU64,
}

impl Lookups {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        // A poisoned lock only means a flusher failed while holding it; the queue is
        // always left consistent (a push, or a drain).
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// (batches checked — one `auth_version` read each, and one lookup statement for
    /// those with sessions not kept —, lookups answered by them)
    pub(crate) fn stats(&self) -> (u64, u64) {
        (
            self.batches.load(Ordering::Relaxed),
            self.lookups.load(Ordering::Relaxed),
        )
    }
}

/// Ends a flusher's turn if it is cancelled or unwound before it found the queue empty.
struct Turn<'a> {
    lookups: &'a Lookups,
    armed: bool,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut q = self.lookups.queue();
            q.flushers = q.flushers.saturating_sub(1);
        }
    }
}

/// The hashes travel as one space-separated text (the `Any` driver binds no arrays):
/// anything but a hex digest cannot be a session id, and is not sent.
fn is_token_hash(hash: &str) -> bool {
    !hash.is_empty() && hash.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The session with token hash `hash` and its owner, asked for together with whatever
/// other lookups are queued, by a statement that starts after this call.
pub(crate) async fn lookup(store: &Store, hash: &str) -> Result<Option<SessionOwner>> {
    if !is_token_hash(hash) {
        return Ok(None);
    }
    let (done, answer) = oneshot::channel();
    let lead = {
        let mut q = store.session_lookups().queue();
        q.pending.push(Item {
            hash: hash.to_string(),
            done,
        });
        let start = q.flushers < MAX_FLUSHERS;
        if start {
            q.flushers += 1;
        }
        start
    };
    if lead {
        let store = store.clone();
        tokio::spawn(async move { flush_all(&store).await });
    }
    answer
        .await
        .map_err(|_| StoreError::Unavailable("the session lookup was not answered".into()))?
}

async fn flush_all(store: &Store) {
    let l = store.session_lookups();
    let mut turn = Turn {
        lookups: l,
        armed: true,
    };
    loop {
        let batch: Vec<Item> = {
            let mut q = l.queue();
            if q.pending.is_empty() {
                q.flushers = q.flushers.saturating_sub(1);
                turn.armed = false;
                return;
            }
            let n = q.pending.len().min(MAX_BATCH);
            q.pending.drain(..n).collect()
        };
        l.batches.fetch_add(1, Ordering::Relaxed);
        l.lookups.fetch_add(batch.len() as u64, Ordering::Relaxed);
        flush(store, batch).await;
    }
}

/// Checks the version, answers what the cache holds and looks up the rest, for `batch`.
async fn flush(store: &Store, batch: Vec<Item>) {
    match answer(store, &batch).await {
        Ok(mut found) => {
            for Item { hash, done } in batch {
                // The last lookup of a hash takes the owner, the others a copy.
                let owner = match found.get_mut(&hash) {
                    Some((owner, 1)) => owner.take(),
                    Some((owner, left)) => {
                        *left -= 1;
                        owner.clone()
                    }
                    None => None,
                };
                let _ = done.send(Ok(owner));
            }
        }
        Err(e) => {
            for Item { done, .. } in batch {
                let _ = done.send(Err(crate::writer::shared_error(&e)));
            }
        }
    }
}

/// The owner of every hash in `batch` (`None`: no such session), with how many lookups
/// of the batch asked for it.
async fn answer(
    store: &Store,
    batch: &[Item],
) -> Result<HashMap<String, (Option<SessionOwner>, usize)>> {
    let cache = store.session_cache();
    let v: i64 = store
        .one_statement(|conn| {
            Box::pin(async move {
                sqlx::query_scalar("SELECT v FROM auth_version WHERE id = 1")
                    .fetch_one(conn)
                    .await
            })
        })
        .await?;
    cache.at_version(v);
    // Read before the sessions are: a change committed meanwhile keeps them out.
    let generation = cache.generation();
    let mut found: HashMap<String, (Option<SessionOwner>, usize)> = HashMap::new();
    let mut misses: Vec<&str> = Vec::new();
    for i in batch {
        if let Some((_, n)) = found.get_mut(&i.hash) {
            *n += 1;
            continue;
        }
        let kept = cache.get(&i.hash);
        if kept.is_none() {
            misses.push(&i.hash);
        }
        found.insert(i.hash.clone(), (kept, 1));
    }
    if misses.is_empty() {
        return Ok(found);
    }
    for (hash, owner) in from_database(store, &misses).await? {
        if let Some(o) = &owner {
            cache.put(hash, o, generation);
        }
        if let Some((slot, _)) = found.get_mut(hash) {
            *slot = owner;
        }
    }
    Ok(found)
}

/// The session with token hash `hash` read from the database now, past the cache (and not
/// kept in it).
pub(crate) async fn lookup_uncached(store: &Store, hash: &str) -> Result<Option<SessionOwner>> {
    if !is_token_hash(hash) {
        return Ok(None);
    }
    Ok(from_database(store, &[hash])
        .await?
        .pop()
        .and_then(|(_, owner)| owner))
}

/// The owners of the sessions with token hashes `hashes` (each given once), by hash
/// (`None`: no such session), in one statement.
async fn from_database<'h>(
    store: &Store,
    hashes: &[&'h str],
) -> Result<Vec<(&'h str, Option<SessionOwner>)>> {
    let list = hashes.join(" ");
    let rows = store
        .one_statement(move |conn| {
            let list = list.clone();
            Box::pin(async move {
                sqlx::query("SELECT * FROM kura_session_lookup_many($1)")
                    .bind(list)
                    .fetch_all(conn)
                    .await
            })
        })
        .await?;
    let mut by_hash: HashMap<String, OwnerRows> = HashMap::new();
    for r in &rows {
        let id: String = sqlx::Row::try_get(r, "id")?;
        by_hash.entry(id).or_default().add(r)?;
    }
    Ok(hashes
        .iter()
        .map(|h| (*h, by_hash.remove(*h).and_then(OwnerRows::finish)))
        .collect())
}
