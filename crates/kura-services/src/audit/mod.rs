//! Reading and verifying the audit log, and the access log (LOG-1, LOG-2, LOG-5): `read`
//! (who may, listing, querying), `verify` (the chain against every anchor), `export`.

use crate::auth::AuthContext;
use crate::{Actor, Event, RequestCtx, Result, ServiceError, Services};
use kura_crypto::ChainError;
use kura_domain::{Action, FolderId, ProjectId, Resource, TenantId};
use kura_store::access_log::AccessEntry;
use kura_store::audit::{Checkpoint, StoredEvent, VerifyReport};
use kura_store::SYSTEM_TENANT;
use std::collections::HashMap;

mod export;
mod read;
mod verify;
pub use export::*;
pub(crate) use read::*;
