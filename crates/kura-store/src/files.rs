//! Files and their versions (DATA-1). A file's content is an immutable encrypted blob per
//! version.

use crate::sync_read::RowGet;
use crate::{found, Result, StoreError, Tx};
use kura_domain::{ProjectId, TenantId, Timestamp, UserId};
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct File {
    pub labels: crate::Labels,
    pub id: String,
    pub project_id: ProjectId,
    pub name: String,
    pub current_version: i64,
    /// Set while the file is in the trash.
    pub deleted_at: Option<Timestamp>,
    pub created_by: Option<UserId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct Version {
    pub file_id: String,
    pub version: i64,
    pub blob_id: String,
    pub key_version: i64,
    pub size: i64,
    pub sha256: String,
    pub content_type: String,
    pub created_by: Option<UserId>,
    pub created_at: Timestamp,
}

fn file_from_row<R: RowGet>(r: &R) -> Result<File> {
    Ok(File {
        labels: crate::Labels::from_row(r)?,
        id: r.text("", "id")?,
        project_id: ProjectId::from_string(r.text("", "project_id")?),
        name: r.text("", "name")?,
        current_version: r.int("", "current_version")?,
        deleted_at: r.opt_int("", "deleted_at")?.map(Timestamp),
        created_by: r.opt_text("", "created_by")?.map(UserId::from_string),
        created_at: Timestamp(r.int("", "created_at")?),
        updated_at: Timestamp(r.int("", "updated_at")?),
    })
}

fn version_from_row<R: RowGet>(r: &R) -> Result<Version> {
    Ok(Version {
        file_id: r.text("", "file_id")?,
        version: r.int("", "version")?,
        blob_id: r.text("", "blob_id")?,
        key_version: r.int("", "key_version")?,
        size: r.int("", "size")?,
        sha256: r.text("", "sha256")?,
        content_type: r.text("", "content_type")?,
        created_by: r.opt_text("", "created_by")?.map(UserId::from_string),
        created_at: Timestamp(r.int("", "created_at")?),
    })
}

const FILE_COLS: &str = "id, project_id, name, current_version, created_by, created_at, updated_at, label, tags, attributes, deleted_at";
const VERSION_COLS: &str =
    "file_id, version, blob_id, key_version, size, sha256, content_type, created_by, created_at";

/// One file by id (through sqlx in [`get`], in place in [`file_in_place`]).
static FILE_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!("SELECT {FILE_COLS} FROM files WHERE tenant_id = $1 AND id = $2")
});
/// One version of a file ([`get_version`], [`file_in_place`]).
static VERSION_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!("SELECT {VERSION_COLS} FROM file_versions WHERE tenant_id = $1 AND file_id = $2 AND version = $3")
});

pub async fn get(tx: &mut Tx, tenant: &TenantId, id: &str) -> Result<File> {
    tx.check(tenant)?;
    let row = sqlx::query(&FILE_SQL)
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(tx.conn())
        .await?;
    file_from_row(&row.ok_or(StoreError::NotFound)?)
}

pub async fn find_by_name(
    tx: &mut Tx,
    tenant: &TenantId,
    project: &ProjectId,
    name: &str,
) -> Result<Option<File>> {
    tx.check(tenant)?;
    let sql = format!(
        "SELECT {FILE_COLS} FROM files WHERE tenant_id = $1 AND project_id = $2 AND name = $3"
    );
    let row = sqlx::query(&sql)
        .bind(tenant.as_str())
        .bind(project.as_str())
        .bind(name)
        .fetch_optional(tx.conn())
        .await?;
    row.as_ref().map(file_from_row).transpose()
}

