//! Publishing and withdrawing service notices.

use super::*;

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

pub(super) async fn notices_page(
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

pub(super) async fn notice_publish(
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

pub(super) async fn notice_withdraw(
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
        Err(e) => crate::web::back_err("/operator/notices", &e),
    }
}
