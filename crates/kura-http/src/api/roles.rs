//! Custom roles.

use super::*;

pub(super) fn routes() -> Vec<(RouteDoc, MethodRouter<AppState>)> {
    vec![
        route!(get, "/api/v1/roles", Roles, true, 200, "Built-in and custom roles", list_roles, resp: wire::Roles),
        route!(post, "/api/v1/roles", Roles, true, 201, "Define a custom role from actions", create_role, body: RoleBody, resp: wire::CustomRole),
        route!(get, "/api/v1/roles/{role_id}", Roles, true, 200, "One custom role", get_role, resp: wire::CustomRole),
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
    let builtin = kura_domain::BuiltinRole::ALL
        .iter()
        .map(|r| wire::BuiltinRoleInfo {
            id: r.as_str().into(),
            name: r.as_str().into(),
            builtin: true,
            actions: r.actions().actions(),
        })
        .collect();
    ok(wire::Roles {
        builtin,
        items: custom.into_iter().map(Into::into).collect(),
    })
}

#[derive(Deserialize, JsonSchema)]
struct RoleBody {
    name: String,
    /// Actions from `GET /roles` (e.g. `view`, `content_write`).
    actions: Vec<String>,
}

async fn create_role(Call(s, a, ctx): Call, ApiJson(b): ApiJson<RoleBody>) -> ApiResult {
    created(wire::CustomRole::from(
        s.services
            .create_role(&a, &b.name, &b.actions, &ctx)
            .await?,
    ))
}

async fn get_role(Call(s, a, ctx): Call, Path(id): Path<RoleId>) -> ApiResult {
    ok(wire::CustomRole::from(
        s.services.get_role(&a, &id, &ctx).await?,
    ))
}

async fn delete_role(Call(s, a, ctx): Call, Path(id): Path<RoleId>) -> ApiResult {
    s.services.delete_role(&a, &id, &ctx).await?;
    no_content()
}
