//! Searching files across the projects the caller may see.

use super::*;

pub(super) fn routes() -> Vec<(RouteDoc, MethodRouter<AppState>)> {
    vec![
        route!(get, "/api/v1/search", Files, true, 200, "Files in every project the caller can see (q, tag, label, attr=key:value; sort, order, after, limit)", search, query: [ListFilter, PageParams], resp: wire::Page<wire::FoundFile>),
    ]
}

async fn search(
    Call(s, a, ctx): Call,
    Query(f): Query<ListFilter>,
    Query(pg): Query<PageParams>,
) -> ApiResult {
    let q = file_search(None, f, pg)?;
    let (list, next) = s.services.search_files(&a, &q, &ctx).await?;
    ok(wire::Page::<wire::FoundFile> {
        items: list.into_iter().map(Into::into).collect(),
        next,
    })
}
