//! Restoring a generation (all tenants or one), checking every copied object against the signed
//! manifest.

use super::*;

/// What a restore did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RestoreReport {
    pub generation: String,
    pub tenants: Vec<String>,
    pub rows: i64,
    /// Blobs copied back because they were missing.
    pub blobs_restored: i64,
    /// Live blobs replaced because they differed from the backup (damaged in place).
    pub blobs_repaired: i64,
    /// Blobs of uploads the restore rolled back, removed.
    pub blobs_orphaned: i64,
}

/// At most this many ids per table are named in a restore's audit entry (all are counted).
pub(crate) const RESTORE_IDS_LISTED: usize = 200;

/// `a - b`, counted, with up to [`RESTORE_IDS_LISTED`] ids named.
pub(crate) fn id_diff(
    a: &BTreeMap<String, BTreeSet<String>>,
    b: &BTreeMap<String, BTreeSet<String>>,
) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for (table, ids) in a {
        let gone: Vec<&String> = match b.get(table) {
            Some(other) => ids.difference(other).collect(),
            None => ids.iter().collect(),
        };
        if !gone.is_empty() {
            out.insert(
                table.clone(),
                serde_json::json!({
                    "count": gone.len(),
                    "ids": gone.iter().take(RESTORE_IDS_LISTED).collect::<Vec<_>>(),
                }),
            );
        }
    }
    serde_json::Value::Object(out)
}