/// Files of a project: live ones, or (with `trash`) the ones in the trash.
pub async fn list_in_project(
    tx: &mut Tx,
    tenant: &TenantId,
    project: &ProjectId,
    trash: bool,
) -> Result<Vec<File>> {
    tx.check(tenant)?;
    let cond = if trash { "IS NOT NULL" } else { "IS NULL" };
    let sql = format!(
        "SELECT {FILE_COLS} FROM files WHERE tenant_id = $1 AND project_id = $2 AND deleted_at {cond} ORDER BY name, id"
    );
    let rows = sqlx::query(&sql)
        .bind(tenant.as_str())
        .bind(project.as_str())
        .fetch_all(tx.conn())
        .await?;
    rows.iter().map(file_from_row).collect()
}

pub async fn count_in_project(tx: &mut Tx, tenant: &TenantId, project: &ProjectId) -> Result<i64> {
    tx.check(tenant)?;
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM files WHERE tenant_id = $1 AND project_id = $2")
            .bind(tenant.as_str())
            .bind(project.as_str())
            .fetch_one(tx.conn())
            .await?,
    )
}

pub async fn insert(tx: &mut Tx, tenant: &TenantId, f: &File) -> Result<()> {
    tx.check(tenant)?;
    sqlx::query(
        "INSERT INTO files (id, tenant_id, project_id, name, current_version, created_by, created_at, updated_at, label, tags, attributes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&f.id)
    .bind(tenant.as_str())
    .bind(f.project_id.as_str())
    .bind(&f.name)
    .bind(f.current_version)
    .bind(f.created_by.as_ref().map(|u| u.as_str().to_string()))
    .bind(f.created_at.0)
    .bind(f.updated_at.0)
    .bind(f.labels.label.clone())
    .bind(f.labels.tags_json())
    .bind(f.labels.attributes_json())
    .execute(tx.conn())
    .await
    .map_err(|e| StoreError::conflict_on_unique(e, "a file with this name exists in the project"))?;
    Ok(())
}

/// Moves a file to the trash (`Some(now)`) or back out of it (`None`).
pub async fn set_deleted(
    tx: &mut Tx,
    tenant: &TenantId,
    id: &str,
    at: Option<Timestamp>,
) -> Result<()> {
    tx.check(tenant)?;
    found(
        sqlx::query("UPDATE files SET deleted_at = $1 WHERE tenant_id = $2 AND id = $3")
            .bind(at.map(|t| t.0))
            .bind(tenant.as_str())
            .bind(id)
            .execute(tx.conn())
            .await?
            .rows_affected(),
    )
}

/// Renames a file and/or moves it to another project of the tenant.
pub async fn rename_move(
    tx: &mut Tx,
    tenant: &TenantId,
    id: &str,
    project: &ProjectId,
    name: &str,
    now: Timestamp,
) -> Result<()> {
    tx.check(tenant)?;
    found(
        sqlx::query("UPDATE files SET project_id = $1, name = $2, updated_at = $3 WHERE tenant_id = $4 AND id = $5")
            .bind(project.as_str())
            .bind(name)
            .bind(now.0)
            .bind(tenant.as_str())
            .bind(id)
            .execute(tx.conn())
            .await
            .map_err(|e| {
                StoreError::conflict_on_unique(e, "a file with this name exists in the project")
            })?
            .rows_affected(),
    )
}

/// Changes a file's label, tags and attributes.
pub async fn set_labels(
    tx: &mut Tx,
    tenant: &TenantId,
    id: &str,
    l: &crate::Labels,
    now: Timestamp,
) -> Result<()> {
    tx.check(tenant)?;
    found(
        sqlx::query("UPDATE files SET label = $1, tags = $2, attributes = $3, updated_at = $4 WHERE tenant_id = $5 AND id = $6")
            .bind(l.label.clone())
            .bind(l.tags_json())
            .bind(l.attributes_json())
            .bind(now.0)
            .bind(tenant.as_str())
            .bind(id)
            .execute(tx.conn())
            .await?
            .rows_affected(),
    )
}

/// Points a file at a new current version.
pub async fn set_current(
    tx: &mut Tx,
    tenant: &TenantId,
    id: &str,
    version: i64,
    now: Timestamp,
) -> Result<()> {
    tx.check(tenant)?;
    sqlx::query(
        "UPDATE files SET current_version = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4",
    )
    .bind(version)
    .bind(now.0)
    .bind(tenant.as_str())
    .bind(id)
    .execute(tx.conn())
    .await?;
    Ok(())
}

pub async fn insert_version(tx: &mut Tx, tenant: &TenantId, v: &Version) -> Result<()> {
    tx.check(tenant)?;
    sqlx::query(
        "INSERT INTO file_versions (tenant_id, file_id, version, blob_id, key_version, size, sha256, content_type, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(tenant.as_str())
    .bind(&v.file_id)
    .bind(v.version)
    .bind(&v.blob_id)
    .bind(v.key_version)
    .bind(v.size)
    .bind(&v.sha256)
    .bind(&v.content_type)
    .bind(v.created_by.as_ref().map(|u| u.as_str().to_string()))
    .bind(v.created_at.0)
    .execute(tx.conn())
    .await
    .map_err(|e| StoreError::conflict_on_unique(e, "version exists"))?;
    Ok(())
}

/// The highest version number of a file (for the next upload), locked on PostgreSQL.
pub async fn max_version(tx: &mut Tx, tenant: &TenantId, file_id: &str) -> Result<i64> {
    tx.check(tenant)?;
    let v: Option<i64> = sqlx::query_scalar(
        "SELECT MAX(version) FROM file_versions WHERE tenant_id = $1 AND file_id = $2",
    )
    .bind(tenant.as_str())
    .bind(file_id)
    .fetch_one(tx.conn())
    .await?;
    Ok(v.unwrap_or(0))
}

pub async fn get_version(
    tx: &mut Tx,
    tenant: &TenantId,
    file_id: &str,
    version: i64,
) -> Result<Version> {
    tx.check(tenant)?;
    let row = sqlx::query(&VERSION_SQL)
        .bind(tenant.as_str())
        .bind(file_id)
        .bind(version)
        .fetch_optional(tx.conn())
        .await?;
    version_from_row(&row.ok_or(StoreError::NotFound)?)
}

pub async fn list_versions(tx: &mut Tx, tenant: &TenantId, file_id: &str) -> Result<Vec<Version>> {
    tx.check(tenant)?;
    let sql = format!("SELECT {VERSION_COLS} FROM file_versions WHERE tenant_id = $1 AND file_id = $2 ORDER BY version DESC");
    let rows = sqlx::query(&sql)
        .bind(tenant.as_str())
        .bind(file_id)
        .fetch_all(tx.conn())
        .await?;
    rows.iter().map(version_from_row).collect()
}

/// Deletes a file and its versions; returns the blob ids to remove after commit.
pub async fn delete(tx: &mut Tx, tenant: &TenantId, id: &str) -> Result<Vec<String>> {
    let mut blobs: Vec<String> = list_versions(tx, tenant, id)
        .await?
        .into_iter()
        .map(|v| v.blob_id)
        .collect();
    // A restored old version shares its blob with the version it restored.
    blobs.sort();
    blobs.dedup();
    sqlx::query("DELETE FROM file_versions WHERE tenant_id = $1 AND file_id = $2")
        .bind(tenant.as_str())
        .bind(id)
        .execute(tx.conn())
        .await?;
    let n = sqlx::query("DELETE FROM files WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.as_str())
        .bind(id)
        .execute(tx.conn())
        .await?
        .rows_affected();
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(blobs)
}

/// Every blob id referenced by any file version of a tenant (system scope: the sweep).
pub async fn referenced_blobs(tx: &mut Tx, tenant: &TenantId) -> Result<Vec<String>> {
    tx.check(tenant)?;
    let rows = sqlx::query("SELECT DISTINCT blob_id FROM file_versions WHERE tenant_id = $1")
        .bind(tenant.as_str())
        .fetch_all(tx.conn())
        .await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<String, _>("blob_id")?))
        .collect()
}

/// Distinct (blob id, key version, size) of a tenant's versions under keys older than
/// `below_version` (key rotation).
pub async fn blobs_below_key(
    tx: &mut Tx,
    tenant: &TenantId,
    below_version: i64,
) -> Result<Vec<(String, i64, i64)>> {
    tx.check(tenant)?;
    let rows = sqlx::query(
        "SELECT DISTINCT blob_id, key_version, size FROM file_versions WHERE tenant_id = $1 AND key_version < $2",
    )
    .bind(tenant.as_str())
    .bind(below_version)
    .fetch_all(tx.conn())
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("blob_id")?,
                r.try_get("key_version")?,
                r.try_get("size")?,
            ))
        })
        .collect()
}

