//! Encrypted files (DATA-1, CRY-1): streaming upload into a project, versions, download of
//! the whole file or a byte range, delete. Plaintext never touches the disk: each chunk is
//! encrypted with the tenant's data key before it is written.

use crate::auth::AuthContext;
use crate::{Actor, Event, RequestCtx, Result, ServiceError, Services};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use kura_crypto::keys::SecretKey;
use kura_crypto::stream::{self, BlobContext, Decryptor, Encryptor};
use kura_domain::{validate_name, Action, ProjectId, Resource, TenantId};
use kura_store::files::{self, File, Version};
use kura_store::{keys, StoreError};
use std::collections::HashMap;
use std::sync::Mutex;

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

/// A byte range, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

pub type ByteStream = std::pin::Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// Writes the sealed part of `out` to the blob and keeps the chunk still being filled.
/// Ciphertext is written in batches of about 1 MiB (each write is a blocking-pool hop).
const WRITE_BATCH: usize = 1024 * 1024;

/// **The** way plaintext becomes a stored blob (uploads and re-encryption): a new blob
/// id, the tenant's data key of a version, chunked AES-256-GCM bound to tenant, blob and
/// key version, written in ~1 MiB batches. Dropped before [`SealedBlobWriter::commit`], it
/// leaves nothing behind.
pub(crate) struct SealedBlobWriter {
    pub(crate) blob_id: String,
    pub(crate) key_version: i64,
    pending: kura_store::blobs::PendingBlob,
    enc: Encryptor,
    out: Vec<u8>,
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
        let bctx = BlobContext {
            tenant_id: tenant.as_str(),
            blob_id: &blob_id,
            key_version,
        };
        let io = |e: std::io::Error| ServiceError::blob_io("blob write", e);
        let mut pending = services.blobs.create(tenant, &blob_id).await.map_err(io)?;
        let (enc, header) =
            Encryptor::new(&key, bctx).map_err(|e| ServiceError::internal(e.to_string()))?;
        pending.write(&header).await.map_err(io)?;
        Ok(Self {
            blob_id,
            key_version,
            pending,
            enc,
            out: Vec::with_capacity(WRITE_BATCH + stream::CHUNK + stream::TAG),
        })
    }

    /// Encrypts and writes (in batches) the next plaintext.
    pub(crate) async fn write(&mut self, plain: &[u8]) -> Result<()> {
        self.enc
            .update(plain, &mut self.out)
            .map_err(|e| ServiceError::internal(e.to_string()))?;
        if self.out.len() >= WRITE_BATCH {
            let n = self.enc.sealed_len(&self.out);
            if n > 0 {
                self.pending
                    .write(&self.out[..n])
                    .await
                    .map_err(|e| ServiceError::blob_io("blob write", e))?;
                self.out.drain(..n);
            }
        }
        Ok(())
    }

    /// Seals the last chunk and makes the blob durable and visible.
    pub(crate) async fn commit(mut self) -> Result<()> {
        let io = |e: std::io::Error| ServiceError::blob_io("blob write", e);
        self.enc
            .finish(&mut self.out)
            .map_err(|e| ServiceError::internal(e.to_string()))?;
        self.pending.write(&self.out).await.map_err(io)?;
        self.pending.commit().await.map_err(io)
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

    async fn project_for(
        &self,
        auth: &AuthContext,
        project: &ProjectId,
        item_label: Option<Option<&str>>,
        action: Action,
        ctx: &RequestCtx,
    ) -> Result<Resource> {
        let t = &auth.tenant.id;
        let mut tx = self.store.tenant_read(t).await?;
        let r = match self
            .project_as_resource(&mut tx, &auth.tenant.settings, t, project, item_label)
            .await
        {
            Ok((_, r)) => r,
            Err(ServiceError::NotFound) => {
                drop(tx);
                return Err(self
                    .not_found(&auth.principal, "project", project.as_str(), ctx)
                    .await);
            }
            Err(e) => return Err(e),
        };
        drop(tx);
        self.require(&auth.principal, action, &r, ctx).await?;
        Ok(r)
    }

    /// Keeps the files the principal may view: a file's own label, if it has one, decides
    /// its level; otherwise it has its project's (DATA-3).
    fn visible_files(&self, auth: &AuthContext, project: &Resource, list: Vec<File>) -> Vec<File> {
        let Resource::Project {
            tenant_id,
            folders,
            project_id,
            level,
        } = project
        else {
            return Vec::new();
        };
        list.into_iter()
            .filter(|f| {
                let level = match &f.labels.label {
                    Some(l) => auth.tenant.settings.label_rank(l),
                    None => *level,
                };
                let r = Resource::Project {
                    tenant_id: tenant_id.clone(),
                    folders: folders.clone(),
                    project_id: project_id.clone(),
                    level,
                };
                kura_domain::authorize(&auth.principal, Action::View, &r)
                    == kura_domain::Decision::Allow
            })
            .collect()
    }

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
    async fn record_upload(
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

    /// A live (not trashed) file the principal may act on.
    async fn load_file(
        &self,
        auth: &AuthContext,
        id: &str,
        action: Action,
        ctx: &RequestCtx,
    ) -> Result<File> {
        self.load_file_in(auth, id, action, false, ctx).await
    }

    /// A file that is (`trashed`) or is not in the trash; the other kind is not found.
    async fn load_file_in(
        &self,
        auth: &AuthContext,
        id: &str,
        action: Action,
        trashed: bool,
        ctx: &RequestCtx,
    ) -> Result<File> {
        let t = &auth.tenant.id;
        let mut tx = self.store.tenant_read(t).await?;
        let f = match files::get(&mut tx, t, id).await {
            Ok(f) if f.deleted_at.is_some() == trashed => f,
            Ok(_) => {
                drop(tx);
                return Err(ServiceError::NotFound);
            }
            Err(StoreError::NotFound) => {
                drop(tx);
                return Err(self.not_found(&auth.principal, "file", id, ctx).await);
            }
            Err(e) => return Err(e.into()),
        };
        drop(tx);
        // A file is as visible as its project, at its own label.
        self.project_for(
            auth,
            &f.project_id,
            Some(f.labels.label.as_deref()),
            action,
            ctx,
        )
        .await?;
        Ok(f)
    }

    /// A project's files matching `query` with their current sizes (the console's file
    /// table). `query.project` must be set.
    pub async fn list_files_with_sizes(
        &self,
        auth: &AuthContext,
        query: &FileSearch,
        ctx: &RequestCtx,
    ) -> Result<Vec<(FoundFile, i64)>> {
        let project = query
            .project
            .clone()
            .ok_or_else(|| ServiceError::invalid("project", "is required"))?;
        let (list, _) = self.search_files(auth, query, ctx).await?;
        let t = &auth.tenant.id;
        let mut tx = self.store.tenant_read(t).await?;
        let sizes = files::current_sizes(&mut tx, t, &project).await?;
        Ok(list
            .into_iter()
            .map(|f| {
                let size = sizes.get(&f.file.id).copied().unwrap_or(0);
                (f, size)
            })
            .collect())
    }

    /// Whether the caller may do `action` in a project — a question the console asks to
    /// decide what to show, so a "no" is not audited as a denied access.
    pub async fn may_in_project(
        &self,
        auth: &AuthContext,
        project: &ProjectId,
        action: Action,
    ) -> bool {
        let t = &auth.tenant.id;
        let Ok(mut tx) = self.store.tenant_read(t).await else {
            return false;
        };
        match self
            .project_as_resource(&mut tx, &auth.tenant.settings, t, project, None)
            .await
        {
            Ok((_, r)) => {
                kura_domain::authorize(&auth.principal, action, &r) == kura_domain::Decision::Allow
            }
            Err(_) => false,
        }
    }

    pub async fn file_info(
        &self,
        auth: &AuthContext,
        id: &str,
        ctx: &RequestCtx,
    ) -> Result<(File, Vec<Version>)> {
        let f = self.load_file(auth, id, Action::View, ctx).await?;
        let mut tx = self.store.tenant_read(&auth.tenant.id).await?;
        let versions = files::list_versions(&mut tx, &auth.tenant.id, id).await?;
        Ok((f, versions))
    }

    /// Opens a version (current by default) for download: the caller may view the file
    /// and the version exists. Nothing is recorded yet — [`Services::record_download`]
    /// records how the download ended.
    pub async fn open_download(
        &self,
        auth: &AuthContext,
        id: &str,
        version: Option<i64>,
        ctx: &RequestCtx,
    ) -> Result<Download> {
        let f = self.load_file(auth, id, Action::View, ctx).await?;
        let t = &auth.tenant.id;
        let mut tx = self.store.tenant_read(t).await?;
        let v = match files::get_version(&mut tx, t, id, version.unwrap_or(f.current_version)).await
        {
            Ok(v) => v,
            Err(StoreError::NotFound) => return Err(ServiceError::NotFound),
            Err(e) => return Err(e.into()),
        };
        Ok(Download {
            tenant: t.clone(),
            file: f,
            version: v,
        })
    }

    /// The content of a download opened with [`Services::open_download`] (whole, or a byte
    /// range) as a stream — the only public way to file content, so it is always behind a
    /// permission check.
    pub async fn download_content(
        &self,
        d: &Download,
        range: Option<ByteRange>,
    ) -> Result<ByteStream> {
        self.read_content(&d.tenant, &d.version, range).await
    }

    /// Records how a download ended, with the bytes that went out: `file.download`,
    /// `success` only when every byte asked for was sent (then it counts in the usage
    /// figures); `failure` with the outcome otherwise. An integrity failure is also its own
    /// event (`file.integrity_failure`), logged as an error and counted in
    /// `kura_integrity_failures_total`.
    pub async fn record_download(
        &self,
        auth: &AuthContext,
        f: &File,
        v: &Version,
        outcome: DownloadOutcome,
        bytes_sent: u64,
        ctx: &RequestCtx,
    ) -> Result<()> {
        let t = &auth.tenant.id;
        let mut tx = self.store.tenant_tx(t).await?;
        let ok = outcome == DownloadOutcome::Complete;
        if ok {
            kura_store::usage::add(&mut tx, t, 0, 0, 1, bytes_sent as i64).await?;
        }
        self.audit(
            &mut tx,
            t,
            &Actor::User(&auth.principal),
            ctx,
            Event::new("file.download")
                .target("file", &f.id)
                .result(if ok { "success" } else { "failure" })
                .details(serde_json::json!({
                    "name": f.name, "version": v.version, "size": bytes_sent,
                    "file_size": v.size, "outcome": outcome.as_str(),
                })),
        )
        .await?;
        if outcome == DownloadOutcome::IntegrityFailure {
            self.metrics.integrity_failed();
            tracing::error!(tenant = %t.as_str(), file = %f.id, version = v.version, blob = %v.blob_id, "stored file failed its integrity check");
            self.audit(
                &mut tx,
                t,
                &Actor::User(&auth.principal),
                ctx,
                Event::new("file.integrity_failure")
                    .target("file", &f.id)
                    .result("failure")
                    .details(serde_json::json!({
                        "name": f.name, "version": v.version, "bytes_sent": bytes_sent,
                    })),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Decrypts a version's content (or a byte range of it) as a stream. Chunk-aligned
    /// runs of about 1 MiB are read, decrypted in place and handed out as slices of the
    /// same buffer (no copies). The first run is checked before this returns, so a
    /// tampered blob fails with an error, not a broken response; a later bad chunk ends
    /// the stream with an error.
    pub(crate) async fn read_content(
        &self,
        tenant: &TenantId,
        v: &Version,
        range: Option<ByteRange>,
    ) -> Result<ByteStream> {
        let key = self.data_key(tenant, v.key_version).await?;
        let size = v.size as u64;
        let bctx = BlobContext {
            tenant_id: tenant.as_str(),
            blob_id: &v.blob_id,
            key_version: v.key_version,
        };
        let io = |e: std::io::Error| ServiceError::blob_io("blob read", e);
        let crypto = |e: kura_crypto::CryptoError| {
            tracing::error!(error = %e, "blob failed to decrypt");
            ServiceError::Tampered
        };
        let (file, dec, ct_left, skip, want) = match range {
            None => {
                let mut file = self
                    .blobs
                    .read_range(tenant, &v.blob_id, 0, None)
                    .await
                    .map_err(io)?;
                check_length(&file, size, &v.blob_id)?;
                let mut header = vec![0u8; stream::HEADER_LEN];
                file.read_exact(&mut header).await.map_err(io)?;
                let d = Decryptor::at_chunk(&key, bctx, size, &header, 0).map_err(crypto)?;
                let ct = stream::ciphertext_len(size) - stream::HEADER_LEN as u64;
                (file, d, ct, 0, size)
            }
            Some(r) => {
                let sp = stream::span(size, r.start, r.end)
                    .ok_or_else(|| ServiceError::invalid("range", "outside the file"))?;
                let mut header = vec![0u8; stream::HEADER_LEN];
                self.blobs
                    .read_range(tenant, &v.blob_id, 0, Some(stream::HEADER_LEN as u64))
                    .await
                    .map_err(io)?
                    .read_exact(&mut header)
                    .await
                    .map_err(io)?;
                let d = Decryptor::at_chunk(&key, bctx, size, &header, sp.first_chunk)
                    .map_err(crypto)?;
                let file = self
                    .blobs
                    .read_range(tenant, &v.blob_id, sp.ct_start, Some(sp.ct_end))
                    .await
                    .map_err(io)?;
                check_length(&file, size, &v.blob_id)?;
                (file, d, sp.ct_end - sp.ct_start, sp.skip, sp.len)
            }
        };
        struct St {
            file: kura_store::blobs::BlobReader,
            dec: Decryptor,
            ct_left: u64,
            skip: u64,
            want: u64,
            blob: String,
            ready: std::collections::VecDeque<Bytes>,
            started: bool,
        }
        /// Chunks read and decrypted per step (about 1 MiB).
        const RUN: usize = 16;
        /// Fills `ready` with the plaintext of the next run of chunks; false at the end.
        async fn refill(st: &mut St) -> std::io::Result<bool> {
            // (The first run is always read, so even an empty file's tag is checked.)
            if st.want == 0 && st.started {
                return Ok(false);
            }
            st.started = true;
            // The span read is chunk-aligned: every chunk is full-size but the blob's
            // last, which is what remains (the decryptor checks each length).
            let mut lens = Vec::with_capacity(RUN);
            let mut total = 0u64;
            while lens.len() < RUN && total < st.ct_left {
                let len = (st.ct_left - total).min((stream::CHUNK + stream::TAG) as u64);
                lens.push(len as usize);
                total += len;
            }
            if lens.is_empty() {
                return Err(std::io::Error::other(format!(
                    "blob {} ended early",
                    st.blob
                )));
            }
            let mut buf = vec![0u8; total as usize];
            st.file.read_exact(&mut buf).await?;
            st.ct_left -= total;
            let mut plain = Vec::with_capacity(lens.len());
            let mut at = 0usize;
            for len in lens {
                let n = st
                    .dec
                    .open_chunk_in_place(&mut buf[at..at + len])
                    .map_err(|e| {
                        // InvalidData: the stored bytes failed authentication.
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!("blob {}: {e}", st.blob),
                        )
                    })?;
                plain.push(at..at + n);
                at += len;
            }
            let buf = Bytes::from(buf);
            for mut r in plain {
                let drop_front = st.skip.min((r.end - r.start) as u64) as usize;
                st.skip -= drop_front as u64;
                r.start += drop_front;
                let take = st.want.min((r.end - r.start) as u64) as usize;
                r.end = r.start + take;
                st.want -= take as u64;
                if !r.is_empty() {
                    st.ready.push_back(buf.slice(r));
                }
            }
            Ok(true)
        }
        let mut st = St {
            file,
            dec,
            ct_left,
            skip,
            want,
            blob: v.blob_id.clone(),
            ready: std::collections::VecDeque::new(),
            started: false,
        };
        // Decrypt the first run now so that a tampered blob is an error, not a 200.
        if let Err(e) = refill(&mut st).await {
            tracing::error!(error = %e, "blob failed to decrypt");
            return Err(ServiceError::Tampered);
        }
        let body = futures_util::stream::unfold(st, |mut st| async move {
            loop {
                if let Some(b) = st.ready.pop_front() {
                    return Some((Ok(b), st));
                }
                match refill(&mut st).await {
                    Ok(true) => continue,
                    Ok(false) => return None,
                    Err(e) => {
                        tracing::error!(error = %e, "blob failed to decrypt mid-stream");
                        st.want = 0;
                        return Some((Err(e), st));
                    }
                }
            }
        });
        Ok(Box::pin(body))
    }

    /// Moves a file to the trash: it disappears from lists and downloads until restored
    /// or purged.
    pub async fn delete_file(&self, auth: &AuthContext, id: &str, ctx: &RequestCtx) -> Result<()> {
        let f = self.load_file(auth, id, Action::ContentWrite, ctx).await?;
        let t = &auth.tenant.id;
        let mut tx = self.store.tenant_tx(t).await?;
        files::set_deleted(&mut tx, t, id, Some(self.now())).await?;
        self.audit(
            &mut tx,
            t,
            &Actor::User(&auth.principal),
            ctx,
            Event::new("file.trash")
                .target("file", id)
                .details(serde_json::json!({ "name": f.name })),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The project's trash.
    pub async fn list_trash(
        &self,
        auth: &AuthContext,
        project: &ProjectId,
        ctx: &RequestCtx,
    ) -> Result<Vec<File>> {
        let r = self
            .project_for(auth, project, None, Action::ContentWrite, ctx)
            .await?;
        let mut tx = self.store.tenant_read(&auth.tenant.id).await?;
        let list = files::list_in_project(&mut tx, &auth.tenant.id, project, true).await?;
        Ok(self.visible_files(auth, &r, list))
    }

    /// Takes a file out of the trash.
    pub async fn restore_file(
        &self,
        auth: &AuthContext,
        id: &str,
        ctx: &RequestCtx,
    ) -> Result<File> {
        let f = self
            .load_file_in(auth, id, Action::ContentWrite, true, ctx)
            .await?;
        let t = &auth.tenant.id;
        let mut tx = self.store.tenant_tx(t).await?;
        files::set_deleted(&mut tx, t, id, None).await?;
        self.audit(
            &mut tx,
            t,
            &Actor::User(&auth.principal),
            ctx,
            Event::new("file.restore")
                .target("file", id)
                .details(serde_json::json!({ "name": f.name })),
        )
        .await?;
        let f = files::get(&mut tx, t, id).await?;
        tx.commit().await?;
        Ok(f)
    }

    /// Deletes a trashed file for good, with every version and blob.
    pub async fn purge_file(&self, auth: &AuthContext, id: &str, ctx: &RequestCtx) -> Result<()> {
        let f = self
            .load_file_in(auth, id, Action::ContentWrite, true, ctx)
            .await?;
        let t = &auth.tenant.id;
        let mut tx = self.store.tenant_tx(t).await?;
        let blobs = files::delete(&mut tx, t, id).await?;
        self.audit(
            &mut tx,
            t,
            &Actor::User(&auth.principal),
            ctx,
            Event::new("file.purge")
                .target("file", id)
                .details(serde_json::json!({ "name": f.name, "blobs": blobs.len() })),
        )
        .await?;
        tx.commit().await?;
        for b in blobs {
            if let Err(e) = self.blobs.delete(t, &b).await {
                tracing::warn!(error = %e, blob = %b, "could not remove a purged file's blob");
            }
        }
        Ok(())
    }

    /// Makes an old version current again, as a new version (history is never rewritten).
    pub async fn restore_version(
        &self,
        auth: &AuthContext,
        id: &str,
        version: i64,
        ctx: &RequestCtx,
    ) -> Result<(File, Version)> {
        self.load_file(auth, id, Action::ContentWrite, ctx).await?;
        let t = &auth.tenant.id;
        let mut tx = self.store.tenant_tx(t).await?;
        let old = match files::get_version(&mut tx, t, id, version).await {
            Ok(v) => v,
            Err(StoreError::NotFound) => return Err(ServiceError::NotFound),
            Err(e) => return Err(e.into()),
        };
        let now = self.now();
        let v = Version {
            version: files::max_version(&mut tx, t, id).await? + 1,
            created_by: Some(auth.user.id.clone()),
            created_at: now,
            ..old
        };
        files::insert_version(&mut tx, t, &v).await?;
        files::set_current(&mut tx, t, id, v.version, now).await?;
        self.audit(
            &mut tx,
            t,
            &Actor::User(&auth.principal),
            ctx,
            Event::new("file.version.restore")
                .target("file", id)
                .details(serde_json::json!({ "from_version": version, "new_version": v.version })),
        )
        .await?;
        let f = files::get(&mut tx, t, id).await?;
        tx.commit().await?;
        Ok((f, v))
    }
}

/// What `PATCH /files/{id}` changes; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct FileUpdate {
    pub name: Option<String>,
    pub project: Option<ProjectId>,
    pub labels: Option<kura_store::Labels>,
}

/// A stored blob must be exactly as long as the ciphertext of its recorded size: bytes
/// appended (or cut) are an integrity failure, even where the chunks read still verify.
fn check_length(r: &kura_store::blobs::BlobReader, size: u64, blob: &str) -> Result<()> {
    match r.object_size() {
        Some(n) if n != stream::ciphertext_len(size) => {
            tracing::error!(
                blob,
                stored = n,
                expected = stream::ciphertext_len(size),
                "blob length differs from its record"
            );
            Err(ServiceError::Tampered)
        }
        _ => Ok(()),
    }
}

/// A download the caller may make (from [`Services::open_download`]): the file and the
/// version; its content comes from [`Services::download_content`].
#[derive(Debug, Clone)]
pub struct Download {
    tenant: TenantId,
    pub file: File,
    pub version: Version,
}

/// How a download ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadOutcome {
    /// Every byte asked for was sent.
    Complete,
    /// The client went away before the end.
    Aborted,
    /// The range asked for lies outside the file (416).
    RangeNotSatisfiable,
    /// The stored blob failed its integrity check (altered, truncated, extended).
    IntegrityFailure,
    /// Reading the blob failed otherwise (storage unavailable).
    Error,
}

impl DownloadOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Aborted => "aborted",
            Self::RangeNotSatisfiable => "range_not_satisfiable",
            Self::IntegrityFailure => "integrity_failure",
            Self::Error => "error",
        }
    }
}

