//! Uploads: the one sealed-blob writer, streaming encryption and hashing, recording a version under the label rules.

use super::*;

/// Ciphertext is written in batches of about 1 MiB (each write is a blocking-pool hop).
const WRITE_BATCH: usize = 1024 * 1024;

/// **The** way plaintext becomes a stored, sealed blob — uploads, re-encryption and backup
/// snapshots: chunked AES-256-GCM (`kura_crypto::stream`) under a tenant's data key of a
/// version, every chunk bound to tenant, blob id and key version, written in ~1 MiB
/// batches. Dropped before [`SealedBlobWriter::commit`], it leaves nothing behind.
pub(crate) struct SealedBlobWriter {
    pub(crate) blob_id: String,
    pub(crate) key_version: i64,
    pending: kura_store::blobs::PendingBlob,
    enc: Encryptor,
    out: Vec<u8>,
    plain_len: u64,
}

impl SealedBlobWriter {
    /// A new blob of `tenant` under its current data key.
    pub(crate) async fn create(services: &Services, tenant: &TenantId) -> Result<Self> {
        let (version, key) = services.current_key(tenant).await?;
        Self::with_key(services, tenant, version, key).await
    }

    /// A new blob of `tenant` under data key `version`.
    pub(crate) async fn with_key(
        services: &Services,
        tenant: &TenantId,
        key_version: i64,
        key: SecretKey,
    ) -> Result<Self> {
        let blob_id = kura_domain::ids::new_id();
        let pending = services
            .blobs
            .create(tenant, &blob_id)
            .await
            .map_err(|e| ServiceError::blob_io("blob write", e))?;
        Self::into_pending(pending, &key, tenant.as_str(), blob_id, key_version).await
    }

    /// Seals into an object already started elsewhere (a backup generation's snapshot),
    /// bound to `tenant`, `blob_id` and `key_version` like any blob.
    pub(crate) async fn into_pending(
        mut pending: kura_store::blobs::PendingBlob,
        key: &SecretKey,
        tenant: &str,
        blob_id: String,
        key_version: i64,
    ) -> Result<Self> {
        let bctx = BlobContext {
            tenant_id: tenant,
            blob_id: &blob_id,
            key_version,
        };
        let (enc, header) =
            Encryptor::new(key, bctx).map_err(|e| ServiceError::internal(e.to_string()))?;
        pending
            .write(&header)
            .await
            .map_err(|e| ServiceError::blob_io("blob write", e))?;
        Ok(Self {
            blob_id,
            key_version,
            pending,
            enc,
            out: Vec::with_capacity(WRITE_BATCH + stream::CHUNK + stream::TAG),
            plain_len: 0,
        })
    }

    /// Encrypts and writes (in batches) the next plaintext.
    pub(crate) async fn write(&mut self, plain: &[u8]) -> Result<()> {
        self.plain_len += plain.len() as u64;
        self.enc
            .update(plain, &mut self.out)
            .map_err(|e| ServiceError::internal(e.to_string()))?;
        if self.out.len() >= WRITE_BATCH {
            let n = self.enc.sealed_len(&self.out);
            if n > 0 {
                // The sealed part goes to the blob as it is (no copy); the open chunk moves
                // to the front of a buffer the blob is done with.
                let mut next = self
                    .pending
                    .spare_buffer(WRITE_BATCH + stream::CHUNK + stream::TAG);
                next.extend_from_slice(&self.out[n..]);
                self.out.truncate(n);
                let sealed = std::mem::replace(&mut self.out, next);
                self.pending
                    .write_vec(sealed)
                    .await
                    .map_err(|e| ServiceError::blob_io("blob write", e))?;
            }
        }
        Ok(())
    }

    /// Seals the last chunk and makes the blob durable and visible. Returns (plaintext
    /// bytes, stored bytes).
    pub(crate) async fn commit(mut self) -> Result<(u64, u64)> {
        let io = |e: std::io::Error| ServiceError::blob_io("blob write", e);
        self.enc
            .finish(&mut self.out)
            .map_err(|e| ServiceError::internal(e.to_string()))?;
        self.pending.write(&self.out).await.map_err(io)?;
        let stored = self.pending.written();
        self.pending.commit().await.map_err(io)?;
        Ok((self.plain_len, stored))
    }
}

