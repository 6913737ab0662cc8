//! Custom roles and role grants (IAM-2).

use crate::{found, Result, StoreError, Tx};
use kura_domain::authz::{Action, ActionSet, BuiltinRole, Grant, Scope};
use kura_domain::{FolderId, GrantId, ProjectId, RoleId, TenantId, Timestamp, UserId};
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct CustomRole {
    pub id: RoleId,
    pub name: String,
    pub actions: Vec<Action>,
    pub created_at: Timestamp,
}

/// Which role a grant gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleRef {
    Builtin { role: BuiltinRole },
    Custom { role_id: RoleId, name: String },
}

impl RoleRef {
    /// As audit details name it: `{"kind":"builtin","role":…}` or
    /// `{"kind":"custom","role_id":…,"name":…}`.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            RoleRef::Builtin { role } => {
                serde_json::json!({ "kind": "builtin", "role": role.as_str() })
            }
            RoleRef::Custom { role_id, name } => {
                serde_json::json!({ "kind": "custom", "role_id": role_id.as_str(), "name": name })
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct GrantRow {
    pub id: GrantId,
    pub user_id: UserId,
    pub role: RoleRef,
    pub scope: Scope,
    /// Classification cap of this grant (DATA-3); `None`: no cap.
    pub max_label: Option<String>,
    /// The actions the role currently carries.
    pub actions: ActionSet,
    pub created_at: Timestamp,
}

impl GrantRow {
    /// The grant as `authorize` sees it, its cap ranked by the tenant's label scheme.
    pub fn effective(&self, settings: &kura_domain::tenant::TenantSettings) -> Grant {
        Grant {
            actions: self.actions,
            scope: self.scope.clone(),
            // An unknown cap label ranks as the lowest level: fail closed.
            max_level: self
                .max_label
                .as_deref()
                .map(|l| match settings.label_rank(l) {
                    u8::MAX => 0,
                    r => r,
                }),
        }
    }
}

fn parse_actions(s: &str) -> Result<Vec<Action>> {
    s.split(',')
        .filter(|a| !a.is_empty())
        .map(|a| Action::parse(a).ok_or_else(|| StoreError::Corrupt(format!("action {a}"))))
        .collect()
}

fn role_from_row(r: &AnyRow) -> Result<CustomRole> {
    Ok(CustomRole {
        id: RoleId::from_string(r.try_get::<String, _>("id")?),
        name: r.try_get("name")?,
        actions: parse_actions(&r.try_get::<String, _>("actions")?)?,
        created_at: Timestamp(r.try_get("created_at")?),
    })
}

pub async fn insert_role(tx: &mut Tx, tenant: &TenantId, role: &CustomRole) -> Result<()> {
    tx.check(tenant)?;
    let actions: Vec<&str> = role.actions.iter().map(|a| a.as_str()).collect();
    sqlx::query(
        "INSERT INTO roles (id, tenant_id, name, actions, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(role.id.as_str())
    .bind(tenant.as_str())
    .bind(&role.name)
    .bind(actions.join(","))
    .bind(role.created_at.0)
    .execute(tx.conn())
    .await
    .map_err(|e| StoreError::conflict_on_unique(e, "a role with this name exists"))?;
    Ok(())
}

pub async fn list_roles(tx: &mut Tx, tenant: &TenantId) -> Result<Vec<CustomRole>> {
    tx.check(tenant)?;
    let rows = sqlx::query(
        "SELECT id, name, actions, created_at FROM roles WHERE tenant_id = $1 ORDER BY name",
    )
    .bind(tenant.as_str())
    .fetch_all(tx.conn())
    .await?;
    rows.iter().map(role_from_row).collect()
}

pub async fn get_role(tx: &mut Tx, tenant: &TenantId, id: &RoleId) -> Result<CustomRole> {
    tx.check(tenant)?;
    let row = sqlx::query(
        "SELECT id, name, actions, created_at FROM roles WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant.as_str())
    .bind(id.as_str())
    .fetch_optional(tx.conn())
    .await?
    .ok_or(StoreError::NotFound)?;
    role_from_row(&row)
}

/// Deletes a custom role and every grant of it.
pub async fn delete_role(tx: &mut Tx, tenant: &TenantId, id: &RoleId) -> Result<()> {
    tx.check(tenant)?;
    sqlx::query("DELETE FROM grants WHERE tenant_id = $1 AND role_id = $2")
        .bind(tenant.as_str())
        .bind(id.as_str())
        .execute(tx.conn())
        .await?;
    found(
        sqlx::query("DELETE FROM roles WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(id.as_str())
            .execute(tx.conn())
            .await?
            .rows_affected(),
    )
}

pub struct NewGrant<'a> {
    pub id: &'a GrantId,
    pub user_id: &'a UserId,
    pub role: &'a RoleRef,
    pub scope: &'a Scope,
    pub max_label: Option<&'a str>,
    pub now: Timestamp,
}

pub async fn insert_grant(tx: &mut Tx, tenant: &TenantId, g: NewGrant<'_>) -> Result<()> {
    tx.check(tenant)?;
    let (builtin, role_id) = match g.role {
        RoleRef::Builtin { role } => (Some(role.as_str().to_string()), None),
        RoleRef::Custom { role_id, .. } => (None, Some(role_id.as_str().to_string())),
    };
    sqlx::query(
        "INSERT INTO grants (id, tenant_id, user_id, builtin, role_id, scope_kind, scope_id, created_at, max_label) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(g.id.as_str())
    .bind(tenant.as_str())
    .bind(g.user_id.as_str())
    .bind(builtin)
    .bind(role_id)
    .bind(g.scope.kind())
    .bind(g.scope.id().map(str::to_string))
    .bind(g.now.0)
    .bind(g.max_label.map(str::to_string))
    .execute(tx.conn())
    .await?;
    Ok(())
}

const GRANT_SELECT: &str = "SELECT g.id, g.user_id, g.builtin, g.role_id, g.scope_kind, g.scope_id, g.created_at, g.max_label, r.name AS role_name, r.actions AS role_actions FROM grants g LEFT JOIN roles r ON r.id = g.role_id AND r.tenant_id = g.tenant_id";

fn grant_from_row(r: &AnyRow) -> Result<GrantRow> {
    grant_from_row_prefixed(r, "")
}

/// Reads a grant from columns named `{prefix}id`, …, `{prefix}role_name` (for joins).
pub(crate) fn grant_from_row_prefixed<R: crate::sync_read::RowGet>(
    r: &R,
    p: &str,
) -> Result<GrantRow> {
    let builtin = r.opt_text(p, "builtin")?;
    let (role, actions) = match builtin {
        Some(b) => {
            let role = BuiltinRole::parse(&b)
                .ok_or_else(|| StoreError::Corrupt(format!("builtin role {b}")))?;
            (RoleRef::Builtin { role }, role.actions())
        }
        None => {
            let role_id = r.opt_text(p, "role_id")?;
            let name = r.opt_text(p, "role_name")?;
            let acts = r.opt_text(p, "role_actions")?;
            match (role_id, name, acts) {
                (Some(id), Some(name), Some(acts)) => (
                    RoleRef::Custom {
                        role_id: RoleId::from_string(id),
                        name,
                    },
                    ActionSet::of(&parse_actions(&acts)?),
                ),
                _ => return Err(StoreError::Corrupt("grant without role".into())),
            }
        }
    };
    let kind = r.text(p, "scope_kind")?;
    let sid = r.opt_text(p, "scope_id")?;
    let scope = match (kind.as_str(), sid) {
        ("tenant", None) => Scope::Tenant,
        ("folder", Some(id)) => Scope::Folder(FolderId::from_string(id)),
        ("project", Some(id)) => Scope::Project(ProjectId::from_string(id)),
        _ => return Err(StoreError::Corrupt(format!("grant scope {kind}"))),
    };
    Ok(GrantRow {
        id: GrantId::from_string(r.text(p, "id")?),
        user_id: UserId::from_string(r.text(p, "user_id")?),
        role,
        scope,
        max_label: r.opt_text(p, "max_label")?,
        actions,
        created_at: Timestamp(r.int(p, "created_at")?),
    })
}

pub async fn grants_of_user(
    tx: &mut Tx,
    tenant: &TenantId,
    user: &UserId,
) -> Result<Vec<GrantRow>> {
    tx.check(tenant)?;
    let sql = format!(
        "{GRANT_SELECT} WHERE g.tenant_id = $1 AND g.user_id = $2 ORDER BY g.created_at, g.id"
    );
    let rows = sqlx::query(&sql)
        .bind(tenant.as_str())
        .bind(user.as_str())
        .fetch_all(tx.conn())
        .await?;
    rows.iter().map(grant_from_row).collect()
}

pub async fn grants_of_tenant(tx: &mut Tx, tenant: &TenantId) -> Result<Vec<GrantRow>> {
    tx.check(tenant)?;
    let sql = format!("{GRANT_SELECT} WHERE g.tenant_id = $1 ORDER BY g.created_at, g.id");
    let rows = sqlx::query(&sql)
        .bind(tenant.as_str())
        .fetch_all(tx.conn())
        .await?;
    rows.iter().map(grant_from_row).collect()
}

pub async fn get_grant(tx: &mut Tx, tenant: &TenantId, id: &GrantId) -> Result<GrantRow> {
    tx.check(tenant)?;
    let sql = format!("{GRANT_SELECT} WHERE g.tenant_id = $1 AND g.id = $2");
    let row = sqlx::query(&sql)
        .bind(tenant.as_str())
        .bind(id.as_str())
        .fetch_optional(tx.conn())
        .await?
        .ok_or(StoreError::NotFound)?;
    grant_from_row(&row)
}

pub async fn delete_grant(tx: &mut Tx, tenant: &TenantId, id: &GrantId) -> Result<()> {
    tx.check(tenant)?;
    found(
        sqlx::query("DELETE FROM grants WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(id.as_str())
            .execute(tx.conn())
            .await?
            .rows_affected(),
    )
}

/// Deletes every grant whose scope is this folder or project (when it is deleted).
pub async fn delete_grants_on_scope(tx: &mut Tx, tenant: &TenantId, scope: &Scope) -> Result<()> {
    tx.check(tenant)?;
    sqlx::query("DELETE FROM grants WHERE tenant_id = $1 AND scope_kind = $2 AND scope_id = $3")
        .bind(tenant.as_str())
        .bind(scope.kind())
        .bind(scope.id().map(str::to_string))
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Active users holding a tenant-scope contract-admin grant (the last one cannot be
/// removed, frozen or deleted).
pub async fn count_active_contract_admins(tx: &mut Tx, tenant: &TenantId) -> Result<i64> {
    tx.check(tenant)?;
    Ok(sqlx::query_scalar(
        "SELECT COUNT(DISTINCT g.user_id) FROM grants g JOIN users u ON u.id = g.user_id AND u.tenant_id = g.tenant_id WHERE g.tenant_id = $1 AND g.builtin = 'contract_admin' AND g.scope_kind = 'tenant' AND u.status = 'active'",
    )
    .bind(tenant.as_str())
    .fetch_one(tx.conn())
    .await?)
}
