//! Usage counters per tenant (uploads, downloads) and live storage figures.

use crate::{Result, Tx};
use kura_domain::TenantId;
use serde::Serialize;
use sqlx::Row;

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Usage {
    pub files: i64,
    pub versions: i64,
    /// Plaintext bytes of every stored version (each blob counted once).
    pub bytes_stored: i64,
    pub uploads: i64,
    pub upload_bytes: i64,
    pub downloads: i64,
    pub download_bytes: i64,
}

async fn ensure_row(tx: &mut Tx, tenant: &TenantId) -> Result<()> {
    sqlx::query(
        "INSERT INTO tenant_usage (tenant_id) VALUES ($1) ON CONFLICT (tenant_id) DO NOTHING",
    )
    .bind(tenant.as_str())
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Adds to the counters, inside the transaction of the upload or download it counts.
pub async fn add(
    tx: &mut Tx,
    tenant: &TenantId,
    uploads: i64,
    upload_bytes: i64,
    downloads: i64,
    download_bytes: i64,
) -> Result<()> {
    tx.check(tenant)?;
    ensure_row(tx, tenant).await?;
    sqlx::query(
        "UPDATE tenant_usage SET uploads = uploads + $1, upload_bytes = upload_bytes + $2, downloads = downloads + $3, download_bytes = download_bytes + $4 WHERE tenant_id = $5",
    )
    .bind(uploads)
    .bind(upload_bytes)
    .bind(downloads)
    .bind(download_bytes)
    .bind(tenant.as_str())
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Locks the tenant's usage row until the transaction ends (PostgreSQL; SQLite
/// transactions are serialized already), so that quota checks of concurrent uploads run
/// one after the other.
pub async fn lock(tx: &mut Tx, tenant: &TenantId) -> Result<()> {
    tx.check(tenant)?;
    ensure_row(tx, tenant).await?;
    if tx.backend() == crate::Backend::Postgres {
        sqlx::query("SELECT tenant_id FROM tenant_usage WHERE tenant_id = $1 FOR UPDATE")
            .bind(tenant.as_str())
            .fetch_optional(tx.conn())
            .await?;
    }
    Ok(())
}

/// Plaintext bytes stored by a tenant (all versions, trash included; each blob once).
pub async fn bytes_stored(tx: &mut Tx, tenant: &TenantId) -> Result<i64> {
    tx.check(tenant)?;
    let v: Option<i64> = sqlx::query_scalar(
        "SELECT CAST(SUM(size) AS BIGINT) FROM (SELECT DISTINCT blob_id, size FROM file_versions WHERE tenant_id = $1) b",
    )
    .bind(tenant.as_str())
    .fetch_one(tx.conn())
    .await?;
    Ok(v.unwrap_or(0))
}

pub async fn get(tx: &mut Tx, tenant: &TenantId) -> Result<Usage> {
    tx.check(tenant)?;
    let mut u = Usage {
        bytes_stored: bytes_stored(tx, tenant).await?,
        ..Default::default()
    };
    u.files = sqlx::query_scalar(
        "SELECT COUNT(*) FROM files WHERE tenant_id = $1 AND deleted_at IS NULL",
    )
    .bind(tenant.as_str())
    .fetch_one(tx.conn())
    .await?;
    u.versions = sqlx::query_scalar("SELECT COUNT(*) FROM file_versions WHERE tenant_id = $1")
        .bind(tenant.as_str())
        .fetch_one(tx.conn())
        .await?;
    if let Some(r) = sqlx::query("SELECT uploads, upload_bytes, downloads, download_bytes FROM tenant_usage WHERE tenant_id = $1")
        .bind(tenant.as_str())
        .fetch_optional(tx.conn())
        .await?
    {
        u.uploads = r.try_get("uploads")?;
        u.upload_bytes = r.try_get("upload_bytes")?;
        u.downloads = r.try_get("downloads")?;
        u.download_bytes = r.try_get("download_bytes")?;
    }
    Ok(u)
}

/// Plaintext bytes stored over every tenant (operator metrics; system scope).
pub async fn bytes_stored_total(tx: &mut Tx) -> Result<i64> {
    if tx.scope() != &crate::TxScope::System {
        return Err(crate::StoreError::ScopeViolation);
    }
    let v: Option<i64> = sqlx::query_scalar(
        "SELECT CAST(SUM(size) AS BIGINT) FROM (SELECT DISTINCT tenant_id, blob_id, size FROM file_versions) b",
    )
    .fetch_one(tx.conn())
    .await?;
    Ok(v.unwrap_or(0))
}