/// The answer to an upload or a move onto a name that a file the caller cannot reach
/// already has: the same as for any taken name, and nothing about that file.
pub const NAME_TAKEN: &str = "a file with this name exists in the project";

impl Services {
    /// Streams an upload into an encrypted blob and records it as a new file or a new
    /// version of the file with that name. Nothing is left behind on failure.
    #[allow(clippy::too_many_arguments)]
    pub async fn upload_file<S, E>(
        &self,
        auth: &AuthContext,
        project: &ProjectId,
        name: &str,
        content_type: &str,
        label: Option<&str>,
        mut body: S,
        max_bytes: u64,
        ctx: &RequestCtx,
    ) -> Result<(File, Version)>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let t = auth.tenant.id.clone();
        self.project_for(auth, project, None, Action::ContentWrite, ctx)
            .await?;
        if let Some(l) = label {
            auth.tenant.settings.check_label(l)?;
            // Nobody labels a file above their own cap.
            self.project_for(auth, project, Some(Some(l)), Action::ContentWrite, ctx)
                .await?;
        }
        let name = validate_name("name", name)?;
        let content_type: String = content_type
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        // The tenant's quota caps this upload too.
        let mut quota_left: Option<u64> = None;
        if let Some(quota) = auth.tenant.settings.storage_quota_bytes {
            let mut tx = self.store.tenant_read(&t).await?;
            let used = kura_store::usage::bytes_stored(&mut tx, &t).await?.max(0) as u64;
            drop(tx);
            if used >= quota {
                return Err(ServiceError::QuotaExceeded(format!(
                    "the tenant's storage quota of {quota} bytes is used up"
                )));
            }
            quota_left = Some(quota - used);
        }
        let mut blob = SealedBlobWriter::create(self, &t).await?;
        let (blob_id, key_version) = (blob.blob_id.clone(), blob.key_version);
        // The content hash runs on a blocking thread beside the encryption. Pieces are
        // reference-counted, not copied, and handed over about 1 MiB at a time (one
        // wake-up per batch, not per piece).
        let (hash_tx, mut hash_rx) = tokio::sync::mpsc::channel::<Vec<Bytes>>(8);
        let hasher = tokio::task::spawn_blocking(move || {
            let mut sha = kura_crypto::Sha256Stream::default();
            while let Some(batch) = hash_rx.blocking_recv() {
                for piece in batch {
                    sha.update(&piece);
                }
            }
            sha.finish_hex()
        });
        let mut to_hash: Vec<Bytes> = Vec::new();
        let mut to_hash_len = 0usize;
        let mut size: u64 = 0;
        while let Some(piece) = body.next().await {
            let piece = piece
                .map_err(|e| ServiceError::invalid("body", format!("upload interrupted: {e}")))?;
            size += piece.len() as u64;
            if quota_left.is_some_and(|left| size > left) {
                return Err(ServiceError::QuotaExceeded(
                    "this upload would exceed the tenant's storage quota".into(),
                ));
            }
            if size > max_bytes {
                return Err(ServiceError::TooLarge(format!(
                    "files are limited to {max_bytes} bytes"
                )));
            }
            blob.write(&piece).await?;
            to_hash_len += piece.len();
            to_hash.push(piece);
            if to_hash_len >= WRITE_BATCH {
                to_hash_len = 0;
                if hash_tx.send(std::mem::take(&mut to_hash)).await.is_err() {
                    return Err(ServiceError::internal("hash thread ended"));
                }
            }
        }
        if !to_hash.is_empty() && hash_tx.send(to_hash).await.is_err() {
            return Err(ServiceError::internal("hash thread ended"));
        }
        drop(hash_tx);
        blob.commit().await?;
        let sha256 = hasher
            .await
            .map_err(|_| ServiceError::internal("hash task failed"))?;