/// Points every version stored in `old_blob` at `new_blob` under `key_version`.
pub async fn replace_blob(
    tx: &mut Tx,
    tenant: &TenantId,
    old_blob: &str,
    new_blob: &str,
    key_version: i64,
) -> Result<u64> {
    tx.check(tenant)?;
    Ok(sqlx::query("UPDATE file_versions SET blob_id = $1, key_version = $2 WHERE tenant_id = $3 AND blob_id = $4")
        .bind(new_blob)
        .bind(key_version)
        .bind(tenant.as_str())
        .bind(old_blob)
        .execute(tx.conn())
        .await?
        .rows_affected())
}

/// How a file listing is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileSort {
    Name,
    Updated,
}

/// A listing or search of live files.
#[derive(Debug, Clone)]
pub struct FileQuery<'a> {
    /// One project, or the whole tenant.
    pub project: Option<&'a ProjectId>,
    /// Case-insensitive substring of the name.
    pub name_contains: Option<&'a str>,
    /// An exact tag.
    pub tag: Option<&'a str>,
    pub sort: FileSort,
    pub descending: bool,
    /// The (sort key, id) of the last item of the previous page.
    pub after: Option<(String, String)>,
    pub limit: i64,
    /// Drive the page from the trigram index (SQLite; see [`name_is_rare`]).
    pub rare_name: bool,
}

