//! Session lookups answered from memory, dropped when the database says so.
//!
//! Every request looks up its session with its user, tenant and grants: on PostgreSQL a
//! round trip and a query on a server that shares the machine — most of an authenticated
//! small request; on SQLite a five-table join read in place and the tenant's settings
//! parsed. So each node keeps the lookups it answered, keyed by the token's hash.
//!
//! **SQLite:** triggers (migration 21) move a counter, `auth_version`, in every
//! transaction that changes a row the lookup reads (a session other than its last use, a
//! user, a grant, a role, a tenant) — whichever process makes it. Each request reads the
//! counter first (one indexed row, in place) and drops every entry if it moved since they
//! were read ([`SessionCache::at_version`]), so a change is in force for the first
//! request that starts after its commit.
//!
//! **PostgreSQL**, where several nodes share the database, entries are dropped when they
//! may have changed:
//!
//! - **by the database, for every node:** triggers (migration 21) send the tenant's id on
//!   the channel `kura_auth` when a transaction commits a change to a session (other than
//!   its last use), a user, a grant, a role or the tenant — whoever made it: any node, a
//!   job, an operator by hand. A listener on a connection of its own drops that tenant's
//!   entries when the notification arrives;
//! - **on this node, before the writer is answered:** a write transaction that commits
//!   drops its tenant's entries (a system transaction: all of them), so a log-out, a
//!   freeze or a role change is in force on the node that made it before the response
//!   goes out. Write paths that cannot touch those tables (download records, session
//!   uses, access-log batches) say so and keep the entries;
//! - **fail closed:** nothing is served from memory unless the listener is connected and
//!   listening; when its connection drops, everything is dropped and lookups go to the
//!   database until it listens again. A lookup that raced an invalidation is not kept (a
//!   generation number), no entry lives longer than [`MAX_AGE`], and the cache holds at most
//!   [`MAX_ENTRIES`] sessions.
//!
//! Another node learns of a change when PostgreSQL delivers the notification, which it
//! sends at the commit.

use crate::sessions::SessionOwner;
use kura_domain::clock::Stopwatch;
use kura_domain::Timestamp;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

/// The notification channel of migration 21.
pub(crate) const CHANNEL: &str = "kura_auth";
/// An entry is looked up again after this long, notified or not.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(60);
/// Sessions kept at most (then none are added until some are dropped).
pub(crate) const MAX_ENTRIES: usize = 100_000;

struct Entry {
    owner: SessionOwner,
    since: Stopwatch,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    /// Bumped (under the lock) at every invalidation.
    generation: u64,
    /// SQLite: the `auth_version` the entries were read at.
    version: Option<i64>,
}

#[derive(Default)]
pub(crate) struct SessionCache {
    inner: Mutex<Inner>,
    /// The listener is connected and listening: only then is anything served or kept.
    live: AtomicBool,
    closed: AtomicBool,
    hits: AtomicU64,
    invalidations: AtomicU64,
}

impl SessionCache {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock: the map is still a map (each change is one call).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached lookup of `hash`, if the listener is live and the entry young enough.
    pub(crate) fn get(&self, hash: &str) -> Option<SessionOwner> {
        if !self.live.load(Ordering::Acquire) {
            return None;
        }
        let g = self.inner();
        let e = g.entries.get(hash)?;
        if e.since.elapsed() >= MAX_AGE {
            return None;
        }
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(e.owner.clone())
    }

    /// The generation to pass to [`SessionCache::put`], read before the database is.
    pub(crate) fn generation(&self) -> u64 {
        self.inner().generation
    }

    /// Keeps a lookup read from the database, unless anything was invalidated since
    /// `generation` was read (the read may predate the change), or the listener is down.
    pub(crate) fn put(&self, hash: &str, owner: &SessionOwner, generation: u64) {
        if !self.live.load(Ordering::Acquire) {
            return;
        }
        let mut g = self.inner();
        if g.generation != generation {
            return;
        }
        if g.entries.len() >= MAX_ENTRIES {
            // Expired entries go; if that is not enough, all go (one scan per fill, not
            // one per lookup).
            g.entries.retain(|_, e| e.since.elapsed() < MAX_AGE);
            if g.entries.len() >= MAX_ENTRIES {
                g.entries.clear();
            }
        }
        g.entries.insert(
            hash.to_string(),
            Entry {
                owner: owner.clone(),
                since: Stopwatch::start(),
            },
        );
    }

