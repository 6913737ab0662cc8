//! Verifying a generation: signature, every snapshot and blob copy hashed, and a restore into a
//! scratch database.

use super::*;

/// Progress nobody reads (the scratch restore).
pub(crate) fn silent(_: String) {}

/// The SHA-256 of a stored object, read in pieces.
pub(crate) async fn object_sha(
    store: &Blobs,
    tenant: &TenantId,
    name: &str,
) -> std::io::Result<String> {
    let mut r = store.read_range(tenant, name, 0, None).await?;
    let (mut h, mut buf) = (Sha256::new(), vec![0u8; 1024 * 1024]);
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

impl Services {
    /// Reads and checks a generation's signed manifest.
    pub(crate) async fn read_manifest(
        &self,
        id: &str,
    ) -> Result<std::result::Result<Manifest, String>> {
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

    pub(crate) async fn check_generation(
        &self,
        id: &str,
    ) -> Result<std::result::Result<String, String>> {
        let store = self.backup_store()?.clone();
        let m = match self.read_manifest(id).await? {
            Ok(m) => m,
            Err(e) => return Ok(Err(e)),
        };
        let dir = gen_dir(id);
        let vault: Vec<serde_json::Map<String, serde_json::Value>> =
            match store.read_all(&dir, "vault").await {
                Ok(v) if sha_hex(&v) == m.vault_sha256 => match serde_json::from_slice(&v) {
                    Ok(v) => v,
                    Err(_) => return Ok(Err("vault copy unreadable".into())),
                },
                _ => return Ok(Err("vault copy missing or altered".into())),
            };
        let (mut rows_total, mut blobs_total) = (0i64, 0usize);
        for t in m
            .tenants
            .iter()
            .filter(|t| !m.shredded.contains(&t.tenant_id))
        {
            let tid = TenantId::from_string(t.tenant_id.clone());
            // The key as a restore gets it: from the generation's own vault copy.
            let key = match self.vault_key(&vault, t) {
                Ok(k) => k,
                Err(e) => return Ok(Err(e)),
            };
            let mut snap = match SnapshotReader::open(&store, id, t, key).await {
                Ok(r) => r,
                Err(e) => return Ok(Err(e)),
            };
            let mut counted: BTreeMap<String, i64> = BTreeMap::new();
            loop {
                match snap.next_line().await {
                    Ok(Some(v)) => {
                        *counted
                            .entry(v["t"].as_str().unwrap_or_default().to_string())
                            .or_default() += 1
                    }
                    Ok(None) => break,
                    Err(e) => return Ok(Err(e)),
                }
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
                match object_sha(&store, &tid, b).await {
                    Ok(d) if d == *sha => {}
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
    pub(crate) async fn scratch_restore(
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

    pub(crate) async fn scratch_restore_in(
        &self,
        dir: &std::path::Path,
        id: &str,
        m: &Manifest,
    ) -> Result<std::result::Result<(), String>> {
        let store = kura_store::Store::connect(&kura_store::ConnectOptions::new(
            format!("sqlite://{}", dir.join("scratch.db").display()),
            2,
        ))
        .await?;
        store.migrate().await?;
        let mut scratch = self.clone();
        scratch.store = store.clone();
        scratch.blobs = Blobs::Local(kura_store::blobs::LocalBlobs::new(dir.join("blobs")));
        // Verification is what the scratch restore is part of: no verification first.
        if let Err(e) = scratch.restore_backup(Some(id), None, true, &silent).await {
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
            let chain = scratch.verify_chain(&mut tx, &tid, None).await?;
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
}
