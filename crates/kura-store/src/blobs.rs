//! Blob storage: a local directory or an S3 bucket, behind one interface ([`Blobs`]).
//! Blobs are immutable and already encrypted when they get here; the object name is
//! `<tenant>/<blob id>` (under a prefix on S3).
//!
//! A write is acknowledged only when it is durable and complete:
//! - local: temp file, fsync, rename into place, fsync the directory;
//! - S3: one `PUT` for a small blob, else a multipart upload that becomes visible only
//!   when it is completed. A write dropped before [`PendingBlob::commit`] leaves nothing
//!   (the temp file is removed, the multipart upload aborted).

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use kura_domain::TenantId;
use object_store::{ObjectStore, ObjectStoreExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where blobs live.
#[derive(Debug, Clone)]
pub enum Blobs {
    Local(LocalBlobs),
    S3(S3Blobs),
}

/// One stored object, as listed for the orphan sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub tenant: String,
    /// The blob id, or for a local temp file `.<blob id>.tmp`.
    pub name: String,
    /// Last modified, ms since the epoch.
    pub modified: i64,
}

impl Listed {
    pub fn is_temp(&self) -> bool {
        self.name.starts_with('.') && self.name.ends_with(".tmp")
    }
}

fn safe(component: &str) -> std::io::Result<&str> {
    if !component.is_empty()
        && component
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Ok(component)
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "bad blob path component",
        ))
    }
}

impl Blobs {
    /// Starts writing a new blob.
    pub async fn create(&self, tenant: &TenantId, blob_id: &str) -> std::io::Result<PendingBlob> {
        match self {
            Blobs::Local(l) => Ok(PendingBlob::Local(l.create(tenant, blob_id).await?)),
            Blobs::S3(s) => Ok(PendingBlob::S3(s.create(tenant, blob_id)?)),
        }
    }

    /// Reads bytes `start..end` of a blob (`end: None` = to its end).
    pub async fn read_range(
        &self,
        tenant: &TenantId,
        blob_id: &str,
        start: u64,
        end: Option<u64>,
    ) -> std::io::Result<BlobReader> {
        match self {
            Blobs::Local(l) => l.read_range(tenant, blob_id, start, end).await,
            Blobs::S3(s) => s.read_range(tenant, blob_id, start, end).await,
        }
    }

    /// Removes a blob; a missing one is not an error.
    pub async fn delete(&self, tenant: &TenantId, blob_id: &str) -> std::io::Result<()> {
        match self {
            Blobs::Local(l) => l.delete(tenant, blob_id).await,
            Blobs::S3(s) => s.delete(tenant, blob_id).await,
        }
    }

    /// Every stored object (local temp files included).
    pub async fn list_all(&self) -> std::io::Result<Vec<Listed>> {
        match self {
            Blobs::Local(l) => l.list_all().await,
            Blobs::S3(s) => s.list_all().await,
        }
    }

    /// Removes one object by its listing.
    pub async fn remove_listed(&self, item: &Listed) -> std::io::Result<()> {
        match self {
            Blobs::Local(l) => l.remove_listed(item).await,
            Blobs::S3(s) => {
                s.delete(&TenantId::from_string(safe(&item.tenant)?), &item.name)
                    .await
            }
        }
    }

    /// A whole object in memory (small objects: backup manifests and vault copies).
    pub async fn read_all(&self, tenant: &TenantId, name: &str) -> std::io::Result<Vec<u8>> {
        let mut r = self.read_range(tenant, name, 0, None).await?;
        let mut all = Vec::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = r.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        Ok(all)
    }

    /// Writes a whole object (replacing one of the same name).
    pub async fn write_all(
        &self,
        tenant: &TenantId,
        name: &str,
        data: &[u8],
    ) -> std::io::Result<()> {
        let mut p = self.create(tenant, name).await?;
        for chunk in data.chunks(1024 * 1024) {
            p.write(chunk).await?;
        }
        p.commit().await
    }

