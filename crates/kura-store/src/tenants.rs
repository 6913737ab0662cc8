//! Tenants and their additional contacts (TEN-1, TEN-5).

use crate::{found, parse_json, Result, StoreError, Tx};
use kura_domain::tenant::{TenantSettings, TenantStatus};
use kura_domain::{ContactId, TenantId, Timestamp};
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    pub status: TenantStatus,
    pub settings: TenantSettings,
    pub created_at: Timestamp,
}

fn from_row(r: &AnyRow) -> Result<Tenant> {
    from_row_prefixed(r, "")
}

/// Reads a tenant from columns named `{prefix}id`, … (for joins).
pub(crate) fn from_row_prefixed<R: crate::sync_read::RowGet>(r: &R, p: &str) -> Result<Tenant> {
    let status = r.text(p, "status")?;
    Ok(Tenant {
        id: TenantId::from_string(r.text(p, "id")?),
        slug: r.text(p, "slug")?,
        name: r.text(p, "name")?,
        status: TenantStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("tenant status {status}")))?,
        settings: parse_json(&r.text(p, "settings")?, "tenant settings")?,
        created_at: Timestamp(r.int(p, "created_at")?),
    })
}

const COLS: &str = "id, slug, name, status, settings, created_at";

pub async fn insert(tx: &mut Tx, t: &Tenant) -> Result<()> {
    tx.check(&t.id)?;
    let settings =
        serde_json::to_string(&t.settings).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    sqlx::query(
        "INSERT INTO tenants (id, slug, name, status, settings, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(t.id.as_str())
    .bind(&t.slug)
    .bind(&t.name)
    .bind(t.status.as_str())
    .bind(settings)
    .bind(t.created_at.0)
    .execute(tx.conn())
    .await
    .map_err(|e| StoreError::conflict_on_unique(e, "a tenant with this slug exists"))?;
    Ok(())
}

pub async fn get(tx: &mut Tx, id: &TenantId) -> Result<Tenant> {
    tx.check(id)?;
    let sql = format!("SELECT {COLS} FROM tenants WHERE id = $1");
    let row = sqlx::query(&sql)
        .bind(id.as_str())
        .fetch_optional(tx.conn())
        .await?
        .ok_or(StoreError::NotFound)?;
    from_row(&row)
}

/// Operator lookup by slug (system transactions only).
pub async fn find_by_slug(tx: &mut Tx, slug: &str) -> Result<Option<Tenant>> {
    if tx.scope() != &crate::TxScope::System {
        return Err(StoreError::ScopeViolation);
    }
    let sql = format!("SELECT {COLS} FROM tenants WHERE slug = $1");
    let row = sqlx::query(&sql)
        .bind(slug)
        .fetch_optional(tx.conn())
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Every tenant (operator only).
pub async fn list_all(tx: &mut Tx) -> Result<Vec<Tenant>> {
    if tx.scope() != &crate::TxScope::System {
        return Err(StoreError::ScopeViolation);
    }
    let sql = format!("SELECT {COLS} FROM tenants ORDER BY slug");
    let rows = sqlx::query(&sql).fetch_all(tx.conn()).await?;
    rows.iter().map(from_row).collect()
}

pub async fn update_settings(
    tx: &mut Tx,
    id: &TenantId,
    settings: &TenantSettings,
    now: Timestamp,
) -> Result<()> {
    tx.check(id)?;
    let settings =
        serde_json::to_string(settings).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    found(
        sqlx::query("UPDATE tenants SET settings = $1, updated_at = $2 WHERE id = $3")
            .bind(settings)
            .bind(now.0)
            .bind(id.as_str())
            .execute(tx.conn())
            .await?
            .rows_affected(),
    )
}

#[derive(Debug, Clone)]
pub struct Contact {
    pub id: ContactId,
    pub name: String,
    pub email: String,
    /// What the contact is for, e.g. `security`, `billing`, `notices`.
    pub purpose: String,
    pub created_at: Timestamp,
}

pub async fn insert_contact(tx: &mut Tx, tenant: &TenantId, c: &Contact) -> Result<()> {
    tx.check(tenant)?;
    sqlx::query(
        "INSERT INTO tenant_contacts (id, tenant_id, name, email, purpose, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(c.id.as_str())
    .bind(tenant.as_str())
    .bind(&c.name)
    .bind(&c.email)
    .bind(&c.purpose)
    .bind(c.created_at.0)
    .execute(tx.conn())
    .await?;
    Ok(())
}

pub async fn list_contacts(tx: &mut Tx, tenant: &TenantId) -> Result<Vec<Contact>> {
    tx.check(tenant)?;
    let rows = sqlx::query(
        "SELECT id, name, email, purpose, created_at FROM tenant_contacts WHERE tenant_id = $1 ORDER BY created_at, id",
    )
    .bind(tenant.as_str())
    .fetch_all(tx.conn())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Contact {
                id: ContactId::from_string(r.try_get::<String, _>("id")?),
                name: r.try_get("name")?,
                email: r.try_get("email")?,
                purpose: r.try_get("purpose")?,
                created_at: Timestamp(r.try_get("created_at")?),
            })
        })
        .collect()
}

pub async fn delete_contact(tx: &mut Tx, tenant: &TenantId, id: &ContactId) -> Result<()> {
    tx.check(tenant)?;
    found(
        sqlx::query("DELETE FROM tenant_contacts WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(id.as_str())
            .execute(tx.conn())
            .await?
            .rows_affected(),
    )
}
