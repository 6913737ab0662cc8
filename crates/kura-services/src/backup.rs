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
use futures_util::StreamExt;
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

/// Plaintext per sealed snapshot frame.
const SNAP_CHUNK: usize = 1024 * 1024;

/// Sealed frames (backup snapshots, the termination export's spool): `u32 length ‖
/// field::seal(key, tenant, "{prefix}:{index}", version, chunk)`. Each frame is bound to
/// its stream and position: a frame moved, dropped or altered does not open.
pub(crate) struct FrameCodec<'a> {
    pub key: &'a kura_crypto::keys::SecretKey,
    pub tenant: &'a str,
    pub prefix: String,
    pub version: i64,
}

impl FrameCodec<'_> {
    /// Frame `index` of `chunk` (at most `SNAP_CHUNK` bytes), length prefix included.
    pub(crate) fn seal(&self, index: u64, chunk: &[u8]) -> Result<Vec<u8>> {
        let sealed = kura_crypto::field::seal(
            self.key,
            self.tenant,
            &format!("{}:{index}", self.prefix),
            self.version,
            chunk,
        )
        .map_err(|e| ServiceError::internal(e.to_string()))?;
        let mut framed = (sealed.len() as u32).to_be_bytes().to_vec();
        framed.extend_from_slice(&sealed);
        Ok(framed)
    }

    /// The sealed part's length from a frame's prefix; None if no frame is that long.
    pub(crate) fn length(prefix: [u8; 4]) -> Option<usize> {
        let n = u32::from_be_bytes(prefix) as usize;
        (n <= SNAP_CHUNK + 64).then_some(n)
    }

    /// The plaintext of frame `index`; None if it does not open.
    pub(crate) fn open(&self, index: u64, sealed: &[u8]) -> Option<Vec<u8>> {
        kura_crypto::field::open(
            self.key,
            self.tenant,
            &format!("{}:{index}", self.prefix),
            self.version,
            sealed,
        )
        .ok()
    }
}

/// Writes a snapshot as sealed frames under the tenant's data key, purpose
/// `backup:<generation>`; the signed manifest records how many there are. Memory: one chunk.
struct SnapshotWriter<'a> {
    out: kura_store::blobs::PendingBlob,
    codec: FrameCodec<'a>,
    buf: Vec<u8>,
    chunks: u64,
    hasher: Sha256,
    bytes: i64,
}

