//! Users, service accounts and their tokens, grants, freezing, ending sessions.

use super::*;

pub(super) fn routes() -> Vec<(RouteDoc, MethodRouter<AppState>)> {
    vec![
        route!(get, "/api/v1/users", Users, true, 200, "List users", list_users, resp: wire::Items<wire::User>),
        route!(post, "/api/v1/users", Users, true, 201, "Invite a user (the link is mailed)", invite_user, body: InviteBody, resp: wire::User),
        route!(post, "/api/v1/service-accounts", Users, true, 201, "Create a service account: a user that cannot log in and acts only through API tokens issued for it, with the roles granted to it", create_service_account, body: ServiceAccountBody, resp: wire::User),
        route!(get, "/api/v1/users/{user_id}/tokens", Users, true, 200, "A service account's API tokens (never the secrets)", list_service_tokens, resp: wire::Items<wire::ApiToken>),
        route!(post, "/api/v1/users/{user_id}/tokens", Users, true, 201, "Issue an API token for a service account (scopes, expiry ≤ 365 days); the secret is returned once", create_service_token, body: TokenBody, resp: wire::NewApiToken),
        route!(
            delete,
            "/api/v1/users/{user_id}/tokens/{token_id}",
            Users,
            true,
            204,
            "Revoke a service account's API token",
            revoke_service_token
        ),
        route!(get, "/api/v1/users/{user_id}", Users, true, 200, "One user with grants", get_user, resp: wire::UserWithGrants),
        route!(
            delete,
            "/api/v1/users/{user_id}",
            Users,
            true,
            204,
            "Delete a user",
            delete_user
        ),
        route!(post, "/api/v1/users/{user_id}/sessions/end", Users, true, 200, "End every session of a user (user management)", end_user_sessions, resp: wire::Ended),
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
        route!(get, "/api/v1/users/{user_id}/grants", Users, true, 200, "A user's role grants", list_grants, resp: wire::Items<wire::Grant>),
        route!(post, "/api/v1/users/{user_id}/grants", Users, true, 201, "Grant a role at a scope", add_grant, body: GrantBody, resp: wire::Grant),
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
    items::<wire::User, _>(s.services.list_users(&a, &ctx).await?)
}

#[derive(Deserialize, JsonSchema)]
struct ScopeBody {
    /// `tenant` (no id), `folder` or `project` (with an id).
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

#[derive(Deserialize, JsonSchema)]
struct InviteBody {
    email: String,
    #[serde(default)]
    display_name: String,
    /// `ja` or `en`.
    locale: Option<String>,
    /// `contract_admin`, `admin`, `member`, `guest` or a custom role id.
    role: Option<String>,
    /// Where the role applies (default: the whole tenant).
    scope: Option<ScopeBody>,
    /// Classification cap (DATA-3), e.g. `internal`.
    max_label: Option<String>,
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
    created(wire::User::from(user))
}

#[derive(Deserialize, JsonSchema)]
struct ServiceAccountBody {
    name: String,
    role: Option<String>,
    scope: Option<ScopeBody>,
    max_label: Option<String>,
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
    created(wire::User::from(user))
}

async fn list_service_tokens(Call(s, a, ctx): Call, Path(id): Path<UserId>) -> ApiResult {
    items::<wire::ApiToken, _>(s.services.list_service_tokens(&a, &id, &ctx).await?)
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
    created(wire::NewApiToken::from(t))
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
    ok(wire::UserWithGrants {
        user: user.into(),
        grants: grants.into_iter().map(Into::into).collect(),
    })
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
    ok(wire::Ended { ended })
}

async fn freeze_user(call: Call, Path(id): Path<UserId>) -> ApiResult {
    change_user(call, id, UserChange::Freeze).await
}

async fn unfreeze_user(call: Call, Path(id): Path<UserId>) -> ApiResult {
    change_user(call, id, UserChange::Unfreeze).await
}

async fn list_grants(Call(s, a, ctx): Call, Path(id): Path<UserId>) -> ApiResult {
    let (_, grants) = s.services.get_user(&a, &id, &ctx).await?;
    items::<wire::Grant, _>(grants)
}

#[derive(Deserialize, JsonSchema)]
struct GrantBody {
    role: String,
    scope: Option<ScopeBody>,
    /// Classification cap (DATA-3), e.g. "internal".
    max_label: Option<String>,
}

async fn add_grant(
    Call(s, a, ctx): Call,
    Path(id): Path<UserId>,
    ApiJson(b): ApiJson<GrantBody>,
) -> ApiResult {
    let scope = parse_scope(b.scope)?;
    created(wire::Grant::from(
        s.services
            .add_grant(&a, &id, &b.role, scope, b.max_label.as_deref(), &ctx)
            .await?,
    ))
}

async fn remove_grant(
    Call(s, a, ctx): Call,
    Path((uid, gid)): Path<(UserId, GrantId)>,
) -> ApiResult {
    s.services.remove_grant(&a, &uid, &gid, &ctx).await?;
    no_content()
}
