//! Row snapshots: the streaming writer (through the one sealed-blob writer, format
//! `kura-backup/3`) and the reader, which also reads the sealed frames of `kura-backup/2`
//! and the single sealed object of `kura-backup/1`.

use super::*;
use crate::files::SealedBlobWriter;

/// Plaintext per sealed snapshot frame.
pub(crate) const SNAP_CHUNK: usize = 1024 * 1024;

/// The sealed frames of `kura-backup/2` snapshots (read only): `u32 length ‖
/// field::seal(key, tenant, "{prefix}:{index}", version, chunk)`. Each frame is bound to
/// its stream and position: a frame moved, dropped or altered does not open.
pub(crate) struct FrameCodec<'a> {
    pub key: &'a kura_crypto::keys::SecretKey,
    pub tenant: &'a str,
    pub prefix: String,
    pub version: i64,
}

impl FrameCodec<'_> {
    /// Frame `index` of `chunk` (at most `SNAP_CHUNK` bytes), length prefix included
    /// (how `kura-backup/2` wrote them; kept to test that they still read).
    #[cfg(test)]
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

/// The blob id a generation's snapshot of a tenant is sealed under: the snapshot is bound
/// to its tenant, generation and key version and opens nowhere else.
fn snapshot_blob_id(generation: &str) -> String {
    format!("backup:{generation}")
}

/// Writes a snapshot (`kura-backup/3`): JSON lines through the [`SealedBlobWriter`] under
/// the tenant's data key; the signed manifest records the plaintext length and SHA-256.
/// Memory: one write batch.
pub(crate) struct SnapshotWriter {
    blob: SealedBlobWriter,
    hasher: Sha256,
}

impl SnapshotWriter {
    pub(crate) async fn new(
        out: kura_store::blobs::PendingBlob,
        key: &kura_crypto::keys::SecretKey,
        tenant: &str,
        generation: &str,
        version: i64,
    ) -> Result<Self> {
        Ok(SnapshotWriter {
            blob: SealedBlobWriter::into_pending(
                out,
                key,
                tenant,
                snapshot_blob_id(generation),
                version,
            )
            .await?,
            hasher: Sha256::new(),
        })
    }

    pub(crate) async fn line(&mut self, line: &[u8]) -> Result<()> {
        self.hasher.update(line);
        self.hasher.update(b"\n");
        self.blob.write(line).await?;
        self.blob.write(b"\n").await
    }

    /// (SHA-256 of the plaintext, plaintext length, bytes written)
    pub(crate) async fn finish(self) -> Result<(String, u64, i64)> {
        let (plain, stored) = self.blob.commit().await?;
        Ok((hex::encode(self.hasher.finalize()), plain, stored as i64))
    }
}