    /// The raw stored bytes of every object, for tests that look at what is at rest.
    pub async fn raw_objects(&self) -> std::io::Result<Vec<(Listed, Vec<u8>)>> {
        let mut out = Vec::new();
        for item in self.list_all().await? {
            if item.is_temp() {
                continue;
            }
            let all = self
                .read_all(&TenantId::from_string(&item.tenant), &item.name)
                .await?;
            out.push((item, all));
        }
        Ok(out)
    }

    /// Checks that the store is reachable (start-up and `/readyz`).
    pub async fn check(&self) -> std::io::Result<()> {
        match self {
            Blobs::Local(l) => private_dir(&l.root).await,
            Blobs::S3(s) => s.check().await,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Blobs::Local(l) => format!("local directory {}", l.root.display()),
            Blobs::S3(s) => format!("S3 bucket {} (prefix {:?})", s.bucket, s.prefix),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Reading

/// Bytes of one blob being read.
pub enum BlobReader {
    Local {
        /// The open file, positioned at the next byte to read (`None` only while a blocking
        /// read has it, or after such a read was cancelled or failed to come back).
        file: Option<std::fs::File>,
        /// Bytes of the range not read from the file yet.
        left: u64,
        /// The whole object's size in the store.
        object_size: u64,
        /// Bytes read ahead when the file was opened (in the same blocking call: a small
        /// blob is read whole with its open), handed out before the file is read again.
        ahead: Ahead,
    },
    S3 {
        stream: BoxStream<'static, object_store::Result<Bytes>>,
        pending: Bytes,
        /// The whole object's size in the store (`None` for an empty range not fetched).
        object_size: Option<u64>,
    },
}

/// Read with the open of a local blob (a file this small is read whole at once).
const READ_AHEAD: u64 = 64 * 1024;

/// Bytes read ahead of a local blob, handed out from the front.
pub struct Ahead {
    buf: Vec<u8>,
    at: usize,
}

impl Ahead {
    /// Up to `max` of the bytes not handed out yet (empty when none are left).
    fn take(&mut self, max: usize) -> &[u8] {
        let n = max.min(self.buf.len() - self.at);
        let out = &self.buf[self.at..self.at + n];
        self.at += n;
        out
    }

    /// The whole buffer, if nothing of it was handed out and it is exactly `len` long.
    fn take_whole(&mut self, len: usize) -> Option<Vec<u8>> {
        (self.at == 0 && self.buf.len() == len && len > 0).then(|| {
            self.at = len;
            std::mem::take(&mut self.buf)
        })
    }
}

/// A local read at most this long per blocking call of [`BlobReader::read`].
const LOCAL_READ_MAX: usize = 2 * 1024 * 1024;

/// Reads up to `len` bytes of `file` on a blocking thread, into a new buffer (no zeroing,
/// no copy beyond the kernel's); the file comes back with them.
async fn read_local(
    file: &mut Option<std::fs::File>,
    left: &mut u64,
    len: usize,
) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let len = (len as u64).min(*left);
    if len == 0 {
        return Ok(Vec::new());
    }
    let f = file
        .take()
        .ok_or_else(|| std::io::Error::other("an earlier read of this blob did not finish"))?;
    let (f, got) = tokio::task::spawn_blocking(move || {
        let mut buf = Vec::with_capacity(len as usize);
        let got = (&f).take(len).read_to_end(&mut buf).map(|_| buf);
        (f, got)
    })
    .await
    .map_err(|e| std::io::Error::other(format!("blob read task: {e}")))?;
    *file = Some(f);
    let buf = got?;
    *left -= buf.len() as u64;
    Ok(buf)
}

impl BlobReader {
    /// The size of the whole stored object, whatever range is read: what a reader compares
    /// with the length it expects, so that bytes appended to a blob are noticed.
    pub fn object_size(&self) -> Option<u64> {
        match self {
            BlobReader::Local { object_size, .. } => Some(*object_size),
            BlobReader::S3 { object_size, .. } => *object_size,
        }
    }

    /// Reads up to `buf.len()` bytes; 0 at the end.
    pub async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            BlobReader::Local {
                file, left, ahead, ..
            } => {
                let early = ahead.take(buf.len());
                if !early.is_empty() {
                    buf[..early.len()].copy_from_slice(early);
                    return Ok(early.len());
                }
                let got = read_local(file, left, buf.len().min(LOCAL_READ_MAX)).await?;
                buf[..got.len()].copy_from_slice(&got);
                Ok(got.len())
            }
            BlobReader::S3 {
                stream, pending, ..
            } => {
                while pending.is_empty() {
                    match stream.next().await {
                        Some(Ok(b)) => *pending = b,
                        Some(Err(e)) => return Err(s3_io(e)),
                        None => return Ok(0),
                    }
                }
                let n = buf.len().min(pending.len());
                buf[..n].copy_from_slice(&pending.split_to(n));
                Ok(n)
            }
        }
    }

