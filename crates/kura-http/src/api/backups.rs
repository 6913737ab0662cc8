//! What a tenant admin sees of backups.

use super::*;

pub(super) fn routes() -> Vec<(RouteDoc, MethodRouter<AppState>)> {
    vec![
        route!(get, "/api/v1/tenant/backups", Tenant, true, 200, "The newest verified backup generation holding this tenant, where backups are kept and how many generations", tenant_backups, resp: wire::BackupSummary),
    ]
}

async fn tenant_backups(Call(s, a, ctx): Call) -> ApiResult {
    ok(wire::BackupSummary::from(
        s.services.backup_summary(&a, &ctx).await?,
    ))
}
