//! Chunked streaming AEAD for blobs (CRY-1), the STREAM construction over AES-256-GCM.
//!
//! Layout: `"KRB1" ‖ nonce prefix (7 random bytes) ‖ chunk₀ ‖ chunk₁ ‖ …`, each chunk the
//! AES-256-GCM ciphertext of up to [`CHUNK`] plaintext bytes plus a 16-byte tag. Chunk `i`
//! uses nonce `prefix ‖ i (u32 BE) ‖ last-flag`, and every chunk's associated data binds the
//! tenant id, blob id and key version. So a flipped byte, a dropped or reordered chunk, a
//! truncated blob (the last-flag is missing), extra bytes, or a blob copied under another
//! tenant or id all fail to decrypt — never return altered bytes. The plaintext length is
//! known from the database, so each chunk's size is exact and any byte range can be
//! decrypted from its first chunk on.

use crate::keys::SecretKey;
use crate::CryptoError;
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce};

/// Plaintext bytes per chunk.
pub const CHUNK: usize = 64 * 1024;
/// Authentication tag per chunk.
pub const TAG: usize = 16;
const MAGIC: &[u8; 4] = b"KRB1";
/// Bytes before the first chunk.
pub const HEADER_LEN: usize = 4 + 7;

/// What a blob's ciphertext is bound to.
#[derive(Debug, Clone, Copy)]
pub struct BlobContext<'a> {
    pub tenant_id: &'a str,
    pub blob_id: &'a str,
    pub key_version: i64,
}

impl BlobContext<'_> {
    fn aad(&self) -> Vec<u8> {
        let mut a = b"kura-blob-v1".to_vec();
        for part in [self.tenant_id, self.blob_id] {
            a.extend((part.len() as u32).to_be_bytes());
            a.extend(part.as_bytes());
        }
        a.extend(self.key_version.to_be_bytes());
        a
    }
}

fn nonce(prefix: &[u8; 7], counter: u64, last: bool) -> Result<Nonce, CryptoError> {
    let counter = u32::try_from(counter).map_err(|_| CryptoError::Corrupt("blob too large"))?;
    let mut n = [0u8; 12];
    n[..7].copy_from_slice(prefix);
    n[7..11].copy_from_slice(&counter.to_be_bytes());
    n[11] = u8::from(last);
    Ok(Nonce::assume_unique_for_key(n))
}

/// Number of chunks for a plaintext length (an empty blob still has one, empty, last chunk).
pub fn chunk_count(plain_len: u64) -> u64 {
    plain_len.div_ceil(CHUNK as u64).max(1)
}

/// Ciphertext length for a plaintext length.
pub fn ciphertext_len(plain_len: u64) -> u64 {
    HEADER_LEN as u64 + plain_len + chunk_count(plain_len) * TAG as u64
}

/// Where the chunks holding plaintext bytes `start..=end` are in the ciphertext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub first_chunk: u64,
    /// Ciphertext byte range (end exclusive) of those chunks.
    pub ct_start: u64,
    pub ct_end: u64,
    /// Plaintext bytes to drop from the front of the first decrypted chunk.
    pub skip: u64,
    /// Plaintext bytes wanted.
    pub len: u64,
}

pub fn span(plain_len: u64, start: u64, end_inclusive: u64) -> Option<Span> {
    if start > end_inclusive || end_inclusive >= plain_len {
        return None;
    }
    let c = CHUNK as u64;
    let first = start / c;
    let last = end_inclusive / c;
    let stride = c + TAG as u64;
    let ct_start = HEADER_LEN as u64 + first * stride;
    let ct_end = (HEADER_LEN as u64 + (last + 1) * stride).min(ciphertext_len(plain_len));
    Some(Span {
        first_chunk: first,
        ct_start,
        ct_end,
        skip: start - first * c,
        len: end_inclusive - start + 1,
    })
}

