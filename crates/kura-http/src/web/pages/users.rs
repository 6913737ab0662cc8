//! Users, service accounts and their tokens, grants.

use super::*;

// ---------------------------------------------------------------- users

pub struct GrantView {
    id: String,
    label: String,
    scope: String,
}

pub struct UserView {
    id: String,
    email: String,
    name: String,
    status: &'static str,
    status_key: &'static str,
    is_me: bool,
    /// A service account: no log-in; its API tokens are managed by admins.
    service: bool,
    grants: Vec<GrantView>,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersTpl {
    p: Page,
    users: Vec<UserView>,
    roles: Vec<(String, String)>,
    scopes: Vec<(String, String)>,
    labels: Vec<String>,
}

fn role_label(tr: &Tr, r: &RoleRef) -> String {
    match r {
        RoleRef::Builtin { role } => tr.t(&format!("role.{}", role.as_str())).to_string(),
        RoleRef::Custom { name, .. } => name.clone(),
    }
}

fn scope_label(tr: &Tr, s: &Scope, names: &HashMap<String, String>) -> String {
    match s {
        Scope::Tenant => tr.t("users.scope_tenant").to_string(),
        Scope::Folder(f) => format!(
            "📁 {}",
            names
                .get(f.as_str())
                .cloned()
                .unwrap_or_else(|| f.to_string())
        ),
        Scope::Project(p) => format!(
            "📄 {}",
            names
                .get(p.as_str())
                .cloned()
                .unwrap_or_else(|| p.to_string())
        ),
    }
}

fn grant_view(tr: &Tr, g: &GrantRow, names: &HashMap<String, String>) -> GrantView {
    GrantView {
        id: g.id.to_string(),
        label: role_label(tr, &g.role),
        scope: scope_label(tr, &g.scope, names),
    }
}

pub async fn users_page(c: Console, Query(flash): Query<Flash>) -> Response {
    let s = c.state.clone();
    let list = match s.services.list_users_with_grants(&c.auth, &c.ctx).await {
        Ok(l) => l,
        Err(e) => return message(&c, StatusCode::FORBIDDEN, &e),
    };
    let tree = match s.services.workspace_tree(&c.auth).await {
        Ok(t) => t,
        Err(e) => return back_err("/", &e),
    };
    let custom = s
        .services
        .list_roles(&c.auth, &c.ctx)
        .await
        .unwrap_or_default();
    let mut names: HashMap<String, String> = HashMap::new();
    for f in &tree.folders {
        names.insert(f.id.to_string(), f.name.clone());
    }
    for p in &tree.projects {
        names.insert(p.id.to_string(), p.name.clone());
    }
    let mut roles: Vec<(String, String)> = BuiltinRole::ALL
        .iter()
        .map(|r| {
            (
                r.as_str().to_string(),
                c.tr.t(&format!("role.{}", r.as_str())).to_string(),
            )
        })
        .collect();
    roles.extend(custom.iter().map(|r| (r.id.to_string(), r.name.clone())));
    let mut scopes = vec![(
        "tenant".to_string(),
        c.tr.t("users.scope_tenant").to_string(),
    )];
    scopes.extend(
        tree.folders
            .iter()
            .map(|f| (format!("folder:{}", f.id), format!("📁 {}", f.name))),
    );
    scopes.extend(
        tree.projects
            .iter()
            .map(|p| (format!("project:{}", p.id), format!("📄 {}", p.name))),
    );
    let users = list
        .iter()
        .map(|(u, g)| UserView {
            id: u.id.to_string(),
            email: u.email.clone(),
            name: u.display_name.clone(),
            status: u.status.as_str(),
            status_key: match u.status {
                kura_domain::user::UserStatus::Active => "status.active",
                kura_domain::user::UserStatus::Invited => "status.invited",
                kura_domain::user::UserStatus::Frozen => "status.frozen",
            },
            is_me: u.id == c.auth.user.id,
            service: u.kind == kura_domain::user::UserKind::Service,
            grants: g.iter().map(|g| grant_view(&c.tr, g, &names)).collect(),
        })
        .collect();
    let body = UsersTpl {
        p: page(&c, "users.title", "users", "/users", &flash),
        users,
        roles,
        scopes,
        labels: c.auth.tenant.settings.labels.clone(),
    }
    .render();
    html(StatusCode::OK, body)
}

/// The scope a console form names, by the one parser the API uses too: a bad one is
/// refused (`err=invalid&field=scope`), never taken for tenant-wide.
fn form_scope(value: &str) -> Result<Scope, kura_services::ServiceError> {
    Ok(Scope::parse_field(value)?)
}

#[derive(Deserialize)]
pub struct InviteUserForm {
    #[serde(default)]
    max_label: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    locale: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    scope: String,
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

pub async fn user_invite(c: Console, Form(f): Form<InviteUserForm>) -> Response {
    let s = c.state.clone();
    if !csrf_ok(&c, &f.csrf) {
        return csrf_rejected("/users");
    }
    let role = match (!f.role.is_empty())
        .then(|| form_scope(&f.scope).map(|scope| (f.role.clone(), scope)))
        .transpose()
    {
        Ok(role) => role,
        Err(e) => return back_err("/users", &e),
    };
    let input = NewUser {
        email: f.email,
        display_name: f.display_name,
        locale: Some(f.locale),
        role,
        max_label: (!f.max_label.is_empty()).then_some(f.max_label),
    };
    match s.services.invite_user(&c.auth, input, &c.ctx).await {
        Ok(_) => back_ok("/users", "user_invited"),
        Err(e) => back_err("/users", &e),
    }
}

async fn user_change(
    s: AppState,
    c: Console,
    id: String,
    csrf: &str,
    change: UserChange,
    ok_key: &str,
) -> Response {
    let id = UserId::from_string(id);
    act(
        &c,
        csrf,
        "/users",
        ok_key,
        s.services.change_user(&c.auth, &id, change, &c.ctx),
    )
    .await
}

pub async fn user_end_sessions(
    c: Console,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let s = c.state.clone();
    act(
        &c,
        &f.csrf,
        "/users",
        "sessions_ended",
        s.services
            .end_user_sessions(&c.auth, &UserId::from_string(id), &c.ctx),
    )
    .await
}

// ---------------------------------------------------------------- service accounts

#[derive(Deserialize)]
pub struct ServiceAccountForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    scope: String,
}

pub async fn service_account_create(c: Console, Form(f): Form<ServiceAccountForm>) -> Response {
    let s = c.state.clone();
    if !csrf_ok(&c, &f.csrf) {
        return csrf_rejected("/users");
    }
    let role = match (!f.role.is_empty())
        .then(|| form_scope(&f.scope).map(|scope| (f.role.clone(), scope)))
        .transpose()
    {
        Ok(role) => role,
        Err(e) => return back_err("/users", &e),
    };
    match s
        .services
        .create_service_account(&c.auth, &f.name, role, None, &c.ctx)
        .await
    {
        Ok(u) => Redirect::to(&format!(
            "/users/{}/tokens?ok=service_account_created",
            u.id
        ))
        .into_response(),
        Err(e) => back_err("/users", &e),
    }
}

#[derive(Template)]
#[template(path = "service_tokens.html")]
struct ServiceTokensTpl {
    p: Page,
    account_name: String,
    account_email: String,
    tokens: Vec<TokenRow>,
    new_token: Option<String>,
    areas: &'static [&'static str],
    token_base: String,
}

