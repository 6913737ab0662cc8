//! The tenant key ring: data keys (created, unwrapped, cached), rotation, re-encryption, master-key rewrapping, sealed fields.

use super::*;

/// The master key and a cache of unwrapped tenant data keys.
pub struct KeyRing {
    pub(crate) master: SecretKey,
    pub(crate) cache: Mutex<HashMap<(String, i64), SecretKey>>,
}

impl KeyRing {
    pub fn new(master: SecretKey) -> Self {
        Self {
            master,
            cache: Mutex::new(HashMap::new()),
        }
    }
    pub fn master_fingerprint(&self) -> String {
        self.master.fingerprint()
    }
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyRing(master fp {})", self.master.fingerprint())
    }
}

/// What `kura keys rotate` did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RotateReport {
    pub new_version: i64,
    /// Blobs under older key versions, to be re-encrypted.
    pub pending: usize,
}

/// A tenant's data keys and how many blobs each encrypts (`kura keys status`).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct KeyStatus {
    pub current_version: i64,
    /// (key version, blobs under it), oldest first.
    pub blobs_by_version: Vec<(i64, usize)>,
}

impl KeyStatus {
    pub fn pending(&self) -> usize {
        self.blobs_by_version
            .iter()
            .filter(|(v, _)| *v < self.current_version)
            .map(|(_, n)| n)
            .sum()
    }
}

impl Services {
    /// The tenant's current data key (creating version 1 on first use) and its version.
    /// No key is ever created for a terminated tenant (its keys are destroyed at the end
    /// of its lifecycle and must not come back): it has one from its termination.
    pub async fn current_key(&self, tenant: &TenantId) -> Result<(i64, SecretKey)> {
        let mut tx = self.store.tenant_read(tenant).await?;
        let cur = keys::current(&mut tx, tenant).await?;
        let status = kura_store::tenants::get(&mut tx, tenant)
            .await
            .map(|t| t.status);
        drop(tx);
        if let Some(k) = cur {
            return Ok((k.version, self.data_key(tenant, k.version).await?));
        }
        if matches!(status, Ok(kura_domain::tenant::TenantStatus::Terminated)) {
            return Err(ServiceError::Conflict(
                "the tenant's contract has ended: no new data key is created for it".into(),
            ));
        }
        let dek = SecretKey::generate().map_err(|_| ServiceError::internal("rng"))?;
        let wrapped = kura_crypto::keys::wrap(&self.keys.master, tenant.as_str(), 1, &dek)
            .map_err(|e| ServiceError::internal(e.to_string()))?;
        let mut tx = self.store.tenant_tx(tenant).await?;
        let row = keys::WrappedKey {
            version: 1,
            wrapped: hex::encode(wrapped),
            master_fp: self.keys.master.fingerprint(),
            created_at: self.now(),
        };
        match keys::insert(&mut tx, tenant, &row).await {
            Ok(()) => {
                self.audit(
                    &mut tx,
                    tenant,
                    &Actor::Operator,
                    &RequestCtx::default(),
                    Event::new("key.create")
                        .target("tenant_key", 1)
                        .details(serde_json::json!({ "version": 1 })),
                )
                .await?;
                tx.commit().await?;
            }
            // Another request created it first: use theirs.
            Err(StoreError::Conflict(_)) => drop(tx),
            Err(e) => return Err(e.into()),
        }
        Ok((1, self.data_key(tenant, 1).await?))
    }

    /// A tenant's data key of a given version (unwrapped once, then cached).
    pub async fn data_key(&self, tenant: &TenantId, version: i64) -> Result<SecretKey> {
        let cache_key = (tenant.as_str().to_string(), version);
        if let Ok(c) = self.keys.cache.lock() {
            if let Some(k) = c.get(&cache_key) {
                return Ok(k.clone());
            }
        }
        let mut tx = self.store.tenant_read(tenant).await?;
        let row = keys::get(&mut tx, tenant, version).await?.ok_or_else(|| {
            ServiceError::internal(format!("tenant key version {version} missing"))
        })?;
        drop(tx);
        let wrapped = hex::decode(&row.wrapped)
            .map_err(|_| ServiceError::internal("wrapped key is not hex"))?;
        let key = kura_crypto::keys::unwrap(&self.keys.master, tenant.as_str(), version, &wrapped)
            .map_err(|e| {
                ServiceError::internal(format!(
                    "{e} (master key fingerprint {}, key wrapped under {})",
                    self.keys.master.fingerprint(),
                    row.master_fp
                ))
            })?;
        if let Ok(mut c) = self.keys.cache.lock() {
            c.insert(cache_key, key.clone());
        }
        Ok(key)
    }

