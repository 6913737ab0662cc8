//! Log-in (password, second step, passkeys), log-out, language, invitations and password resets.

use super::*;

// ---------------------------------------------------------------- login, logout, language

#[derive(Template)]
#[template(path = "login.html")]
struct LoginTpl {
    p: Page,
    tenant: String,
    email: String,
}

#[derive(Deserialize, Default)]
pub struct LoginQuery {
    tenant: Option<String>,
    #[serde(flatten)]
    flash: Flash,
}

pub async fn login_page(
    State(s): State<AppState>,
    v: Visitor,
    Query(q): Query<LoginQuery>,
) -> Response {
    let (token, cookie) = pre_csrf(&s);
    let mut p = anon_page(v.tr, "login.title", &token, "/login");
    p.notice = q.flash.notice(&v.tr);
    p.error = q.flash.error(&v.tr);
    let body = LoginTpl {
        p,
        tenant: q.tenant.unwrap_or_default(),
        email: String::new(),
    }
    .render();
    let mut res = html(StatusCode::OK, body);
    set_cookie(&mut res, &cookie);
    res
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

pub async fn login_submit(
    State(s): State<AppState>,
    v: Visitor,
    Form(f): Form<LoginForm>,
) -> Response {
    if !pre_csrf_ok(&v, &f.csrf) {
        return Redirect::to("/login?err=csrf").into_response();
    }
    match s
        .services
        .login(
            &f.tenant,
            &f.email,
            &f.password,
            SessionKind::Console,
            &v.ctx,
        )
        .await
    {
        Ok(LoginOutcome::Session(r)) => logged_in(&s, &r),
        Ok(LoginOutcome::SecondFactor { challenge, methods }) => {
            let (token, cookie) = pre_csrf(&s);
            let p = anon_page(v.tr, "mfa.title", &token, "/login");
            let passkey = methods.contains(&"passkey");
            let mut res = html(
                StatusCode::OK,
                MfaTpl {
                    p,
                    challenge,
                    passkey,
                }
                .render(),
            );
            set_cookie(&mut res, &cookie);
            res
        }
        Err(e) => {
            let (token, cookie) = pre_csrf(&s);
            let mut p = anon_page(v.tr, "login.title", &token, "/login");
            let key = match e {
                kura_services::ServiceError::TooManyAttempts { .. } => "err.locked",
                kura_services::ServiceError::Forbidden => "err.ip_not_allowed",
                _ => "login.failed",
            };
            p.error = Some(v.tr.t(key).to_string());
            let body = LoginTpl {
                p,
                tenant: f.tenant,
                email: f.email,
            }
            .render();
            let mut res = html(StatusCode::UNAUTHORIZED, body);
            set_cookie(&mut res, &cookie);
            res
        }
    }
}

pub async fn logout(c: Console, Form(f): Form<CsrfForm>) -> Response {
    let s = c.state.clone();
    if !csrf_ok(&c, &f.csrf) {
        return csrf_rejected("/");
    }
    if let Err(e) = s.services.logout(&c.auth, &c.ctx).await {
        return back_err("/", &e);
    }
    let mut res = Redirect::to("/login?out=1").into_response();
    set_cookie(&mut res, &clear_cookie(s.cookie_name()));
    res
}

#[derive(Deserialize)]
pub struct LangForm {
    #[serde(default)]
    lang: String,
    #[serde(default)]
    back: String,
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

/// Switches the console language: remembered in a cookie, and for a logged-in user also as
/// their setting (which needs the session's CSRF token).
pub async fn set_lang(
    State(s): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<LangForm>,
) -> Response {
    let Some(lang) = crate::web::i18n::Lang::parse(&f.lang) else {
        return (StatusCode::BAD_REQUEST, "unknown language").into_response();
    };
    let back = crate::web::safe_back(&f.back).unwrap_or_else(|| "/".to_string());
    let token = crate::extract::cookie(&headers, s.cookie_name()).map(str::to_string);
    if let Some(token) = token {
        if let Ok(auth) = s.services.authenticate(&token).await {
            if !kura_crypto::ct_eq(f.csrf.as_bytes(), auth.session.csrf_token.as_bytes()) {
                return csrf_rejected(&back);
            }
            let ctx = kura_services::RequestCtx::default();
            if let Err(e) = s
                .services
                .set_my_locale(&auth, Some(lang.code()), &ctx)
                .await
            {
                return back_err(&back, &e);
            }
        }
    }
    let mut res = Redirect::to(&back).into_response();
    set_cookie(
        &mut res,
        &format!(
            "{LANG_COOKIE}={}; Path=/; SameSite=Lax; Max-Age=31536000",
            lang.code()
        ),
    );
    res
}

// ---------------------------------------------------------------- invitations

#[derive(Template)]
#[template(path = "invite.html")]
struct InviteTpl {
    p: Page,
    valid: bool,
    token: String,
    tenant_name: String,
    email: String,
}

/// What a one-time link's page shows (invitation or password reset).
struct LinkView {
    valid: bool,
    token: String,
    tenant_name: String,
    email: String,
}

/// The page behind a one-time link: the form when the link is good (200), "invalid or
/// expired" otherwise (404) — for invitations and password resets alike.
fn one_time_link_page<T: Template>(
    s: &AppState,
    v: &Visitor,
    flash: &Flash,
    (title, invalid): (&'static str, &'static str),
    token: String,
    info: kura_services::Result<(kura_store::tenants::Tenant, kura_store::users::User)>,
    template: impl FnOnce(Page, LinkView) -> T,
) -> Response {
    let (csrf, cookie) = pre_csrf(s);
    let mut p = anon_page(v.tr, title, &csrf, "/");
    p.error = flash.error(&v.tr);
    let (status, view) = match info {
        Ok((tenant, user)) => (
            StatusCode::OK,
            LinkView {
                valid: true,
                token,
                tenant_name: tenant.name,
                email: user.email,
            },
        ),
        Err(_) => {
            p.error = Some(v.tr.t(invalid).to_string());
            (
                StatusCode::NOT_FOUND,
                LinkView {
                    valid: false,
                    token: String::new(),
                    tenant_name: String::new(),
                    email: String::new(),
                },
            )
        }
    };
    let mut res = html(status, template(p, view).render());
    set_cookie(&mut res, &cookie);
    res
}

pub async fn invite_page(
    State(s): State<AppState>,
    v: Visitor,
    Path(token): Path<String>,
    Query(flash): Query<Flash>,
) -> Response {
    let info = s.services.invitation_info(&token).await;
    one_time_link_page(
        &s,
        &v,
        &flash,
        ("invite.title", "invite.invalid"),
        token,
        info,
        |p, l| InviteTpl {
            p,
            valid: l.valid,
            token: l.token,
            tenant_name: l.tenant_name,
            email: l.email,
        },
    )
}

#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    password2: String,
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

/// The checks of a new-password form behind a one-time link (CSRF, the two entries equal):
/// the redirect back to `here` if it fails.
fn new_password_refused(v: &Visitor, f: &InviteForm, here: &str) -> Option<Response> {
    if !pre_csrf_ok(v, &f.csrf) {
        return Some(csrf_rejected(here));
    }
    if f.password != f.password2 {
        return Some(
            Redirect::to(&format!("{here}?err=invalid&reason=pw_mismatch")).into_response(),
        );
    }
    None
}

pub async fn invite_submit(
    State(s): State<AppState>,
    v: Visitor,
    Path(token): Path<String>,
    Form(f): Form<InviteForm>,
) -> Response {
    let here = format!("/invite/{token}");
    if let Some(refused) = new_password_refused(&v, &f, &here) {
        return refused;
    }
    match s
        .services
        .accept_invitation(&token, &f.password, SessionKind::Console, &v.ctx)
        .await
    {
        Ok(r) => logged_in(&s, &r),
        Err(e) => back_err(&here, &e),
    }
}

// ---------------------------------------------------------------- second factor

#[derive(Template)]
#[template(path = "mfa.html")]
struct MfaTpl {
    p: Page,
    challenge: String,
    /// The user has a passkey: offer it.
    passkey: bool,
}

#[derive(Deserialize)]
pub struct MfaForm {
    #[serde(default)]
    challenge: String,
    #[serde(default)]
    code: String,
    /// A passkey answer instead of a code: the ceremony and the credential (JSON).
    #[serde(default)]
    ceremony: Option<String>,
    #[serde(default)]
    credential: Option<String>,
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

/// The second step of a console log-in.
pub async fn login_mfa(State(s): State<AppState>, v: Visitor, Form(f): Form<MfaForm>) -> Response {
    if !pre_csrf_ok(&v, &f.csrf) {
        return Redirect::to("/login?err=csrf").into_response();
    }
    let factor = match (&f.ceremony, &f.credential) {
        (Some(ceremony), Some(credential)) if !ceremony.is_empty() => {
            match serde_json::from_str(credential) {
                Ok(credential) => SecondFactor::Passkey {
                    ceremony,
                    credential,
                },
                Err(_) => SecondFactor::Code(""),
            }
        }
        _ => SecondFactor::Code(&f.code),
    };
    let passkey = matches!(factor, SecondFactor::Passkey { .. });
    match s
        .services
        .complete_mfa_login(&f.challenge, factor, &v.ctx)
        .await
    {
        Ok(r) => logged_in(&s, &r),
        Err(e) => {
            let (token, cookie) = pre_csrf(&s);
            let mut p = anon_page(v.tr, "mfa.title", &token, "/login");
            let key = match e {
                kura_services::ServiceError::TooManyAttempts { .. } => "err.locked",
                _ if passkey => "passkey.failed",
                _ => "mfa.failed",
            };
            p.error = Some(v.tr.t(key).to_string());
            let body = MfaTpl {
                p,
                challenge: f.challenge,
                passkey,
            }
            .render();
            let mut res = html(StatusCode::UNAUTHORIZED, body);
            set_cookie(&mut res, &cookie);
            res
        }
    }
}

#[derive(Deserialize)]
pub struct PasskeyOptionsBody {
    #[serde(default)]
    tenant: String,
}

/// Starts a passwordless console log-in (JSON for the login page's script; the pre-login
/// CSRF token comes in `x-csrf-token`).
pub async fn login_passkey_options(
    State(s): State<AppState>,
    v: Visitor,
    headers: HeaderMap,
    axum::Json(b): axum::Json<PasskeyOptionsBody>,
) -> Response {
    let sent = headers
        .get("x-csrf-token")
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if !pre_csrf_ok(&v, sent) {
        return (
            StatusCode::FORBIDDEN,
            axum::Json(serde_json::json!({"error": "csrf"})),
        )
            .into_response();
    }
    match s
        .services
        .start_passkey_login(&b.tenant, SessionKind::Console)
        .await
    {
        Ok(start) => axum::Json(crate::api::wire::Ceremony::from(start)).into_response(),
        Err(e) => crate::error::ApiError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
pub struct PasskeyLoginForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    ceremony: String,
    #[serde(default)]
    credential: String,
}

/// Finishes a passwordless console log-in: the passkey is both factors.
pub async fn login_passkey(
    State(s): State<AppState>,
    v: Visitor,
    Form(f): Form<PasskeyLoginForm>,
) -> Response {
    if !pre_csrf_ok(&v, &f.csrf) {
        return Redirect::to("/login?err=csrf").into_response();
    }
    let credential = serde_json::from_str(&f.credential).unwrap_or(serde_json::Value::Null);
    match s
        .services
        .complete_passkey_login(&f.ceremony, credential, &v.ctx)
        .await
    {
        Ok(r) => logged_in(&s, &r),
        Err(e) => {
            let (token, cookie) = pre_csrf(&s);
            let mut p = anon_page(v.tr, "login.title", &token, "/login");
            let key = match e {
                kura_services::ServiceError::TooManyAttempts { .. } => "err.locked",
                kura_services::ServiceError::Forbidden => "err.ip_not_allowed",
                _ => "passkey.failed",
            };
            p.error = Some(v.tr.t(key).to_string());
            let body = LoginTpl {
                p,
                tenant: f.tenant,
                email: String::new(),
            }
            .render();
            let mut res = html(StatusCode::UNAUTHORIZED, body);
            set_cookie(&mut res, &cookie);
            res
        }
    }
}

// ---------------------------------------------------------------- password reset

#[derive(Template)]
#[template(path = "reset.html")]
struct ResetTpl {
    p: Page,
    tenant: String,
}

/// "Forgot your password?": asks for the tenant ID and e-mail address.
pub async fn reset_page(
    State(s): State<AppState>,
    v: Visitor,
    Query(q): Query<LoginQuery>,
) -> Response {
    let (token, cookie) = pre_csrf(&s);
    let mut p = anon_page(v.tr, "reset.title", &token, "/reset");
    p.notice = q.flash.notice(&v.tr);
    p.error = q.flash.error(&v.tr);
    let body = ResetTpl {
        p,
        tenant: q.tenant.unwrap_or_default(),
    }
    .render();
    let mut res = html(StatusCode::OK, body);
    set_cookie(&mut res, &cookie);
    res
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    email: String,
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

/// Sends the link if the account exists; the answer is the same either way.
pub async fn reset_submit(
    State(s): State<AppState>,
    v: Visitor,
    Form(f): Form<ResetForm>,
) -> Response {
    if !pre_csrf_ok(&v, &f.csrf) {
        return csrf_rejected("/reset");
    }
    match s
        .services
        .request_password_reset(&f.tenant, &f.email, &v.ctx)
        .await
    {
        Ok(()) => back_ok("/reset", "reset_sent"),
        Err(e) => back_err("/reset", &e),
    }
}

#[derive(Template)]
#[template(path = "reset_token.html")]
struct ResetTokenTpl {
    p: Page,
    valid: bool,
    token: String,
    tenant_name: String,
    email: String,
}

pub async fn reset_token_page(
    State(s): State<AppState>,
    v: Visitor,
    Path(token): Path<String>,
    Query(flash): Query<Flash>,
) -> Response {
    let info = s.services.password_reset_info(&token).await;
    one_time_link_page(
        &s,
        &v,
        &flash,
        ("reset.title", "reset.invalid"),
        token,
        info,
        |p, l| ResetTokenTpl {
            p,
            valid: l.valid,
            token: l.token,
            tenant_name: l.tenant_name,
            email: l.email,
        },
    )
}

pub async fn reset_token_submit(
    State(s): State<AppState>,
    v: Visitor,
    Path(token): Path<String>,
    Form(f): Form<InviteForm>,
) -> Response {
    let here = format!("/reset/{token}");
    if let Some(refused) = new_password_refused(&v, &f, &here) {
        return refused;
    }
    match s
        .services
        .complete_password_reset(&token, &f.password, &v.ctx)
        .await
    {
        Ok(tenant) => {
            let mut res = Redirect::to(&format!(
                "/login?tenant={}&ok=password_reset",
                crate::web::encode(&tenant.slug)
            ))
            .into_response();
            set_cookie(&mut res, &clear_cookie(s.csrf_cookie_name()));
            res
        }
        Err(e) => back_err(&here, &e),
    }
}
