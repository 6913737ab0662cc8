//! Taking a backup: one generation (snapshots, blob copies, vault, signed manifest), then its
//! verification.

use super::*;

/// Copies one object between stores in 1 MiB pieces; returns its SHA-256 and size. With
/// `want` (the signed manifest's SHA-256) the copy is committed only if it matches;
/// otherwise nothing is written and the error is `InvalidData`.
pub(crate) async fn copy_object(
    from: &Blobs,
    to: &Blobs,
    tenant: &TenantId,
    name: &str,
    want: Option<&str>,
) -> std::io::Result<(String, i64)> {
    let mut r = from.read_range(tenant, name, 0, None).await?;
    let mut w = to.create(tenant, name).await?;
    let (mut h, mut buf, mut size) = (Sha256::new(), vec![0u8; 1024 * 1024], 0i64);
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        w.write(&buf[..n]).await?;
        size += n as i64;
    }
    let got = hex::encode(h.finalize());
    if let Some(want) = want.filter(|w| *w != got) {
        // Dropped uncommitted: the temporary copy is removed, the target left as it was.
        drop(w);
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("its SHA-256 is {got}, the signed manifest says {want}"),
        ));
    }
    w.commit().await?;
    Ok((got, size))
}

impl Services {
    pub(crate) fn backup_store(&self) -> Result<&Blobs> {
        self.backups
            .as_ref()
            .ok_or_else(|| ServiceError::invalid("backup", "no backup store is configured"))
    }

