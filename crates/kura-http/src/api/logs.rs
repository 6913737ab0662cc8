//! The audit log (list, export, verify, checkpoints) and the access log; their query parsing.

use super::*;

pub(super) fn routes() -> Vec<(RouteDoc, MethodRouter<AppState>)> {
    vec![
        route!(get, "/api/v1/audit", Logs, true, 200, "Audit events, newest first: filters from, to (RFC 3339 or a date/time in the tenant's zone), user, action (`file.` for a prefix), ip, result; keyset paging with before=next_before", list_audit, query: [LogQuery], resp: wire::LogPage<wire::AuditEvent>),
        route!(get, "/api/v1/audit/export", Logs, true, 200, "Export the audit log (same filters), streamed: format=jsonl (signed; `kura audit verify FILE --public-key K` checks it offline) or csv", export_audit, query: [LogQuery], raw: "application/x-ndjson"),
        route!(get, "/api/v1/audit/verify", Logs, true, 200, "Verify the tenant's audit hash chain: every hash and link, and every signed checkpoint stored with it", verify_audit, resp: wire::Verification),
        route!(post, "/api/v1/audit/verify", Logs, true, 200, "Verify the tenant's audit hash chain against a signed checkpoint kept outside Kura (from the daily mail, the console or GET /audit/checkpoint) besides the stored ones", verify_audit_with, body: CheckpointBody, resp: wire::Verification),
        route!(get, "/api/v1/audit/checkpoint", Logs, true, 200, "The newest signed checkpoint of the tenant's audit chain (seq, hash, time, signature): keep it outside Kura to detect a later cut or rewrite", newest_checkpoint, resp: wire::NewestCheckpoint),
        route!(get, "/api/v1/access-log", Logs, true, 200, "Access log, newest first: filters from, to, user, ip, status (`4xx` or exact), path (prefix); keyset paging with before=next_before", list_access, query: [LogQuery], resp: wire::LogPage<wire::AccessEntry>),
        route!(get, "/api/v1/access-log/export", Logs, true, 200, "Export the access log (same filters), streamed: format=csv or jsonl", export_access, query: [LogQuery], raw: "text/csv"),
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
    ok(wire::LogPage::<wire::AuditEvent> {
        items: events.into_iter().map(Into::into).collect(),
        next_before: next,
    })
}

async fn verify_audit(Call(s, a, ctx): Call) -> ApiResult {
    ok(wire::Verification::from(
        s.services.verify_own_audit(&a, &ctx).await?,
    ))
}

/// A signed checkpoint kept outside Kura (mailed, or from `GET /audit/checkpoint`).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CheckpointBody {
    checkpoint: CheckpointIn,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CheckpointIn {
    tenant_id: String,
    seq: i64,
    hash: String,
    /// Milliseconds since the epoch.
    at: i64,
    kind: String,
    key_id: String,
    signature: String,
}

async fn verify_audit_with(
    Call(s, a, ctx): Call,
    ApiJson(b): ApiJson<CheckpointBody>,
) -> ApiResult {
    let checkpoint = kura_store::audit::Checkpoint {
        tenant_id: b.checkpoint.tenant_id,
        seq: b.checkpoint.seq,
        hash: b.checkpoint.hash,
        at: b.checkpoint.at,
        kind: b.checkpoint.kind,
        key_id: b.checkpoint.key_id,
        signature: b.checkpoint.signature,
    };
    ok(wire::Verification::from(
        s.services
            .verify_own_audit_with(&a, &checkpoint, &ctx)
            .await?,
    ))
}

async fn newest_checkpoint(Call(s, a, ctx): Call) -> ApiResult {
    let cp = s.services.newest_checkpoint(&a, &ctx).await?;
    ok(wire::NewestCheckpoint {
        checkpoint: cp.map(Into::into),
    })
}

async fn list_access(Call(s, a, ctx): Call, Query(q): Query<LogQuery>) -> ApiResult {
    let filter = q.access_filter(&a.tenant.settings.time_zone)?;
    let items = s
        .services
        .query_access(&a, &filter, q.before, q.limit.unwrap_or(100), &ctx)
        .await?;
    let next = items.last().map(|e| e.id);
    ok(wire::LogPage::<wire::AccessEntry> {
        items: items.into_iter().map(Into::into).collect(),
        next_before: next,
    })
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