/// The answer to an upload or a move onto a name that a file the caller cannot reach
/// already has: the same as for any taken name, and nothing about that file.
pub const NAME_TAKEN: &str = "a file with this name exists in the project";

impl Services {
    /// Renames a file, moves it to another project, and/or relabels it — in one
    /// transaction. Moving needs content-write on both projects; the file must stay within
    /// the caller's label cap where it lands, and a new label may not exceed the caller's
    /// cap (nobody can hide a file from themselves). Each change is audited.
    pub async fn update_file(
        &self,
        auth: &AuthContext,
        id: &str,
        up: FileUpdate,
        ctx: &RequestCtx,
    ) -> Result<File> {
        let f = self.load_file(auth, id, Action::ContentWrite, ctx).await?;
        let t = &auth.tenant.id;
        let labels = up.labels.unwrap_or_else(|| f.labels.clone());
        self.check_labels(&auth.tenant.settings, &labels)?;
        let name = match &up.name {
            Some(n) => validate_name("name", n)?,
            None => f.name.clone(),
        };
        let project = up.project.clone().unwrap_or_else(|| f.project_id.clone());
        if project != f.project_id || labels.label != f.labels.label {
            self.project_for(
                auth,
                &project,
                Some(labels.label.as_deref()),
                Action::ContentWrite,
                ctx,
            )
            .await?;
        }
        let mut tx = self.store.tenant_tx(t).await?;
        let now = self.now();
        let actor = Actor::User(&auth.principal);
        if name != f.name || project != f.project_id {
            files::rename_move(&mut tx, t, id, &project, &name, now).await?;
            let action = if project != f.project_id {
                "file.move"
            } else {
                "file.rename"
            };
            self.audit(
                &mut tx,
                t,
                &actor,
                ctx,
                Event::new(action)
                    .target("file", id)
                    .details(serde_json::json!({
                        "from": { "project_id": f.project_id, "name": f.name },
                        "to": { "project_id": project, "name": name },
                    })),
            )
            .await?;
        }
        if labels != f.labels {
            files::set_labels(&mut tx, t, id, &labels, now).await?;
            let action = if f.labels.label != labels.label {
                "label.change"
            } else {
                "file.tags"
            };
            self.audit(
                &mut tx,
                t,
                &actor,
                ctx,
                Event::new(action)
                    .target("file", id)
                    .details(serde_json::json!({ "before": f.labels, "after": labels })),
            )
            .await?;
        }
        let updated = files::get(&mut tx, t, id).await?;
        tx.commit().await?;
        Ok(updated)
    }
}

