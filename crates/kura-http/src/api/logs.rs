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