    /// Fills `buf` completely, or fails with `UnexpectedEof`.
    pub async fn read_exact(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        let mut at = 0;
        while at < buf.len() {
            let n = self.read(&mut buf[at..]).await?;
            if n == 0 {
                return Err(early_end());
            }
            at += n;
        }
        Ok(())
    }

    /// The next `len` bytes in a buffer of their own, or `UnexpectedEof`. A local blob is
    /// read by the kernel straight into it (what a download decrypts in place and sends).
    pub async fn read_owned(&mut self, len: usize) -> std::io::Result<Vec<u8>> {
        let buf = match self {
            BlobReader::Local {
                file, left, ahead, ..
            } => match ahead.take_whole(len) {
                Some(whole) => whole,
                None => {
                    let mut buf = Vec::new();
                    buf.extend_from_slice(ahead.take(len));
                    if buf.is_empty() {
                        read_local(file, left, len).await?
                    } else {
                        if buf.len() < len {
                            buf.extend_from_slice(&read_local(file, left, len - buf.len()).await?);
                        }
                        buf
                    }
                }
            },
            BlobReader::S3 { .. } => {
                let mut buf = vec![0u8; len];
                self.read_exact(&mut buf).await?;
                buf
            }
        };
        if buf.len() != len {
            return Err(early_end());
        }
        Ok(buf)
    }
}

fn early_end() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "blob ended early")
}

// ---------------------------------------------------------------------------------------
// Writing

/// A blob being written; dropped without [`PendingBlob::commit`], it leaves nothing.
pub enum PendingBlob {
    Local(LocalPending),
    S3(S3Pending),
}