impl Services {
    /// Tenant admin: usage figures (files, versions, bytes stored, uploads, downloads).
    pub async fn usage(
        &self,
        auth: &AuthContext,
        ctx: &RequestCtx,
    ) -> Result<kura_store::usage::Usage> {
        let t = &auth.tenant.id;
        self.require(
            &auth.principal,
            Action::AuditRead,
            &kura_domain::Resource::Tenant(t.clone()),
            ctx,
        )
        .await?;
        let mut tx = self.store.tenant_read(t).await?;
        Ok(kura_store::usage::get(&mut tx, t).await?)
    }
}

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
}

impl Services {
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
}

impl Services {
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

/// A file listing or search (`GET /projects/{id}/files`, `GET /search`).
#[derive(Debug, Clone, Default)]
pub struct FileSearch {
    /// One project (`None`: every project the caller can see).
    pub project: Option<ProjectId>,
    /// Case-insensitive part of the name.
    pub q: Option<String>,
    /// An exact tag.
    pub tag: Option<String>,
    /// The effective label (the file's own, else inherited from its project and folders).
    pub label: Option<String>,
    /// Custom attributes that must all match exactly.
    pub attributes: Vec<(String, String)>,
    pub sort: Option<files::FileSort>,
    pub descending: bool,
    /// The opaque cursor of the previous page's `next`.
    pub after: Option<String>,
    pub limit: i64,
}

/// A file found by a search, with where it is and its effective label.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FoundFile {
    #[serde(flatten)]
    pub file: File,
    pub effective_label: String,
}

