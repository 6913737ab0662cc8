//! The operator console (`/operator`, ja/en): publish notices (the lead-time rules shown and
//! enforced), open incidents, post status updates and notify the affected tenants' contacts.
//!
//! Sign-in is by a one-time link from `kura operator login-link --name NAME` — whoever can
//! run the CLI against the deployment's configuration. The link page asks for a click (a
//! link scanner fetching it does not use it up); the session has its own cookie
//! (`__Host-kura_op`, `SameSite=Strict`), CSRF token, 8-hour lifetime and 30-minute idle
//! limit. Operator sessions never reach a tenant's data (IAM-10); every action is audited
//! in the system chain under the session's name.

use crate::web::i18n::{Lang, Tr};

use crate::web::pages::{csrf_rejected, pre_csrf, pre_csrf_ok, Flash};

use crate::web::{clear_cookie, html, resolve_lang, set_cookie, Visitor};

use crate::extract::{cookie, request_ctx};

use crate::AppState;

use askama::Template;

use axum::extract::{Form, Path, Query, State};

use axum::http::request::Parts;

use axum::http::StatusCode;

use axum::response::{IntoResponse, Redirect, Response};

use axum::routing::{get, post};

use axum::Router;

use kura_domain::notice::{earliest_effective, NoticeKind};

use kura_domain::Timestamp;

use kura_services::incidents::NewIncident;

use kura_services::notices::NewNotice;

use kura_services::operator::{OperatorAuth, TenantLine, SESSION_SECS};

use kura_services::{RequestCtx, ServiceError};

/// Operator times are shown and entered in Japan's time zone (the lead-time rules count
/// Japanese business days).
const ZONE: &str = "Asia/Tokyo";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/operator", get(home))
        .route("/operator/login", get(login_info))
        .route(
            "/operator/login/{link}",
            get(login_confirm).post(login_submit),
        )
        .route("/operator/logout", post(logout))
        .route("/operator/notices", get(notices_page).post(notice_publish))
        .route("/operator/notices/{id}/withdraw", post(notice_withdraw))
        .route(
            "/operator/incidents",
            get(incidents_page).post(incident_open),
        )
        .route("/operator/incidents/{id}", get(incident_page))
        .route("/operator/incidents/{id}/update", post(incident_update))
        .route("/operator/incidents/{id}/notify", post(incident_notify))
}

fn cookie_name(s: &AppState) -> &'static str {
    if s.http.secure_cookies {
        "__Host-kura_op"
    } else {
        "kura_op"
    }
}

/// A signed-in operator. Without a live operator session: the sign-in explanation.
pub struct OpConsole {
    pub auth: OperatorAuth,
    pub tr: Tr,
    pub ctx: RequestCtx,
}

impl axum::extract::FromRequestParts<AppState> for OpConsole {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(token) = cookie(&parts.headers, cookie_name(state)).map(str::to_string) else {
            return Err(Redirect::to("/operator/login").into_response());
        };
        match state.services.operator_authenticate(&token).await {
            Ok(auth) => Ok(OpConsole {
                auth,
                tr: Tr(resolve_lang(&parts.headers, None)),
                ctx: request_ctx(parts),
            }),
            Err(_) => {
                let mut res = Redirect::to("/operator/login?expired=1").into_response();
                set_cookie(&mut res, &clear_cookie(cookie_name(state)));
                Err(res)
            }
        }
    }
}

impl OpConsole {
    fn csrf_ok(&self, sent: &str) -> bool {
        !sent.is_empty() && kura_crypto::ct_eq(sent.as_bytes(), self.auth.csrf_token.as_bytes())
    }
    fn ja(&self) -> bool {
        self.tr.0 == Lang::Ja
    }
    fn page(&self, title: &'static str, nav: &'static str, back: &str, flash: &Flash) -> OpPage {
        OpPage {
            tr: self.tr,
            title,
            name: Some(self.auth.name.clone()),
            csrf: self.auth.csrf_token.clone(),
            nav,
            notice: flash.notice(&self.tr),
            error: flash.error(&self.tr),
            back: back.to_string(),
        }
    }
}

pub struct OpPage {
    pub tr: Tr,
    pub title: &'static str,
    pub name: Option<String>,
    pub csrf: String,
    pub nav: &'static str,
    pub notice: Option<String>,
    pub error: Option<String>,
    pub back: String,
}

