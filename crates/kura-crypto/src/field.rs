//! Secret database fields (TOTP seeds, SSO private keys, webhook secrets) encrypted with the
//! tenant's data key: AES-256-GCM, random nonce, associated data binding the tenant, the
//! field's purpose (e.g. `totp_seed:<user id>`) and the key version — a value copied to
//! another row, user or tenant does not decrypt.

use crate::keys::SecretKey;
use crate::CryptoError;
use aws_lc_rs::aead::{Aad, Nonce, NONCE_LEN};

fn aad(tenant: &str, purpose: &str, key_version: i64) -> Vec<u8> {
    let mut a = b"kura-field-v1".to_vec();
    for part in [tenant, purpose] {
        a.extend((part.len() as u32).to_be_bytes());
        a.extend(part.as_bytes());
    }
    a.extend(key_version.to_be_bytes());
    a
}

/// `nonce ‖ ciphertext ‖ tag`.
pub fn seal(
    key: &SecretKey,
    tenant: &str,
    purpose: &str,
    key_version: i64,
    plain: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let nonce = crate::random_bytes::<NONCE_LEN>()?;
    let mut buf = plain.to_vec();
    key.aead()?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(tenant, purpose, key_version)),
            &mut buf,
        )
        .map_err(|_| CryptoError::Key)?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    Ok(out)
}

pub fn open(
    key: &SecretKey,
    tenant: &str,
    purpose: &str,
    key_version: i64,
    sealed: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    if sealed.len() < NONCE_LEN + 16 {
        return Err(CryptoError::Corrupt("sealed field too short"));
    }
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&sealed[..NONCE_LEN]);
    let mut buf = sealed[NONCE_LEN..].to_vec();
    let plain = key
        .aead()?
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(tenant, purpose, key_version)),
            &mut buf,
        )
        .map_err(|_| CryptoError::Tampered { chunk: 0 })?;
    Ok(plain.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_bound_to_tenant_purpose_and_version() {
        let k = SecretKey::generate().unwrap();
        let s = seal(&k, "t1", "totp_seed:u1", 1, b"JBSWY3DPEHPK3PXP").unwrap();
        assert_eq!(
            open(&k, "t1", "totp_seed:u1", 1, &s).unwrap(),
            b"JBSWY3DPEHPK3PXP"
        );
        assert!(open(&k, "t2", "totp_seed:u1", 1, &s).is_err());
        assert!(open(&k, "t1", "totp_seed:u2", 1, &s).is_err());
        assert!(open(&k, "t1", "totp_seed:u1", 2, &s).is_err());
        let mut bad = s.clone();
        bad[15] ^= 1;
        assert!(open(&k, "t1", "totp_seed:u1", 1, &bad).is_err());
        assert!(open(&k, "t1", "totp_seed:u1", 1, &s[..10]).is_err());
        assert_ne!(
            seal(&k, "t1", "p", 1, b"x").unwrap(),
            seal(&k, "t1", "p", 1, b"x").unwrap()
        );
    }
}
