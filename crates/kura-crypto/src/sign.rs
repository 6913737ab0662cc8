//! The deployment's Ed25519 signing key (LOG-5): signs audit checkpoints and exports so
//! that a log can be verified offline with only the public key.

use crate::keys::SecretKey;
use crate::CryptoError;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use sha2::{Digest, Sha256};

/// An Ed25519 key from a 32-byte seed (a key file in the master key's format).
pub struct SigningKey {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey(id={})", self.key_id())
    }
}

impl SigningKey {
    pub fn from_seed(seed: &SecretKey) -> Result<Self, CryptoError> {
        let pair =
            Ed25519KeyPair::from_seed_unchecked(seed.expose()).map_err(|_| CryptoError::Key)?;
        Ok(Self { pair })
    }

    /// The public key, 64 hex characters.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.pair.public_key().as_ref())
    }

    /// A short id of the public key (first 8 bytes of its SHA-256, hex).
    pub fn key_id(&self) -> String {
        key_id(self.pair.public_key().as_ref())
    }

    /// The signature of `msg`, hex.
    pub fn sign(&self, msg: &[u8]) -> String {
        hex::encode(self.pair.sign(msg).as_ref())
    }
}

pub fn key_id(public_key: &[u8]) -> String {
    hex::encode(&Sha256::digest(public_key)[..8])
}

/// Checks a hex signature of `msg` against a hex Ed25519 public key.
pub fn verify(public_key_hex: &str, msg: &[u8], signature_hex: &str) -> bool {
    let (Ok(pk), Ok(sig)) = (
        hex::decode(public_key_hex.trim()),
        hex::decode(signature_hex),
    ) else {
        return false;
    };
    UnparsedPublicKey::new(&ED25519, pk)
        .verify(msg, &sig)
        .is_ok()
}

/// What a checkpoint signs: the tenant's chain at `seq` has hash `hash`, as of `at` (ms).
pub fn checkpoint_message(tenant: &str, seq: i64, hash: &str, at: i64) -> Vec<u8> {
    format!("kura-audit-checkpoint/1\n{tenant}\n{seq}\n{hash}\n{at}").into_bytes()
}

/// What an export's trailer signs: the number of lines before it and their SHA-256.
pub fn export_message(lines: u64, sha256_hex: &str) -> Vec<u8> {
    format!("kura-audit-export/1\n{lines}\n{sha256_hex}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_rfc8032_vector() {
        // RFC 8032 §7.1, TEST 1 (empty message).
        let seed =
            SecretKey::from_hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap();
        let k = SigningKey::from_seed(&seed).unwrap();
        assert_eq!(
            k.public_key_hex(),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        let sig = k.sign(b"");
        assert_eq!(sig, "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
        assert!(verify(&k.public_key_hex(), b"", &sig));
        assert!(!verify(&k.public_key_hex(), b"x", &sig));
        let other = SigningKey::from_seed(&SecretKey::generate().unwrap()).unwrap();
        assert!(!verify(&other.public_key_hex(), b"", &sig));
        assert!(!verify("zz", b"", &sig));
    }
}
