//! Service notices and incidents shown to a tenant.

use super::*;

pub(super) fn routes() -> Vec<(RouteDoc, MethodRouter<AppState>)> {
    vec![
        route!(get, "/api/v1/notices", Workspace, true, 200, "Service notices for the caller's tenant that are still current (kind, titles and bodies in ja/en, effective time)", list_notices, resp: wire::Items<wire::Notice>),
        route!(get, "/api/v1/incidents", Workspace, true, 200, "Open incidents the caller's tenant was notified of, with their updates", list_incidents, resp: wire::Items<wire::Incident>),
    ]
}

async fn list_notices(Call(s, a, _): Call) -> ApiResult {
    items::<wire::Notice, _>(s.services.current_notices(&a.tenant.id).await?)
}

async fn list_incidents(Call(s, a, _): Call) -> ApiResult {
    items::<wire::Incident, _>(s.services.current_incidents(&a.tenant.id).await?)
}
