//! Verifying the audit chain against every anchor it has: the stored hashes, the signed
//! checkpoints and the published head.

use super::*;

impl Services {
    /// Tenant admin: verifies their own chain.
    pub async fn verify_own_audit(
        &self,
        auth: &AuthContext,
        ctx: &RequestCtx,
    ) -> Result<std::result::Result<VerifyReport, ChainError>> {
        let t = &auth.tenant.id;
        self.require_audit_read(auth, ctx).await?;
        let mut tx = self.store.tenant_read(t).await?;
        self.verify_chain(&mut tx, t, None).await
    }

    /// Tenant admin: verifies their chain against a checkpoint they kept outside Kura (from
    /// the daily mail, the console or an earlier export) besides the stored ones — which
    /// catches a chain cut back together with its stored checkpoints.
    pub async fn verify_own_audit_with(
        &self,
        auth: &AuthContext,
        published: &Checkpoint,
        ctx: &RequestCtx,
    ) -> Result<std::result::Result<VerifyReport, ChainError>> {
        let t = &auth.tenant.id;
        self.require_audit_read(auth, ctx).await?;
        let mut tx = self.store.tenant_read(t).await?;
        self.verify_chain(&mut tx, t, Some(published)).await
    }

    /// Tenant admin: the newest signed checkpoint of their chain (to keep outside Kura).
    pub async fn newest_checkpoint(
        &self,
        auth: &AuthContext,
        ctx: &RequestCtx,
    ) -> Result<Option<Checkpoint>> {
        let t = &auth.tenant.id;
        self.require_audit_read(auth, ctx).await?;
        let mut tx = self.store.tenant_read(t).await?;
        Ok(kura_store::audit::latest_checkpoint(&mut tx, t, None).await?)
    }

    /// **The** verification of a chain (API, console, CLI, backups, exports): every hash
    /// and link from the stored base (itself a genuine signed purge checkpoint) to the head;
    /// every stored checkpoint — and `published`, one kept outside Kura — carries this
    /// deployment's signature, the entry at its seq has its hash, and the chain reaches it.
    /// A forger with write access to the database can recompute hashes and move the head,
    /// but not sign: what they rewrote before the newest checkpoint contradicts it.
    pub async fn verify_chain(
        &self,
        tx: &mut kura_store::Tx,
        t: &TenantId,
        published: Option<&Checkpoint>,
    ) -> Result<std::result::Result<VerifyReport, ChainError>> {
        let mut cps = kura_store::audit::checkpoints_between(tx, t, 0, i64::MAX).await?;
        cps.extend(published.cloned());
        for c in &cps {
            if c.tenant_id != t.as_str() || !self.checkpoint_is_genuine(c) {
                return Ok(Err(ChainError::CheckpointSignature { seq: c.seq }));
            }
        }
        let anchors: Vec<(i64, String)> = cps.iter().map(|c| (c.seq, c.hash.clone())).collect();
        let r = kura_store::audit::verify(tx, t, &anchors).await?;
        self.check_base(t, r).await
    }

    /// A chain that verifies from a purge base verifies only if that base is a genuine
    /// signed purge checkpoint (else whoever deleted the head of the chain also moved it).
    pub(crate) async fn check_base(
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

    /// Operator: verifies one tenant's chain (by slug, or `_system`), or every chain.
    /// The verification is itself recorded in the system chain.
    /// `published`: a checkpoint kept outside Kura, checked besides the stored ones (with
    /// one tenant).
    pub async fn operator_verify_audit(
        &self,
        slug: Option<&str>,
        published: Option<&Checkpoint>,
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
            let r = self.verify_chain(&mut tx, &id, published).await?;
            drop(tx);
            out.push((label, r));
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