impl PendingBlob {
    pub async fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            PendingBlob::Local(p) => p.write(data).await,
            PendingBlob::S3(p) => p.write(data).await,
        }
    }

    /// An empty buffer for [`PendingBlob::write_vec`] (on a local blob, one its writer is
    /// done with, when there is one).
    pub fn spare_buffer(&mut self, capacity: usize) -> Vec<u8> {
        match self {
            PendingBlob::Local(p) => p.spare_buffer(capacity),
            PendingBlob::S3(_) => Vec::with_capacity(capacity),
        }
    }

    /// Writes `buf`, taking it: a local blob hands it to its writer thread without a copy.
    pub async fn write_vec(&mut self, buf: Vec<u8>) -> std::io::Result<()> {
        match self {
            PendingBlob::Local(p) => p.write_vec(buf).await,
            PendingBlob::S3(p) => p.write(&buf).await,
        }
    }

    pub fn written(&self) -> u64 {
        match self {
            PendingBlob::Local(p) => p.written,
            PendingBlob::S3(p) => p.written,
        }
    }

    /// Makes the blob durable and visible; only then is the write acknowledged.
    pub async fn commit(self) -> std::io::Result<()> {
        match self {
            PendingBlob::Local(p) => p.commit().await,
            PendingBlob::S3(p) => p.commit().await,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Local directory

#[derive(Debug, Clone)]
pub struct LocalBlobs {
    root: PathBuf,
}

/// A local blob being written: the bytes go to a thread of its own that writes them to
/// the temporary file (up to [`LOCAL_IN_FLIGHT`] buffers queued), so the uploader goes on
/// encrypting while the kernel copies the previous batch into the page cache.
pub struct LocalPending {
    writer: Option<LocalWriter>,
    tmp: PathBuf,
    dest: PathBuf,
    written: u64,
}

/// Buffers queued for a local blob's writer thread.
const LOCAL_IN_FLIGHT: usize = 4;

enum LocalWrite {
    Data(Vec<u8>),
    /// Everything is written: fsync and end.
    Finish,
}

struct LocalWriter {
    queue: tokio::sync::mpsc::Sender<LocalWrite>,
    /// Buffers the thread has written, for reuse.
    spare: tokio::sync::mpsc::Receiver<Vec<u8>>,
    /// The thread: Ok(true) after `Finish` (written and synced), Ok(false) when the
    /// queue closed without it (an abandoned blob), or the first error.
    done: tokio::task::JoinHandle<std::io::Result<bool>>,
}

impl LocalWriter {
    fn start(mut file: std::fs::File) -> LocalWriter {
        use std::io::Write;
        let (queue, mut rx) = tokio::sync::mpsc::channel::<LocalWrite>(LOCAL_IN_FLIGHT);
        let (back, spare) = tokio::sync::mpsc::channel::<Vec<u8>>(LOCAL_IN_FLIGHT + 1);
        let done = tokio::task::spawn_blocking(move || {
            while let Some(msg) = rx.blocking_recv() {
                match msg {
                    LocalWrite::Data(buf) => {
                        file.write_all(&buf)?;
                        let _ = back.try_send(buf);
                    }
                    LocalWrite::Finish => {
                        file.sync_all()?;
                        return Ok(true);
                    }
                }
            }
            Ok(false)
        });
        LocalWriter { queue, spare, done }
    }

    /// The thread's error after it stopped taking buffers.
    async fn failed(self) -> std::io::Error {
        match self.done.await {
            Ok(Err(e)) => e,
            Ok(Ok(_)) => std::io::Error::other("blob writer ended early"),
            Err(e) => std::io::Error::other(e),
        }
    }
}

/// Creates `dir` (and its parents) for this process's user only: mode 0700.
async fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = tokio::fs::DirBuilder::new();
    b.recursive(true).mode(0o700);
    b.create(dir).await
}

impl LocalBlobs {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path(&self, tenant: &TenantId, blob_id: &str) -> std::io::Result<PathBuf> {
        Ok(self.root.join(safe(tenant.as_str())?).join(safe(blob_id)?))
    }

    async fn create(&self, tenant: &TenantId, blob_id: &str) -> std::io::Result<LocalPending> {
        let dest = self.path(tenant, blob_id)?;
        let dir = dest
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.root.clone());
        private_dir(&dir).await?;
        let tmp = dir.join(format!(".{blob_id}.tmp"));
        // Owner only: 0700 directories, 0600 files.
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .await?
            .into_std()
            .await;
        Ok(LocalPending {
            writer: Some(LocalWriter::start(file)),
            tmp,
            dest,
            written: 0,
        })
    }

    async fn read_range(
        &self,
        tenant: &TenantId,
        blob_id: &str,
        start: u64,
        end: Option<u64>,
    ) -> std::io::Result<BlobReader> {
        let path = self.path(tenant, blob_id)?;
        // Opened, measured and the first bytes read in one blocking call (one hand-off to
        // a blocking thread for a small download, not one per step).
        let (file, object_size, left, ahead) = tokio::task::spawn_blocking(move || {
            use std::io::{Read, Seek};
            let mut f = std::fs::File::open(path)?;
            let object_size = f.metadata()?.len();
            if start > 0 {
                f.seek(std::io::SeekFrom::Start(start))?;
            }
            // What lies past the end of the object is not there to read.
            let left = end
                .unwrap_or(object_size)
                .min(object_size)
                .saturating_sub(start);
            let first = left.min(READ_AHEAD);
            let mut ahead = Vec::with_capacity(first as usize);
            (&f).take(first).read_to_end(&mut ahead)?;
            let left = left - ahead.len() as u64;
            Ok::<_, std::io::Error>((f, object_size, left, ahead))
        })
        .await
        .map_err(|e| std::io::Error::other(format!("blob open task: {e}")))??;
        Ok(BlobReader::Local {
            file: Some(file),
            left,
            object_size,
            ahead: Ahead { buf: ahead, at: 0 },
        })
    }

    async fn delete(&self, tenant: &TenantId, blob_id: &str) -> std::io::Result<()> {
        match tokio::fs::remove_file(self.path(tenant, blob_id)?).await {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    async fn list_all(&self) -> std::io::Result<Vec<Listed>> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            let Ok(tenants) = std::fs::read_dir(&root) else {
                return Ok(out);
            };
            for t in tenants.flatten() {
                if !t.path().is_dir() {
                    continue;
                }
                let tenant = t.file_name().to_string_lossy().to_string();
                for f in std::fs::read_dir(t.path())?.flatten() {
                    let modified = f
                        .metadata()
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
                        .map(|d| d.as_millis() as i64)
                        .unwrap_or(0);
                    out.push(Listed {
                        tenant: tenant.clone(),
                        name: f.file_name().to_string_lossy().to_string(),
                        modified,
                    });
                }
            }
            Ok(out)
        })
        .await
        .map_err(std::io::Error::other)?
    }

    async fn remove_listed(&self, item: &Listed) -> std::io::Result<()> {
        let file = match item
            .name
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(".tmp"))
        {
            Some(id) => format!(".{}.tmp", safe(id)?),
            None => safe(&item.name)?.to_string(),
        };
        tokio::fs::remove_file(self.root.join(safe(&item.tenant)?).join(file)).await
    }
}

