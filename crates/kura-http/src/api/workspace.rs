//! Folders and projects.

use super::*;

pub(super) fn routes() -> Vec<(RouteDoc, MethodRouter<AppState>)> {
    vec![
        route!(get, "/api/v1/folders", Workspace, true, 200, "Folders the caller can view (filters: q, label, tag, attr=key:value)", list_folders, query: [ListFilter], resp: wire::Items<wire::Folder>),
        route!(post, "/api/v1/folders", Workspace, true, 201, "Create a folder", create_folder, body: FolderBody, resp: wire::Folder),
        route!(get, "/api/v1/folders/{folder_id}", Workspace, true, 200, "One folder", get_folder, resp: wire::Folder),
        route!(patch, "/api/v1/folders/{folder_id}", Workspace, true, 200, "Rename and/or move a folder", update_folder, body: FolderPatch, resp: wire::Folder),
        route!(
            delete,
            "/api/v1/folders/{folder_id}",
            Workspace,
            true,
            204,
            "Delete an empty folder",
            delete_folder
        ),
        route!(get, "/api/v1/projects", Workspace, true, 200, "Projects the caller can view (filters: q, label, tag, attr=key:value)", list_projects, query: [ListFilter], resp: wire::Items<wire::Project>),
        route!(post, "/api/v1/projects", Workspace, true, 201, "Create a project in a folder", create_project, body: ProjectBody, resp: wire::Project),
        route!(get, "/api/v1/projects/{project_id}", Workspace, true, 200, "One project", get_project, resp: wire::Project),
        route!(patch, "/api/v1/projects/{project_id}", Workspace, true, 200, "Rename and/or move a project", update_project, body: ProjectPatch, resp: wire::Project),
        route!(
            delete,
            "/api/v1/projects/{project_id}",
            Workspace,
            true,
            204,
            "Delete a project",
            delete_project
        ),
    ]
}

async fn list_folders(Call(s, a, _): Call, Query(f): Query<ListFilter>) -> ApiResult {
    let mut list = s.services.workspace_tree(&a).await?.folders;
    list.retain(|x| f.keeps(&x.name, &x.labels));
    items::<wire::Folder, _>(list)
}

#[derive(Deserialize, JsonSchema)]
struct FolderBody {
    name: String,
    /// The parent folder; absent or null: a top-level folder.
    parent_id: Option<String>,
    #[serde(flatten)]
    labels: LabelsBody,
}

async fn create_folder(Call(s, a, ctx): Call, ApiJson(b): ApiJson<FolderBody>) -> ApiResult {
    let parent = b.parent_id.map(FolderId::from_string);
    created(wire::Folder::from(
        s.services
            .create_folder(&a, &b.name, parent.as_ref(), b.labels.into(), &ctx)
            .await?,
    ))
}

async fn get_folder(Call(s, a, ctx): Call, Path(id): Path<FolderId>) -> ApiResult {
    ok(wire::Folder::from(
        s.services.get_folder(&a, &id, &ctx).await?,
    ))
}

/// `PATCH /folders/{id}`: what is present changes; absent stays.
#[derive(JsonSchema)]
#[allow(dead_code)] // documents the body `update_folder` reads field by field
struct FolderPatch {
    name: Option<String>,
    /// The new parent; null moves the folder to the top level.
    #[serde(default)]
    parent_id: Option<Option<String>>,
    /// Own classification level (null: inherit the parent's).
    #[serde(default)]
    label: Option<Option<String>>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    /// Custom attributes (replace the current ones).
    #[serde(default)]
    attributes: Option<serde_json::Map<String, Value>>,
}

/// `PATCH /projects/{id}`: what is present changes; absent stays.
#[derive(JsonSchema)]
#[allow(dead_code)] // documents the body `update_project` reads field by field
struct ProjectPatch {
    name: Option<String>,
    /// The folder to move the project to.
    folder_id: Option<String>,
    /// Own classification level (null: inherit the parent's).
    #[serde(default)]
    label: Option<Option<String>>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    /// Custom attributes (replace the current ones).
    #[serde(default)]
    attributes: Option<serde_json::Map<String, Value>>,
}

/// Reads `name` and a nullable parent field from a PATCH body, telling "absent" from "null".
fn patch_fields(
    body: &Value,
    parent_field: &str,
) -> Result<(Option<String>, Option<Option<String>>), ApiError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ApiError::bad_request("body must be a JSON object"))?;
    let name = match obj.get("name") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(ApiError::bad_request("name must be a string")),
    };
    let parent = match obj.get(parent_field) {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) => Some(Some(s.clone())),
        Some(_) => {
            return Err(ApiError::bad_request(format!(
                "{parent_field} must be a string or null"
            )))
        }
    };
    Ok((name, parent))
}

async fn update_folder(
    Call(s, a, ctx): Call,
    Path(id): Path<FolderId>,
    ApiJson(b): ApiJson<Value>,
) -> ApiResult {
    let (name, parent) = patch_fields(&b, "parent_id")?;
    let (label, tags, attributes) = label_fields(&b)?;
    let patch = Patch {
        name,
        parent: parent.map(|p| p.map(FolderId::from_string)),
        label,
        tags,
        attributes,
    };
    ok(wire::Folder::from(
        s.services.update_folder(&a, &id, patch, &ctx).await?,
    ))
}

async fn delete_folder(Call(s, a, ctx): Call, Path(id): Path<FolderId>) -> ApiResult {
    s.services.delete_folder(&a, &id, &ctx).await?;
    no_content()
}

async fn list_projects(Call(s, a, _): Call, Query(f): Query<ListFilter>) -> ApiResult {
    let mut list = s.services.workspace_tree(&a).await?.projects;
    list.retain(|x| f.keeps(&x.name, &x.labels));
    items::<wire::Project, _>(list)
}

#[derive(Deserialize, JsonSchema)]
struct ProjectBody {
    name: String,
    folder_id: String,
    #[serde(flatten)]
    labels: LabelsBody,
}

async fn create_project(Call(s, a, ctx): Call, ApiJson(b): ApiJson<ProjectBody>) -> ApiResult {
    created(wire::Project::from(
        s.services
            .create_project(
                &a,
                &FolderId::from_string(b.folder_id),
                &b.name,
                b.labels.into(),
                &ctx,
            )
            .await?,
    ))
}

async fn get_project(Call(s, a, ctx): Call, Path(id): Path<ProjectId>) -> ApiResult {
    ok(wire::Project::from(
        s.services.get_project(&a, &id, &ctx).await?,
    ))
}

async fn update_project(
    Call(s, a, ctx): Call,
    Path(id): Path<ProjectId>,
    ApiJson(b): ApiJson<Value>,
) -> ApiResult {
    let (name, folder) = patch_fields(&b, "folder_id")?;
    let (label, tags, attributes) = label_fields(&b)?;
    let parent = match folder {
        None => None,
        Some(Some(f)) => Some(FolderId::from_string(f)),
        Some(None) => {
            return Err(ApiError::bad_request(
                "folder_id cannot be null: a project is always in a folder",
            ))
        }
    };
    ok(wire::Project::from(
        s.services
            .update_project(
                &a,
                &id,
                Patch {
                    name,
                    parent,
                    label,
                    tags,
                    attributes,
                },
                &ctx,
            )
            .await?,
    ))
}

async fn delete_project(Call(s, a, ctx): Call, Path(id): Path<ProjectId>) -> ApiResult {
    s.services.delete_project(&a, &id, &ctx).await?;
    no_content()
}
