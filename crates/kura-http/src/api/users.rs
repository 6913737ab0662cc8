//! Users, service accounts and their tokens, grants, freezing, ending sessions.

use super::*;

pub(super) fn routes() -> Vec<(RouteDoc, MethodRouter<AppState>)> {
    vec![
        route!(
            get,
            "/api/v1/users",
            Users,
            true,
            200,
            "List users",
            list_users
        ),
        route!(
            post,
            "/api/v1/users",
            Users,
            true,
            201,
            "Invite a user (the link is mailed)",
            invite_user,
            invite_schema
        ),
        route!(
            post,
            "/api/v1/service-accounts",
            Users,
            true,
            201,
            "Create a service account: a user that cannot log in and acts only through API tokens issued for it, with the roles granted to it",
            create_service_account,
            service_account_schema
        ),
        route!(
            get,
            "/api/v1/users/{user_id}/tokens",
            Users,
            true,
            200,
            "A service account's API tokens (never the secrets)",
            list_service_tokens
        ),
        route!(
            post,
            "/api/v1/users/{user_id}/tokens",
            Users,
            true,
            201,
            "Issue an API token for a service account (scopes, expiry ≤ 365 days); the secret is returned once",
            create_service_token,
            token_schema
        ),
        route!(
            delete,
            "/api/v1/users/{user_id}/tokens/{token_id}",
            Users,
            true,
            204,
            "Revoke a service account's API token",
            revoke_service_token
        ),
        route!(
            get,
            "/api/v1/users/{user_id}",
            Users,
            true,
            200,
            "One user with grants",
            get_user
        ),
        route!(
            delete,
            "/api/v1/users/{user_id}",
            Users,
            true,
            204,
            "Delete a user",
            delete_user
        ),
        route!(
            post,
            "/api/v1/users/{user_id}/sessions/end",
            Users,
            true,
            200,
            "End every session of a user (user management)",
            end_user_sessions
        ),
        route!(
            post,
            "/api/v1/users/{user_id}/freeze",
            Users,
            true,
            204,
            "Freeze a user; their sessions end at once",
            freeze_user
        ),
        route!(
            post,
            "/api/v1/users/{user_id}/unfreeze",
            Users,
            true,
            204,
            "Unfreeze a user",
            unfreeze_user
        ),
        route!(
            get,
            "/api/v1/users/{user_id}/grants",
            Users,
            true,
            200,
            "A user's role grants",
            list_grants
        ),
        route!(
            post,
            "/api/v1/users/{user_id}/grants",
            Users,
            true,
            201,
            "Grant a role at a scope",
            add_grant,
            grant_schema
        ),
        route!(
            delete,
            "/api/v1/users/{user_id}/grants/{grant_id}",
            Users,
            true,
            204,
            "Revoke a grant",
            remove_grant
        ),
    ]
}

async fn list_users(Call(s, a, ctx): Call) -> ApiResult {
    items(s.services.list_users(&a, &ctx).await?)
}

#[derive(Deserialize)]
struct ScopeBody {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
}

fn parse_scope(s: Option<ScopeBody>) -> Result<Scope, ApiError> {
    match s {
        None => Ok(Scope::Tenant),
        Some(ScopeBody { kind, id }) => {
            Ok(Scope::parse(&kind, id.as_deref()).map_err(kura_services::ServiceError::from)?)
        }
    }
}

fn scope_schema() -> Value {
    json!({"type":"object","required":["type"],"properties":{"type":{"type":"string","enum":["tenant","folder","project"]},"id":{"type":"string"}}})
}

#[derive(Deserialize)]
struct InviteBody {
    email: String,
    #[serde(default)]
    display_name: String,
    locale: Option<String>,
    role: Option<String>,
    scope: Option<ScopeBody>,
    max_label: Option<String>,
}

fn invite_schema() -> Value {
    json!({"type":"object","required":["email"],"properties":{"email":{"type":"string"},"display_name":{"type":"string"},"locale":{"type":"string","enum":["ja","en"]},"role":{"type":"string","description":"contract_admin, admin, member, guest or a custom role id"},"scope":scope_schema()}})
}

async fn invite_user(Call(s, a, ctx): Call, ApiJson(b): ApiJson<InviteBody>) -> ApiResult {
    let role = match b.role {
        Some(r) => Some((r, parse_scope(b.scope)?)),
        None => None,
    };
    let user = s
        .services
        .invite_user(
            &a,
            NewUser {
                email: b.email,
                display_name: b.display_name,
                locale: b.locale,
                role,
                max_label: b.max_label,
            },
            &ctx,
        )
        .await?;
    created(user)
}

