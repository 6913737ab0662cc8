//! The JSON API, `/api/v1`. Every route is declared once in [`routes`], with the metadata the
//! OpenAPI document is generated from, so an undocumented route cannot exist.

use crate::error::ApiError;
use crate::extract::{ApiJson, Auth, Call, Ctx};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put, MethodRouter};
use axum::{Json, Router};
use kura_domain::authz::Scope;
use kura_domain::tenant::TenantSettings;
use kura_domain::{
    ApiTokenId, ContactId, FileId, FolderId, GrantId, PasskeyId, ProjectId, RoleId, SessionId,
    UserId,
};
use kura_services::auth::{ApiArea, LoginOutcome, LoginResult, SessionKind};
use kura_services::files::DownloadOutcome;
use kura_services::mfa::SecondFactor;
use kura_services::users::{NewUser, UserChange};
use kura_services::workspace::Patch;
use serde::Deserialize;
use serde_json::{json, Value};

type ApiResult = Result<Response, ApiError>;

/// One documented route.
pub struct RouteDoc {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    /// Its OpenAPI tag and the scope area an API token needs.
    pub area: ApiArea,
    /// Needs a session or bearer token.
    pub auth: bool,
    /// JSON schema of the request body, if any.
    pub body: Option<fn() -> Value>,
    /// Success status.
    pub ok: u16,
}

macro_rules! route {
    ($m:ident, $path:literal, $area:ident, $auth:literal, $ok:literal, $summary:literal, $h:expr) => {
        (
            RouteDoc {
                method: stringify!($m),
                path: $path,
                summary: $summary,
                area: ApiArea::$area,
                auth: $auth,
                body: None,
                ok: $ok,
            },
            $m($h),
        )
    };
    ($m:ident, $path:literal, $area:ident, $auth:literal, $ok:literal, $summary:literal, $h:expr, $body:expr) => {
        (
            RouteDoc {
                method: stringify!($m),
                path: $path,
                summary: $summary,
                area: ApiArea::$area,
                auth: $auth,
                body: Some($body),
                ok: $ok,
            },
            $m($h),
        )
    };
}

pub fn router() -> Router<AppState> {
    let mut r = Router::new();
    for (doc, mr) in routes() {
        // The route's area travels with the request, for the API-token scope check.
        r = r.route(doc.path, mr.layer(axum::Extension(doc.area)));
    }
    r.route("/api/{*rest}", axum::routing::any(api_not_found))
}

async fn api_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no_route", "no such API route")
}

