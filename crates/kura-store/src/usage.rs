//! Usage counters per tenant (uploads, downloads) and live storage figures.

use crate::{Result, Tx};
use kura_domain::TenantId;
use sqlx::Row;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
    // One statement: the row is created on first use.
    sqlx::query(
        "INSERT INTO tenant_usage (tenant_id, uploads, upload_bytes, downloads, download_bytes) VALUES ($5, $1, $2, $3, $4) ON CONFLICT (tenant_id) DO UPDATE SET uploads = tenant_usage.uploads + $1, upload_bytes = tenant_usage.upload_bytes + $2, downloads = tenant_usage.downloads + $3, download_bytes = tenant_usage.download_bytes + $4",
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

/// [`add`] inside a plain SQLite write transaction ([`crate::Store::in_place_write`]).
pub(crate) fn add_in_place(
    tx: &rusqlite::Transaction<'_>,
    tenant: &TenantId,
    d: &Delta,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO tenant_usage (tenant_id, uploads, upload_bytes, downloads, download_bytes) VALUES (?5, ?1, ?2, ?3, ?4) ON CONFLICT (tenant_id) DO UPDATE SET uploads = tenant_usage.uploads + ?1, upload_bytes = tenant_usage.upload_bytes + ?2, downloads = tenant_usage.downloads + ?3, download_bytes = tenant_usage.download_bytes + ?4",
    )
    .and_then(|mut st| {
        st.execute((
            d.uploads,
            d.upload_bytes,
            d.downloads,
            d.download_bytes,
            tenant.as_str(),
        ))
    })
    .map_err(crate::writer::write_error)?;
    Ok(())
}

/// Counts to add to a tenant's usage figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delta {
    pub uploads: i64,
    pub upload_bytes: i64,
    pub downloads: i64,
    pub download_bytes: i64,
}

impl Delta {
    /// One download of `bytes`.
    pub fn download(bytes: i64) -> Self {
        Delta {
            downloads: 1,
            download_bytes: bytes,
            ..Delta::default()
        }
    }

    pub fn is_zero(&self) -> bool {
        *self == Delta::default()
    }
}

impl std::ops::AddAssign for Delta {
    fn add_assign(&mut self, o: Delta) {
        self.uploads += o.uploads;
        self.upload_bytes += o.upload_bytes;
        self.downloads += o.downloads;
        self.download_bytes += o.download_bytes;
    }
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

/// One tenant's figures for one day (OPS-4): counts of what happened that day, and the
/// stock at the time it was computed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Daily {
    /// `YYYY-MM-DD` in the tenant's time zone.
    pub day: String,
    pub logins: i64,
    pub active_users: i64,
    pub uploads: i64,
    pub upload_bytes: i64,
    pub downloads: i64,
    pub download_bytes: i64,
    pub folders: i64,
    pub projects: i64,
    pub files: i64,
    pub bytes_stored: i64,
}

const DAILY_COLS: &str = "day, logins, active_users, uploads, upload_bytes, downloads, download_bytes, folders, projects, files, bytes_stored";

/// Writes (or rewrites) a day's figures.
pub async fn put_daily(tx: &mut Tx, tenant: &TenantId, d: &Daily, now: i64) -> Result<()> {
    tx.check(tenant)?;
    sqlx::query(&format!(
        "INSERT INTO usage_daily (tenant_id, {DAILY_COLS}, computed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         ON CONFLICT (tenant_id, day) DO UPDATE SET logins = excluded.logins, active_users = excluded.active_users, \
         uploads = excluded.uploads, upload_bytes = excluded.upload_bytes, downloads = excluded.downloads, \
         download_bytes = excluded.download_bytes, folders = excluded.folders, projects = excluded.projects, \
         files = excluded.files, bytes_stored = excluded.bytes_stored, computed_at = excluded.computed_at"
    ))
    .bind(tenant.as_str())
    .bind(&d.day)
    .bind(d.logins)
    .bind(d.active_users)
    .bind(d.uploads)
    .bind(d.upload_bytes)
    .bind(d.downloads)
    .bind(d.download_bytes)
    .bind(d.folders)
    .bind(d.projects)
    .bind(d.files)
    .bind(d.bytes_stored)
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Days `from..=to` (`YYYY-MM-DD`) that have figures, oldest first.
pub async fn daily_range(
    tx: &mut Tx,
    tenant: &TenantId,
    from: &str,
    to: &str,
) -> Result<Vec<Daily>> {
    tx.check(tenant)?;
    let rows = sqlx::query(&format!(
        "SELECT {DAILY_COLS} FROM usage_daily WHERE tenant_id = $1 AND day >= $2 AND day <= $3 ORDER BY day"
    ))
    .bind(tenant.as_str())
    .bind(from)
    .bind(to)
    .fetch_all(tx.conn())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Daily {
                day: r.try_get("day")?,
                logins: r.try_get("logins")?,
                active_users: r.try_get("active_users")?,
                uploads: r.try_get("uploads")?,
                upload_bytes: r.try_get("upload_bytes")?,
                downloads: r.try_get("downloads")?,
                download_bytes: r.try_get("download_bytes")?,
                folders: r.try_get("folders")?,
                projects: r.try_get("projects")?,
                files: r.try_get("files")?,
                bytes_stored: r.try_get("bytes_stored")?,
            })
        })
        .collect()
}

/// The tenant's folders, projects and live files now.
pub async fn stock(tx: &mut Tx, tenant: &TenantId) -> Result<(i64, i64, i64)> {
    tx.check(tenant)?;
    let count = |table: &'static str| format!("SELECT COUNT(*) FROM {table} WHERE tenant_id = $1");
    let folders: i64 = sqlx::query_scalar(&count("folders"))
        .bind(tenant.as_str())
        .fetch_one(tx.conn())
        .await?;
    let projects: i64 = sqlx::query_scalar(&count("projects"))
        .bind(tenant.as_str())
        .fetch_one(tx.conn())
        .await?;
    let files: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM files WHERE tenant_id = $1 AND deleted_at IS NULL",
    )
    .bind(tenant.as_str())
    .fetch_one(tx.conn())
    .await?;
    Ok((folders, projects, files))
}

/// Distinct signed-in users with requests in `[from, to)` (from the access log).
pub async fn active_users(tx: &mut Tx, tenant: &TenantId, from: i64, to: i64) -> Result<i64> {
    tx.check(tenant)?;
    Ok(sqlx::query_scalar(
        "SELECT COUNT(DISTINCT user_id) FROM access_log WHERE tenant_id = $1 AND at >= $2 AND at < $3 AND user_id IS NOT NULL",
    )
    .bind(tenant.as_str())
    .bind(from)
    .bind(to)
    .fetch_one(tx.conn())
    .await?)
}
