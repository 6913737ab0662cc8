//! Server-side sessions (IAM-8). The primary key is the SHA-256 of the bearer token; the
//! token itself is never stored.

use crate::{Result, StoreError, Tx, TxScope};
use kura_domain::{TenantId, Timestamp, UserId};

#[derive(Debug, Clone)]
pub struct Session {
    /// Hex SHA-256 of the token (also used as the session's public id in listings).
    pub id: String,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    /// `console` or `api`.
    pub kind: String,
    pub csrf_token: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
}

fn from_row<R: crate::sync_read::RowGet>(r: &R) -> Result<Session> {
    Ok(Session {
        id: r.text("", "id")?,
        tenant_id: TenantId::from_string(r.text("", "tenant_id")?),
        user_id: UserId::from_string(r.text("", "user_id")?),
        kind: r.text("", "kind")?,
        csrf_token: r.text("", "csrf_token")?,
        ip: r.opt_text("", "ip")?,
        user_agent: r.opt_text("", "user_agent")?,
        created_at: Timestamp(r.int("", "created_at")?),
        last_seen_at: Timestamp(r.int("", "last_seen_at")?),
    })
}

pub async fn insert(tx: &mut Tx, s: &Session) -> Result<()> {
    tx.check(&s.tenant_id)?;
    sqlx::query(
        "INSERT INTO sessions (id, tenant_id, user_id, kind, csrf_token, ip, user_agent, created_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&s.id)
    .bind(s.tenant_id.as_str())
    .bind(s.user_id.as_str())
    .bind(&s.kind)
    .bind(&s.csrf_token)
    .bind(s.ip.clone())
    .bind(s.user_agent.clone())
    .bind(s.created_at.0)
    .bind(s.last_seen_at.0)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// What a request needs to authenticate: the session, its user, tenant and the user's grants.
pub type SessionOwner = (
    Session,
    crate::users::User,
    crate::tenants::Tenant,
    Vec<crate::roles::GrantRow>,
);

/// The session lookup's one statement: a session with its user, tenant and grants (put in
/// order by [`OwnerRows::finish`]: a sort in SQLite would cost more than the lookup).
const OWNER_SQL: &str = "SELECT s.id, s.tenant_id, s.user_id, s.kind, s.csrf_token, s.ip, s.user_agent, s.created_at, s.last_seen_at, \
     u.id AS u_id, u.tenant_id AS u_tenant_id, u.email AS u_email, u.display_name AS u_display_name, u.locale AS u_locale, \
     u.status AS u_status, u.kind AS u_kind, u.password_hash AS u_password_hash, u.created_at AS u_created_at, \
     t.id AS t_id, t.slug AS t_slug, t.name AS t_name, t.status AS t_status, t.settings AS t_settings, t.created_at AS t_created_at, \
     g.id AS g_id, g.user_id AS g_user_id, g.builtin AS g_builtin, g.role_id AS g_role_id, g.scope_kind AS g_scope_kind, \
     g.scope_id AS g_scope_id, g.created_at AS g_created_at, g.max_label AS g_max_label, r.name AS g_role_name, r.actions AS g_role_actions \
     FROM sessions s \
     JOIN users u ON u.id = s.user_id AND u.tenant_id = s.tenant_id \
     JOIN tenants t ON t.id = s.tenant_id \
     LEFT JOIN grants g ON g.user_id = u.id AND g.tenant_id = u.tenant_id \
     LEFT JOIN roles r ON r.id = g.role_id AND r.tenant_id = g.tenant_id \
     WHERE s.id = $1";

/// A session with its user, tenant and grants, in one query (the hot path of every request).
pub async fn find_with_owner(tx: &mut Tx, token_hash: &str) -> Result<Option<SessionOwner>> {
    if tx.scope() != &TxScope::System {
        return Err(StoreError::ScopeViolation);
    }
    let rows = sqlx::query(OWNER_SQL)
        .bind(token_hash)
        .fetch_all(tx.conn())
        .await?;
    OwnerRows::of(&rows)
}

/// The session lookup of every request, in one round trip: [`find_with_owner`] outside a
/// transaction (one statement is atomic). On SQLite it runs in place on one of the
/// store's synchronous readers ([`crate::sync_read`]; on any failure there, through sqlx
/// as before). On PostgreSQL it goes through the `kura_session_lookup` function
/// (migration 19), which turns on cross-tenant reading for its own statement only — the
/// row-level-security policies still decide, and nothing but the session with this token
/// hash and its owner can be read through it. On a SQLite file the lookup is kept in
/// memory until `auth_version` moves ([`crate::session_cache`]).
pub async fn lookup(store: &crate::Store, token_hash: &str) -> Result<Option<SessionOwner>> {
    match store.backend() {
        crate::Backend::Sqlite => {
            if let Some(readers) = store.sync_readers() {
                let cache = store.session_cache();
                let found = readers.with(|conn| {
                    let v = conn
                        .one("SELECT v FROM auth_version WHERE id = 1", [], |r| {
                            crate::sync_read::RowGet::int_at(r, 0)
                        })?
                        .ok_or_else(|| StoreError::Corrupt("auth_version row missing".into()))?;
                    cache.at_version(v);
                    if let Some(found) = cache.get(token_hash) {
                        return Ok(Some(found));
                    }
                    let generation = cache.generation();
                    let mut owner = OwnerRows::default();
                    conn.each(OWNER_SQL, [token_hash], |r| owner.add(r))?;
                    let found = owner.finish();
                    if let Some(o) = &found {
                        cache.put(token_hash, o, generation);
                    }
                    Ok(found)
                });
                match found {
                    Ok(v) => return Ok(v),
                    Err(e) => {
                        tracing::debug!(error = %e, "in-place session lookup failed; through sqlx")
                    }
                }
            }
            let mut tx = store.system_lookup().await?;
            find_with_owner(&mut tx, token_hash).await
        }
        // One statement for every lookup queued meanwhile, started after each was queued
        // ([`crate::session_batch`]).
        crate::Backend::Postgres => crate::session_batch::lookup(store, token_hash).await,
    }
}

/// [`lookup`], but never from a node's memory: for a session that looks idle by a kept
/// copy, whose last use may since have been written by another node (PostgreSQL). On
/// SQLite every last use is written by this process and the kept copy carries it, so
/// this is [`lookup`].
pub async fn lookup_fresh(store: &crate::Store, token_hash: &str) -> Result<Option<SessionOwner>> {
    match store.backend() {
        crate::Backend::Sqlite => lookup(store, token_hash).await,
        crate::Backend::Postgres => {
            let found = crate::session_batch::lookup_uncached(store, token_hash).await?;
            if let Some((s, ..)) = &found {
                // The kept copy carries the newer last use from now on (not read again
                // on every request until it ages out).
                store.session_cache().touched(token_hash, s.last_seen_at);
            }
            Ok(found)
        }
    }
}

/// The session, user and tenant of the first row and a grant from every row that has one.
#[derive(Default)]
pub(crate) struct OwnerRows {
    first: Option<(Session, crate::users::User, crate::tenants::Tenant)>,
    grants: Vec<crate::roles::GrantRow>,
}

impl OwnerRows {
    /// The owner in rows sqlx fetched.
    fn of(rows: &[sqlx::any::AnyRow]) -> Result<Option<SessionOwner>> {
        let mut owner = OwnerRows::default();
        for r in rows {
            owner.add(r)?;
        }
        Ok(owner.finish())
    }

    pub(crate) fn add<R: crate::sync_read::RowGet>(&mut self, r: &R) -> Result<()> {
        if self.first.is_none() {
            self.first = Some((
                from_row(r)?,
                crate::users::from_row_prefixed(r, "u_")?,
                crate::tenants::from_row_prefixed(r, "t_")?,
            ));
        }
        if r.opt_text("g_", "id")?.is_some() {
            self.grants
                .push(crate::roles::grant_from_row_prefixed(r, "g_")?);
        }
        Ok(())
    }

    /// The owner, with the grants in the order they were made.
    pub(crate) fn finish(mut self) -> Option<SessionOwner> {
        self.grants
            .sort_by(|a, b| (a.created_at.0, a.id.as_str()).cmp(&(b.created_at.0, b.id.as_str())));
        self.first.map(|(s, u, t)| (s, u, t, self.grants))
    }
}

pub async fn touch(tx: &mut Tx, tenant: &TenantId, id: &str, now: Timestamp) -> Result<()> {
    tx.check(tenant)?;
    sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE tenant_id = $2 AND id = $3")
        .bind(now.0)
        .bind(tenant.as_str())
        .bind(id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Writes the last use of several sessions of `tenant` in one transaction of its own. It
/// changes nothing else a lookup reads (`auth_version` does not move), so cached lookups
/// are kept and carry the new last use.
pub async fn touch_many(
    store: &crate::Store,
    tenant: &TenantId,
    uses: &[(&str, Timestamp)],
) -> Result<()> {
    let mut tx = store.tenant_tx(tenant).await?;
    for (id, at) in uses {
        touch(&mut tx, tenant, id, *at).await?;
    }
    tx.commit().await?;
    for (id, at) in uses {
        store.session_cache().touched(id, *at);
    }
    Ok(())
}

pub async fn delete(tx: &mut Tx, tenant: &TenantId, id: &str) -> Result<bool> {
    tx.check(tenant)?;
    Ok(
        sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(id)
            .execute(tx.conn())
            .await?
            .rows_affected()
            > 0,
    )
}

/// Ends every session of a user; returns how many ended.
pub async fn delete_for_user(tx: &mut Tx, tenant: &TenantId, user: &UserId) -> Result<u64> {
    tx.check(tenant)?;
    Ok(
        sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant.as_str())
            .bind(user.as_str())
            .execute(tx.conn())
            .await?
            .rows_affected(),
    )
}

/// A user's sessions, newest activity first.
pub async fn list_for_user(tx: &mut Tx, tenant: &TenantId, user: &UserId) -> Result<Vec<Session>> {
    tx.check(tenant)?;
    let rows = sqlx::query(
        "SELECT id, tenant_id, user_id, kind, csrf_token, ip, user_agent, created_at, last_seen_at \
         FROM sessions WHERE tenant_id = $1 AND user_id = $2 ORDER BY last_seen_at DESC, id",
    )
    .bind(tenant.as_str())
    .bind(user.as_str())
    .fetch_all(tx.conn())
    .await?;
    rows.iter().map(from_row).collect()
}

/// Ends one session of a user (false: no such session of theirs).
pub async fn delete_of_user(
    tx: &mut Tx,
    tenant: &TenantId,
    user: &UserId,
    id: &str,
) -> Result<bool> {
    tx.check(tenant)?;
    Ok(
        sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2 AND id = $3")
            .bind(tenant.as_str())
            .bind(user.as_str())
            .bind(id)
            .execute(tx.conn())
            .await?
            .rows_affected()
            > 0,
    )
}
