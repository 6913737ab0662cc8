//! Bearer secrets (session tokens, invitation links): 32 random bytes, shown once, stored
//! only as their SHA-256 so that a database leak does not leak live sessions.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// A freshly generated secret and the hash to store.
pub struct NewToken {
    /// Shown to the user once; never stored, never logged.
    pub secret: String,
    /// Hex SHA-256 of `secret`: the lookup key in the database.
    pub hash: String,
}

impl std::fmt::Debug for NewToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewToken")
            .field("secret", &"<redacted>")
            .field("hash", &self.hash)
            .finish()
    }
}

/// Generates a token `"{prefix}_{43 base64url chars}"`. The prefix (e.g. `kss` for a session)
/// lets secret scanners recognise leaked tokens.
pub fn generate(prefix: &str) -> Result<NewToken, crate::CryptoError> {
    let bytes = crate::random_bytes::<32>()?;
    let secret = format!("{prefix}_{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash(&secret);
    Ok(NewToken { secret, hash })
}

/// Hex SHA-256 of a presented token.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A random value for CSRF tokens and the like (base64url, 32 bytes).
pub fn random_string() -> Result<String, crate::CryptoError> {
    Ok(URL_SAFE_NO_PAD.encode(crate::random_bytes::<32>()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = generate("kss").unwrap();
        let b = generate("kss").unwrap();
        assert!(a.secret.starts_with("kss_"));
        assert_eq!(a.secret.len(), 4 + 43);
        assert_ne!(a.secret, b.secret);
        assert_eq!(a.hash, hash(&a.secret));
        assert_eq!(a.hash.len(), 64);
        assert!(!format!("{a:?}").contains(&a.secret));
    }
}