/// Encrypts a stream: feed [`Encryptor::update`], end with [`Encryptor::finish`].
pub struct Encryptor {
    key: LessSafeKey,
    prefix: [u8; 7],
    aad: Vec<u8>,
    /// Length of the chunk being filled: always the last `open` bytes of the caller's
    /// `out`, not yet sealed (whether it is the last chunk is known only later).
    open: usize,
    counter: u64,
}

impl Encryptor {
    /// Returns the encryptor and the header to write first.
    pub fn new(key: &SecretKey, ctx: BlobContext<'_>) -> Result<(Self, Vec<u8>), CryptoError> {
        let prefix = crate::random_bytes::<7>()?;
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(&prefix);
        Ok((
            Self {
                key: key.aead()?,
                prefix,
                aad: ctx.aad(),
                open: 0,
                counter: 0,
            },
            header,
        ))
    }

    /// Seals the open chunk (the last `self.open` bytes of `out`) in place and appends
    /// its tag.
    fn seal_open(&mut self, last: bool, out: &mut Vec<u8>) -> Result<(), CryptoError> {
        let start = out.len() - self.open;
        let tag = self
            .key
            .seal_in_place_separate_tag(
                nonce(&self.prefix, self.counter, last)?,
                Aad::from(&self.aad[..]),
                &mut out[start..],
            )
            .map_err(|_| CryptoError::Key)?;
        out.extend_from_slice(tag.as_ref());
        self.counter += 1;
        self.open = 0;
        Ok(())
    }

    /// Appends `data` to `out` and encrypts it there, in place: each byte is copied once.
    /// The chunk still being filled stays at the end of `out`, unsealed: only the first
    /// [`Encryptor::sealed_len`] bytes of `out` are final and may be written out (then
    /// removed from the front of `out`, keeping the rest).
    pub fn update(&mut self, mut data: &[u8], out: &mut Vec<u8>) -> Result<(), CryptoError> {
        while !data.is_empty() {
            if self.open == CHUNK {
                self.seal_open(false, out)?;
            }
            let take = (CHUNK - self.open).min(data.len());
            out.extend_from_slice(&data[..take]);
            self.open += take;
            data = &data[take..];
        }
        Ok(())
    }

    /// How many leading bytes of `out` are sealed (final).
    pub fn sealed_len(&self, out: &[u8]) -> usize {
        out.len() - self.open
    }

    /// Seals the final chunk: all of `out` is then final.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<(), CryptoError> {
        if out.len() < self.open {
            return Err(CryptoError::Corrupt("output buffer lost the open chunk"));
        }
        self.seal_open(true, out)
    }
}

/// Decrypts a stream (or a run of chunks from a range) of a blob whose plaintext length is
/// known.
pub struct Decryptor {
    key: LessSafeKey,
    prefix: Option<[u8; 7]>,
    aad: Vec<u8>,
    buf: Vec<u8>,
    counter: u64,
    last_index: u64,
    last_len: usize,
    done: bool,
    /// Start of the unconsumed bytes in `buf` (consumed bytes are dropped lazily).
    pos: usize,
}

impl Decryptor {
    /// For a whole blob, header included.
    pub fn new(key: &SecretKey, ctx: BlobContext<'_>, plain_len: u64) -> Result<Self, CryptoError> {
        let last_index = chunk_count(plain_len) - 1;
        Ok(Self {
            key: key.aead()?,
            prefix: None,
            aad: ctx.aad(),
            buf: Vec::with_capacity(2 * (CHUNK + TAG)),
            counter: 0,
            last_index,
            last_len: (plain_len - last_index * CHUNK as u64) as usize,
            done: false,
            pos: 0,
        })
    }

