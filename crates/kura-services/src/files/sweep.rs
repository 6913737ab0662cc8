//! Removing orphaned blobs and abandoned temp files.

use super::*;

/// What `kura blobs sweep` removed.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SweepReport {
    pub orphans_removed: usize,
    pub temp_files_removed: usize,
    pub kept: usize,
}

impl Services {
    /// Operator: removes blobs no file version references and abandoned temp files, older
    /// than `min_age_secs` (so uploads in flight are never touched). Audited.
    pub async fn operator_sweep_blobs(
        &self,
        min_age_secs: i64,
        ctx: &RequestCtx,
    ) -> Result<SweepReport> {
        let io = |e: std::io::Error| ServiceError::internal(format!("blob sweep: {e}"));
        let cutoff = self.now().0 - min_age_secs * 1000;
        let listed = self.blobs.list_all().await.map_err(io)?;
        let mut report = SweepReport::default();
        let mut referenced: HashMap<String, std::collections::HashSet<String>> = HashMap::new();
        for item in listed {
            if item.modified > cutoff {
                report.kept += 1;
                continue;
            }
            if item.is_temp() {
                self.blobs.remove_listed(&item).await.map_err(io)?;
                report.temp_files_removed += 1;
                continue;
            }
            if !referenced.contains_key(&item.tenant) {
                let mut tx = self.store.system_read().await?;
                let ids =
                    files::referenced_blobs(&mut tx, &TenantId::from_string(&item.tenant)).await?;
                referenced.insert(item.tenant.clone(), ids.into_iter().collect());
            }
            if referenced
                .get(&item.tenant)
                .is_some_and(|r| r.contains(&item.name))
            {
                report.kept += 1;
            } else {
                self.blobs.remove_listed(&item).await.map_err(io)?;
                report.orphans_removed += 1;
            }
        }
        self.audit_alone(
            &TenantId::from_string(kura_store::SYSTEM_TENANT),
            &Actor::Operator,
            ctx,
            Event::new("operator.blobs.sweep")
                .details(serde_json::to_value(&report).unwrap_or_default()),
        )
        .await?;
        Ok(report)
    }
}
