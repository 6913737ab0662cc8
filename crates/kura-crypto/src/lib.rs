//! Kura's cryptography: password hashing (Argon2id), random tokens stored as hashes, and the
//! audit hash chain. Pure functions, no database.

pub mod chain;
pub mod password;
pub mod token;

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
}

/// Constant-time equality for secrets (CSRF tokens and the like).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
