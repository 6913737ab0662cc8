//! The audit hash chain (LOG-5): `hash_n = SHA-256(hash_{n-1} ‖ canonical_json(event_n))`.
//!
//! The canonical form is the JSON serialisation of [`AuditRecord`] — fields in declaration
//! order, `details` with sorted keys — so any change to any field, a removed row or a
//! reordering breaks the chain at that point. [`verify`] walks a sequence of records and names
//! the first one that does not fit.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The hash before the first event of every chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit event as hashed and stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// The tenant whose chain this is (`_system` for operator events outside any tenant).
    pub tenant_id: String,
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// Milliseconds since the epoch, UTC.
    pub at: i64,
    /// `user`, `operator` or `system`.
    pub actor_kind: String,
    pub actor_id: Option<String>,
    /// e.g. `auth.login`, `user.freeze`, `folder.create`.
    pub action: String,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    /// `success`, `failure` or `denied`.
    pub result: String,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    /// Action-specific facts (never secrets).
    pub details: serde_json::Value,
    pub prev_hash: String,
}

impl AuditRecord {
    /// The canonical bytes that are hashed.
    pub fn canonical_json(&self) -> Vec<u8> {
        // Serialising a struct of strings, integers and a JSON value cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// This record's hash given its `prev_hash`.
    pub fn compute_hash(&self) -> String {
        // The canonical bytes go to a buffer kept per thread (a chain of a million events
        // is hashed without a million allocations); the same bytes as [`canonical_json`].
        thread_local! {
            static CANONICAL: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let digest = CANONICAL.with(|buf| {
            let mut buf = buf.borrow_mut();
            buf.clear();
            // Serialising a struct of strings, integers and a JSON value cannot fail.
            let _ = serde_json::to_writer(&mut *buf, self);
            let mut h = Sha256::new();
            h.update(self.prev_hash.as_bytes());
            h.update(buf.as_slice());
            h.finalize()
        });
        let mut hex = [0u8; 64];
        // 32 bytes always fit 64 hex digits; hex::encode collects char by char.
        let _ = hex::encode_to_slice(digest, &mut hex);
        String::from_utf8_lossy(&hex).into_owned()
    }
}

/// Where and why a chain stopped verifying.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("entry seq {seq}: expected seq {expected} (an entry is missing or out of order)")]
    Sequence { seq: i64, expected: i64 },
    #[error("entry seq {seq}: prev_hash does not match the previous entry's hash")]
    Link { seq: i64 },
    #[error("entry seq {seq}: stored hash does not match its content (entry was altered)")]
    Content { seq: i64 },
    #[error(
        "the stored chain starts at seq {seq}, but no genuine signed purge checkpoint says so"
    )]
    Base { seq: i64 },
    #[error("chain head says seq {head_seq} / {head_hash}, but the last entry is seq {last_seq}")]
    Head {
        head_seq: i64,
        head_hash: String,
        last_seq: i64,
    },
    /// A stored checkpoint does not carry a valid signature of this deployment's key.
    #[error(
        "the checkpoint at seq {seq} is not signed by this deployment's key (forged or altered)"
    )]
    CheckpointSignature { seq: i64 },
    /// The entry at a signed checkpoint's seq is missing or has another hash: the chain was
    /// rewritten after the checkpoint was signed.
    #[error("entry seq {seq} does not have the hash its signed checkpoint records (the chain was rewritten)")]
    Checkpoint { seq: i64 },
    /// The chain ends before a signed checkpoint: entries after it were cut off.
    #[error("the chain ends at seq {head_seq}, but a signed checkpoint vouches for seq {checkpoint_seq} (entries were removed)")]
    BehindCheckpoint { head_seq: i64, checkpoint_seq: i64 },
}

/// Walks records (with their stored hashes) in order, starting after `start_seq` whose hash
/// is `start_hash` (0 / [`GENESIS_HASH`] for a full chain). Returns the last (seq, hash).
pub fn verify<'a>(
    records: impl IntoIterator<Item = (&'a AuditRecord, &'a str)>,
    start_seq: i64,
    start_hash: &str,
) -> Result<(i64, String), ChainError> {
    let mut expected = start_seq + 1;
    let mut prev = start_hash.to_string();
    for (rec, stored_hash) in records {
        if rec.seq != expected {
            return Err(ChainError::Sequence {
                seq: rec.seq,
                expected,
            });
        }
        if rec.prev_hash != prev {
            return Err(ChainError::Link { seq: rec.seq });
        }
        if rec.compute_hash() != stored_hash {
            return Err(ChainError::Content { seq: rec.seq });
        }
        prev = stored_hash.to_string();
        expected += 1;
    }
    Ok((expected - 1, prev))
}

