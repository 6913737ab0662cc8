//! Retention purges of the audit and access logs (LOG-4), after a signed purge checkpoint.

use super::*;

impl Services {
    /// Applies every tenant's retention (LOG-4): audit entries older than
    /// `audit_retention_days` go after a signed `purge` checkpoint of the last one removed
    /// (the rest of the chain still verifies from it); access-log rows older than
    /// `access_log_retention_days` go. Audited per tenant when something was removed.
    pub async fn purge_logs(&self) -> Result<(i64, i64)> {
        let mut tx = self.store.system_read().await?;
        let all = tenants::list_all(&mut tx).await?;
        drop(tx);
        let now = self.now();
        let (mut audit_total, mut access_total) = (0, 0);
        // A terminated tenant's data (logs included) goes whole at its deletion; nothing
        // more is written for it.
        for t in all
            .into_iter()
            .filter(|t| t.status != TenantStatus::Terminated)
        {
            let audit_cutoff = now.0 - t.settings.audit_retention_days * 86_400_000;
            let access_cutoff = now.0 - t.settings.access_log_retention_days * 86_400_000;
            let mut tx = self.store.tenant_tx(&t.id).await?;
            let removed = audit::purge_before(&mut tx, &t.id, audit_cutoff, |tenant, seq, hash| {
                self.sign_checkpoint(tenant, seq, hash, "purge")
            })
            .await?;
            let access =
                kura_store::access_log::purge_before(&mut tx, &t.id, access_cutoff).await?;
            if removed > 0 || access > 0 {
                self.audit(
                    &mut tx,
                    &t.id,
                    &Actor::System("logs.purge"),
                    &RequestCtx::default(),
                    Event::new("log.purge").details(serde_json::json!({
                        "audit_entries": removed,
                        "access_entries": access,
                        "audit_before": Timestamp(audit_cutoff).to_rfc3339(),
                        "access_before": Timestamp(access_cutoff).to_rfc3339(),
                    })),
                )
                .await?;
            }
            tx.commit().await?;
            audit_total += removed;
            access_total += access;
        }
        // Mail bodies whose links and codes have expired are emptied (LOG-4 is about logs;
        // this is about not keeping secrets longer than they work).
        let mut tx = self.store.system_tx().await?;
        kura_store::outbox::purge_bodies(&mut tx, now).await?;
        tx.commit().await?;
        Ok((audit_total, access_total))
    }
}
