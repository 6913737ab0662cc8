//! Users, role grants and custom roles (IAM-1, IAM-2): accounts (`accounts`) and roles with
//! their grants (`grants`).

use crate::auth::AuthContext;
use crate::mail;
use crate::{Actor, Event, RequestCtx, Result, ServiceError, Services};
use kura_domain::authz::{authorize_grant, ActionSet, BuiltinRole, Scope};
use kura_domain::user::{UserKind, UserStatus};
use kura_domain::{
    validate_email, validate_name, Action, Decision, GrantId, Resource, RoleId, TenantId, UserId,
};
use kura_store::roles::{self, CustomRole, GrantRow, NewGrant, RoleRef};
use kura_store::tenants::Tenant;
use kura_store::users::{self, User};
use kura_store::{sessions, StoreError, Tx};

mod accounts;
mod grants;
pub use accounts::*;
