//! Backups (OPS-1, OPS-2): a tenant's rows read generically for a snapshot, and the record
//! of each backup generation.

use crate::{Result, StoreError, Tx};
use kura_domain::{TenantId, Timestamp};
use sqlx::{Column, Row};

/// The tables a tenant snapshot holds, in restore order (parents first), with the column
/// naming the tenant. Sessions, log-in challenges, ceremonies and the mail queue are
/// transient and not backed up; the wrapped data keys go to each generation's vault.
pub const TENANT_TABLES: &[(&str, &str)] = &[
    ("tenants", "id"),
    ("tenant_contacts", "tenant_id"),
    ("users", "tenant_id"),
    ("roles", "tenant_id"),
    ("grants", "tenant_id"),
    ("folders", "tenant_id"),
    ("projects", "tenant_id"),
    ("files", "tenant_id"),
    ("file_versions", "tenant_id"),
    ("tenant_usage", "tenant_id"),
    ("user_totp", "tenant_id"),
    ("recovery_codes", "tenant_id"),
    ("api_tokens", "tenant_id"),
    ("passkeys", "tenant_id"),
    ("invitations", "tenant_id"),
    ("audit_heads", "tenant_id"),
    ("audit_events", "tenant_id"),
    ("audit_checkpoints", "tenant_id"),
    ("access_log", "tenant_id"),
    ("usage_daily", "tenant_id"),
];

fn cell(r: &sqlx::any::AnyRow, i: usize) -> serde_json::Value {
    if let Ok(v) = r.try_get::<Option<i64>, _>(i) {
        return v
            .map(serde_json::Value::from)
            .unwrap_or(serde_json::Value::Null);
    }
    if let Ok(v) = r.try_get::<Option<String>, _>(i) {
        return v
            .map(serde_json::Value::from)
            .unwrap_or(serde_json::Value::Null);
    }
    if let Ok(v) = r.try_get::<Option<f64>, _>(i) {
        return v
            .map(serde_json::Value::from)
            .unwrap_or(serde_json::Value::Null);
    }
    if let Ok(Some(v)) = r.try_get::<Option<bool>, _>(i) {
        return serde_json::Value::from(v);
    }
    serde_json::Value::Null
}

fn row_map(r: &sqlx::any::AnyRow) -> serde_json::Map<String, serde_json::Value> {
    r.columns()
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name().to_string(), cell(r, i)))
        .collect()
}

/// Every row of `table` belonging to `tenant`, as column → value maps.
pub async fn dump_table(
    tx: &mut Tx,
    tenant: &TenantId,
    table: &str,
) -> Result<Vec<serde_json::Map<String, serde_json::Value>>> {
    use futures_util::TryStreamExt;
    stream_table(tx, tenant, table)?.try_collect().await
}

