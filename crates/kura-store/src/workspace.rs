//! Folders and projects (DATA-1). Files come with the encrypted storage layer.

use crate::sync_read::RowGet;
use crate::{found, Result, StoreError, Tx};
use kura_domain::{FolderId, ProjectId, TenantId, Timestamp, UserId};

/// Folders nest at most this deep.
pub const MAX_FOLDER_DEPTH: usize = 16;

#[derive(Debug, Clone)]
pub struct Folder {
    pub labels: crate::Labels,
    pub id: FolderId,
    pub parent_id: Option<FolderId>,
    pub name: String,
    pub created_by: Option<UserId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct Project {
    pub labels: crate::Labels,
    pub id: ProjectId,
    pub folder_id: FolderId,
    pub name: String,
    pub created_by: Option<UserId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

pub(crate) fn folder_from_row<R: RowGet>(r: &R) -> Result<Folder> {
    Ok(Folder {
        labels: crate::Labels::from_row(r)?,
        id: FolderId::from_string(r.text("", "id")?),
        parent_id: r.opt_text("", "parent_id")?.map(FolderId::from_string),
        name: r.text("", "name")?,
        created_by: r.opt_text("", "created_by")?.map(UserId::from_string),
        created_at: Timestamp(r.int("", "created_at")?),
        updated_at: Timestamp(r.int("", "updated_at")?),
    })
}

pub(crate) fn project_from_row<R: RowGet>(r: &R) -> Result<Project> {
    Ok(Project {
        labels: crate::Labels::from_row(r)?,
        id: ProjectId::from_string(r.text("", "id")?),
        folder_id: FolderId::from_string(r.text("", "folder_id")?),
        name: r.text("", "name")?,
        created_by: r.opt_text("", "created_by")?.map(UserId::from_string),
        created_at: Timestamp(r.int("", "created_at")?),
        updated_at: Timestamp(r.int("", "updated_at")?),
    })
}

pub async fn insert_folder(tx: &mut Tx, tenant: &TenantId, f: &Folder) -> Result<()> {
    tx.check(tenant)?;
    sqlx::query(
        "INSERT INTO folders (id, tenant_id, parent_id, name, created_by, created_at, updated_at, label, tags, attributes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(f.id.as_str())
    .bind(tenant.as_str())
    .bind(f.parent_id.as_ref().map(|p| p.as_str().to_string()))
    .bind(&f.name)
    .bind(f.created_by.as_ref().map(|u| u.as_str().to_string()))
    .bind(f.created_at.0)
    .bind(f.updated_at.0)
    .bind(f.labels.label.clone())
    .bind(f.labels.tags_json())
    .bind(f.labels.attributes_json())
    .execute(tx.conn())
    .await?;
    Ok(())
}

const FOLDER_COLS: &str =
    "id, parent_id, name, created_by, created_at, updated_at, label, tags, attributes";
const PROJECT_COLS: &str =
    "id, folder_id, name, created_by, created_at, updated_at, label, tags, attributes";

/// One folder by id (through sqlx in [`get_folder`], in place in
/// [`crate::files::file_in_place`]).
pub(crate) static FOLDER_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!("SELECT {FOLDER_COLS} FROM folders WHERE tenant_id = $1 AND id = $2")
});
/// One project by id ([`get_project`], [`crate::files::file_in_place`]).
pub(crate) static PROJECT_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!("SELECT {PROJECT_COLS} FROM projects WHERE tenant_id = $1 AND id = $2")
});

pub async fn get_folder(tx: &mut Tx, tenant: &TenantId, id: &FolderId) -> Result<Folder> {
    tx.check(tenant)?;
    let row = sqlx::query(&FOLDER_SQL)
        .bind(tenant.as_str())
        .bind(id.as_str())
        .fetch_optional(tx.conn())
        .await?
        .ok_or(StoreError::NotFound)?;
    folder_from_row(&row)
}

/// The folder's ancestors and itself, outermost first.
pub async fn folder_path(tx: &mut Tx, tenant: &TenantId, id: &FolderId) -> Result<Vec<FolderId>> {
    let mut path = Vec::new();
    let mut cur = Some(id.clone());
    while let Some(fid) = cur {
        if path.len() > MAX_FOLDER_DEPTH {
            return Err(StoreError::Corrupt(
                "folder nesting too deep or cyclic".into(),
            ));
        }
        let f = get_folder(tx, tenant, &fid).await?;
        path.push(fid);
        cur = f.parent_id;
    }
    path.reverse();
    Ok(path)
}

