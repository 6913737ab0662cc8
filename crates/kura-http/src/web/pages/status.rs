//! The public status page.

use super::*;

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
    let ja = v.tr.0 == crate::web::i18n::Lang::Ja;
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
