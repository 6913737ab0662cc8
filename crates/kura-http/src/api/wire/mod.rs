//! Wire types: what the API sends. Each is built here from a store row or a service result
//! (`From`), so what leaves the server is decided in kura-http — a field a row gains stays
//! inside until a wire type names it. Each derives `JsonSchema`; the OpenAPI document's
//! response schemas are generated from them, and the suite checks real responses against
//! those schemas.

use kura_domain::authz::{Action, BuiltinRole, Scope};
use kura_domain::tenant::{TenantSettings, TenantStatus};
use kura_domain::user::{UserKind, UserStatus};
use kura_domain::{ContactId, FolderId, GrantId, ProjectId, RoleId, TenantId, Timestamp, UserId};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

/// File content or an export: bytes of the media type the route names.
pub struct Binary;

impl JsonSchema for Binary {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Binary".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "format": "binary" })
    }
}

/// A list.
#[derive(Serialize, JsonSchema)]
pub struct Items<T> {
    pub items: Vec<T>,
}

impl<T> Items<T> {
    pub fn of<R: Into<T>>(rows: impl IntoIterator<Item = R>) -> Self {
        Items {
            items: rows.into_iter().map(Into::into).collect(),
        }
    }
}

/// A page of a keyset-paged list: `next` is the cursor for the following page (`after=`),
/// absent at the end.
#[derive(Serialize, JsonSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// A page of a log: `next_before` is the `before=` of the following page.
#[derive(Serialize, JsonSchema)]
pub struct LogPage<T> {
    pub items: Vec<T>,
    pub next_before: Option<i64>,
}

/// A short answer for a request that was accepted.
#[derive(Serialize, JsonSchema)]
pub struct Status {
    pub status: String,
}

/// Labels, tags and custom attributes of a folder, project or file (DATA-2).
#[derive(Serialize, JsonSchema)]
pub struct Labels {
    /// Own classification level; null inherits from the parent.
    pub label: Option<String>,
    pub tags: Vec<String>,
    pub attributes: Map<String, Value>,
}

impl From<kura_store::Labels> for Labels {
    fn from(l: kura_store::Labels) -> Self {
        Labels {
            label: l.label,
            tags: l.tags,
            attributes: l.attributes,
        }
    }
}

mod identity;
mod logs;
mod ops;
mod tenant;
mod usage;
mod workspace;
pub use identity::*;
pub use logs::*;
pub use ops::*;
pub use tenant::*;
pub use usage::*;
pub use workspace::*;
