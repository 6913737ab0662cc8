//! Folders and projects.

use super::*;

pub(super) fn routes() -> Vec<(RouteDoc, MethodRouter<AppState>)> {
    vec![
        route!(
            get,
            "/api/v1/folders",
            Workspace,
            true,
            200,
            "Folders the caller can view (filters: q, label, tag, attr=key:value)",
            list_folders
        ),
        route!(
            post,
            "/api/v1/folders",
            Workspace,
            true,
            201,
            "Create a folder",
            create_folder,
            folder_schema
        ),
        route!(
            get,
            "/api/v1/folders/{folder_id}",
            Workspace,
            true,
            200,
            "One folder",
            get_folder
        ),
        route!(
            patch,
            "/api/v1/folders/{folder_id}",
            Workspace,
            true,
            200,
            "Rename and/or move a folder",
            update_folder,
            folder_patch_schema
        ),
        route!(
            delete,
            "/api/v1/folders/{folder_id}",
            Workspace,
            true,
            204,
            "Delete an empty folder",
            delete_folder
        ),
        route!(
            get,
            "/api/v1/projects",
            Workspace,
            true,
            200,
            "Projects the caller can view (filters: q, label, tag, attr=key:value)",
            list_projects
        ),
        route!(
            post,
            "/api/v1/projects",
            Workspace,
            true,
            201,
            "Create a project in a folder",
            create_project,
            project_schema
        ),
        route!(
            get,
            "/api/v1/projects/{project_id}",
            Workspace,
            true,
            200,
            "One project",
            get_project
        ),
        route!(
            patch,
            "/api/v1/projects/{project_id}",
            Workspace,
            true,
            200,
            "Rename and/or move a project",
            update_project,
            project_patch_schema
        ),
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
    items(list)
}

#[derive(Deserialize)]
struct FolderBody {
    name: String,
    parent_id: Option<String>,
    #[serde(flatten)]
    labels: kura_store::Labels,
}

fn folder_schema() -> Value {
    json!({"type":"object","required":["name"],"properties":{"name":{"type":"string"},"parent_id":{"type":["string","null"]},"label":{"type":"string"},"tags":{"type":"array","items":{"type":"string"}},"attributes":{"type":"object"}}})
}

async fn create_folder(Call(s, a, ctx): Call, ApiJson(b): ApiJson<FolderBody>) -> ApiResult {
    let parent = b.parent_id.map(FolderId::from_string);
    created(
        s.services
            .create_folder(&a, &b.name, parent.as_ref(), b.labels, &ctx)
            .await?,
    )
}

async fn get_folder(Call(s, a, ctx): Call, Path(id): Path<FolderId>) -> ApiResult {
    ok(s.services.get_folder(&a, &id, &ctx).await?)
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

fn folder_patch_schema() -> Value {
    json!({"type":"object","properties":{"name":{"type":"string"},"parent_id":{"type":["string","null"],"description":"null moves to the top level"},"label":{"type":["string","null"],"description":"null inherits the parent's"},"tags":{"type":"array","items":{"type":"string"}},"attributes":{"type":"object"}}})
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
    ok(s.services.update_folder(&a, &id, patch, &ctx).await?)
}

async fn delete_folder(Call(s, a, ctx): Call, Path(id): Path<FolderId>) -> ApiResult {
    s.services.delete_folder(&a, &id, &ctx).await?;
    no_content()
}

async fn list_projects(Call(s, a, _): Call, Query(f): Query<ListFilter>) -> ApiResult {
    let mut list = s.services.workspace_tree(&a).await?.projects;
    list.retain(|x| f.keeps(&x.name, &x.labels));
    items(list)
}

#[derive(Deserialize)]
struct ProjectBody {
    name: String,
    folder_id: String,
    #[serde(flatten)]
    labels: kura_store::Labels,
}

fn project_schema() -> Value {
    json!({"type":"object","required":["name","folder_id"],"properties":{"name":{"type":"string"},"folder_id":{"type":"string"},"label":{"type":"string"},"tags":{"type":"array","items":{"type":"string"}},"attributes":{"type":"object"}}})
}

async fn create_project(Call(s, a, ctx): Call, ApiJson(b): ApiJson<ProjectBody>) -> ApiResult {
    created(
        s.services
            .create_project(
                &a,
                &FolderId::from_string(b.folder_id),
                &b.name,
                b.labels,
                &ctx,
            )
            .await?,
    )
}

async fn get_project(Call(s, a, ctx): Call, Path(id): Path<ProjectId>) -> ApiResult {
    ok(s.services.get_project(&a, &id, &ctx).await?)
}

fn project_patch_schema() -> Value {
    json!({"type":"object","properties":{"name":{"type":"string"},"folder_id":{"type":"string"},"label":{"type":["string","null"]},"tags":{"type":"array","items":{"type":"string"}},"attributes":{"type":"object"}}})
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
    ok(s.services
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
        .await?)
}

async fn delete_project(Call(s, a, ctx): Call, Path(id): Path<ProjectId>) -> ApiResult {
    s.services.delete_project(&a, &id, &ctx).await?;
    no_content()
}
