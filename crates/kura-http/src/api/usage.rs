//! Usage figures.

use super::*;

pub(super) fn routes() -> Vec<(RouteDoc, MethodRouter<AppState>)> {
    vec![
        route!(get, "/api/v1/tenant/usage", Tenant, true, 200, "Usage: files, versions, bytes stored, uploads, downloads (tenant admin)", tenant_usage, resp: wire::Usage),
        route!(get, "/api/v1/tenant/usage/daily", Tenant, true, 200, "Usage per day (from, to: YYYY-MM-DD in the tenant's zone; default the last 30 days) or per month (by=month): logins, active users, uploads, downloads and bytes, folders, projects, files, bytes stored", usage_daily, query: [UsageQuery], resp: wire::UsageReport),
    ]
}

#[derive(Deserialize, JsonSchema)]
struct UsageQuery {
    /// First day, `YYYY-MM-DD` in the tenant's zone (default: 29 days before `to`).
    from: Option<String>,
    /// Last day (default: today).
    to: Option<String>,
    /// `day` (default) or `month`.
    by: Option<String>,
}

async fn usage_daily(Call(s, a, ctx): Call, Query(q): Query<UsageQuery>) -> ApiResult {
    let zone = &a.tenant.settings.time_zone;
    let now = s.services.now();
    let to = q.to.unwrap_or_else(|| now.day_in_zone(zone));
    let from = q
        .from
        .unwrap_or_else(|| kura_domain::Timestamp(now.0 - 29 * 86_400_000).day_in_zone(zone));
    let monthly = match q.by.as_deref() {
        None | Some("day") => false,
        Some("month") => true,
        Some(_) => return Err(ApiError::bad_request("by: day or month")),
    };
    let items = s
        .services
        .usage_report(&a, &from, &to, monthly, &ctx)
        .await?;
    ok(wire::UsageReport {
        from,
        to,
        by: if monthly { "month" } else { "day" }.into(),
        time_zone: zone.clone(),
        items: items.into_iter().map(Into::into).collect(),
    })
}

async fn tenant_usage(Call(s, a, ctx): Call) -> ApiResult {
    ok(wire::Usage::from(s.services.usage(&a, &ctx).await?))
}
