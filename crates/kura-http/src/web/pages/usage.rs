//! The usage dashboard.

use super::*;

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
    c: Console,
    Query(flash): Query<Flash>,
    Query(q): Query<UsageForm>,
) -> Response {
    let s = c.state.clone();
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