impl OpPage {
    /// A refused form is shown again with its error (422); otherwise 200.
    fn refused(&mut self, error: Option<String>) -> StatusCode {
        match error {
            Some(e) => {
                self.error = Some(e);
                StatusCode::UNPROCESSABLE_ENTITY
            }
            None => StatusCode::OK,
        }
    }
}

fn show(t: Timestamp) -> String {
    t.format_in_zone(ZONE)
}

/// `2026-12-01T02:00` (a `datetime-local` field, Asia/Tokyo) or RFC 3339.
fn parse_time(v: &str) -> Option<Timestamp> {
    Timestamp::parse_in_zone(v.trim(), ZONE)
}

/// A service error as one translated line, with the service's detail.
fn error_line(tr: &Tr, e: &ServiceError) -> String {
    match e {
        ServiceError::Invalid(d) => format!("{}{d}", tr.t("err.invalid")),
        ServiceError::NotFound => tr.t("err.not_found").to_string(),
        ServiceError::Internal(cause) => {
            tracing::error!(%cause, "internal error in the operator console");
            tr.t("err.internal").to_string()
        }
        other => format!("{}{other}", tr.t("err.invalid")),
    }
}

/// Form fields, repeated ones (tenant check boxes) included.
struct Fields(Vec<(String, String)>);

impl Fields {
    fn get(&self, k: &str) -> String {
        self.0
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
    fn all(&self, k: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, v)| n == k && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect()
    }
}

#[derive(serde::Deserialize)]
struct CsrfForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

// ---------------------------------------------------------------- overview

struct NoticeLine {
    id: String,
    kind: String,
    title: String,
    effective: String,
    until: String,
    published: String,
    tenants: String,
    current: bool,
    withdrawn: bool,
}

struct IncidentLine {
    id: String,
    title: String,
    severity: String,
    status: String,
    detected: String,
    deadline: String,
    notified: String,
    overdue: bool,
    resolved: bool,
    tenants: String,
}

fn tenant_names(ids: &[String], tenants: &[TenantLine], tr: &Tr) -> String {
    if ids.is_empty() {
        return tr.t("op.all_tenants").to_string();
    }
    ids.iter()
        .map(|id| {
            tenants
                .iter()
                .find(|t| &t.id == id)
                .map(|t| t.slug.clone())
                .unwrap_or_else(|| id.clone())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn notice_lines(
    c: &OpConsole,
    list: Vec<kura_store::notices::Notice>,
    tenants: &[TenantLine],
    now: Timestamp,
) -> Vec<NoticeLine> {
    list.into_iter()
        .map(|n| NoticeLine {
            kind: c.tr.t(&format!("notice.kind.{}", n.kind)).to_string(),
            title: if c.ja() { n.title_ja } else { n.title_en },
            effective: show(n.effective_at),
            until: show(n.show_until),
            published: show(n.published_at),
            tenants: tenant_names(&n.tenants, tenants, &c.tr),
            current: n.show_until > now && n.withdrawn_at.is_none(),
            withdrawn: n.withdrawn_at.is_some(),
            id: n.id,
        })
        .collect()
}

fn incident_line(
    c: &OpConsole,
    i: &kura_store::incidents::Incident,
    tenants: &[TenantLine],
    now: Timestamp,
) -> IncidentLine {
    let status = i
        .updates
        .last()
        .map(|u| u.status.clone())
        .unwrap_or_else(|| "investigating".into());
    IncidentLine {
        id: i.id.clone(),
        title: if c.ja() {
            i.title_ja.clone()
        } else {
            i.title_en.clone()
        },
        severity: i.severity.clone(),
        status: c.tr.t(&format!("op.status.{status}")).to_string(),
        detected: show(i.detected_at),
        deadline: show(i.deadline_at),
        notified: match i.notified_at {
            Some(n) => format!(
                "{} ({} {})",
                show(n),
                (n.0 - i.detected_at.0) / 60_000,
                c.tr.t("op.minutes_after")
            ),
            None => c.tr.t("op.not_notified").to_string(),
        },
        overdue: i.overdue(now),
        resolved: i.resolved_at.is_some(),
        tenants: tenant_names(&i.tenants, tenants, &c.tr),
    }
}

mod home;
mod incidents;
mod notices;
mod signin;
use home::*;
use incidents::*;
use notices::*;
use signin::*;