/// `%`, `_` and `\` taken literally in a `LIKE ... ESCAPE '\'` pattern.
fn like_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Name matches (all tenants) up to which a search is driven from the trigram index.
const RARE_MATCHES: i64 = 1_000;

/// The FTS5 query for names containing `term`: every trigram of it (at most 16; each one
/// quoted, so nothing in it is query syntax). `None` under three characters, which a
/// trigram index cannot narrow.
fn trigram_query(term: &str) -> Option<String> {
    let chars: Vec<char> = term.chars().collect();
    if chars.len() < 3 {
        return None;
    }
    let mut grams: Vec<String> = chars
        .windows(3)
        .map(|w| w.iter().collect::<String>())
        .collect();
    grams.sort();
    grams.dedup();
    grams.truncate(16);
    Some(
        grams
            .iter()
            .map(|g| format!("\"{}\"", g.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(" AND "),
    )
}

/// Whether a name search should be driven from the trigram index: SQLite, a term of three
/// or more characters, and few matches (a bounded count over all tenants). A common term
/// is better served by walking the tenant's names in order, where a page fills quickly.
/// PostgreSQL's planner makes this choice itself (its pg_trgm index serves the LIKE; at
/// 200 k files it still walks the names — name search there is not flat yet). Asked once
/// per search, not per page.
pub async fn name_is_rare(tx: &mut Tx, term: &str) -> Result<bool> {
    let Some(m) = trigram_query(&term.to_lowercase()) else {
        return Ok(false);
    };
    if tx.backend() != crate::Backend::Sqlite {
        return Ok(false);
    }
    let matches = sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM (SELECT rowid FROM files_name_trigrams WHERE files_name_trigrams MATCH $1 LIMIT $2)",
    )
    .bind(m)
    .bind(RARE_MATCHES + 1)
    .fetch_one(tx.conn())
    .await?;
    Ok(matches <= RARE_MATCHES)
}

/// One page of live files, keyset-paginated: ordered by (sort key, id), ascending or
/// descending, starting after `q.after`; filtered by name and tag in SQL.
pub async fn page_files(tx: &mut Tx, tenant: &TenantId, q: &FileQuery<'_>) -> Result<Vec<File>> {
    tx.check(tenant)?;
    let col = match q.sort {
        FileSort::Name => "name",
        FileSort::Updated => "updated_at",
    };
    let trigrams = q
        .name_contains
        .filter(|_| q.rare_name && tx.backend() == crate::Backend::Sqlite)
        .and_then(|n| trigram_query(&n.to_lowercase()));
    let (cmp, dir) = if q.descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    let mut binds: Vec<String> = vec![tenant.as_str().to_string()];
    // With the trigram index driving, the unary + keeps the planner off the name-ordered
    // indexes, which would walk the whole tenant testing each row against the matches.
    let tenant_col = if trigrams.is_some() {
        "+tenant_id"
    } else {
        "tenant_id"
    };
    let mut sql =
        format!("SELECT {FILE_COLS} FROM files WHERE {tenant_col} = $1 AND deleted_at IS NULL");
    if let Some(p) = q.project {
        binds.push(p.as_str().to_string());
        sql.push_str(&format!(" AND project_id = ${}", binds.len()));
    }
    if let Some(n) = q.name_contains.filter(|n| !n.is_empty()) {
        let lower = n.to_lowercase();
        binds.push(format!("%{}%", like_literal(&lower)));
        sql.push_str(&format!(
            " AND lower(name) LIKE ${} ESCAPE '\\'",
            binds.len()
        ));
        if let Some(m) = trigrams {
            binds.push(m);
            sql.push_str(&format!(
                " AND rowid IN (SELECT rowid FROM files_name_trigrams WHERE files_name_trigrams MATCH ${})",
                binds.len()
            ));
        }
    }
    if let Some(t) = q.tag.filter(|t| !t.is_empty()) {
        // Tags are a JSON array of strings: look for the JSON string itself.
        let json = serde_json::to_string(t).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        binds.push(format!("%{}%", like_literal(&json)));
        sql.push_str(&format!(" AND tags LIKE ${} ESCAPE '\\'", binds.len()));
    }
    if let Some((k, id)) = &q.after {
        binds.push(k.clone());
        binds.push(id.clone());
        // The cursor's sort key is text; an update time is compared as the number it is,
        // so that the (sort key, id) comparison walks the partial indexes of migration 20.
        let k = binds.len() - 1;
        let key = match q.sort {
            FileSort::Name => format!("${k}"),
            FileSort::Updated => format!("CAST(${k} AS BIGINT)"),
        };
        sql.push_str(&format!(" AND ({col}, id) {cmp} ({key}, ${})", binds.len()));
    }
    sql.push_str(&format!(
        " ORDER BY {col} {dir}, id {dir} LIMIT {}",
        q.limit.clamp(1, 1000)
    ));
    let mut query = sqlx::query(&sql);
    for b in binds {
        query = query.bind(b);
    }
    let rows = query.fetch_all(tx.conn()).await?;
    rows.iter().map(file_from_row).collect()
}

/// The cursor value of a file for a sort (see [`page_files`]).
pub fn sort_key(f: &File, sort: FileSort) -> String {
    match sort {
        FileSort::Name => f.name.clone(),
        FileSort::Updated => format!("{:020}", f.updated_at.0),
    }
}

/// Size of the current version of each of `ids` (a page of files), by file id — one
/// query whose cost follows the page, not the project.
pub async fn current_sizes(
    tx: &mut Tx,
    tenant: &TenantId,
    ids: &[&str],
) -> Result<std::collections::HashMap<String, i64>> {
    tx.check(tenant)?;
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let list = match tx.backend() {
        crate::Backend::Sqlite => "SELECT value FROM json_each($2)",
        crate::Backend::Postgres => "SELECT json_array_elements_text($2::json)",
    };
    let sql = format!(
        "SELECT f.id, v.size FROM files f JOIN file_versions v ON v.tenant_id = f.tenant_id AND v.file_id = f.id AND v.version = f.current_version \
         WHERE f.tenant_id = $1 AND f.id IN ({list})"
    );
    let json = serde_json::to_string(ids).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let rows = sqlx::query(&sql)
        .bind(tenant.as_str())
        .bind(json)
        .fetch_all(tx.conn())
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get::<String, _>("id")?, r.try_get::<i64, _>("size")?)))
        .collect()
}