    /// For the chunks from `first_chunk` on, given the blob's header (first
    /// [`HEADER_LEN`] bytes) read separately.
    pub fn at_chunk(
        key: &SecretKey,
        ctx: BlobContext<'_>,
        plain_len: u64,
        header: &[u8],
        first_chunk: u64,
    ) -> Result<Self, CryptoError> {
        let mut d = Self::new(key, ctx, plain_len)?;
        d.prefix = Some(parse_header(header)?);
        d.counter = first_chunk;
        if first_chunk > d.last_index {
            return Err(CryptoError::Corrupt("range beyond the end"));
        }
        Ok(d)
    }

    fn open(&mut self, len: usize, out: &mut Vec<u8>) -> Result<(), CryptoError> {
        let prefix = self.prefix.ok_or(CryptoError::Corrupt("no header"))?;
        let last = self.counter == self.last_index;
        let start = self.pos;
        let plain = self
            .key
            .open_in_place(
                nonce(&prefix, self.counter, last)?,
                Aad::from(&self.aad[..]),
                &mut self.buf[start..start + len],
            )
            .map_err(|_| CryptoError::Tampered {
                chunk: self.counter,
            })?;
        out.extend_from_slice(plain);
        self.pos += len;
        self.counter += 1;
        self.done = last;
        Ok(())
    }

    /// Decrypts what it can of `data` into `out`. Errors on the first bad chunk.
    pub fn update(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), CryptoError> {
        // Drop what earlier calls consumed before appending.
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
        if self.prefix.is_none() {
            if self.buf.len() < HEADER_LEN {
                return Ok(());
            }
            self.prefix = Some(parse_header(&self.buf[..HEADER_LEN])?);
            self.pos = HEADER_LEN;
        }
        loop {
            let avail = self.buf.len() - self.pos;
            if self.done {
                if avail != 0 {
                    return Err(CryptoError::Corrupt("bytes after the last chunk"));
                }
                return Ok(());
            }
            let want = if self.counter == self.last_index {
                self.last_len + TAG
            } else {
                CHUNK + TAG
            };
            if avail < want {
                return Ok(());
            }
            self.open(want, out)?;
        }
    }

    /// The ciphertext length (chunk ‖ tag) of the next chunk; `None` after the last one.
    pub fn next_chunk_len(&self) -> Option<usize> {
        if self.done {
            None
        } else if self.counter == self.last_index {
            Some(self.last_len + TAG)
        } else {
            Some(CHUNK + TAG)
        }
    }

    /// Decrypts one whole chunk (exactly [`Decryptor::next_chunk_len`] bytes, ciphertext ‖
    /// tag) where it lies: on success the plaintext is `chunk[..n]` for the returned `n`
    /// (`chunk.len() - TAG`). A reader reads a run of chunks straight into one buffer and
    /// sends the plaintext from there, with no copy in between. On failure the buffer's
    /// content is undefined and nothing may be sent from it.
    pub fn open_chunk_in_place(&mut self, chunk: &mut [u8]) -> Result<usize, CryptoError> {
        let want = self
            .next_chunk_len()
            .ok_or(CryptoError::Corrupt("bytes after the last chunk"))?;
        if chunk.len() != want {
            return Err(CryptoError::Truncated);
        }
        let prefix = self.prefix.ok_or(CryptoError::Corrupt("no header"))?;
        let last = self.counter == self.last_index;
        let n = self
            .key
            .open_in_place(
                nonce(&prefix, self.counter, last)?,
                Aad::from(&self.aad[..]),
                chunk,
            )
            .map_err(|_| CryptoError::Tampered {
                chunk: self.counter,
            })?
            .len();
        self.counter += 1;
        self.done = last;
        Ok(n)
    }

    /// Checks that the stream ended with its last chunk (a truncated blob fails here).
    pub fn finish(self) -> Result<(), CryptoError> {
        if self.done && self.buf.len() == self.pos {
            Ok(())
        } else {
            Err(CryptoError::Truncated)
        }
    }
}

fn parse_header(h: &[u8]) -> Result<[u8; 7], CryptoError> {
    if h.len() != HEADER_LEN || &h[..4] != MAGIC {
        return Err(CryptoError::Corrupt("not a Kura blob"));
    }
    let mut p = [0u8; 7];
    p.copy_from_slice(&h[4..]);
    Ok(p)
}

