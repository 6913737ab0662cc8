//! Keeping generations: listing, pruning to `backup_keep`, shredding a terminated tenant's
//! copies, the schedule and the summary shown to customers.

use super::*;

/// What a tenant admin sees of backups: the newest verified generation that holds the
/// tenant, where backups are kept, how many generations.
#[derive(Debug, Clone)]
pub struct BackupSummary {
    pub last_verified_generation: Option<String>,
    pub last_verified_at: Option<Timestamp>,
    pub region: String,
    pub generations_kept: usize,
}

impl Services {
    /// Crypto-shredding in the backups: removes `tenant`'s wrapped keys from the vault copy
    /// of every generation and records it in the (re-signed) manifest. Returns the
    /// generations changed.
    pub(crate) async fn shred_backups(&self, tenant: &TenantId) -> Result<Vec<String>> {
        let Some(store) = self.backups.clone() else {
            return Ok(Vec::new());
        };
        let mut changed = Vec::new();
        for g in self.list_backups().await? {
            if g.status == "expired" {
                continue;
            }
            let Ok(mut m) = self.read_manifest(&g.id).await? else {
                continue;
            };
            let dir = gen_dir(&g.id);
            let Ok(raw) = store.read_all(&dir, "vault").await else {
                continue;
            };
            let vault: Vec<serde_json::Map<String, serde_json::Value>> =
                serde_json::from_slice(&raw).map_err(|e| ServiceError::internal(e.to_string()))?;
            let kept: Vec<_> = vault
                .into_iter()
                .filter(|k| k.get("tenant_id").and_then(|v| v.as_str()) != Some(tenant.as_str()))
                .collect();
            let bytes =
                serde_json::to_vec(&kept).map_err(|e| ServiceError::internal(e.to_string()))?;
            store.write_all(&dir, "vault", &bytes).await.map_err(io)?;
            m.vault_sha256 = sha_hex(&bytes);
            if m.tenants.iter().any(|t| t.tenant_id == tenant.as_str())
                && !m.shredded.iter().any(|s| s == tenant.as_str())
            {
                m.shredded.push(tenant.as_str().to_string());
            }
            self.write_manifest(&store, &m).await?;
            changed.push(g.id.clone());
        }
        Ok(changed)
    }

    /// Generations, newest first.
    pub async fn list_backups(&self) -> Result<Vec<Generation>> {
        let mut tx = self.store.system_read().await?;
        Ok(backup::list(&mut tx).await?)
    }

    /// Keeps the newest `backup_keep` verified generations; removes the others' objects
    /// (failed or unverified ones included) and the blob copies no kept generation
    /// references.
    pub(crate) async fn prune_backups(
        &self,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<()> {
        let store = self.backup_store()?.clone();
        let all = self.list_backups().await?;
        let keep = self.config.backup_keep.max(1);
        // Only generations that verified count as backups; one that failed verification is
        // not kept in their place.
        let good: Vec<&Generation> = all
            .iter()
            .filter(|g| g.status == "ok" && g.verify_status.as_deref() == Some("ok"))
            .collect();
        let kept: Vec<&Generation> = good.iter().take(keep).copied().collect();
        let mut referenced = BTreeSet::new();
        for g in &kept {
            if let Ok(m) = self.read_manifest(&g.id).await? {
                for t in m.tenants {
                    for b in t.blobs.keys() {
                        referenced.insert((t.tenant_id.clone(), b.clone()));
                    }
                }
            }
        }
        let kept_ids: BTreeSet<&str> = kept.iter().map(|g| g.id.as_str()).collect();
        for g in all.iter().filter(|g| {
            !kept_ids.contains(g.id.as_str()) && g.status != "expired" && g.status != "running"
        }) {
            let dir = format!("gen-{}", g.id);
            for item in store.list_all().await.map_err(io)? {
                if item.tenant == dir {
                    store.remove_listed(&item).await.map_err(io)?;
                }
            }
            let mut tx = self.store.system_tx().await?;
            backup::mark_expired(&mut tx, &g.id, self.now()).await?;
            tx.commit().await?;
            progress(format!("generation {} expired", g.id));
        }
        let mut removed = 0;
        for item in store.list_all().await.map_err(io)? {
            if item.tenant.starts_with("gen-") || item.is_temp() {
                continue;
            }
            if !referenced.contains(&(item.tenant.clone(), item.name.clone())) {
                store.remove_listed(&item).await.map_err(io)?;
                removed += 1;
            }
        }
        if removed > 0 {
            progress(format!(
                "{removed} blob copies no longer referenced were removed"
            ));
        }
        Ok(())
    }

    /// Seconds since the newest generation that was written and verified (metrics).
    pub async fn last_backup_age_secs(&self) -> Result<Option<i64>> {
        let all = self.list_backups().await?;
        Ok(all
            .iter()
            .filter(|g| g.status == "ok" && g.verify_status.as_deref() == Some("ok"))
            .filter_map(|g| g.finished_at)
            .max()
            .map(|t| (self.now().0 - t.0) / 1000))
    }

    /// The next time of day `backup_time` in `backup_time_zone` after now (first due time
    /// of the daily backup job).
    pub fn next_backup_time(&self) -> Timestamp {
        let zone = &self.config.backup_time_zone;
        let now = self.now();
        let today = now.day_in_zone(zone);
        let at = Timestamp::parse_in_zone(&format!("{today}T{}", self.config.backup_time), zone)
            .unwrap_or(now);
        if at > now {
            at
        } else {
            Timestamp(at.0 + 86_400_000)
        }
    }

    pub async fn backup_summary(
        &self,
        auth: &crate::auth::AuthContext,
        ctx: &crate::RequestCtx,
    ) -> Result<BackupSummary> {
        self.require(
            &auth.principal,
            kura_domain::Action::AuditRead,
            &kura_domain::Resource::Tenant(auth.tenant.id.clone()),
            ctx,
        )
        .await?;
        let mut last = None;
        if self.backups.is_some() {
            for g in self.list_backups().await? {
                if g.status != "ok" || g.verify_status.as_deref() != Some("ok") {
                    continue;
                }
                if let Ok(m) = self.read_manifest(&g.id).await? {
                    if m.tenants
                        .iter()
                        .any(|t| t.tenant_id == auth.tenant.id.as_str())
                    {
                        last = Some((g.id.clone(), g.verified_at));
                        break;
                    }
                }
            }
        }
        Ok(BackupSummary {
            last_verified_generation: last.as_ref().map(|l| l.0.clone()),
            last_verified_at: last.and_then(|l| l.1),
            region: self.config.backup_region.clone(),
            generations_kept: self.config.backup_keep,
        })
    }
}
