//! A project's files: upload, the file page, versions, trash, labels and tags.

use super::*;

pub struct VersionView {
    version: i64,
    size: i64,
    sha256: String,
    content_type: String,
    created: String,
    by: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "file.html")]
struct FileTpl {
    p: Page,
    id: String,
    name: String,
    project_id: String,
    project_name: String,
    label: String,
    tags: String,
    attributes: Vec<(String, String)>,
    versions: Vec<VersionView>,
    labels: Vec<String>,
    projects: Vec<(String, String)>,
    can_write: bool,
}

/// One file: its versions (download any, restore an old one), label and tags, rename, move.
pub async fn file_page(
    c: Console,
    Path(id): Path<kura_domain::FileId>,
    Query(flash): Query<Flash>,
) -> Response {
    let s = c.state.clone();
    let (file, versions) = match s.services.file_info(&c.auth, &id, &c.ctx).await {
        Ok(x) => x,
        Err(e) => return message(&c, StatusCode::NOT_FOUND, &e),
    };
    let zone = c.auth.tenant.settings.time_zone.clone();
    let can_write = s
        .services
        .may_in_project(&c.auth, &file.project_id, Action::ContentWrite)
        .await;
    let tree = s.services.workspace_tree(&c.auth).await.ok();
    let mut projects: Vec<(String, String)> = tree
        .map(|t| {
            t.projects
                .into_iter()
                .map(|p| (p.id.to_string(), p.name))
                .collect()
        })
        .unwrap_or_default();
    projects.sort_by(|a, b| a.1.cmp(&b.1));
    let project_name = projects
        .iter()
        .find(|(pid, _)| pid == file.project_id.as_str())
        .map(|(_, n)| n.clone())
        .unwrap_or_default();
    let mut users: HashMap<String, String> = HashMap::new();
    // Uploader names for those who may see the user list (asking otherwise would be
    // audited as a denied access).
    if c.may(Action::UserRead) {
        if let Ok(list) = s.services.list_users(&c.auth, &c.ctx).await {
            for u in list {
                users.insert(u.id.to_string(), u.display_name);
            }
        }
    }
    let mut versions: Vec<VersionView> = versions
        .into_iter()
        .map(|v| VersionView {
            current: v.version == file.current_version,
            version: v.version,
            size: v.size,
            sha256: v.sha256.chars().take(16).collect(),
            content_type: v.content_type,
            created: v.created_at.format_in_zone(&zone),
            by: v
                .created_by
                .as_ref()
                .and_then(|u| users.get(u.as_str()).cloned())
                .unwrap_or_default(),
        })
        .collect();
    versions.sort_by_key(|v| std::cmp::Reverse(v.version));
    let back = format!("/files/{}", file.id);
    let body = FileTpl {
        p: page(&c, "files.details", "workspace", &back, &flash),
        id: file.id.clone(),
        name: file.name.clone(),
        project_id: file.project_id.to_string(),
        project_name,
        label: file.labels.label.clone().unwrap_or_default(),
        tags: file.labels.tags.join(", "),
        attributes: file
            .labels
            .attributes
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str().map(str::to_string).unwrap_or(v.to_string()),
                )
            })
            .collect(),
        versions,
        labels: c.auth.tenant.settings.labels.clone(),
        projects,
        can_write,
    }
    .render();
    html(StatusCode::OK, body)
}

#[derive(Deserialize)]
pub struct FileUpdateForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
    /// `rename`, `move` or `labels`: which fields this form carries.
    #[serde(default)]
    what: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    project_id: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    tags: String,
}

pub async fn file_update(
    c: Console,
    Path(id): Path<kura_domain::FileId>,
    Form(f): Form<FileUpdateForm>,
) -> Response {
    let s = c.state.clone();
    let back = format!("/files/{}", safe_id(id.as_str()));
    let mut up = kura_services::files::FileUpdate::default();
    match f.what.as_str() {
        "rename" => up.name = Some(f.name.clone()),
        "move" => up.project = Some(ProjectId::from_string(f.project_id.clone())),
        "labels" => {
            let current = match s.services.file_info(&c.auth, &id, &c.ctx).await {
                Ok((file, _)) => file.labels,
                Err(e) => return back_err(&back, &e),
            };
            up.labels = Some(kura_store::Labels {
                label: (!f.label.is_empty()).then(|| f.label.clone()),
                tags: f
                    .tags
                    .split([',', '、'])
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_string)
                    .collect(),
                attributes: current.attributes,
            });
        }
        _ => return Redirect::to(&format!("{back}?err=invalid")).into_response(),
    }
    act(
        &c,
        &f.csrf,
        &back,
        "file_updated",
        s.services.update_file(&c.auth, &id, up, &c.ctx),
    )
    .await
}

