//! Second factors (IAM-5): a TOTP secret per user (sealed with the tenant's data key),
//! hashed single-use recovery codes, and login challenges — a right password waiting for
//! its second factor.

use crate::{Result, StoreError, Tx, TxScope};
use kura_domain::{TenantId, Timestamp, UserId};
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct Totp {
    /// `kura_services` sealed field (the secret under the tenant key).
    pub secret_sealed: String,
    pub confirmed_at: Option<Timestamp>,
    pub last_step: Option<i64>,
}

pub async fn totp(tx: &mut Tx, tenant: &TenantId, user: &UserId) -> Result<Option<Totp>> {
    tx.check(tenant)?;
    let row = sqlx::query(
        "SELECT secret_sealed, confirmed_at, last_step FROM user_totp WHERE tenant_id = $1 AND user_id = $2",
    )
    .bind(tenant.as_str())
    .bind(user.as_str())
    .fetch_optional(tx.conn())
    .await?;
    row.map(|r| {
        Ok(Totp {
            secret_sealed: r.try_get("secret_sealed")?,
            confirmed_at: r.try_get::<Option<i64>, _>("confirmed_at")?.map(Timestamp),
            last_step: r.try_get("last_step")?,
        })
    })
    .transpose()
}

/// Starts (or restarts) an enrolment: an unconfirmed secret replaces any earlier one.
pub async fn put_pending_totp(
    tx: &mut Tx,
    tenant: &TenantId,
    user: &UserId,
    sealed: &str,
    now: Timestamp,
) -> Result<()> {
    tx.check(tenant)?;
    sqlx::query("DELETE FROM user_totp WHERE tenant_id = $1 AND user_id = $2")
        .bind(tenant.as_str())
        .bind(user.as_str())
        .execute(tx.conn())
        .await?;
    sqlx::query(
        "INSERT INTO user_totp (tenant_id, user_id, secret_sealed, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(tenant.as_str())
    .bind(user.as_str())
    .bind(sealed)
    .bind(now.0)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Records a used step (and confirms the secret on first use). False if `step` is not
/// later than the last used one — the same code twice, even racing, is refused.
pub async fn use_step(
    tx: &mut Tx,
    tenant: &TenantId,
    user: &UserId,
    step: i64,
    now: Timestamp,
) -> Result<bool> {
    tx.check(tenant)?;
    Ok(sqlx::query(
        "UPDATE user_totp SET last_step = $1, confirmed_at = COALESCE(confirmed_at, $2) \
         WHERE tenant_id = $3 AND user_id = $4 AND (last_step IS NULL OR last_step < $1)",
    )
    .bind(step)
    .bind(now.0)
    .bind(tenant.as_str())
    .bind(user.as_str())
    .execute(tx.conn())
    .await?
    .rows_affected()
        == 1)
}

pub async fn delete_totp(tx: &mut Tx, tenant: &TenantId, user: &UserId) -> Result<bool> {
    tx.check(tenant)?;
    sqlx::query("DELETE FROM recovery_codes WHERE tenant_id = $1 AND user_id = $2")
        .bind(tenant.as_str())
        .bind(user.as_str())
        .execute(tx.conn())
        .await?;
    Ok(
        sqlx::query("DELETE FROM user_totp WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant.as_str())
            .bind(user.as_str())
            .execute(tx.conn())
            .await?
            .rows_affected()
            > 0,
    )
}

/// Replaces a user's recovery codes (stored as hashes).
pub async fn set_recovery_codes(
    tx: &mut Tx,
    tenant: &TenantId,
    user: &UserId,
    hashes: &[String],
) -> Result<()> {
    tx.check(tenant)?;
    sqlx::query("DELETE FROM recovery_codes WHERE tenant_id = $1 AND user_id = $2")
        .bind(tenant.as_str())
        .bind(user.as_str())
        .execute(tx.conn())
        .await?;
    for h in hashes {
        sqlx::query(
            "INSERT INTO recovery_codes (tenant_id, user_id, code_hash) VALUES ($1, $2, $3)",
        )
        .bind(tenant.as_str())
        .bind(user.as_str())
        .bind(h)
        .execute(tx.conn())
        .await?;
    }
    Ok(())
}

/// Uses a recovery code once; false if unknown or used.
pub async fn use_recovery_code(
    tx: &mut Tx,
    tenant: &TenantId,
    user: &UserId,
    hash: &str,
    now: Timestamp,
) -> Result<bool> {
    tx.check(tenant)?;
    Ok(sqlx::query(
        "UPDATE recovery_codes SET used_at = $1 WHERE tenant_id = $2 AND user_id = $3 AND code_hash = $4 AND used_at IS NULL",
    )
    .bind(now.0)
    .bind(tenant.as_str())
    .bind(user.as_str())
    .bind(hash)
    .execute(tx.conn())
    .await?
    .rows_affected()
        == 1)
}

pub async fn recovery_codes_left(tx: &mut Tx, tenant: &TenantId, user: &UserId) -> Result<i64> {
    tx.check(tenant)?;
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM recovery_codes WHERE tenant_id = $1 AND user_id = $2 AND used_at IS NULL",
    )
    .bind(tenant.as_str())
    .bind(user.as_str())
    .fetch_one(tx.conn())
    .await?)
}

#[derive(Debug, Clone)]
pub struct Challenge {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    /// `console` or `api`: the kind of session it leads to.
    pub kind: String,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
}

pub async fn insert_challenge(
    tx: &mut Tx,
    token_hash: &str,
    c: &Challenge,
    now: Timestamp,
) -> Result<()> {
    tx.check(&c.tenant_id)?;
    sqlx::query(
        "INSERT INTO login_challenges (token_hash, tenant_id, user_id, kind, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(token_hash)
    .bind(c.tenant_id.as_str())
    .bind(c.user_id.as_str())
    .bind(&c.kind)
    .bind(now.0)
    .bind(c.expires_at.0)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// A challenge by its token hash (system scope: the token is the credential).
pub async fn find_challenge(tx: &mut Tx, token_hash: &str) -> Result<Option<Challenge>> {
    if tx.scope() != &TxScope::System {
        return Err(StoreError::ScopeViolation);
    }
    let row = sqlx::query(
        "SELECT tenant_id, user_id, kind, expires_at, used_at FROM login_challenges WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(tx.conn())
    .await?;
    row.map(|r| {
        Ok(Challenge {
            tenant_id: TenantId::from_string(r.try_get::<String, _>("tenant_id")?),
            user_id: UserId::from_string(r.try_get::<String, _>("user_id")?),
            kind: r.try_get("kind")?,
            expires_at: Timestamp(r.try_get("expires_at")?),
            used_at: r.try_get::<Option<i64>, _>("used_at")?.map(Timestamp),
        })
    })
    .transpose()
}

/// Marks a challenge used; false if it already was (single use under a race).
pub async fn use_challenge(
    tx: &mut Tx,
    tenant: &TenantId,
    token_hash: &str,
    now: Timestamp,
) -> Result<bool> {
    tx.check(tenant)?;
    Ok(sqlx::query(
        "UPDATE login_challenges SET used_at = $1 WHERE tenant_id = $2 AND token_hash = $3 AND used_at IS NULL",
    )
    .bind(now.0)
    .bind(tenant.as_str())
    .bind(token_hash)
    .execute(tx.conn())
    .await?
    .rows_affected()
        == 1)
}
