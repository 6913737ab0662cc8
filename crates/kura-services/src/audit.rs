//! Reading and verifying the audit log, and the access log (LOG-1, LOG-2, LOG-5).

use crate::auth::AuthContext;
use crate::{Actor, Event, RequestCtx, Result, ServiceError, Services};
use kura_crypto::ChainError;
use kura_domain::{Action, Resource, TenantId};
use kura_store::access_log::AccessEntry;
use kura_store::audit::{StoredEvent, VerifyReport};
use kura_store::SYSTEM_TENANT;

impl Services {
    /// Tenant admin: the newest audit events (before `before`, for paging).
    pub async fn list_audit(
        &self,
        auth: &AuthContext,
        before: Option<i64>,
        limit: i64,
        ctx: &RequestCtx,
    ) -> Result<Vec<StoredEvent>> {
        let t = &auth.tenant.id;
        self.require(
            &auth.principal,
            Action::AuditRead,
            &Resource::Tenant(t.clone()),
            ctx,
        )
        .await?;
        let mut tx = self.store.tenant_read(t).await?;
        Ok(kura_store::audit::list(&mut tx, t, before, limit).await?)
    }

    /// Tenant admin: verifies their own chain.
    pub async fn verify_own_audit(
        &self,
        auth: &AuthContext,
        ctx: &RequestCtx,
    ) -> Result<std::result::Result<VerifyReport, ChainError>> {
        let t = &auth.tenant.id;
        self.require(
            &auth.principal,
            Action::AuditRead,
            &Resource::Tenant(t.clone()),
            ctx,
        )
        .await?;
        let mut tx = self.store.tenant_read(t).await?;
        let r = kura_store::audit::verify(&mut tx, t).await?;
        drop(tx);
        self.check_base(t, r).await
    }

    /// A chain that verifies from a purge base verifies only if that base is a genuine
    /// signed purge checkpoint (else whoever deleted the head of the chain also moved it).
    async fn check_base(
        &self,
        t: &TenantId,
        r: std::result::Result<VerifyReport, ChainError>,
    ) -> Result<std::result::Result<VerifyReport, ChainError>> {
        match r {
            Ok(rep) if !self.base_is_genuine(t).await? => {
                Ok(Err(ChainError::Base { seq: rep.base_seq }))
            }
            other => Ok(other),
        }
    }

    /// Tenant admin: the newest access-log entries.
    pub async fn list_access(
        &self,
        auth: &AuthContext,
        limit: i64,
        ctx: &RequestCtx,
    ) -> Result<Vec<AccessEntry>> {
        let t = &auth.tenant.id;
        self.require(
            &auth.principal,
            Action::AuditRead,
            &Resource::Tenant(t.clone()),
            ctx,
        )
        .await?;
        let mut tx = self.store.tenant_read(t).await?;
        Ok(kura_store::access_log::list(&mut tx, t, limit).await?)
    }

    /// Operator: verifies one tenant's chain (by slug, or `_system`), or every chain.
    /// The verification is itself recorded in the system chain.
    pub async fn operator_verify_audit(
        &self,
        slug: Option<&str>,
        ctx: &RequestCtx,
    ) -> Result<Vec<(String, std::result::Result<VerifyReport, ChainError>)>> {
        let targets: Vec<(String, TenantId)> = match slug {
            Some(SYSTEM_TENANT) => {
                vec![(SYSTEM_TENANT.into(), TenantId::from_string(SYSTEM_TENANT))]
            }
            Some(s) => {
                let t = self.operator_find_tenant(s).await?;
                vec![(t.slug, t.id)]
            }
            None => {
                let mut tx = self.store.system_read().await?;
                let all = kura_store::tenants::list_all(&mut tx).await?;
                let mut v: Vec<(String, TenantId)> =
                    all.into_iter().map(|t| (t.slug, t.id)).collect();
                v.push((SYSTEM_TENANT.into(), TenantId::from_string(SYSTEM_TENANT)));
                v
            }
        };
        let mut out = Vec::new();
        for (label, id) in targets {
            let mut tx = self.store.system_read().await?;
            let r = kura_store::audit::verify(&mut tx, &id).await?;
            drop(tx);
            out.push((label, self.check_base(&id, r).await?));
        }
        let failed: Vec<&str> = out
            .iter()
            .filter(|(_, r)| r.is_err())
            .map(|(l, _)| l.as_str())
            .collect();
        self.audit_alone(
            &TenantId::from_string(SYSTEM_TENANT),
            &Actor::Operator,
            ctx,
            Event::new("operator.audit.verify")
                .result(if failed.is_empty() {
                    "success"
                } else {
                    "failure"
                })
                .details(serde_json::json!({ "chains": out.len(), "failed": failed })),
        )
        .await
        .map_err(|e| ServiceError::internal(e.to_string()))?;
        Ok(out)
    }
}