/// [`verify`] over a slice, computing the content hashes on `threads` threads (links and
/// sequence numbers are checked in order; the first bad entry is reported either way).
pub fn verify_parallel(
    records: &[(AuditRecord, String)],
    start_seq: i64,
    start_hash: &str,
    threads: usize,
) -> Result<(i64, String), ChainError> {
    let threads = threads.clamp(1, 64);
    let chunk = records.len().div_ceil(threads).max(1);
    let first_bad_content = std::thread::scope(|scope| {
        let handles: Vec<_> = records
            .chunks(chunk)
            .enumerate()
            .map(|(c, part)| {
                scope.spawn(move || {
                    part.iter()
                        .position(|(r, h)| r.compute_hash() != *h)
                        .map(|i| c * chunk + i)
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().ok().flatten())
            .min()
    });
    let end = first_bad_content.map(|i| i + 1).unwrap_or(records.len());
    let mut expected = start_seq + 1;
    let mut prev: &str = start_hash;
    for (i, (rec, stored)) in records[..end].iter().enumerate() {
        if rec.seq != expected {
            return Err(ChainError::Sequence {
                seq: rec.seq,
                expected,
            });
        }
        if rec.prev_hash != prev {
            return Err(ChainError::Link { seq: rec.seq });
        }
        if first_bad_content == Some(i) {
            return Err(ChainError::Content { seq: rec.seq });
        }
        prev = stored;
        expected += 1;
    }
    Ok((expected - 1, prev.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<(AuditRecord, String)> {
        let mut out = Vec::new();
        let mut prev = GENESIS_HASH.to_string();
        for seq in 1..=n {
            let rec = AuditRecord {
                tenant_id: "t".into(),
                seq,
                at: 1000 + seq,
                actor_kind: "user".into(),
                actor_id: Some("u".into()),
                action: "folder.create".into(),
                target_kind: Some("folder".into()),
                target_id: Some(format!("f{seq}")),
                result: "success".into(),
                ip: Some("127.0.0.1".into()),
                request_id: None,
                details: serde_json::json!({"name": format!("設計{seq}"), "b": 1, "a": 2}),
                prev_hash: prev.clone(),
            };
            let h = rec.compute_hash();
            prev = h.clone();
            out.push((rec, h));
        }
        out
    }

    /// The hash is SHA-256 over the previous hash and the canonical JSON, as lowercase hex —
    /// the formula offline verifiers implement — however it is computed (a kept buffer, a
    /// hand-rolled hex), and one record's bytes never leak into the next one's.
    #[test]
    fn hash_is_the_documented_formula() {
        let c = chain(3);
        for (rec, h) in &c {
            let mut d = Sha256::new();
            d.update(rec.prev_hash.as_bytes());
            d.update(rec.canonical_json());
            assert_eq!(*h, hex::encode(d.finalize()));
        }
        // A longer record, then a shorter one: the buffer is emptied between them.
        let mut long = c[0].0.clone();
        long.details = serde_json::json!({"text": "x".repeat(5000)});
        let _ = long.compute_hash();
        assert_eq!(c[1].0.compute_hash(), c[1].1);
    }

    fn check(c: &[(AuditRecord, String)]) -> Result<(i64, String), ChainError> {
        let serial = verify(c.iter().map(|(r, h)| (r, h.as_str())), 0, GENESIS_HASH);
        // The parallel verifier agrees on every case, with any number of threads.
        for threads in [1, 2, 3, 8] {
            assert_eq!(verify_parallel(c, 0, GENESIS_HASH, threads), serial);
        }
        serial
    }

    #[test]
    fn intact_chain_verifies() {
        let c = chain(5);
        assert_eq!(check(&c).unwrap(), (5, c[4].1.clone()));
        assert_eq!(check(&[]).unwrap(), (0, GENESIS_HASH.to_string()));
    }

    #[test]
    fn every_tampering_is_caught_at_the_right_entry() {
        let mut altered = chain(5);
        altered[2].0.details = serde_json::json!({"name": "x"});
        assert_eq!(check(&altered), Err(ChainError::Content { seq: 3 }));

        let mut removed = chain(5);
        removed.remove(1);
        assert_eq!(
            check(&removed),
            Err(ChainError::Sequence {
                seq: 3,
                expected: 2
            })
        );

        let mut reordered = chain(5);
        reordered.swap(1, 2);
        assert_eq!(
            check(&reordered),
            Err(ChainError::Sequence {
                seq: 3,
                expected: 2
            })
        );

        // Renumbering after a removal still breaks the link.
        let mut renumbered = chain(5);
        renumbered.remove(1);
        for (i, (r, _)) in renumbered.iter_mut().enumerate() {
            r.seq = i as i64 + 1;
        }
        assert_eq!(check(&renumbered), Err(ChainError::Link { seq: 2 }));

        // Re-hashing an altered entry breaks the next link.
        let mut rehashed = chain(5);
        rehashed[2].0.result = "failure".into();
        rehashed[2].1 = rehashed[2].0.compute_hash();
        assert_eq!(check(&rehashed), Err(ChainError::Link { seq: 4 }));
    }

    #[test]
    fn canonical_json_sorts_detail_keys() {
        let c = chain(1);
        let s = String::from_utf8(c[0].0.canonical_json()).unwrap();
        assert!(
            s.contains(r#""details":{"a":2,"b":1,"name":"設計1"}"#),
            "{s}"
        );
    }
}
