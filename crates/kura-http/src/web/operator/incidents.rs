//! The incident register: open, update, notify.

use super::*;

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

pub(super) async fn incidents_page(
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

pub(super) async fn incident_open(
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

pub(super) async fn incident_page(
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
pub(super) struct UpdateForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    text_ja: String,
    #[serde(default)]
    text_en: String,
}

pub(super) async fn incident_update(
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
        Err(e) => crate::web::back_err(&back, &e),
    }
}

pub(super) async fn incident_notify(
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
        Err(e) => crate::web::back_err(&back, &e),
    }
}
