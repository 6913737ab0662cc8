//! The caller's account: sessions, API tokens, two-step verification, passkeys.

use super::*;

#[derive(Deserialize)]
pub struct PasskeyAddForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    ceremony: String,
    #[serde(default)]
    credential: String,
}

/// Adds a passkey from the account page (the script fills the form with the
/// authenticator's answer). The first second factor shows its recovery codes.
pub async fn passkey_add(c: Console, Form(f): Form<PasskeyAddForm>) -> Response {
    let s = c.state.clone();
    if !csrf_ok(&c, &f.csrf) {
        return csrf_rejected("/account");
    }
    let credential = serde_json::from_str(&f.credential).unwrap_or(serde_json::Value::Null);
    match s
        .services
        .finish_passkey_registration(&c.auth, &f.ceremony, &f.name, credential, &c.ctx)
        .await
    {
        Ok(added) => match added.recovery_codes {
            Some(codes) => {
                let flash = Flash {
                    ok: Some("passkey_added".into()),
                    ..Flash::default()
                };
                html(
                    StatusCode::OK,
                    RecoveryTpl {
                        p: page(&c, "mfa.recovery_title", "account", "/account", &flash),
                        codes,
                    }
                    .render(),
                )
            }
            None => back_ok("/account", "passkey_added"),
        },
        Err(e) => back_err("/account", &e),
    }
}

pub async fn passkey_remove(
    c: Console,
    Path(id): Path<kura_domain::PasskeyId>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let s = c.state.clone();
    act(
        &c,
        &f.csrf,
        "/account",
        "passkey_removed",
        s.services.delete_passkey(&c.auth, &id, &c.ctx),
    )
    .await
}

#[derive(Template)]
#[template(path = "totp_enrol.html")]
struct TotpEnrolTpl {
    p: Page,
    secret: String,
    qr_svg: String,
}