#[derive(Deserialize)]
struct ServiceAccountBody {
    name: String,
    role: Option<String>,
    scope: Option<ScopeBody>,
    max_label: Option<String>,
}

fn service_account_schema() -> Value {
    json!({"type":"object","required":["name"],"properties":{"name":{"type":"string"},"role":{"type":"string","description":"admin, member, guest or a custom role id"},"scope":scope_schema(),"max_label":{"type":"string"}}})
}

async fn create_service_account(
    Call(s, a, ctx): Call,
    ApiJson(b): ApiJson<ServiceAccountBody>,
) -> ApiResult {
    let role = match b.role {
        Some(r) => Some((r, parse_scope(b.scope)?)),
        None => None,
    };
    let user = s
        .services
        .create_service_account(&a, &b.name, role, b.max_label, &ctx)
        .await?;
    created(user)
}

async fn list_service_tokens(Call(s, a, ctx): Call, Path(id): Path<UserId>) -> ApiResult {
    items(s.services.list_service_tokens(&a, &id, &ctx).await?)
}

async fn create_service_token(
    Call(s, a, ctx): Call,
    Path(id): Path<UserId>,
    ApiJson(b): ApiJson<TokenBody>,
) -> ApiResult {
    let t = s
        .services
        .create_service_token(&a, &id, &b.name, b.scopes, b.expires_in_days, &ctx)
        .await?;
    Ok((StatusCode::CREATED, Json(json!(t))).into_response())
}

async fn revoke_service_token(
    Call(s, a, ctx): Call,
    Path((id, token)): Path<(UserId, String)>,
) -> ApiResult {
    s.services
        .revoke_service_token(&a, &id, &token, &ctx)
        .await?;
    no_content()
}

async fn get_user(Call(s, a, ctx): Call, Path(id): Path<UserId>) -> ApiResult {
    let (user, grants) = s.services.get_user(&a, &id, &ctx).await?;
    ok(json!({ "user": user, "grants": grants }))
}

async fn change_user(call: Call, id: UserId, c: UserChange) -> ApiResult {
    call.0
        .services
        .change_user(&call.1, &id, c, &call.2)
        .await?;
    no_content()
}

async fn delete_user(call: Call, Path(id): Path<UserId>) -> ApiResult {
    change_user(call, id, UserChange::Delete).await
}

async fn end_user_sessions(Call(s, a, ctx): Call, Path(id): Path<UserId>) -> ApiResult {
    let ended = s.services.end_user_sessions(&a, &id, &ctx).await?;
    ok(json!({ "ended": ended }))
}

async fn freeze_user(call: Call, Path(id): Path<UserId>) -> ApiResult {
    change_user(call, id, UserChange::Freeze).await
}

async fn unfreeze_user(call: Call, Path(id): Path<UserId>) -> ApiResult {
    change_user(call, id, UserChange::Unfreeze).await
}

async fn list_grants(Call(s, a, ctx): Call, Path(id): Path<UserId>) -> ApiResult {
    let (_, grants) = s.services.get_user(&a, &id, &ctx).await?;
    items(grants)
}

#[derive(Deserialize)]
struct GrantBody {
    role: String,
    scope: Option<ScopeBody>,
    /// Classification cap (DATA-3), e.g. "internal".
    max_label: Option<String>,
}

fn grant_schema() -> Value {
    json!({"type":"object","required":["role"],"properties":{"role":{"type":"string"},"scope":scope_schema(),"max_label":{"type":"string","description":"classification cap, e.g. internal"}}})
}

async fn add_grant(
    Call(s, a, ctx): Call,
    Path(id): Path<UserId>,
    ApiJson(b): ApiJson<GrantBody>,
) -> ApiResult {
    let scope = parse_scope(b.scope)?;
    created(
        s.services
            .add_grant(&a, &id, &b.role, scope, b.max_label.as_deref(), &ctx)
            .await?,
    )
}

async fn remove_grant(
    Call(s, a, ctx): Call,
    Path((uid, gid)): Path<(UserId, GrantId)>,
) -> ApiResult {
    s.services.remove_grant(&a, &uid, &gid, &ctx).await?;
    no_content()
}