/// The name and version of the file version stored in `blob_id`, if any (to name a file in
/// an error).
pub async fn name_of_blob(
    tx: &mut Tx,
    tenant: &TenantId,
    blob_id: &str,
) -> Result<Option<(String, i64)>> {
    tx.check(tenant)?;
    let row = sqlx::query(
        "SELECT f.name, v.version FROM file_versions v JOIN files f ON f.tenant_id = v.tenant_id AND f.id = v.file_id WHERE v.tenant_id = $1 AND v.blob_id = $2",
    )
    .bind(tenant.as_str())
    .bind(blob_id)
    .fetch_optional(tx.conn())
    .await?;
    Ok(match row {
        Some(r) => Some((r.try_get("name")?, r.try_get("version")?)),
        None => None,
    })
}

/// A file with its project, the project's folders (outermost first) and a version: the
/// reads that authorize a download, done in place in one snapshot on SQLite (see
/// [`crate::sync_read`]).
#[derive(Debug, Clone)]
pub struct FileInPlace {
    pub file: File,
    pub project: crate::workspace::Project,
    pub folders: Vec<crate::workspace::Folder>,
    pub version: Option<Version>,
}

/// [`FileInPlace`] of `tenant`'s file `id` (with its current version, or version `v`,
/// when `version` is `Some`), read in place. `None` on PostgreSQL, and whenever anything
/// is missing, nested deeper than [`crate::workspace::MAX_FOLDER_DEPTH`] or fails to read: the caller then takes the
/// ordinary path, which reports (and audits) what is missing — this only speeds up the
/// case where everything is there.
pub fn file_in_place(
    store: &crate::Store,
    tenant: &TenantId,
    id: &str,
    version: Option<Option<i64>>,
) -> Option<FileInPlace> {
    let readers = store.sync_readers()?;
    let t = tenant.as_str();
    let found = readers.with(|r| {
        r.snapshot(|r| {
            let Some(file) = r.one(&FILE_SQL, [t, id], |row| file_from_row(row))? else {
                return Ok(None);
            };
            let project = r.one(
                &crate::workspace::PROJECT_SQL,
                [t, file.project_id.as_str()],
                |row| crate::workspace::project_from_row(row),
            )?;
            let Some(project) = project else {
                return Ok(None);
            };
            let mut folders = Vec::new();
            let mut cur = Some(project.folder_id.clone());
            while let Some(fid) = cur {
                if folders.len() > crate::workspace::MAX_FOLDER_DEPTH {
                    return Ok(None);
                }
                let folder = r.one(&crate::workspace::FOLDER_SQL, [t, fid.as_str()], |row| {
                    crate::workspace::folder_from_row(row)
                })?;
                let Some(folder) = folder else {
                    return Ok(None);
                };
                cur = folder.parent_id.clone();
                folders.push(folder);
            }
            folders.reverse();
            let version = match version {
                None => None,
                Some(v) => {
                    let n = v.unwrap_or(file.current_version);
                    let found = r.one(&VERSION_SQL, rusqlite::params![t, id, n], |row| {
                        version_from_row(row)
                    })?;
                    match found {
                        Some(v) => Some(v),
                        None => return Ok(None),
                    }
                }
            };
            Ok(Some(FileInPlace {
                file,
                project,
                folders,
                version,
            }))
        })
    });
    found.ok().flatten()
}
