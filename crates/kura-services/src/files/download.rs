//! Downloads: a permission-checked handle, decryption as a stream (ranges, length and integrity checks), the recorded outcome.

use super::*;

/// A byte range, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

pub type ByteStream = std::pin::Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// A download's content, as [`Services::download_content`] opens it.
pub enum Content {
    /// All of it, already read, decrypted and checked (what fits in the first run of
    /// chunks, about 1 MiB): its frames in order and their total length. Nothing more can
    /// fail, so the download can be recorded before the first byte goes out.
    Whole { frames: Vec<Bytes>, len: u64 },
    /// A larger file: decrypted as it is sent; a bad chunk later ends it with an error.
    Stream(ByteStream),
}

impl Content {
    /// As one stream, whichever it is.
    pub fn into_stream(self) -> ByteStream {
        match self {
            Content::Whole { frames, .. } => {
                Box::pin(futures_util::stream::iter(frames.into_iter().map(Ok)))
            }
            Content::Stream(s) => s,
        }
    }
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

impl Services {
    /// Opens a version (current by default) for download: the caller may view the file
    /// and the version exists. Nothing is recorded yet — [`Services::record_download`]
    /// records how the download ended.
    pub async fn open_download(
        &self,
        auth: &AuthContext,
        id: &kura_domain::FileId,
        version: Option<i64>,
        ctx: &RequestCtx,
    ) -> Result<Download> {
        let (f, v) = self
            .load_file_and_version(auth, id.as_str(), Action::View, false, Some(version), ctx)
            .await?;
        let Some(v) = v else {
            return Err(ServiceError::NotFound);
        };
        Ok(Download {
            tenant: auth.tenant.id.clone(),
            file: f,
            version: v,
        })
    }

    /// The content of a download opened with [`Services::open_download`] (whole, or a byte
    /// range): in memory when it is small, a stream otherwise — the only public way to
    /// file content, so it is always behind a permission check.
    pub async fn download_content(
        &self,
        d: &Download,
        range: Option<ByteRange>,
    ) -> Result<Content> {
        self.open_content(&d.tenant, &d.version, range).await
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
        let ok = outcome == DownloadOutcome::Complete;
        let actor = Actor::User(&auth.principal);
        let mut events = vec![self.new_event(
            &actor,
            ctx,
            Event::new("file.download")
                .target("file", &f.id)
                .result(if ok { "success" } else { "failure" })
                .details(serde_json::json!({
                    "name": f.name, "version": v.version, "size": bytes_sent,
                    "file_size": v.size, "outcome": outcome.as_str(),
                })),
        )];
        if outcome == DownloadOutcome::IntegrityFailure {
            self.metrics.integrity_failed();
            tracing::error!(tenant = %t.as_str(), file = %f.id, version = v.version, blob = %v.blob_id, "stored file failed its integrity check");
            events.push(
                self.new_event(
                    &actor,
                    ctx,
                    Event::new("file.integrity_failure")
                        .target("file", &f.id)
                        .result("failure")
                        .details(serde_json::json!({
                            "name": f.name, "version": v.version, "bytes_sent": bytes_sent,
                        })),
                ),
            );
        }
        // Committed with the other downloads' records of the moment (one transaction, one
        // sync); answered once durable.
        kura_store::records::record(
            &self.store,
            kura_store::records::Record {
                tenant: t.clone(),
                usage: if ok {
                    kura_store::usage::Delta::download(bytes_sent as i64)
                } else {
                    kura_store::usage::Delta::default()
                },
                events,
            },
        )
        .await?;
        Ok(())
    }

    /// Decrypts a version's content (or a byte range of it) as a stream. Chunk-aligned
    /// runs of about 1 MiB are read into a buffer each and decrypted where they lie, each
    /// chunk's plaintext sent from there (no copy between the read, decryption and the
    /// socket). The first run is checked before this returns, so a
    /// tampered blob fails with an error, not a broken response; a later bad chunk ends
    /// the stream with an error.
    pub(crate) async fn read_content(
        &self,
        tenant: &TenantId,
        v: &Version,
        range: Option<ByteRange>,
    ) -> Result<ByteStream> {
        Ok(self.open_content(tenant, v, range).await?.into_stream())
    }

    /// [`Services::read_content`], with content that fits in the first run returned whole.
    async fn open_content(
        &self,
        tenant: &TenantId,
        v: &Version,
        range: Option<ByteRange>,
    ) -> Result<Content> {
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
            /// Frames decrypted and not sent yet: slices of one run's buffer.
            ready: std::collections::VecDeque<Bytes>,
            started: bool,
        }
        /// Chunks read and decrypted per step (about 1 MiB).
        const RUN: usize = 16;
        /// Reads the next run of chunks into a buffer of its own, decrypts each chunk where
        /// it lies and queues the plaintext of each as a frame (slices of that buffer, the
        /// tags between them left out): the bytes the kernel read are the bytes hyper
        /// writes, with no copy in between. False at the end.
        async fn refill(st: &mut St) -> std::io::Result<bool> {
            // (The first run is always read, so even an empty file's tag is checked.)
            if st.want == 0 && st.started {
                return Ok(false);
            }
            st.started = true;
            // The span read is chunk-aligned: every chunk is full-size but the blob's
            // last, which is what remains (the decryptor checks each length).
            let mut lens = [0usize; RUN];
            let mut count = 0;
            let mut total = 0u64;
            while count < RUN && total < st.ct_left {
                let len = (st.ct_left - total).min((stream::CHUNK + stream::TAG) as u64);
                lens[count] = len as usize;
                count += 1;
                total += len;
            }
            if count == 0 {
                return Err(std::io::Error::other(format!(
                    "blob {} ended early",
                    st.blob
                )));
            }
            let mut run = st.file.read_owned(total as usize).await?;
            st.ct_left -= total;
            let mut plain = Vec::with_capacity(count);
            let mut at = 0usize;
            for &len in &lens[..count] {
                let n = st
                    .dec
                    .open_chunk_in_place(&mut run[at..at + len])
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
            let run = Bytes::from(run);
            for r in plain {
                let drop_front = st.skip.min(r.len() as u64) as usize;
                st.skip -= drop_front as u64;
                let take = st.want.min((r.len() - drop_front) as u64) as usize;
                st.want -= take as u64;
                if take > 0 {
                    let from = r.start + drop_front;
                    st.ready.push_back(run.slice(from..from + take));
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
        // Everything was in the first run (small files): no task, the frames as they are.
        if st.ct_left == 0 && st.want == 0 {
            let frames: Vec<Bytes> = st.ready.into();
            let len = frames.iter().map(|b| b.len() as u64).sum();
            return Ok(Content::Whole { frames, len });
        }
        // Larger files: the next run is read and decrypted by a task of its own while
        // hyper writes the frames of this one (the two overlap on a second core). The
        // queue holds one run's frames, so the task is at most one run (~1 MiB) ahead and
        // stops when the client goes away (the receiver is dropped).
        use tracing::Instrument;
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(RUN);
        tokio::spawn(
            async move {
                loop {
                    while let Some(b) = st.ready.pop_front() {
                        if tx.send(Ok(b)).await.is_err() {
                            return;
                        }
                    }
                    match refill(&mut st).await {
                        Ok(true) => {}
                        Ok(false) => return,
                        Err(e) => {
                            tracing::error!(error = %e, "blob failed to decrypt mid-stream");
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    }
                }
            }
            .in_current_span(),
        );
        let body = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Ok(Content::Stream(Box::pin(body)))
    }
}