    /// Operator: makes a new data-key version for a tenant; new data uses it at once. The
    /// blobs under older versions are re-encrypted afterwards, in the background by every
    /// running server ([`Services::reencrypt_step`]) or at once by `kura keys rotate
    /// --wait` — one blob per transaction, so the service keeps running throughout.
    /// Audited in the tenant's chain.
    pub async fn operator_rotate_key(&self, slug: &str, ctx: &RequestCtx) -> Result<RotateReport> {
        let tenant = self.operator_find_tenant(slug).await?;
        let t = &tenant.id;
        let (current, _) = self.current_key(t).await?;
        let new_version = current + 1;
        let dek = SecretKey::generate().map_err(|_| ServiceError::internal("rng"))?;
        let wrapped = kura_crypto::keys::wrap(&self.keys.master, t.as_str(), new_version, &dek)
            .map_err(|e| ServiceError::internal(e.to_string()))?;
        let mut tx = self.store.tenant_tx(t).await?;
        keys::insert(
            &mut tx,
            t,
            &keys::WrappedKey {
                version: new_version,
                wrapped: hex::encode(wrapped),
                master_fp: self.keys.master.fingerprint(),
                created_at: self.now(),
            },
        )
        .await?;
        self.audit(
            &mut tx,
            t,
            &Actor::Operator,
            ctx,
            Event::new("key.rotate")
                .target("tenant_key", new_version)
                .details(serde_json::json!({ "from_version": current, "to_version": new_version })),
        )
        .await?;
        let pending = files::blobs_below_key(&mut tx, t, new_version).await?.len();
        tx.commit().await?;
        Ok(RotateReport {
            new_version,
            pending,
        })
    }

    /// Operator: a tenant's key versions and the blobs under each.
    pub async fn operator_key_status(&self, slug: &str) -> Result<KeyStatus> {
        let tenant = self.operator_find_tenant(slug).await?;
        let t = &tenant.id;
        let (current, _) = self.current_key(t).await?;
        let mut tx = self.store.tenant_read(t).await?;
        let all = files::blobs_below_key(&mut tx, t, i64::MAX).await?;
        let mut by: std::collections::BTreeMap<i64, usize> = std::collections::BTreeMap::new();
        for (_, v, _) in all {
            *by.entry(v).or_default() += 1;
        }
        Ok(KeyStatus {
            current_version: current,
            blobs_by_version: by.into_iter().collect(),
        })
    }

    /// Re-encrypts up to `max` of a tenant's blobs that are under an older key version
    /// than the current one; returns how many it re-encrypted. Each switch is one
    /// transaction that names the old blob, so two nodes doing this at once cannot lose
    /// data: the loser's copy is removed. Audited once per call that did work.
    pub async fn reencrypt_tenant(
        &self,
        t: &TenantId,
        max: usize,
        ctx: &RequestCtx,
    ) -> Result<usize> {
        let (new_version, dek) = self.current_key(t).await?;
        let mut tx = self.store.tenant_read(t).await?;
        let old = files::blobs_below_key(&mut tx, t, new_version).await?;
        drop(tx);
        let io = |e: std::io::Error| ServiceError::blob_io("blob", e);
        let mut done = 0;
        for (old_blob, key_version, size) in old.into_iter().take(max) {
            let v = Version {
                file_id: String::new(),
                version: 0,
                blob_id: old_blob.clone(),
                key_version,
                size,
                sha256: String::new(),
                content_type: String::new(),
                created_by: None,
                created_at: self.now(),
            };
            let mut plain = match self.read_content(t, &v, None).await {
                Ok(p) => p,
                Err(e) => {
                    // Gone (another node finished it) or damaged: skipped this round, and
                    // reported; `kura keys status` keeps counting it.
                    tracing::warn!(tenant = %t.as_str(), blob = %old_blob, error = %e, "re-encryption skipped a blob");
                    continue;
                }
            };
            let mut blob = SealedBlobWriter::with_key(self, t, new_version, dek.clone()).await?;
            let new_blob = blob.blob_id.clone();
            while let Some(piece) = plain.next().await {
                blob.write(&piece.map_err(io)?).await?;
            }
            blob.commit().await?;
            let mut tx = self.store.tenant_tx(t).await?;
            match files::replace_blob(&mut tx, t, &old_blob, &new_blob, new_version).await {
                Ok(0) => {
                    // Another node switched it (or the file was purged) first.
                    drop(tx);
                    let _ = self.blobs.delete(t, &new_blob).await;
                    continue;
                }
                Ok(_) => tx.commit().await?,
                Err(e) => {
                    drop(tx);
                    let _ = self.blobs.delete(t, &new_blob).await;
                    return Err(e.into());
                }
            }
            // Readers that opened the old blob finish from it (a local file stays readable
            // while open; an S3 GET in flight completes); new readers use the new one.
            let _ = self.blobs.delete(t, &old_blob).await;
            done += 1;
        }
        if done > 0 {
            self.audit_alone(
                t,
                &Actor::Operator,
                ctx,
                Event::new("key.reencrypt")
                    .target("tenant_key", new_version)
                    .details(serde_json::json!({ "blobs_reencrypted": done })),
            )
            .await?;
        }
        Ok(done)
    }

