//! The key vault: each tenant's wrapped data keys by version (CRY-1).

use crate::{Result, Tx};
use kura_domain::{TenantId, Timestamp};
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct WrappedKey {
    pub version: i64,
    /// Hex of `nonce ‖ ciphertext ‖ tag` (see `kura_crypto::keys::wrap`).
    pub wrapped: String,
    /// Fingerprint of the master key that wrapped it.
    pub master_fp: String,
    pub created_at: Timestamp,
}

pub async fn insert(tx: &mut Tx, tenant: &TenantId, k: &WrappedKey) -> Result<()> {
    tx.check(tenant)?;
    sqlx::query(
        "INSERT INTO tenant_keys (tenant_id, version, wrapped, master_fp, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(tenant.as_str())
    .bind(k.version)
    .bind(&k.wrapped)
    .bind(&k.master_fp)
    .bind(k.created_at.0)
    .execute(tx.conn())
    .await
    .map_err(|e| crate::StoreError::conflict_on_unique(e, "key version exists"))?;
    Ok(())
}

fn from_row(r: &sqlx::any::AnyRow) -> Result<WrappedKey> {
    Ok(WrappedKey {
        version: r.try_get("version")?,
        wrapped: r.try_get("wrapped")?,
        master_fp: r.try_get("master_fp")?,
        created_at: Timestamp(r.try_get("created_at")?),
    })
}

/// The newest key version of a tenant, if any.
pub async fn current(tx: &mut Tx, tenant: &TenantId) -> Result<Option<WrappedKey>> {
    tx.check(tenant)?;
    let row = sqlx::query(
        "SELECT version, wrapped, master_fp, created_at FROM tenant_keys WHERE tenant_id = $1 ORDER BY version DESC LIMIT 1",
    )
    .bind(tenant.as_str())
    .fetch_optional(tx.conn())
    .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn get(tx: &mut Tx, tenant: &TenantId, version: i64) -> Result<Option<WrappedKey>> {
    tx.check(tenant)?;
    let row = sqlx::query(
        "SELECT version, wrapped, master_fp, created_at FROM tenant_keys WHERE tenant_id = $1 AND version = $2",
    )
    .bind(tenant.as_str())
    .bind(version)
    .fetch_optional(tx.conn())
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Every tenant's wrapped keys (system scope: master-key rotation).
pub async fn list_all(tx: &mut Tx) -> Result<Vec<(TenantId, WrappedKey)>> {
    if tx.scope() != &crate::TxScope::System {
        return Err(crate::StoreError::ScopeViolation);
    }
    let rows = sqlx::query("SELECT tenant_id, version, wrapped, master_fp, created_at FROM tenant_keys ORDER BY tenant_id, version")
        .fetch_all(tx.conn())
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                TenantId::from_string(r.try_get::<String, _>("tenant_id")?),
                from_row(r)?,
            ))
        })
        .collect()
}

/// Replaces a wrapped key (same key, wrapped under another master key).
pub async fn rewrap(
    tx: &mut Tx,
    tenant: &TenantId,
    version: i64,
    wrapped: &str,
    master_fp: &str,
) -> Result<()> {
    tx.check(tenant)?;
    sqlx::query(
        "UPDATE tenant_keys SET wrapped = $1, master_fp = $2 WHERE tenant_id = $3 AND version = $4",
    )
    .bind(wrapped)
    .bind(master_fp)
    .bind(tenant.as_str())
    .bind(version)
    .execute(tx.conn())
    .await?;
    Ok(())
}
