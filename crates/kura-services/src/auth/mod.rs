//! Authentication (IAM-3, IAM-8): password log-in with its throttle (`login`), server-side
//! sessions (`session`), one-time links for invitations and password resets (`links`), and
//! API tokens with typed scopes (`tokens`).

use crate::{Actor, Event, RequestCtx, Result, ServiceError, Services};
use kura_domain::tenant::TenantStatus;
use kura_domain::user::UserStatus;
use kura_domain::{Principal, TenantId, Timestamp};
use kura_store::sessions::Session;
use kura_store::tenants::Tenant;
use kura_store::users::User;
use kura_store::{invitations, sessions, tenants, users, SYSTEM_TENANT};

/// The built-in role names among grants (any scope), each once.
pub(crate) fn builtin_role_names(grants: &[kura_store::roles::GrantRow]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = grants
        .iter()
        .filter_map(|g| match &g.role {
            kura_store::roles::RoleRef::Builtin { role } => Some(role.as_str()),
            _ => None,
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

mod links;
mod login;
mod session;
mod tokens;

pub(crate) use links::{IssuedLink, LinkPurpose};
pub use login::*;
pub use session::*;
pub use tokens::*;