pub async fn totp_start(c: Console, Form(f): Form<CsrfForm>) -> Response {
    let s = c.state.clone();
    if !csrf_ok(&c, &f.csrf) {
        return csrf_rejected("/account");
    }
    match s.services.start_totp(&c.auth, &c.ctx).await {
        Ok(e) => html(
            StatusCode::OK,
            TotpEnrolTpl {
                p: page(
                    &c,
                    "mfa.enrol_title",
                    "account",
                    "/account",
                    &Flash::default(),
                ),
                secret: e.secret,
                qr_svg: e.qr_svg,
            }
            .render(),
        ),
        Err(e) => back_err("/account", &e),
    }
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
    #[serde(default)]
    code: String,
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
struct RecoveryTpl {
    p: Page,
    codes: Vec<String>,
}

pub async fn totp_confirm(c: Console, Form(f): Form<CodeForm>) -> Response {
    let s = c.state.clone();
    if !csrf_ok(&c, &f.csrf) {
        return csrf_rejected("/account");
    }
    match s.services.confirm_totp(&c.auth, &f.code, &c.ctx).await {
        Ok(codes) => {
            let flash = Flash {
                ok: Some("totp_enabled".into()),
                ..Flash::default()
            };
            html(
                StatusCode::OK,
                RecoveryTpl {
                    p: page(&c, "mfa.recovery_title", "account", "/account", &flash),
                    codes,
                }
                .render(),
            )
        }
        Err(e) => back_err("/account", &e),
    }
}

pub async fn totp_disable(c: Console, Form(f): Form<CodeForm>) -> Response {
    let s = c.state.clone();
    act(
        &c,
        &f.csrf,
        "/account",
        "totp_disabled",
        s.services.disable_totp(&c.auth, &f.code, &c.ctx),
    )
    .await
}

pub struct SessionRow {
    id: String,
    current: bool,
    kind: String,
    device: String,
    ip: String,
    created: String,
    last_seen: String,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountTpl {
    p: Page,
    email: String,
    tokens: Vec<TokenRow>,
    /// A token just created: shown once.
    new_token: Option<String>,
    areas: &'static [&'static str],
    sessions: Vec<SessionRow>,
    totp: bool,
    recovery_left: i64,
    mfa_required: bool,
    passkeys: Vec<PasskeyLine>,
    /// Where the token forms post (shared section with the service-account page).
    token_base: String,
}

struct PasskeyLine {
    id: String,
    name: String,
    created: String,
    last_used: String,
}

/// The user's own account: their sessions (device, address, last use), each can be ended.
pub async fn account_page(c: Console, Query(flash): Query<Flash>) -> Response {
    let s = c.state.clone();
    account_view(&s, &c, &flash, None).await
}

async fn account_view(
    s: &AppState,
    c: &Console,
    flash: &Flash,
    new_token: Option<String>,
) -> Response {
    let zone = c.auth.tenant.settings.time_zone.clone();
    let sessions = s
        .services
        .my_sessions(&c.auth)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|v| SessionRow {
            id: v.session.id.clone(),
            current: v.current,
            kind: v.session.kind.clone(),
            device: v.session.user_agent.clone().unwrap_or_default(),
            ip: v.session.ip.clone().unwrap_or_default(),
            created: v.session.created_at.format_in_zone(&zone),
            last_seen: v.session.last_seen_at.format_in_zone(&zone),
        })
        .collect();
    let status = s.services.mfa_status(&c.auth).await.ok();
    let tokens = token_rows(
        s.services
            .list_api_tokens(&c.auth)
            .await
            .unwrap_or_default(),
        &zone,
    );
    let passkeys = s
        .services
        .list_passkeys(&c.auth)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|k| PasskeyLine {
            id: k.id,
            name: k.name,
            created: k.created_at.format_in_zone(&zone),
            last_used: k
                .last_used_at
                .map(|e| e.format_in_zone(&zone))
                .unwrap_or_default(),
        })
        .collect();
    let body = AccountTpl {
        passkeys,
        token_base: "/account/tokens".into(),
        p: page(c, "account.title", "account", "/account", flash),
        email: c.auth.user.email.clone(),
        tokens,
        new_token,
        areas: kura_services::auth::TOKEN_AREAS,
        sessions,
        totp: status.as_ref().is_some_and(|x| x.totp),
        recovery_left: status.as_ref().map(|x| x.recovery_codes_left).unwrap_or(0),
        mfa_required: c
            .auth
            .tenant
            .settings
            .mfa_required_for(&c.auth.builtin_roles()),
    }
    .render();
    html(StatusCode::OK, body)
}

pub async fn token_create(c: Console, Form(pairs): Form<Vec<(String, String)>>) -> Response {
    let s = c.state.clone();
    let f = token_form(pairs);
    if !csrf_ok(&c, &f.csrf) {
        return csrf_rejected("/account");
    }
    match s
        .services
        .create_api_token(
            &c.auth,
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
            account_view(&s, &c, &flash, Some(t.token)).await
        }
        Err(e) => back_err("/account", &e),
    }
}

pub async fn token_revoke(
    c: Console,
    Path(id): Path<kura_domain::ApiTokenId>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let s = c.state.clone();
    act(
        &c,
        &f.csrf,
        "/account",
        "token_revoked",
        s.services.revoke_api_token(&c.auth, &id, &c.ctx),
    )
    .await
}

pub async fn session_end(
    c: Console,
    Path(id): Path<kura_domain::SessionId>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let s = c.state.clone();
    let current = id.as_str() == c.auth.session.id;
    let r = act(
        &c,
        &f.csrf,
        "/account",
        "session_ended",
        s.services.end_my_session(&c.auth, &id, &c.ctx),
    )
    .await;
    if current && csrf_ok(&c, &f.csrf) {
        // Ending this very session is a log-out.
        return Redirect::to("/login?out=1").into_response();
    }
    r
}
