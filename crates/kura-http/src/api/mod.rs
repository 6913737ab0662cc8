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
use kura_services::files::{Content, DownloadOutcome};
use kura_services::mfa::SecondFactor;
use kura_services::users::{NewUser, UserChange};
use kura_services::workspace::Patch;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

type ApiResult = Result<Response, ApiError>;

/// Makes a route's schema (request body, query parameters or response) from a wire type.
pub type SchemaFn = fn(&mut schemars::SchemaGenerator) -> schemars::Schema;

/// The schema of wire type `T` (a `$ref` to a component for named response types).
pub fn schema_of<T: schemars::JsonSchema>(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    g.subschema_for::<T>()
}

/// A documented body: its schema and media type.
#[derive(Clone, Copy)]
pub struct BodyDoc {
    pub schema: SchemaFn,
    pub content_type: &'static str,
}

/// One documented route.
pub struct RouteDoc {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    /// Its OpenAPI tag and the scope area an API token needs.
    pub area: ApiArea,
    /// Needs a session or bearer token.
    pub auth: bool,
    /// The request body (a wire type), if any.
    pub body: Option<BodyDoc>,
    /// The query parameters: wire types whose fields are the parameters.
    pub query: Vec<SchemaFn>,
    /// Success status.
    pub ok: u16,
    /// The success response's body (a wire type), if it has one.
    pub response: Option<BodyDoc>,
}

/// Declares a route with its documentation: method, path, scope area, whether it needs a
/// caller, success status, summary, handler, then (each optional, in this order) `body: T`
/// (a JSON request body), `query: [Q, …]` (query parameters), and `resp: R` (a JSON response)
/// or `raw: "media/type"` (a non-JSON response: file content, CSV, JSON Lines).
macro_rules! route {
    ($m:ident, $path:literal, $area:ident, $auth:literal, $ok:literal, $summary:literal, $h:expr
     $(, body: $body:ty)? $(, query: [$($q:ty),*])? $(, resp: $resp:ty)? $(, raw: $raw:literal)? $(,)?) => {
        (
            RouteDoc {
                method: stringify!($m),
                path: $path,
                summary: $summary,
                area: ApiArea::$area,
                auth: $auth,
                body: route!(@json $($body)?),
                query: vec![$($(schema_of::<$q> as SchemaFn),*)?],
                ok: $ok,
                response: route!(@json $($resp)?)$(.or(Some(BodyDoc {
                    schema: schema_of::<wire::Binary>,
                    content_type: $raw,
                })))?,
            },
            $m($h),
        )
    };
    (@json) => {
        None
    };
    (@json $t:ty) => {
        Some(BodyDoc {
            schema: schema_of::<$t>,
            content_type: "application/json",
        })
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

/// A list of wire type `T`, built from rows.
fn items<T: serde::Serialize, R: Into<T>>(rows: impl IntoIterator<Item = R>) -> ApiResult {
    ok(wire::Items::<T>::of(rows))
}

fn login_json(r: &LoginResult) -> wire::Login {
    wire::Login::from(r)
}

#[derive(Deserialize, JsonSchema)]
struct TokenBody {
    name: String,
    /// `area:read` / `area:write`, e.g. `files:read`.
    scopes: Vec<String>,
    /// Days until the token expires (1–365).
    #[serde(default = "default_token_days")]
    expires_in_days: i64,
}

/// Labels, tags and custom attributes given when something is created (DATA-2).
#[derive(Deserialize, Default, JsonSchema)]
#[serde(default)]
struct LabelsBody {
    /// Own classification level; absent: inherit the parent's.
    label: Option<String>,
    tags: Vec<String>,
    /// Custom attributes (any JSON values).
    attributes: serde_json::Map<String, Value>,
}

impl From<LabelsBody> for kura_store::Labels {
    fn from(l: LabelsBody) -> Self {
        kura_store::Labels {
            label: l.label,
            tags: l.tags,
            attributes: l.attributes,
        }
    }
}

fn default_token_days() -> i64 {
    90
}

fn default_purpose() -> String {
    "notices".into()
}

/// List filters.
#[derive(Deserialize, Default, JsonSchema)]
struct ListFilter {
    /// Name contains (case-insensitive).
    q: Option<String>,
    /// Own classification level.
    label: Option<String>,
    /// A tag.
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

#[derive(Deserialize, Default, JsonSchema)]
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

pub mod wire;

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
