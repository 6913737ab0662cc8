//! The audit log and the access log.

use super::*;

/// One audit event as stored, with its hash (LOG-2).
#[derive(Serialize, JsonSchema)]
pub struct AuditEvent {
    /// The tenant whose chain this is.
    pub tenant_id: String,
    /// Position in the chain, from 1.
    pub seq: i64,
    /// Milliseconds since the epoch, UTC.
    pub at: i64,
    /// `user`, `operator` or `system`.
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    /// `success`, `failure` or `denied`.
    pub result: String,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    pub details: Value,
    pub prev_hash: String,
    pub hash: String,
}

impl From<kura_store::audit::StoredEvent> for AuditEvent {
    fn from(e: kura_store::audit::StoredEvent) -> Self {
        let r = e.record;
        AuditEvent {
            tenant_id: r.tenant_id,
            seq: r.seq,
            at: r.at,
            actor_kind: r.actor_kind,
            actor_id: r.actor_id,
            action: r.action,
            target_kind: r.target_kind,
            target_id: r.target_id,
            result: r.result,
            ip: r.ip,
            request_id: r.request_id,
            details: r.details,
            prev_hash: r.prev_hash,
            hash: e.hash,
        }
    }
}

/// What a verified chain covers.
#[derive(Serialize, JsonSchema)]
pub struct VerifyReport {
    pub tenant_id: String,
    pub events: i64,
    /// The chain is verified from here (0 unless older entries were purged).
    pub base_seq: i64,
    pub head_seq: i64,
    pub head_hash: String,
}

/// The outcome of verifying the caller's audit chain: `report` when it verifies, `error`
/// naming the first problem when it does not.
#[derive(Serialize, JsonSchema)]
pub struct Verification {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<VerifyReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl<E: std::fmt::Display> From<Result<kura_store::audit::VerifyReport, E>> for Verification {
    fn from(r: Result<kura_store::audit::VerifyReport, E>) -> Self {
        match r {
            Ok(v) => Verification {
                ok: true,
                report: Some(VerifyReport {
                    tenant_id: v.tenant_id,
                    events: v.events,
                    base_seq: v.base_seq,
                    head_seq: v.head_seq,
                    head_hash: v.head_hash,
                }),
                error: None,
            },
            Err(e) => Verification {
                ok: false,
                report: None,
                error: Some(e.to_string()),
            },
        }
    }
}

/// A signed statement that a tenant's chain had `hash` at `seq` (LOG-5).
#[derive(Serialize, JsonSchema)]
pub struct Checkpoint {
    pub tenant_id: String,
    pub seq: i64,
    pub hash: String,
    /// Milliseconds since the epoch.
    pub at: i64,
    /// `interval` or `purge`.
    pub kind: String,
    pub key_id: String,
    pub signature: String,
}

impl From<kura_store::audit::Checkpoint> for Checkpoint {
    fn from(c: kura_store::audit::Checkpoint) -> Self {
        Checkpoint {
            tenant_id: c.tenant_id,
            seq: c.seq,
            hash: c.hash,
            at: c.at,
            kind: c.kind,
            key_id: c.key_id,
            signature: c.signature,
        }
    }
}

/// The newest signed checkpoint of the caller's chain, if there is one yet.
#[derive(Serialize, JsonSchema)]
pub struct NewestCheckpoint {
    pub checkpoint: Option<Checkpoint>,
}

/// One HTTP request (LOG-1).
#[derive(Serialize, JsonSchema)]
pub struct AccessEntry {
    /// Row id (for paging with `before=`).
    pub id: i64,
    pub tenant_id: Option<TenantId>,
    pub user_id: Option<UserId>,
    pub at: Timestamp,
    pub ip: Option<String>,
    pub method: String,
    pub path: String,
    pub status: i64,
    pub latency_us: i64,
    pub bytes: i64,
    pub request_id: Option<String>,
}

impl From<kura_store::access_log::AccessEntry> for AccessEntry {
    fn from(e: kura_store::access_log::AccessEntry) -> Self {
        AccessEntry {
            id: e.id,
            tenant_id: e.tenant_id,
            user_id: e.user_id,
            at: e.at,
            ip: e.ip,
            method: e.method,
            path: e.path,
            status: e.status,
            latency_us: e.latency_us,
            bytes: e.bytes,
            request_id: e.request_id,
        }
    }
}
