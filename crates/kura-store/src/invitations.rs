//! One-time links with which a user sets their own password: invitations (TEN-1, IAM-1,
//! `purpose = "invite"`) and password resets (IAM-4, `purpose = "reset"`).

use crate::{Result, StoreError, Tx, TxScope};
use kura_domain::{TenantId, Timestamp, UserId};
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct Invitation {
    pub token_hash: String,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
    /// `invite` or `reset`.
    pub purpose: String,
}

pub async fn insert(tx: &mut Tx, i: &Invitation) -> Result<()> {
    tx.check(&i.tenant_id)?;
    sqlx::query(
        "INSERT INTO invitations (token_hash, tenant_id, user_id, created_at, expires_at, purpose) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&i.token_hash)
    .bind(i.tenant_id.as_str())
    .bind(i.user_id.as_str())
    .bind(i.created_at.0)
    .bind(i.expires_at.0)
    .bind(&i.purpose)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Looks an invitation up by its token hash (system scope: the link is the credential).
pub async fn find(tx: &mut Tx, token_hash: &str) -> Result<Option<Invitation>> {
    if tx.scope() != &TxScope::System {
        return Err(StoreError::ScopeViolation);
    }
    let row = sqlx::query(
        "SELECT token_hash, tenant_id, user_id, created_at, expires_at, used_at, purpose FROM invitations WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(tx.conn())
    .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(Invitation {
        token_hash: r.try_get("token_hash")?,
        tenant_id: TenantId::from_string(r.try_get::<String, _>("tenant_id")?),
        user_id: UserId::from_string(r.try_get::<String, _>("user_id")?),
        created_at: Timestamp(r.try_get("created_at")?),
        expires_at: Timestamp(r.try_get("expires_at")?),
        used_at: r.try_get::<Option<i64>, _>("used_at")?.map(Timestamp),
        purpose: r.try_get("purpose")?,
    }))
}

/// Marks an unused invitation used; false if it was already used (single use even under a
/// race).
pub async fn mark_used(
    tx: &mut Tx,
    tenant: &TenantId,
    token_hash: &str,
    now: Timestamp,
) -> Result<bool> {
    tx.check(tenant)?;
    Ok(sqlx::query(
        "UPDATE invitations SET used_at = $1 WHERE tenant_id = $2 AND token_hash = $3 AND used_at IS NULL",
    )
    .bind(now.0)
    .bind(tenant.as_str())
    .bind(token_hash)
    .execute(tx.conn())
    .await?
    .rows_affected()
        == 1)
}

/// Ends every unused link of one purpose for a user (a new reset link replaces older ones).
pub async fn revoke_for_user(
    tx: &mut Tx,
    tenant: &TenantId,
    user: &UserId,
    purpose: &str,
    now: Timestamp,
) -> Result<u64> {
    tx.check(tenant)?;
    Ok(sqlx::query(
        "UPDATE invitations SET used_at = $1 WHERE tenant_id = $2 AND user_id = $3 AND purpose = $4 AND used_at IS NULL",
    )
    .bind(now.0)
    .bind(tenant.as_str())
    .bind(user.as_str())
    .bind(purpose)
    .execute(tx.conn())
    .await?
    .rows_affected())
}