    /// One round of background re-encryption over every tenant, at most `max` blobs in
    /// all. Returns how many were re-encrypted.
    pub async fn reencrypt_step(&self, max: usize, ctx: &RequestCtx) -> Result<usize> {
        let mut tx = self.store.system_read().await?;
        let tenants = kura_store::tenants::list_all(&mut tx).await?;
        drop(tx);
        let mut done = 0;
        for t in tenants
            .into_iter()
            .filter(|t| t.status != kura_domain::tenant::TenantStatus::Terminated)
        {
            if done >= max {
                break;
            }
            done += self.reencrypt_tenant(&t.id, max - done, ctx).await?;
        }
        Ok(done)
    }

    /// Operator: rewraps every tenant's data keys under a new master key, in one
    /// transaction (all or nothing). Blobs are untouched. Afterwards the deployment must be
    /// configured with the new master key. Audited in the system chain.
    pub async fn operator_rewrap_keys(
        &self,
        new_master: &SecretKey,
        ctx: &RequestCtx,
    ) -> Result<usize> {
        let mut tx = self.store.system_tx().await?;
        let all = keys::list_all(&mut tx).await?;
        for (tenant, k) in &all {
            let wrapped = hex::decode(&k.wrapped)
                .map_err(|_| ServiceError::internal("wrapped key is not hex"))?;
            let dek =
                kura_crypto::keys::unwrap(&self.keys.master, tenant.as_str(), k.version, &wrapped)
                    .map_err(|e| {
                        ServiceError::internal(format!("tenant {tenant} key v{}: {e}", k.version))
                    })?;
            let rewrapped = kura_crypto::keys::wrap(new_master, tenant.as_str(), k.version, &dek)
                .map_err(|e| ServiceError::internal(e.to_string()))?;
            keys::rewrap(
                &mut tx,
                tenant,
                k.version,
                &hex::encode(rewrapped),
                &new_master.fingerprint(),
            )
            .await?;
        }
        self.audit(&mut tx, &TenantId::from_string(kura_store::SYSTEM_TENANT), &Actor::Operator, ctx,
            Event::new("operator.master_key.rewrap").details(serde_json::json!({
                "keys": all.len(), "from": self.keys.master.fingerprint(), "to": new_master.fingerprint(),
            }))).await?;
        tx.commit().await?;
        Ok(all.len())
    }

    /// Encrypts a secret database field with the tenant's current data key. The result
    /// (`k<version>:<hex>`) is what gets stored; `purpose` names the field and its owner
    /// (e.g. `totp_seed:<user id>`) so a value moved elsewhere does not decrypt.
    pub async fn seal_field(
        &self,
        tenant: &TenantId,
        purpose: &str,
        plain: &[u8],
    ) -> Result<String> {
        let (version, key) = self.current_key(tenant).await?;
        let sealed = kura_crypto::field::seal(&key, tenant.as_str(), purpose, version, plain)
            .map_err(|e| ServiceError::internal(e.to_string()))?;
        Ok(format!("k{version}:{}", hex::encode(sealed)))
    }

    /// Decrypts a value made by [`Services::seal_field`].
    pub async fn open_field(
        &self,
        tenant: &TenantId,
        purpose: &str,
        stored: &str,
    ) -> Result<Vec<u8>> {
        let (v, h) = stored
            .strip_prefix('k')
            .and_then(|r| r.split_once(':'))
            .ok_or_else(|| ServiceError::internal("sealed field is malformed"))?;
        let version: i64 = v
            .parse()
            .map_err(|_| ServiceError::internal("sealed field is malformed"))?;
        let sealed =
            hex::decode(h).map_err(|_| ServiceError::internal("sealed field is malformed"))?;
        let key = self.data_key(tenant, version).await?;
        kura_crypto::field::open(&key, tenant.as_str(), purpose, version, &sealed)
            .map_err(|_| ServiceError::Tampered)
    }
}
