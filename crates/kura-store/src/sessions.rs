//! Server-side sessions (IAM-8). The primary key is the SHA-256 of the bearer token; the
//! token itself is never stored.

use crate::{Result, StoreError, Tx, TxScope};
use kura_domain::{TenantId, Timestamp, UserId};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone, Serialize)]
pub struct Session {
    /// Hex SHA-256 of the token (also used as the session's public id in listings).
    pub id: String,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    /// `console` or `api`.
    pub kind: String,
    #[serde(skip)]
    pub csrf_token: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
}

const COLS: &str =
    "id, tenant_id, user_id, kind, csrf_token, ip, user_agent, created_at, last_seen_at";

fn from_row(r: &AnyRow) -> Result<Session> {
    Ok(Session {
        id: r.try_get("id")?,
        tenant_id: TenantId::from_string(r.try_get::<String, _>("tenant_id")?),
        user_id: UserId::from_string(r.try_get::<String, _>("user_id")?),
        kind: r.try_get("kind")?,
        csrf_token: r.try_get("csrf_token")?,
        ip: r.try_get("ip")?,
        user_agent: r.try_get("user_agent")?,
        created_at: Timestamp(r.try_get("created_at")?),
        last_seen_at: Timestamp(r.try_get("last_seen_at")?),
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

/// Looks a session up by token hash, before the tenant is known. System scope only: the
/// token hash is itself the credential.
pub async fn find_by_hash(tx: &mut Tx, token_hash: &str) -> Result<Option<Session>> {
    if tx.scope() != &TxScope::System {
        return Err(StoreError::ScopeViolation);
    }
    let sql = format!("SELECT {COLS} FROM sessions WHERE id = $1");
    let row = sqlx::query(&sql)
        .bind(token_hash)
        .fetch_optional(tx.conn())
        .await?;
    row.as_ref().map(from_row).transpose()
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

pub async fn list_for_user(tx: &mut Tx, tenant: &TenantId, user: &UserId) -> Result<Vec<Session>> {
    tx.check(tenant)?;
    let sql = format!(
        "SELECT {COLS} FROM sessions WHERE tenant_id = $1 AND user_id = $2 ORDER BY last_seen_at DESC"
    );
    let rows = sqlx::query(&sql)
        .bind(tenant.as_str())
        .bind(user.as_str())
        .fetch_all(tx.conn())
        .await?;
    rows.iter().map(from_row).collect()
}