impl<'a> SnapshotWriter<'a> {
    fn new(
        out: kura_store::blobs::PendingBlob,
        key: &'a kura_crypto::keys::SecretKey,
        tenant: &'a str,
        generation: &str,
        version: i64,
    ) -> Self {
        SnapshotWriter {
            out,
            codec: FrameCodec {
                key,
                tenant,
                prefix: format!("backup:{generation}"),
                version,
            },
            buf: Vec::with_capacity(SNAP_CHUNK + 64 * 1024),
            chunks: 0,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    async fn line(&mut self, line: &[u8]) -> Result<()> {
        self.hasher.update(line);
        self.hasher.update(b"\n");
        self.buf.extend_from_slice(line);
        self.buf.push(b'\n');
        while self.buf.len() >= SNAP_CHUNK {
            self.frame(SNAP_CHUNK).await?;
        }
        Ok(())
    }

    async fn frame(&mut self, n: usize) -> Result<()> {
        let framed = self.codec.seal(self.chunks, &self.buf[..n])?;
        self.out.write(&framed).await.map_err(io)?;
        self.buf.drain(..n);
        self.chunks += 1;
        self.bytes += framed.len() as i64;
        Ok(())
    }

    /// (SHA-256 of the plaintext, frames, bytes written)
    async fn finish(mut self) -> Result<(String, u64, i64)> {
        if !self.buf.is_empty() || self.chunks == 0 {
            self.frame(self.buf.len()).await?;
        }
        self.out.commit().await.map_err(io)?;
        Ok((hex::encode(self.hasher.finalize()), self.chunks, self.bytes))
    }
}

/// Reads a snapshot back line by line, frame by frame; at the end, checks the frame count,
/// that nothing follows, and the plaintext hash against the manifest.
struct SnapshotReader {
    input: kura_store::blobs::BlobReader,
    key: kura_crypto::keys::SecretKey,
    entry: TenantEntry,
    generation: String,
    index: u64,
    carry: Vec<u8>,
    start: usize,
    hasher: Sha256,
    legacy_done: bool,
}

impl SnapshotReader {
    async fn open(
        store: &Blobs,
        generation: &str,
        entry: &TenantEntry,
        key: kura_crypto::keys::SecretKey,
    ) -> std::result::Result<Self, String> {
        let input = store
            .read_range(
                &gen_dir(generation),
                &format!("snap-{}", entry.tenant_id),
                0,
                None,
            )
            .await
            .map_err(|_| format!("{}: snapshot missing", entry.slug))?;
        Ok(SnapshotReader {
            input,
            key,
            entry: entry.clone(),
            generation: generation.to_string(),
            index: 0,
            carry: Vec::new(),
            start: 0,
            hasher: Sha256::new(),
            legacy_done: false,
        })
    }

    fn altered(&self) -> String {
        format!("{}: snapshot does not decrypt (altered)", self.entry.slug)
    }

    /// The next plaintext piece into `carry`; false at the end.
    async fn fill(&mut self) -> std::result::Result<bool, String> {
        self.carry.drain(..self.start);
        self.start = 0;
        if self.entry.snapshot_chunks == 0 {
            // kura-backup/1: the whole snapshot is one sealed object.
            if self.legacy_done {
                return Ok(false);
            }
            let mut sealed = Vec::new();
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = self.input.read(&mut buf).await.map_err(|e| e.to_string())?;
                if n == 0 {
                    break;
                }
                sealed.extend_from_slice(&buf[..n]);
            }
            let plain = kura_crypto::field::open(
                &self.key,
                &self.entry.tenant_id,
                &format!("backup:{}", self.generation),
                self.entry.key_version,
                &sealed,
            )
            .map_err(|_| self.altered())?;
            self.hasher.update(&plain);
            self.carry.extend_from_slice(&plain);
            self.legacy_done = true;
            return Ok(true);
        }
        if self.index == self.entry.snapshot_chunks {
            let mut extra = [0u8; 1];
            return match self.input.read(&mut extra).await {
                Ok(0) => Ok(false),
                _ => Err(format!("{}: snapshot has extra bytes", self.entry.slug)),
            };
        }
        let mut len = [0u8; 4];
        self.input
            .read_exact(&mut len)
            .await
            .map_err(|_| format!("{}: snapshot truncated", self.entry.slug))?;
        let Some(len) = FrameCodec::length(len) else {
            return Err(self.altered());
        };
        let mut sealed = vec![0u8; len];
        self.input
            .read_exact(&mut sealed)
            .await
            .map_err(|_| format!("{}: snapshot truncated", self.entry.slug))?;
        let codec = FrameCodec {
            key: &self.key,
            tenant: &self.entry.tenant_id,
            prefix: format!("backup:{}", self.generation),
            version: self.entry.key_version,
        };
        let Some(plain) = codec.open(self.index, &sealed) else {
            return Err(self.altered());
        };
        self.index += 1;
        self.hasher.update(&plain);
        self.carry.extend_from_slice(&plain);
        Ok(true)
    }

    /// The next row line (`{"t": table, "r": row}`), or None at the end — after which the
    /// hash has been checked.
    async fn next_line(&mut self) -> std::result::Result<Option<serde_json::Value>, String> {
        loop {
            if let Some(nl) = self.carry[self.start..].iter().position(|b| *b == b'\n') {
                let line = &self.carry[self.start..self.start + nl];
                self.start += nl + 1;
                if line.is_empty() {
                    continue;
                }
                return serde_json::from_slice(line)
                    .map(Some)
                    .map_err(|_| format!("{}: snapshot line unreadable", self.entry.slug));
            }
            if !self.fill().await? {
                if self.start < self.carry.len() {
                    return Err(format!("{}: snapshot ends mid-line", self.entry.slug));
                }
                let sha = hex::encode(std::mem::take(&mut self.hasher).finalize());
                if sha != self.entry.snapshot_sha256 {
                    return Err(format!("{}: snapshot hash differs", self.entry.slug));
                }
                return Ok(None);
            }
        }
    }
}

/// Copies one object between stores in 1 MiB pieces; returns its SHA-256 and size. With
/// `want` (the signed manifest's SHA-256) the copy is committed only if it matches;
/// otherwise nothing is written and the error is `InvalidData`.
async fn copy_object(
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

/// The SHA-256 of a stored object, read in pieces.
async fn object_sha(store: &Blobs, tenant: &TenantId, name: &str) -> std::io::Result<String> {
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

/// What the manifest says about one tenant.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TenantEntry {
    pub tenant_id: String,
    pub slug: String,
    pub key_version: i64,
    pub snapshot_sha256: String,
    /// Sealed frames of the snapshot (`kura-backup/2`); 0: one sealed object
    /// (`kura-backup/1`, still readable).
    #[serde(default)]
    pub snapshot_chunks: u64,
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
            let mut snap = SnapshotWriter::new(out, &key, t.id.as_str(), id, version);
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
            let (snapshot_sha256, snapshot_chunks, written) = snap.finish().await?;
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
                snapshot_chunks,
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
            format: "kura-backup/2".into(),
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
    fn vault_key(
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
    async fn existing_or_new_key(
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
    /// Blobs copied back because they were missing.
    pub blobs_restored: i64,
    /// Live blobs replaced because they differed from the backup (damaged in place).
    pub blobs_repaired: i64,
    /// Blobs of uploads the restore rolled back, removed.
    pub blobs_orphaned: i64,
}

/// At most this many ids per table are named in a restore's audit entry (all are counted).
const RESTORE_IDS_LISTED: usize = 200;

/// `a - b`, counted, with up to [`RESTORE_IDS_LISTED`] ids named.
fn id_diff(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (Blobs, std::path::PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("kura-snap-test-{}", kura_domain::ids::new_id()));
        (Blobs::Local(kura_store::blobs::LocalBlobs::new(&dir)), dir)
    }

    async fn write(
        store: &Blobs,
        key: &kura_crypto::keys::SecretKey,
        lines: &[String],
    ) -> TenantEntry {
        let out = store.create(&gen_dir("g1"), "snap-t1").await.unwrap();
        let mut w = SnapshotWriter::new(out, key, "t1", "g1", 1);
        for l in lines {
            w.line(l.as_bytes()).await.unwrap();
        }
        let (sha, chunks, _) = w.finish().await.unwrap();
        TenantEntry {
            tenant_id: "t1".into(),
            slug: "one".into(),
            key_version: 1,
            snapshot_sha256: sha,
            snapshot_chunks: chunks,
            rows: BTreeMap::new(),
            blobs: BTreeMap::new(),
        }
    }

    async fn read_all(
        store: &Blobs,
        key: &kura_crypto::keys::SecretKey,
        e: &TenantEntry,
    ) -> std::result::Result<Vec<serde_json::Value>, String> {
        let mut r = SnapshotReader::open(store, "g1", e, key.clone()).await?;
        let mut out = Vec::new();
        while let Some(v) = r.next_line().await? {
            out.push(v);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn snapshots_stream_in_sealed_frames_and_any_change_is_found() {
        let (store, dir) = store();
        let key = kura_crypto::keys::SecretKey::generate().unwrap();
        // About 3.5 MiB of rows: four frames, lines crossing frame boundaries.
        let lines: Vec<String> = (0..30_000)
            .map(|i| {
                serde_json::json!({ "t": "audit_events", "r": { "seq": i, "pad": "監査".repeat(20) } })
                    .to_string()
            })
            .collect();
        let e = write(&store, &key, &lines).await;
        assert!(e.snapshot_chunks >= 3, "{}", e.snapshot_chunks);
        let back = read_all(&store, &key, &e).await.unwrap();
        assert_eq!(back.len(), lines.len());
        assert_eq!(back[29_999]["r"]["seq"], 29_999);
        let path = dir.join("gen-g1").join("snap-t1");
        let good = std::fs::read(&path).unwrap();
        assert!(!String::from_utf8_lossy(&good).contains("監査"));
        // Another key, a dropped last frame, two frames swapped, one flipped bit, a tail.
        let other = kura_crypto::keys::SecretKey::generate().unwrap();
        assert!(read_all(&store, &other, &e).await.is_err());
        let frames = {
            let mut v = Vec::new();
            let mut at = 0;
            while at < good.len() {
                let n = u32::from_be_bytes(good[at..at + 4].try_into().unwrap()) as usize;
                v.push(good[at..at + 4 + n].to_vec());
                at += 4 + n;
            }
            v
        };
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("truncated", frames[..frames.len() - 1].concat()),
            ("swapped", {
                let mut f = frames.clone();
                f.swap(0, 1);
                f.concat()
            }),
            ("flipped", {
                let mut g = good.clone();
                g[good.len() / 2] ^= 1;
                g
            }),
            ("tail", [good.clone(), b"x".to_vec()].concat()),
        ];
        for (what, bytes) in cases {
            std::fs::write(&path, &bytes).unwrap();
            let err = read_all(&store, &key, &e).await.unwrap_err();
            assert!(err.starts_with("one:"), "{what}: {err}");
        }
        // A recorded hash that differs is found at the end.
        std::fs::write(&path, &good).unwrap();
        let mut wrong = e.clone();
        wrong.snapshot_sha256 = "00".repeat(32);
        assert!(read_all(&store, &key, &wrong)
            .await
            .unwrap_err()
            .contains("hash differs"));
        // A kura-backup/1 snapshot (one sealed object) still reads.
        let plain = format!("{}\n{}\n", lines[0], lines[1]);
        let sealed =
            kura_crypto::field::seal(&key, "t1", "backup:g1", 1, plain.as_bytes()).unwrap();
        std::fs::write(&path, sealed).unwrap();
        let legacy = TenantEntry {
            snapshot_chunks: 0,
            snapshot_sha256: sha_hex(plain.as_bytes()),
            ..e.clone()
        };
        assert_eq!(read_all(&store, &key, &legacy).await.unwrap().len(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