/// Encrypts a whole buffer (for tests and small secrets).
pub fn encrypt_all(
    key: &SecretKey,
    ctx: BlobContext<'_>,
    plain: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let (mut e, mut out) = Encryptor::new(key, ctx)?;
    e.update(plain, &mut out)?;
    e.finish(&mut out)?;
    Ok(out)
}

/// Decrypts a whole buffer.
pub fn decrypt_all(
    key: &SecretKey,
    ctx: BlobContext<'_>,
    plain_len: u64,
    ct: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let mut d = Decryptor::new(key, ctx, plain_len)?;
    let mut out = Vec::with_capacity(plain_len as usize);
    d.update(ct, &mut out)?;
    d.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: BlobContext<'static> = BlobContext {
        tenant_id: "tenant-a",
        blob_id: "blob-1",
        key_version: 1,
    };

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn round_trips_at_every_boundary_and_in_pieces() {
        let key = SecretKey::generate().unwrap();
        for n in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 17] {
            let plain = data(n);
            let ct = encrypt_all(&key, CTX, &plain).unwrap();
            assert_eq!(ct.len() as u64, ciphertext_len(n as u64), "{n}");
            assert_eq!(decrypt_all(&key, CTX, n as u64, &ct).unwrap(), plain, "{n}");
            // Fed in odd-sized pieces both ways.
            let (mut e, mut ct2) = Encryptor::new(&key, CTX).unwrap();
            for piece in plain.chunks(7777) {
                e.update(piece, &mut ct2).unwrap();
            }
            e.finish(&mut ct2).unwrap();
            let mut d = Decryptor::new(&key, CTX, n as u64).unwrap();
            let mut out = Vec::new();
            for piece in ct2.chunks(5000) {
                d.update(piece, &mut out).unwrap();
            }
            d.finish().unwrap();
            assert_eq!(out, plain);
        }
    }

    #[test]
    fn chunks_open_in_place() {
        let key = SecretKey::generate().unwrap();
        for n in [0, 5, CHUNK, 2 * CHUNK + 9] {
            let plain = data(n);
            let mut ct = encrypt_all(&key, CTX, &plain).unwrap();
            let total = ct.len();
            let mut d = Decryptor::at_chunk(&key, CTX, n as u64, &ct[..HEADER_LEN], 0).unwrap();
            let mut at = HEADER_LEN;
            let mut out = Vec::new();
            while let Some(len) = d.next_chunk_len() {
                let chunk = &mut ct[at..at + len];
                let got = d.open_chunk_in_place(chunk).unwrap();
                assert_eq!(got, len - TAG);
                out.extend_from_slice(&chunk[..got]);
                at += len;
            }
            assert_eq!(at, total);
            assert_eq!(out, plain, "{n}");
            assert!(
                d.open_chunk_in_place(&mut [0u8; 16]).is_err(),
                "nothing after the last"
            );
        }
        // A wrong length or a flipped byte is an error, not plaintext.
        let ct = encrypt_all(&key, CTX, &data(CHUNK + 1)).unwrap();
        let end = HEADER_LEN + CHUNK + TAG;
        let mut d = Decryptor::at_chunk(&key, CTX, CHUNK as u64 + 1, &ct[..HEADER_LEN], 0).unwrap();
        assert!(d
            .open_chunk_in_place(&mut ct.clone()[HEADER_LEN..HEADER_LEN + 10])
            .is_err());
        assert!(d
            .open_chunk_in_place(&mut ct.clone()[HEADER_LEN..end + 1])
            .is_err());
        let mut flipped = ct.clone();
        flipped[HEADER_LEN + 5] ^= 1;
        assert!(d
            .open_chunk_in_place(&mut flipped[HEADER_LEN..end])
            .is_err());
        // The same chunk unaltered still opens: a failed attempt moved nothing on.
        let mut good = ct.clone();
        assert_eq!(
            d.open_chunk_in_place(&mut good[HEADER_LEN..end]).unwrap(),
            CHUNK
        );
    }

    #[test]
    fn every_tampering_fails() {
        let key = SecretKey::generate().unwrap();
        let plain = data(3 * CHUNK + 100);
        let n = plain.len() as u64;
        let ct = encrypt_all(&key, CTX, &plain).unwrap();
        // A flipped byte anywhere in the ciphertext.
        for pos in [HEADER_LEN, HEADER_LEN + CHUNK + 3, ct.len() - 1] {
            let mut bad = ct.clone();
            bad[pos] ^= 0x01;
            assert!(decrypt_all(&key, CTX, n, &bad).is_err(), "flip at {pos}");
        }
        // Truncated: whole last chunk dropped, or a few bytes.
        let stride = CHUNK + TAG;
        assert!(decrypt_all(&key, CTX, n, &ct[..HEADER_LEN + 3 * stride]).is_err());
        assert!(decrypt_all(&key, CTX, n, &ct[..ct.len() - 5]).is_err());
        // Truncated at a chunk boundary and claimed shorter: the last-flag catches it.
        assert!(decrypt_all(&key, CTX, 3 * CHUNK as u64, &ct[..HEADER_LEN + 3 * stride]).is_err());
        // Reordered chunks.
        let mut swapped = ct[..HEADER_LEN].to_vec();
        swapped.extend_from_slice(&ct[HEADER_LEN + stride..HEADER_LEN + 2 * stride]);
        swapped.extend_from_slice(&ct[HEADER_LEN..HEADER_LEN + stride]);
        swapped.extend_from_slice(&ct[HEADER_LEN + 2 * stride..]);
        assert!(matches!(
            decrypt_all(&key, CTX, n, &swapped),
            Err(CryptoError::Tampered { chunk: 0 })
        ));
        // Extra bytes appended.
        let mut longer = ct.clone();
        longer.push(0);
        assert!(decrypt_all(&key, CTX, n, &longer).is_err());
        // Moved to another tenant, renamed, other key version, other key.
        for ctx in [
            BlobContext {
                tenant_id: "tenant-b",
                ..CTX
            },
            BlobContext {
                blob_id: "blob-2",
                ..CTX
            },
            BlobContext {
                key_version: 2,
                ..CTX
            },
        ] {
            assert!(decrypt_all(&key, ctx, n, &ct).is_err(), "{ctx:?}");
        }
        assert!(decrypt_all(&SecretKey::generate().unwrap(), CTX, n, &ct).is_err());
        // Not a blob at all.
        assert!(decrypt_all(&key, CTX, 3, b"plain text!").is_err());
    }

    #[test]
    fn ranges_decrypt_from_their_first_chunk() {
        let key = SecretKey::generate().unwrap();
        let plain = data(2 * CHUNK + 500);
        let n = plain.len() as u64;
        let ct = encrypt_all(&key, CTX, &plain).unwrap();
        for (s, e) in [
            (0, 0),
            (10, 99),
            (CHUNK as u64 - 1, CHUNK as u64),
            (CHUNK as u64 + 5, n - 1),
            (n - 1, n - 1),
        ] {
            let sp = span(n, s, e).unwrap();
            let mut d =
                Decryptor::at_chunk(&key, CTX, n, &ct[..HEADER_LEN], sp.first_chunk).unwrap();
            let mut out = Vec::new();
            d.update(&ct[sp.ct_start as usize..sp.ct_end as usize], &mut out)
                .unwrap();
            let got = &out[sp.skip as usize..(sp.skip + sp.len) as usize];
            assert_eq!(got, &plain[s as usize..=e as usize], "{s}..={e}");
        }
        assert_eq!(span(n, 5, n), None);
        assert_eq!(span(n, 6, 5), None);
        assert_eq!(span(0, 0, 0), None);
    }
}
