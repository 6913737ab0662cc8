//! The operator console (`/operator`, ja/en): publish notices (the lead-time rules shown and
//! enforced), open incidents, post status updates and notify the affected tenants' contacts.
//!
//! Sign-in is by a one-time link from `kura operator login-link --name NAME` — whoever can
//! run the CLI against the deployment's configuration. The link page asks for a click (a
//! link scanner fetching it does not use it up); the session has its own cookie
//! (`__Host-kura_op`, `SameSite=Strict`), CSRF token, 8-hour lifetime and 30-minute idle
//! limit. Operator sessions never reach a tenant's data (IAM-10); every action is audited
//! in the system chain under the session's name.

use super::i18n::{Lang, Tr};
use super::pages::{csrf_rejected, pre_csrf, pre_csrf_ok, Flash};
use super::{clear_cookie, html, resolve_lang, set_cookie, Visitor};
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

// ---------------------------------------------------------------- sign-in

#[derive(Template)]
#[template(path = "op_login.html")]
struct LoginTpl {
    p: OpPage,
    /// The link being confirmed, when it can still be used.
    link: Option<String>,
    used: bool,
}

fn anon(tr: Tr, title: &'static str, csrf: &str, flash: &Flash) -> OpPage {
    OpPage {
        tr,
        title,
        name: None,
        csrf: csrf.to_string(),
        nav: "",
        notice: flash.notice(&tr),
        error: flash.error(&tr),
        back: "/operator/login".into(),
    }
}

/// How to sign in (there is no password: the CLI makes a link).
async fn login_info(v: Visitor, Query(flash): Query<Flash>) -> Response {
    let p = anon(v.tr, "op.login.title", "", &flash);
    html(
        StatusCode::OK,
        LoginTpl {
            p,
            link: None,
            used: false,
        }
        .render(),
    )
}

async fn login_confirm(
    State(s): State<AppState>,
    v: Visitor,
    Path(link): Path<String>,
    Query(flash): Query<Flash>,
) -> Response {
    let pending = s
        .services
        .operator_link_pending(&link)
        .await
        .unwrap_or(false);
    if !pending {
        let p = anon(v.tr, "op.login.title", "", &flash);
        return html(
            StatusCode::GONE,
            LoginTpl {
                p,
                link: None,
                used: true,
            }
            .render(),
        );
    }
    let (token, pre) = pre_csrf(&s);
    let p = anon(v.tr, "op.login.title", &token, &flash);
    let mut res = html(
        StatusCode::OK,
        LoginTpl {
            p,
            link: Some(link),
            used: false,
        }
        .render(),
    );
    set_cookie(&mut res, &pre);
    res
}

#[derive(serde::Deserialize)]
struct CsrfForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

async fn login_submit(
    State(s): State<AppState>,
    v: Visitor,
    Path(link): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if !pre_csrf_ok(&v, &f.csrf) {
        return csrf_rejected(&format!("/operator/login/{link}"));
    }
    match s.services.operator_redeem_link(&link, &v.ctx).await {
        Ok((_, token)) => {
            let secure = if s.http.secure_cookies {
                "; Secure"
            } else {
                ""
            };
            let mut res = Redirect::to("/operator").into_response();
            set_cookie(
                &mut res,
                &format!(
                    "{}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECS}{secure}",
                    cookie_name(&s)
                ),
            );
            set_cookie(&mut res, &clear_cookie(s.csrf_cookie_name()));
            res
        }
        Err(_) => Redirect::to("/operator/login?err=op_link").into_response(),
    }
}