fn created(v: impl serde::Serialize) -> ApiResult {
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

fn ok(v: impl serde::Serialize) -> ApiResult {
    Ok(Json(v).into_response())
}

fn no_content() -> ApiResult {
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn items(v: impl serde::Serialize) -> ApiResult {
    ok(json!({ "items": v }))
}

fn login_json(r: &LoginResult) -> Value {
    json!({
        "token": r.token,
        "token_type": "Bearer",
        "expires_at": r.expires_at.to_rfc3339(),
        "user": r.user,
        "tenant": { "id": r.tenant.id, "slug": r.tenant.slug, "name": r.tenant.name },
    })
}

#[derive(Deserialize)]
struct TokenBody {
    name: String,
    scopes: Vec<String>,
    #[serde(default = "default_token_days")]
    expires_in_days: i64,
}

fn default_token_days() -> i64 {
    90
}

fn token_schema() -> Value {
    json!({"type":"object","required":["name","scopes"],"properties":{"name":{"type":"string"},"scopes":{"type":"array","items":{"type":"string","example":"files:read"}},"expires_in_days":{"type":"integer","default":90}}})
}

fn default_purpose() -> String {
    "notices".into()
}

/// List filters: `q` (name contains, case-insensitive), `label` (own label), `tag`.
#[derive(Deserialize, Default)]
struct ListFilter {
    q: Option<String>,
    label: Option<String>,
    tag: Option<String>,
    /// `key:value`: a custom attribute.
    attr: Option<String>,
}

impl ListFilter {
    fn keeps(&self, name: &str, l: &kura_store::Labels) -> bool {
        self.q
            .as_deref()
            .is_none_or(|q| name.to_lowercase().contains(&q.to_lowercase()))
            && self
                .label
                .as_deref()
                .is_none_or(|x| l.label.as_deref() == Some(x))
            && self
                .tag
                .as_deref()
                .is_none_or(|t| l.tags.iter().any(|x| x == t))
            && self
                .attr
                .as_deref()
                .and_then(|a| a.split_once(':'))
                .is_none_or(|(k, v)| l.attribute_is(k, v))
    }
}

/// The label fields of a PATCH body: `label` (string, or null to inherit), `tags`,
/// `attributes`; absent fields stay as they are.
type LabelPatch = (
    Option<Option<String>>,
    Option<Vec<String>>,
    Option<serde_json::Map<String, Value>>,
);

fn label_fields(body: &Value) -> Result<LabelPatch, ApiError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ApiError::bad_request("body must be a JSON object"))?;
    let label = match obj.get("label") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) => Some(Some(s.clone())),
        Some(_) => return Err(ApiError::bad_request("label must be a string or null")),
    };
    let tags = match obj.get("tags") {
        None => None,
        Some(v) => Some(
            serde_json::from_value::<Vec<String>>(v.clone())
                .map_err(|_| ApiError::bad_request("tags must be an array of strings"))?,
        ),
    };
    let attributes = match obj.get("attributes") {
        None => None,
        Some(Value::Object(m)) => Some(m.clone()),
        Some(_) => return Err(ApiError::bad_request("attributes must be an object")),
    };
    Ok((label, tags, attributes))
}

#[derive(Deserialize, Default)]
struct PageParams {
    /// `name` (default) or `updated`.
    sort: Option<String>,
    /// `asc` (default) or `desc`.
    order: Option<String>,
    /// The `next` cursor of the previous page.
    after: Option<String>,
    /// Page size, 1-1000 (default 100).
    limit: Option<i64>,
}

/// `GET /projects/{id}/files` and `GET /search`: filters, sort and keyset paging.
fn file_search(
    project: Option<ProjectId>,
    f: ListFilter,
    pg: PageParams,
) -> Result<kura_services::files::FileSearch, ApiError> {
    let sort = match pg.sort.as_deref() {
        None | Some("name") => kura_store::files::FileSort::Name,
        Some("updated") => kura_store::files::FileSort::Updated,
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                "sort: name or updated",
            ))
        }
    };
    let descending = match pg.order.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                "order: asc or desc",
            ))
        }
    };
    let attributes = match f.attr.as_deref() {
        None | Some("") => Vec::new(),
        Some(a) => {
            let (k, v) = a.split_once(':').ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid",
                    "attr: key:value",
                )
            })?;
            vec![(k.to_string(), v.to_string())]
        }
    };
    Ok(kura_services::files::FileSearch {
        project,
        q: f.q,
        tag: f.tag,
        label: f.label.filter(|l| !l.is_empty()),
        attributes,
        sort: Some(sort),
        descending,
        after: pg.after,
        limit: pg.limit.unwrap_or(100),
    })
}

mod auth;
mod backups;
mod files;
mod health;
mod logs;
use crate::common::LogQuery;
mod me;
mod notices;
mod roles;
mod search;
mod signup;
mod tenant;
mod usage;
mod users;
mod workspace;

/// Every route of the API and the health endpoints: each resource's own list, in one table
/// (the router and the OpenAPI document are both made from it).
pub fn routes() -> Vec<(RouteDoc, MethodRouter<AppState>)> {
    [
        auth::routes(),
        backups::routes(),
        files::routes(),
        health::routes(),
        logs::routes(),
        me::routes(),
        notices::routes(),
        roles::routes(),
        search::routes(),
        signup::routes(),
        tenant::routes(),
        usage::routes(),
        users::routes(),
        workspace::routes(),
    ]
    .into_iter()
    .flatten()
    .collect()
}
