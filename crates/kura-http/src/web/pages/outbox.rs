//! The demo's mail outbox (loopback only).

use super::*;

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