        let recorded = self
            .record_upload(
                auth,
                project,
                &name,
                &content_type,
                &blob_id,
                key_version,
                size,
                &sha256,
                label,
                ctx,
            )
            .await;
        if recorded.is_err() {
            let _ = self.blobs.delete(&t, &blob_id).await;
        }
        recorded
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn record_upload(
        &self,
        auth: &AuthContext,
        project: &ProjectId,
        name: &str,
        content_type: &str,
        blob_id: &str,
        key_version: i64,
        size: u64,
        sha256: &str,
        label: Option<&str>,
        ctx: &RequestCtx,
    ) -> Result<(File, Version)> {
        let t = &auth.tenant.id;
        // Concurrent uploads of one name race for the file row or the version number on
        // PostgreSQL; the loser retries and becomes the next version.
        for attempt in 0..5 {
            let now = self.now();
            let mut tx = self.store.tenant_tx(t).await?;
            // The quota is checked again where it counts: in the transaction that records
            // the upload, with the tenant's usage row locked, so concurrent uploads cannot
            // together overshoot it.
            if let Some(quota) = auth.tenant.settings.storage_quota_bytes {
                kura_store::usage::lock(&mut tx, t).await?;
                let used = kura_store::usage::bytes_stored(&mut tx, t).await?.max(0) as u64;
                if used.saturating_add(size) > quota {
                    return Err(ServiceError::QuotaExceeded(
                        "this upload would exceed the tenant's storage quota".into(),
                    ));
                }
            }
            let existing = files::find_by_name(&mut tx, t, project, name).await?;
            if let Some(f) = &existing {
                // The same rules as every other access to that file: above the caller's
                // cap (or otherwise out of reach) it is not theirs to add a version to,
                // relabel or bring back from the trash. The answer reveals nothing of it.
                let (_, r) = self
                    .project_as_resource(
                        &mut tx,
                        &auth.tenant.settings,
                        t,
                        project,
                        Some(f.labels.label.as_deref()),
                    )
                    .await?;
                if kura_domain::authorize(&auth.principal, Action::ContentWrite, &r)
                    != kura_domain::Decision::Allow
                {
                    drop(tx);
                    self.audit_alone(
                        t,
                        &Actor::User(&auth.principal),
                        ctx,
                        Event::new("access.denied")
                            .target("file", &f.id)
                            .result("denied")
                            .details(serde_json::json!({ "action": "file.upload", "reason": "same name as a file out of reach" })),
                    )
                    .await?;
                    return Err(ServiceError::Conflict(NAME_TAKEN.into()));
                }
            }
            let (file_id, version) = match &existing {
                Some(f) => {
                    // Uploading to a name in the trash brings the file back.
                    if f.deleted_at.is_some() {
                        files::set_deleted(&mut tx, t, &f.id, None).await?;
                    }
                    // A label given with a new version relabels the file in this transaction.
                    if let Some(l) = label {
                        let mut labels = f.labels.clone();
                        labels.label = Some(l.to_string());
                        files::set_labels(&mut tx, t, &f.id, &labels, now).await?;
                    }
                    (
                        f.id.clone(),
                        files::max_version(&mut tx, t, &f.id).await? + 1,
                    )
                }
                None => {
                    let f = File {
                        labels: kura_store::Labels {
                            label: label.map(str::to_string),
                            ..Default::default()
                        },
                        id: kura_domain::ids::new_id(),
                        project_id: project.clone(),
                        name: name.to_string(),
                        current_version: 1,
                        deleted_at: None,
                        created_by: Some(auth.user.id.clone()),
                        created_at: now,
                        updated_at: now,
                    };
                    match files::insert(&mut tx, t, &f).await {
                        Ok(()) => (f.id, 1),
                        Err(StoreError::Conflict(_)) if attempt < 4 => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
            };
            let v = Version {
                file_id: file_id.clone(),
                version,
                blob_id: blob_id.to_string(),
                key_version,
                size: size as i64,
                sha256: sha256.to_string(),
                content_type: content_type.to_string(),
                created_by: Some(auth.user.id.clone()),
                created_at: now,
            };
            match files::insert_version(&mut tx, t, &v).await {
                Ok(()) => {}
                Err(StoreError::Conflict(_)) if attempt < 4 => continue,
                Err(e) => return Err(e.into()),
            }
            files::set_current(&mut tx, t, &file_id, version, now).await?;
            kura_store::usage::add(&mut tx, t, 1, size as i64, 0, 0).await?;
            self.audit(&mut tx, t, &Actor::User(&auth.principal), ctx,
                Event::new("file.upload").target("file", &file_id).details(serde_json::json!({
                    "name": name, "project_id": project, "version": version, "size": size, "sha256": sha256,
                }))).await?;
            let file = files::get(&mut tx, t, &file_id).await?;
            match tx.commit().await {
                Ok(()) => return Ok((file, v)),
                Err(StoreError::Serialization) if attempt < 4 => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::Conflict(
            "too many concurrent uploads of this file; try again".into(),
        ))
    }
}
