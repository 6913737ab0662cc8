//! Console pages and form handlers.

use super::i18n::Tr;
use super::{
    back_err, back_ok, clear_cookie, html, session_cookie, set_cookie, Console, Visitor,
    LANG_COOKIE,
};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use kura_domain::authz::{BuiltinRole, Scope};
use kura_domain::{Action, FolderId, GrantId, ProjectId, UserId};
use kura_services::auth::SessionKind;
use kura_services::mfa::SecondFactor;
use kura_services::users::{NewUser, UserChange};
use kura_services::workspace::Patch;
use kura_store::roles::{GrantRow, RoleRef};
use serde::Deserialize;
use std::collections::HashMap;

/// What every page shows around its content.
pub struct Page {
    pub tr: Tr,
    pub title: &'static str,
    pub user_name: Option<String>,
    pub tenant_name: Option<String>,
    pub csrf: String,
    pub nav: &'static str,
    pub notice: Option<String>,
    pub error: Option<String>,
    pub back: String,
    pub can_admin: bool,
    pub can_audit: bool,
    pub can_manage_tenant: bool,
    /// Service notices: (kind label, title, effective time in the tenant's zone, body).
    pub banners: Vec<(String, String, String, String)>,
}

#[derive(Deserialize, Default)]
pub struct Flash {
    ok: Option<String>,
    err: Option<String>,
    /// A known reason (`err.r.<reason>`), e.g. why a conflict happened.
    reason: Option<String>,
    /// The field an invalid input was in (`field.<field>`).
    field: Option<String>,
    /// A number for the reason (a minimum length).
    n: Option<String>,
    expired: Option<String>,
    out: Option<String>,
}

fn known(tr: &Tr, key: &str) -> Option<&'static str> {
    super::i18n::MESSAGES
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|_| tr.t(key))
}

impl Flash {
    pub(super) fn notice(&self, tr: &Tr) -> Option<String> {
        if self.out.is_some() {
            return Some(tr.t("login.logged_out").to_string());
        }
        self.ok
            .as_deref()
            .and_then(|k| known(tr, &format!("ok.{k}")))
            .map(str::to_string)
    }
    pub(super) fn error(&self, tr: &Tr) -> Option<String> {
        if self.expired.is_some() {
            return Some(tr.t("login.expired").to_string());
        }
        // Only Kura's own messages: keys looked up, a number parsed; nothing shown as typed.
        let code = self.err.as_deref()?;
        let msg = known(tr, &format!("err.{code}")).unwrap_or(tr.t("err.invalid"));
        let n = self.n.as_deref().and_then(|n| n.parse::<u32>().ok());
        let reason = self
            .reason
            .as_deref()
            .and_then(|r| known(tr, &format!("err.r.{r}")))
            .map(|r| r.replace("{n}", &n.map(|n| n.to_string()).unwrap_or_default()));
        let field = self
            .field
            .as_deref()
            .and_then(|f| known(tr, &format!("field.{f}")));
        Some(format!(
            "{msg}{}{}",
            reason.unwrap_or_default(),
            field
                .map(|f| format!("{}{f}", tr.t("err.field")))
                .unwrap_or_default()
        ))
    }
}

fn page(c: &Console, title: &'static str, nav: &'static str, back: &str, flash: &Flash) -> Page {
    Page {
        tr: c.tr,
        title,
        user_name: Some(c.auth.user.display_name.clone()),
        tenant_name: Some(c.auth.tenant.name.clone()),
        csrf: c.auth.session.csrf_token.clone(),
        nav,
        notice: flash.notice(&c.tr),
        error: flash.error(&c.tr),
        back: back.to_string(),
        can_admin: c.may(Action::UserRead),
        can_audit: c.may(Action::AuditRead),
        can_manage_tenant: c.may(Action::TenantManage),
        banners: c
            .notices
            .iter()
            .map(|n| {
                let ja = c.tr.0 == super::i18n::Lang::Ja;
                (
                    c.tr.t(&format!("notice.kind.{}", n.kind)).to_string(),
                    if ja {
                        n.title_ja.clone()
                    } else {
                        n.title_en.clone()
                    },
                    n.effective_at
                        .format_in_zone(&c.auth.tenant.settings.time_zone),
                    if ja {
                        n.body_ja.clone()
                    } else {
                        n.body_en.clone()
                    },
                )
            })
            .collect(),
    }
}

fn anon_page(tr: Tr, title: &'static str, csrf: &str, back: &str) -> Page {
    Page {
        tr,
        title,
        user_name: None,
        tenant_name: None,
        csrf: csrf.to_string(),
        nav: "",
        notice: None,
        error: None,
        back: back.to_string(),
        can_admin: false,
        can_audit: false,
        can_manage_tenant: false,
        banners: Vec::new(),
    }
}

fn csrf_ok(c: &Console, sent: &str) -> bool {
    kura_crypto::ct_eq(sent.as_bytes(), c.auth.session.csrf_token.as_bytes())
}

/// Runs a console form action: checks the CSRF token, then sends the user back to `back`
/// with the translated notice `ok_key`, or with the error. The action's future is lazy, so
/// nothing happens when the token is wrong.
async fn act<T>(
    c: &Console,
    csrf: &str,
    back: &str,
    ok_key: &str,
    action: impl std::future::Future<Output = Result<T, kura_services::ServiceError>>,
) -> Response {
    if !csrf_ok(c, csrf) {
        return csrf_rejected(back);
    }
    match action.await {
        Ok(_) => back_ok(back, ok_key),
        Err(e) => back_err(back, &e),
    }
}

pub(super) fn csrf_rejected(path: &str) -> Response {
    Redirect::to(&format!("{path}?err=csrf")).into_response()
}

/// A fresh pre-session CSRF token and the cookie carrying it.
pub(super) fn pre_csrf(state: &AppState) -> (String, String) {
    let token = kura_crypto::token::random_string().unwrap_or_default();
    let secure = if state.http.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=3600{secure}",
        state.csrf_cookie_name()
    );
    (token, cookie)
}

pub(super) fn pre_csrf_ok(v: &Visitor, sent: &str) -> bool {
    match &v.pre_csrf {
        Some(c) => !c.is_empty() && kura_crypto::ct_eq(c.as_bytes(), sent.as_bytes()),
        None => false,
    }
}