pub async fn list_folders(tx: &mut Tx, tenant: &TenantId) -> Result<Vec<Folder>> {
    tx.check(tenant)?;
    let sql = format!("SELECT {FOLDER_COLS} FROM folders WHERE tenant_id = $1 ORDER BY name, id");
    let rows = sqlx::query(&sql)
        .bind(tenant.as_str())
        .fetch_all(tx.conn())
        .await?;
    rows.iter().map(folder_from_row).collect()
}

pub async fn update_folder(tx: &mut Tx, tenant: &TenantId, f: &Folder) -> Result<()> {
    tx.check(tenant)?;
    found(
        sqlx::query(
            "UPDATE folders SET parent_id = $1, name = $2, updated_at = $3, label = $6, tags = $7, attributes = $8 WHERE tenant_id = $4 AND id = $5",
        )
        .bind(f.parent_id.as_ref().map(|p| p.as_str().to_string()))
        .bind(&f.name)
        .bind(f.updated_at.0)
        .bind(tenant.as_str())
        .bind(f.id.as_str())
        .bind(f.labels.label.clone())
        .bind(f.labels.tags_json())
        .bind(f.labels.attributes_json())
        .execute(tx.conn())
        .await?
            .rows_affected(),
    )
}

/// Number of sub-folders and projects directly inside a folder.
pub async fn folder_children(tx: &mut Tx, tenant: &TenantId, id: &FolderId) -> Result<i64> {
    tx.check(tenant)?;
    let subs: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM folders WHERE tenant_id = $1 AND parent_id = $2")
            .bind(tenant.as_str())
            .bind(id.as_str())
            .fetch_one(tx.conn())
            .await?;
    let projects: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM projects WHERE tenant_id = $1 AND folder_id = $2")
            .bind(tenant.as_str())
            .bind(id.as_str())
            .fetch_one(tx.conn())
            .await?;
    Ok(subs + projects)
}

pub async fn delete_folder(tx: &mut Tx, tenant: &TenantId, id: &FolderId) -> Result<()> {
    tx.check(tenant)?;
    found(
        sqlx::query("DELETE FROM folders WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(id.as_str())
            .execute(tx.conn())
            .await?
            .rows_affected(),
    )
}

pub async fn insert_project(tx: &mut Tx, tenant: &TenantId, p: &Project) -> Result<()> {
    tx.check(tenant)?;
    sqlx::query(
        "INSERT INTO projects (id, tenant_id, folder_id, name, created_by, created_at, updated_at, label, tags, attributes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(p.id.as_str())
    .bind(tenant.as_str())
    .bind(p.folder_id.as_str())
    .bind(&p.name)
    .bind(p.created_by.as_ref().map(|u| u.as_str().to_string()))
    .bind(p.created_at.0)
    .bind(p.updated_at.0)
    .bind(p.labels.label.clone())
    .bind(p.labels.tags_json())
    .bind(p.labels.attributes_json())
    .execute(tx.conn())
    .await?;
    Ok(())
}

pub async fn get_project(tx: &mut Tx, tenant: &TenantId, id: &ProjectId) -> Result<Project> {
    tx.check(tenant)?;
    let row = sqlx::query(&PROJECT_SQL)
        .bind(tenant.as_str())
        .bind(id.as_str())
        .fetch_optional(tx.conn())
        .await?
        .ok_or(StoreError::NotFound)?;
    project_from_row(&row)
}

pub async fn list_projects(tx: &mut Tx, tenant: &TenantId) -> Result<Vec<Project>> {
    tx.check(tenant)?;
    let sql = format!("SELECT {PROJECT_COLS} FROM projects WHERE tenant_id = $1 ORDER BY name, id");
    let rows = sqlx::query(&sql)
        .bind(tenant.as_str())
        .fetch_all(tx.conn())
        .await?;
    rows.iter().map(project_from_row).collect()
}

pub async fn update_project(tx: &mut Tx, tenant: &TenantId, p: &Project) -> Result<()> {
    tx.check(tenant)?;
    found(
        sqlx::query(
            "UPDATE projects SET folder_id = $1, name = $2, updated_at = $3, label = $6, tags = $7, attributes = $8 WHERE tenant_id = $4 AND id = $5",
        )
        .bind(p.folder_id.as_str())
        .bind(&p.name)
        .bind(p.updated_at.0)
        .bind(tenant.as_str())
        .bind(p.id.as_str())
        .bind(p.labels.label.clone())
        .bind(p.labels.tags_json())
        .bind(p.labels.attributes_json())
        .execute(tx.conn())
        .await?
            .rows_affected(),
    )
}

pub async fn delete_project(tx: &mut Tx, tenant: &TenantId, id: &ProjectId) -> Result<()> {
    tx.check(tenant)?;
    found(
        sqlx::query("DELETE FROM projects WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(id.as_str())
            .execute(tx.conn())
            .await?
            .rows_affected(),
    )
}
