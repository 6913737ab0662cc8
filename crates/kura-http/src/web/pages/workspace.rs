//! The workspace: folders and projects.

use super::*;

// ---------------------------------------------------------------- workspace

pub struct Row {
    kind: &'static str,
    label: String,
    id: String,
    name: String,
    depth: usize,
    created: String,
}

#[derive(Template)]
#[template(path = "workspace.html")]
struct WorkspaceTpl {
    p: Page,
    rows: Vec<Row>,
    /// (id, path label) of every visible folder, for the selects.
    folders: Vec<(String, String)>,
    /// The tenant's classification levels, lowest first.
    labels: Vec<String>,
}

pub async fn workspace(c: Console, Query(flash): Query<Flash>) -> Response {
    let s = c.state.clone();
    let tree = match s.services.workspace_tree(&c.auth).await {
        Ok(t) => t,
        Err(e) => return back_err("/login", &e),
    };
    let zone = c.auth.tenant.settings.time_zone.clone();
    let visible: std::collections::HashSet<&FolderId> =
        tree.folders.iter().map(|f| &f.id).collect();
    let mut rows = Vec::new();
    let mut folder_opts = Vec::new();
    // Depth-first from folders whose parent the user cannot see.
    let mut stack: Vec<(&kura_store::workspace::Folder, usize, String)> = tree
        .folders
        .iter()
        .filter(|f| f.parent_id.as_ref().is_none_or(|p| !visible.contains(p)))
        .rev()
        .map(|f| (f, 0, f.name.clone()))
        .collect();
    while let Some((f, depth, label)) = stack.pop() {
        rows.push(Row {
            kind: "folder",
            label: f.labels.label.clone().unwrap_or_default(),
            id: f.id.to_string(),
            name: f.name.clone(),
            depth,
            created: f.created_at.format_in_zone(&zone),
        });
        folder_opts.push((f.id.to_string(), label.clone()));
        for p in tree.projects.iter().filter(|p| p.folder_id == f.id) {
            rows.push(Row {
                kind: "project",
                label: p.labels.label.clone().unwrap_or_default(),
                id: p.id.to_string(),
                name: p.name.clone(),
                depth: depth + 1,
                created: p.created_at.format_in_zone(&zone),
            });
        }
        for child in tree
            .folders
            .iter()
            .filter(|x| x.parent_id.as_ref() == Some(&f.id))
            .rev()
        {
            stack.push((child, depth + 1, format!("{label} / {}", child.name)));
        }
    }
    for p in tree
        .projects
        .iter()
        .filter(|p| !visible.contains(&p.folder_id))
    {
        rows.push(Row {
            kind: "project",
            label: p.labels.label.clone().unwrap_or_default(),
            id: p.id.to_string(),
            name: p.name.clone(),
            depth: 0,
            created: p.created_at.format_in_zone(&zone),
        });
    }
    let body = WorkspaceTpl {
        p: page(&c, "ws.title", "workspace", "/", &flash),
        rows,
        folders: folder_opts,
        labels: c.auth.tenant.settings.labels.clone(),
    }
    .render();
    html(StatusCode::OK, body)
}