    /// Writes a new generation, verifies it, and removes generations beyond the ones kept
    /// (and blob copies no kept generation references). `progress` gets a line per step.
    pub async fn run_backup(
        &self,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<Generation> {
        let store = self.backup_store()?.clone();
        let now = self.now();
        let id = format!(
            "g{}",
            now.to_rfc3339()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
        );
        let mut tx = self.store.system_tx().await?;
        backup::start(&mut tx, &id, now).await?;
        tx.commit().await?;
        let outcome = self.write_generation(&store, &id, progress).await;
        let mut g = Generation {
            id: id.clone(),
            started_at: now,
            finished_at: Some(self.now()),
            status: "ok".into(),
            tenants: 0,
            rows_saved: 0,
            blobs: 0,
            blobs_copied: 0,
            bytes: 0,
            verified_at: None,
            verify_status: None,
            verify_detail: None,
            error: None,
        };
        match &outcome {
            Ok((m, copied, bytes)) => {
                g.tenants = m.tenants.len() as i64;
                g.rows_saved = m.tenants.iter().flat_map(|t| t.rows.values()).sum();
                g.blobs = m.tenants.iter().map(|t| t.blobs.len() as i64).sum();
                g.blobs_copied = *copied;
                g.bytes = *bytes;
            }
            Err(e) => {
                g.status = "failed".into();
                g.error = Some(e.to_string());
            }
        }
        let mut tx = self.store.system_tx().await?;
        backup::finish(&mut tx, &g).await?;
        tx.commit().await?;
        outcome?;
        progress(format!("verifying generation {id}"));
        let (ok, detail) = self.verify_backup(&id).await?;
        progress(format!(
            "verification: {}",
            if ok { "ok" } else { detail.as_str() }
        ));
        self.prune_backups(progress).await?;
        let list = self.list_backups().await?;
        list.into_iter()
            .find(|x| x.id == id)
            .ok_or_else(|| ServiceError::internal("generation vanished"))
    }

    pub(crate) async fn write_generation(
        &self,
        store: &Blobs,
        id: &str,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<(Manifest, i64, i64)> {
        let dir = gen_dir(id);
        let mut tx = self.store.system_read().await?;
        let mut all = tenants::list_all(&mut tx).await?;
        drop(tx);
        // A terminated tenant whose data was deleted is in no new generation (its older
        // generations keep it until its keys are destroyed in them).
        let deleted: BTreeSet<String> = self
            .list_lifecycles()
            .await?
            .into_iter()
            .filter(|l| l.deleted_at.is_some())
            .map(|l| l.tenant_id.as_str().to_string())
            .collect();
        all.retain(|t| !deleted.contains(t.id.as_str()));
        let mut entries = Vec::new();
        let (mut copied, mut bytes) = (0i64, 0i64);
        for (i, t) in all.iter().enumerate() {
            let Some((version, key)) = self.existing_or_new_key(t).await? else {
                progress(format!(
                    "{}: terminated without a data key; not in this generation",
                    t.slug
                ));
                continue;
            };
            let out = store
                .create(&dir, &format!("snap-{}", t.id.as_str()))
                .await
                .map_err(io)?;
            let mut snap = SnapshotWriter::new(out, &key, t.id.as_str(), id, version).await?;
            let mut tx = self.store.tenant_read(&t.id).await?;
            let mut rows = BTreeMap::new();
            let mut blob_ids = BTreeSet::new();
            for (table, _) in TENANT_TABLES {
                let mut count = 0i64;
                let mut cursor = backup::stream_table(&mut tx, &t.id, table)?;
                while let Some(r) = cursor.next().await {
                    let r = r?;
                    if *table == "file_versions" {
                        if let Some(b) = r.get("blob_id").and_then(|v| v.as_str()) {
                            blob_ids.insert(b.to_string());
                        }
                    }
                    let line = serde_json::json!({ "t": table, "r": r }).to_string();
                    snap.line(line.as_bytes()).await?;
                    count += 1;
                }
                drop(cursor);
                rows.insert(table.to_string(), count);
            }
            drop(tx);
            let (snapshot_sha256, snapshot_len, written) = snap.finish().await?;
            bytes += written;
            let mut blobs = BTreeMap::new();
            for b in &blob_ids {
                // A copy already in the store (from an earlier generation) is kept.
                let sha = match object_sha(store, &t.id, b).await {
                    Ok(sha) => sha,
                    Err(_) => {
                        let (sha, size) = copy_object(&self.blobs, store, &t.id, b, None)
                            .await
                            .map_err(io)?;
                        copied += 1;
                        bytes += size;
                        sha
                    }
                };
                blobs.insert(b.clone(), sha);
            }
            let done = (i + 1) * 20 / all.len().max(1);
            progress(format!(
                "[{}{}] {}/{} {}: {} rows, {} blobs",
                "#".repeat(done),
                "-".repeat(20 - done),
                i + 1,
                all.len(),
                t.slug,
                rows.values().sum::<i64>(),
                blobs.len()
            ));
            entries.push(TenantEntry {
                tenant_id: t.id.as_str().to_string(),
                slug: t.slug.clone(),
                key_version: version,
                snapshot_sha256,
                snapshot_len: Some(snapshot_len),
                snapshot_chunks: 0,
                rows,
                blobs,
            });
        }
        let mut tx = self.store.system_read().await?;
        let vault = backup::dump_vault(&mut tx).await?;
        drop(tx);
        let vault =
            serde_json::to_vec(&vault).map_err(|e| ServiceError::internal(e.to_string()))?;
        store.write_all(&dir, "vault", &vault).await.map_err(io)?;
        let manifest = Manifest {
            format: "kura-backup/3".into(),
            generation: id.to_string(),
            created_at: self.now(),
            region: self.config.backup_region.clone(),
            tenants: entries,
            vault_sha256: sha_hex(&vault),
            shredded: Vec::new(),
        };
        self.write_manifest(store, &manifest).await?;
        Ok((manifest, copied, bytes))
    }

    /// A tenant's snapshot key from a generation's vault copy, unwrapped with the master key.
    pub(crate) fn vault_key(
        &self,
        vault: &[serde_json::Map<String, serde_json::Value>],
        t: &TenantEntry,
    ) -> std::result::Result<kura_crypto::keys::SecretKey, String> {
        let wrapped = vault
            .iter()
            .find(|k| {
                k.get("tenant_id").and_then(|v| v.as_str()) == Some(t.tenant_id.as_str())
                    && k.get("version").and_then(|v| v.as_i64()) == Some(t.key_version)
            })
            .and_then(|k| k.get("wrapped").and_then(|v| v.as_str()))
            .ok_or_else(|| format!("{}: no data key in the vault copy", t.slug))?;
        let wrapped =
            hex::decode(wrapped).map_err(|_| format!("{}: wrapped key is not hex", t.slug))?;
        kura_crypto::keys::unwrap(&self.keys.master, &t.tenant_id, t.key_version, &wrapped)
            .map_err(|e| format!("{}: {e}", t.slug))
    }

    /// The tenant's current data key for its snapshot; a tenant without one gets one —
    /// unless it is terminated (`None`: no snapshot; terminations since this release create
    /// the key first, so only tenants terminated before it with no files at all lack one).
    pub(crate) async fn existing_or_new_key(
        &self,
        t: &kura_store::tenants::Tenant,
    ) -> Result<Option<(i64, kura_crypto::keys::SecretKey)>> {
        let mut tx = self.store.tenant_read(&t.id).await?;
        let has = kura_store::keys::current(&mut tx, &t.id).await?.is_some();
        drop(tx);
        if !has && t.status == kura_domain::tenant::TenantStatus::Terminated {
            return Ok(None);
        }
        Ok(Some(self.current_key(&t.id).await?))
    }

    pub(crate) async fn write_manifest(&self, store: &Blobs, manifest: &Manifest) -> Result<()> {
        let body =
            serde_json::to_string(manifest).map_err(|e| ServiceError::internal(e.to_string()))?;
        let signed = serde_json::json!({
            "manifest": manifest,
            "key_id": self.signing.key_id(),
            "signature": self.signing.sign(body.as_bytes()),
        });
        store
            .write_all(
                &gen_dir(&manifest.generation),
                "manifest",
                signed.to_string().as_bytes(),
            )
            .await
            .map_err(io)
    }
}