/// The tenant's rows of `table` one by one, from a cursor — the table is never held in
/// memory whole (backups).
pub fn stream_table<'a>(
    tx: &'a mut Tx,
    tenant: &TenantId,
    table: &str,
) -> Result<futures_util::stream::BoxStream<'a, Result<serde_json::Map<String, serde_json::Value>>>>
{
    use futures_util::StreamExt;
    tx.check(tenant)?;
    static SQL: std::sync::OnceLock<Vec<(&'static str, String)>> = std::sync::OnceLock::new();
    let sql = SQL.get_or_init(|| {
        TENANT_TABLES
            .iter()
            .map(|(t, col)| (*t, format!("SELECT * FROM {t} WHERE {col} = $1")))
            .collect()
    });
    let Some((_, sql)) = sql.iter().find(|(t, _)| *t == table) else {
        return Err(StoreError::Corrupt(format!(
            "{table} is not a tenant table"
        )));
    };
    Ok(sqlx::query(sql.as_str())
        .bind(tenant.as_str().to_string())
        .fetch(tx.conn())
        .map(|r| r.map(|r| row_map(&r)).map_err(StoreError::from))
        .boxed())
}

/// One backup generation as recorded.
#[derive(Debug, Clone)]
pub struct Generation {
    pub id: String,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// `running`, `ok`, `failed`, `expired`.
    pub status: String,
    pub tenants: i64,
    pub rows_saved: i64,
    pub blobs: i64,
    pub blobs_copied: i64,
    pub bytes: i64,
    pub verified_at: Option<Timestamp>,
    /// `ok` or `failed`, from the restore verification after the backup.
    pub verify_status: Option<String>,
    pub verify_detail: Option<String>,
    pub error: Option<String>,
}

pub async fn start(tx: &mut Tx, id: &str, now: Timestamp) -> Result<()> {
    tx.system_only()?;
    sqlx::query(
        "INSERT INTO backup_generations (id, started_at, status) VALUES ($1, $2, 'running')",
    )
    .bind(id)
    .bind(now.0)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Records how a backup ended.
pub async fn finish(tx: &mut Tx, g: &Generation) -> Result<()> {
    tx.system_only()?;
    sqlx::query(
        "UPDATE backup_generations SET finished_at = $1, status = $2, tenants = $3, rows_saved = $4, blobs = $5, blobs_copied = $6, bytes = $7, error = $8 WHERE id = $9",
    )
    .bind(g.finished_at.map(|t| t.0))
    .bind(&g.status)
    .bind(g.tenants)
    .bind(g.rows_saved)
    .bind(g.blobs)
    .bind(g.blobs_copied)
    .bind(g.bytes)
    .bind(g.error.clone())
    .bind(&g.id)
    .execute(tx.conn())
    .await?;
    Ok(())
}

pub async fn record_verification(
    tx: &mut Tx,
    id: &str,
    now: Timestamp,
    ok: bool,
    detail: &str,
) -> Result<()> {
    tx.system_only()?;
    sqlx::query("UPDATE backup_generations SET verified_at = $1, verify_status = $2, verify_detail = $3 WHERE id = $4")
        .bind(now.0)
        .bind(if ok { "ok" } else { "failed" })
        .bind(detail)
        .bind(id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

pub async fn mark_expired(tx: &mut Tx, id: &str, now: Timestamp) -> Result<()> {
    tx.system_only()?;
    sqlx::query("UPDATE backup_generations SET status = 'expired', deleted_at = $1 WHERE id = $2")
        .bind(now.0)
        .bind(id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Generations, newest first (expired ones included).
pub async fn list(tx: &mut Tx) -> Result<Vec<Generation>> {
    tx.system_only()?;
    let rows = sqlx::query(
        "SELECT id, started_at, finished_at, status, tenants, rows_saved, blobs, blobs_copied, bytes, verified_at, verify_status, verify_detail, error FROM backup_generations ORDER BY started_at DESC, id DESC",
    )
    .fetch_all(tx.conn())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Generation {
                id: r.try_get("id")?,
                started_at: Timestamp(r.try_get("started_at")?),
                finished_at: crate::opt_ts(r, "finished_at")?,
                status: r.try_get("status")?,
                tenants: r.try_get("tenants")?,
                rows_saved: r.try_get("rows_saved")?,
                blobs: r.try_get("blobs")?,
                blobs_copied: r.try_get("blobs_copied")?,
                bytes: r.try_get("bytes")?,
                verified_at: crate::opt_ts(r, "verified_at")?,
                verify_status: r.try_get("verify_status")?,
                verify_detail: r.try_get("verify_detail")?,
                error: r.try_get("error")?,
            })
        })
        .collect()
}

/// Every wrapped data key (the vault), for a generation's vault object.
pub async fn dump_vault(tx: &mut Tx) -> Result<Vec<serde_json::Map<String, serde_json::Value>>> {
    tx.system_only()?;
    let rows = sqlx::query("SELECT * FROM tenant_keys")
        .fetch_all(tx.conn())
        .await?;
    Ok(rows.iter().map(row_map).collect())
}

/// Writes one snapshot row back. `tenants` rows are updated in place when present (deleting
/// one would cascade to everything of the tenant, keys included); the access log gets new
/// row ids. NULLs are written as literals (a typed NULL parameter would not fit every
/// column type on PostgreSQL).
pub async fn restore_row(
    tx: &mut Tx,
    tenant: &TenantId,
    table: &str,
    row: &serde_json::Map<String, serde_json::Value>,
) -> Result<()> {
    tx.check(tenant)?;
    if !TENANT_TABLES.iter().any(|(t, _)| *t == table) && table != "tenant_keys" {
        return Err(StoreError::Corrupt(format!("{table} is not restorable")));
    }
    let ident = |c: &str| c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
    let cols: Vec<(&String, &serde_json::Value)> = row
        .iter()
        .filter(|(c, _)| !(table == "access_log" && c.as_str() == "id"))
        .collect();
    if cols.iter().any(|(c, _)| !ident(c)) {
        return Err(StoreError::Corrupt("bad column name in snapshot".into()));
    }
    let mut n = 0;
    let mut values = Vec::new();
    for (_, v) in &cols {
        if v.is_null() {
            values.push("NULL".to_string());
        } else {
            n += 1;
            values.push(format!("${n}"));
        }
    }
    let names: Vec<&str> = cols.iter().map(|(c, _)| c.as_str()).collect();
    let sql = if table == "tenants" {
        let updates: Vec<String> = names
            .iter()
            .filter(|c| **c != "id")
            .map(|c| format!("{c} = excluded.{c}"))
            .collect();
        format!(
            "INSERT INTO tenants ({}) VALUES ({}) ON CONFLICT (id) DO UPDATE SET {}",
            names.join(", "),
            values.join(", "),
            updates.join(", ")
        )
    } else if table == "tenant_keys" {
        format!(
            "INSERT INTO tenant_keys ({}) VALUES ({}) ON CONFLICT (tenant_id, version) DO NOTHING",
            names.join(", "),
            values.join(", ")
        )
    } else {
        format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            names.join(", "),
            values.join(", ")
        )
    };
    let mut q = sqlx::query(&sql);
    for (_, v) in &cols {
        q = match v {
            serde_json::Value::Null => q,
            serde_json::Value::Number(x) if x.is_i64() => q.bind(x.as_i64().unwrap_or_default()),
            serde_json::Value::Number(x) => q.bind(x.as_f64().unwrap_or_default()),
            serde_json::Value::Bool(b) => q.bind(*b),
            serde_json::Value::String(s) => q.bind(s.clone()),
            other => q.bind(other.to_string()),
        };
    }
    q.execute(tx.conn()).await?;
    Ok(())
}

/// Removes a tenant's rows from every snapshot table but `tenants` (children first), and
/// its sessions, before a restore.
pub async fn clear_tenant(tx: &mut Tx, tenant: &TenantId) -> Result<()> {
    clear_tenant_except(tx, tenant, &[]).await
}

/// The tables that are logs — evidence that only grows — rather than data: a tenant restore
/// keeps the live ones (see `Services::restore_backup`).
pub const LOG_TABLES: &[&str] = &[
    "audit_heads",
    "audit_events",
    "audit_checkpoints",
    "access_log",
    "usage_daily",
];

/// Deletes the tenant's rows of every snapshot table but `keep` (and `tenants`), and its
/// sessions.
pub async fn clear_tenant_except(tx: &mut Tx, tenant: &TenantId, keep: &[&str]) -> Result<()> {
    tx.check(tenant)?;
    for (table, col) in TENANT_TABLES.iter().rev() {
        if *table == "tenants" || keep.contains(table) {
            continue;
        }
        sqlx::query(&format!("DELETE FROM {table} WHERE {col} = $1"))
            .bind(tenant.as_str())
            .execute(tx.conn())
            .await?;
    }
    clear_sessions(tx, tenant).await
}

/// Tables whose rows have an `id` (what a restore reports as rolled back or brought back).
pub const ID_TABLES: &[&str] = &[
    "tenant_contacts",
    "users",
    "roles",
    "grants",
    "folders",
    "projects",
    "files",
    "api_tokens",
    "passkeys",
];

/// The ids of the tenant's rows in each of [`ID_TABLES`].
pub async fn row_ids(
    tx: &mut Tx,
    tenant: &TenantId,
) -> Result<std::collections::BTreeMap<String, std::collections::BTreeSet<String>>> {
    tx.check(tenant)?;
    let mut out = std::collections::BTreeMap::new();
    for table in ID_TABLES {
        let rows = sqlx::query(&format!("SELECT id FROM {table} WHERE tenant_id = $1"))
            .bind(tenant.as_str())
            .fetch_all(tx.conn())
            .await?;
        let ids = rows
            .iter()
            .map(|r| r.try_get::<String, _>("id"))
            .collect::<std::result::Result<_, _>>()?;
        out.insert(table.to_string(), ids);
    }
    Ok(out)
}

/// Credentials revoked and users frozen, as the live database has them: a restore never
/// brings either back to life. (api token id, revoked at), frozen user ids.
pub async fn revocations(
    tx: &mut Tx,
    tenant: &TenantId,
) -> Result<(Vec<(String, i64)>, Vec<String>)> {
    tx.check(tenant)?;
    let tokens = sqlx::query(
        "SELECT id, revoked_at FROM api_tokens WHERE tenant_id = $1 AND revoked_at IS NOT NULL",
    )
    .bind(tenant.as_str())
    .fetch_all(tx.conn())
    .await?
    .iter()
    .map(|r| {
        Ok((
            r.try_get::<String, _>("id")?,
            r.try_get::<i64, _>("revoked_at")?,
        ))
    })
    .collect::<Result<Vec<_>>>()?;
    let frozen = sqlx::query("SELECT id FROM users WHERE tenant_id = $1 AND status = 'frozen'")
        .bind(tenant.as_str())
        .fetch_all(tx.conn())
        .await?
        .iter()
        .map(|r| Ok(r.try_get::<String, _>("id")?))
        .collect::<Result<Vec<_>>>()?;
    Ok((tokens, frozen))
}

/// Applies [`revocations`] again after a restore: those tokens stay revoked, those users
/// frozen. Returns how many rows changed.
pub async fn reapply_revocations(
    tx: &mut Tx,
    tenant: &TenantId,
    tokens: &[(String, i64)],
    frozen: &[String],
) -> Result<u64> {
    tx.check(tenant)?;
    let mut n = 0;
    for (id, at) in tokens {
        n += sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE tenant_id = $2 AND id = $3 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(tenant.as_str())
        .bind(id)
        .execute(tx.conn())
        .await?
        .rows_affected();
    }
    for id in frozen {
        n += sqlx::query(
            "UPDATE users SET status = 'frozen' WHERE tenant_id = $1 AND id = $2 AND status <> 'frozen'",
        )
        .bind(tenant.as_str())
        .bind(id)
        .execute(tx.conn())
        .await?
        .rows_affected();
    }
    Ok(n)
}

/// Deletes the tenant's rows of the [`LOG_TABLES`] (a restore taking the snapshot's logs
/// because the live ones are behind them).
pub async fn clear_logs(tx: &mut Tx, tenant: &TenantId) -> Result<()> {
    tx.check(tenant)?;
    for table in LOG_TABLES.iter().rev() {
        sqlx::query(&format!("DELETE FROM {table} WHERE tenant_id = $1"))
            .bind(tenant.as_str())
            .execute(tx.conn())
            .await?;
    }
    Ok(())
}

/// Removes the tenant's mail still in the outbox (a deleted tenant keeps nothing).
pub async fn clear_outbox(tx: &mut Tx, tenant: &TenantId) -> Result<u64> {
    tx.check(tenant)?;
    Ok(sqlx::query("DELETE FROM mail_outbox WHERE tenant_id = $1")
        .bind(tenant.as_str())
        .execute(tx.conn())
        .await?
        .rows_affected())
}

/// How many rows of each snapshot table belong to `tenant`.
pub async fn count_rows(
    tx: &mut Tx,
    tenant: &TenantId,
) -> Result<std::collections::BTreeMap<String, i64>> {
    tx.check(tenant)?;
    let mut out = std::collections::BTreeMap::new();
    for (table, col) in TENANT_TABLES {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE {col} = $1"))
            .bind(tenant.as_str())
            .fetch_one(tx.conn())
            .await?;
        out.insert(table.to_string(), n);
    }
    Ok(out)
}

/// The blobs a tenant's file versions reference.
pub async fn tenant_blobs(tx: &mut Tx, tenant: &TenantId) -> Result<Vec<String>> {
    tx.check(tenant)?;
    let rows = sqlx::query("SELECT DISTINCT blob_id FROM file_versions WHERE tenant_id = $1")
        .bind(tenant.as_str())
        .fetch_all(tx.conn())
        .await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<String, _>("blob_id")?))
        .collect()
}

/// Ends every session of a tenant (termination).
pub async fn clear_sessions(tx: &mut Tx, tenant: &TenantId) -> Result<()> {
    tx.check(tenant)?;
    for transient in ["sessions", "login_challenges", "webauthn_ceremonies"] {
        sqlx::query(&format!("DELETE FROM {transient} WHERE tenant_id = $1"))
            .bind(tenant.as_str())
            .execute(tx.conn())
            .await?;
    }
    Ok(())
}