impl LocalPending {
    async fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        let mut buf = self.spare_buffer(data.len());
        buf.extend_from_slice(data);
        self.write_vec(buf).await
    }

    /// An empty buffer, one the writer thread is done with when there is one.
    fn spare_buffer(&mut self, capacity: usize) -> Vec<u8> {
        match self.writer.as_mut().and_then(|w| w.spare.try_recv().ok()) {
            Some(mut b) => {
                b.clear();
                b
            }
            None => Vec::with_capacity(capacity),
        }
    }

    async fn write_vec(&mut self, buf: Vec<u8>) -> std::io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let len = buf.len() as u64;
        let Some(w) = &mut self.writer else {
            return Err(std::io::Error::other("blob writer already ended"));
        };
        if w.queue.send(LocalWrite::Data(buf)).await.is_err() {
            return match self.writer.take() {
                Some(w) => Err(w.failed().await),
                None => Err(std::io::Error::other("blob writer already ended")),
            };
        }
        self.written += len;
        Ok(())
    }

    /// Everything written and fsynced (by the writer thread), renamed into place, the
    /// directory fsynced.
    async fn commit(mut self) -> std::io::Result<()> {
        let Some(w) = self.writer.take() else {
            return Err(std::io::Error::other("blob writer already ended"));
        };
        let finished = w.queue.send(LocalWrite::Finish).await.is_ok();
        let LocalWriter { queue, done, .. } = w;
        drop(queue);
        match done.await {
            Ok(Ok(true)) if finished => {}
            Ok(Err(e)) => return Err(e),
            Ok(Ok(_)) => return Err(std::io::Error::other("blob writer ended early")),
            Err(e) => return Err(std::io::Error::other(e)),
        }
        tokio::fs::rename(&self.tmp, &self.dest).await?;
        if let Some(dir) = self.dest.parent() {
            tokio::fs::File::open(dir).await?.sync_all().await?;
        }
        self.tmp = PathBuf::new();
        Ok(())
    }
}

impl Drop for LocalPending {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

// ---------------------------------------------------------------------------------------
// S3

/// How to reach an S3 bucket.
#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    pub bucket: String,
    /// Object names start with `<prefix>/` (empty: none).
    pub prefix: String,
    pub region: String,
    /// For S3-compatible servers (MinIO, Garage, moto...). None: AWS.
    pub endpoint: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Allow a plain-http endpoint (loopback tests and private networks only).
    pub allow_http: bool,
    /// A request fails after this long without a byte from the endpoint (not a limit on
    /// the whole transfer).
    pub read_timeout: std::time::Duration,
}

