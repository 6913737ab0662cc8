//! Backups (OPS-1, OPS-2). A generation holds, per tenant, a snapshot of its rows sealed
//! with that tenant's data key, the wrapped data keys (the vault, sealed by the master
//! key as in the database), and a manifest signed with the deployment key. Encrypted blobs
//! are copied to the backup store once and kept while a kept generation references them.
//! After every backup the generation is verified: manifest signature, every snapshot
//! decrypted and hashed and its rows counted, every blob copy hashed.
//!
//! Backup store layout (a second blob store: local directory or S3):
//! `gen-<id>/manifest`, `gen-<id>/vault`, `gen-<id>/snap-<tenant id>`, `<tenant id>/<blob id>`.

use crate::{Result, ServiceError, Services};
use kura_domain::{TenantId, Timestamp};
use kura_store::backup::{self, Generation, TENANT_TABLES};
use kura_store::blobs::Blobs;
use kura_store::tenants;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// Where a generation's own objects live in the backup store.
fn gen_dir(id: &str) -> TenantId {
    TenantId::from_string(format!("gen-{id}"))
}

/// Progress nobody reads (the scratch restore).
fn silent(_: String) {}

fn io(e: std::io::Error) -> ServiceError {
    ServiceError::internal(format!("backup store: {e}"))
}

fn sha_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// What the manifest says about one tenant.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TenantEntry {
    pub tenant_id: String,
    pub slug: String,
    pub key_version: i64,
    pub snapshot_sha256: String,
    pub rows: BTreeMap<String, i64>,
    /// Blob id → SHA-256 of the encrypted bytes.
    pub blobs: BTreeMap<String, String>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub format: String,
    pub generation: String,
    pub created_at: Timestamp,
    pub region: String,
    pub tenants: Vec<TenantEntry>,
    pub vault_sha256: String,
    /// Tenants whose data keys were destroyed after this generation was written
    /// (crypto-shredding): their snapshots and blob copies can no longer be read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shredded: Vec<String>,
}

