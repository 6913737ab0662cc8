//! Tenant termination records (OPS-3): when the tenant was terminated, when its data goes,
//! when its keys go, and what was done.

use crate::{Result, StoreError, Tx};
use kura_domain::{TenantId, Timestamp};
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct Lifecycle {
    pub tenant_id: TenantId,
    pub slug: String,
    pub terminated_at: Timestamp,
    pub delete_after: Timestamp,
    pub shred_after: Timestamp,
    pub deleted_at: Option<Timestamp>,
    /// What the deletion removed (JSON).
    pub deletion: Option<String>,
    pub shredded_at: Option<Timestamp>,
    /// The signed deletion certificate (JSON).
    pub certificate: Option<String>,
}

pub async fn insert(tx: &mut Tx, l: &Lifecycle) -> Result<()> {
    tx.system_only()?;
    sqlx::query(
        "INSERT INTO tenant_lifecycle (tenant_id, slug, terminated_at, delete_after, shred_after) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(l.tenant_id.as_str())
    .bind(&l.slug)
    .bind(l.terminated_at.0)
    .bind(l.delete_after.0)
    .bind(l.shred_after.0)
    .execute(tx.conn())
    .await
    .map_err(|e| StoreError::conflict_on_unique(e, "the tenant is already terminated"))?;
    Ok(())
}

pub async fn list(tx: &mut Tx) -> Result<Vec<Lifecycle>> {
    tx.system_only()?;
    let rows = sqlx::query(
        "SELECT tenant_id, slug, terminated_at, delete_after, shred_after, deleted_at, deletion, shredded_at, certificate FROM tenant_lifecycle ORDER BY terminated_at",
    )
    .fetch_all(tx.conn())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Lifecycle {
                tenant_id: TenantId::from_string(r.try_get::<String, _>("tenant_id")?),
                slug: r.try_get("slug")?,
                terminated_at: Timestamp(r.try_get("terminated_at")?),
                delete_after: Timestamp(r.try_get("delete_after")?),
                shred_after: Timestamp(r.try_get("shred_after")?),
                deleted_at: crate::opt_ts(r, "deleted_at")?,
                deletion: r.try_get("deletion")?,
                shredded_at: crate::opt_ts(r, "shredded_at")?,
                certificate: r.try_get("certificate")?,
            })
        })
        .collect()
}

pub async fn mark_deleted(
    tx: &mut Tx,
    tenant: &TenantId,
    now: Timestamp,
    deletion: &str,
) -> Result<()> {
    tx.system_only()?;
    sqlx::query("UPDATE tenant_lifecycle SET deleted_at = $1, deletion = $2 WHERE tenant_id = $3")
        .bind(now.0)
        .bind(deletion)
        .bind(tenant.as_str())
        .execute(tx.conn())
        .await?;
    Ok(())
}

pub async fn mark_shredded(
    tx: &mut Tx,
    tenant: &TenantId,
    now: Timestamp,
    certificate: &str,
) -> Result<()> {
    tx.system_only()?;
    sqlx::query(
        "UPDATE tenant_lifecycle SET shredded_at = $1, certificate = $2 WHERE tenant_id = $3",
    )
    .bind(now.0)
    .bind(certificate)
    .bind(tenant.as_str())
    .execute(tx.conn())
    .await?;
    Ok(())
}

pub async fn set_tenant_status(
    tx: &mut Tx,
    tenant: &TenantId,
    status: &str,
    now: Timestamp,
) -> Result<()> {
    tx.check(tenant)?;
    sqlx::query("UPDATE tenants SET status = $1, updated_at = $2 WHERE id = $3")
        .bind(status)
        .bind(now.0)
        .bind(tenant.as_str())
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Destroys the tenant's wrapped data keys; returns the versions destroyed.
pub async fn destroy_keys(tx: &mut Tx, tenant: &TenantId) -> Result<Vec<i64>> {
    tx.check(tenant)?;
    let rows = sqlx::query("SELECT version FROM tenant_keys WHERE tenant_id = $1 ORDER BY version")
        .bind(tenant.as_str())
        .fetch_all(tx.conn())
        .await?;
    let versions = rows
        .iter()
        .map(|r| r.try_get::<i64, _>("version"))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    sqlx::query("DELETE FROM tenant_keys WHERE tenant_id = $1")
        .bind(tenant.as_str())
        .execute(tx.conn())
        .await?;
    Ok(versions)
}

/// Removes a tenant's lifecycle (a termination withdrawn in its grace period), with its
/// export link.
pub async fn remove(tx: &mut Tx, tenant: &TenantId) -> Result<()> {
    tx.system_only()?;
    sqlx::query("DELETE FROM tenant_lifecycle WHERE tenant_id = $1")
        .bind(tenant.as_str())
        .execute(tx.conn())
        .await?;
    Ok(())
}

pub async fn set_export_token(tx: &mut Tx, tenant: &TenantId, hash: &str) -> Result<()> {
    tx.system_only()?;
    sqlx::query("UPDATE tenant_lifecycle SET export_token_hash = $1 WHERE tenant_id = $2")
        .bind(hash)
        .bind(tenant.as_str())
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// The tenant whose export link has this hash.
pub async fn find_by_export_token(tx: &mut Tx, hash: &str) -> Result<Option<TenantId>> {
    tx.system_only()?;
    let row = sqlx::query("SELECT tenant_id FROM tenant_lifecycle WHERE export_token_hash = $1")
        .bind(hash)
        .fetch_optional(tx.conn())
        .await?;
    row.map(|r| Ok(TenantId::from_string(r.try_get::<String, _>("tenant_id")?)))
        .transpose()
}