async fn service_tokens_view(
    s: &AppState,
    c: &Console,
    id: &str,
    flash: &Flash,
    new_token: Option<String>,
) -> Response {
    let uid = UserId::from_string(id);
    let back = format!("/users/{id}/tokens");
    let list = match s.services.list_service_tokens(&c.auth, &uid, &c.ctx).await {
        Ok(l) => l,
        Err(e) => return message(c, StatusCode::NOT_FOUND, &e),
    };
    let (user, _) = match s.services.get_user(&c.auth, &uid, &c.ctx).await {
        Ok(u) => u,
        Err(e) => return message(c, StatusCode::NOT_FOUND, &e),
    };
    let zone = c.auth.tenant.settings.time_zone.clone();
    let body = ServiceTokensTpl {
        p: page(c, "svc.title", "users", &back, flash),
        account_name: user.display_name,
        account_email: user.email,
        tokens: token_rows(list, &zone),
        new_token,
        areas: kura_services::auth::TOKEN_AREAS,
        token_base: back.clone(),
    }
    .render();
    html(StatusCode::OK, body)
}

pub async fn service_tokens_page(
    c: Console,
    Path(id): Path<String>,
    Query(flash): Query<Flash>,
) -> Response {
    let s = c.state.clone();
    service_tokens_view(&s, &c, &id, &flash, None).await
}