/// How a snapshot is sealed, from its manifest entry.
enum Sealing {
    /// `kura-backup/3`: the blob stream, plaintext length known.
    Stream(Box<kura_crypto::stream::Decryptor>),
    /// `kura-backup/2`: position-bound frames.
    Frames,
    /// `kura-backup/1`: one sealed object.
    Whole { done: bool },
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
    sealing: Sealing,
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
        let sealing = match (entry.snapshot_len, entry.snapshot_chunks) {
            (Some(len), _) => Sealing::Stream(Box::new(
                kura_crypto::stream::Decryptor::new(
                    &key,
                    kura_crypto::stream::BlobContext {
                        tenant_id: &entry.tenant_id,
                        blob_id: &snapshot_blob_id(generation),
                        key_version: entry.key_version,
                    },
                    len,
                )
                .map_err(|e| e.to_string())?,
            )),
            (None, 0) => Sealing::Whole { done: false },
            (None, _) => Sealing::Frames,
        };
        Ok(SnapshotReader {
            input,
            key,
            entry: entry.clone(),
            generation: generation.to_string(),
            index: 0,
            carry: Vec::new(),
            start: 0,
            hasher: Sha256::new(),
            sealing,
        })
    }

    pub(crate) fn altered(&self) -> String {
        format!("{}: snapshot does not decrypt (altered)", self.entry.slug)
    }

    /// The next plaintext piece into `carry`; false at the end.
    pub(crate) async fn fill(&mut self) -> std::result::Result<bool, String> {
        self.carry.drain(..self.start);
        self.start = 0;
        if let Sealing::Stream(dec) = &mut self.sealing {
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = self.input.read(&mut buf).await.map_err(|e| e.to_string())?;
                if n == 0 {
                    let Sealing::Stream(dec) =
                        std::mem::replace(&mut self.sealing, Sealing::Whole { done: true })
                    else {
                        unreachable!("matched above")
                    };
                    return match dec.finish() {
                        Ok(()) => Ok(false),
                        Err(_) => Err(format!("{}: snapshot truncated", self.entry.slug)),
                    };
                }
                let before = self.carry.len();
                dec.update(&buf[..n], &mut self.carry)
                    .map_err(|e| match e {
                        kura_crypto::CryptoError::Corrupt(w) if w.contains("after the last") => {
                            format!("{}: snapshot has extra bytes", self.entry.slug)
                        }
                        _ => format!("{}: snapshot does not decrypt (altered)", self.entry.slug),
                    })?;
                if self.carry.len() > before {
                    self.hasher.update(&self.carry[before..]);
                    return Ok(true);
                }
            }
        }
        if let Sealing::Whole { done } = self.sealing {
            // kura-backup/1: the whole snapshot is one sealed object.
            if done {
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
            self.sealing = Sealing::Whole { done: true };
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
        let mut w = SnapshotWriter::new(out, key, "t1", "g1", 1).await.unwrap();
        for l in lines {
            w.line(l.as_bytes()).await.unwrap();
        }
        let (sha, len, _) = w.finish().await.unwrap();
        TenantEntry {
            tenant_id: "t1".into(),
            slug: "one".into(),
            key_version: 1,
            snapshot_sha256: sha,
            snapshot_len: Some(len),
            snapshot_chunks: 0,
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

    fn lines() -> Vec<String> {
        // About 3.5 MiB of rows: many chunks, lines crossing chunk boundaries.
        (0..30_000)
            .map(|i| {
                serde_json::json!({ "t": "audit_events", "r": { "seq": i, "pad": "監査".repeat(20) } })
                    .to_string()
            })
            .collect()
    }

    #[tokio::test]
    async fn snapshots_are_sealed_like_every_blob_and_any_change_is_found() {
        let (store, dir) = store();
        let key = kura_crypto::keys::SecretKey::generate().unwrap();
        let lines = lines();
        let e = write(&store, &key, &lines).await;
        let back = read_all(&store, &key, &e).await.unwrap();
        assert_eq!(back.len(), lines.len());
        assert_eq!(back[29_999]["r"]["seq"], 29_999);
        let path = dir.join("gen-g1").join("snap-t1");
        let good = std::fs::read(&path).unwrap();
        assert!(!String::from_utf8_lossy(&good).contains("監査"));
        // The same format as every blob: the stream decrypts it as tenant t1's blob
        // "backup:g1" under key version 1, and as nothing else.
        let plain_len = e.snapshot_len.unwrap();
        let ctx = |tenant_id, blob_id, key_version| kura_crypto::stream::BlobContext {
            tenant_id,
            blob_id,
            key_version,
        };
        assert_eq!(
            kura_crypto::stream::decrypt_all(&key, ctx("t1", "backup:g1", 1), plain_len, &good)
                .unwrap()
                .len() as u64,
            plain_len
        );
        for other in [
            ctx("t2", "backup:g1", 1),
            ctx("t1", "backup:g2", 1),
            ctx("t1", "backup:g1", 2),
        ] {
            assert!(kura_crypto::stream::decrypt_all(&key, other, plain_len, &good).is_err());
        }
        // Another key, a dropped last chunk, two chunks swapped, one flipped bit, a tail.
        let other = kura_crypto::keys::SecretKey::generate().unwrap();
        assert!(read_all(&store, &other, &e).await.is_err());
        let stride = kura_crypto::stream::CHUNK + kura_crypto::stream::TAG;
        let h = kura_crypto::stream::HEADER_LEN;
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("truncated", good[..good.len() - 100].to_vec()),
            ("last chunk dropped", good[..h + 3 * stride].to_vec()),
            ("swapped", {
                let mut g = good.clone();
                let first = good[h..h + stride].to_vec();
                g.copy_within(h + stride..h + 2 * stride, h);
                g[h + stride..h + 2 * stride].copy_from_slice(&first);
                g
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
        // A recorded hash or length that differs is found.
        std::fs::write(&path, &good).unwrap();
        let mut wrong = e.clone();
        wrong.snapshot_sha256 = "00".repeat(32);
        assert!(read_all(&store, &key, &wrong)
            .await
            .unwrap_err()
            .contains("hash differs"));
        let mut wrong = e.clone();
        wrong.snapshot_len = Some(plain_len - 1);
        assert!(read_all(&store, &key, &wrong).await.is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn older_snapshot_formats_still_read_and_their_changes_are_found() {
        let (store, dir) = store();
        let key = kura_crypto::keys::SecretKey::generate().unwrap();
        let lines = lines();
        let plain: Vec<u8> = lines
            .iter()
            .flat_map(|l| [l.as_bytes(), b"\n"].concat())
            .collect();
        let path = dir.join("gen-g1").join("snap-t1");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        // kura-backup/2: position-bound frames of 1 MiB.
        let codec = FrameCodec {
            key: &key,
            tenant: "t1",
            prefix: "backup:g1".into(),
            version: 1,
        };
        let frames: Vec<Vec<u8>> = plain
            .chunks(SNAP_CHUNK)
            .enumerate()
            .map(|(i, c)| codec.seal(i as u64, c).unwrap())
            .collect();
        assert!(frames.len() >= 3);
        let good = frames.concat();
        std::fs::write(&path, &good).unwrap();
        let e = TenantEntry {
            tenant_id: "t1".into(),
            slug: "one".into(),
            key_version: 1,
            snapshot_sha256: sha_hex(&plain),
            snapshot_len: None,
            snapshot_chunks: frames.len() as u64,
            rows: BTreeMap::new(),
            blobs: BTreeMap::new(),
        };
        assert_eq!(read_all(&store, &key, &e).await.unwrap().len(), lines.len());
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
        // kura-backup/1: one sealed object.
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
