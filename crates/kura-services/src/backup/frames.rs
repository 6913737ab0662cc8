//! Sealed frames: the position-bound framing of row snapshots (and the termination export's
//! spool), and the streaming snapshot writer and reader built on it.

use super::*;

/// Plaintext per sealed snapshot frame.
pub(crate) const SNAP_CHUNK: usize = 1024 * 1024;

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
pub(crate) struct SnapshotWriter<'a> {
    out: kura_store::blobs::PendingBlob,
    codec: FrameCodec<'a>,
    buf: Vec<u8>,
    chunks: u64,
    hasher: Sha256,
    bytes: i64,
}

impl<'a> SnapshotWriter<'a> {
    pub(crate) fn new(
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

    pub(crate) async fn line(&mut self, line: &[u8]) -> Result<()> {
        self.hasher.update(line);
        self.hasher.update(b"\n");
        self.buf.extend_from_slice(line);
        self.buf.push(b'\n');
        while self.buf.len() >= SNAP_CHUNK {
            self.frame(SNAP_CHUNK).await?;
        }
        Ok(())
    }

    pub(crate) async fn frame(&mut self, n: usize) -> Result<()> {
        let framed = self.codec.seal(self.chunks, &self.buf[..n])?;
        self.out.write(&framed).await.map_err(io)?;
        self.buf.drain(..n);
        self.chunks += 1;
        self.bytes += framed.len() as i64;
        Ok(())
    }

    /// (SHA-256 of the plaintext, frames, bytes written)
    pub(crate) async fn finish(mut self) -> Result<(String, u64, i64)> {
        if !self.buf.is_empty() || self.chunks == 0 {
            self.frame(self.buf.len()).await?;
        }
        self.out.commit().await.map_err(io)?;
        Ok((hex::encode(self.hasher.finalize()), self.chunks, self.bytes))
    }
}

/// Reads a snapshot back line by line, frame by frame; at the end, checks the frame count,
/// that nothing follows, and the plaintext hash against the manifest.
pub(crate) struct SnapshotReader {
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
    pub(crate) async fn open(
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

    pub(crate) fn altered(&self) -> String {
        format!("{}: snapshot does not decrypt (altered)", self.entry.slug)
    }

    /// The next plaintext piece into `carry`; false at the end.
    pub(crate) async fn fill(&mut self) -> std::result::Result<bool, String> {
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
    pub(crate) async fn next_line(
        &mut self,
    ) -> std::result::Result<Option<serde_json::Value>, String> {
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