#[derive(Clone)]
pub struct S3Blobs {
    store: Arc<dyn ObjectStore>,
    bucket: String,
    prefix: String,
}

impl std::fmt::Debug for S3Blobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Blobs")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// Parts of a multipart upload (S3 wants at least 5 MiB but the last).
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts in flight per upload; memory per upload is about `(PARTS_IN_FLIGHT + 1) × PART_SIZE`.
const PARTS_IN_FLIGHT: usize = 2;

fn s3_io(e: object_store::Error) -> std::io::Error {
    use object_store::client::{HttpError, HttpErrorKind};
    use std::io::ErrorKind;
    match e {
        object_store::Error::NotFound { .. } => {
            std::io::Error::new(ErrorKind::NotFound, "blob not found")
        }
        other => {
            // A timeout or a failed connection (after the retries) means the store is
            // unavailable, not that something is broken here: say so in the error kind.
            let mut kind = ErrorKind::Other;
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&other);
            while let Some(err) = source {
                if let Some(h) = err.downcast_ref::<HttpError>() {
                    kind = match h.kind() {
                        HttpErrorKind::Timeout => ErrorKind::TimedOut,
                        HttpErrorKind::Connect
                        | HttpErrorKind::Request
                        | HttpErrorKind::Interrupted => ErrorKind::ConnectionAborted,
                        _ => ErrorKind::Other,
                    };
                    break;
                }
                source = err.source();
            }
            std::io::Error::new(kind, format!("S3: {other}"))
        }
    }
}

impl S3Blobs {
    pub fn new(s: &S3Settings) -> std::io::Result<Self> {
        use object_store::aws::AmazonS3Builder;
        use object_store::{ClientOptions, RetryConfig};
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&s.bucket)
            .with_region(&s.region)
            // Transient failures are retried a few times, within seconds, not minutes: a
            // request is waiting.
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: std::time::Duration::from_secs(15),
                ..Default::default()
            })
            .with_client_options(
                ClientOptions::new()
                    .with_allow_http(s.allow_http)
                    .with_connect_timeout(std::time::Duration::from_secs(5))
                    // Large transfers stream for as long as they take (no total timeout),
                    // but an endpoint that stops answering fails a request after
                    // `read_timeout` without a byte instead of stalling it forever.
                    .with_read_timeout(s.read_timeout)
                    .with_timeout_disabled(),
            );
        if let Some(e) = &s.endpoint {
            b = b.with_endpoint(e);
        }
        if let Some(k) = &s.access_key_id {
            b = b.with_access_key_id(k);
        }
        if let Some(k) = &s.secret_access_key {
            b = b.with_secret_access_key(k);
        }
        let store = b
            .build()
            .map_err(|e| std::io::Error::other(format!("S3 configuration: {e}")))?;
        let prefix = s.prefix.trim_matches('/').to_string();
        if !prefix.is_empty() {
            for part in prefix.split('/') {
                safe(part)?;
            }
        }
        Ok(Self {
            store: Arc::new(store),
            bucket: s.bucket.clone(),
            prefix,
        })
    }

    fn key(&self, tenant: &str, blob_id: &str) -> std::io::Result<object_store::path::Path> {
        let rel = format!("{}/{}", safe(tenant)?, safe(blob_id)?);
        let full = if self.prefix.is_empty() {
            rel
        } else {
            format!("{}/{rel}", self.prefix)
        };
        object_store::path::Path::parse(full).map_err(std::io::Error::other)
    }

    /// Checks that the bucket can be listed.
    async fn check(&self) -> std::io::Result<()> {
        let prefix = object_store::path::Path::from(self.prefix.as_str());
        let mut l = self.store.list(Some(&prefix));
        if let Some(Err(e)) = l.next().await {
            return Err(s3_io(e));
        }
        Ok(())
    }

    fn create(&self, tenant: &TenantId, blob_id: &str) -> std::io::Result<S3Pending> {
        Ok(S3Pending {
            store: self.store.clone(),
            key: self.key(tenant.as_str(), blob_id)?,
            buf: Vec::new(),
            upload: None,
            written: 0,
        })
    }

    async fn read_range(
        &self,
        tenant: &TenantId,
        blob_id: &str,
        start: u64,
        end: Option<u64>,
    ) -> std::io::Result<BlobReader> {
        let key = self.key(tenant.as_str(), blob_id)?;
        let range = match end {
            Some(e) if e <= start => {
                return Ok(BlobReader::S3 {
                    stream: futures_util::stream::empty().boxed(),
                    pending: Bytes::new(),
                    object_size: None,
                })
            }
            Some(e) => Some(object_store::GetRange::Bounded(start..e)),
            None if start > 0 => Some(object_store::GetRange::Offset(start)),
            None => None,
        };
        let opts = object_store::GetOptions {
            range,
            ..Default::default()
        };
        let got = self.store.get_opts(&key, opts).await.map_err(s3_io)?;
        let object_size = Some(got.meta.size);
        Ok(BlobReader::S3 {
            stream: got.into_stream(),
            pending: Bytes::new(),
            object_size,
        })
    }

    async fn delete(&self, tenant: &TenantId, blob_id: &str) -> std::io::Result<()> {
        match self
            .store
            .delete(&self.key(tenant.as_str(), blob_id)?)
            .await
        {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(s3_io(e)),
        }
    }

    async fn list_all(&self) -> std::io::Result<Vec<Listed>> {
        let prefix = object_store::path::Path::from(self.prefix.as_str());
        let mut l = self.store.list(if self.prefix.is_empty() {
            None
        } else {
            Some(&prefix)
        });
        let skip = if self.prefix.is_empty() {
            0
        } else {
            self.prefix.split('/').count()
        };
        let mut out = Vec::new();
        while let Some(meta) = l.next().await {
            let meta = meta.map_err(s3_io)?;
            let parts: Vec<String> = meta
                .location
                .parts()
                .skip(skip)
                .map(|p| p.as_ref().to_string())
                .collect();
            // Only `<tenant>/<blob>` objects are Kura's; anything else is left alone.
            if let [tenant, name] = parts.as_slice() {
                if safe(tenant).is_ok() && safe(name).is_ok() {
                    out.push(Listed {
                        tenant: tenant.clone(),
                        name: name.clone(),
                        modified: meta.last_modified.timestamp_millis(),
                    });
                }
            }
        }
        Ok(out)
    }
}

