//! A terminated tenant's export link.

use super::*;

// ---------------------------------------------------------------- termination export

/// A terminated tenant's full export (tar), behind the link mailed to its contract admins;
/// gone once the data is deleted.
pub async fn termination_export(
    State(s): State<AppState>,
    v: Visitor,
    Path(token): Path<String>,
) -> Response {
    match s.services.export_by_link(&token, &v.ctx).await {
        Ok((slug, stream)) => (
            [
                (
                    axum::http::header::CONTENT_TYPE,
                    "application/x-tar".to_string(),
                ),
                (
                    axum::http::header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"kura-export-{slug}.tar\""),
                ),
            ],
            axum::body::Body::from_stream(stream),
        )
            .into_response(),
        Err(_) => not_found(v).await,
    }
}
