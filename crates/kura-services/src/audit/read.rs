//! Reading the logs: who may (one permission, label-capped), listing and querying the audit and
//! access logs, redaction.

use super::*;

/// The highest label rank a reader of the audit log may see names at: `None` when one of
/// their tenant-wide grants with `audit.read` is uncapped (they see everything), else the
/// highest cap among those grants.
pub(crate) fn audit_cap(auth: &AuthContext) -> Option<u8> {
    let grants: Vec<&kura_domain::authz::Grant> = auth
        .principal
        .grants
        .iter()
        .filter(|g| {
            g.scope == kura_domain::authz::Scope::Tenant && g.actions.contains(Action::AuditRead)
        })
        .collect();
    if grants.iter().any(|g| g.max_level.is_none()) {
        return None;
    }
    grants.iter().filter_map(|g| g.max_level).max()
}

/// An entry about something above the reader's cap, as they are shown it: what happened,
/// when and by whom — not what it was done to.
pub(crate) fn redact(e: &mut StoredEvent) {
    e.record.target_id = None;
    e.record.details = serde_json::json!({ "redacted": "above your label cap" });
}

impl Services {
    /// The gate of every audit- and access-log read: `audit.read` on the caller's tenant.
    pub(crate) async fn require_audit_read(
        &self,
        auth: &AuthContext,
        ctx: &RequestCtx,
    ) -> Result<()> {
        self.require(
            &auth.principal,
            Action::AuditRead,
            &Resource::Tenant(auth.tenant.id.clone()),
            ctx,
        )
        .await
    }

    /// Tenant admin: the newest audit events (before `before`, for paging).
    pub async fn list_audit(
        &self,
        auth: &AuthContext,
        before: Option<i64>,
        limit: i64,
        ctx: &RequestCtx,
    ) -> Result<Vec<StoredEvent>> {
        let all = kura_store::audit::Filter::default();
        self.query_audit(auth, &all, before, limit, ctx).await
    }

    /// Tenant admin: the newest access-log entries.
    pub async fn list_access(
        &self,
        auth: &AuthContext,
        limit: i64,
        ctx: &RequestCtx,
    ) -> Result<Vec<AccessEntry>> {
        let all = kura_store::access_log::Filter::default();
        self.query_access(auth, &all, None, limit, ctx).await
    }

    /// Tenant admin: access-log entries matching a filter, newest first, keyset-paged.
    pub async fn query_access(
        &self,
        auth: &AuthContext,
        filter: &kura_store::access_log::Filter,
        before: Option<i64>,
        limit: i64,
        ctx: &RequestCtx,
    ) -> Result<Vec<AccessEntry>> {
        let t = &auth.tenant.id;
        self.require_audit_read(auth, ctx).await?;
        let mut tx = self.store.tenant_read(t).await?;
        Ok(kura_store::access_log::query(
            &mut tx,
            t,
            filter,
            kura_store::access_log::Cursor::Before(before),
            limit,
        )
        .await?)
    }

    /// Tenant admin: audit events matching a filter, newest first, keyset-paged on seq.
    pub async fn query_audit(
        &self,
        auth: &AuthContext,
        filter: &kura_store::audit::Filter,
        before: Option<i64>,
        limit: i64,
        ctx: &RequestCtx,
    ) -> Result<Vec<StoredEvent>> {
        let t = &auth.tenant.id;
        self.require_audit_read(auth, ctx).await?;
        let mut tx = self.store.tenant_read(t).await?;
        let mut events = kura_store::audit::query(
            &mut tx,
            t,
            filter,
            kura_store::audit::Cursor::Before(before),
            limit,
        )
        .await?;
        drop(tx);
        if let Some(cap) = audit_cap(auth) {
            let mut seen = HashMap::new();
            for e in &mut events {
                if !self
                    .within_cap(t, &auth.tenant.settings, cap, e, &mut seen)
                    .await?
                {
                    redact(e);
                }
            }
        }
        Ok(events)
    }

    /// Whether an event's target (a file, project or folder) is at or below `cap` — what a
    /// reader whose audit access is capped may see named. A target that no longer exists
    /// cannot be placed and counts as above (fail closed). `seen` caches per target.
    pub(crate) async fn within_cap(
        &self,
        t: &TenantId,
        settings: &kura_domain::tenant::TenantSettings,
        cap: u8,
        e: &StoredEvent,
        seen: &mut HashMap<(String, String), bool>,
    ) -> Result<bool> {
        let (Some(kind), Some(id)) = (&e.record.target_kind, &e.record.target_id) else {
            return Ok(true);
        };
        if !matches!(kind.as_str(), "file" | "project" | "folder") {
            return Ok(true);
        }
        let key = (kind.clone(), id.clone());
        if let Some(v) = seen.get(&key) {
            return Ok(*v);
        }
        let mut tx = self.store.tenant_read(t).await?;
        let level = match kind.as_str() {
            "file" => match kura_store::files::get(&mut tx, t, id).await {
                Ok(f) => self
                    .project_as_resource(
                        &mut tx,
                        settings,
                        t,
                        &f.project_id,
                        Some(f.labels.label.as_deref()),
                    )
                    .await
                    .ok()
                    .map(|(_, r)| r.level()),
                Err(_) => None,
            },
            "project" => self
                .project_as_resource(&mut tx, settings, t, &ProjectId::from_string(id), None)
                .await
                .ok()
                .map(|(_, r)| r.level()),
            _ => self
                .folder_as_resource(&mut tx, settings, t, &FolderId::from_string(id))
                .await
                .ok()
                .map(|(_, r)| r.level()),
        };
        drop(tx);
        let ok = level.is_some_and(|l| l <= cap);
        seen.insert(key, ok);
        Ok(ok)
    }
}
