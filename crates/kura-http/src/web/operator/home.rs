//! The operator console's overview: incidents, notices on display, tenants.

use super::*;

#[derive(Template)]
#[template(path = "op_home.html")]
struct HomeTpl {
    p: OpPage,
    tenants: Vec<TenantLine>,
    incidents: Vec<IncidentLine>,
    notices: Vec<NoticeLine>,
}

pub(super) async fn home(
    State(s): State<AppState>,
    c: OpConsole,
    Query(flash): Query<Flash>,
) -> Response {
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
