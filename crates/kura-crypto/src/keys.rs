//! The key hierarchy (CRY-1): a master key (KEK) wraps one AES-256 data key (DEK) per tenant
//! and key version. Wrapped keys live in the database's key vault; the master key never does.
//!
//! Wrapping is AES-256-GCM with a random nonce and the tenant id and key version as
//! associated data, so a wrapped key copied to another tenant's row does not unwrap.

use crate::CryptoError;
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// 32 secret bytes, wiped from memory when dropped, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey([u8; 32]);

impl SecretKey {
    pub fn from_bytes(b: [u8; 32]) -> Self {
        Self(b)
    }
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self(crate::random_bytes::<32>()?))
    }
    /// A key for one purpose derived from this one (HMAC-SHA-256 of the label): e.g. the
    /// deployment's outbox key from the master key. Different labels, unrelated keys.
    pub fn derive(&self, label: &str) -> SecretKey {
        use aws_lc_rs::hmac;
        let k = hmac::Key::new(hmac::HMAC_SHA256, &self.0);
        let tag = hmac::sign(&k, label.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(&tag.as_ref()[..32]);
        SecretKey(out)
    }
    /// HMAC-SHA-256 of `data` under this key, hex: a digest of a short secret (a 6-digit
    /// code) that cannot be brute-forced from the database without the key.
    pub fn mac_hex(&self, data: &[u8]) -> String {
        use aws_lc_rs::hmac;
        let k = hmac::Key::new(hmac::HMAC_SHA256, &self.0);
        hex::encode(hmac::sign(&k, data).as_ref())
    }
    pub(crate) fn expose(&self) -> &[u8; 32] {
        &self.0
    }
    pub(crate) fn aead(&self) -> Result<LessSafeKey, CryptoError> {
        let k = UnboundKey::new(&AES_256_GCM, &self.0).map_err(|_| CryptoError::Key)?;
        Ok(LessSafeKey::new(k))
    }
    /// A non-secret fingerprint (first 8 bytes of SHA-256, hex) to tell keys apart.
    pub fn fingerprint(&self) -> String {
        hex::encode(&Sha256::digest(self.0)[..8])
    }
    /// Parses 64 hex characters (surrounding whitespace ignored).
    pub fn from_hex(s: &str) -> Result<Self, CryptoError> {
        let mut v = hex::decode(s.trim()).map_err(|_| CryptoError::KeyFormat)?;
        if v.len() != 32 {
            v.zeroize();
            return Err(CryptoError::KeyFormat);
        }
        let mut b = [0u8; 32];
        b.copy_from_slice(&v);
        v.zeroize();
        Ok(Self(b))
    }
    /// 64 hex characters (for writing a newly generated master key file).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey(fp={})", self.fingerprint())
    }
}

fn wrap_aad(tenant: &str, version: i64) -> Vec<u8> {
    let mut aad = b"kura-dek-v1".to_vec();
    aad.extend((tenant.len() as u32).to_be_bytes());
    aad.extend(tenant.as_bytes());
    aad.extend(version.to_be_bytes());
    aad
}

/// Wraps a tenant's data key under the master key: `nonce ‖ ciphertext ‖ tag`.
pub fn wrap(
    master: &SecretKey,
    tenant: &str,
    version: i64,
    dek: &SecretKey,
) -> Result<Vec<u8>, CryptoError> {
    let nonce_bytes = crate::random_bytes::<NONCE_LEN>()?;
    let mut buf = dek.0.to_vec();
    master
        .aead()?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce_bytes),
            Aad::from(wrap_aad(tenant, version)),
            &mut buf,
        )
        .map_err(|_| CryptoError::Key)?;
    let mut out = nonce_bytes.to_vec();
    out.extend_from_slice(&buf);
    buf.zeroize();
    Ok(out)
}

/// Unwraps a data key; fails for a wrong master key, another tenant or version, or any
/// altered byte.
pub fn unwrap(
    master: &SecretKey,
    tenant: &str,
    version: i64,
    wrapped: &[u8],
) -> Result<SecretKey, CryptoError> {
    if wrapped.len() != NONCE_LEN + 32 + 16 {
        return Err(CryptoError::Unwrap);
    }
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&wrapped[..NONCE_LEN]);
    let mut buf = wrapped[NONCE_LEN..].to_vec();
    let plain = master
        .aead()?
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(wrap_aad(tenant, version)),
            &mut buf,
        )
        .map_err(|_| CryptoError::Unwrap)?;
    let mut k = [0u8; 32];
    k.copy_from_slice(plain);
    buf.zeroize();
    Ok(SecretKey(k))
}

/// Reads a master key file (64 hex characters). A file that group or others can read is
/// refused: it protects every tenant's data.
pub fn read_key_file(path: &std::path::Path) -> Result<SecretKey, CryptoError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|_| CryptoError::KeyFile("cannot read"))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(CryptoError::KeyFile(
                "readable by group or others; chmod 600 it",
            ));
        }
    }
    let mut text =
        std::fs::read_to_string(path).map_err(|_| CryptoError::KeyFile("cannot read"))?;
    let key = SecretKey::from_hex(&text);
    text.zeroize();
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_unwrap_binds_tenant_and_version() {
        let master = SecretKey::generate().unwrap();
        let dek = SecretKey::generate().unwrap();
        let w = wrap(&master, "tenant-a", 1, &dek).unwrap();
        assert_eq!(unwrap(&master, "tenant-a", 1, &w).unwrap().0, dek.0);
        assert!(
            unwrap(&master, "tenant-b", 1, &w).is_err(),
            "moved to another tenant"
        );
        assert!(unwrap(&master, "tenant-a", 2, &w).is_err(), "other version");
        assert!(
            unwrap(&SecretKey::generate().unwrap(), "tenant-a", 1, &w).is_err(),
            "other master key"
        );
        let mut flipped = w.clone();
        flipped[20] ^= 1;
        assert!(unwrap(&master, "tenant-a", 1, &flipped).is_err());
        assert!(unwrap(&master, "tenant-a", 1, &w[..w.len() - 1]).is_err());
        assert!(!format!("{dek:?}").contains(&dek.to_hex()));
    }

    #[test]
    fn key_files() {
        let dir = std::env::temp_dir().join(format!("kura-keyfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = SecretKey::generate().unwrap();
        let p = dir.join("master.key");
        std::fs::write(&p, format!("{}\n", key.to_hex())).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(read_key_file(&p), Err(CryptoError::KeyFile(_))));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_key_file(&p).unwrap().fingerprint(), key.fingerprint());
        std::fs::write(&p, "not hex").unwrap();
        assert!(matches!(read_key_file(&p), Err(CryptoError::KeyFormat)));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