    /// SQLite: the database's `auth_version` as a request read it before anything else.
    /// If it is not the one the entries were read at, a change was committed since (by
    /// this process or another): every entry is dropped.
    pub(crate) fn at_version(&self, v: i64) {
        let mut g = self.inner();
        if g.version != Some(v) {
            g.version = Some(v);
            g.generation += 1;
            g.entries.clear();
            self.invalidations.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// SQLite: entries are served (each request checks the version first).
    pub(crate) fn start_versioned(&self) {
        self.live.store(true, Ordering::Release);
    }

    /// Drops every entry of `tenant`.
    pub(crate) fn evict_tenant(&self, tenant: &str) {
        let mut g = self.inner();
        g.generation += 1;
        g.entries
            .retain(|_, e| e.owner.0.tenant_id.as_str() != tenant);
        self.invalidations.fetch_add(1, Ordering::Relaxed);
    }

    /// Drops everything.
    pub(crate) fn clear(&self) {
        let mut g = self.inner();
        g.generation += 1;
        g.entries.clear();
        self.invalidations.fetch_add(1, Ordering::Relaxed);
    }

    /// This node wrote the session's last use: the entry carries it too.
    pub(crate) fn touched(&self, hash: &str, at: Timestamp) {
        let mut g = self.inner();
        if let Some(e) = g.entries.get_mut(hash) {
            let s = &mut e.owner.0;
            s.last_seen_at = s.last_seen_at.max(at);
        }
    }

    /// Drops the entry of one session (the database no longer has it).
    pub(crate) fn forget(&self, hash: &str) {
        self.inner().entries.remove(hash);
    }

    fn set_live(&self, live: bool) {
        if !live {
            self.live.store(false, Ordering::Release);
            self.clear();
        } else {
            self.clear();
            self.live.store(true, Ordering::Release);
        }
    }

    pub(crate) fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// Lookups answered from memory so far.
    pub(crate) fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Stops the listener (the store is closing).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.set_live(false);
    }
}

/// How long the listener waits before connecting again after losing its connection.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);
/// How often a listener with nothing to hear checks whether its store is gone.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Starts the listener of `cache` on the database at `url`; it holds the cache weakly and
/// ends when the cache is closed or dropped.
pub(crate) fn start(url: String, cache: &Arc<SessionCache>) {
    let weak: Weak<SessionCache> = Arc::downgrade(cache);
    tokio::spawn(async move {
        let gone =
            |w: &Weak<SessionCache>| w.upgrade().is_none_or(|c| c.closed.load(Ordering::Acquire));
        loop {
            if gone(&weak) {
                return;
            }
            match listen(&url).await {
                Ok(mut l) => {
                    if let Some(c) = weak.upgrade() {
                        c.set_live(true);
                    }
                    loop {
                        match tokio::time::timeout(CHECK_EVERY, l.try_recv()).await {
                            Err(_) if gone(&weak) => return,
                            Err(_) => continue,
                            Ok(Ok(Some(n))) => match weak.upgrade() {
                                Some(c) => c.evict_tenant(n.payload()),
                                None => return,
                            },
                            // The connection dropped: notifications may be lost from here.
                            Ok(Ok(None)) | Ok(Err(_)) => break,
                        }
                    }
                    tracing::warn!("session cache: the database listener lost its connection; lookups go to the database until it is back");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "session cache: cannot listen for changes; lookups go to the database")
                }
            }
            match weak.upgrade() {
                Some(c) => c.set_live(false),
                None => return,
            }
            tokio::time::sleep(RECONNECT_AFTER).await;
        }
    });
}

async fn listen(url: &str) -> Result<sqlx::postgres::PgListener, sqlx::Error> {
    let mut l = sqlx::postgres::PgListener::connect(url).await?;
    l.listen(CHANNEL).await?;
    Ok(l)
}
