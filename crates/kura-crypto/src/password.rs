//! Password hashing with Argon2id, m = 19 MiB, t = 2, p = 1 (OWASP's recommendation; about
//! 17 ms on this project's reference machine). Callers run it on a blocking thread.
//!
//! The 19 MiB of working memory can be a [`Workspace`] the caller keeps and reuses
//! ([`hash_with`], [`verify_with`]): a server then holds a fixed number of them while
//! log-ins keep coming instead of allocating and freeing 19 MiB per log-in, and drops them
//! when log-ins stop — a dropped workspace goes back to the system (see [`Workspace::new`]).

use crate::CryptoError;
use argon2::password_hash::{Output, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

const M_COST: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

fn hasher() -> Result<Argon2<'static>, CryptoError> {
    let params = Params::new(M_COST, T_COST, P_COST, None).map_err(|_| CryptoError::Hash)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Argon2 working memory for the parameters Kura hashes with (19 MiB), to be reused.
pub struct Workspace(Vec<Block>);

/// Blocks reserved (address space only) for a workspace: more than glibc's largest dynamic
/// mmap threshold (32 MiB on 64-bit systems).
const RESERVED_BLOCKS: usize = 33 * 1024;

impl Workspace {
    /// 19 MiB of zeroed blocks in an allocation of 33 MiB of address space. The size puts
    /// the allocation above glibc's largest dynamic mmap threshold, so it is always a
    /// mapping of its own that `free` unmaps — dropping a workspace returns its memory to
    /// the system. (At 19 MiB, the first free raises the threshold to 19 MiB and later
    /// workspaces come from the heap, which keeps them after they are freed.) Only the
    /// blocks used are ever touched, so only 19 MiB is resident.
    pub fn new() -> Workspace {
        let mut blocks = Vec::with_capacity(RESERVED_BLOCKS);
        blocks.resize(M_COST as usize, Block::default());
        Workspace(blocks)
    }
}

impl Default for Workspace {
    fn default() -> Self {
        Self::new()
    }
}

/// [`hash`] with caller-provided working memory.
pub fn hash_with(password: &str, ws: &mut Workspace) -> Result<String, CryptoError> {
    let salt_bytes = crate::random_bytes::<16>()?;
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|_| CryptoError::Hash)?;
    let mut out = [0u8; 32];
    hasher()?
        .hash_password_into_with_memory(password.as_bytes(), &salt_bytes, &mut out, &mut ws.0)
        .map_err(|_| CryptoError::Hash)?;
    let out = Output::new(&out).map_err(|_| CryptoError::Hash)?;
    Ok(format!(
        "$argon2id$v=19$m={M_COST},t={T_COST},p={P_COST}${}${out}",
        salt.as_str()
    ))
}

/// [`verify`] with caller-provided working memory. Hashes with other parameters than Kura's
/// (older or foreign ones) are verified with memory of their own.
pub fn verify_with(password: &str, phc: &str, ws: &mut Workspace) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let ours = parsed.algorithm.as_str() == "argon2id"
        && parsed.version == Some(0x13)
        && Params::try_from(&parsed)
            .is_ok_and(|p| p.m_cost() == M_COST && p.t_cost() == T_COST && p.p_cost() == P_COST);
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    if !ours {
        return verify(password, phc);
    }
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let Ok(h) = hasher() else { return false };
    if h.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut ws.0)
        .is_err()
    {
        return false;
    }
    subtle::ConstantTimeEq::ct_eq(out.as_slice(), expected.as_bytes()).into()
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

    #[test]
    fn reused_workspace_gives_the_same_hashes() {
        let mut ws = Workspace::new();
        // Ours verify with the crate's own verifier and the other way round.
        let h = hash_with("kura-vault-7-otter", &mut ws).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify("kura-vault-7-otter", &h));
        assert!(!verify("kura-vault-7-otteR", &h));
        let theirs = hash("sakura-lantern-42").unwrap();
        assert!(verify_with("sakura-lantern-42", &theirs, &mut ws));
        assert!(!verify_with("sakura-lantern-43", &theirs, &mut ws));
        assert!(verify_with("kura-vault-7-otter", &h, &mut ws));
        // The workspace is reused many times with the same result.
        for _ in 0..3 {
            assert!(verify_with("kura-vault-7-otter", &h, &mut ws));
            assert!(!verify_with("kura-vault-7-otter!", &h, &mut ws));
        }
        // Other parameters still verify (own memory); malformed never.
        let other = {
            let params = Params::new(8 * 1024, 1, 1, None).unwrap();
            let a = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
            let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
            a.hash_password(b"pw-other", &salt).unwrap().to_string()
        };
        assert!(verify_with("pw-other", &other, &mut ws));
        assert!(!verify_with("pw-otheR", &other, &mut ws));
        assert!(!verify_with("x", "not a hash", &mut ws));
        assert!(!verify_with("x", dummy_hash(), &mut ws));
    }
}
