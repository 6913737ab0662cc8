//! Session lookups answered from memory on SQLite, checked against the database first.
//!
//! Every request looks up its session with its user, tenant and grants: on SQLite a
//! five-table join read in place and the tenant's settings parsed. So the server keeps
//! the lookups it answered, keyed by the token's hash. Triggers (migration 21) move a
//! counter, `auth_version`, in every transaction that changes a row the lookup reads (a
//! session other than its last use, a user, a grant, a role, a tenant) — whichever
//! process makes it (the CLI, `sqlite3` by hand). Each request reads the counter first
//! (one row, in place) and drops every entry if it moved since they were read
//! ([`SessionCache::at_version`]), so a change is in force for the first request that
//! starts after its commit. A lookup that raced a change is not kept (a generation
//! number), no entry lives longer than [`MAX_AGE`], and at most [`MAX_ENTRIES`] are kept.
//!
//! PostgreSQL has no such cache. One was built (triggers `pg_notify` the tenant at commit,
//! a listener per node drops its entries) and removed: a change made by another node or
//! process reached a node only when the notification arrived, so a user frozen from the
//! CLI could still be served for a moment — and a frozen user's sessions must stop at
//! once. A per-request check would be the round trip the cache was meant to save.

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
    /// SQLite: the `auth_version` the entries were read at.
    version: Option<i64>,
}

#[derive(Default)]
pub(crate) struct SessionCache {
    inner: Mutex<Inner>,
    /// Entries are served and kept (a SQLite file, until the store closes).
    live: AtomicBool,
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