impl Services {
    /// Restores a generation (the newest verified one when `generation` is `None`): every
    /// tenant in it, or only `tenant` (slug) — the others are not touched.
    ///
    /// Per tenant: every blob the snapshot references is checked against the signed
    /// manifest — a live blob that is missing or differs is replaced by the backup copy,
    /// and a backup copy that does not match refuses the restore (nothing of the tenant
    /// changes). Then, in one transaction, the tenant's data rows are replaced by the
    /// snapshot's (checked against its hash before the commit) and its data keys come back
    /// from the generation's vault; its **logs are kept**: the live audit chain, checkpoints,
    /// access log and daily usage stay and the chain gains a `backup.restore` entry naming
    /// the rows rolled back and brought back (the snapshot's logs are taken only where the
    /// live ones are behind them, e.g. into an empty database). API tokens revoked and users
    /// frozen since the backup stay so; every session ends. Blobs of rolled-back uploads
    /// are removed afterwards.
    ///
    /// A generation whose recorded verification failed is restored only with `force`; one
    /// not recorded in this database (a fresh one) is verified first.
    pub async fn restore_backup(
        &self,
        generation: Option<&str>,
        tenant: Option<&str>,
        force: bool,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<RestoreReport> {
        let store = self.backup_store()?.clone();
        let id = match generation {
            Some(g) => g.to_string(),
            None => self
                .list_backups()
                .await?
                .into_iter()
                .find(|g| g.status == "ok" && g.verify_status.as_deref() == Some("ok"))
                .map(|g| g.id)
                .ok_or_else(|| ServiceError::invalid("generation", "no verified backup exists"))?,
        };
        if !force {
            let record = self.list_backups().await?.into_iter().find(|g| g.id == id);
            match record {
                Some(g) if g.verify_status.as_deref() == Some("ok") => {}
                Some(g) => {
                    return Err(ServiceError::invalid(
                        "generation",
                        format!(
                            "{id} did not pass its verification ({}); see `kura backup verify --generation {id}`, or restore it anyway with --force",
                            g.verify_detail.unwrap_or_else(|| "not verified".into())
                        ),
                    ))
                }
                None => {
                    progress(format!("{id} is not recorded here: verifying it first"));
                    if let Err(e) = self.check_generation(&id).await? {
                        return Err(ServiceError::invalid(
                            "generation",
                            format!("{id} does not verify ({e}); restore it anyway with --force"),
                        ));
                    }
                }
            }
        }
        let m = self
            .read_manifest(&id)
            .await?
            .map_err(|e| ServiceError::invalid("generation", e))?;
        let dir = gen_dir(&id);
        let vault_raw = store.read_all(&dir, "vault").await.map_err(io)?;
        if sha_hex(&vault_raw) != m.vault_sha256 {
            return Err(ServiceError::invalid(
                "generation",
                "the vault copy was altered",
            ));
        }
        let vault: Vec<serde_json::Map<String, serde_json::Value>> =
            serde_json::from_slice(&vault_raw)
                .map_err(|e| ServiceError::internal(e.to_string()))?;
        // A full restore leaves out crypto-shredded tenants; naming one is an error.
        let chosen: Vec<&TenantEntry> = m
            .tenants
            .iter()
            .filter(|t| tenant.is_none_or(|s| s == t.slug))
            .filter(|t| tenant.is_some() || !m.shredded.contains(&t.tenant_id))
            .collect();
        if chosen.is_empty() {
            return Err(ServiceError::invalid("tenant", "is not in this generation"));
        }
        if let Some(t) = chosen.iter().find(|t| m.shredded.contains(&t.tenant_id)) {
            return Err(ServiceError::invalid(
                "tenant",
                format!(
                    "{} was crypto-shredded: its backup copies cannot be read",
                    t.slug
                ),
            ));
        }
        let mut report = RestoreReport {
            generation: id.clone(),
            tenants: Vec::new(),
            rows: 0,
            blobs_restored: 0,
            blobs_repaired: 0,
            blobs_orphaned: 0,
        };
        // A terminated tenant is not brought back by a restore (that would lift its lock):
        // named, it is refused; in a full restore it is left as it is.
        let terminated: BTreeSet<String> = self
            .list_lifecycles()
            .await?
            .into_iter()
            .map(|l| l.tenant_id.as_str().to_string())
            .collect();
        if let (Some(slug), Some(t)) = (tenant, chosen.first()) {
            if terminated.contains(&t.tenant_id) {
                return Err(ServiceError::Conflict(format!(
                    "{slug} is terminated: reactivate it first (kura tenant reactivate) if it should come back"
                )));
            }
        }
        for t in chosen {
            if terminated.contains(&t.tenant_id) {
                progress(format!("{}: terminated here; left as it is", t.slug));
                continue;
            }
            let tid = TenantId::from_string(t.tenant_id.clone());
            let keys: Vec<&serde_json::Map<String, serde_json::Value>> = vault
                .iter()
                .filter(|k| {
                    k.get("tenant_id").and_then(|v| v.as_str()) == Some(t.tenant_id.as_str())
                })
                .collect();
            let key = self
                .vault_key(&vault, t)
                .map_err(|e| ServiceError::invalid("generation", e))?;
            let mut snap = SnapshotReader::open(&store, &id, t, key)
                .await
                .map_err(|e| ServiceError::invalid("generation", e))?;
            // Blobs first (rows only ever point at blobs that are there), each checked
            // against the signed manifest as it is copied.
            let (mut restored, mut repaired) = (0, 0);
            for (b, want) in &t.blobs {
                let live = object_sha(&self.blobs, &tid, b).await.ok();
                if live.as_deref() == Some(want.as_str()) {
                    continue;
                }
                match copy_object(&store, &self.blobs, &tid, b, Some(want)).await {
                    Ok(_) if live.is_some() => repaired += 1,
                    Ok(_) => restored += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                        let mut tx = self.store.tenant_read(&tid).await?;
                        let file = kura_store::files::name_of_blob(&mut tx, &tid, b).await?;
                        drop(tx);
                        return Err(ServiceError::invalid(
                            "generation",
                            format!(
                                "{}: the backup copy of {} does not match the signed manifest ({e}); the tenant was not restored",
                                t.slug,
                                match file {
                                    Some((name, v)) => format!("file {name:?} version {v} (blob {b})"),
                                    None => format!("blob {b}"),
                                }
                            ),
                        ));
                    }
                    Err(e) => return Err(io(e)),
                }
            }
            report.blobs_restored += restored;
            report.blobs_repaired += repaired;

            let mut tx = self.store.system_tx().await?;
            let live_head = kura_store::audit::head(&mut tx, &tid).await?;
            let live_ids = backup::row_ids(&mut tx, &tid).await?;
            let live_blobs: BTreeSet<String> = backup::tenant_blobs(&mut tx, &tid)
                .await?
                .into_iter()
                .collect();
            let (revoked, frozen) = backup::revocations(&mut tx, &tid).await?;
            backup::clear_tenant_except(&mut tx, &tid, backup::LOG_TABLES).await?;
            let mut rows = 0;
            let mut keys_done = false;
            // Whether the snapshot's logs replace the live ones: decided at the first log
            // row (the chain head comes first): only if the live chain is behind it.
            let mut take_logs: Option<bool> = None;
            // Rows go in as they are read; the hash is checked at the end, before the
            // commit — an altered snapshot leaves the tenant as it was.
            while let Some(v) = snap
                .next_line()
                .await
                .map_err(|e| ServiceError::invalid("generation", e))?
            {
                let table = v["t"].as_str().unwrap_or_default();
                let Some(row) = v["r"].as_object() else {
                    continue;
                };
                if backup::LOG_TABLES.contains(&table) {
                    let take = match take_logs {
                        Some(take) => take,
                        None => {
                            let snap_seq = if table == "audit_heads" {
                                row.get("seq").and_then(|s| s.as_i64()).unwrap_or(0)
                            } else {
                                0
                            };
                            let take = snap_seq > live_head.seq;
                            if take {
                                backup::clear_logs(&mut tx, &tid).await?;
                            }
                            take_logs = Some(take);
                            take
                        }
                    };
                    if !take {
                        continue;
                    }
                }
                backup::restore_row(&mut tx, &tid, table, row).await?;
                rows += 1;
                if table == "tenants" && !keys_done {
                    for k in &keys {
                        backup::restore_row(&mut tx, &tid, "tenant_keys", k).await?;
                    }
                    keys_done = true;
                }
            }
            let kept_revocations =
                backup::reapply_revocations(&mut tx, &tid, &revoked, &frozen).await?;
            let restored_ids = backup::row_ids(&mut tx, &tid).await?;
            let now_blobs: BTreeSet<String> = backup::tenant_blobs(&mut tx, &tid)
                .await?
                .into_iter()
                .collect();
            let kept_logs = take_logs != Some(true);
            self.audit(
                &mut tx,
                &tid,
                &crate::Actor::Operator,
                &crate::RequestCtx::default(),
                crate::Event::new("backup.restore").details(serde_json::json!({
                    "generation": id,
                    "rows": rows,
                    "logs": if kept_logs { "kept (live)" } else { "from the backup" },
                    "rolled_back": id_diff(&live_ids, &restored_ids),
                    "brought_back": id_diff(&restored_ids, &live_ids),
                    "revocations_kept": kept_revocations,
                    "blobs_copied_back": restored,
                    "blobs_repaired": repaired,
                    "sessions": "ended",
                })),
            )
            .await?;
            tx.commit().await?;
            if let Ok(mut c) = self.keys.cache.lock() {
                c.retain(|(tenant, _), _| tenant != &t.tenant_id);
            }
            // Uploads the restore rolled back: their blobs are no longer referenced.
            for b in live_blobs.difference(&now_blobs) {
                if self.blobs.delete(&tid, b).await.is_ok() {
                    report.blobs_orphaned += 1;
                }
            }
            progress(format!(
                "{}: {rows} rows restored, logs {}",
                t.slug,
                if kept_logs { "kept" } else { "restored" }
            ));
            report.rows += rows;
            report.tenants.push(t.slug.clone());
        }
        Ok(report)
    }
}