impl Services {
    fn backup_store(&self) -> Result<&Blobs> {
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

    async fn write_generation(
        &self,
        store: &Blobs,
        id: &str,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<(Manifest, i64, i64)> {
        let dir = gen_dir(id);
        let mut tx = self.store.system_read().await?;
        let all = tenants::list_all(&mut tx).await?;
        drop(tx);
        let mut entries = Vec::new();
        let (mut copied, mut bytes) = (0i64, 0i64);
        for (i, t) in all.iter().enumerate() {
            let mut tx = self.store.tenant_read(&t.id).await?;
            let mut lines = String::new();
            let mut rows = BTreeMap::new();
            let mut blob_ids = BTreeSet::new();
            for (table, _) in TENANT_TABLES {
                let dump = backup::dump_table(&mut tx, &t.id, table).await?;
                rows.insert(table.to_string(), dump.len() as i64);
                for r in dump {
                    if *table == "file_versions" {
                        if let Some(b) = r.get("blob_id").and_then(|v| v.as_str()) {
                            blob_ids.insert(b.to_string());
                        }
                    }
                    lines.push_str(&serde_json::json!({ "t": table, "r": r }).to_string());
                    lines.push('\n');
                }
            }
            drop(tx);
            let (version, key) = self.current_key(&t.id).await?;
            let sealed = kura_crypto::field::seal(
                &key,
                t.id.as_str(),
                &format!("backup:{id}"),
                version,
                lines.as_bytes(),
            )
            .map_err(|e| ServiceError::internal(e.to_string()))?;
            store
                .write_all(&dir, &format!("snap-{}", t.id.as_str()), &sealed)
                .await
                .map_err(io)?;
            bytes += sealed.len() as i64;
            let mut blobs = BTreeMap::new();
            for b in &blob_ids {
                let have = store.read_all(&t.id, b).await.ok();
                let data = match have {
                    Some(d) => d,
                    None => {
                        let d = self.blobs.read_all(&t.id, b).await.map_err(io)?;
                        store.write_all(&t.id, b, &d).await.map_err(io)?;
                        copied += 1;
                        bytes += d.len() as i64;
                        d
                    }
                };
                blobs.insert(b.clone(), sha_hex(&data));
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
                snapshot_sha256: sha_hex(lines.as_bytes()),
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
            format: "kura-backup/1".into(),
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

    async fn write_manifest(&self, store: &Blobs, manifest: &Manifest) -> Result<()> {
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

    /// Reads and checks a generation's signed manifest.
    async fn read_manifest(&self, id: &str) -> Result<std::result::Result<Manifest, String>> {
        let store = self.backup_store()?;
        let raw = match store.read_all(&gen_dir(id), "manifest").await {
            Ok(r) => r,
            Err(e) => return Ok(Err(format!("manifest unreadable: {e}"))),
        };
        let v: serde_json::Value = match serde_json::from_slice(&raw) {
            Ok(v) => v,
            Err(_) => return Ok(Err("manifest is not JSON".into())),
        };
        let Ok(m) = serde_json::from_value::<Manifest>(v["manifest"].clone()) else {
            return Ok(Err("manifest is malformed".into()));
        };
        let body = serde_json::to_string(&m).map_err(|e| ServiceError::internal(e.to_string()))?;
        if !kura_crypto::sign::verify(
            &self.signing.public_key_hex(),
            body.as_bytes(),
            v["signature"].as_str().unwrap_or_default(),
        ) {
            return Ok(Err("manifest signature does not verify".into()));
        }
        Ok(Ok(m))
    }

    /// Restore verification of a generation: the manifest's signature, every tenant
    /// snapshot decrypted with its data key, hashed and its rows counted per table, the
    /// vault hashed, every blob copy hashed. Records and returns (ok, detail).
    pub async fn verify_backup(&self, id: &str) -> Result<(bool, String)> {
        let (ok, text) = match self.check_generation(id).await? {
            Ok(s) => (true, s),
            Err(e) => (false, e),
        };
        let mut tx = self.store.system_tx().await?;
        backup::record_verification(&mut tx, id, self.now(), ok, &text).await?;
        tx.commit().await?;
        Ok((ok, text))
    }

    async fn check_generation(&self, id: &str) -> Result<std::result::Result<String, String>> {
        let store = self.backup_store()?.clone();
        let m = match self.read_manifest(id).await? {
            Ok(m) => m,
            Err(e) => return Ok(Err(e)),
        };
        let dir = gen_dir(id);
        match store.read_all(&dir, "vault").await {
            Ok(v) if sha_hex(&v) == m.vault_sha256 => {}
            _ => return Ok(Err("vault copy missing or altered".into())),
        }
        let (mut rows_total, mut blobs_total) = (0i64, 0usize);
        for t in m
            .tenants
            .iter()
            .filter(|t| !m.shredded.contains(&t.tenant_id))
        {
            let tid = TenantId::from_string(t.tenant_id.clone());
            let sealed = match store.read_all(&dir, &format!("snap-{}", t.tenant_id)).await {
                Ok(s) => s,
                Err(_) => return Ok(Err(format!("{}: snapshot missing", t.slug))),
            };
            let key = match self.data_key(&tid, t.key_version).await {
                Ok(k) => k,
                Err(_) => return Ok(Err(format!("{}: data key unavailable", t.slug))),
            };
            let Ok(plain) = kura_crypto::field::open(
                &key,
                &t.tenant_id,
                &format!("backup:{id}"),
                t.key_version,
                &sealed,
            ) else {
                return Ok(Err(format!(
                    "{}: snapshot does not decrypt (altered)",
                    t.slug
                )));
            };
            if sha_hex(&plain) != t.snapshot_sha256 {
                return Ok(Err(format!("{}: snapshot hash differs", t.slug)));
            }
            let mut counted: BTreeMap<String, i64> = BTreeMap::new();
            for line in plain.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let v: serde_json::Value = match serde_json::from_slice(line) {
                    Ok(v) => v,
                    Err(_) => return Ok(Err(format!("{}: snapshot line unreadable", t.slug))),
                };
                *counted
                    .entry(v["t"].as_str().unwrap_or_default().to_string())
                    .or_default() += 1;
            }
            counted.retain(|_, n| *n > 0);
            let mut expected = t.rows.clone();
            expected.retain(|_, n| *n > 0);
            if counted != expected {
                return Ok(Err(format!(
                    "{}: row counts differ from the manifest",
                    t.slug
                )));
            }
            rows_total += expected.values().sum::<i64>();
            for (b, sha) in &t.blobs {
                match store.read_all(&tid, b).await {
                    Ok(d) if sha_hex(&d) == *sha => {}
                    _ => return Ok(Err(format!("{}: blob copy {b} missing or altered", t.slug))),
                }
            }
            blobs_total += t.blobs.len();
        }
        // Then a real restore of the whole generation into a scratch database. It runs on
        // a runtime of its own (the restore's future is not `Send`-provable to the
        // scheduler, and it is a batch job anyway).
        let (services, gen, manifest) = (self.clone(), id.to_string(), m.clone());
        let scratch = tokio::task::spawn_blocking(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| ServiceError::internal(e.to_string()))?;
            rt.block_on(services.scratch_restore(&gen, &manifest))
        })
        .await
        .map_err(|e| ServiceError::internal(e.to_string()))??;
        if let Err(e) = scratch {
            return Ok(Err(e));
        }
        let shredded = if m.shredded.is_empty() {
            String::new()
        } else {
            format!("; {} crypto-shredded tenants skipped", m.shredded.len())
        };
        Ok(Ok(format!(
            "{} tenants, {rows_total} rows, {blobs_total} blobs: decrypted, counted and hashed, then restored into a scratch database where counts and audit chains match{shredded}",
            m.tenants.len() - m.shredded.len()
        )))
    }

    /// Restores generation `id` into a fresh SQLite database and blob directory in a
    /// scratch location, then checks every tenant's row counts against the manifest and its
    /// audit chain; the scratch location is removed afterwards.
    async fn scratch_restore(
        &self,
        id: &str,
        m: &Manifest,
    ) -> Result<std::result::Result<(), String>> {
        let dir = std::env::temp_dir().join(format!("kura-verify-{id}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| ServiceError::internal(e.to_string()))?;
        let outcome = self.scratch_restore_in(&dir, id, m).await;
        let _ = std::fs::remove_dir_all(&dir);
        outcome
    }

    async fn scratch_restore_in(
        &self,
        dir: &std::path::Path,
        id: &str,
        m: &Manifest,
    ) -> Result<std::result::Result<(), String>> {
        let store = kura_store::Store::connect(&kura_store::ConnectOptions {
            url: format!("sqlite://{}", dir.join("scratch.db").display()),
            max_connections: 2,
            pg_schema: None,
        })
        .await?;
        store.migrate().await?;
        let mut scratch = self.clone();
        scratch.store = store.clone();
        scratch.blobs = Blobs::Local(kura_store::blobs::LocalBlobs::new(dir.join("blobs")));
        if let Err(e) = scratch.restore_backup(Some(id), None, &silent).await {
            store.close().await;
            return Ok(Err(format!("scratch restore failed: {e}")));
        }
        let tenants: Vec<TenantEntry> = m
            .tenants
            .iter()
            .filter(|t| !m.shredded.contains(&t.tenant_id))
            .cloned()
            .collect();
        let mut problem = None;
        for t in tenants {
            let tid = TenantId::from_string(t.tenant_id.clone());
            let mut tx = store.system_read().await?;
            let counts = backup::count_rows(&mut tx, &tid).await?;
            let chain = kura_store::audit::verify(&mut tx, &tid).await?;
            drop(tx);
            for (table, n) in &t.rows {
                let got = counts.get(table).copied().unwrap_or(0);
                // The restore records itself in the restored chain.
                let ok = if table == "audit_events" {
                    got >= *n
                } else {
                    got == *n
                };
                if !ok {
                    problem = Some(format!(
                        "{}: {table} has {got} rows after a scratch restore, the manifest {n}",
                        t.slug
                    ));
                }
            }
            if let Err(e) = chain {
                problem = Some(format!("{}: the restored audit chain fails: {e}", t.slug));
            }
            if problem.is_some() {
                break;
            }
        }
        store.close().await;
        Ok(problem.map_or(Ok(()), Err))
    }

    /// Generations, newest first.
    pub async fn list_backups(&self) -> Result<Vec<Generation>> {
        let mut tx = self.store.system_read().await?;
        Ok(backup::list(&mut tx).await?)
    }

    /// Keeps the newest `backup_keep` verified generations; removes the others' objects
    /// (failed or unverified ones included) and the blob copies no kept generation
    /// references.
    async fn prune_backups(&self, progress: &(dyn Fn(String) + Send + Sync)) -> Result<()> {
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
}

/// What a restore did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RestoreReport {
    pub generation: String,
    pub tenants: Vec<String>,
    pub rows: i64,
    pub blobs_restored: i64,
}

impl Services {
    /// Restores a generation (the newest verified one when `generation` is `None`): every
    /// tenant in it, or only `tenant` (slug) — the others are not touched. The tenant's
    /// rows are replaced by the snapshot's, its data keys come back from the generation's
    /// vault (unwrapped with the master key), missing blobs are copied back, its sessions
    /// end. Audited in the tenant's restored chain.
    pub async fn restore_backup(
        &self,
        generation: Option<&str>,
        tenant: Option<&str>,
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
        };
        for t in chosen {
            let tid = TenantId::from_string(t.tenant_id.clone());
            let keys: Vec<&serde_json::Map<String, serde_json::Value>> = vault
                .iter()
                .filter(|k| {
                    k.get("tenant_id").and_then(|v| v.as_str()) == Some(t.tenant_id.as_str())
                })
                .collect();
            let wrapped = keys
                .iter()
                .find(|k| k.get("version").and_then(|v| v.as_i64()) == Some(t.key_version))
                .and_then(|k| k.get("wrapped").and_then(|v| v.as_str()))
                .ok_or_else(|| {
                    ServiceError::invalid(
                        "generation",
                        format!("{}: no data key in the vault copy", t.slug),
                    )
                })?;
            let wrapped = hex::decode(wrapped)
                .map_err(|_| ServiceError::internal("wrapped key is not hex"))?;
            let key =
                kura_crypto::keys::unwrap(&self.keys.master, &t.tenant_id, t.key_version, &wrapped)
                    .map_err(|e| ServiceError::invalid("generation", format!("{}: {e}", t.slug)))?;
            let sealed = store
                .read_all(&dir, &format!("snap-{}", t.tenant_id))
                .await
                .map_err(io)?;
            let plain = kura_crypto::field::open(
                &key,
                &t.tenant_id,
                &format!("backup:{id}"),
                t.key_version,
                &sealed,
            )
            .map_err(|_| {
                ServiceError::invalid(
                    "generation",
                    format!("{}: snapshot does not decrypt", t.slug),
                )
            })?;
            if sha_hex(&plain) != t.snapshot_sha256 {
                return Err(ServiceError::invalid(
                    "generation",
                    format!("{}: snapshot altered", t.slug),
                ));
            }
            // Blobs first: rows only ever point at blobs that are there.
            for b in t.blobs.keys() {
                if self.blobs.read_all(&tid, b).await.is_err() {
                    let d = store.read_all(&tid, b).await.map_err(io)?;
                    self.blobs.write_all(&tid, b, &d).await.map_err(io)?;
                    report.blobs_restored += 1;
                }
            }
            let mut tx = self.store.system_tx().await?;
            backup::clear_tenant(&mut tx, &tid).await?;
            let mut rows = 0;
            let mut keys_done = false;
            let lines: Vec<&[u8]> = plain
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .collect();
            for line in lines {
                let v: serde_json::Value = serde_json::from_slice(line)
                    .map_err(|e| ServiceError::internal(e.to_string()))?;
                let table = v["t"].as_str().unwrap_or_default();
                let Some(row) = v["r"].as_object() else {
                    continue;
                };
                backup::restore_row(&mut tx, &tid, table, row).await?;
                rows += 1;
                if table == "tenants" && !keys_done {
                    for k in &keys {
                        backup::restore_row(&mut tx, &tid, "tenant_keys", k).await?;
                    }
                    keys_done = true;
                }
            }
            tx.commit().await?;
            if let Ok(mut c) = self.keys.cache.lock() {
                c.retain(|(tenant, _), _| tenant != &t.tenant_id);
            }
            self.audit_alone(
                &tid,
                &crate::Actor::Operator,
                &crate::RequestCtx::default(),
                crate::Event::new("backup.restore").details(serde_json::json!({
                    "generation": id, "rows": rows,
                })),
            )
            .await?;
            progress(format!("{}: {rows} rows restored", t.slug));
            report.rows += rows;
            report.tenants.push(t.slug.clone());
        }
        Ok(report)
    }
}

/// What a tenant admin sees of backups: the newest verified generation that holds the
/// tenant, where backups are kept, how many generations.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackupSummary {
    pub last_verified_generation: Option<String>,
    pub last_verified_at: Option<Timestamp>,
    pub region: String,
    pub generations_kept: usize,
}

impl Services {
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