/// An id from a path or form, if it is one (for building redirect targets).
fn safe_id(id: &str) -> &str {
    if !id.is_empty() && id.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-') {
        id
    } else {
        ""
    }
}

pub async fn version_restore(
    c: Console,
    Path((id, version)): Path<(kura_domain::FileId, i64)>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let s = c.state.clone();
    let back = format!("/files/{}", safe_id(id.as_str()));
    act(
        &c,
        &f.csrf,
        &back,
        "version_restored",
        s.services.restore_version(&c.auth, &id, version, &c.ctx),
    )
    .await
}

pub async fn file_untrash(
    c: Console,
    Path(id): Path<kura_domain::FileId>,
    Form(f): Form<FileDeleteForm>,
) -> Response {
    let s = c.state.clone();
    let back = format!("/projects/{}", safe_id(&f.project_id));
    act(
        &c,
        &f.csrf,
        &back,
        "file_restored",
        s.services.restore_file(&c.auth, &id, &c.ctx),
    )
    .await
}

pub async fn file_purge(
    c: Console,
    Path(id): Path<kura_domain::FileId>,
    Form(f): Form<FileDeleteForm>,
) -> Response {
    let s = c.state.clone();
    let back = format!("/projects/{}", safe_id(&f.project_id));
    act(
        &c,
        &f.csrf,
        &back,
        "file_purged",
        s.services.purge_file(&c.auth, &id, &c.ctx),
    )
    .await
}

/// The upload form (multipart): `_csrf` and `label` come before the `file` part, whose
/// bytes stream straight into the encrypted blob.
pub async fn file_upload(
    c: Console,
    Path(id): Path<String>,
    mut form: axum::extract::Multipart,
) -> Response {
    let s = c.state.clone();
    let back = format!("/projects/{id}");
    let pid = ProjectId::from_string(id);
    let mut csrf = String::new();
    let mut label = String::new();
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(_) => return Redirect::to(&format!("{back}?err=invalid")).into_response(),
        };
        match field.name() {
            Some("_csrf") => csrf = field.text().await.unwrap_or_default(),
            Some("label") => label = field.text().await.unwrap_or_default(),
            Some("file") => {
                if !csrf_ok(&c, &csrf) {
                    return csrf_rejected(&back);
                }
                let name = field
                    .file_name()
                    .map(|n| n.rsplit(['/', '\\']).next().unwrap_or(n).to_string())
                    .unwrap_or_default();
                let content_type = field
                    .content_type()
                    .unwrap_or("application/octet-stream")
                    .to_string();
                let label = (!label.is_empty()).then_some(label.as_str());
                let r = s
                    .services
                    .upload_file(
                        &c.auth,
                        &pid,
                        &name,
                        &content_type,
                        label,
                        field,
                        s.http.max_upload_bytes,
                        &c.ctx,
                    )
                    .await;
                return match r {
                    Ok(_) => back_ok(&back, "file_uploaded"),
                    Err(e) => back_err(&back, &e),
                };
            }
            _ => {}
        }
    }
    Redirect::to(&format!("{back}?err=invalid")).into_response()
}

#[derive(Deserialize)]
pub struct FileDeleteForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
    #[serde(default)]
    project_id: String,
}

pub async fn file_delete(
    c: Console,
    Path(id): Path<kura_domain::FileId>,
    Form(f): Form<FileDeleteForm>,
) -> Response {
    let s = c.state.clone();
    let back = match safe_id(&f.project_id) {
        "" => "/".to_string(),
        p => format!("/projects/{p}"),
    };
    act(
        &c,
        &f.csrf,
        &back,
        "file_deleted",
        s.services.delete_file(&c.auth, &id, &c.ctx),
    )
    .await
}
