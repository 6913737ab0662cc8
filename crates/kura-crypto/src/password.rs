//! Password hashing with Argon2id, m = 19 MiB, t = 2, p = 1 (OWASP's recommendation; about
//! 17 ms on this project's reference machine). Callers run it on a blocking thread.

use crate::CryptoError;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

fn hasher() -> Result<Argon2<'static>, CryptoError> {
    let params = Params::new(19 * 1024, 2, 1, None).map_err(|_| CryptoError::Hash)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a password into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
pub fn hash(password: &str) -> Result<String, CryptoError> {
    let salt_bytes = crate::random_bytes::<16>()?;
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|_| CryptoError::Hash)?;
    Ok(hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|_| CryptoError::Hash)?
        .to_string())
}

/// Checks a password against a stored PHC string. A malformed hash never verifies.
pub fn verify(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let Ok(h) = hasher() else { return false };
    h.verify_password(password.as_bytes(), &parsed).is_ok()
}

/// A valid hash of a random password, used to spend the same time on unknown users as on
/// known ones, so response time does not reveal which e-mail addresses exist.
pub fn dummy_hash() -> &'static str {
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0H+9Xc1QZ2yX8cFh7yI6yWJv4mC1v1l0bqkN0uW5cUQ"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash("kura-vault-7-otter").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify("kura-vault-7-otter", &h));
        assert!(!verify("kura-vault-7-otteR", &h));
        assert!(!verify("anything", "not a hash"));
        // Two hashes of one password differ (random salt).
        assert_ne!(h, hash("kura-vault-7-otter").unwrap());
        // The dummy hash parses, so verifying against it costs a full Argon2 run.
        assert!(PasswordHash::new(dummy_hash()).is_ok());
        assert!(!verify("x", dummy_hash()));
    }
}
