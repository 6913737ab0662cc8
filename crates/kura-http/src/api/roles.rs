//! Custom roles.

use super::*;

pub(super) fn routes() -> Vec<(RouteDoc, MethodRouter<AppState>)> {
    vec![
        route!(
            get,
            "/api/v1/roles",
            Roles,
            true,
            200,
            "Built-in and custom roles",
            list_roles
        ),
        route!(
            post,
            "/api/v1/roles",
            Roles,
            true,
            201,
            "Define a custom role from actions",
            create_role,
            role_schema
        ),
        route!(
            get,
            "/api/v1/roles/{role_id}",
            Roles,
            true,
            200,
            "One custom role",
            get_role
        ),
        route!(
            delete,
            "/api/v1/roles/{role_id}",
            Roles,
            true,
            204,
            "Delete a custom role and its grants",
            delete_role
        ),
    ]
}

async fn list_roles(Call(s, a, ctx): Call) -> ApiResult {
    let custom = s.services.list_roles(&a, &ctx).await?;
    let builtin: Vec<Value> = kura_domain::BuiltinRole::ALL
        .iter()
        .map(|r| json!({ "id": r.as_str(), "name": r.as_str(), "builtin": true, "actions": r.actions().actions() }))
        .collect();
    ok(json!({ "builtin": builtin, "items": custom }))
}

#[derive(Deserialize)]
struct RoleBody {
    name: String,
    actions: Vec<String>,
}

fn role_schema() -> Value {
    let actions: Vec<&str> = kura_domain::Action::ALL
        .iter()
        .map(|a| a.as_str())
        .collect();
    json!({"type":"object","required":["name","actions"],"properties":{"name":{"type":"string"},"actions":{"type":"array","items":{"type":"string","enum":actions}}}})
}

async fn create_role(Call(s, a, ctx): Call, ApiJson(b): ApiJson<RoleBody>) -> ApiResult {
    created(
        s.services
            .create_role(&a, &b.name, &b.actions, &ctx)
            .await?,
    )
}

async fn get_role(Call(s, a, ctx): Call, Path(id): Path<RoleId>) -> ApiResult {
    ok(s.services.get_role(&a, &id, &ctx).await?)
}

async fn delete_role(Call(s, a, ctx): Call, Path(id): Path<RoleId>) -> ApiResult {
    s.services.delete_role(&a, &id, &ctx).await?;
    no_content()
}