/// A new console session: its cookie, the pre-login CSRF cookie cleared, on to the
/// workspace.
fn logged_in(s: &AppState, r: &kura_services::auth::LoginResult) -> Response {
    let max_age = r.tenant.settings.session_policy.absolute_lifetime_secs;
    let mut res = Redirect::to("/").into_response();
    set_cookie(&mut res, &session_cookie(s, &r.token, max_age));
    set_cookie(&mut res, &clear_cookie(s.csrf_cookie_name()));
    res
}

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
        Ok(r) => logged_in(&s, &r),
        Err(kura_services::ServiceError::MfaRequired { challenge, methods }) => {
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

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

pub async fn logout(State(s): State<AppState>, c: Console, Form(f): Form<CsrfForm>) -> Response {
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
    let Some(lang) = super::i18n::Lang::parse(&f.lang) else {
        return (StatusCode::BAD_REQUEST, "unknown language").into_response();
    };
    let back = super::safe_back(&f.back).unwrap_or_else(|| "/".to_string());
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

pub async fn invite_page(
    State(s): State<AppState>,
    v: Visitor,
    Path(token): Path<String>,
    Query(flash): Query<Flash>,
) -> Response {
    let (csrf, cookie) = pre_csrf(&s);
    let mut p = anon_page(v.tr, "invite.title", &csrf, "/");
    p.error = flash.error(&v.tr);
    let (status, body) = match s.services.invitation_info(&token).await {
        Ok((tenant, user)) => (
            StatusCode::OK,
            InviteTpl {
                p,
                valid: true,
                token,
                tenant_name: tenant.name,
                email: user.email,
            }
            .render(),
        ),
        Err(_) => {
            p.error = Some(v.tr.t("invite.invalid").to_string());
            (
                StatusCode::NOT_FOUND,
                InviteTpl {
                    p,
                    valid: false,
                    token: String::new(),
                    tenant_name: String::new(),
                    email: String::new(),
                }
                .render(),
            )
        }
    };
    let mut res = html(status, body);
    set_cookie(&mut res, &cookie);
    res
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

pub async fn invite_submit(
    State(s): State<AppState>,
    v: Visitor,
    Path(token): Path<String>,
    Form(f): Form<InviteForm>,
) -> Response {
    let here = format!("/invite/{token}");
    if !pre_csrf_ok(&v, &f.csrf) {
        return csrf_rejected(&here);
    }
    if f.password != f.password2 {
        return Redirect::to(&format!("{here}?err=invalid&reason=pw_mismatch")).into_response();
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

// ---------------------------------------------------------------- security settings

#[derive(Template)]
#[template(path = "security.html")]
struct SecurityTpl {
    p: Page,
    ip_allowlist: String,
    /// (role, applies)
    ip_roles: Vec<(&'static str, bool)>,
    current_ip: String,
    /// (role, MFA required for it)
    mfa_roles: Vec<(&'static str, bool)>,
    mfa_required: bool,
    idle_minutes: i64,
    absolute_hours: i64,
    min_length: u32,
    require_symbol: bool,
    require_mixed_case: bool,
    min_strength: u8,
    audit_retention_days: i64,
    access_log_retention_days: i64,
    lifecycle_policy: String,
}

/// Tenant admins: MFA requirement, session timeouts, password policy.
pub async fn security_page(
    State(s): State<AppState>,
    c: Console,
    Query(flash): Query<Flash>,
) -> Response {
    let st = match s.services.settings_for_edit(&c.auth, &c.ctx).await {
        Ok(st) => st,
        Err(e) => return message(&c, StatusCode::FORBIDDEN, &e),
    };
    let st = &st;
    let body = SecurityTpl {
        p: page(&c, "security.title", "security", "/security", &flash),
        ip_allowlist: st.ip_allowlist.join("\n"),
        ip_roles: kura_domain::authz::BuiltinRole::ALL
            .iter()
            .map(|r| {
                (
                    r.as_str(),
                    st.ip_allowlist_roles.iter().any(|x| x == r.as_str()),
                )
            })
            .collect(),
        current_ip: c.ctx.ip.clone().unwrap_or_default(),
        mfa_roles: kura_domain::authz::BuiltinRole::ALL
            .iter()
            .map(|r| {
                (
                    r.as_str(),
                    st.mfa_required_roles.iter().any(|x| x == r.as_str()),
                )
            })
            .collect(),
        mfa_required: st.mfa_required,
        idle_minutes: st.session_policy.idle_timeout_secs / 60,
        absolute_hours: st.session_policy.absolute_lifetime_secs / 3600,
        min_length: st.password_policy.min_length,
        require_symbol: st.password_policy.require_symbol,
        require_mixed_case: st.password_policy.require_mixed_case,
        min_strength: st.password_policy.min_strength,
        lifecycle_policy: c
            .tr
            .t("lifecycle.policy")
            .replace("{delete}", &s.services.config.delete_after_days.to_string())
            .replace("{shred}", &s.services.config.shred_after_days.to_string())
            .replace("{keep}", &s.services.config.backup_keep.to_string()),
        audit_retention_days: st.audit_retention_days,
        access_log_retention_days: st.access_log_retention_days,
    }
    .render();
    html(StatusCode::OK, body)
}

#[derive(Deserialize)]
pub struct SecurityForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
    #[serde(default)]
    mfa_required: Option<String>,
    #[serde(default)]
    ip_allowlist: String,
    #[serde(default)]
    ip_role_contract_admin: Option<String>,
    #[serde(default)]
    ip_role_admin: Option<String>,
    #[serde(default)]
    ip_role_member: Option<String>,
    #[serde(default)]
    ip_role_guest: Option<String>,
    #[serde(default)]
    confirm_lockout: Option<String>,
    #[serde(default)]
    mfa_role_contract_admin: Option<String>,
    #[serde(default)]
    mfa_role_admin: Option<String>,
    #[serde(default)]
    mfa_role_member: Option<String>,
    #[serde(default)]
    mfa_role_guest: Option<String>,
    idle_minutes: i64,
    absolute_hours: i64,
    min_length: u32,
    #[serde(default)]
    require_symbol: Option<String>,
    #[serde(default)]
    require_mixed_case: Option<String>,
    min_strength: u8,
    #[serde(default)]
    audit_retention_days: Option<i64>,
    #[serde(default)]
    access_log_retention_days: Option<i64>,
}

pub async fn security_submit(
    State(s): State<AppState>,
    c: Console,
    Form(f): Form<SecurityForm>,
) -> Response {
    let mut st = c.auth.tenant.settings.clone();
    st.mfa_required = f.mfa_required.is_some();
    st.mfa_required_roles = [
        ("contract_admin", &f.mfa_role_contract_admin),
        ("admin", &f.mfa_role_admin),
        ("member", &f.mfa_role_member),
        ("guest", &f.mfa_role_guest),
    ]
    .iter()
    .filter(|(_, on)| on.is_some())
    .map(|(r, _)| r.to_string())
    .collect();
    st.ip_allowlist = f
        .ip_allowlist
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    st.ip_allowlist_roles = [
        ("contract_admin", &f.ip_role_contract_admin),
        ("admin", &f.ip_role_admin),
        ("member", &f.ip_role_member),
        ("guest", &f.ip_role_guest),
    ]
    .iter()
    .filter(|(_, on)| on.is_some())
    .map(|(r, _)| r.to_string())
    .collect();
    st.session_policy.idle_timeout_secs = f.idle_minutes.saturating_mul(60);
    st.session_policy.absolute_lifetime_secs = f.absolute_hours.saturating_mul(3600);
    st.password_policy.min_length = f.min_length;
    st.password_policy.require_symbol = f.require_symbol.is_some();
    st.password_policy.require_mixed_case = f.require_mixed_case.is_some();
    st.password_policy.min_strength = f.min_strength;
    if let Some(d) = f.audit_retention_days {
        st.audit_retention_days = d;
    }
    if let Some(d) = f.access_log_retention_days {
        st.access_log_retention_days = d;
    }
    act(
        &c,
        &f.csrf,
        "/security",
        "settings_saved",
        s.services
            .update_settings(&c.auth, st, f.confirm_lockout.is_some(), &c.ctx),
    )
    .await
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
        Ok(start) => axum::Json(start).into_response(),
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
pub async fn passkey_add(
    State(s): State<AppState>,
    c: Console,
    Form(f): Form<PasskeyAddForm>,
) -> Response {
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
    State(s): State<AppState>,
    c: Console,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
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

pub async fn totp_start(
    State(s): State<AppState>,
    c: Console,
    Form(f): Form<CsrfForm>,
) -> Response {
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

pub async fn totp_confirm(
    State(s): State<AppState>,
    c: Console,
    Form(f): Form<CodeForm>,
) -> Response {
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

pub async fn totp_disable(
    State(s): State<AppState>,
    c: Console,
    Form(f): Form<CodeForm>,
) -> Response {
    act(
        &c,
        &f.csrf,
        "/account",
        "totp_disabled",
        s.services.disable_totp(&c.auth, &f.code, &c.ctx),
    )
    .await
}

// ---------------------------------------------------------------- sign-up

#[derive(Template)]
#[template(path = "signup.html")]
struct SignupTpl {
    p: Page,
    /// `email`, `code` or `details`.
    step: &'static str,
    email: String,
    token: String,
}

#[derive(Deserialize, Default)]
pub struct SignupForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    locale: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    tenant_name: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    password: String,
}

fn signup_view(
    s: &AppState,
    v: &Visitor,
    step: &'static str,
    email: String,
    token: String,
    error: Option<&str>,
) -> Response {
    let (csrf, cookie) = pre_csrf(s);
    let mut p = anon_page(v.tr, "signup.title", &csrf, "/signup");
    p.error = error.map(|e| v.tr.t(e).to_string());
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let mut res = html(
        status,
        SignupTpl {
            p,
            step,
            email,
            token,
        }
        .render(),
    );
    set_cookie(&mut res, &cookie);
    res
}

/// Sign-up (TEN-2), when enabled: e-mail → code → tenant and password.
pub async fn signup_page(State(s): State<AppState>, v: Visitor) -> Response {
    if !s.services.config.signup_enabled {
        return not_found(v).await;
    }
    signup_view(&s, &v, "email", String::new(), String::new(), None)
}

pub async fn signup_submit(
    State(s): State<AppState>,
    v: Visitor,
    Form(f): Form<SignupForm>,
) -> Response {
    if !s.services.config.signup_enabled {
        return not_found(v).await;
    }
    if !pre_csrf_ok(&v, &f.csrf) {
        return Redirect::to("/signup").into_response();
    }
    if !f.token.is_empty() {
        let r = s
            .services
            .complete_signup(
                &f.token,
                kura_services::signup::SignupDetails {
                    tenant_slug: f.tenant.clone(),
                    tenant_name: f.tenant_name.clone(),
                    display_name: f.display_name.clone(),
                    password: f.password.clone(),
                },
                SessionKind::Console,
                &v.ctx,
            )
            .await;
        return match r {
            Ok(r) => logged_in(&s, &r),
            Err(kura_services::ServiceError::Rejected { .. }) => signup_view(
                &s,
                &v,
                "email",
                String::new(),
                String::new(),
                Some("signup.expired"),
            ),
            Err(_) => signup_view(&s, &v, "details", f.email, f.token, Some("signup.rejected")),
        };
    }
    if !f.code.is_empty() {
        return match s.services.verify_signup(&f.email, &f.code).await {
            Ok(token) => signup_view(&s, &v, "details", f.email, token, None),
            Err(e) => {
                // Say what happened: wrong, expired, or tried too often.
                let key = match e {
                    kura_services::ServiceError::Rejected {
                        code: "code_expired" | "code_used",
                        ..
                    } => "signup.code_expired",
                    kura_services::ServiceError::Rejected {
                        code: "code_exhausted",
                        ..
                    } => "signup.code_exhausted",
                    _ => "signup.bad_code",
                };
                signup_view(&s, &v, "code", f.email, String::new(), Some(key))
            }
        };
    }
    match s.services.start_signup(&f.email, &f.locale, &v.ctx).await {
        Ok(()) => signup_view(&s, &v, "code", f.email, String::new(), None),
        Err(kura_services::ServiceError::RateLimited { .. }) => signup_view(
            &s,
            &v,
            "email",
            f.email,
            String::new(),
            Some("signup.rate_limited"),
        ),
        Err(_) => signup_view(
            &s,
            &v,
            "email",
            f.email,
            String::new(),
            Some("signup.bad_email"),
        ),
    }
}

// ---------------------------------------------------------------- status page

#[derive(Template)]
#[template(path = "status.html")]
struct StatusTpl {
    p: Page,
    state: String,
    state_key: String,
    checked: String,
    slo: String,
    rows: Vec<(i64, String, bool)>,
    downtime: String,
    budget: String,
    incidents: Vec<(String, String, String)>,
    maintenance: Vec<(String, String, String)>,
}

/// The public status page (OPS-7), in the visitor's language, times in Asia/Tokyo.
pub async fn status_page(State(s): State<AppState>, v: Visitor) -> Response {
    let Ok(r) = s.services.status_report().await else {
        return (StatusCode::SERVICE_UNAVAILABLE, "status unavailable").into_response();
    };
    let zone = "Asia/Tokyo";
    let ja = v.tr.0 == super::i18n::Lang::Ja;
    let pick = |a: &str, b: &str| if ja { a.to_string() } else { b.to_string() };
    let body = StatusTpl {
        state_key: format!("status.{}", r.state),
        state: r.state.clone(),
        checked: r
            .checked_at
            .map(|t| t.format_in_zone(zone))
            .unwrap_or_else(|| "-".into()),
        slo: format!("{:.1} %", r.slo_percent),
        rows: r
            .availability
            .iter()
            .map(|a| {
                (
                    a.days,
                    a.percent
                        .map(|p| format!("{p:.3} %"))
                        .unwrap_or_else(|| "-".into()),
                    a.meets_slo.unwrap_or(true),
                )
            })
            .collect(),
        downtime: format!("{:.1} h", r.planned_downtime_hours_this_year),
        budget: format!("{:.0} h", r.planned_downtime_budget_hours),
        incidents: r
            .incidents
            .iter()
            .map(|(j, e, sev, at)| (pick(j, e), sev.clone(), at.format_in_zone(zone)))
            .collect(),
        maintenance: r
            .maintenance
            .iter()
            .map(|(j, e, from, until)| {
                (
                    pick(j, e),
                    from.format_in_zone(zone),
                    until.format_in_zone(zone),
                )
            })
            .collect(),
        p: anon_page(v.tr, "status.title", "", "/status"),
    }
    .render();
    html(StatusCode::OK, body)
}

// ---------------------------------------------------------------- termination export

/// A terminated tenant's full export (tar), behind the link mailed to its contract admins;
/// gone once the data is deleted.
pub async fn termination_export(
    State(s): State<AppState>,
    v: Visitor,
    Path(token): Path<String>,
) -> Response {
    match s.services.export_by_link(&token, &v.ctx).await {
        Ok((slug, stream)) => (
            [
                (
                    axum::http::header::CONTENT_TYPE,
                    "application/x-tar".to_string(),
                ),
                (
                    axum::http::header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"kura-export-{slug}.tar\""),
                ),
            ],
            axum::body::Body::from_stream(stream),
        )
            .into_response(),
        Err(_) => not_found(v).await,
    }
}

// ---------------------------------------------------------------- demo mail outbox

#[derive(Template)]
#[template(path = "outbox.html")]
struct OutboxTpl {
    p: Page,
    mails: Vec<OutboxLine>,
}

struct OutboxLine {
    at: String,
    to: String,
    subject: String,
    body: String,
}

/// The mail outbox as a page, when `mail_outbox_page` is on (`kura demo`) and the client
/// is on this machine; otherwise the page does not exist.
pub async fn outbox_page(
    State(s): State<AppState>,
    v: Visitor,
    ip: Option<axum::Extension<crate::access::ClientIp>>,
) -> Response {
    let local = ip.is_some_and(|axum::Extension(crate::access::ClientIp(ip))| ip.is_loopback());
    if !s.http.mail_outbox_page || !local {
        return not_found(v).await;
    }
    let mails = s.services.mail_outbox(50).await.unwrap_or_default();
    let zone = kura_domain::tenant::TenantSettings::default().time_zone;
    let mails = mails
        .into_iter()
        .map(|m| OutboxLine {
            at: m.created_at.format_in_zone(&zone),
            to: m.to,
            subject: m.subject,
            body: m.body,
        })
        .collect();
    let p = anon_page(v.tr, "outbox.title", "", "/outbox");
    html(StatusCode::OK, OutboxTpl { p, mails }.render())
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
    let (csrf, cookie) = pre_csrf(&s);
    let mut p = anon_page(v.tr, "reset.title", &csrf, "/");
    p.error = flash.error(&v.tr);
    let (status, body) = match s.services.password_reset_info(&token).await {
        Ok((tenant, user)) => (
            StatusCode::OK,
            ResetTokenTpl {
                p,
                valid: true,
                token,
                tenant_name: tenant.name,
                email: user.email,
            }
            .render(),
        ),
        Err(_) => {
            p.error = Some(v.tr.t("reset.invalid").to_string());
            (
                StatusCode::NOT_FOUND,
                ResetTokenTpl {
                    p,
                    valid: false,
                    token: String::new(),
                    tenant_name: String::new(),
                    email: String::new(),
                }
                .render(),
            )
        }
    };
    let mut res = html(status, body);
    set_cookie(&mut res, &cookie);
    res
}

pub async fn reset_token_submit(
    State(s): State<AppState>,
    v: Visitor,
    Path(token): Path<String>,
    Form(f): Form<InviteForm>,
) -> Response {
    let here = format!("/reset/{token}");
    if !pre_csrf_ok(&v, &f.csrf) {
        return csrf_rejected(&here);
    }
    if f.password != f.password2 {
        return Redirect::to(&format!("{here}?err=invalid&reason=pw_mismatch")).into_response();
    }
    match s
        .services
        .complete_password_reset(&token, &f.password, &v.ctx)
        .await
    {
        Ok(tenant) => {
            let mut res = Redirect::to(&format!(
                "/login?tenant={}&ok=password_reset",
                super::encode(&tenant.slug)
            ))
            .into_response();
            set_cookie(&mut res, &clear_cookie(s.csrf_cookie_name()));
            res
        }
        Err(e) => back_err(&here, &e),
    }
}

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

pub async fn workspace(
    State(s): State<AppState>,
    c: Console,
    Query(flash): Query<Flash>,
) -> Response {
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

pub async fn folder_create(
    State(s): State<AppState>,
    c: Console,
    Form(f): Form<FolderForm>,
) -> Response {
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
    State(s): State<AppState>,
    c: Console,
    Path(id): Path<String>,
    Form(f): Form<FolderForm>,
) -> Response {
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
    State(s): State<AppState>,
    c: Console,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
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

pub async fn project_create(
    State(s): State<AppState>,
    c: Console,
    Form(f): Form<ProjectForm>,
) -> Response {
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
    State(s): State<AppState>,
    c: Console,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
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

pub async fn users_page(
    State(s): State<AppState>,
    c: Console,
    Query(flash): Query<Flash>,
) -> Response {
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

fn parse_scope(s: &str) -> Scope {
    match s.split_once(':') {
        Some(("folder", id)) => Scope::Folder(FolderId::from_string(id)),
        Some(("project", id)) => Scope::Project(ProjectId::from_string(id)),
        _ => Scope::Tenant,
    }
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

pub async fn user_invite(
    State(s): State<AppState>,
    c: Console,
    Form(f): Form<InviteUserForm>,
) -> Response {
    if !csrf_ok(&c, &f.csrf) {
        return csrf_rejected("/users");
    }
    let role = (!f.role.is_empty()).then(|| (f.role.clone(), parse_scope(&f.scope)));
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
    State(s): State<AppState>,
    c: Console,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
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

pub struct SessionRow {
    id: String,
    current: bool,
    kind: String,
    device: String,
    ip: String,
    created: String,
    last_seen: String,
}

fn token_rows(list: Vec<kura_store::api_tokens::ApiToken>, zone: &str) -> Vec<TokenRow> {
    list.into_iter()
        .map(|t| TokenRow {
            id: t.id,
            name: t.name,
            scopes: t.scopes.join(" "),
            expires: t
                .expires_at
                .map(|e| e.format_in_zone(zone))
                .unwrap_or_default(),
            last_used: t
                .last_used_at
                .map(|e| e.format_in_zone(zone))
                .unwrap_or_default(),
            revoked: t.revoked_at.is_some(),
        })
        .collect()
}

pub struct TokenRow {
    id: String,
    name: String,
    scopes: String,
    expires: String,
    last_used: String,
    revoked: bool,
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
pub async fn account_page(
    State(s): State<AppState>,
    c: Console,
    Query(flash): Query<Flash>,
) -> Response {
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

pub struct TokenForm {
    csrf: String,
    name: String,
    expires_in_days: Option<i64>,
    /// `area:mode` pairs, as checkboxes named `scope`.
    scopes: Vec<String>,
}

/// The token form from its fields (repeated `scope` check boxes kept, which a struct
/// extractor would not).
fn token_form(pairs: Vec<(String, String)>) -> TokenForm {
    let mut f = TokenForm {
        csrf: String::new(),
        name: String::new(),
        expires_in_days: None,
        scopes: Vec::new(),
    };
    for (k, v) in pairs {
        match k.as_str() {
            "_csrf" => f.csrf = v,
            "name" => f.name = v,
            "expires_in_days" => f.expires_in_days = v.parse().ok(),
            "scope" => f.scopes.push(v),
            _ => {}
        }
    }
    f
}

pub async fn token_create(
    State(s): State<AppState>,
    c: Console,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
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

pub async fn service_account_create(
    State(s): State<AppState>,
    c: Console,
    Form(f): Form<ServiceAccountForm>,
) -> Response {
    if !csrf_ok(&c, &f.csrf) {
        return csrf_rejected("/users");
    }
    let role = (!f.role.is_empty()).then(|| (f.role.clone(), parse_scope(&f.scope)));
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
    State(s): State<AppState>,
    c: Console,
    Path(id): Path<String>,
    Query(flash): Query<Flash>,
) -> Response {
    service_tokens_view(&s, &c, &id, &flash, None).await
}

pub async fn service_token_create(
    State(s): State<AppState>,
    c: Console,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
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
    State(s): State<AppState>,
    c: Console,
    Path((id, tid)): Path<(String, String)>,
    Form(f): Form<CsrfForm>,
) -> Response {
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

pub async fn token_revoke(
    State(s): State<AppState>,
    c: Console,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
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
    State(s): State<AppState>,
    c: Console,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let current = id == c.auth.session.id;
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

pub async fn user_freeze(
    State(s): State<AppState>,
    c: Console,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    user_change(s, c, id, &f.csrf, UserChange::Freeze, "user_frozen").await
}
pub async fn user_unfreeze(
    State(s): State<AppState>,
    c: Console,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    user_change(s, c, id, &f.csrf, UserChange::Unfreeze, "user_unfrozen").await
}
pub async fn user_delete(
    State(s): State<AppState>,
    c: Console,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
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

pub async fn grant_add(
    State(s): State<AppState>,
    c: Console,
    Path(id): Path<String>,
    Form(f): Form<GrantForm>,
) -> Response {
    if !csrf_ok(&c, &f.csrf) {
        return csrf_rejected("/users");
    }
    match s
        .services
        .add_grant(
            &c.auth,
            &UserId::from_string(id),
            &f.role,
            parse_scope(&f.scope),
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
    State(s): State<AppState>,
    c: Console,
    Path((id, gid)): Path<(String, String)>,
    Form(f): Form<CsrfForm>,
) -> Response {
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

// ---------------------------------------------------------------- audit

pub struct EventView {
    seq: i64,
    time: String,
    actor: String,
    action: String,
    target: String,
    result: String,
    ip: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditTpl {
    p: Page,
    events: Vec<EventView>,
    chain_error: Option<String>,
    newest: Option<CheckpointView>,
    zone: String,
    q: LogForm,
    /// The filter as a query string (for export links and paging).
    query: String,
    next_before: Option<i64>,
    bad_filter: bool,
}

/// The newest signed checkpoint, shown to be kept outside Kura.
pub struct CheckpointView {
    seq: i64,
    when: String,
    json: String,
}

/// The log filters as typed (echoed back into the form).
#[derive(Deserialize, Default, Clone)]
pub struct LogForm {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    ip: String,
    #[serde(default)]
    result: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    before: Option<i64>,
}

fn pct(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl LogForm {
    fn api(&self) -> crate::api::LogQuery {
        let t = |v: &str| (!v.trim().is_empty()).then(|| v.trim().to_string());
        crate::api::LogQuery {
            before: self.before,
            from: t(&self.from),
            to: t(&self.to),
            user: t(&self.user),
            action: t(&self.action),
            ip: t(&self.ip),
            result: t(&self.result).or_else(|| t(&self.status)),
            path: t(&self.path),
            ..Default::default()
        }
    }
    fn query(&self) -> String {
        [
            ("from", &self.from),
            ("to", &self.to),
            ("user", &self.user),
            ("action", &self.action),
            ("ip", &self.ip),
            ("result", &self.result),
            ("status", &self.status),
            ("path", &self.path),
        ]
        .iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| format!("{k}={}", pct(v.trim())))
        .collect::<Vec<_>>()
        .join("&")
    }
}

const LOG_PAGE: i64 = 100;

/// The tenant's audit log: filters, paging, CSV / signed JSON Lines export, and live
/// verification of the chain.
pub async fn audit_page(
    State(s): State<AppState>,
    c: Console,
    Query(flash): Query<Flash>,
    Query(q): Query<LogForm>,
) -> Response {
    let zone = c.auth.tenant.settings.time_zone.clone();
    let (events, bad_filter) = match q.api().audit_filter(&zone) {
        Ok(f) => match s
            .services
            .query_audit(&c.auth, &f, q.before, LOG_PAGE, &c.ctx)
            .await
        {
            Ok(e) => (e, false),
            Err(e) => return message(&c, StatusCode::FORBIDDEN, &e),
        },
        Err(_) => (Vec::new(), true),
    };
    let chain_error = match s.services.verify_own_audit(&c.auth, &c.ctx).await {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(e) => Some(e.to_string()),
    };
    let newest = match s.services.newest_checkpoint(&c.auth, &c.ctx).await {
        Ok(Some(cp)) => Some(CheckpointView {
            seq: cp.seq,
            when: kura_domain::Timestamp(cp.at).format_in_zone(&zone),
            json: serde_json::to_string_pretty(&cp).unwrap_or_default(),
        }),
        _ => None,
    };
    let next_before = (events.len() as i64 == LOG_PAGE)
        .then(|| events.last().map(|e| e.record.seq))
        .flatten();
    let events = events
        .into_iter()
        .map(|e| {
            let r = e.record;
            EventView {
                seq: r.seq,
                time: kura_domain::Timestamp(r.at).format_in_zone(&zone),
                actor: format!(
                    "{}{}",
                    r.actor_kind,
                    r.actor_id.map(|a| format!(" {a}")).unwrap_or_default()
                ),
                action: r.action,
                target: format!(
                    "{}{}",
                    r.target_kind.unwrap_or_default(),
                    r.target_id.map(|t| format!(" {t}")).unwrap_or_default()
                ),
                result: r.result,
                ip: r.ip.unwrap_or_default(),
            }
        })
        .collect();
    let body = AuditTpl {
        p: page(&c, "audit.title", "audit", "/audit", &flash),
        events,
        chain_error,
        newest,
        zone,
        query: q.query(),
        q,
        next_before,
        bad_filter,
    }
    .render();
    html(StatusCode::OK, body)
}

pub struct AccessView {
    time: String,
    user: String,
    ip: String,
    method: String,
    path: String,
    status: i64,
    latency_ms: String,
}

#[derive(Template)]
#[template(path = "access_log.html")]
struct AccessTpl {
    p: Page,
    entries: Vec<AccessView>,
    zone: String,
    q: LogForm,
    query: String,
    next_before: Option<i64>,
    bad_filter: bool,
}

/// The tenant's access log: filters, paging, CSV / JSON Lines export.
pub async fn access_page(
    State(s): State<AppState>,
    c: Console,
    Query(flash): Query<Flash>,
    Query(q): Query<LogForm>,
) -> Response {
    let zone = c.auth.tenant.settings.time_zone.clone();
    let (entries, bad_filter) = match q.api().access_filter(&zone) {
        Ok(f) => match s
            .services
            .query_access(&c.auth, &f, q.before, LOG_PAGE, &c.ctx)
            .await
        {
            Ok(e) => (e, false),
            Err(e) => return message(&c, StatusCode::FORBIDDEN, &e),
        },
        Err(_) => (Vec::new(), true),
    };
    let next_before = (entries.len() as i64 == LOG_PAGE)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    let entries = entries
        .into_iter()
        .map(|e| AccessView {
            time: e.at.format_in_zone(&zone),
            user: e.user_id.map(|u| u.to_string()).unwrap_or_default(),
            ip: e.ip.unwrap_or_default(),
            method: e.method,
            path: e.path,
            status: e.status,
            latency_ms: format!("{:.1}", e.latency_us as f64 / 1000.0),
        })
        .collect();
    let body = AccessTpl {
        p: page(&c, "access.title", "audit", "/access-log", &flash),
        entries,
        zone,
        query: q.query(),
        q,
        next_before,
        bad_filter,
    }
    .render();
    html(StatusCode::OK, body)
}

// ---------------------------------------------------------------- usage dashboard

/// A bar chart as an SVG document (server-side; no script, no CDN).
fn bar_chart(id: &str, title: &str, points: &[(String, i64)]) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let (w, h, pad) = (640.0_f64, 160.0_f64, 24.0_f64);
    let max = points.iter().map(|p| p.1).max().unwrap_or(0).max(1) as f64;
    let n = points.len().max(1) as f64;
    let bw = (w - pad * 2.0) / n;
    let mut bars = String::new();
    for (i, (label, v)) in points.iter().enumerate() {
        let bh = (*v as f64 / max) * (h - pad * 2.0);
        let x = pad + i as f64 * bw;
        let y = h - pad - bh;
        bars.push_str(&format!(
            "<rect class=\"bar\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" data-label=\"{}\" data-value=\"{v}\"><title>{}: {v}</title></rect>",
            (bw - 2.0).max(1.0),
            esc(label),
            esc(label)
        ));
    }
    let first = points.first().map(|p| esc(&p.0)).unwrap_or_default();
    let last = points.last().map(|p| esc(&p.0)).unwrap_or_default();
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"{id}\" class=\"chart\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{t}\"><text x=\"{pad}\" y=\"14\" class=\"chart-title\">{t} (max {max})</text>{bars}<line x1=\"{pad}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" class=\"axis\"/><text x=\"{pad}\" y=\"{h}\" class=\"chart-label\">{first}</text><text x=\"{r}\" y=\"{h}\" text-anchor=\"end\" class=\"chart-label\">{last}</text></svg>",
        t = esc(title),
        max = max as i64,
        b = h - pad,
        r = w - pad,
    )
}

#[derive(Template)]
#[template(path = "usage.html")]
struct UsageTpl {
    p: Page,
    backup: String,
    monthly: bool,
    charts: Vec<String>,
    rows: Vec<kura_store::usage::Daily>,
    zone: String,
}

#[derive(Deserialize, Default)]
pub struct UsageForm {
    #[serde(default)]
    by: String,
}

/// Tenant admins: usage per day (last 30 days) or per month (last 12 months), as SVG bar
/// charts and a table.
pub async fn usage_page(
    State(s): State<AppState>,
    c: Console,
    Query(flash): Query<Flash>,
    Query(q): Query<UsageForm>,
) -> Response {
    let zone = c.auth.tenant.settings.time_zone.clone();
    let now = s.services.now();
    let monthly = q.by == "month";
    let from = if monthly {
        kura_domain::Timestamp(now.0 - 365 * 86_400_000).day_in_zone(&zone)
    } else {
        kura_domain::Timestamp(now.0 - 29 * 86_400_000).day_in_zone(&zone)
    };
    let to = now.day_in_zone(&zone);
    let rows = match s
        .services
        .usage_report(&c.auth, &from, &to, monthly, &c.ctx)
        .await
    {
        Ok(r) => r,
        Err(e) => return message(&c, StatusCode::FORBIDDEN, &e),
    };
    let series = |f: fn(&kura_store::usage::Daily) -> i64| -> Vec<(String, i64)> {
        rows.iter().map(|d| (d.day.clone(), f(d))).collect()
    };
    let charts = vec![
        bar_chart(
            "chart-logins",
            c.tr.t("usage.logins"),
            &series(|d| d.logins),
        ),
        bar_chart(
            "chart-active",
            c.tr.t("usage.active_users"),
            &series(|d| d.active_users),
        ),
        bar_chart(
            "chart-uploads",
            c.tr.t("usage.uploads"),
            &series(|d| d.uploads),
        ),
        bar_chart(
            "chart-downloads",
            c.tr.t("usage.downloads"),
            &series(|d| d.downloads),
        ),
        bar_chart("chart-files", c.tr.t("usage.files"), &series(|d| d.files)),
        bar_chart(
            "chart-storage",
            c.tr.t("usage.storage_mib"),
            &series(|d| d.bytes_stored / (1024 * 1024)),
        ),
    ];
    let backup = match s.services.backup_summary(&c.auth, &c.ctx).await {
        Ok(b) => match b.last_verified_at {
            Some(at) => format!(
                "{} ({}, {} {}, {})",
                at.format_in_zone(&zone),
                b.last_verified_generation.unwrap_or_default(),
                c.tr.t("backup.kept"),
                b.generations_kept,
                b.region
            ),
            None => c.tr.t("backup.none").to_string(),
        },
        Err(_) => String::new(),
    };
    let body = UsageTpl {
        backup,
        p: page(&c, "usage.title", "usage", "/usage", &flash),
        monthly,
        charts,
        rows,
        zone,
    }
    .render();
    html(StatusCode::OK, body)
}

// ---------------------------------------------------------------- messages

#[derive(Template)]
#[template(path = "message.html")]
struct MessageTpl {
    p: Page,
}

fn message(c: &Console, status: StatusCode, e: &kura_services::ServiceError) -> Response {
    let key = match e {
        kura_services::ServiceError::Forbidden => "err.forbidden",
        kura_services::ServiceError::NotFound => "err.not_found",
        _ => "err.internal",
    };
    let mut p = page(c, "app.name", "", "/", &Flash::default());
    p.error = Some(c.tr.t(key).to_string());
    html(status, MessageTpl { p }.render())
}

pub async fn not_found(v: Visitor) -> Response {
    let mut p = anon_page(v.tr, "err.page_not_found", "", "/");
    p.error = None;
    html(StatusCode::NOT_FOUND, MessageTpl { p }.render())
}

// ---------------------------------------------------------------- files

pub struct FileView {
    id: String,
    name: String,
    /// The effective label (own or inherited).
    label: String,
    own_label: bool,
    tags: String,
    size: i64,
    version: i64,
    updated: String,
    project_id: String,
    project_name: String,
}

/// `?q=&tag=&label=` of the file search forms.
#[derive(Deserialize, Default)]
pub struct FileFilter {
    #[serde(default)]
    q: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    label: String,
}

impl FileFilter {
    fn search(&self, project: Option<ProjectId>) -> kura_services::files::FileSearch {
        let some = |x: &str| (!x.trim().is_empty()).then(|| x.trim().to_string());
        kura_services::files::FileSearch {
            project,
            q: some(&self.q),
            tag: some(&self.tag),
            label: some(&self.label),
            limit: 1000,
            ..Default::default()
        }
    }
    fn active(&self) -> bool {
        !(self.q.trim().is_empty() && self.tag.trim().is_empty() && self.label.trim().is_empty())
    }
}

fn file_view(
    f: kura_services::files::FoundFile,
    size: i64,
    zone: &str,
    projects: &HashMap<String, String>,
) -> FileView {
    let file = f.file;
    FileView {
        own_label: file.labels.label.is_some(),
        label: f.effective_label,
        tags: file.labels.tags.join(", "),
        size,
        version: file.current_version,
        updated: file.updated_at.format_in_zone(zone),
        project_name: projects
            .get(file.project_id.as_str())
            .cloned()
            .unwrap_or_default(),
        project_id: file.project_id.to_string(),
        id: file.id,
        name: file.name,
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
    filtering: bool,
}

/// A project's files (filtered by name, tag, label), download links, upload form with a
/// progress bar, and the project's trash.
pub async fn project_page(
    State(s): State<AppState>,
    c: Console,
    Path(id): Path<String>,
    Query(flash): Query<Flash>,
    Query(filter): Query<FileFilter>,
) -> Response {
    let pid = ProjectId::from_string(id);
    let project = match s.services.get_project(&c.auth, &pid, &c.ctx).await {
        Ok(p) => p,
        Err(e) => return message(&c, StatusCode::NOT_FOUND, &e),
    };
    let files = match s
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
    let body = ProjectTpl {
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

#[derive(Template)]
#[template(path = "search.html")]
struct SearchTpl {
    p: Page,
    files: Vec<FileView>,
    labels: Vec<String>,
    filter: FileFilter,
    filtering: bool,
}

/// Files in every project the user can see, by name, tag and label.
pub async fn search_page(
    State(s): State<AppState>,
    c: Console,
    Query(flash): Query<Flash>,
    Query(filter): Query<FileFilter>,
) -> Response {
    let mut views = Vec::new();
    let mut flash = flash;
    if filter.active() {
        match s
            .services
            .search_files(&c.auth, &filter.search(None), &c.ctx)
            .await
        {
            Ok((found, _)) => {
                let names: HashMap<String, String> = match s.services.workspace_tree(&c.auth).await
                {
                    Ok(t) => t
                        .projects
                        .into_iter()
                        .map(|p| (p.id.to_string(), p.name))
                        .collect(),
                    Err(_) => HashMap::new(),
                };
                let zone = c.auth.tenant.settings.time_zone.clone();
                views = found
                    .into_iter()
                    .map(|f| file_view(f, -1, &zone, &names))
                    .collect();
            }
            Err(_) => flash.err = Some("invalid".into()),
        }
    }
    let body = SearchTpl {
        p: page(&c, "search.title", "search", "/search", &flash),
        files: views,
        labels: c.auth.tenant.settings.labels.clone(),
        filtering: filter.active(),
        filter,
    }
    .render();
    html(StatusCode::OK, body)
}

pub struct VersionView {
    version: i64,
    size: i64,
    sha256: String,
    content_type: String,
    created: String,
    by: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "file.html")]
struct FileTpl {
    p: Page,
    id: String,
    name: String,
    project_id: String,
    project_name: String,
    label: String,
    tags: String,
    attributes: Vec<(String, String)>,
    versions: Vec<VersionView>,
    labels: Vec<String>,
    projects: Vec<(String, String)>,
    can_write: bool,
}

/// One file: its versions (download any, restore an old one), label and tags, rename, move.
pub async fn file_page(
    State(s): State<AppState>,
    c: Console,
    Path(id): Path<String>,
    Query(flash): Query<Flash>,
) -> Response {
    let (file, versions) = match s.services.file_info(&c.auth, &id, &c.ctx).await {
        Ok(x) => x,
        Err(e) => return message(&c, StatusCode::NOT_FOUND, &e),
    };
    let zone = c.auth.tenant.settings.time_zone.clone();
    let can_write = s
        .services
        .may_in_project(&c.auth, &file.project_id, Action::ContentWrite)
        .await;
    let tree = s.services.workspace_tree(&c.auth).await.ok();
    let mut projects: Vec<(String, String)> = tree
        .map(|t| {
            t.projects
                .into_iter()
                .map(|p| (p.id.to_string(), p.name))
                .collect()
        })
        .unwrap_or_default();
    projects.sort_by(|a, b| a.1.cmp(&b.1));
    let project_name = projects
        .iter()
        .find(|(pid, _)| pid == file.project_id.as_str())
        .map(|(_, n)| n.clone())
        .unwrap_or_default();
    let mut users: HashMap<String, String> = HashMap::new();
    // Uploader names for those who may see the user list (asking otherwise would be
    // audited as a denied access).
    if c.may(Action::UserRead) {
        if let Ok(list) = s.services.list_users(&c.auth, &c.ctx).await {
            for u in list {
                users.insert(u.id.to_string(), u.display_name);
            }
        }
    }
    let mut versions: Vec<VersionView> = versions
        .into_iter()
        .map(|v| VersionView {
            current: v.version == file.current_version,
            version: v.version,
            size: v.size,
            sha256: v.sha256.chars().take(16).collect(),
            content_type: v.content_type,
            created: v.created_at.format_in_zone(&zone),
            by: v
                .created_by
                .as_ref()
                .and_then(|u| users.get(u.as_str()).cloned())
                .unwrap_or_default(),
        })
        .collect();
    versions.sort_by_key(|v| std::cmp::Reverse(v.version));
    let back = format!("/files/{}", file.id);
    let body = FileTpl {
        p: page(&c, "files.details", "workspace", &back, &flash),
        id: file.id.clone(),
        name: file.name.clone(),
        project_id: file.project_id.to_string(),
        project_name,
        label: file.labels.label.clone().unwrap_or_default(),
        tags: file.labels.tags.join(", "),
        attributes: file
            .labels
            .attributes
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str().map(str::to_string).unwrap_or(v.to_string()),
                )
            })
            .collect(),
        versions,
        labels: c.auth.tenant.settings.labels.clone(),
        projects,
        can_write,
    }
    .render();
    html(StatusCode::OK, body)
}

#[derive(Deserialize)]
pub struct FileUpdateForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
    /// `rename`, `move` or `labels`: which fields this form carries.
    #[serde(default)]
    what: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    project_id: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    tags: String,
}

pub async fn file_update(
    State(s): State<AppState>,
    c: Console,
    Path(id): Path<String>,
    Form(f): Form<FileUpdateForm>,
) -> Response {
    let back = format!("/files/{}", safe_id(&id));
    let mut up = kura_services::files::FileUpdate::default();
    match f.what.as_str() {
        "rename" => up.name = Some(f.name.clone()),
        "move" => up.project = Some(ProjectId::from_string(f.project_id.clone())),
        "labels" => {
            let current = match s.services.file_info(&c.auth, &id, &c.ctx).await {
                Ok((file, _)) => file.labels,
                Err(e) => return back_err(&back, &e),
            };
            up.labels = Some(kura_store::Labels {
                label: (!f.label.is_empty()).then(|| f.label.clone()),
                tags: f
                    .tags
                    .split([',', '、'])
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_string)
                    .collect(),
                attributes: current.attributes,
            });
        }
        _ => return Redirect::to(&format!("{back}?err=invalid")).into_response(),
    }
    act(
        &c,
        &f.csrf,
        &back,
        "file_updated",
        s.services.update_file(&c.auth, &id, up, &c.ctx),
    )
    .await
}

/// An id from a path or form, if it is one (for building redirect targets).
fn safe_id(id: &str) -> &str {
    if !id.is_empty() && id.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-') {
        id
    } else {
        ""
    }
}

pub async fn version_restore(
    State(s): State<AppState>,
    c: Console,
    Path((id, version)): Path<(String, i64)>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let back = format!("/files/{}", safe_id(&id));
    act(
        &c,
        &f.csrf,
        &back,
        "version_restored",
        s.services.restore_version(&c.auth, &id, version, &c.ctx),
    )
    .await
}

pub async fn file_untrash(
    State(s): State<AppState>,
    c: Console,
    Path(id): Path<String>,
    Form(f): Form<FileDeleteForm>,
) -> Response {
    let back = format!("/projects/{}", safe_id(&f.project_id));
    act(
        &c,
        &f.csrf,
        &back,
        "file_restored",
        s.services.restore_file(&c.auth, &id, &c.ctx),
    )
    .await
}

pub async fn file_purge(
    State(s): State<AppState>,
    c: Console,
    Path(id): Path<String>,
    Form(f): Form<FileDeleteForm>,
) -> Response {
    let back = format!("/projects/{}", safe_id(&f.project_id));
    act(
        &c,
        &f.csrf,
        &back,
        "file_purged",
        s.services.purge_file(&c.auth, &id, &c.ctx),
    )
    .await
}

/// The upload form (multipart): `_csrf` and `label` come before the `file` part, whose
/// bytes stream straight into the encrypted blob.
pub async fn file_upload(
    State(s): State<AppState>,
    c: Console,
    Path(id): Path<String>,
    mut form: axum::extract::Multipart,
) -> Response {
    let back = format!("/projects/{id}");
    let pid = ProjectId::from_string(id);
    let mut csrf = String::new();
    let mut label = String::new();
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(_) => return Redirect::to(&format!("{back}?err=invalid")).into_response(),
        };
        match field.name() {
            Some("_csrf") => csrf = field.text().await.unwrap_or_default(),
            Some("label") => label = field.text().await.unwrap_or_default(),
            Some("file") => {
                if !csrf_ok(&c, &csrf) {
                    return csrf_rejected(&back);
                }
                let name = field
                    .file_name()
                    .map(|n| n.rsplit(['/', '\\']).next().unwrap_or(n).to_string())
                    .unwrap_or_default();
                let content_type = field
                    .content_type()
                    .unwrap_or("application/octet-stream")
                    .to_string();
                let label = (!label.is_empty()).then_some(label.as_str());
                let r = s
                    .services
                    .upload_file(
                        &c.auth,
                        &pid,
                        &name,
                        &content_type,
                        label,
                        field,
                        s.http.max_upload_bytes,
                        &c.ctx,
                    )
                    .await;
                return match r {
                    Ok(_) => back_ok(&back, "file_uploaded"),
                    Err(e) => back_err(&back, &e),
                };
            }
            _ => {}
        }
    }
    Redirect::to(&format!("{back}?err=invalid")).into_response()
}

#[derive(Deserialize)]
pub struct FileDeleteForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
    #[serde(default)]
    project_id: String,
}

pub async fn file_delete(
    State(s): State<AppState>,
    c: Console,
    Path(id): Path<String>,
    Form(f): Form<FileDeleteForm>,
) -> Response {
    let back = match safe_id(&f.project_id) {
        "" => "/".to_string(),
        p => format!("/projects/{p}"),
    };
    act(
        &c,
        &f.csrf,
        &back,
        "file_deleted",
        s.services.delete_file(&c.auth, &id, &c.ctx),
    )
    .await
}
