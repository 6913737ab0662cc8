//! Users of a tenant (IAM-1).

use crate::{found, Result, StoreError, Tx};
use kura_domain::user::{UserKind, UserStatus};
use kura_domain::{TenantId, Timestamp, UserId};
use sqlx::any::AnyRow;

#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub email: String,
    pub display_name: String,
    /// The user's console language, if they chose one.
    pub locale: Option<String>,
    pub status: UserStatus,
    pub kind: UserKind,
    pub password_hash: Option<String>,
    pub created_at: Timestamp,
}

const COLS: &str =
    "id, tenant_id, email, display_name, locale, status, kind, password_hash, created_at";

pub(crate) fn from_row(r: &AnyRow) -> Result<User> {
    from_row_prefixed(r, "")
}

/// Reads a user from columns named `{prefix}id`, `{prefix}email`, … (for joins).
pub(crate) fn from_row_prefixed<R: crate::sync_read::RowGet>(r: &R, p: &str) -> Result<User> {
    let status = r.text(p, "status")?;
    Ok(User {
        id: UserId::from_string(r.text(p, "id")?),
        tenant_id: TenantId::from_string(r.text(p, "tenant_id")?),
        email: r.text(p, "email")?,
        display_name: r.text(p, "display_name")?,
        locale: r.opt_text(p, "locale")?,
        status: UserStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("user status {status}")))?,
        kind: {
            let kind = r.text(p, "kind")?;
            UserKind::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("user kind {kind}")))?
        },
        password_hash: r.opt_text(p, "password_hash")?,
        created_at: Timestamp(r.int(p, "created_at")?),
    })
}

pub async fn insert(tx: &mut Tx, u: &User) -> Result<()> {
    tx.check(&u.tenant_id)?;
    sqlx::query(
        "INSERT INTO users (id, tenant_id, email, display_name, locale, status, password_hash, created_at, updated_at, kind) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)",
    )
    .bind(u.id.as_str())
    .bind(u.tenant_id.as_str())
    .bind(&u.email)
    .bind(&u.display_name)
    .bind(u.locale.clone())
    .bind(u.status.as_str())
    .bind(u.password_hash.clone())
    .bind(u.created_at.0)
    .bind(u.kind.as_str())
    .execute(tx.conn())
    .await
    .map_err(|e| StoreError::conflict_on_unique(e, "a user with this e-mail exists"))?;
    Ok(())
}

pub async fn get(tx: &mut Tx, tenant: &TenantId, id: &UserId) -> Result<User> {
    tx.check(tenant)?;
    let sql = format!("SELECT {COLS} FROM users WHERE tenant_id = $1 AND id = $2");
    let row = sqlx::query(&sql)
        .bind(tenant.as_str())
        .bind(id.as_str())
        .fetch_optional(tx.conn())
        .await?
        .ok_or(StoreError::NotFound)?;
    from_row(&row)
}

pub async fn find_by_email(tx: &mut Tx, tenant: &TenantId, email: &str) -> Result<Option<User>> {
    tx.check(tenant)?;
    let sql = format!("SELECT {COLS} FROM users WHERE tenant_id = $1 AND email = $2");
    let row = sqlx::query(&sql)
        .bind(tenant.as_str())
        .bind(email)
        .fetch_optional(tx.conn())
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn list(tx: &mut Tx, tenant: &TenantId) -> Result<Vec<User>> {
    tx.check(tenant)?;
    let sql = format!("SELECT {COLS} FROM users WHERE tenant_id = $1 ORDER BY email");
    let rows = sqlx::query(&sql)
        .bind(tenant.as_str())
        .fetch_all(tx.conn())
        .await?;
    rows.iter().map(from_row).collect()
}

/// The tenant's contract admins (whatever their state), by e-mail address.
pub async fn contract_admins(tx: &mut Tx, tenant: &TenantId) -> Result<Vec<User>> {
    tx.check(tenant)?;
    let sql = format!(
        "SELECT {COLS} FROM users u WHERE u.tenant_id = $1 AND EXISTS (SELECT 1 FROM grants g WHERE g.tenant_id = u.tenant_id AND g.user_id = u.id AND g.builtin = 'contract_admin' AND g.scope_kind = 'tenant') ORDER BY email"
    );
    let rows = sqlx::query(&sql)
        .bind(tenant.as_str())
        .fetch_all(tx.conn())
        .await?;
    rows.iter().map(from_row).collect()
}

pub async fn set_status(
    tx: &mut Tx,
    tenant: &TenantId,
    id: &UserId,
    status: UserStatus,
    now: Timestamp,
) -> Result<()> {
    tx.check(tenant)?;
    found(
        sqlx::query(
            "UPDATE users SET status = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4",
        )
        .bind(status.as_str())
        .bind(now.0)
        .bind(tenant.as_str())
        .bind(id.as_str())
        .execute(tx.conn())
        .await?
        .rows_affected(),
    )
}

pub async fn set_password(
    tx: &mut Tx,
    tenant: &TenantId,
    id: &UserId,
    password_hash: &str,
    now: Timestamp,
) -> Result<()> {
    tx.check(tenant)?;
    found(
        sqlx::query(
            "UPDATE users SET password_hash = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4",
        )
        .bind(password_hash)
        .bind(now.0)
        .bind(tenant.as_str())
        .bind(id.as_str())
        .execute(tx.conn())
        .await?
        .rows_affected(),
    )
}

pub async fn set_locale(
    tx: &mut Tx,
    tenant: &TenantId,
    id: &UserId,
    locale: Option<&str>,
    now: Timestamp,
) -> Result<()> {
    tx.check(tenant)?;
    sqlx::query("UPDATE users SET locale = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4")
        .bind(locale.map(str::to_string))
        .bind(now.0)
        .bind(tenant.as_str())
        .bind(id.as_str())
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Deletes a user with their grants, sessions and invitations.
pub async fn delete(tx: &mut Tx, tenant: &TenantId, id: &UserId) -> Result<()> {
    tx.check(tenant)?;
    for sql in [
        "DELETE FROM grants WHERE tenant_id = $1 AND user_id = $2",
        "DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2",
        "DELETE FROM invitations WHERE tenant_id = $1 AND user_id = $2",
    ] {
        sqlx::query(sql)
            .bind(tenant.as_str())
            .bind(id.as_str())
            .execute(tx.conn())
            .await?;
    }
    found(
        sqlx::query("DELETE FROM users WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(id.as_str())
            .execute(tx.conn())
            .await?
            .rows_affected(),
    )
}

pub async fn count(tx: &mut Tx, tenant: &TenantId) -> Result<i64> {
    tx.check(tenant)?;
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE tenant_id = $1")
            .bind(tenant.as_str())
            .fetch_one(tx.conn())
            .await?,
    )
}
