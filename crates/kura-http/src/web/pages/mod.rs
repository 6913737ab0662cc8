//! Console pages and form handlers.

use crate::web::i18n::Tr;

use crate::web::{
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

use kura_services::auth::{LoginOutcome, SessionKind};

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
    crate::web::i18n::MESSAGES
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
                let ja = c.tr.0 == crate::web::i18n::Lang::Ja;
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

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
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

/// Files per console page (the project page and the search page).
const FILES_PER_PAGE: i64 = 100;

/// `?q=&tag=&label=&after=` of the file search forms and their pages.
#[derive(Deserialize, Default)]
pub struct FileFilter {
    #[serde(default)]
    q: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    label: String,
    /// The cursor of the page (from the previous page's "next" link).
    #[serde(default)]
    after: String,
}

/// `s` as a URL query value.
fn query_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl FileFilter {
    fn search(&self, project: Option<ProjectId>) -> kura_services::files::FileSearch {
        let some = |x: &str| (!x.trim().is_empty()).then(|| x.trim().to_string());
        kura_services::files::FileSearch {
            project,
            q: some(&self.q),
            tag: some(&self.tag),
            label: some(&self.label),
            after: some(&self.after),
            limit: FILES_PER_PAGE,
            ..Default::default()
        }
    }
    /// The link to a page of this listing with the same filters: the first (`after` =
    /// `None`) or the one after a cursor.
    fn page_url(&self, base: &str, after: Option<&str>) -> String {
        let mut query = Vec::new();
        if let Some(a) = after {
            query.push(format!("after={}", query_value(a)));
        }
        for (k, v) in [("q", &self.q), ("tag", &self.tag), ("label", &self.label)] {
            if !v.trim().is_empty() {
                query.push(format!("{k}={}", query_value(v.trim())));
            }
        }
        if query.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", query.join("&"))
        }
    }
    /// The link to the page after this one, when there is one.
    fn next_page(&self, base: &str, next: Option<String>) -> Option<String> {
        next.map(|n| self.page_url(base, Some(&n)))
    }
    /// The link back to the first page (same filters), when this is a later one.
    fn first_page(&self, base: &str) -> Option<String> {
        (!self.after.is_empty()).then(|| self.page_url(base, None))
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

mod account;
mod export;
mod files;
mod login;
mod logs;
mod outbox;
mod search;
mod security;
mod signup;
mod status;
mod usage;
mod users;
mod workspace;
pub use account::*;
pub use export::*;
pub use files::*;
pub use login::*;
pub use logs::*;
pub use outbox::*;
pub use search::*;
pub use security::*;
pub use signup::*;
pub use status::*;
pub use usage::*;
pub use users::*;
pub use workspace::*;