#[derive(Deserialize)]
pub struct FolderForm {
    #[serde(default)]
    name: String,
    /// Empty: inherit the parent's label.
    #[serde(default)]
    label: String,
    #[serde(default)]
    parent_id: String,
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

pub async fn folder_create(c: Console, Form(f): Form<FolderForm>) -> Response {
    let s = c.state.clone();
    if !csrf_ok(&c, &f.csrf) {
        return csrf_rejected("/");
    }
    let parent = (!f.parent_id.is_empty()).then(|| FolderId::from_string(f.parent_id));
    match s
        .services
        .create_folder(
            &c.auth,
            &f.name,
            parent.as_ref(),
            form_labels(&f.label),
            &c.ctx,
        )
        .await
    {
        Ok(_) => back_ok("/", "folder_created"),
        Err(e) => back_err("/", &e),
    }
}

pub async fn folder_rename(
    c: Console,
    Path(id): Path<String>,
    Form(f): Form<FolderForm>,
) -> Response {
    let s = c.state.clone();
    let patch = Patch {
        name: Some(f.name),
        ..Patch::default()
    };
    let arg0 = FolderId::from_string(id);
    act(
        &c,
        &f.csrf,
        "/",
        "folder_renamed",
        s.services.update_folder(&c.auth, &arg0, patch, &c.ctx),
    )
    .await
}

pub async fn folder_delete(
    c: Console,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let s = c.state.clone();
    let arg0 = FolderId::from_string(id);
    act(
        &c,
        &f.csrf,
        "/",
        "folder_deleted",
        s.services.delete_folder(&c.auth, &arg0, &c.ctx),
    )
    .await
}

#[derive(Deserialize)]
pub struct ProjectForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    folder_id: String,
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

pub async fn project_create(c: Console, Form(f): Form<ProjectForm>) -> Response {
    let s = c.state.clone();
    let arg0 = FolderId::from_string(f.folder_id);
    act(
        &c,
        &f.csrf,
        "/",
        "project_created",
        s.services
            .create_project(&c.auth, &arg0, &f.name, form_labels(&f.label), &c.ctx),
    )
    .await
}

pub async fn project_delete(
    c: Console,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let s = c.state.clone();
    let arg0 = ProjectId::from_string(id);
    act(
        &c,
        &f.csrf,
        "/",
        "project_deleted",
        s.services.delete_project(&c.auth, &arg0, &c.ctx),
    )
    .await
}

fn form_labels(label: &str) -> kura_store::Labels {
    kura_store::Labels {
        label: (!label.is_empty()).then(|| label.to_string()),
        ..Default::default()
    }
}

pub struct TrashView {
    id: String,
    name: String,
    deleted: String,
}

#[derive(Template)]
#[template(path = "project.html")]
struct ProjectTpl {
    p: Page,
    project_id: String,
    project_name: String,
    project_label: String,
    files: Vec<FileView>,
    trash: Vec<TrashView>,
    can_write: bool,
    labels: Vec<String>,
    filter: FileFilter,
    /// The next page of files (same filters), when there is one.
    next_page: Option<String>,
    /// Back to the first page, when this is a later one.
    first_page: Option<String>,
    filtering: bool,
}

/// A project's files (filtered by name, tag, label), download links, upload form with a
/// progress bar, and the project's trash.
pub async fn project_page(
    c: Console,
    Path(id): Path<String>,
    Query(flash): Query<Flash>,
    Query(filter): Query<FileFilter>,
) -> Response {
    let s = c.state.clone();
    let pid = ProjectId::from_string(id);
    let project = match s.services.get_project(&c.auth, &pid, &c.ctx).await {
        Ok(p) => p,
        Err(e) => return message(&c, StatusCode::NOT_FOUND, &e),
    };
    let (files, next) = match s
        .services
        .list_files_with_sizes(&c.auth, &filter.search(Some(pid.clone())), &c.ctx)
        .await
    {
        Ok(f) => f,
        Err(e) => return message(&c, StatusCode::UNPROCESSABLE_ENTITY, &e),
    };
    let zone = c.auth.tenant.settings.time_zone.clone();
    let no_names = HashMap::new();
    let views = files
        .into_iter()
        .map(|(f, size)| file_view(f, size, &zone, &no_names))
        .collect();
    let can_write = s
        .services
        .may_in_project(&c.auth, &pid, Action::ContentWrite)
        .await;
    let trash = if can_write {
        s.services
            .list_trash(&c.auth, &pid, &c.ctx)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|f| TrashView {
                deleted: f
                    .deleted_at
                    .map(|d| d.format_in_zone(&zone))
                    .unwrap_or_default(),
                id: f.id,
                name: f.name,
            })
            .collect()
    } else {
        Vec::new()
    };
    let back = format!("/projects/{}", project.id);
    let next_page = filter.next_page(&back, next);
    let first_page = filter.first_page(&back);
    let body = ProjectTpl {
        next_page,
        first_page,
        p: page(&c, "ws.project", "workspace", &back, &flash),
        project_id: project.id.to_string(),
        project_name: project.name.clone(),
        project_label: project.labels.label.clone().unwrap_or_default(),
        files: views,
        trash,
        can_write,
        labels: c.auth.tenant.settings.labels.clone(),
        filtering: filter.active(),
        filter,
    }
    .render();
    html(StatusCode::OK, body)
}