impl Services {
    /// One page of files, keyset-paginated: name and tag are filtered in SQL; label cap,
    /// effective label and attributes per file, here. Files the caller may not see are
    /// skipped without a trace (DATA-3): the page is filled from further rows, and the
    /// cursor comes from the rows examined, so hidden files never stop paging.
    pub async fn search_files(
        &self,
        auth: &AuthContext,
        query: &FileSearch,
        ctx: &RequestCtx,
    ) -> Result<(Vec<FoundFile>, Option<String>)> {
        let t = &auth.tenant.id;
        let settings = &auth.tenant.settings;
        if let Some(l) = &query.label {
            settings.check_label(l)?;
        }
        if let Some(p) = &query.project {
            self.project_for(auth, p, None, Action::View, ctx).await?;
        }
        let sort = query.sort.unwrap_or(files::FileSort::Name);
        let bad_cursor = || ServiceError::invalid("after", "is not a cursor from this listing");
        let mut after = match query.after.as_deref() {
            None | Some("") => None,
            Some(c) => {
                let raw = hex::decode(c).map_err(|_| bad_cursor())?;
                let text = String::from_utf8(raw).map_err(|_| bad_cursor())?;
                let (k, id) = text.split_once('\0').ok_or_else(bad_cursor)?;
                Some((k.to_string(), id.to_string()))
            }
        };
        let limit = query.limit.clamp(1, 1000);
        let mut out: Vec<FoundFile> = Vec::new();
        let mut projects: HashMap<String, Option<Resource>> = HashMap::new();
        let mut tx = self.store.tenant_read(t).await?;
        let mut exhausted = false;
        // Bounded work per request: at most 10 batches are examined.
        for _ in 0..10 {
            let batch = files::page_files(
                &mut tx,
                t,
                &files::FileQuery {
                    project: query.project.as_ref(),
                    name_contains: query.q.as_deref(),
                    tag: query.tag.as_deref(),
                    sort,
                    descending: query.descending,
                    after: after.clone(),
                    limit: (limit * 2).min(1000),
                },
            )
            .await?;
            let n = batch.len() as i64;
            for f in batch {
                after = Some((files::sort_key(&f, sort), f.id.clone()));
                let pid = f.project_id.as_str().to_string();
                if !projects.contains_key(&pid) {
                    let r = match self
                        .project_as_resource(&mut tx, settings, t, &f.project_id, None)
                        .await
                    {
                        Ok((_, r)) => Some(r),
                        Err(ServiceError::NotFound) => None,
                        Err(e) => return Err(e),
                    };
                    projects.insert(pid.clone(), r);
                }
                let Some(Some(Resource::Project {
                    tenant_id,
                    folders,
                    project_id,
                    level,
                })) = projects.get(&pid)
                else {
                    continue;
                };
                let level = match &f.labels.label {
                    Some(l) => settings.label_rank(l),
                    None => *level,
                };
                let r = Resource::Project {
                    tenant_id: tenant_id.clone(),
                    folders: folders.clone(),
                    project_id: project_id.clone(),
                    level,
                };
                if kura_domain::authorize(&auth.principal, Action::View, &r)
                    != kura_domain::Decision::Allow
                {
                    continue;
                }
                let effective = settings
                    .labels
                    .get(level as usize)
                    .cloned()
                    .unwrap_or_default();
                if query.label.as_ref().is_some_and(|l| *l != effective) {
                    continue;
                }
                if !query
                    .attributes
                    .iter()
                    .all(|(k, v)| f.labels.attribute_is(k, v))
                {
                    continue;
                }
                out.push(FoundFile {
                    file: f,
                    effective_label: effective,
                });
                if out.len() as i64 == limit {
                    break;
                }
            }
            if out.len() as i64 == limit {
                break;
            }
            if n < (limit * 2).min(1000) {
                exhausted = true;
                break;
            }
        }
        let next = (!exhausted)
            .then(|| after.map(|(k, id)| hex::encode(format!("{k}\0{id}"))))
            .flatten();
        Ok((out, next))
    }
}
