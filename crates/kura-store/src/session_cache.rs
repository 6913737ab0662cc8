//! Session lookups answered from memory, checked against the database first.
//!
//! Every request looks up its session with its user, tenant and grants: a five-table join
//! and the tenant's settings parsed. So the server keeps the lookups it answered, keyed by
//! the token's hash. Triggers (migrations 21 on SQLite, 22 on PostgreSQL) move a counter,
//! `auth_version`, in every transaction that changes a row the lookup reads (a session
//! other than its last use, a user, a grant, a role, a tenant) — whichever process makes
//! it (another node, the CLI, `sqlite3` or `psql` by hand). Before an entry is served the
//! counter is read by a statement that started after the request arrived — on SQLite by
//! each request, in place; on PostgreSQL once for each batch of concurrent requests
//! ([`crate::session_batch`]) — and every entry is dropped if it moved since they were
//! read ([`SessionCache::at_version`]), so a change is in force for the first request
//! that starts after its commit, on every node. A lookup that raced a change is not kept
//! (a generation number), no entry lives longer than [`MAX_AGE`], and at most
//! [`MAX_ENTRIES`] are kept.
//!
//! (An earlier PostgreSQL cache was dropped when notified by `pg_notify`: a change made
//! elsewhere reached a node only when the notification arrived, so a user frozen from the
//! CLI could still be served for a moment. Reading the version per batch has no such
//! window.)

use crate::sessions::SessionOwner;
use kura_domain::clock::Stopwatch;
use kura_domain::Timestamp;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

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
    /// The `auth_version` the entries were read at.
    version: Option<i64>,
}

#[derive(Default)]
pub(crate) struct SessionCache {
    inner: Mutex<Inner>,
    /// Entries are served and kept (a SQLite file or PostgreSQL, until the store closes).
    live: AtomicBool,
    hits: AtomicU64,
    invalidations: AtomicU64,
}

impl SessionCache {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock: the map is still a map (each change is one call).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached lookup of `hash`, if the cache is live and the entry young enough.
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
    /// `generation` was read (the read may predate the change), or the cache is closed.
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

    /// The database's `auth_version` as read before anything else (per request on
    /// SQLite, per batch on PostgreSQL).
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

    /// Entries are served (the version is checked before each use).
    pub(crate) fn start_versioned(&self) {
        self.live.store(true, Ordering::Release);
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

    pub(crate) fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// Lookups answered from memory so far.
    pub(crate) fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// The store is closing: nothing is served or kept any more.
    pub(crate) fn close(&self) {
        self.live.store(false, Ordering::Release);
        self.clear();
    }
}
