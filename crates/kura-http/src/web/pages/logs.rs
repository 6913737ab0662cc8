//! The audit log and the access log: filters, paging, exports, verification.

use super::*;

// ---------------------------------------------------------------- audit

pub struct EventView {
    seq: i64,
    time: String,
    actor: String,
    action: String,
    target: String,
    result: String,
    ip: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditTpl {
    p: Page,
    events: Vec<EventView>,
    chain_error: Option<String>,
    newest: Option<CheckpointView>,
    zone: String,
    q: LogForm,
    /// The filter as a query string (for export links and paging).
    query: String,
    next_before: Option<i64>,
    bad_filter: bool,
}

/// The newest signed checkpoint, shown to be kept outside Kura.
pub struct CheckpointView {
    seq: i64,
    when: String,
    json: String,
}

/// The log filters as typed (echoed back into the form).
#[derive(Deserialize, Default, Clone)]
pub struct LogForm {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    ip: String,
    #[serde(default)]
    result: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    before: Option<i64>,
}

fn pct(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl LogForm {
    fn api(&self) -> crate::common::LogQuery {
        let t = |v: &str| (!v.trim().is_empty()).then(|| v.trim().to_string());
        crate::common::LogQuery {
            before: self.before,
            from: t(&self.from),
            to: t(&self.to),
            user: t(&self.user),
            action: t(&self.action),
            ip: t(&self.ip),
            result: t(&self.result).or_else(|| t(&self.status)),
            path: t(&self.path),
            ..Default::default()
        }
    }
    fn query(&self) -> String {
        [
            ("from", &self.from),
            ("to", &self.to),
            ("user", &self.user),
            ("action", &self.action),
            ("ip", &self.ip),
            ("result", &self.result),
            ("status", &self.status),
            ("path", &self.path),
        ]
        .iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| format!("{k}={}", pct(v.trim())))
        .collect::<Vec<_>>()
        .join("&")
    }
}

const LOG_PAGE: i64 = 100;

/// The tenant's audit log: filters, paging, CSV / signed JSON Lines export, and live
/// verification of the chain.
pub async fn audit_page(
    c: Console,
    Query(flash): Query<Flash>,
    Query(q): Query<LogForm>,
) -> Response {
    let s = c.state.clone();
    let zone = c.auth.tenant.settings.time_zone.clone();
    let (events, bad_filter) = match q.api().audit_filter(&zone) {
        Ok(f) => match s
            .services
            .query_audit(&c.auth, &f, q.before, LOG_PAGE, &c.ctx)
            .await
        {
            Ok(e) => (e, false),
            Err(e) => return message(&c, StatusCode::FORBIDDEN, &e),
        },
        Err(_) => (Vec::new(), true),
    };
    let chain_error = match s.services.verify_own_audit(&c.auth, &c.ctx).await {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(e) => Some(e.to_string()),
    };
    let newest = match s.services.newest_checkpoint(&c.auth, &c.ctx).await {
        Ok(Some(cp)) => Some(CheckpointView {
            seq: cp.seq,
            when: kura_domain::Timestamp(cp.at).format_in_zone(&zone),
            json: serde_json::to_string_pretty(&cp).unwrap_or_default(),
        }),
        _ => None,
    };
    let next_before = (events.len() as i64 == LOG_PAGE)
        .then(|| events.last().map(|e| e.record.seq))
        .flatten();
    let events = events
        .into_iter()
        .map(|e| {
            let r = e.record;
            EventView {
                seq: r.seq,
                time: kura_domain::Timestamp(r.at).format_in_zone(&zone),
                actor: format!(
                    "{}{}",
                    r.actor_kind,
                    r.actor_id.map(|a| format!(" {a}")).unwrap_or_default()
                ),
                action: r.action,
                target: format!(
                    "{}{}",
                    r.target_kind.unwrap_or_default(),
                    r.target_id.map(|t| format!(" {t}")).unwrap_or_default()
                ),
                result: r.result,
                ip: r.ip.unwrap_or_default(),
            }
        })
        .collect();
    let body = AuditTpl {
        p: page(&c, "audit.title", "audit", "/audit", &flash),
        events,
        chain_error,
        newest,
        zone,
        query: q.query(),
        q,
        next_before,
        bad_filter,
    }
    .render();
    html(StatusCode::OK, body)
}

pub struct AccessView {
    time: String,
    user: String,
    ip: String,
    method: String,
    path: String,
    status: i64,
    latency_ms: String,
}

#[derive(Template)]
#[template(path = "access_log.html")]
struct AccessTpl {
    p: Page,
    entries: Vec<AccessView>,
    zone: String,
    q: LogForm,
    query: String,
    next_before: Option<i64>,
    bad_filter: bool,
}

/// The tenant's access log: filters, paging, CSV / JSON Lines export.
pub async fn access_page(
    c: Console,
    Query(flash): Query<Flash>,
    Query(q): Query<LogForm>,
) -> Response {
    let s = c.state.clone();
    let zone = c.auth.tenant.settings.time_zone.clone();
    let (entries, bad_filter) = match q.api().access_filter(&zone) {
        Ok(f) => match s
            .services
            .query_access(&c.auth, &f, q.before, LOG_PAGE, &c.ctx)
            .await
        {
            Ok(e) => (e, false),
            Err(e) => return message(&c, StatusCode::FORBIDDEN, &e),
        },
        Err(_) => (Vec::new(), true),
    };
    let next_before = (entries.len() as i64 == LOG_PAGE)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    let entries = entries
        .into_iter()
        .map(|e| AccessView {
            time: e.at.format_in_zone(&zone),
            user: e.user_id.map(|u| u.to_string()).unwrap_or_default(),
            ip: e.ip.unwrap_or_default(),
            method: e.method,
            path: e.path,
            status: e.status,
            latency_ms: format!("{:.1}", e.latency_us as f64 / 1000.0),
        })
        .collect();
    let body = AccessTpl {
        p: page(&c, "access.title", "audit", "/access-log", &flash),
        entries,
        zone,
        query: q.query(),
        q,
        next_before,
        bad_filter,
    }
    .render();
    html(StatusCode::OK, body)
}