pub async fn service_token_create(
    c: Console,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let s = c.state.clone();
    let f = token_form(pairs);
    let back = format!("/users/{id}/tokens");
    if !csrf_ok(&c, &f.csrf) {
        return csrf_rejected(&back);
    }
    match s
        .services
        .create_service_token(
            &c.auth,
            &UserId::from_string(&id),
            &f.name,
            f.scopes,
            f.expires_in_days.unwrap_or(90),
            &c.ctx,
        )
        .await
    {
        Ok(t) => {
            let flash = Flash {
                ok: Some("token_created".into()),
                ..Flash::default()
            };
            service_tokens_view(&s, &c, &id, &flash, Some(t.token)).await
        }
        Err(e) => back_err(&back, &e),
    }
}

pub async fn service_token_revoke(
    c: Console,
    Path((id, tid)): Path<(String, String)>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let s = c.state.clone();
    let back = format!("/users/{id}/tokens");
    act(
        &c,
        &f.csrf,
        &back,
        "token_revoked",
        s.services
            .revoke_service_token(&c.auth, &UserId::from_string(&id), &tid, &c.ctx),
    )
    .await
}

pub async fn user_freeze(c: Console, Path(id): Path<String>, Form(f): Form<CsrfForm>) -> Response {
    let s = c.state.clone();
    user_change(s, c, id, &f.csrf, UserChange::Freeze, "user_frozen").await
}

pub async fn user_unfreeze(
    c: Console,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let s = c.state.clone();
    user_change(s, c, id, &f.csrf, UserChange::Unfreeze, "user_unfrozen").await
}

pub async fn user_delete(c: Console, Path(id): Path<String>, Form(f): Form<CsrfForm>) -> Response {
    let s = c.state.clone();
    user_change(s, c, id, &f.csrf, UserChange::Delete, "user_deleted").await
}

#[derive(Deserialize)]
pub struct GrantForm {
    #[serde(default)]
    max_label: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    scope: String,
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

pub async fn grant_add(c: Console, Path(id): Path<String>, Form(f): Form<GrantForm>) -> Response {
    let s = c.state.clone();
    if !csrf_ok(&c, &f.csrf) {
        return csrf_rejected("/users");
    }
    let scope = match form_scope(&f.scope) {
        Ok(scope) => scope,
        Err(e) => return back_err("/users", &e),
    };
    match s
        .services
        .add_grant(
            &c.auth,
            &UserId::from_string(id),
            &f.role,
            scope,
            (!f.max_label.is_empty()).then_some(f.max_label.as_str()),
            &c.ctx,
        )
        .await
    {
        Ok(_) => back_ok("/users", "grant_added"),
        Err(e) => back_err("/users", &e),
    }
}

pub async fn grant_remove(
    c: Console,
    Path((id, gid)): Path<(String, String)>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let s = c.state.clone();
    if !csrf_ok(&c, &f.csrf) {
        return csrf_rejected("/users");
    }
    match s
        .services
        .remove_grant(
            &c.auth,
            &UserId::from_string(id),
            &GrantId::from_string(gid),
            &c.ctx,
        )
        .await
    {
        Ok(()) => back_ok("/users", "grant_removed"),
        Err(e) => back_err("/users", &e),
    }
}
