//! The audit log (list, export, verify, checkpoints) and the access log; their query parsing.

use super::*;

pub(super) fn routes() -> Vec<(RouteDoc, MethodRouter<AppState>)> {
    vec![
        route!(
            get,
            "/api/v1/audit",
            Logs,
            true,
            200,
            "Audit events, newest first: filters from, to (RFC 3339 or a date/time in the tenant's zone), user, action (`file.` for a prefix), ip, result; keyset paging with before=next_before",
            list_audit
        ),
        route!(
            get,
            "/api/v1/audit/export",
            Logs,
            true,
            200,
            "Export the audit log (same filters), streamed: format=jsonl (signed; `kura audit verify FILE --public-key K` checks it offline) or csv",
            export_audit
        ),
        route!(
            get,
            "/api/v1/audit/verify",
            Logs,
            true,
            200,
            "Verify the tenant's audit hash chain: every hash and link, and every signed checkpoint stored with it",
            verify_audit
        ),
        route!(
            post,
            "/api/v1/audit/verify",
            Logs,
            true,
            200,
            "Verify the tenant's audit hash chain against a signed checkpoint kept outside Kura (from the daily mail, the console or GET /audit/checkpoint) besides the stored ones",
            verify_audit_with,
            checkpoint_schema
        ),
        route!(
            get,
            "/api/v1/audit/checkpoint",
            Logs,
            true,
            200,
            "The newest signed checkpoint of the tenant's audit chain (seq, hash, time, signature): keep it outside Kura to detect a later cut or rewrite",
            newest_checkpoint
        ),
        route!(
            get,
            "/api/v1/access-log",
            Logs,
            true,
            200,
            "Access log, newest first: filters from, to, user, ip, status (`4xx` or exact), path (prefix); keyset paging with before=next_before",
            list_access
        ),
        route!(
            get,
            "/api/v1/access-log/export",
            Logs,
            true,
            200,
            "Export the access log (same filters), streamed: format=csv or jsonl",
            export_access
        ),
    ]
}

#[derive(Deserialize, Default)]
pub struct LogQuery {
    pub before: Option<i64>,
    pub limit: Option<i64>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub user: Option<String>,
    pub action: Option<String>,
    pub ip: Option<String>,
    /// Audit: success / failure / denied. Access log: a status (`4xx`, `404`).
    #[serde(alias = "status")]
    pub result: Option<String>,
    pub path: Option<String>,
    pub format: Option<String>,
}

impl LogQuery {
    fn time(&self, field: &str, v: &Option<String>, zone: &str) -> Result<Option<i64>, ApiError> {
        match v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => kura_domain::Timestamp::parse_in_zone(v, zone)
                .map(|t| Some(t.0))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "{field}: use RFC 3339 (2026-11-21T09:00:00+09:00) or a date (2026-11-21)"
                    ))
                }),
        }
    }

    /// The access-log filter.
    pub fn access_filter(&self, zone: &str) -> Result<kura_store::access_log::Filter, ApiError> {
        let text = |v: &Option<String>| {
            v.clone()
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
        };
        let status = text(&self.result);
        if let Some(st) = &status {
            let ok = (st.len() == 3 && st.ends_with("xx") && st[..1].parse::<u8>().is_ok())
                || st.parse::<u16>().is_ok();
            if !ok {
                return Err(ApiError::bad_request("status: e.g. 4xx or 404"));
            }
        }
        Ok(kura_store::access_log::Filter {
            from: self.time("from", &self.from, zone)?,
            to: self.time("to", &self.to, zone)?,
            user: text(&self.user),
            ip: text(&self.ip),
            status,
            path: text(&self.path),
        })
    }

    /// The store filter; times in the tenant's zone unless they carry an offset.
    pub fn audit_filter(&self, zone: &str) -> Result<kura_store::audit::Filter, ApiError> {
        let time = |field: &str, v: &Option<String>| self.time(field, v, zone);
        let text = |v: &Option<String>| {
            v.clone()
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
        };
        let result = text(&self.result);
        if let Some(r) = &result {
            if !["success", "failure", "denied"].contains(&r.as_str()) {
                return Err(ApiError::bad_request("result: success, failure or denied"));
            }
        }
        Ok(kura_store::audit::Filter {
            from: time("from", &self.from)?,
            to: time("to", &self.to)?,
            actor: text(&self.user),
            action: text(&self.action),
            ip: text(&self.ip),
            result,
        })
    }
}

