//! Kura's cryptography: password hashing (Argon2id), random tokens stored as hashes, and the
//! audit hash chain. Pure functions, no database.

pub mod chain;
pub mod export;
pub mod field;
pub mod keys;
pub mod password;
pub mod sign;
pub mod stream;
pub mod token;
pub mod totp;

pub use chain::{AuditRecord, ChainError, GENESIS_HASH};

/// Fills a buffer from the operating system's CSPRNG. Fails closed: a caller that cannot get
/// randomness gets an error, never predictable bytes.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|_| CryptoError::Rng)?;
    Ok(buf)
}

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the operating system's random number generator failed")]
    Rng,
    #[error("password hashing failed")]
    Hash,
    #[error("key could not be used")]
    Key,
    #[error("a key must be 64 hexadecimal characters (32 bytes)")]
    KeyFormat,
    #[error("key file: {0}")]
    KeyFile(&'static str),
    #[error("a wrapped data key did not unwrap (wrong master key, tenant or version, or altered)")]
    Unwrap,
    #[error("blob chunk {chunk} failed authentication (altered, reordered or not this tenant's)")]
    Tampered { chunk: u64 },
    #[error("blob is truncated")]
    Truncated,
    #[error("blob is malformed: {0}")]
    Corrupt(&'static str),
}

/// Constant-time equality for secrets (CSRF tokens and the like).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Incremental SHA-256 (aws-lc-rs: uses the CPU's SHA extensions where present; several
/// times faster than the portable implementation on the upload path).
pub struct Sha256Stream(aws_lc_rs::digest::Context);

impl Default for Sha256Stream {
    fn default() -> Self {
        Self(aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256))
    }
}

impl Sha256Stream {
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    /// Lower-case hex of the digest.
    pub fn finish_hex(self) -> String {
        hex::encode(self.0.finish().as_ref())
    }
}

#[cfg(test)]
mod sha_tests {
    #[test]
    fn sha256_matches_the_reference() {
        use sha2::Digest;
        let data = b"kura".repeat(1000);
        let mut s = super::Sha256Stream::default();
        s.update(&data[..1234]);
        s.update(&data[1234..]);
        assert_eq!(s.finish_hex(), hex::encode(sha2::Sha256::digest(&data)));
    }
}