pub struct S3Pending {
    store: Arc<dyn ObjectStore>,
    key: object_store::path::Path,
    /// Bytes not yet handed to the upload (until the first part is full).
    buf: Vec<u8>,
    upload: Option<object_store::WriteMultipart>,
    written: u64,
}

impl S3Pending {
    async fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.written += data.len() as u64;
        if let Some(up) = &mut self.upload {
            up.wait_for_capacity(PARTS_IN_FLIGHT).await.map_err(s3_io)?;
            up.write(data);
            return Ok(());
        }
        self.buf.extend_from_slice(data);
        if self.buf.len() >= PART_SIZE {
            // Large enough for a multipart upload: start one.
            let mp = self.store.put_multipart(&self.key).await.map_err(s3_io)?;
            let mut up = object_store::WriteMultipart::new_with_chunk_size(mp, PART_SIZE);
            up.write(&std::mem::take(&mut self.buf));
            self.upload = Some(up);
        }
        Ok(())
    }

    async fn commit(mut self) -> std::io::Result<()> {
        match self.upload.take() {
            Some(up) => {
                up.finish().await.map_err(s3_io)?;
            }
            None => {
                let body = std::mem::take(&mut self.buf);
                self.store
                    .put(&self.key, body.into())
                    .await
                    .map_err(s3_io)?;
            }
        }
        Ok(())
    }
}

impl Drop for S3Pending {
    fn drop(&mut self) {
        // An upload that was not completed is aborted, so its parts are not kept.
        if let Some(up) = self.upload.take() {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    if let Err(e) = up.abort().await {
                        tracing::warn!(error = %e, "aborting an S3 multipart upload failed");
                    }
                });
            }
        }
    }
}