async fn export_audit(Call(s, a, ctx): Call, Query(q): Query<LogQuery>) -> ApiResult {
    let format = kura_services::audit::ExportFormat::parse(q.format.as_deref().unwrap_or("jsonl"))
        .ok_or_else(|| ApiError::bad_request("format: jsonl or csv"))?;
    let filter = q.audit_filter(&a.tenant.settings.time_zone)?;
    let stream = s.services.export_audit(&a, filter, format, &ctx).await?;
    let name = format!(
        "audit-{}-{}.{}",
        a.tenant.slug,
        s.services.now().day_in_zone(&a.tenant.settings.time_zone),
        format.extension()
    );
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                format.content_type().to_string(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

async fn list_audit(Call(s, a, ctx): Call, Query(q): Query<LogQuery>) -> ApiResult {
    let filter = q.audit_filter(&a.tenant.settings.time_zone)?;
    let events = s
        .services
        .query_audit(&a, &filter, q.before, q.limit.unwrap_or(100), &ctx)
        .await?;
    let next = events.last().map(|e| e.record.seq);
    ok(json!({ "items": events, "next_before": next }))
}

async fn verify_audit(Call(s, a, ctx): Call) -> ApiResult {
    match s.services.verify_own_audit(&a, &ctx).await? {
        Ok(report) => ok(json!({ "ok": true, "report": report })),
        Err(e) => ok(json!({ "ok": false, "error": e.to_string() })),
    }
}

fn checkpoint_schema() -> Value {
    json!({"type":"object","required":["checkpoint"],"additionalProperties":false,"properties":{"checkpoint":{"type":"object","required":["tenant_id","seq","hash","at","kind","key_id","signature"],"properties":{"tenant_id":{"type":"string"},"seq":{"type":"integer"},"hash":{"type":"string"},"at":{"type":"integer","description":"milliseconds since the epoch"},"kind":{"type":"string"},"key_id":{"type":"string"},"signature":{"type":"string"}}}}})
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointBody {
    checkpoint: kura_store::audit::Checkpoint,
}

async fn verify_audit_with(
    Call(s, a, ctx): Call,
    ApiJson(b): ApiJson<CheckpointBody>,
) -> ApiResult {
    match s
        .services
        .verify_own_audit_with(&a, &b.checkpoint, &ctx)
        .await?
    {
        Ok(report) => ok(json!({ "ok": true, "report": report })),
        Err(e) => ok(json!({ "ok": false, "error": e.to_string() })),
    }
}

async fn newest_checkpoint(Call(s, a, ctx): Call) -> ApiResult {
    let cp = s.services.newest_checkpoint(&a, &ctx).await?;
    ok(json!({ "checkpoint": cp }))
}

async fn list_access(Call(s, a, ctx): Call, Query(q): Query<LogQuery>) -> ApiResult {
    let filter = q.access_filter(&a.tenant.settings.time_zone)?;
    let items = s
        .services
        .query_access(&a, &filter, q.before, q.limit.unwrap_or(100), &ctx)
        .await?;
    let next = items.last().map(|e| e.id);
    ok(json!({ "items": items, "next_before": next }))
}

async fn export_access(Call(s, a, ctx): Call, Query(q): Query<LogQuery>) -> ApiResult {
    let format = kura_services::audit::ExportFormat::parse(q.format.as_deref().unwrap_or("csv"))
        .ok_or_else(|| ApiError::bad_request("format: jsonl or csv"))?;
    let filter = q.access_filter(&a.tenant.settings.time_zone)?;
    let stream = s.services.export_access(&a, filter, format, &ctx).await?;
    Ok(attachment(&s, &a, "access", format, stream))
}

fn attachment(
    s: &AppState,
    a: &kura_services::auth::AuthContext,
    log: &str,
    format: kura_services::audit::ExportFormat,
    stream: kura_services::audit::ExportStream,
) -> Response {
    let name = format!(
        "{log}-{}-{}.{}",
        a.tenant.slug,
        s.services.now().day_in_zone(&a.tenant.settings.time_zone),
        format.extension()
    );
    (
        [
            (
                axum::http::header::CONTENT_TYPE,
                format.content_type().to_string(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}
