//! Personal API tokens (IAM-9): stored as SHA-256, with scopes, expiry, last use and
//! revocation.

use crate::{Result, StoreError, Tx, TxScope};
use kura_domain::{TenantId, Timestamp, UserId};
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct ApiToken {
    pub id: String,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

const COLS: &str =
    "id, tenant_id, user_id, name, scopes, created_at, expires_at, last_used_at, revoked_at";

fn from_row(r: &AnyRow) -> Result<ApiToken> {
    let scopes: String = r.try_get("scopes")?;
    Ok(ApiToken {
        id: r.try_get("id")?,
        tenant_id: TenantId::from_string(r.try_get::<String, _>("tenant_id")?),
        user_id: UserId::from_string(r.try_get::<String, _>("user_id")?),
        name: r.try_get("name")?,
        scopes: serde_json::from_str(&scopes).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        created_at: Timestamp(r.try_get("created_at")?),
        expires_at: r.try_get::<Option<i64>, _>("expires_at")?.map(Timestamp),
        last_used_at: r.try_get::<Option<i64>, _>("last_used_at")?.map(Timestamp),
        revoked_at: r.try_get::<Option<i64>, _>("revoked_at")?.map(Timestamp),
    })
}

pub async fn insert(tx: &mut Tx, t: &ApiToken, token_hash: &str) -> Result<()> {
    tx.check(&t.tenant_id)?;
    sqlx::query(
        "INSERT INTO api_tokens (id, tenant_id, user_id, name, token_hash, scopes, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&t.id)
    .bind(t.tenant_id.as_str())
    .bind(t.user_id.as_str())
    .bind(&t.name)
    .bind(token_hash)
    .bind(serde_json::to_string(&t.scopes).map_err(|e| StoreError::Corrupt(e.to_string()))?)
    .bind(t.created_at.0)
    .bind(t.expires_at.map(|e| e.0))
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// A token by its hash (system scope: the token is the credential).
pub async fn find_by_hash(tx: &mut Tx, token_hash: &str) -> Result<Option<ApiToken>> {
    if tx.scope() != &TxScope::System {
        return Err(StoreError::ScopeViolation);
    }
    let row = sqlx::query(&format!(
        "SELECT {COLS} FROM api_tokens WHERE token_hash = $1"
    ))
    .bind(token_hash)
    .fetch_optional(tx.conn())
    .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn list_for_user(tx: &mut Tx, tenant: &TenantId, user: &UserId) -> Result<Vec<ApiToken>> {
    tx.check(tenant)?;
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM api_tokens WHERE tenant_id = $1 AND user_id = $2 ORDER BY created_at DESC, id"
    ))
    .bind(tenant.as_str())
    .bind(user.as_str())
    .fetch_all(tx.conn())
    .await?;
    rows.iter().map(from_row).collect()
}

/// Revokes one of a user's tokens; false if there is no such live token of theirs.
pub async fn revoke(
    tx: &mut Tx,
    tenant: &TenantId,
    user: &UserId,
    id: &str,
    now: Timestamp,
) -> Result<bool> {
    tx.check(tenant)?;
    Ok(sqlx::query(
        "UPDATE api_tokens SET revoked_at = $1 WHERE tenant_id = $2 AND user_id = $3 AND id = $4 AND revoked_at IS NULL",
    )
    .bind(now.0)
    .bind(tenant.as_str())
    .bind(user.as_str())
    .bind(id)
    .execute(tx.conn())
    .await?
    .rows_affected()
        == 1)
}

pub async fn touch(tx: &mut Tx, tenant: &TenantId, id: &str, now: Timestamp) -> Result<()> {
    tx.check(tenant)?;
    sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE tenant_id = $2 AND id = $3")
        .bind(now.0)
        .bind(tenant.as_str())
        .bind(id)
        .execute(tx.conn())
        .await?;
    Ok(())
}
