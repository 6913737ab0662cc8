//! Liveness, readiness, the OpenAPI document, the public status and the audit signing key.

use super::*;

pub(super) fn routes() -> Vec<(RouteDoc, MethodRouter<AppState>)> {
    vec![
        route!(get, "/healthz", Health, false, 200, "Liveness: the process answers", healthz, resp: wire::Status),
        route!(get, "/readyz", Health, false, 200, "Readiness: the database answers", readyz, resp: wire::Readiness),
        route!(get, "/api/v1/openapi.json", Health, false, 200, "This OpenAPI 3.1 document", openapi_doc, resp: wire::OpenApiDocument),
        route!(get, "/status.json", Health, false, 200, "Public status: state, open incidents, planned maintenance, availability over 30 and 90 days measured by Kura's probes against the SLO, planned downtime against the yearly budget", status_json, resp: wire::StatusReport),
        route!(get, "/.well-known/kura-audit-key", Health, false, 200, "The deployment's Ed25519 public key that signs audit checkpoints and exports", audit_key, resp: wire::AuditKey),
    ]
}

/// `{"status":"ok"}` ([`wire::Status`]), a constant: liveness says only that the process
/// answers, so nothing is built or serialised per probe.
async fn healthz() -> ApiResult {
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        r#"{"status":"ok"}"#,
    )
        .into_response())
}

async fn readyz(State(s): State<AppState>) -> ApiResult {
    let (db, blobs) = s.services.readiness().await;
    let word = |up: bool| if up { "ok" } else { "unreachable" };
    let body = wire::Readiness {
        status: if db && blobs { "ready" } else { "unavailable" }.into(),
        database: word(db).into(),
        storage: word(blobs).into(),
    };
    if db && blobs {
        ok(body)
    } else {
        let mut res = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        Ok(res)
    }
}

async fn openapi_doc() -> ApiResult {
    ok(crate::openapi::document())
}

async fn status_json(State(s): State<AppState>) -> ApiResult {
    ok(wire::StatusReport::from(s.services.status_report().await?))
}

async fn audit_key(State(s): State<AppState>) -> ApiResult {
    ok(wire::AuditKey {
        alg: "Ed25519".into(),
        key_id: s.services.signing.key_id(),
        public_key: s.services.signing.public_key_hex(),
    })
}