async fn logout(State(s): State<AppState>, c: OpConsole, Form(f): Form<CsrfForm>) -> Response {
    if !c.csrf_ok(&f.csrf) {
        return csrf_rejected("/operator");
    }
    if let Err(e) = s.services.operator_logout(&c.auth, &c.ctx).await {
        tracing::error!(error = %e, "operator log-out failed");
    }
    let mut res = Redirect::to("/operator/login?out=1").into_response();
    set_cookie(&mut res, &clear_cookie(cookie_name(&s)));
    res
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

#[derive(Template)]
#[template(path = "op_home.html")]
struct HomeTpl {
    p: OpPage,
    tenants: Vec<TenantLine>,
    incidents: Vec<IncidentLine>,
    notices: Vec<NoticeLine>,
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

async fn home(State(s): State<AppState>, c: OpConsole, Query(flash): Query<Flash>) -> Response {
    let now = s.services.now();
    let (Ok(tenants), Ok(notices), Ok(incidents)) = (
        s.services.operator_tenant_lines().await,
        s.services.all_notices().await,
        s.services.list_incidents().await,
    ) else {
        return (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response();
    };
    let notices = notice_lines(&c, notices, &tenants, now)
        .into_iter()
        .filter(|n| n.current)
        .collect();
    let incidents = incidents
        .iter()
        .filter(|i| i.resolved_at.is_none())
        .map(|i| incident_line(&c, i, &tenants, now))
        .collect();
    let p = c.page("op.home.title", "home", "/operator", &flash);
    html(
        StatusCode::OK,
        HomeTpl {
            p,
            tenants,
            incidents,
            notices,
        }
        .render(),
    )
}

// ---------------------------------------------------------------- notices

/// What the publish form held (kept when it is refused).
#[derive(Default)]
struct NoticeDraft {
    kind: String,
    effective: String,
    until: String,
    title_ja: String,
    title_en: String,
    body_ja: String,
    body_en: String,
    tenants: Vec<String>,
}

#[derive(Template)]
#[template(path = "op_notices.html")]
struct NoticesTpl {
    p: OpPage,
    notices: Vec<NoticeLine>,
    tenants: Vec<TenantLine>,
    /// (kind, label, rule, earliest effective time now)
    kinds: Vec<(&'static str, &'static str, &'static str, String)>,
    draft: NoticeDraft,
}

const KINDS: [NoticeKind; 4] = [
    NoticeKind::PlannedMaintenance,
    NoticeKind::SpecChange,
    NoticeKind::MajorUiChange,
    NoticeKind::Emergency,
];

async fn render_notices(
    s: &AppState,
    c: &OpConsole,
    flash: &Flash,
    draft: NoticeDraft,
    error: Option<String>,
) -> Response {
    let now = s.services.now();
    let (Ok(tenants), Ok(notices)) = (
        s.services.operator_tenant_lines().await,
        s.services.all_notices().await,
    ) else {
        return (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response();
    };
    let kinds = KINDS
        .iter()
        .map(|k| {
            let key = k.as_str();
            (
                key,
                c.tr.t(&format!("notice.kind.{key}")),
                c.tr.t(&format!("op.rule.{key}")),
                show(earliest_effective(*k, now)),
            )
        })
        .collect();
    let mut p = c.page("op.notices.title", "notices", "/operator/notices", flash);
    let status = p.refused(error);
    html(
        status,
        NoticesTpl {
            p,
            notices: notice_lines(c, notices, &tenants, now),
            tenants,
            kinds,
            draft,
        }
        .render(),
    )
}

async fn notices_page(
    State(s): State<AppState>,
    c: OpConsole,
    Query(flash): Query<Flash>,
) -> Response {
    let draft = NoticeDraft {
        kind: "planned_maintenance".into(),
        ..Default::default()
    };
    render_notices(&s, &c, &flash, draft, None).await
}

async fn notice_publish(
    State(s): State<AppState>,
    c: OpConsole,
    Form(f): Form<Vec<(String, String)>>,
) -> Response {
    let f = Fields(f);
    if !c.csrf_ok(&f.get("_csrf")) {
        return csrf_rejected("/operator/notices");
    }
    let draft = NoticeDraft {
        kind: f.get("kind"),
        effective: f.get("effective"),
        until: f.get("until"),
        title_ja: f.get("title_ja"),
        title_en: f.get("title_en"),
        body_ja: f.get("body_ja"),
        body_en: f.get("body_en"),
        tenants: f.all("tenant"),
    };
    let none = Flash::default();
    let Some(effective_at) = parse_time(&draft.effective) else {
        let e = c.tr.t("op.err.effective").to_string();
        return render_notices(&s, &c, &none, draft, Some(e)).await;
    };
    let show_until = if draft.until.trim().is_empty() {
        None
    } else {
        match parse_time(&draft.until) {
            Some(t) => Some(t),
            None => {
                let e = c.tr.t("op.err.until").to_string();
                return render_notices(&s, &c, &none, draft, Some(e)).await;
            }
        }
    };
    let new = NewNotice {
        kind: draft.kind.clone(),
        title_ja: draft.title_ja.clone(),
        title_en: draft.title_en.clone(),
        body_ja: draft.body_ja.clone(),
        body_en: draft.body_en.clone(),
        effective_at,
        show_until,
        tenants: draft.tenants.clone(),
    };
    match s
        .services
        .operator_publish_notice(new, c.auth.operator(), &c.ctx)
        .await
    {
        Ok(_) => Redirect::to("/operator/notices?ok=op_published").into_response(),
        Err(ServiceError::Invalid(kura_domain::DomainError::Invalid {
            field: "effective_at",
            ..
        })) => {
            // The lead-time rule: say which time would be accepted.
            let earliest = NoticeKind::parse(&draft.kind)
                .map(|k| show(earliest_effective(k, s.services.now())))
                .unwrap_or_default();
            let e = format!("{}{earliest}", c.tr.t("op.err.lead_time"));
            render_notices(&s, &c, &none, draft, Some(e)).await
        }
        Err(e) => {
            let e = error_line(&c.tr, &e);
            render_notices(&s, &c, &none, draft, Some(e)).await
        }
    }
}

async fn notice_withdraw(
    State(s): State<AppState>,
    c: OpConsole,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if !c.csrf_ok(&f.csrf) {
        return csrf_rejected("/operator/notices");
    }
    match s
        .services
        .operator_withdraw_notice(&id, c.auth.operator(), &c.ctx)
        .await
    {
        Ok(_) => Redirect::to("/operator/notices?ok=op_withdrawn").into_response(),
        Err(e) => super::back_err("/operator/notices", &e),
    }
}

// ---------------------------------------------------------------- incidents

#[derive(Default)]
struct IncidentDraft {
    title_ja: String,
    title_en: String,
    severity: String,
    scope: String,
    detected: String,
    target: String,
    tenants: Vec<String>,
}

#[derive(Template)]
#[template(path = "op_incidents.html")]
struct IncidentsTpl {
    p: OpPage,
    incidents: Vec<IncidentLine>,
    tenants: Vec<TenantLine>,
    draft: IncidentDraft,
}

async fn render_incidents(
    s: &AppState,
    c: &OpConsole,
    flash: &Flash,
    draft: IncidentDraft,
    error: Option<String>,
) -> Response {
    let now = s.services.now();
    let (Ok(tenants), Ok(list)) = (
        s.services.operator_tenant_lines().await,
        s.services.list_incidents().await,
    ) else {
        return (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response();
    };
    let mut p = c.page(
        "op.incidents.title",
        "incidents",
        "/operator/incidents",
        flash,
    );
    let status = p.refused(error);
    let incidents = list
        .iter()
        .map(|i| incident_line(c, i, &tenants, now))
        .collect();
    html(
        status,
        IncidentsTpl {
            p,
            incidents,
            tenants,
            draft,
        }
        .render(),
    )
}

async fn incidents_page(
    State(s): State<AppState>,
    c: OpConsole,
    Query(flash): Query<Flash>,
) -> Response {
    let draft = IncidentDraft {
        severity: "medium".into(),
        target: "1bd".into(),
        ..Default::default()
    };
    render_incidents(&s, &c, &flash, draft, None).await
}

async fn incident_open(
    State(s): State<AppState>,
    c: OpConsole,
    Form(f): Form<Vec<(String, String)>>,
) -> Response {
    let f = Fields(f);
    if !c.csrf_ok(&f.get("_csrf")) {
        return csrf_rejected("/operator/incidents");
    }
    let draft = IncidentDraft {
        title_ja: f.get("title_ja"),
        title_en: f.get("title_en"),
        severity: f.get("severity"),
        scope: f.get("scope"),
        detected: f.get("detected"),
        target: f.get("target"),
        tenants: f.all("tenant"),
    };
    let none = Flash::default();
    let detected_at = if draft.detected.trim().is_empty() {
        None
    } else {
        match parse_time(&draft.detected) {
            Some(t) if t <= s.services.now() => Some(t),
            _ => {
                let e = c.tr.t("op.err.detected").to_string();
                return render_incidents(&s, &c, &none, draft, Some(e)).await;
            }
        }
    };
    let target = draft.target.trim();
    let new = NewIncident {
        title_ja: draft.title_ja.clone(),
        title_en: draft.title_en.clone(),
        severity: draft.severity.clone(),
        scope: draft.scope.clone(),
        tenants: draft.tenants.clone(),
        detected_at,
        target: (!target.is_empty()).then(|| target.to_string()),
    };
    match s
        .services
        .operator_open_incident(new, c.auth.operator(), &c.ctx)
        .await
    {
        Ok(i) => {
            Redirect::to(&format!("/operator/incidents/{}?ok=op_opened", i.id)).into_response()
        }
        Err(e) => {
            let e = error_line(&c.tr, &e);
            render_incidents(&s, &c, &none, draft, Some(e)).await
        }
    }
}

struct UpdateLine {
    at: String,
    status: String,
    text: String,
}

#[derive(Template)]
#[template(path = "op_incident.html")]
struct IncidentTpl {
    p: OpPage,
    i: IncidentLine,
    scope: String,
    target: String,
    updates: Vec<UpdateLine>,
    /// How many contact addresses a notification goes to.
    recipients: usize,
    /// (status, label)
    statuses: Vec<(&'static str, &'static str)>,
}

async fn incident_page(
    State(s): State<AppState>,
    c: OpConsole,
    Path(id): Path<String>,
    Query(flash): Query<Flash>,
) -> Response {
    let now = s.services.now();
    let Ok(tenants) = s.services.operator_tenant_lines().await else {
        return (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response();
    };
    let i = match s.services.incident(&id).await {
        Ok(i) => i,
        Err(ServiceError::NotFound) => {
            let p = c.page(
                "err.page_not_found",
                "incidents",
                "/operator/incidents",
                &flash,
            );
            return html(StatusCode::NOT_FOUND, MessageTpl { p }.render());
        }
        Err(_) => return (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response(),
    };
    let recipients = s
        .services
        .operator_incident_recipients(&i)
        .await
        .unwrap_or(0);
    let updates = i
        .updates
        .iter()
        .rev()
        .map(|u| UpdateLine {
            at: show(u.at),
            status: c.tr.t(&format!("op.status.{}", u.status)).to_string(),
            text: if c.ja() {
                u.text_ja.clone()
            } else {
                u.text_en.clone()
            },
        })
        .collect();
    let target = if i.target == "1bd" {
        c.tr.t("op.target.1bd").to_string()
    } else {
        i.target.clone()
    };
    let p = c.page(
        "op.incident.title",
        "incidents",
        &format!("/operator/incidents/{}", i.id),
        &flash,
    );
    html(
        StatusCode::OK,
        IncidentTpl {
            p,
            scope: i.scope.clone(),
            target,
            i: incident_line(&c, &i, &tenants, now),
            updates,
            recipients,
            statuses: ["investigating", "identified", "monitoring", "resolved"]
                .into_iter()
                .map(|st| (st, c.tr.t(&format!("op.status.{st}"))))
                .collect(),
        }
        .render(),
    )
}

#[derive(Template)]
#[template(path = "op_message.html")]
struct MessageTpl {
    p: OpPage,
}

#[derive(serde::Deserialize)]
struct UpdateForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    text_ja: String,
    #[serde(default)]
    text_en: String,
}

async fn incident_update(
    State(s): State<AppState>,
    c: OpConsole,
    Path(id): Path<String>,
    Form(f): Form<UpdateForm>,
) -> Response {
    let back = format!("/operator/incidents/{id}");
    if !c.csrf_ok(&f.csrf) {
        return csrf_rejected(&back);
    }
    if f.text_ja.trim().is_empty() || f.text_en.trim().is_empty() {
        return Redirect::to(&format!("{back}?err=op_update_text")).into_response();
    }
    match s
        .services
        .operator_update_incident(
            &id,
            &f.status,
            &f.text_ja,
            &f.text_en,
            c.auth.operator(),
            &c.ctx,
        )
        .await
    {
        Ok(_) => Redirect::to(&format!("{back}?ok=op_updated")).into_response(),
        Err(e) => super::back_err(&back, &e),
    }
}

async fn incident_notify(
    State(s): State<AppState>,
    c: OpConsole,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let back = format!("/operator/incidents/{id}");
    if !c.csrf_ok(&f.csrf) {
        return csrf_rejected(&back);
    }
    match s
        .services
        .operator_notify_incident(&id, c.auth.operator(), &c.ctx)
        .await
    {
        Ok(_) => Redirect::to(&format!("{back}?ok=op_notified")).into_response(),
        Err(e) => super::back_err(&back, &e),
    }
}
